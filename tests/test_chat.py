"""Chat across front-ends, against the real binary: the group-chat line protocol (PROTOCOLS.md §1)
and one room reached from the line protocol, the classic UDP protocol and the WebSocket API; order
and history; flood, oversized input and slow consumers; history across restarts.

The IRC front-end's own behaviour is tested in test_irc.py; here it is one of the four.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time

import pytest

from conftest import wait_until
from test_irc import Irc, body
from test_udp import UdpClient
from test_ws import Ws

TIMEOUT = 10
LISTENERS = [("line", "none"), ("http", "none"), ("irc", "none")]


class Member:
    """A line-protocol client: `\\n`-terminated lines, every read bounded by a timeout."""

    def __init__(self, port: int, first: str | bytes | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        if first is not None:
            self.send(first)

    def send(self, data: str | bytes):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self, timeout: float = TIMEOUT) -> str:
        """One line without its `\\n`; '' when the server closed first."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest.decode("utf-8", "replace")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8")

    def expect(self, wanted: str, timeout: float = TIMEOUT) -> list[str]:
        """Reads until `wanted` arrives; returns the lines before it."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            if line == wanted:
                return before
            if line == "" and not self.buf:
                raise AssertionError(f"closed before {wanted!r}; got {before}")
            before.append(line)

    def closed(self, timeout: float = TIMEOUT) -> list[str]:
        """Reads until the server closes; returns the lines it sent first."""
        lines = []
        self.sock.settimeout(timeout)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            self.buf += chunk
        lines = [l.decode("utf-8", "replace") for l in self.buf.split(b"\n") if l]
        self.buf = b""
        return lines

    def close(self):
        self.sock.close()


def text_event(ws: Ws, text: str) -> dict:
    """The `message` event carrying `text`."""
    return ws.event("message", where=lambda e: e["message"]["text"] == text)["message"]


@pytest.fixture
def node(make_server):
    return make_server(listeners=LISTENERS)


def test_join_broadcasts_reach_everyone_including_the_newcomer(node):
    port = node.port("line")
    tim = Member(port, "JOIN cooking tim\n")
    assert tim.line() == "tim has joined"
    ann = Member(port, "JOIN cooking ann\r\n")  # a CR before the LF is dropped
    assert ann.line() == "ann has joined"
    assert tim.line() == "ann has joined"
    tim.send("hello, all\n")
    assert tim.line() == "tim: hello, all"
    assert ann.line() == "tim: hello, all"
    # Another group hears nothing of it.
    bob = Member(port, "JOIN gardening bob\n")
    assert bob.line() == "bob has joined"
    ann.send("anyone?\n")
    assert tim.line() == "ann: anyone?"
    bob.send("me\n")
    assert bob.line() == "bob: me"
    assert ann.line() == "ann: anyone?"


def test_a_closed_or_reset_connection_is_announced_as_left(node):
    port = node.port("line")
    stay = Member(port, "JOIN g stay\n")
    stay.expect("stay has joined")
    polite = Member(port, "JOIN g polite\n")
    stay.expect("polite has joined")
    polite.close()
    stay.expect("polite has left")
    rude = Member(port, "JOIN g rude\n")
    stay.expect("rude has joined")
    # SO_LINGER 0: close sends a reset, as a killed terminal's connection may.
    rude.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    rude.close()
    stay.expect("rude has left")


@pytest.mark.parametrize("first", [
    b"JoiN cooking tim\n", b"hello\n", b"JOIN cooking\n", b"JOIN cooking tim extra\n", b"JOIN\n", b"\n",
    b"join cooking tim\n",
])
def test_an_invalid_first_line_closes_the_connection(node, first):
    member = Member(node.port("line"), first)
    assert member.closed() == []
    # The server is fine and the room was not joined under that name.
    other = Member(node.port("line"), "JOIN cooking ok\n")
    assert other.line() == "ok has joined"


def test_an_over_long_line_and_flooding_get_a_reason_and_a_close(make_server):
    node = make_server(listeners=LISTENERS, settings={"line": {"line_bytes_max": 100, "flood_burst": 5,
                                                                "flood_lines_per_sec": 1}})
    port = node.port("line")
    watcher = Member(port, "JOIN g watcher\n")
    watcher.expect("watcher has joined")
    long = Member(port, "JOIN g long\n")
    long.expect("long has joined")
    long.send("x" * 5000 + "\n")
    assert long.closed() == ["error: line too long"]
    watcher.expect("long has left")
    flood = Member(port, "JOIN g flood\n")
    flood.expect("flood has joined")
    flood.send("".join(f"line {i}\n" for i in range(50)))
    lines = flood.closed()
    assert lines[-1] == "error: Excess Flood", lines
    # Only the burst got through (the JOIN took one token).
    assert len([l for l in lines if l.startswith("flood: line")]) == 4, lines
    watcher.expect("flood has left")
    assert node.alive()


def test_a_slow_consumer_is_dropped_and_memory_stays_bounded(make_server):
    node = make_server(listeners=LISTENERS, settings={"chat": {"outbox_events_max": 64},
                                                       "line": {"flood_lines_per_sec": 0}})
    port = node.port("line")
    slow = Member(port, "JOIN g slow\n")
    slow.expect("slow has joined")
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sender = Member(port, "JOIN g sender\n")
    sender.expect("sender has joined")
    rss_before = node.rss_kib()
    text = "y" * 3000
    # The slow member reads nothing: once the kernel buffers are full, its outbox fills and the
    # server drops it instead of queueing more.
    dropped = False
    for i in range(5000):
        sender.send(f"{i} {text}\n")
        dropped = dropped or "slow has left" in sender.expect(f"sender: {i} {text}")
        if dropped:
            break
    assert dropped, "the slow member was never dropped"
    assert node.rss_kib() - rss_before < 64 * 1024, "the server buffered a slow consumer's backlog"
    # Dropped soon after its outbox overflowed: what the kernel buffers held (a few MiB) and the
    # outbox bound the backlog, not the messages sent.
    assert i < 3000, i
    assert node.alive()


def test_two_thousand_members_of_one_room_each_receive_the_message(make_server):
    members = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < members + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    node = make_server(listeners=LISTENERS, settings={"chat": {"connections_per_ip_max": members + 10}})
    port = node.port("line")
    selector = selectors.DefaultSelector()
    socks = []
    try:
        for i in range(members):
            sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            sock.sendall(f"JOIN crowd m{i}\n".encode())
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, i)
            socks.append(sock)
        buffers = [b""] * members

        def pump(wanted: list[bytes]):
            """Reads until member i has received wanted[i]; each buffer is checked as it grows."""
            missing = set(range(members))
            deadline = time.monotonic() + 120
            while missing:
                assert time.monotonic() < deadline, f"timed out; {len(missing)} members lack it"
                for key, _ in selector.select(timeout=1):
                    data = key.fileobj.recv(1 << 16)
                    assert data, f"member {key.data} was disconnected"
                    buffers[key.data] += data
                    if wanted[key.data] in buffers[key.data]:
                        missing.discard(key.data)

        # Each member is in the room once it has seen its own join (joins run concurrently).
        pump([f"m{i} has joined\n".encode() for i in range(members)])
        sender = Member(port, "JOIN crowd sender\n")
        sender.expect("sender has joined")
        sender.send("one message for everyone\n")
        sender.expect("sender: one message for everyone")
        wanted = b"sender: one message for everyone\n"
        pump([wanted] * members)
        assert all(b.count(wanted) == 1 for b in buffers)
    finally:
        for sock in socks:
            sock.close()


def test_a_room_is_one_room_across_all_four_front_ends_and_history_is_delivery_order(make_server):
    node = make_server(listeners=LISTENERS, settings={"line": {"flood_lines_per_sec": 0},
                                                       "web": {"flood_requests_per_sec": 0},
                                                       "irc": {"flood_lines_per_sec": 0}})
    line = Member(node.port("line"), "JOIN 3 liner\n")
    line.expect("liner has joined")
    udp = UdpClient(node.udp_address)
    assert udp.ask("/nick udper") == "+OK Nickname set to 'udper'"
    assert udp.ask("/join 3") == "+OK You are now in chat room #3"
    irc = Irc(node.port("irc"))
    irc.register("ircer", caps="echo-message")
    irc.join("#3")
    line.expect("ircer has joined")
    with Ws(node.port("http")) as ws:
        ws.login("ta")
        ws.ok("join", room="#3")
        line.expect("ta has joined")
        irc_privmsg = lambda text: (lambda l: " PRIVMSG #3 :" in l and body(l) == text)
        # Each front-end sends; every other receives (and the sender its own echo).
        line.send("from the line\n")
        line.expect("liner: from the line")
        assert udp.recv() == "<liner> from the line"
        assert text_event(ws, "from the line")["from"]["nick"] == "liner"
        assert irc.until(irc_privmsg("from the line"))[-1].startswith(":liner!line@")
        udp.send("from udp")
        assert udp.recv() == "<udper> from udp"
        line.expect("udper: from udp")
        assert text_event(ws, "from udp")["from"]["nick"] == "udper"
        assert irc.until(irc_privmsg("from udp"))[-1].startswith(":udper!")
        ws.ok("send", room="#3", text="from the web")
        line.expect("ta: from the web")
        assert udp.recv() == "<ta> from the web"
        assert irc.until(irc_privmsg("from the web"))[-1].startswith(":ta!")
        irc.send("PRIVMSG #3 :from irc")
        irc.until(irc_privmsg("from irc"))
        line.expect("ircer: from irc")
        assert udp.recv() == "<ircer> from irc"
        assert text_event(ws, "from irc")["from"] == {"nick": "ircer", "account": None, "via": "irc"}
        # Many posts from four front-ends at once: everyone sees one order, and history is it.
        for i in range(15):
            line.send(f"l{i}\n")
            udp.send(f"u{i}")
            ws.ws.send(f'{{"type":"send","id":"s{i}","room":"#3","text":"w{i}"}}')
            irc.send(f"PRIVMSG #3 :i{i}")
        numbered = lambda text: text[:1] in "luwi" and text[1:].isdigit()
        seen_line = []
        while len(seen_line) < 60:
            text = line.line().split(": ", 1)[-1]
            if numbered(text):
                seen_line.append(text)
        seen_udp = []
        while len(seen_udp) < 60:
            text = udp.recv().split("> ", 1)[-1]
            if numbered(text):
                seen_udp.append(text)
        seen_ws = []
        while len(seen_ws) < 60:
            text = ws.event("message")["message"]["text"]
            if numbered(text):
                seen_ws.append(text)
        seen_irc = []
        while len(seen_irc) < 60:
            line_ = irc.line()
            if " PRIVMSG #3 :" in line_ and numbered(body(line_)):
                seen_irc.append(body(line_))
        assert seen_line == seen_udp == seen_ws == seen_irc
        history = ws.ok("history", room="#3", limit=100)["messages"]
        texts = [m["text"] for m in history]
        assert texts[:4] == ["from the line", "from udp", "from the web", "from irc"]
        assert texts[4:] == seen_line
        seqs = [m["seq"] for m in history]
        assert seqs == sorted(seqs) and len(set(m["id"] for m in history)) == len(history)
        # IRC's history reload gives the same order.
        irc.send("CAP REQ :batch draft/chathistory server-time message-tags")
        irc.until(" ACK ")
        irc.send("CHATHISTORY LATEST #3 * 100")
        lines = irc.until(lambda l: l.startswith("BATCH -") or " BATCH -" in l)
        assert [body(l) for l in lines if " PRIVMSG #3 :" in l] == texts
    udp.send("/quit")


def test_history_survives_a_restart_and_a_kill_in_delivery_order(make_server):
    node = make_server(listeners=LISTENERS, settings={"line": {"flood_lines_per_sec": 0}})
    member = Member(node.port("line"), "JOIN keep tim\n")
    member.expect("tim has joined")
    for i in range(30):
        member.send(f"before restart {i}\n")
    for i in range(30):
        member.expect(f"tim: before restart {i}")
    member.close()
    assert node.stop() == 0
    node.start()
    member = Member(node.port("line"), "JOIN keep tim\n")
    member.expect("tim has joined")
    for i in range(30):
        member.send(f"before kill {i}\n")
    # Every message echoed to its sender was durable before it was delivered.
    for i in range(30):
        member.expect(f"tim: before kill {i}")
    node.kill9()
    node.start()
    with Ws(node.port("http")) as ws:
        ws.login("ta")
        ws.ok("join", room="#keep")
        history = ws.ok("history", room="#keep", limit=100)["messages"]
    assert [m["text"] for m in history] == [f"before restart {i}" for i in range(30)] + [
        f"before kill {i}" for i in range(30)]
    assert [m["seq"] for m in history] == list(range(1, 61))


def test_one_account_in_rooms_from_several_front_ends_at_once(node):
    irc = Irc(node.port("irc"))
    irc.register("ta", sasl=("ta", "CIS505"))
    irc.join("#both")
    with Ws(node.port("http")) as ws:
        ws.login("ta")
        ws.ok("join", room="#both")
        ws.ok("join", room="#web-only")
        irc.join("#irc-only")
        line = Member(node.port("line"), "JOIN both tim\n")
        line.expect("tim has joined")
        line.send("hello ta, wherever you are\n")
        assert text_event(ws, "hello ta, wherever you are")["from"]["nick"] == "tim"
        irc.until(lambda l: " PRIVMSG #both :" in l and body(l) == "hello ta, wherever you are")
        # The account is one member per connection: both show in the room.
        members = ws.ok("members", room="#both")["members"]
        assert sorted(m["via"] for m in members if m["account"] == "ta@mmsys.upenn.edu") == ["irc", "web"]
        # Leaving on one front-end leaves the other where it is.
        irc.send("PART #both")
        irc.until(lambda l: " PART " in l and "#both" in l)
        ws.ok("send", room="#both", text="still here")
        line.expect("ta: still here")
