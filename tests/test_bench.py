"""Smoke runs of every `tidings bench` load against a tidings server, so the load generators
(and the bench/ scripts built on them) cannot rot: each runs about a second with tiny parameters,
and its --json report must parse and show non-zero throughput."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import DEMO_DOMAIN, binary

TA = f"ta@{DEMO_DOMAIN}"
CIS = f"cis505@{DEMO_DOMAIN}"
LISTENERS = [("smtp", "none"), ("pop3", "none"), ("imap", "none"), ("irc", "none"), ("line", "none"),
             ("http", "none")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("bench"), settings={"irc": {"flood_lines_per_sec": 0},
                                                          "line": {"flood_lines_per_sec": 0}},
               listeners=LISTENERS).start()
    yield s
    s.stop()


def bench(*args: str) -> dict:
    result = subprocess.run([str(binary()), "bench", "--json", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["operations"] > 0 and report["per_sec"] > 0, report
    lat = report.get("latency_ms")
    if lat is not None:
        assert lat["count"] > 0 and 0 < lat["p50"] <= lat["p99"] <= lat["max"], report
    return report


def addr(server, service: str) -> str:
    return f"127.0.0.1:{server.port(service)}"


def test_smtp_closed_and_open_loop(server):
    r = bench("smtp", "--server", addr(server, "smtp"), "--connections", "3", "--duration", "1", "--size", "2000")
    assert r["load"] == "smtp" and r["pipelining"]
    r = bench("smtp", "--server", addr(server, "smtp"), "--connections", "3", "--duration", "1", "--rate", "30",
              "--no-pipelining", "--corpus", "tests/corpus/mail", "--to", TA, "--to", CIS)
    assert r["open_loop_rate"] == 30 and r["operations"] <= 31


def test_fill_fetch_and_pop3(server):
    bench("fill", "--server", addr(server, "imap"), "--user", TA, "--user", CIS, "--messages", "10", "--size", "3000")
    for mode in ("read", "login", "mix"):
        r = bench("fetch", "--server", addr(server, "imap"), "--mode", mode, "--connections", "2", "--duration", "1")
        assert r["mode"] == mode
    for mode in ("read", "login"):
        r = bench("pop3", "--server", addr(server, "pop3"), "--mode", mode, "--connections", "2",
                  "--user", TA, "--user", CIS, "--duration", "1")
        assert r["mode"] == mode


def test_irc_fanout_and_idle(server):
    r = bench("irc", "--server", addr(server, "irc"), "--connections", "20", "--rooms", "2", "--rate", "2",
              "--duration", "1", "--pid", str(server.pid))
    assert r["missing"] == 0 and r["delivered"] == r["expected"] > 0
    bench("fanout", "--server", addr(server, "line"), "--members", "10", "--messages", "3")
    r = bench("idle", "--irc", "--server", addr(server, "irc"), "--pid", str(server.pid), "--connections", "20")
    assert r["connections"] == 20


def test_ws_fanout(server):
    r = bench("ws", "--server", addr(server, "http"), "--connections", "20", "--rooms", "2", "--rate", "2",
              "--duration", "1")
    assert r["load"] == "ws" and r["missing"] == 0 and r["delivered"] == r["expected"] > 0
    # Every member of a room (10 here) gets each message, its sender included.
    assert r["expected"] == 10 * r["sent"], r
    # Past the server's default request limit (10 a second per socket) the load stops and says why.
    result = subprocess.run([str(binary()), "bench", "ws", "--server", addr(server, "http"), "--connections", "2",
                             "--rooms", "1", "--rate", "50", "--duration", "1"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "flood_requests_per_sec" in result.stderr, result.stderr
