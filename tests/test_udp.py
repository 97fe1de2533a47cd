"""The classic UDP chat protocol (shared/PROTOCOLS.md §2) end to end: `tidings serve` (its UDP chat
server on a free port, from the ready file), `tidings chat-server` on a one-line cluster file, and
`tidings chat-client` driven through its standard input and output.

Every wait is a poll or a read with a bound; nothing sleeps to wait for a server.
"""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import binary, wait_until

HOST = "127.0.0.1"
TIMEOUT = 10
# How long a test listens to be sure that nothing arrives (only for checks of absence).
QUIET_SECS = 0.3


class UdpClient:
    """A raw client of the UDP chat protocol: one socket, one datagram per line."""

    def __init__(self, server: tuple[str, int], bind_port: int = 0):
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, bind_port))
        self.sock.settimeout(TIMEOUT)

    @property
    def name(self) -> str:
        """The name the server gives a client without a nickname: its IP:port."""
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def send(self, data: str | bytes):
        self.sock.sendto(data.encode() if isinstance(data, str) else data, self.server)

    def recv(self, timeout: float = TIMEOUT) -> str:
        self.sock.settimeout(timeout)
        while True:
            data, source = self.sock.recvfrom(65536)
            if source == self.server:
                return data.decode("utf-8", "replace")

    def ask(self, data: str | bytes) -> str:
        self.send(data)
        return self.recv()

    def silent(self) -> bool:
        """Whether nothing arrives for QUIET_SECS."""
        try:
            self.recv(QUIET_SECS)
            return False
        except socket.timeout:
            return True

    def close(self):
        self.sock.close()


class LineChatClient:
    """A client of the group-chat line protocol (PROTOCOLS.md §1): lines end in LF."""

    def __init__(self, port: int, group: str, name: str):
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.buf = b""
        self.send(f"JOIN {group} {name}")
        assert self.line() == f"{name} has joined"

    def send(self, line: str):
        self.sock.sendall(line.encode() + b"\n")

    def line(self) -> str:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed; had {self.buf!r}"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def close(self):
        self.sock.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_udp_server(address: tuple[str, int], proc: subprocess.Popen | None = None):
    """Polls the server with `/part` (answered with -ERR by any live server) until it replies."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((HOST, 0))
    probe.settimeout(0.05)

    def answered():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"chat-server exited with {proc.returncode}")
        probe.sendto(b"/part", address)
        try:
            return probe.recvfrom(65536)[0].startswith(b"-ERR")
        except (socket.timeout, ConnectionRefusedError):
            return False

    try:
        wait_until(answered, 30, f"the UDP chat server on {address}")
        probe.sendto(b"/quit", address)
    finally:
        probe.close()


@pytest.fixture
def chat_node(make_server):
    """`tidings serve` with the UDP chat server and the line protocol, each on a free port."""
    return make_server(demo=False, listeners=[("line", "none")])


@pytest.fixture
def clients():
    """Factory of UdpClients, closed at teardown."""
    made: list[UdpClient] = []

    def make(server: tuple[str, int], **kw) -> UdpClient:
        client = UdpClient(server, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# --- tidings serve --------------------------------------------------------------------------------

def test_the_ready_file_lists_the_udp_chat_server(chat_node):
    host, port = chat_node.udp_address
    assert host == HOST and port > 0
    assert all(service != "udp" for service, _, _ in chat_node.bound), "not a [[listener]]"


def test_an_empty_udp_address_turns_the_udp_chat_server_off(make_server):
    server = make_server({"udp": {"address": ""}}, demo=False, listeners=[("line", "none")])
    assert "udp" not in server.listeners


def test_join_nick_text_and_part_get_the_replies_of_the_protocol(chat_node, clients):
    a, b = clients(chat_node.udp_address), clients(chat_node.udp_address)
    assert a.ask("/join 3") == "+OK You are now in chat room #3"
    assert a.ask("/nick Linh") == "+OK Nickname set to 'Linh'"
    assert b.ask("/join 3") == "+OK You are now in chat room #3"
    a.send("Hi everyone")
    assert a.recv() == "<Linh> Hi everyone", "the sender receives its own message"
    assert b.recv() == "<Linh> Hi everyone"
    b.send("hello")
    expected = f"<{b.name}> hello"
    assert b.recv() == expected, "a client without a nickname is named by its IP:port"
    assert a.recv() == expected
    assert a.ask("/part") == "+OK You have left chat room #3"
    b.send("anyone?")
    assert b.recv() == f"<{b.name}> anyone?"
    assert a.silent(), "a client that left receives nothing from the room"


def test_the_nickname_survives_room_changes_and_the_latest_wins(chat_node, clients):
    a = clients(chat_node.udp_address)
    assert a.ask("/nick first") == "+OK Nickname set to 'first'"
    assert a.ask("/join 1") == "+OK You are now in chat room #1"
    assert a.ask("/part") == "+OK You have left chat room #1"
    assert a.ask("/join 2") == "+OK You are now in chat room #2"
    assert a.ask("x") == "<first> x"
    assert a.ask("/nick second") == "+OK Nickname set to 'second'"
    assert a.ask("y") == "<second> y"


def test_errors_of_the_protocol_are_err_replies(chat_node, clients):
    a = clients(chat_node.udp_address)
    assert a.ask("hello").startswith("-ERR"), "text in no room"
    assert a.ask("/part").startswith("-ERR"), "part in no room"
    for room in ("0", "11", "x", ""):
        assert a.ask(f"/join {room}").startswith("-ERR"), room
    assert a.ask("/JOIN 3").startswith("-ERR"), "commands are case sensitive"
    assert a.ask("/list").startswith("-ERR"), "unknown command"
    assert a.ask("/join 10") == "+OK You are now in chat room #10"
    assert a.ask("/join 4").startswith("-ERR"), "already in a room"
    assert a.ask("x" * 1001) == "-ERR Message longer than 1000 bytes"
    assert a.ask("y" * 1000) == "<" + a.name + "> " + "y" * 1000


def test_invalid_utf8_is_relayed_with_replacement_characters(chat_node, clients):
    a = clients(chat_node.udp_address)
    a.ask("/join 5")
    assert a.ask(b"caf\xe9 ok") == f"<{a.name}> caf\ufffd ok"


def test_quit_makes_the_server_forget_the_client(chat_node, clients):
    a = clients(chat_node.udp_address)
    a.ask("/nick Gone")
    a.ask("/join 3")
    a.send("/quit")
    assert a.silent(), "/quit has no reply"
    # The same address is a stranger now: no room, no nickname.
    assert a.ask("hello").startswith("-ERR")
    assert a.ask("/join 3") == "+OK You are now in chat room #3"
    assert a.ask("hi") == f"<{a.name}> hi"


def test_udp_and_line_protocol_members_of_room_3_see_each_other(chat_node, clients):
    udp = clients(chat_node.udp_address)
    udp.ask("/join 3")
    udp.ask("/nick Linh")
    line = LineChatClient(chat_node.port("line"), "3", "tim")
    try:
        udp.send("Hi tim")
        assert udp.recv() == "<Linh> Hi tim"
        assert line.line() == "Linh: Hi tim"
        line.send("hello Linh")
        assert line.line() == "tim: hello Linh"
        assert udp.recv() == "<tim> hello Linh"
        udp.send("/quit")
        assert line.line() == "Linh has left"
    finally:
        line.close()


def test_a_flooding_client_is_told_and_its_datagrams_dropped(make_server, clients):
    node = make_server({"udp": {"flood_datagrams_per_sec": 0.01, "flood_burst": 3}}, demo=False,
                       listeners=[("line", "none")])
    a, b = clients(node.udp_address), clients(node.udp_address)
    assert a.ask("/join 3") == "+OK You are now in chat room #3"
    assert a.ask("one") == f"<{a.name}> one"
    assert a.ask("two") == f"<{a.name}> two"
    assert a.ask("three").startswith("-ERR"), "over the burst"
    a.send("four")
    assert a.silent(), "dropped without another reply"
    assert b.ask("/join 3") == "+OK You are now in chat room #3", "other clients are served"


def test_an_idle_client_is_forgotten_and_leaves_its_room(make_server, clients):
    node = make_server({"udp": {"idle_timeout_secs": 2}}, demo=False, listeners=[("line", "none")])
    udp = clients(node.udp_address)
    assert udp.ask("/join 3") == "+OK You are now in chat room #3"
    line = LineChatClient(node.port("line"), "3", "watcher")
    try:
        assert line.line() == f"{udp.name} has left"
    finally:
        line.close()


# --- tidings chat-server --------------------------------------------------------------------------

class ChatServer:
    """One `tidings chat-server` process; standard output in stdout.log, errors in server.log."""

    def __init__(self, workdir: Path, cluster_lines: list[str], index: int = 1, *args: str):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.cluster = workdir / "cluster.txt"
        self.cluster.write_text("".join(line + "\n" for line in cluster_lines))
        self.stdout_path = workdir / "stdout.log"
        self.args = [str(binary()), "chat-server", str(self.cluster), str(index), "--data",
                     str(workdir / "data"), *args]
        self.proc: subprocess.Popen | None = None

    def start(self, address: tuple[str, int]) -> "ChatServer":
        with open(self.stdout_path, "wb") as out, open(self.workdir / "server.log", "wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        wait_for_udp_server(address, self.proc)
        return self

    def run_once(self) -> subprocess.CompletedProcess:
        """Runs it expecting it to exit by itself (a refused start)."""
        return subprocess.run(self.args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def chat_servers(tmp_path):
    made: list[ChatServer] = []

    def make(cluster_lines: list[str], index: int = 1, *args: str) -> ChatServer:
        server = ChatServer(tmp_path / f"chat{len(made)}", cluster_lines, index, *args)
        made.append(server)
        return server

    yield make
    for server in made:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=10)


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} S01 (.*)$")


def test_chat_server_serves_its_cluster_file_address_and_logs_each_event_with_v(chat_servers, clients):
    port = free_udp_port()
    server = chat_servers([f"{HOST}:{port}"], 1, "-v", "-o", "total").start((HOST, port))
    a = clients((HOST, port))
    assert a.ask("/join 3") == "+OK You are now in chat room #3"
    assert a.ask("/nick Linh") == "+OK Nickname set to 'Linh'"
    assert a.ask("Hi") == "<Linh> Hi"
    a.send("/quit")

    def events():
        return [m.group(1) for m in map(LOG_LINE.match, server.stdout().splitlines()) if m]

    client = wait_until(lambda: re.search(r"^Client (\d+) is new at " + re.escape(a.name) + "$",
                                          "\n".join(events()), re.M), TIMEOUT, "the client in the event log")
    n = client.group(1)
    wait_until(lambda: f"Client {n} quits" in events(), TIMEOUT, "the quit in the event log")
    logged = events()
    assert logged[0] == f"Server listens on {HOST}:{port} (ordering total, chat rooms #1 to #10)"
    for event in (f"Client {n} joins chat room #3", f'Client {n} sets nickname "Linh"',
                  f'Client {n} posts "Hi" to chat room #3'):
        assert event in logged, (event, logged)
    every_line = server.stdout().splitlines()
    assert all(LOG_LINE.match(line) for line in every_line), every_line
    assert server.stop() == 0


def test_chat_server_binds_the_second_address_and_treats_the_first_as_a_server(chat_servers, clients):
    forward, bind = free_udp_port(), free_udp_port()
    server = chat_servers([f"{HOST}:{forward},{HOST}:{bind}"], 1, "-v").start((HOST, bind))
    peer = clients((HOST, bind), bind_port=forward)
    peer.send("/join 3")
    assert peer.silent(), "a datagram from a server's forwarding address is not a client's"
    wait_until(lambda: "Datagram of 7 octets from server 1" in server.stdout(), TIMEOUT, "the server datagram")
    assert clients((HOST, bind)).ask("/join 3") == "+OK You are now in chat room #3"


@pytest.mark.parametrize("lines, index, args, message", [
    (["127.0.0.1:1"], 2, [], "server index 2 is not in the cluster file"),
    (["127.0.0.1:1"], 0, [], "server index 0 is not in the cluster file"),
    (["localhost:1"], 1, [], "line 1"),
    ([], 1, [], "no server"),
    (["127.0.0.1:1"], 1, ["-o", "sorted"], "ordering mode"),
])
def test_chat_server_refuses_a_bad_cluster_file_index_or_mode(chat_servers, lines, index, args, message):
    result = chat_servers(lines, index, *args).run_once()
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_each_ordering_mode_is_accepted(chat_servers, clients):
    for mode in ("unordered", "fifo", "causal", "total"):
        port = free_udp_port()
        server = chat_servers([f"{HOST}:{port}"], 1, "-o", mode).start((HOST, port))
        assert clients((HOST, port)).ask("/join 1") == "+OK You are now in chat room #1"
        assert server.stop() == 0


# --- tidings chat-client --------------------------------------------------------------------------

class ChatClientProcess:
    """`tidings chat-client` with pipes: lines in, received datagrams out (read with a bound)."""

    def __init__(self, server: tuple[str, int]):
        self.proc = subprocess.Popen([str(binary()), "chat-client", f"{server[0]}:{server[1]}"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def type(self, line: str):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def line(self) -> str | None:
        return self.lines.get(timeout=TIMEOUT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def chat_client():
    made: list[ChatClientProcess] = []

    def make(server: tuple[str, int]) -> ChatClientProcess:
        client = ChatClientProcess(server)
        made.append(client)
        return client

    yield make
    for client in made:
        client.kill()


def test_chat_client_sends_lines_and_prints_datagrams_and_quits_at_end_of_input(chat_node, clients, chat_client):
    client = chat_client(chat_node.udp_address)
    client.type("/join 3")
    assert client.line() == "+OK You are now in chat room #3"
    client.type("/nick Ann")
    assert client.line() == "+OK Nickname set to 'Ann'"
    other = clients(chat_node.udp_address)
    other.ask("/join 3")
    client.type("Hi there")
    assert client.line() == "<Ann> Hi there"
    assert other.recv() == "<Ann> Hi there"
    other.send("welcome")
    assert client.line() == f"<{other.name}> welcome"
    line = LineChatClient(chat_node.port("line"), "3", "tim")
    try:
        client.proc.stdin.close()
        assert client.proc.wait(timeout=TIMEOUT) == 0
        assert client.line() is None
        assert line.line() == "Ann has left", "end of input sent /quit"
    finally:
        line.close()


def test_chat_client_sends_quit_on_ctrl_c(chat_node, chat_client):
    client = chat_client(chat_node.udp_address)
    client.type("/nick Bo")
    assert client.line() == "+OK Nickname set to 'Bo'"
    client.type("/join 7")
    assert client.line() == "+OK You are now in chat room #7"
    line = LineChatClient(chat_node.port("line"), "7", "tim")
    try:
        client.proc.send_signal(signal.SIGINT)
        assert client.proc.wait(timeout=TIMEOUT) == 0
        assert line.line() == "Bo has left"
    finally:
        line.close()


def test_chat_client_against_chat_server(chat_servers, chat_client):
    port = free_udp_port()
    chat_servers([f"{HOST}:{port}"]).start((HOST, port))
    client = chat_client((HOST, port))
    client.type("/join 1")
    assert client.line() == "+OK You are now in chat room #1"
    client.type("/nick Cy")
    assert client.line() == "+OK Nickname set to 'Cy'"
    client.type("ping")
    assert client.line() == "<Cy> ping"
    client.type("/bogus")
    assert client.line().startswith("-ERR")
