"""The WebSocket chat API (docs/chat-api.md) against the real binary, with the `websockets` client
and, where a client must misbehave, a raw socket.

Every request and every event the document lists is exercised; the last test checks that the
document and the tests agree.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import smtplib
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from conftest import DEMO_DOMAIN, DEMO_PASSWORD, ROOT, LineClient, Server, wait_until

TIMEOUT = 10
DOC = ROOT / "docs" / "chat-api.md"
LISTENERS = [("http", "none"), ("line", "none")]


class Ws:
    """A JSON WebSocket client: requests with ids, replies matched by id, events kept in order."""

    def __init__(self, port: int, scheme: str = "ws", **kw):
        kw.setdefault("open_timeout", TIMEOUT)
        kw.setdefault("close_timeout", 5)
        self.ws = connect(f"{scheme}://127.0.0.1:{port}/ws", **kw).__enter__()
        self.next_id = 0
        self.events: list[dict] = []
        self.seen: set[str] = set()
        self.requests: set[str] = set()
        self.hello = self.recv()
        assert self.hello["type"] == "hello", self.hello

    def recv(self, timeout: float = TIMEOUT) -> dict:
        frame = json.loads(self.ws.recv(timeout=timeout))
        self.seen.add(frame["type"])
        return frame

    def send_raw(self, data):
        self.ws.send(data)

    def request(self, kind: str, /, **fields) -> dict:
        """Sends a request; returns its reply (ok or error); events that come first are kept."""
        self.next_id += 1
        rid = f"r{self.next_id}"
        self.requests.add(kind)
        self.ws.send(json.dumps({"type": kind, "id": rid, **fields}))
        deadline = time.monotonic() + TIMEOUT
        while True:
            frame = self.recv(max(0.01, deadline - time.monotonic()))
            if frame["type"] in ("ok", "error") and frame.get("id") == rid:
                return frame
            self.events.append(frame)

    def ok(self, kind: str, /, **fields) -> dict:
        reply = self.request(kind, **fields)
        assert reply["type"] == "ok", reply
        return reply

    def error(self, kind: str, code: str, /, **fields) -> dict:
        reply = self.request(kind, **fields)
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert reply["message"], reply
        return reply

    def login(self, user: str = "ta", password: str = DEMO_PASSWORD) -> dict:
        return self.ok("login", user=user, password=password)

    def event(self, kind: str, /, where=None, timeout: float = TIMEOUT, **match) -> dict:
        """The first event of `kind` whose fields equal `match` (and that satisfies `where`)."""

        def fits(frame):
            return (frame["type"] == kind and all(frame.get(k) == v for k, v in match.items())
                    and (where is None or where(frame)))

        for i, frame in enumerate(self.events):
            if fits(frame):
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} event {match} within {timeout}s; kept: {self.events}")
            frame = self.recv(remaining)
            if fits(frame):
                return frame
            self.events.append(frame)

    def closed(self, timeout: float = TIMEOUT):
        """Reads until the server closes; returns its close frame (code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    self.events.append(self.recv(max(0.01, deadline - time.monotonic())))
                except TimeoutError:
                    pass
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, f"no close frame: {closed}"
            return closed.rcvd.code, closed.rcvd.reason
        raise AssertionError(f"still open after {timeout}s")

    def close(self):
        self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def line_of(client: LineClient) -> str:
    """One line of the line protocol (LF-terminated), without its LF."""
    while b"\n" not in client.buf:
        chunk = client.sock.recv(65536)
        assert chunk, "the line-protocol connection closed"
        client.buf += chunk
    line, client.buf = client.buf.split(b"\n", 1)
    return line.decode()


def nick_is(nick):
    return lambda e: e["member"]["nick"] == nick


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One server for the tests that need nothing special (each uses rooms of its own)."""
    server = Server(tmp_path_factory.mktemp("web"), listeners=LISTENERS).start()
    yield server
    server.stop()
    assert "panicked" not in server.log(), server.log()[-4000:]


@pytest.fixture
def room(request) -> str:
    """A room name of this test's own."""
    return "#" + re.sub(r"[^a-z0-9]", "", request.node.name.lower())[-40:]


def ws(server: Server, **kw) -> Ws:
    return Ws(server.port("http"), **kw)


# -- connecting and logging in ------------------------------------------------------------------


def test_hello_comes_first_and_only_ping_and_login_work_before_login(web):
    with ws(web) as c:
        assert c.hello["server"] == "tidings"
        for key in ("message_bytes_max", "text_bytes_max", "history_page_max", "login_timeout_secs",
                    "ping_interval_secs"):
            assert isinstance(c.hello[key], int) and c.hello[key] > 0, key
        assert isinstance(c.ok("ping")["at_ms"], int)
        c.error("rooms", "unauthorized")
        c.error("join", "unauthorized", room="#x")


def test_login_with_an_address_or_a_bare_local_part(web):
    with ws(web) as a, ws(web) as b:
        reply = a.login(f"ta@{DEMO_DOMAIN}")
        assert (reply["account"], reply["nick"]) == (f"ta@{DEMO_DOMAIN}", "ta")
        assert isinstance(reply["rooms"], list)
        assert b.login("instructor")["account"] == f"instructor@{DEMO_DOMAIN}"
        b.error("login", "bad_request", user="ta", password=DEMO_PASSWORD)


def test_a_failed_login_is_delayed_unauthorized_and_closes_after_the_limit(make_server):
    server = make_server(settings={"auth": {"failure_delay_ms": 400}, "web": {"login_failures_max": 2}},
                         listeners=LISTENERS)
    with ws(server) as c:
        start = time.monotonic()
        c.error("login", "unauthorized", user="ta", password="wrong")
        assert time.monotonic() - start >= 0.35
        c.error("login", "unauthorized", user="nobody", password=DEMO_PASSWORD)
        assert c.closed() == (1008, "too many failed logins")
    with ws(server) as c:
        c.login()


def api(server: Server, method: str, path: str, body: dict | None = None, token: str | None = None):
    """One HTTP API request: (status, JSON body or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=TIMEOUT)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else None)


def test_the_api_lockout_covers_websocket_logins_however_the_account_is_spelled(make_server):
    server = make_server(settings={"web": {"login_failures_before_lockout": 3, "login_failures_max": 10}},
                         listeners=LISTENERS)
    with ws(server) as c:
        for user in ("ta", f"TA@{DEMO_DOMAIN.upper()}", "ta@localhost"):
            c.error("login", "unauthorized", user=user, password="wrong")
        reply = c.error("login", "unauthorized", user="ta", password=DEMO_PASSWORD)
        assert "too many failed logins" in reply["message"]
        assert c.closed() == (1008, "too many failed logins")
    status, body = api(server, "POST", "/api/v1/session", {"user": f"ta@{DEMO_DOMAIN}", "password": DEMO_PASSWORD})
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    with ws(server) as c:
        c.login("instructor")


def test_a_socket_logged_in_with_an_api_session_closes_when_the_session_ends(make_server):
    server = make_server(settings={"web": {"ws_ping_interval_secs": 1}}, listeners=LISTENERS)
    status, session = api(server, "POST", "/api/v1/session", {"user": "ta", "password": DEMO_PASSWORD, "mode": "token"})
    assert status == 200
    with ws(server) as c, ws(server) as other:
        assert c.ok("login", token=session["token"])["account"] == f"ta@{DEMO_DOMAIN}"
        other.login()
        assert api(server, "DELETE", "/api/v1/session", token=session["token"])[0] == 204
        assert c.closed() == (1008, "session ended")
        assert any(e.get("code") == "unauthorized" for e in c.events), c.events
        assert other.ok("ping")["type"] == "ok", "a password login of the account goes on"


def test_passwords_need_tls_where_plaintext_is_refused(make_server):
    server = make_server(settings={"auth": {"plaintext": "never"}},
                         listeners=[("http", "none"), ("http", "implicit")])
    with ws(server) as c:
        c.error("login", "encryption_required", user="ta", password=DEMO_PASSWORD)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with Ws(server.port("http", "implicit"), scheme="wss", ssl=context) as c:
        assert c.login()["account"] == f"ta@{DEMO_DOMAIN}"



def test_tls_sends_no_session_tickets_after_the_handshake(make_server):
    """TLS 1.3 tickets would come after the handshake, just as the client writes its first request.
    A client that reads in one thread and writes in another (the `websockets` sync client above, on
    Python's ssl) handles them while it writes, and OpenSSL may then lose that write: the upgrade
    request never leaves and both sides wait. The server sends none."""
    server = make_server(listeners=[("http", "implicit")])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", server.port("http", "implicit")), timeout=TIMEOUT) as raw, \
            context.wrap_socket(raw) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := tls.recv(4096):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        # Tickets would have come before the reply, so the session would hold one by now.
        assert tls.version() == "TLSv1.3" and not tls.session.has_ticket

def test_no_login_in_time_gets_an_error_then_1008(make_server):
    server = make_server(settings={"web": {"login_timeout_secs": 1}}, listeners=LISTENERS)
    with ws(server) as c:
        assert c.closed() == (1008, "login timeout")
        assert any(e["type"] == "error" and e["code"] == "unauthorized" and "id" not in e for e in c.events)


# -- rooms ----------------------------------------------------------------------------------------


def test_create_join_members_rooms_and_leave(web, room):
    with ws(web) as a, ws(web) as b:
        a.login("instructor")
        b.login("ta")
        created = a.ok("create", room=room)
        assert created["room"] == room and created["members"][0]["operator"] is True
        assert created["modes"] == {"invite_only": False, "key": None, "limit": None, "no_external": True,
                                    "topic_locked": True}
        assert a.event("joined", room=room, where=nick_is("instructor"))["member"]["account"] == \
            f"instructor@{DEMO_DOMAIN}"
        b.error("create", "room_exists", room=room)
        joined = b.ok("join", room=room.upper())
        assert joined["room"] == room
        assert sorted(m["nick"] for m in joined["members"]) == ["instructor", "ta"]
        a.event("joined", room=room, where=nick_is("ta"))
        b.event("joined", room=room, where=nick_is("ta"))
        b.error("join", "already_member", room=room)
        members = a.ok("members", room=room)["members"]
        assert [(m["nick"], m["operator"], m["via"]) for m in members] == [("instructor", True, "web"),
                                                                             ("ta", False, "web")]
        listed = {r["room"]: r for r in b.ok("rooms")["rooms"]}
        assert listed[room] == {"room": room, "members": 2, "topic": "", "member": True, "joined": True}
        b.ok("leave", room=room, reason="bye")
        left = a.event("left", room=room, where=nick_is("ta"))
        assert (left["how"], left["reason"], left["by"]) == ("part", "bye", None)
        b.event("left", room=room, where=nick_is("ta"))
        listed = {r["room"]: r for r in b.ok("rooms")["rooms"]}
        assert listed[room]["members"] == 1 and not listed[room]["member"] and not listed[room]["joined"]
        b.error("leave", "not_member", room=room)
        b.error("join", "bad_request", room="no-hash")
        b.error("members", "no_such_room", room="#never-made-" + room[1:])


def test_an_accounts_rooms_survive_a_reconnect_until_it_leaves(web, room):
    with ws(web) as c:
        c.login("cis505")
        c.ok("join", room=room)
    with ws(web) as c:
        assert room in c.login("cis505")["rooms"]
        listed = {r["room"]: r for r in c.ok("rooms")["rooms"]}
        assert listed[room]["member"] is True and listed[room]["joined"] is False
        c.ok("leave", room=room)
        assert room not in [r["room"] for r in c.ok("rooms")["rooms"] if r["member"]]
        c.error("leave", "not_member", room=room)
    with ws(web) as c:
        assert room not in c.login("cis505")["rooms"]


# -- messages -------------------------------------------------------------------------------------


def test_a_message_is_stored_and_reaches_every_member_the_sender_too(web, room):
    with ws(web) as a, ws(web) as b:
        a.login("instructor")
        b.login("ta")
        a.ok("join", room=room)
        b.ok("join", room=room)
        sent = a.ok("send", room=room, text="héllo wörld ✓")["message"]
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", sent["id"])
        assert sent["seq"] >= 1 and sent["at_ms"] > 0 and sent["kind"] == "text"
        assert sent["from"] == {"nick": "instructor", "account": f"instructor@{DEMO_DOMAIN}", "via": "web"}
        assert b.event("message")["message"] == sent
        assert a.event("message")["message"] == sent
        action = b.ok("send", room=room, text="waves", kind="action")["message"]
        assert action["kind"] == "action" and action["seq"] == sent["seq"] + 1
        assert a.event("message")["message"] == action


def test_send_errors_have_their_codes(web, room):
    with ws(web) as a, ws(web) as b:
        a.login("instructor")
        b.login("ta")
        a.ok("join", room=room)
        limit = a.hello["text_bytes_max"]
        a.error("send", "too_large", room=room, text="x" * (limit + 1))
        a.ok("send", room=room, text="x" * limit)
        a.error("send", "bad_request", room=room, text="")
        a.error("send", "bad_request", room=room, text="two\nlines")
        a.error("send", "bad_request", text="where to?")
        a.error("send", "bad_request", room=room, to="ta", text="both")
        b.error("send", "not_member", room=room, text="not in it (+n)")
        a.error("send", "no_such_room", room="#nothing-here-" + room[1:], text="hi")
        a.error("send", "no_such_nick", to="nobody-has-this", text="hi")


def test_a_direct_message_reaches_every_connection_of_the_nick(web):
    with ws(web) as a, ws(web) as b1, ws(web) as b2:
        a.login("instructor")
        b1.login("ta")
        b2.login("ta")
        assert a.ok("send", to="ta", text="a question", kind="notice")["delivered"] >= 2
        for b in (b1, b2):
            direct = b.event("direct", where=lambda e: e["text"] == "a question")
            assert direct["from"]["account"] == f"instructor@{DEMO_DOMAIN}"
            assert (direct["to"], direct["kind"]) == ("ta", "notice") and len(direct["id"]) == 26


def test_history_pages_before_and_after_a_message_id(make_server, room):
    server = make_server(settings={"web": {"history_page_max": 5}}, listeners=LISTENERS)
    with ws(server) as a, ws(server) as b:
        a.login("ta")
        b.login("instructor")
        a.ok("join", room=room)
        ids = [a.ok("send", room=room, text=f"m{i}")["message"]["id"] for i in range(8)]
        newest = a.ok("history", room=room, limit=3)
        assert [m["text"] for m in newest["messages"]] == ["m5", "m6", "m7"] and newest["more"] is True
        older = a.ok("history", room=room, before=ids[5], limit=3)
        assert [m["text"] for m in older["messages"]] == ["m2", "m3", "m4"] and older["more"] is True
        oldest = a.ok("history", room=room, before=ids[2], limit=3)
        assert [m["text"] for m in oldest["messages"]] == ["m0", "m1"] and oldest["more"] is False
        newer = a.ok("history", room=room, after=ids[1], limit=3)
        assert [m["text"] for m in newer["messages"]] == ["m2", "m3", "m4"] and newer["more"] is True
        last = a.ok("history", room=room, after=ids[4], limit=3)
        assert [m["text"] for m in last["messages"]] == ["m5", "m6", "m7"] and last["more"] is False
        between = a.ok("history", room=room, after=ids[1], before=ids[6])
        assert [m["text"] for m in between["messages"]] == ["m2", "m3", "m4", "m5"]
        capped = a.ok("history", room=room, limit=1000)
        assert len(capped["messages"]) == 5 and capped["more"] is True
        seqs = [m["seq"] for m in a.ok("history", room=room)["messages"]]
        assert seqs == sorted(seqs)
        a.error("history", "bad_request", room=room, limit=0)
        a.error("history", "bad_request", room=room, before="not-an-id")
        b.error("history", "not_member", room=room)
        b.error("history", "no_such_room", room="#nowhere-" + room[1:])


# -- presence -------------------------------------------------------------------------------------


def test_away_and_back_are_presence_events_and_can_be_asked_for(web, room):
    with ws(web) as a, ws(web) as b:
        a.login("instructor")
        b.login("ta")
        a.ok("join", room=room)
        b.ok("join", room=room)
        b.ok("presence", status="away", message="at lunch")
        away = a.event("presence", nick="ta", status="away")
        assert (away["account"], away["message"], away["via"]) == (f"ta@{DEMO_DOMAIN}", "at lunch", "web")
        assert "last_seen_ms" not in away
        b.event("presence", nick="ta", status="away")
        assert [m["away"] for m in a.ok("members", room=room)["members"] if m["nick"] == "ta"] == ["at lunch"]
        asked = wait_until(lambda: (r := a.ok("presence", account="ta"))["status"] == "away" and r, TIMEOUT,
                           "ta away")
        assert (asked["account"], asked["message"]) == (f"ta@{DEMO_DOMAIN}", "at lunch")
        b.ok("presence", status="online")
        assert a.event("presence", nick="ta", status="online")["message"] is None
        # The stored presence follows the event within moments.
        wait_until(lambda: a.ok("presence", account=f"ta@{DEMO_DOMAIN}")["status"] == "online", TIMEOUT,
                   "ta back online")
        a.error("presence", "no_such_account", account="nobody")
        a.error("presence", "bad_request")
        a.error("presence", "bad_request", status="online", message="not with online")
        a.error("presence", "bad_request", status="offline")


def test_a_disconnect_is_a_quit_then_offline_with_last_seen(make_server, room):
    server = make_server(listeners=LISTENERS)
    with ws(server) as a:
        a.login("instructor")
        a.ok("join", room=room)
        before = int(time.time() * 1000) - 1000
        with ws(server) as b:
            b.login("ta")
            b.ok("join", room=room)
            assert a.ok("presence", account="ta")["status"] == "online"
        left = a.event("left", room=room, where=nick_is("ta"))
        assert (left["how"], left["reason"]) == ("quit", "Connection closed")
        offline = a.event("presence", nick="ta", status="offline")
        assert offline["account"] == f"ta@{DEMO_DOMAIN}" and offline["last_seen_ms"] >= before
        asked = wait_until(lambda: (r := a.ok("presence", account="ta"))["status"] == "offline" and r,
                           TIMEOUT, "ta offline")
        assert asked["last_seen_ms"] >= before


# -- other front-ends -----------------------------------------------------------------------------


def test_line_protocol_and_websocket_clients_talk_in_one_room(web):
    with ws(web) as c, LineClient(web.port("line")) as line:
        c.login("ta")
        line.send("JOIN crossover tim\n")
        assert line_of(line) == "tim has joined"
        joined = c.ok("join", room="#crossover")
        assert {m["nick"]: m["via"] for m in joined["members"]} == {"tim": "line", "ta": "web"}
        assert line_of(line) == "ta has joined"
        c.ok("send", room="#crossover", text="hello from the web")
        assert line_of(line) == "ta: hello from the web"
        line.send("hello from the line\n")
        message = c.event("message", where=lambda e: e["message"]["from"]["nick"] == "tim")["message"]
        assert message["text"] == "hello from the line"
        assert message["from"] == {"nick": "tim", "account": None, "via": "line"}
        assert line_of(line) == "tim: hello from the line"
        c.ok("send", room="#crossover", text="waves", kind="action")
        assert line_of(line) == "* ta waves"
        line.close()
        left = c.event("left", room="#crossover", where=nick_is("tim"))
        assert left["how"] == "quit" and left["member"]["account"] is None


# -- topics, modes, nicks, kicks and invites ------------------------------------------------------


def test_topic_is_set_by_operators_of_a_t_room_and_announced(web, room):
    with ws(web) as a, ws(web) as b:
        a.login("instructor")
        b.login("ta")
        a.ok("join", room=room)
        b.ok("join", room=room)
        b.error("topic", "not_operator", room=room, text="mine")
        topic = a.ok("topic", room=room, text="Office hours")["topic"]
        assert (topic["text"], topic["setter"]) == ("Office hours", "instructor")
        assert b.event("topic", room=room)["topic"] == topic
        assert {r["room"]: r["topic"] for r in b.ok("rooms")["rooms"]}[room] == "Office hours"
        a.error("topic", "too_large", room=room, text="t" * 391)
        with ws(web) as c:
            c.login("cis505")
            assert c.ok("join", room=room)["topic"] == topic


def test_modes_keys_limits_and_operators(web, room):
    with ws(web) as a, ws(web) as b:
        a.login("instructor")
        b.login("ta")
        a.ok("join", room=room)
        assert a.ok("modes", room=room)["changed"] == []
        reply = a.ok("modes", room=room, changes=[{"mode": "key", "value": "s3cret"},
                                                   {"mode": "topic_locked", "on": True}])
        assert reply["modes"]["key"] == "s3cret" and reply["changed"] == [{"mode": "key", "value": "s3cret"}]
        event = a.event("modes", room=room)
        assert event["changes"] == [{"mode": "key", "value": "s3cret"}] and event["by"]["nick"] == "instructor"
        b.error("join", "bad_key", room=room)
        b.error("join", "bad_key", room=room, key="wrong")
        b.ok("join", room=room, key="s3cret")
        b.error("modes", "not_operator", room=room, changes=[{"mode": "invite_only", "on": True}])
        a.ok("modes", room=room, changes=[{"mode": "operator", "nick": "ta", "on": True}])
        assert b.event("modes", room=room)["changes"] == [{"mode": "operator", "nick": "ta", "on": True}]
        b.ok("modes", room=room, changes=[{"mode": "limit", "value": 2}])
        a.error("modes", "bad_request", room=room, changes=[{"mode": "limit", "value": 0}])
        a.error("modes", "bad_request", room=room, changes=[{"mode": "key", "value": "a b"}])
        a.error("modes", "bad_request", room=room, changes=[{"mode": "fly", "on": True}])
        a.error("modes", "no_such_nick", room=room, changes=[{"mode": "voice", "nick": "nobody", "on": True}])
        with ws(web) as c:
            c.login("cis505")
            c.error("join", "room_full", room=room, key="s3cret")


def test_nick_changes_are_announced_and_other_accounts_nicks_are_taken(web, room):
    with ws(web) as a, ws(web) as b:
        a.login("instructor")
        b.login("ta")
        a.ok("join", room=room)
        b.ok("join", room=room)
        assert b.ok("nick", nick="ta_alice")["nick"] == "ta_alice"
        event = a.event("nick", old="ta", new="ta_alice")
        assert (event["account"], event["via"]) == (f"ta@{DEMO_DOMAIN}", "web")
        b.event("nick", new="ta_alice")
        a.error("nick", "nick_in_use", nick="ta_alice")
        a.error("nick", "bad_request", nick="two words")
        a.error("nick", "bad_request", nick="#room")
        sent = b.ok("send", room=room, text="renamed")["message"]
        assert sent["from"]["nick"] == "ta_alice"


def test_kick_and_invite(web, room):
    with ws(web) as a, ws(web) as b, ws(web) as c:
        a.login("instructor")
        b.login("ta")
        c.login("cis505")
        a.ok("join", room=room)
        b.ok("join", room=room)
        b.error("kick", "not_operator", room=room, nick="instructor")
        a.error("kick", "no_such_nick", room=room, nick="cis505")
        a.ok("kick", room=room, nick="ta", reason="no spam")
        kicked = b.event("kicked", room=room)
        assert (kicked["by"], kicked["reason"]) == ("instructor", "no spam")
        left = a.event("left", room=room, where=nick_is("ta"))
        assert (left["how"], left["by"], left["reason"]) == ("kick", "instructor", "no spam")
        wait_until(lambda: room not in [r["room"] for r in b.ok("rooms")["rooms"] if r["member"]],
                   TIMEOUT, "the kick to leave the account's rooms")
        b.error("send", "not_member", room=room, text="still here?")
        a.ok("modes", room=room, changes=[{"mode": "invite_only", "on": True}])
        c.error("join", "invite_only", room=room)
        assert a.ok("invite", room=room, nick="cis505")["told"] == 1
        invited = c.event("invited", room=room)
        assert invited["by"]["nick"] == "instructor"
        c.ok("join", room=room)
        a.error("invite", "already_member", room=room, nick="cis505")
        a.error("invite", "no_such_nick", room=room, nick="nobody-at-all")
        b.error("invite", "not_member", room=room, nick="ta")


# -- malformed and abusive clients ----------------------------------------------------------------


def test_invalid_json_gets_an_error_and_the_connection_stays(web):
    with ws(web) as c:
        for junk in ("not json", "[1, 2]", '{"type": "fly", "id": "x1"}', '{"id": {"a": 1}, "type": "ping"}',
                     '{"type": "join", "id": 7}'):
            c.send_raw(junk)
            error = c.recv()
            assert error["type"] == "error" and error["code"] == "bad_request", error
        assert error["id"] == 7 and "room" in error["message"]
        c.send_raw(b"\x00\x01binary")
        assert c.recv()["code"] == "bad_request"
        assert c.ok("ping")["at_ms"] > 0


def test_an_oversized_message_closes_with_1009_and_the_server_stays_up(make_server):
    server = make_server(settings={"web": {"ws_message_bytes_max": 2048}}, listeners=LISTENERS)
    with ws(server) as c:
        c.login()
        c.send_raw(json.dumps({"type": "send", "room": "#big", "text": "x" * 4000}))
        code, reason = c.closed()
        assert code == 1009 and "2048" in reason
    with ws(server) as c:
        assert c.ok("ping")["at_ms"] > 0


def test_flooding_gets_flood_errors_then_a_close(make_server):
    server = make_server(settings={"web": {"flood_requests_per_sec": 1, "flood_burst": 3, "flood_strikes_max": 5}},
                         listeners=LISTENERS)
    with ws(server) as c:
        try:
            for i in range(12):
                c.send_raw(json.dumps({"type": "ping", "id": i}))
        except ConnectionClosed:
            pass  # the server may close before the client has sent all twelve
        assert c.closed() == (1008, "Excess Flood")
        codes = [(e.get("id"), e.get("code")) for e in c.events]
        assert codes[:3] == [(0, None), (1, None), (2, None)]
        assert (3, "flood") in codes and (None, "flood") in codes
    with ws(server) as c:
        c.login()


class RawWs:
    """A WebSocket client on a bare socket that can stop reading (RFC 6455 framing by hand)."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive window and segment size: the server's sends block after a few frames.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_frame(self, payload: bytes, opcode: int = 1, masked: bool = True):
        """One final frame of at most 125 octets (RFC 6455 §5.2); clients must mask."""
        assert len(payload) < 126
        if not masked:
            self.sock.sendall(bytes([0x80 | opcode, len(payload)]) + payload)
            return
        mask = os.urandom(4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + data)

    def send_json(self, obj):
        self.send_frame(json.dumps(obj).encode())

    def close_frame(self) -> tuple[int, str]:
        """Reads frames until the server's close frame; its (code, reason)."""
        while True:
            opcode, payload = self.frame()
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def frame(self) -> tuple[int, bytes]:
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        return first & 0x0F, self._take(length)

    def reply(self, rid: str) -> dict:
        while True:
            opcode, payload = self.frame()
            if opcode == 1 and json.loads(payload).get("id") == rid:
                return json.loads(payload)


def test_a_slow_consumer_is_dropped_with_1008_and_the_server_stays_up(make_server, room):
    server = make_server(settings={"chat": {"outbox_events_max": 16},
                                   "web": {"flood_requests_per_sec": 0, "ws_write_timeout_secs": 120}},
                         listeners=LISTENERS)
    slow = RawWs(server.port("http"))
    slow.send_json({"type": "login", "id": "1", "user": "instructor", "password": DEMO_PASSWORD})
    assert slow.reply("1")["type"] == "ok"
    slow.send_json({"type": "join", "id": "2", "room": room})
    assert slow.reply("2")["type"] == "ok"
    # From here on the slow client reads nothing until the flood of messages is over.
    sent = 200
    with ws(server) as sender:
        sender.login("ta")
        sender.ok("join", room=room)
        for i in range(sent):
            sender.ok("send", room=room, text=f"{i:04d} " + "x" * 3000)
        messages = 0
        while (frame := slow.frame())[0] != 8:
            opcode, payload = frame
            messages += opcode == 1 and json.loads(payload)["type"] == "message"
        assert (struct.unpack("!H", frame[1][:2])[0], frame[1][2:].decode()) == (1008, "Max SendQ exceeded")
        assert messages < sent
        left = sender.event("left", room=room, where=nick_is("instructor"))
        assert (left["how"], left["reason"]) == ("quit", "Max SendQ exceeded")
        assert sender.ok("ping")["at_ms"] > 0
    slow.sock.close()
    assert server.alive()


def test_frames_that_break_rfc_6455_close_with_1002_and_bad_utf8_with_1007(web):
    unmasked = RawWs(web.port("http"))
    unmasked.send_frame(b'{"type":"ping"}', masked=False)
    code, _ = unmasked.close_frame()
    assert code == 1002
    bad_text = RawWs(web.port("http"))
    bad_text.send_frame(b'{"type":"ping","id":"\xff\xfe"}')
    assert bad_text.close_frame() == (1007, "text frame is not UTF-8")
    for raw in (unmasked, bad_text):
        raw.sock.close()
    with ws(web) as c:
        assert c.ok("ping")["at_ms"] > 0


def test_shutdown_closes_sockets_with_1001(make_server):
    server = make_server(listeners=LISTENERS)
    with ws(server) as c:
        c.login()
        server.proc.send_signal(15)
        assert c.closed() == (1001, "Server shutting down")
    assert server.proc.wait(timeout=30) == 0


def test_http_routes_and_upgrade_refusals(web):
    conn = http.client.HTTPConnection("127.0.0.1", web.port("http"), timeout=TIMEOUT)
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"ok\n")
    conn.request("GET", "/ws")
    response = conn.getresponse()
    response.read()
    assert response.status == 426 and response.getheader("Sec-WebSocket-Version") == "13"
    conn.request("GET", "/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                         "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short"})
    response = conn.getresponse()
    response.read()
    assert response.status == 400
    conn.request("POST", "/ws", body=b"")
    response = conn.getresponse()
    response.read()
    assert response.status == 405
    conn.close()


def test_connection_limits_apply_and_a_websocket_keeps_its_place(make_server):
    server = make_server(settings={"chat": {"connections_per_ip_max": 2}}, listeners=LISTENERS)

    def refused() -> bytes:
        with socket.create_connection(("127.0.0.1", server.port("http")), timeout=TIMEOUT) as sock:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    with ws(server) as a, ws(server):
        a.login()
        assert refused().startswith(b"HTTP/1.1 503 ")
        assert a.ok("ping")["at_ms"] > 0

    def admitted():
        try:
            with ws(server) as c:
                return c.ok("ping")
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
            return None

    wait_until(admitted, TIMEOUT, "the places of closed sockets to be freed")


# -- the document and the tests agree --------------------------------------------------------------


def documented(section: str) -> set[str]:
    """The `### \\`name\\`` headings under `## <section>` of docs/chat-api.md."""
    text = DOC.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^### `([a-z_]+)`$", body, re.M))


def test_every_documented_request_and_event_is_exercised(make_server):
    requests, events = documented("Requests"), documented("Events")
    assert len(requests) >= 15 and len(events) >= 14, (requests, events)
    server = make_server(listeners=LISTENERS + [("smtp", "none")])
    room = "#everything"
    with ws(server) as a, ws(server) as b:
        c = ws(server)
        c.ok("ping")
        a.login("instructor")
        b.login("ta")
        c.login("cis505")
        a.ok("create", room=room)
        b.ok("join", room=room)
        a.ok("topic", room=room, text="all of it")
        b.event("topic", room=room)
        a.ok("modes", room=room, changes=[{"mode": "voice", "nick": "ta", "on": True}])
        b.event("modes", room=room)
        b.ok("nick", nick="ta2")
        a.event("nick", new="ta2")
        first = a.ok("send", room=room, text="one")["message"]
        a.ok("send", room=room, text="two")
        b.event("message")
        assert [m["text"] for m in b.ok("history", room=room, after=first["id"])["messages"]] == ["two"]
        a.ok("send", to="ta2", text="psst")
        b.event("direct")
        b.ok("presence", status="away", message="brb")
        a.event("presence", status="away")
        a.ok("presence", account="ta")
        a.ok("members", room=room)
        a.ok("rooms")
        a.ok("invite", room=room, nick="cis505")
        c.event("invited", room=room)
        c.ok("join", room=room)
        a.event("joined", room=room, where=nick_is("cis505"))
        a.ok("kick", room=room, nick="ta2", reason="enough")
        b.event("kicked", room=room)
        c.ok("leave", room=room)
        a.event("left", room=room, where=nick_is("cis505"))
        b.ok("join", room=room)
        b.close()
        a.event("presence", status="offline")
        a.send_raw("{")
        a.event("error", code="bad_request")
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=TIMEOUT) as smtp:
            smtp.sendmail("x@example.org", [f"instructor@{DEMO_DOMAIN}"], b"Subject: new mail\r\n\r\nhello\r\n")
        a.event("mail", subject="new mail")
        a.event("mailboxes")
        c.close()
        seen = a.seen | b.seen | c.seen
        sent = a.requests | b.requests | c.requests
    assert events <= seen, f"documented events never seen: {events - seen}"
    assert requests <= sent, f"documented requests never sent: {requests - sent}"
    assert seen - {"ok", "error"} <= events | {"error"}, f"undocumented events: {seen - events}"
