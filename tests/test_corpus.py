"""The mail corpus through real clients: every message goes in over SMTP and comes back over POP3
octet for octet, behind exactly the two trace fields the server prepends.

Senders: Python's smtplib and curl (which dot-stuffs and terminates the data itself).
Retrievers: Python's poplib (RETR) and curl's pop3:// (which un-stuffs and strips the terminator).

Which messages the server must refuse is derived from their octets here (never a hard-coded
list): under the default `bare_line_ending = "reject"` a NUL octet, a bare CR or bare LF, or an
over-long line makes the message refused with `550 5.6.0` and nothing stored.
"""

from __future__ import annotations

import poplib
import re
import smtplib
import subprocess
from pathlib import Path

import pytest

from conftest import DEMO_PASSWORD, corpus_files, crlf

RECIPIENT = "ta@mmsys.upenn.edu"
HELO = "corpus.client.example"
TEXT_LINE_BYTES_MAX = 1000  # the server's default, octets including CRLF (RFC 5321 §4.5.3.1.6)

# A CR not followed by LF, or an LF not preceded by CR.
BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# Exactly what the server may prepend: one Return-Path field, then one Received field, which may
# be folded over several lines (continuations start with a space or a tab).
TRACE_PREFIX = re.compile(rb"Return-Path: <([^<>\r\n]*)>\r\nReceived: [^\r\n]+(?:\r\n[ \t][^\r\n]*)*\r\n")


def wire_content(raw: bytes) -> bytes:
    """The message octets as both clients transmit them (before dot-stuffing): line ends
    converted to CRLF by the test, and a final CRLF added by the client when the file lacks one
    (smtplib and curl both do that: the data must end with CRLF before the terminating dot)."""
    data = crlf(raw)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def refusal_reason(wire: bytes) -> str | None:
    """Why the default policy must refuse these transmitted octets, or None if it must accept."""
    if b"\0" in wire:
        return "NUL octet"
    if BARE_LINE_END.search(wire):
        return "bare CR or LF"
    # Line length with its CRLF; the dot a client doubles for transparency does not count.
    if any(len(line) + 2 > TEXT_LINE_BYTES_MAX for line in wire.split(b"\r\n")):
        return "line too long"
    return None


def normalized(wire: bytes) -> bytes:
    """What `bare_line_ending = "normalize"` stores: every bare CR and bare LF becomes CRLF."""
    return BARE_LINE_END.sub(b"\r\n", wire)


def sender_for(path: Path) -> str:
    """A distinct envelope sender per corpus file, so each stored copy names its origin."""
    return f"{path.parent.name}-{path.stem}@corpus.example"


def corpus_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# ----- sending -----


def send_with_smtplib(port: int, files: list[Path]) -> dict[str, tuple[int, bytes]]:
    """Sends every file over one SMTP session; returns {name: (reply code, reply text)}."""
    outcomes = {}
    with smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=30) as smtp:
        for path in files:
            try:
                refused = smtp.sendmail(sender_for(path), [RECIPIENT], crlf(path.read_bytes()))
                assert refused == {}, refused
                outcomes[corpus_name(path)] = (250, b"")
            except smtplib.SMTPDataError as e:
                outcomes[corpus_name(path)] = (e.smtp_code, e.smtp_error)
    return outcomes


def send_with_curl(port: int, files: list[Path], workdir: Path) -> dict[str, tuple[int, bytes]]:
    """Sends every file with its own curl process; returns {name: (code, text)} of the reply curl
    got to the end of the data (read from its verbose trace)."""
    outcomes = {}
    upload = workdir / "upload.eml"
    for path in files:
        upload.write_bytes(crlf(path.read_bytes()))
        result = subprocess.run(
            ["curl", "-sS", "-v", "--max-time", "30", f"smtp://127.0.0.1:{port}/{HELO}",
             "--mail-from", sender_for(path), "--mail-rcpt", RECIPIENT, "--upload-file", str(upload)],
            capture_output=True, timeout=60)
        replies = [line[2:] for line in result.stderr.split(b"\n") if line.startswith(b"< ")]
        starts = [i for i, reply in enumerate(replies) if reply.startswith(b"354")]
        assert starts and len(replies) > starts[0] + 1, \
            f"curl never got a reply to the data of {corpus_name(path)}:\n{result.stderr.decode(errors='replace')}"
        reply = replies[starts[0] + 1].rstrip(b"\r")
        code = int(reply[:3])
        assert (result.returncode == 0) == (code == 250), (corpus_name(path), result.returncode, reply)
        outcomes[corpus_name(path)] = (code, reply[4:])
    return outcomes


# ----- retrieving -----


def retrieve_with_poplib(port: int) -> tuple[list[bytes], list[int], int]:
    """All of the recipient's messages via RETR, the LIST sizes, and the STAT total."""
    pop = poplib.POP3("127.0.0.1", port, timeout=30)
    try:
        pop.user("ta")
        pop.pass_(DEMO_PASSWORD)
        count, total = pop.stat()
        listing = pop.list()[1]
        sizes = []
        for number, entry in enumerate(listing, start=1):
            n, size = entry.split()
            assert int(n) == number
            sizes.append(int(size))
        assert len(sizes) == count
        messages = []
        for number in range(1, count + 1):
            _, lines, octets = pop.retr(number)
            message = b"".join(line + b"\r\n" for line in lines)
            assert octets == len(message), f"poplib counted {octets} octets in message {number}"
            messages.append(message)
    finally:
        pop.quit()
    return messages, sizes, total


def retrieve_with_curl(port: int, count: int, workdir: Path) -> list[bytes]:
    """Messages 1..count via `curl pop3://host/N` (one curl, one POP3 session, URL globbing)."""
    if count == 0:
        return []
    out = workdir / "retrieved"
    out.mkdir()
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "60", "--user", f"ta:{DEMO_PASSWORD}",
         f"pop3://127.0.0.1:{port}/[1-{count}]", "-o", f"{out}/#1.eml"],
        capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return [(out / f"{n}.eml").read_bytes() for n in range(1, count + 1)]


def split_trace(message: bytes, stored_content: bytes) -> bytes:
    """Asserts `message` is the server's trace prefix followed by exactly `stored_content`;
    returns the envelope sender the Return-Path names."""
    assert message.endswith(stored_content), "the stored content differs from what was sent"
    prefix = message[: len(message) - len(stored_content)]
    match = TRACE_PREFIX.fullmatch(prefix)
    assert match, f"prepended fields are not exactly Return-Path + one Received: {prefix!r}"
    assert prefix.count(b"\r\nReceived:") == 1
    return match.group(1)


def check_mailbox(server, expected: dict[str, bytes], workdir: Path):
    """The mailbox holds exactly one copy of each expected message ({sender: stored content}),
    identical over poplib and curl, each sized in STAT and LIST as RETR returns it."""
    messages, sizes, total = retrieve_with_poplib(server.pop3_port)
    assert len(messages) == len(expected)
    assert sizes == [len(m) for m in messages]
    assert total == sum(sizes)
    assert retrieve_with_curl(server.pop3_port, len(messages), workdir) == messages

    by_sender: dict[str, bytes] = {}
    for message in messages:
        match = TRACE_PREFIX.match(message)
        assert match, message[:300]
        sender = match.group(1).decode()
        assert sender in expected, f"a message from <{sender}>, which should not have been stored"
        assert sender not in by_sender, f"<{sender}>'s message was stored twice"
        by_sender[sender] = message
    for sender, content in expected.items():
        assert sender in by_sender, f"<{sender}>'s message was accepted but is not in the mailbox"
        assert split_trace(by_sender[sender], content).decode() == sender


def check_outcomes(outcomes: dict[str, tuple[int, bytes]], must_refuse: dict[str, str]):
    """Every file the policy refuses got 550 5.6.0; every other one got 250."""
    refused = {name for name, (code, _) in outcomes.items() if code != 250}
    assert must_refuse, "the corpus should hold messages the default policy refuses"
    assert refused == set(must_refuse), {name: outcomes[name] for name in refused ^ set(must_refuse)}
    for name in refused:
        code, text = outcomes[name]
        assert code == 550 and text.startswith(b"5.6.0 "), (name, must_refuse[name], code, text)


def run_corpus(server, send, workdir: Path):
    files = corpus_files()
    assert len(files) >= 100
    wires = {corpus_name(p): wire_content(p.read_bytes()) for p in files}
    must_refuse = {name: reason for name, wire in wires.items() if (reason := refusal_reason(wire))}
    # Some accepted messages have lines starting with a dot: the clients' dot-stuffing is exercised.
    assert any(re.search(rb"(^|\r\n)\.", wire) for name, wire in wires.items() if name not in must_refuse)
    outcomes = send(files)
    assert set(outcomes) == set(wires)
    check_outcomes(outcomes, must_refuse)
    expected = {sender_for(p): wires[corpus_name(p)] for p in files if corpus_name(p) not in must_refuse}
    check_mailbox(server, expected, workdir)
    assert server.alive()


def test_derived_refusals_are_the_nul_and_lone_cr_messages():
    wires = {corpus_name(p): wire_content(p.read_bytes()) for p in corpus_files()}
    reasons = {name: reason for name, wire in wires.items() if (reason := refusal_reason(wire))}
    # The derivation finds what the corpus is known to hold (and nothing the harness broke).
    assert reasons.get("thirdparty/005.eml") == "NUL octet"
    assert reasons.get("legacy/049.eml") == "bare CR or LF"


def test_every_corpus_message_sent_with_smtplib_comes_back_byte_exact(server, tmp_path):
    run_corpus(server, lambda files: send_with_smtplib(server.smtp_port, files), tmp_path)


def test_every_corpus_message_sent_with_curl_comes_back_byte_exact(server, tmp_path):
    run_corpus(server, lambda files: send_with_curl(server.smtp_port, files, tmp_path), tmp_path)


def test_normalize_policy_stores_bare_line_ends_as_crlf_but_still_refuses_nul(make_server, tmp_path):
    server = make_server({"smtp": {"bare_line_ending": "normalize"}})
    files = corpus_files()
    wires = {corpus_name(p): wire_content(p.read_bytes()) for p in files}
    must_refuse = {name: "NUL octet" for name, wire in wires.items() if b"\0" in wire}
    changed = {name for name, wire in wires.items() if name not in must_refuse and normalized(wire) != wire}
    assert "legacy/049.eml" in changed and "thirdparty/005.eml" in must_refuse

    outcomes = send_with_smtplib(server.smtp_port, files)
    check_outcomes(outcomes, must_refuse)
    # The normalized messages once more with curl, so they are stored twice.
    by_curl = [p for p in files if corpus_name(p) in changed]
    for path in by_curl:
        outcome = send_with_curl(server.smtp_port, [path], tmp_path)
        assert outcome[corpus_name(path)][0] == 250, outcome
    expected = {sender_for(p): normalized(wires[corpus_name(p)]) for p in files if corpus_name(p) not in must_refuse}
    messages, sizes, _ = retrieve_with_poplib(server.pop3_port)
    assert len(messages) == len(expected) + len(by_curl)
    assert sizes == [len(m) for m in messages]
    assert retrieve_with_curl(server.pop3_port, len(messages), tmp_path) == messages
    copies: dict[str, list[bytes]] = {}
    for message in messages:
        sender = TRACE_PREFIX.match(message).group(1).decode()
        copies.setdefault(sender, []).append(message)
    assert set(copies) == set(expected)
    for sender, content in expected.items():
        name = next(corpus_name(p) for p in files if sender_for(p) == sender)
        assert len(copies[sender]) == (2 if name in changed else 1), name
        for message in copies[sender]:
            split_trace(message, content)
    legacy_049 = copies[sender_for(next(p for p in files if corpus_name(p) == "legacy/049.eml"))][0]
    # Its last octet, a lone CR (then the client's CRLF), is stored as a line of its own.
    assert legacy_049.endswith(b"\r\nend\r\n\r\n\r\n")
    assert BARE_LINE_END.search(legacy_049) is None
