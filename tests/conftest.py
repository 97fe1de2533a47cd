"""Shared fixtures for the end-to-end tests: they start the real `tidings` binary.

Every server listens on port 0 (the kernel picks free ports) and reports the bound addresses in
its ready file, which the harness polls with a bound; no test sleeps to wait for a server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Real-world and malformed RFC 5322 messages (tests/corpus/mail/README.md gives their origins).
CORPUS = ROOT / "tests" / "corpus" / "mail"
DEMO_PASSWORD = "CIS505"
DEMO_DOMAIN = "mmsys.upenn.edu"
READY_TIMEOUT_SECS = 30


def binary() -> Path:
    path = Path(os.environ.get("TIDINGS_BIN", ROOT / "target" / "debug" / "tidings"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it first (scripts/test.sh does)")
    return path


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    """Polls `predicate` until it returns a truthy value, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + " }"
    raise TypeError(value)


class Server:
    """One `tidings serve` process on a data directory of its own.

    `settings` maps table names to dicts of keys, e.g. {"smtp": {"message_bytes_max": 4096}};
    they are merged over the test defaults below.
    """

    DEFAULTS = {
        "server": {"hostname": "mx.test.example", "shutdown_grace_secs": 10},
        "auth": {"failure_delay_ms": 50},
        # The UDP chat server would take the fixed port 8000: a free port instead (ready file).
        "udp": {"address": "127.0.0.1:0"},
    }

    def __init__(self, workdir: Path, settings: dict | None = None, demo: bool = True,
                 verbose: bool = False, listeners: list[tuple[str, str]] | None = None):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data = workdir / "data"
        self.config_path = workdir / "tidings.toml"
        self.ready_path = workdir / "ready.toml"
        self.log_path = workdir / "server.log"
        self.demo = demo
        self.verbose = verbose
        self.proc: subprocess.Popen | None = None
        self.listeners: dict[str, tuple[str, int]] = {}
        tables = {k: dict(v) for k, v in self.DEFAULTS.items()}
        for table, keys in (settings or {}).items():
            tables.setdefault(table, {}).update(keys)
        lines = []
        # [udp] goes after the listeners, so that the first `address = "127.0.0.1:0"` in the file is
        # still the first listener's.
        udp = tables.pop("udp", None)
        for table, keys in tables.items():
            lines.append(f"[{table}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in keys.items()]
            lines.append("")
        for service, tls in listeners or [("smtp", "starttls"), ("submission", "starttls"), ("pop3", "starttls")]:
            lines += ["[[listener]]", f'service = "{service}"', 'address = "127.0.0.1:0"', f'tls = "{tls}"', ""]
        if udp is not None:
            lines += ["[udp]"] + [f"{k} = {toml_value(v)}" for k, v in udp.items()] + [""]
        self.config_path.write_text("\n".join(lines))

    def start(self) -> "Server":
        if self.ready_path.exists():
            self.ready_path.unlink()
        args = [str(binary())]
        if self.verbose:
            args.append("-v")
        args += ["serve", "--config", str(self.config_path), "--data", str(self.data),
                 "--ready-file", str(self.ready_path)]
        if self.demo:
            args.append("--demo")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode} at start:\n{self.log()}")
            return self.ready_path.exists()

        wait_until(ready, READY_TIMEOUT_SECS, "the server's ready file")
        info = tomllib.loads(self.ready_path.read_text())
        self.listeners = {}
        self.bound = []
        for entry in info.get("listener", []):
            host, port = entry["address"].rsplit(":", 1)
            self.listeners.setdefault(entry["service"], (host, int(port)))
            self.bound.append((entry["service"], entry["tls"], int(port)))
        if "udp" in info:
            host, port = info["udp"]["address"].rsplit(":", 1)
            self.listeners["udp"] = (host, int(port))
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def port(self, service: str, tls: str | None = None) -> int:
        """The port of the first listener of `service` (with that TLS mode, if given)."""
        if tls is None:
            return self.listeners[service][1]
        return next(port for name, mode, port in self.bound if name == service and mode == tls)

    @property
    def smtp_port(self) -> int:
        return self.port("smtp")

    @property
    def submission_port(self) -> int:
        return self.port("submission")

    @property
    def pop3_port(self) -> int:
        return self.port("pop3")

    @property
    def udp_address(self) -> tuple[str, int]:
        """The UDP chat server's address (`[udp] address` in the ready file)."""
        return self.listeners["udp"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then waits for the exit; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def account(self, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
        """Runs `tidings account ARGS` on this server's data directory."""
        env = dict(os.environ)
        if password is not None:
            env["TIDINGS_PASSWORD"] = password
        return subprocess.run([str(binary()), "account", "--config", str(self.config_path), "--data",
                               str(self.data), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(settings=..., demo=..., verbose=...) starts a server, stopped at teardown."""
    servers: list[Server] = []

    def make(settings: dict | None = None, start: bool = True, name: str | None = None, **kw) -> Server:
        server = Server(tmp_path / (name or f"server{len(servers)}"), settings, **kw)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        if server.alive():
            server.proc.kill()
            server.proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def no_server_panics(tmp_path):
    """After each test (its servers are stopped by then): no server logged a panic."""
    yield
    for log in tmp_path.glob("**/server.log"):
        text = log.read_text(errors="replace")
        assert "panicked" not in text, text[-4000:]


@pytest.fixture
def server(make_server) -> Server:
    """A demo server with the test defaults."""
    return make_server()


class LineClient:
    """A raw line-oriented TCP client for SMTP and POP3 dialogues, every read bounded by a timeout."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes | str):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self) -> bytes:
        """One line without its CRLF; b'' if the server closed first."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def smtp_reply(self) -> tuple[int, list[str]]:
        """One SMTP reply, multi-line joined: (code, [texts])."""
        texts = []
        while True:
            line = self.line().decode("utf-8", "replace")
            if len(line) < 3:
                return (0, texts + [line]) if line else (0, texts)
            texts.append(line[4:])
            if len(line) == 3 or line[3] != "-":
                return int(line[:3]), texts

    def command(self, line: str) -> tuple[int, list[str]]:
        self.send(line + "\r\n")
        return self.smtp_reply()

    def closed(self, timeout: float = 10) -> bool:
        """Whether the server closes the connection within `timeout` (reading and dropping data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def crlf(data: bytes) -> bytes:
    """Line ends converted to CRLF (a lone CR not followed by LF is left alone)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def corpus_files() -> list[Path]:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in ("README.md", "COPYING"))
    assert files, f"no corpus at {CORPUS}"
    return files
