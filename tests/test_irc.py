"""IRC end to end: raw-socket clients, the PyPI `irc` library and WeeChat against the real binary,
with the line protocol (port 5555) in the same rooms.

Every read has a bounded timeout; nothing sleeps to wait for the server.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import DEMO_DOMAIN, DEMO_PASSWORD, wait_until

TIMEOUT = 10
LISTENERS = [("irc", "none"), ("irc", "implicit"), ("line", "none")]


class Irc:
    """A raw IRC client: sends lines, reads lines with bounded waits."""

    def __init__(self, port: int, tls: bool = False, timeout: float = TIMEOUT):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        self.sock = sock
        self.buf = b""
        self.seen: list[str] = []
        self.nick = "*"

    def send(self, line: str | bytes):
        self.sock.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def line(self, timeout: float = TIMEOUT) -> str | None:
        """The next line (without CRLF); None when the server closed the connection."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line within {timeout}s; last seen: {self.seen[-5:]}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\r\n", 1)
        text = raw.decode("utf-8", "replace")
        self.seen.append(text)
        return text

    def until(self, predicate, timeout: float = TIMEOUT) -> list[str]:
        """Reads lines until one satisfies `predicate` (a substring or a callable); returns them all."""
        test = predicate if callable(predicate) else (lambda line: predicate in line)
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"closed while waiting for {predicate!r}; got {lines}")
            lines.append(line)
            if test(line):
                return lines

    def numeric(self, code: str, timeout: float = TIMEOUT) -> str:
        return self.until(lambda l: len(l.split(" ")) > 1 and l.split(" ")[1] == code, timeout)[-1]

    def closed(self, timeout: float = TIMEOUT) -> list[str]:
        """Reads until the server closes the connection; returns the lines read."""
        lines = []
        while True:
            line = self.line(timeout)
            if line is None:
                return lines
            lines.append(line)

    def register(self, nick: str, user: str = "u", caps: str = "", sasl: tuple[str, str] | None = None,
                 password: str | None = None) -> list[str]:
        """Registers; returns the lines up to the end of the MOTD."""
        if caps or sasl:
            self.send("CAP LS 302")
        if password is not None:
            self.send(f"PASS {password}")
        self.send(f"NICK {nick}")
        self.send(f"USER {user} 0 * :Real {nick}")
        if caps or sasl:
            self.until(" LS ")
            wanted = " ".join(filter(None, [caps, "sasl" if sasl else ""]))
            self.send(f"CAP REQ :{wanted}")
            self.until(" ACK ")
            if sasl:
                self.send("AUTHENTICATE PLAIN")
                assert self.line() == "AUTHENTICATE +"
                token = base64.b64encode(f"\0{sasl[0]}\0{sasl[1]}".encode()).decode()
                self.send(f"AUTHENTICATE {token}")
                self.numeric("903")
            self.send("CAP END")
        lines = self.until(lambda l: " 376 " in l or " 422 " in l)
        self.nick = nick
        return lines

    def join(self, channel: str) -> list[str]:
        self.send(f"JOIN {channel}")
        return self.until(" 366 ")

    def close(self):
        self.sock.close()


def body(line: str) -> str:
    """The last parameter of a line (tags and source skipped)."""
    if line.startswith("@"):
        line = line.split(" ", 1)[1]
    if line.startswith(":"):
        line = line.split(" ", 1)[1]
    return line.split(" :", 1)[1] if " :" in line else line.rsplit(" ", 1)[-1]


def tags(line: str) -> dict[str, str]:
    if not line.startswith("@"):
        return {}
    return dict(t.split("=", 1) if "=" in t else (t, "") for t in line[1:].split(" ", 1)[0].split(";"))


@pytest.fixture
def server(make_server):
    return make_server(listeners=LISTENERS)


@pytest.fixture
def client(server):
    clients = []

    def connect(tls: bool = False) -> Irc:
        port = server.port("irc", "implicit" if tls else "none")
        c = Irc(port, tls=tls)
        clients.append(c)
        return c

    yield connect
    for c in clients:
        c.close()


def test_registration_sends_welcome_isupport_lusers_and_motd(client):
    c = client()
    lines = c.register("alice")
    numerics = [l.split(" ")[1] for l in lines]
    for code in ["001", "002", "003", "004", "005", "251", "254", "255", "265", "266", "375", "372", "376"]:
        assert code in numerics, (code, lines)
    isupport = " ".join(l for l in lines if " 005 " in l)
    for token in ["CASEMAPPING=ascii", "CHANTYPES=#", "PREFIX=(ov)@+", "CHANMODES=,k,l,int", "NICKLEN=30",
                  "CHATHISTORY=100", "MSGREFTYPES=msgid,timestamp", "NETWORK=tidings"]:
        assert token in isupport, token
    assert lines[0] == ":mx.test.example 001 alice :Welcome to the tidings IRC Network alice!u@127.0.0.1"
    c.send("PING :token-1")
    assert c.until("PONG")[-1] == ":mx.test.example PONG mx.test.example :token-1"


def test_cap_ls_302_lists_the_capabilities_and_req_is_all_or_nothing(client):
    c = client()
    c.send("CAP LS 302")
    ls = c.until(" LS ")[-1]
    for cap in ["message-tags", "server-time", "echo-message", "account-tag", "batch", "draft/chathistory",
                "sasl=PLAIN"]:
        assert cap in body(ls).split(" "), cap
    c.send("NICK capper")
    c.send("USER u 0 * :r")
    c.send("CAP REQ :server-time no-such-cap")
    assert c.until(" NAK ")[-1] == ":mx.test.example CAP capper NAK :server-time no-such-cap"
    c.send("CAP REQ :server-time echo-message")
    assert c.until(" ACK ")[-1] == ":mx.test.example CAP capper ACK :server-time echo-message"
    c.send("CAP LIST")
    assert set(body(c.until(" LIST ")[-1]).split()) == {"server-time", "echo-message", "cap-notify"}
    c.send("CAP END")
    c.numeric("001")


def test_sasl_plain_logs_in_and_the_account_tag_shows_it(client):
    a = client()
    lines = a.register("teacher", caps="account-tag", sasl=("instructor", DEMO_PASSWORD))
    assert any(f" 900 teacher teacher!u@127.0.0.1 instructor@{DEMO_DOMAIN} " in l for l in a.seen)
    b = client()
    b.register("watcher", caps="account-tag message-tags")
    b.join("#acct")
    a.join("#acct")
    joined = b.until("JOIN #acct")[-1]
    assert tags(joined).get("account") == f"instructor@{DEMO_DOMAIN}"
    a.send("PRIVMSG #acct :graded")
    msg = b.until("PRIVMSG #acct")[-1]
    assert tags(msg)["account"] == f"instructor@{DEMO_DOMAIN}" and body(msg) == "graded"
    b.send("WHOIS teacher")
    assert b.numeric("330") == f":mx.test.example 330 watcher teacher instructor@{DEMO_DOMAIN} :is logged in as"


def test_sasl_with_a_wrong_password_fails_with_904(client):
    c = client()
    c.send("CAP LS 302")
    c.send("CAP REQ :sasl")
    c.send("NICK wrong")
    c.send("USER u 0 * :r")
    c.until(" ACK ")
    c.send("AUTHENTICATE PLAIN")
    assert c.line() == "AUTHENTICATE +"
    c.send("AUTHENTICATE " + base64.b64encode(b"\0ta\0nope").decode())
    assert c.numeric("904") == ":mx.test.example 904 wrong :SASL authentication failed"
    c.send("CAP END")
    c.numeric("001")


def test_pass_logs_in_with_account_colon_password_or_with_the_nick_as_account(client):
    a = client()
    a.register("assistant", password=f"ta:{DEMO_PASSWORD}")
    assert any(f" 900 assistant assistant!u@127.0.0.1 ta@{DEMO_DOMAIN} " in l for l in a.seen)
    b = client()
    b.register("cis505", password=DEMO_PASSWORD)
    assert any(f" cis505@{DEMO_DOMAIN} :You are now logged in" in l for l in b.seen)
    c = client()
    c.send("PASS ta:wrong")
    c.send("NICK badpass")
    c.send("USER u 0 * :r")
    lines = c.closed()
    assert lines[0] == ":mx.test.example 464 badpass :Password incorrect"
    assert lines[-1].startswith("ERROR :Closing Link: 127.0.0.1 (Bad password)")


def test_guests_are_refused_when_the_config_says_so(make_server):
    server = make_server(settings={"irc": {"guests": False}}, listeners=LISTENERS)
    guest = Irc(server.port("irc"))
    guest.send("NICK guest")
    guest.send("USER u 0 * :r")
    lines = guest.closed()
    assert lines[0].startswith(":mx.test.example 464 guest :Login required")
    assert lines[-1] == "ERROR :Closing Link: 127.0.0.1 (Login required)"
    member = Irc(server.port("irc"))
    member.register("member", sasl=("ta", DEMO_PASSWORD))


def test_nicknames_are_unique_and_nick_changes_are_broadcast(client):
    a, b = client(), client()
    a.register("Alice")
    b.send("NICK alice")
    assert b.numeric("433") == ":mx.test.example 433 * alice :Nickname is already in use"
    b.send("NICK 1bad")
    assert b.numeric("432") == ":mx.test.example 432 * 1bad :Erroneous nickname"
    b.register("bob")
    a.join("#n")
    b.join("#n")
    a.send("NICK alicia")
    assert a.until("NICK")[-1] == ":Alice!u@127.0.0.1 NICK alicia"
    assert b.until("NICK")[-1] == ":Alice!u@127.0.0.1 NICK alicia"
    c = client()
    c.register("alice")


def test_join_part_and_quit_are_broadcast_and_names_lists_members(client):
    a, b = client(), client()
    a.register("ann")
    b.register("ben")
    joined = a.join("#Hall")
    assert joined[0] == ":ann!u@127.0.0.1 JOIN #hall"
    assert joined[1] == ":mx.test.example 353 ann = #hall :@ann"
    b.join("#hall")
    assert a.until("JOIN")[-1] == ":ben!u@127.0.0.1 JOIN #hall"
    a.send("NAMES #hall")
    assert a.numeric("353") == ":mx.test.example 353 ann = #hall :@ann ben"
    b.send("PART #hall :see you")
    assert a.until("PART")[-1] == ":ben!u@127.0.0.1 PART #hall :see you"
    assert b.until("PART")[-1] == ":ben!u@127.0.0.1 PART #hall :see you"
    b.join("#hall")
    a.until("JOIN")
    b.send("QUIT :bye")
    assert b.closed()[-1] == "ERROR :Closing Link: 127.0.0.1 (Quit: bye)"
    assert a.until("QUIT")[-1] == ":ben!u@127.0.0.1 QUIT :Quit: bye"


def test_topic_is_shown_on_join_and_locked_by_t(client):
    op, user = client(), client()
    op.register("op")
    user.register("user")
    op.join("#t")
    op.send("TOPIC #t :first topic")
    assert op.until("TOPIC")[-1] == ":op!u@127.0.0.1 TOPIC #t :first topic"
    lines = user.join("#t")
    assert ":mx.test.example 332 user #t :first topic" in lines
    assert any(l.startswith(":mx.test.example 333 user #t op ") for l in lines)
    user.send("TOPIC #t :mine now")
    assert user.numeric("482") == ":mx.test.example 482 user #t :You're not channel operator"
    op.send("MODE #t -t")
    user.until("MODE #t -t")
    user.send("TOPIC #t :mine now")
    assert op.until("TOPIC")[-1] == ":user!u@127.0.0.1 TOPIC #t :mine now"
    user.send("TOPIC #t")
    assert user.numeric("332") == ":mx.test.example 332 user #t :mine now"


def test_channel_modes_n_t_i_k_l_o_v_and_user_mode_i(client):
    op, user, third = client(), client(), client()
    op.register("op")
    user.register("user")
    third.register("third")
    op.join("#m")
    op.send("MODE #m")
    assert op.numeric("324") == ":mx.test.example 324 op #m :+nt"
    user.send("PRIVMSG #m :from outside")
    assert user.numeric("404") == ":mx.test.example 404 user #m :Cannot send to channel (+n)"
    op.send("MODE #m +ik sesame")
    assert op.until("MODE #m")[-1] == ":op!u@127.0.0.1 MODE #m +ik sesame"
    user.send("JOIN #m sesame")
    assert user.numeric("473") == ":mx.test.example 473 user #m :Cannot join channel (+i)"
    op.send("MODE #m -i")
    op.until("MODE #m -i")
    user.send("JOIN #m")
    assert user.numeric("475") == ":mx.test.example 475 user #m :Cannot join channel (+k)"
    user.join("#m sesame")
    op.send("MODE #m +l 2")
    op.until("+l")
    third.send("JOIN #m sesame")
    assert third.numeric("471") == ":mx.test.example 471 third #m :Cannot join channel (+l)"
    op.send("MODE #m +o user")
    assert user.until("MODE #m +o")[-1].startswith(":op!u@127.0.0.1 MODE #m +o")
    op.send("MODE #m +v user")
    user.until("MODE #m +v")
    op.send("NAMES #m")
    assert op.numeric("353") == ":mx.test.example 353 op = #m :@op @user"
    third.send("CAP REQ :multi-prefix")
    third.until(" ACK ")
    third.send("NAMES #m")
    assert third.numeric("353") == ":mx.test.example 353 third = #m :@op @+user"
    op.send("MODE #m -lk *")
    op.until("MODE #m -lk")
    op.send("MODE #m")
    assert op.numeric("324") == ":mx.test.example 324 op #m :+nt"
    op.send("MODE #m +z")
    assert op.numeric("472") == ":mx.test.example 472 op z :is unknown mode char to me"
    user.send("MODE user +i")
    assert user.until("MODE user")[-1] == ":user!u@127.0.0.1 MODE user +i"
    user.send("MODE user")
    assert user.numeric("221") == ":mx.test.example 221 user :+i"
    third.send("WHO *")
    who = third.until(" 315 ")
    assert not any(" user " in l and " 352 " in l for l in who), who
    user.send("MODE op -o")
    assert user.numeric("502") == ":mx.test.example 502 user :Cant change mode for other users"


def test_kick_and_invite(client):
    op, user = client(), client()
    op.register("op")
    user.register("user")
    op.join("#k")
    user.join("#k")
    user.send("KICK #k op")
    assert user.numeric("482") == ":mx.test.example 482 user #k :You're not channel operator"
    op.send("KICK #k user :too loud")
    assert user.until("KICK")[-1] == ":op!u@127.0.0.1 KICK #k user :too loud"
    assert op.until("KICK")[-1] == ":op!u@127.0.0.1 KICK #k user :too loud"
    op.send("MODE #k +i")
    op.until("MODE #k +i")
    user.send("JOIN #k")
    user.numeric("473")
    op.send("INVITE user #k")
    assert op.numeric("341") == ":mx.test.example 341 op user :#k"
    assert user.until("INVITE")[-1] == ":op!u@127.0.0.1 INVITE user #k"
    user.join("#k")
    op.send("INVITE ghost #k")
    assert op.numeric("401") == ":mx.test.example 401 op ghost :No such nick/channel"
    op.send("INVITE user #k")
    assert op.numeric("443") == ":mx.test.example 443 op user #k :is already on channel"


def test_private_messages_away_and_whois(client):
    a, b = client(), client()
    a.register("amy")
    b.register("bea")
    a.send("PRIVMSG bea :hello bea")
    assert b.until("PRIVMSG")[-1] == ":amy!u@127.0.0.1 PRIVMSG bea :hello bea"
    b.send("AWAY :at lunch")
    assert b.numeric("306") == ":mx.test.example 306 bea :You have been marked as being away"
    a.send("PRIVMSG bea :are you there")
    assert a.numeric("301") == ":mx.test.example 301 amy bea :at lunch"
    b.join("#w")
    a.send("WHOIS bea")
    whois = a.until(" 318 ")
    assert whois[0] == ":mx.test.example 311 amy bea u 127.0.0.1 * :Real bea"
    assert ":mx.test.example 319 amy bea :#w" in whois
    assert ":mx.test.example 301 amy bea :at lunch" in whois
    assert any(" 312 amy bea mx.test.example " in l for l in whois)
    b.send("AWAY")
    assert b.numeric("305") == ":mx.test.example 305 bea :You are no longer marked as being away"
    a.send("PRIVMSG nobody :hi")
    assert a.numeric("401") == ":mx.test.example 401 amy nobody :No such nick/channel"
    a.send("WHOIS nobody")
    assert a.numeric("401") == ":mx.test.example 401 amy nobody :No such nick/channel"
    a.numeric("318")


def test_list_who_lusers_and_motd(client):
    a, b = client(), client()
    a.register("lister")
    b.register("other")
    a.join("#one")
    a.send("TOPIC #one :first room")
    a.until("TOPIC")
    b.join("#one")
    a.until("JOIN #one")
    b.join("#two")
    a.send("LIST")
    listing = a.until(" 323 ")
    assert listing[0] == ":mx.test.example 321 lister Channel :Users  Name"
    assert ":mx.test.example 322 lister #one 2 :first room" in listing
    assert ":mx.test.example 322 lister #two 1 :" in listing
    a.send("LIST #two")
    assert [l for l in a.until(" 323 ") if " 322 " in l] == [":mx.test.example 322 lister #two 1 :"]
    a.send("WHO #one")
    who = a.until(" 315 ")
    assert who == [
        ":mx.test.example 352 lister #one u 127.0.0.1 mx.test.example lister H@ :0 Real lister",
        ":mx.test.example 352 lister #one u 127.0.0.1 mx.test.example other H :0 Real other",
        ":mx.test.example 315 lister #one :End of WHO list",
    ]
    a.send("LUSERS")
    lusers = a.until(" 266 ")
    assert lusers[0] == ":mx.test.example 251 lister :There are 2 users and 0 invisible on 1 servers"
    assert ":mx.test.example 254 lister 2 :channels formed" in lusers
    a.send("MOTD")
    motd = a.until(" 376 ")
    assert motd[0].startswith(":mx.test.example 375 lister :- mx.test.example Message of the day")
    assert any(" 372 lister :- " in l for l in motd)


def test_motd_can_be_empty(make_server):
    server = make_server(settings={"irc": {"motd": ""}}, listeners=LISTENERS)
    c = Irc(server.port("irc"))
    lines = c.register("nomotd")
    assert lines[-1] == ":mx.test.example 422 nomotd :MOTD File is missing"


def test_echo_message_server_time_and_msgid(client):
    a, b = client(), client()
    a.register("echo", caps="echo-message server-time message-tags")
    b.register("plain")
    a.join("#e")
    b.join("#e")
    a.until("JOIN #e")
    a.send("PRIVMSG #e :echoed")
    echo = a.until("PRIVMSG #e")[-1]
    t = tags(echo)
    assert t["time"].endswith("Z") and len(t["time"]) == 24, t
    assert len(t["msgid"]) == 26, t
    assert echo.endswith(" :echo!u@127.0.0.1 PRIVMSG #e :echoed")
    plain = b.until("PRIVMSG #e")[-1]
    assert plain == ":echo!u@127.0.0.1 PRIVMSG #e :echoed", "no tags without the capabilities"
    b.send("PRIVMSG #e :no echo for me")
    got = a.until("no echo for me")[-1]
    assert got.endswith(":plain!u@127.0.0.1 PRIVMSG #e :no echo for me")
    b.send("PING :after")
    assert "no echo for me" not in " ".join(b.until("PONG")), "no echo without echo-message"
    a.send("PRIVMSG plain :direct")
    assert a.until("PRIVMSG plain")[-1].endswith(":echo!u@127.0.0.1 PRIVMSG plain :direct")


def test_chathistory_reloads_messages_in_delivery_order(client):
    a, b = client(), client()
    caps = "batch server-time message-tags draft/chathistory"
    a.register("histo", caps=caps)
    b.register("talker")
    a.join("#hist")
    b.join("#hist")
    sent = [f"message {i}" for i in range(1, 11)]
    for text in sent:
        b.send(f"PRIVMSG #hist :{text}")
    live = [body(l) for l in a.until("message 10") if "PRIVMSG #hist" in l]
    assert live == sent
    a.send("CHATHISTORY LATEST #hist * 100")
    lines = a.until(lambda l: l.startswith(":mx.test.example BATCH -"))
    start, end = lines[0], lines[-1]
    assert start.startswith(":mx.test.example BATCH +") and start.endswith(" chathistory #hist")
    batch = start.split(" ")[2][1:]
    assert end == f":mx.test.example BATCH -{batch}"
    history = [l for l in lines if "PRIVMSG #hist" in l]
    assert [body(l) for l in history] == sent, "history is in delivery order"
    for line in history:
        t = tags(line)
        assert t["batch"] == batch and len(t["msgid"]) == 26 and t["time"].endswith("Z")
    ids = [tags(l)["msgid"] for l in history]
    a.send(f"CHATHISTORY BEFORE #hist msgid={ids[5]} 3")
    page = a.until(lambda l: l.startswith(":mx.test.example BATCH -"))
    assert [body(l) for l in page if "PRIVMSG" in l] == ["message 3", "message 4", "message 5"]
    a.send(f"CHATHISTORY AFTER #hist msgid={ids[7]} 5")
    page = a.until(lambda l: l.startswith(":mx.test.example BATCH -"))
    assert [body(l) for l in page if "PRIVMSG" in l] == ["message 9", "message 10"]
    a.send(f"CHATHISTORY BETWEEN #hist msgid={ids[1]} msgid={ids[4]} 10")
    page = a.until(lambda l: l.startswith(":mx.test.example BATCH -"))
    assert [body(l) for l in page if "PRIVMSG" in l] == ["message 3", "message 4"]
    first_time = tags(history[0])["time"]
    a.send(f"CHATHISTORY BEFORE #hist timestamp={first_time} 10")
    page = a.until(lambda l: l.startswith(":mx.test.example BATCH -"))
    assert [l for l in page if "PRIVMSG" in l] == []
    # A reconnecting client reloads the same history.
    a.send("QUIT")
    a.closed()
    c = client()
    c.register("histo2", caps=caps)
    c.join("#hist")
    c.send("CHATHISTORY LATEST #hist * 4")
    page = c.until(lambda l: l.startswith(":mx.test.example BATCH -"))
    assert [body(l) for l in page if "PRIVMSG" in l] == sent[-4:]
    c.send("CHATHISTORY LATEST #hist * 0")
    assert c.until("FAIL")[-1] == ":mx.test.example FAIL CHATHISTORY INVALID_PARAMS LATEST 0 :Invalid limit"


def test_oversized_input_gets_417_and_the_connection_goes_on(client):
    c = client()
    c.register("big")
    c.send("PRIVMSG #x :" + "a" * 600)
    assert c.numeric("417") == ":mx.test.example 417 big :Input line was too long"
    c.send("@+example/tag=" + "v" * 3000 + " PING :tagged")
    assert c.until("PONG")[-1] == ":mx.test.example PONG mx.test.example :tagged"
    c.send("@+example/tag=" + "v" * 5000 + " PING :too many tags")
    assert c.numeric("417") == ":mx.test.example 417 big :Input line was too long"
    c.send("PING :still here")
    assert c.until("PONG")[-1].endswith(":still here")


def test_invalid_utf8_is_replaced_with_u_fffd(client):
    a, b = client(), client()
    a.register("utf")
    b.register("reader")
    a.join("#u")
    b.join("#u")
    a.send(b"PRIVMSG #u :caf\xe9 ok")
    assert b.until("PRIVMSG")[-1] == ":utf!u@127.0.0.1 PRIVMSG #u :caf\ufffd ok"


def test_a_flooding_client_is_disconnected_with_excess_flood(make_server):
    server = make_server(settings={"irc": {"flood_lines_per_sec": 1, "flood_burst": 10}}, listeners=LISTENERS)
    watcher = Irc(server.port("irc"))
    watcher.register("watcher")
    watcher.join("#f")
    flooder = Irc(server.port("irc"))
    flooder.register("flooder")
    flooder.join("#f")
    for i in range(40):
        try:
            flooder.send(f"PRIVMSG #f :spam {i}")
        except OSError:
            break
    lines = flooder.closed()
    assert lines[-1] == "ERROR :Closing Link: 127.0.0.1 (Excess Flood)"
    assert watcher.until("QUIT")[-1] == ":flooder!u@127.0.0.1 QUIT :Excess Flood"


def test_a_silent_client_is_pinged_then_dropped(make_server):
    server = make_server(settings={"irc": {"ping_interval_secs": 1, "ping_timeout_secs": 1}}, listeners=LISTENERS)
    c = Irc(server.port("irc"))
    c.register("sleepy")
    assert c.until("PING")[-1] == "PING mx.test.example"
    assert c.closed()[-1] == "ERROR :Closing Link: 127.0.0.1 (Ping timeout: 1 seconds)"
    awake = Irc(server.port("irc"))
    awake.register("awake")
    token = body(awake.until("PING")[-1])
    awake.send(f"PONG :{token}")
    assert awake.until("PING", timeout=5)[-1] == "PING mx.test.example", "still connected after PONG"


def test_tls_port_serves_irc_and_whois_says_secure(client):
    secure = client(tls=True)
    secure.register("secure", sasl=("cis505", DEMO_PASSWORD))
    plain = client()
    plain.register("plain")
    plain.send("WHOIS secure")
    whois = plain.until(" 318 ")
    assert ":mx.test.example 671 plain secure :is using a secure connection" in whois


def test_an_irc_message_reaches_a_line_protocol_client_and_back(server, client):
    irc = client()
    irc.register("ircuser")
    irc.join("#g")
    line = socket.create_connection(("127.0.0.1", server.port("line")), timeout=TIMEOUT)
    reader = line.makefile("rb")
    line.sendall(b"JOIN g liner\n")
    assert reader.readline() == b"liner has joined\n"
    assert irc.until("JOIN #g")[-1] == ":liner!line@127.0.0.1 JOIN #g"
    irc.send("PRIVMSG #g :hello from irc")
    assert reader.readline() == b"ircuser: hello from irc\n"
    line.sendall(b"hello from line\n")
    assert irc.until("PRIVMSG #g")[-1] == ":liner!line@127.0.0.1 PRIVMSG #g :hello from line"
    reader.close()
    line.close()
    assert irc.until("QUIT")[-1] == ":liner!line@127.0.0.1 QUIT :Connection closed"


def test_line_protocol_names_that_are_not_nicks_are_sanitized(server, client):
    irc = client()
    irc.register("viewer")
    irc.join("#s")
    line = socket.create_connection(("127.0.0.1", server.port("line")), timeout=TIMEOUT)
    reader = line.makefile("rb")
    line.sendall("JOIN s 9zoë!\n".encode())
    reader.readline()
    assert irc.until("JOIN #s")[-1] == ":_9zo__!line@127.0.0.1 JOIN #s"
    irc.send("NAMES #s")
    assert irc.numeric("353") == ":mx.test.example 353 viewer = #s :_9zo__ @viewer"
    reader.close()
    line.close()


def test_the_irc_library_client_registers_joins_and_talks(server, client):
    irc_client = pytest.importorskip("irc.client")
    watcher = client()
    watcher.register("watcher")
    watcher.join("#lib")
    reactor = irc_client.Reactor()
    connection = reactor.server().connect("127.0.0.1", server.port("irc"), "libbot")
    got = {"welcome": False, "joined": False, "pubmsg": []}

    def on_welcome(conn, event):
        got["welcome"] = True
        conn.join("#lib")

    def on_join(conn, event):
        if event.source.nick == "libbot":
            got["joined"] = True
            conn.privmsg("#lib", "hello from the irc library")

    def on_pubmsg(conn, event):
        got["pubmsg"].append((event.source.nick, event.arguments[0]))

    connection.add_global_handler("welcome", on_welcome)
    connection.add_global_handler("join", on_join)
    connection.add_global_handler("pubmsg", on_pubmsg)

    def process():
        reactor.process_once(0.05)
        return got["joined"]

    wait_until(process, TIMEOUT, "the library to join")
    assert watcher.until("PRIVMSG #lib")[-1] == ":libbot!libbot@127.0.0.1 PRIVMSG #lib :hello from the irc library"
    watcher.send("PRIVMSG #lib :hello library")

    def answered():
        reactor.process_once(0.05)
        return got["pubmsg"]

    assert wait_until(answered, TIMEOUT, "the library to receive") == [("watcher", "hello library")]
    connection.quit("done")
    assert watcher.until("QUIT")[-1] == ":libbot!libbot@127.0.0.1 QUIT :Quit: done"
    connection.close()


def weechat_binary() -> str | None:
    path = shutil.which("weechat-headless")
    if path is None and os.environ.get("CI"):
        pytest.fail("weechat-headless is missing (.ci/run installs it)")
    return path


def test_weechat_logs_in_with_sasl_joins_and_talks(server, client, tmp_path):
    weechat = weechat_binary()
    if weechat is None:
        pytest.skip("weechat-headless is not installed")
    watcher = client()
    watcher.register("watcher")
    watcher.join("#wee")
    home = tmp_path / "weechat"
    home.mkdir()
    port = server.port("irc")
    commands = "; ".join([
        "/set logger.file.flush_delay 0",
        f"/server add t 127.0.0.1/{port} -notls -nicks=wee -username=wee -realname=WeeChat "
        f"-sasl_mechanism=plain -sasl_username=ta -sasl_password={DEMO_PASSWORD} -anti_flood_prio_high=0",
        '/set irc.server.t.command "/join #wee\\;/msg #wee hello from weechat"',
        "/connect t",
    ])
    proc = subprocess.Popen([weechat, "-d", str(home), "-r", commands], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        joined = watcher.until("JOIN #wee", timeout=20)[-1]
        assert joined == ":wee!wee@127.0.0.1 JOIN #wee"
        assert watcher.until("PRIVMSG #wee")[-1] == ":wee!wee@127.0.0.1 PRIVMSG #wee :hello from weechat"
        watcher.send("WHOIS wee")
        assert watcher.numeric("330") == f":mx.test.example 330 watcher wee ta@{DEMO_DOMAIN} :is logged in as"
        watcher.send("PRIVMSG #wee :hello weechat")
        log = home / "logs" / "irc.t.#wee.weechatlog"

        def logged():
            return log.exists() and "hello weechat" in log.read_text(errors="replace")

        wait_until(logged, 20, "WeeChat to log the reply")
        assert "\twatcher\thello weechat" in log.read_text() or "@watcher\thello weechat" in log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert watcher.until("QUIT")[-1].startswith(":wee!wee@127.0.0.1 QUIT")
