"""IMAP end to end (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1, with LITERAL+, SASL-IR, IDLE,
NAMESPACE, UIDPLUS, MOVE, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS and STATUS=SIZE): real clients
against the real binary over loopback.

Clients: Python's imaplib, the imapclient package (which speaks modified UTF-7 for us), curl's
imap:// URLs, and `Imap`, a raw client that shows the octets (tags, untagged responses, literals).
Mail also arrives over SMTP and is read and deleted over POP3, to show that every protocol sees the
same mailboxes.

Every test states one behaviour. Most run on one shared server, each with an account of its own;
tests that need other settings or a restart start their own server. Abuse tests also check that
another client is served meanwhile or afterwards. Nothing sleeps to wait for the server: reads have
timeouts and waits poll with a bound.
"""

from __future__ import annotations

import base64
import imaplib
import itertools
import os
import poplib
import random
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from conftest import DEMO_PASSWORD, LineClient, Server, corpus_files, crlf, wait_until

HOST = "127.0.0.1"
DOMAIN = "mmsys.upenn.edu"
PASSWORD = "imap-Test-pw-7"
IMAP_LISTENERS = [("smtp", "starttls"), ("submission", "starttls"), ("pop3", "starttls"), ("imap", "starttls"),
                  ("imap", "implicit")]
STANDARD_MAILBOXES = {"INBOX": None, "Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk",
                      "Archive": "\\Archive"}
# A CR not followed by LF, or an LF not preceded by CR: what APPEND stores as CRLF.
BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# A response line that ends by announcing a literal (`~{n}` for BINARY data).
LITERAL_AT_END = re.compile(rb"~?\{(\d+)\}$")


# --- the raw client ---------------------------------------------------------------------------------

@dataclass
class Reply:
    """The responses to one command: the untagged ones (literals inline) and the tagged one."""
    tagged: bytes
    untagged: list[bytes]

    @property
    def status(self) -> str:
        return self.tagged.split(b" ", 2)[1].decode()

    @property
    def code(self) -> str | None:
        match = re.match(rb"\S+ \S+ \[([^\]]*)\]", self.tagged)
        return match.group(1).decode() if match else None

    def __repr__(self) -> str:
        return f"Reply({self.untagged[:20]!r} ... {self.tagged!r})"


class Imap(LineClient):
    """Raw IMAP over a socket: commands with generated tags, responses read whole (a response with
    literals is returned as one bytes value, each literal after its `{n}` CRLF), every read bounded
    by the socket timeout."""

    def __init__(self, port: int, timeout: float = 10, context: ssl.SSLContext | None = None,
                 sock: socket.socket | None = None):
        if sock is None:
            super().__init__(port, timeout=timeout)
        else:
            self.sock, self.buf = sock, b""
        if context is not None:
            self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.tags = itertools.count(1)
        self.greeting = self.response()

    def exactly(self, n: int) -> bytes:
        chunks, have = [self.buf], len(self.buf)
        while have < n:
            chunk = self.sock.recv(max(65536, n - have))
            assert chunk, f"connection closed inside a literal ({have} of {n} octets)"
            chunks.append(chunk)
            have += len(chunk)
        data = b"".join(chunks)
        self.buf = data[n:]
        return data[:n]

    def response(self) -> bytes:
        """One response; b'' when the server closed the connection."""
        data = self.line()
        while match := LITERAL_AT_END.search(data):
            data += b"\r\n" + self.exactly(int(match.group(1)))
            data += self.line()
        return data

    def send_command(self, command: str | bytes) -> str:
        tag = f"t{next(self.tags)}"
        self.send(tag.encode() + b" " + (command.encode() if isinstance(command, str) else command) + b"\r\n")
        return tag

    def finish(self, tag: str) -> Reply:
        untagged = []
        while True:
            line = self.response()
            assert line, f"connection closed before the reply to {tag}; got {untagged[-5:]}"
            if line.startswith(tag.encode() + b" "):
                return Reply(line, untagged)
            untagged.append(line)

    def command(self, command: str | bytes) -> Reply:
        return self.finish(self.send_command(command))

    def ok(self, command: str | bytes) -> list[bytes]:
        reply = self.command(command)
        assert reply.status == "OK", (command if len(command) < 200 else command[:200], reply)
        return reply.untagged

    def login(self, user: str, password: str = PASSWORD) -> "Imap":
        self.ok(f"LOGIN {quote(user)} {quote(password)}")
        return self

    def select(self, mailbox: str = "INBOX") -> list[bytes]:
        return self.ok(f"SELECT {quote(mailbox)}")

    def append(self, mailbox: str, message: bytes, flags: str = "", date: str | None = None,
               sync: bool = False, binary: bool = False) -> Reply:
        """APPEND with a non-synchronizing literal (RFC 7888), or a synchronizing one; a literal8
        (`~{n}`, RFC 3516) when `binary`."""
        head = f"APPEND {quote(mailbox)}" + (f" ({flags})" if flags else "") + (f' "{date}"' if date else "")
        prefix = b" ~" if binary else b" "
        if not sync:
            return self.command(head.encode() + prefix + b"{%d+}\r\n" % len(message) + message)
        tag = self.send_command(head.encode() + prefix + b"{%d}" % len(message))
        go_ahead = self.response()
        if not go_ahead.startswith(b"+"):
            return Reply(go_ahead, [])
        self.send(message + b"\r\n")
        return self.finish(tag)

    def idle(self) -> str:
        tag = self.send_command("IDLE")
        assert self.response().startswith(b"+ "), "IDLE was not accepted"
        return tag

    def done(self, tag: str) -> Reply:
        self.send(b"DONE\r\n")
        return self.finish(tag)

    def __exit__(self, *exc):
        """LOGOUT, without waiting for (or reading) what is still to come."""
        try:
            self.sock.settimeout(2)
            self.send(b"z LOGOUT\r\n")
        except OSError:
            pass
        self.close()


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse(data: bytes) -> list:
    """An IMAP response as nested lists: atoms as str (NIL as None), quoted strings and literals
    as bytes. A `[...]` section inside an atom (BODY[HEADER.FIELDS (A B)]) stays in the atom."""
    stack: list[list] = [[]]
    pos, n = 0, len(data)
    while pos < n:
        c = data[pos]
        if c in b" \r\n":
            pos += 1
        elif c == ord("("):
            stack.append([])
            pos += 1
        elif c == ord(")"):
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif c == ord('"'):
            pos += 1
            out = bytearray()
            while data[pos] != ord('"'):
                if data[pos] == ord("\\"):
                    pos += 1
                out.append(data[pos])
                pos += 1
            pos += 1
            stack[-1].append(bytes(out))
        elif c == ord("{") or (c == ord("~") and data[pos + 1:pos + 2] == b"{"):
            close = data.index(b"}", pos)
            length = int(data[data.index(b"{", pos) + 1:close])
            start = close + 3  # past "}\r\n"
            stack[-1].append(data[start:start + length])
            pos = start + length
        else:
            start, depth = pos, 0
            while pos < n:
                c = data[pos]
                if c == ord("["):
                    depth += 1
                elif c == ord("]"):
                    depth -= 1
                elif depth == 0 and c in b" ()\r\n":
                    break
                pos += 1
            atom = data[start:pos].decode("latin-1")
            stack[-1].append(None if atom.upper() == "NIL" else atom)
    assert len(stack) == 1, f"unbalanced parentheses in {data[:200]!r}"
    return stack[0]


def text(token) -> str:
    """An atom or string token as text."""
    return token.decode("utf-8", "surrogateescape") if isinstance(token, bytes) else token


def fetches(untagged: list[bytes]) -> dict[int, dict[str, object]]:
    """The `* n FETCH (...)` responses: {n: {ITEM: value}} (later responses for n add items)."""
    result: dict[int, dict[str, object]] = {}
    for line in untagged:
        tokens = parse(line)
        if len(tokens) == 4 and tokens[0] == "*" and str(tokens[2]).upper() == "FETCH":
            items = tokens[3]
            data = result.setdefault(int(tokens[1]), {})
            for i in range(0, len(items), 2):
                data[items[i].upper()] = items[i + 1]
    return result


def untagged_numbers(untagged: list[bytes], kind: str) -> list[int]:
    """The numbers of `* n EXISTS` or `* n EXPUNGE` responses, in order."""
    pattern = re.compile(rb"\* (\d+) " + kind.encode() + rb"$")
    return [int(m.group(1)) for line in untagged if (m := pattern.match(line))]


def search_numbers(untagged: list[bytes]) -> list[int]:
    lines = [line for line in untagged if line.startswith(b"* SEARCH")]
    assert len(lines) == 1, untagged
    return [int(n) for n in lines[0].split()[2:]]


def uid_set(text_set: str) -> list[int]:
    """An RFC 4315 uid-set (`1:3,7`) as the list of UIDs, in its order."""
    uids = []
    for piece in text_set.split(","):
        low, _, high = piece.partition(":")
        low, high = int(low), int(high or low)
        step = 1 if high >= low else -1
        uids.extend(range(low, high + step, step))
    return uids


def appenduid(reply: Reply) -> tuple[int, int]:
    match = re.fullmatch(r"APPENDUID (\d+) (\d+)", reply.code or "")
    assert match, reply
    return int(match.group(1)), int(match.group(2))


def copyuid(code: str) -> tuple[int, list[int], list[int]]:
    match = re.fullmatch(r"COPYUID (\d+) (\S+) (\S+)", code)
    assert match, code
    return int(match.group(1)), uid_set(match.group(2)), uid_set(match.group(3))


def status_items(untagged: list[bytes], mailbox: str | None = None) -> dict[str, int]:
    for line in untagged:
        tokens = parse(line)
        if tokens[:2] == ["*", "STATUS"] and (mailbox is None or text(tokens[2]) == mailbox):
            items = tokens[3]
            return {items[i].upper(): int(items[i + 1]) for i in range(0, len(items), 2)}
    raise AssertionError(f"no STATUS for {mailbox} in {untagged}")


def list_entries(untagged: list[bytes], verb: str = "LIST") -> dict[str, list[str]]:
    """{name: [attributes]} of `* LIST` (or LSUB) responses; names decoded as sent."""
    entries = {}
    for line in untagged:
        tokens = parse(line)
        if tokens[:2] == ["*", verb]:
            entries[text(tokens[4])] = [a.lower() for a in tokens[2]]
    return entries


def simulate_expunges(uids: list[int], numbers: list[int]) -> list[int]:
    """The UIDs left after applying `* n EXPUNGE` responses in order (each renumbers the rest)."""
    left = list(uids)
    for n in numbers:
        assert 1 <= n <= len(left), (n, left)
        del left[n - 1]
    return left


# --- other clients and helpers ---------------------------------------------------------------------

def message(subject: str, body: str = "Hello.\r\n", sender: str = "Ann Example <ann@example.org>",
            to: str = "bob@example.net", date: str = "Sat, 21 Nov 2026 09:42:00 +0000", extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{random.getrandbits(64):x}@example.org>\r\n{extra}\r\n{body}").encode()


def deliver(server: Server, address: str, *bodies: bytes):
    """Delivers each body over SMTP (port-25 service), one transaction each; every 250 means stored."""
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10) as smtp:
        for body in bodies:
            assert smtp.sendmail("sender@example.org", [address], body) == {}


def tls_context(server: Server) -> ssl.SSLContext:
    """Trusts exactly the certificate the server generated into its data directory."""
    return ssl.create_default_context(cafile=str(server.data / "tls" / "cert.pem"))


class VerifiedImap4Ssl(imaplib.IMAP4_SSL):
    """imaplib's implicit TLS, connecting to 127.0.0.1 but verifying the name "localhost"."""

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname="localhost")


def imaplib_uid_bodies(data: list) -> dict[int, bytes]:
    """{uid: octets} from imaplib's answer to `UID FETCH ... (UID BODY.PEEK[])`."""
    bodies = {}
    for item in data:
        if isinstance(item, tuple):
            match = re.search(rb"UID (\d+)", item[0])
            assert match, item[0]
            bodies[int(match.group(1))] = item[1]
    return bodies


def still_serving(server: Server):
    """Another client logs in, appends a message and reads it back, then logs out cleanly."""
    assert server.alive(), server.log()[-3000:]
    marker = f"still-serving-{random.getrandbits(64):016x}"
    with Imap(server.port("imap")) as other:
        other.login("instructor", DEMO_PASSWORD)
        uid = appenduid(other.append("INBOX", message(marker)))[1]
        other.ok("EXAMINE INBOX")
        body = fetches(other.ok(f"UID FETCH {uid} BODY.PEEK[]"))
        assert any(marker.encode() in data["BODY[]"] for data in body.values()), body
    assert server.alive()


def corpus_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@dataclass
class Account:
    server: Server
    address: str
    password: str = PASSWORD

    @property
    def port(self) -> int:
        return self.server.port("imap")

    def raw(self, timeout: float = 10) -> Imap:
        return Imap(self.port, timeout=timeout).login(self.address, self.password)

    def imaplib(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(HOST, self.port, timeout=30)
        client.login(self.address, self.password)
        return client

    def imapclient(self) -> IMAPClient:
        client = IMAPClient(HOST, self.port, ssl=False, timeout=30)
        client.login(self.address, self.password)
        return client

    def pop3(self) -> poplib.POP3:
        pop = poplib.POP3(HOST, self.server.pop3_port, timeout=10)
        pop.user(self.address)
        pop.pass_(self.password)
        return pop

    def curl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["curl", "-sS", "--max-time", "60", "--user", f"{self.address}:{self.password}",
                                 *args], capture_output=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result

    def url(self, path: str = "") -> str:
        return f"imap://{HOST}:{self.port}/{path}"

    def deliver(self, *bodies: bytes):
        deliver(self.server, self.address, *bodies)

    def fill(self, mailbox: str, messages: list[bytes], flags: str = "") -> list[int]:
        """APPENDs each message; returns their UIDs."""
        with self.raw() as c:
            return [appenduid(c.append(mailbox, m, flags))[1] for m in messages]


def imap_server(make_server, settings: dict | None = None, **kw) -> Server:
    return make_server(settings, listeners=IMAP_LISTENERS, **kw)


_account_numbers = itertools.count(1)


def new_account(server: Server, password: str = PASSWORD) -> Account:
    address = f"imap{next(_account_numbers)}@{DOMAIN}"
    result = server.account("add", address, password=password)
    assert result.returncode == 0, result.stderr
    return Account(server, address, password)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that need no settings of their own; each test has its own account."""
    server = Server(tmp_path_factory.mktemp("imap-shared"), listeners=IMAP_LISTENERS).start()
    yield server
    assert server.alive(), "the shared server died during the tests"
    assert server.stop() == 0
    assert "panicked" not in server.log(), server.log()[-4000:]


@pytest.fixture
def account(shared) -> Account:
    return new_account(shared)


# --- folders: CREATE, RENAME, DELETE with imaplib, imapclient, curl and a raw client ---------------

def imaplib_folders(client: imaplib.IMAP4) -> dict[str, list[str]]:
    typ, data = client.list()
    assert typ == "OK", data
    return list_entries([b"* LIST " + line for line in data])


def test_imaplib_creates_a_hierarchy_renames_it_with_its_messages_and_deletes_it(account):
    client = account.imaplib()
    assert client.create("Projects/2026/Q1")[0] == "OK"
    folders = imaplib_folders(client)
    # Superior names are created too (RFC 9051 §6.3.4) and say that they have children.
    assert "\\haschildren" in folders["Projects"] and "\\haschildren" in folders["Projects/2026"]
    assert "\\hasnochildren" in folders["Projects/2026/Q1"]
    typ, data = client.append("Projects/2026/Q1", None, None, message("filed away"))
    assert typ == "OK", data

    typ, data = client.delete("Projects")
    assert typ == "NO" and b"[HASCHILDREN]" in data[0], (typ, data)

    assert client.rename("Projects", "Work")[0] == "OK"
    folders = imaplib_folders(client)
    assert not any(name.startswith("Projects") for name in folders), folders
    assert {"Work", "Work/2026", "Work/2026/Q1"} <= set(folders)
    typ, data = client.select("Work/2026/Q1", readonly=True)
    assert (typ, data) == ("OK", [b"1"])
    typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: filed away\r\n\r\n"
    client.close()

    for name in ("Work/2026/Q1", "Work/2026", "Work"):
        assert client.delete(name)[0] == "OK", name
    assert set(imaplib_folders(client)) == set(STANDARD_MAILBOXES)
    assert client.select("Work")[0] == "NO"
    client.logout()


def test_imapclient_creates_renames_and_deletes_a_folder_with_a_non_ascii_name(account):
    client = account.imapclient()
    name = "Reçus/Café ☕"
    client.create_folder(name)
    assert name in [folder[2] for folder in client.list_folders()]
    client.append(name, message("au café"))
    assert client.folder_status(name, ["MESSAGES"])[b"MESSAGES"] == 1

    client.rename_folder(name, "Reçus/Thé")
    names = [folder[2] for folder in client.list_folders()]
    assert "Reçus/Thé" in names and name not in names
    client.select_folder("Reçus/Thé", readonly=True)
    assert client.search(["SUBJECT", "au café"], charset="UTF-8") == [1]
    client.unselect_folder()

    client.delete_folder("Reçus/Thé")
    client.delete_folder("Reçus")
    assert not any(folder[2].startswith("Reçus") for folder in client.list_folders())
    client.logout()


def test_a_raw_imap4rev1_client_sees_non_ascii_names_in_modified_utf7_and_utf8_after_enable(account):
    # The example of RFC 3501 §5.1.3: 台北 and 日本語 in modified UTF-7.
    client = account.imapclient()
    client.create_folder("~peter/mail/台北/日本語")
    client.logout()
    with account.raw() as raw:
        listed = list_entries(raw.ok('LIST "" "~peter/*"'))
        assert set(listed) == {"~peter/mail", "~peter/mail/&U,BTFw-", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}
        assert "~peter/mail/&U,BTFw-/&ZeVnLIqe-" in list_entries(raw.ok('LIST "" "~peter/mail/&U,BTFw-/%"'))
        assert raw.command('SELECT "~peter/mail/&U,BTFw-/&ZeVnLIqe-"').status == "OK"
        raw.ok("UNSELECT")
        assert raw.ok("ENABLE UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT"]
        listed = list_entries(raw.ok('LIST "" "~peter/*"'))
        assert "~peter/mail/台北/日本語" in listed, listed
        assert raw.command('SELECT "~peter/mail/台北/日本語"'.encode()).status == "OK"


def test_curl_lists_the_folders_with_a_custom_list_command(account):
    with account.raw() as raw:
        raw.ok("CREATE Receipts")
    out = account.curl(account.url(), "-X", 'LIST "" *').stdout
    listed = list_entries(out.split(b"\r\n"))
    assert set(listed) == set(STANDARD_MAILBOXES) | {"Receipts"}, listed
    for name, attribute in STANDARD_MAILBOXES.items():
        if attribute:
            assert attribute.lower() in listed[name], (name, listed[name])


def test_curl_uploads_a_message_and_fetches_it_back_by_uid_byte_exact(account, tmp_path):
    content = message("sent by curl", body="line one\r\n.line with a dot\r\n\r\nlast\r\n")
    upload = tmp_path / "upload.eml"
    upload.write_bytes(content)
    account.curl("-T", str(upload), account.url("INBOX"))
    with account.raw() as raw:
        raw.select()
        uids = search_numbers(raw.ok("UID SEARCH ALL"))
    assert len(uids) == 1
    assert account.curl(account.url(f"INBOX;UID={uids[0]}")).stdout == content
    header = account.curl(account.url(f"INBOX;UID={uids[0]}/;SECTION=HEADER.FIELDS%20(SUBJECT)")).stdout
    assert header == b"Subject: sent by curl\r\n\r\n"


def test_curl_runs_custom_commands_to_create_a_folder_flag_and_move_a_message(account):
    uids = account.fill("INBOX", [message("for curl")])
    account.curl(account.url(), "-X", 'CREATE "From curl"')
    out = account.curl(account.url("INBOX"), "-X", f"UID STORE {uids[0]} +FLAGS (\\Flagged)").stdout
    assert fetches(out.split(b"\r\n")) == {1: {"UID": str(uids[0]), "FLAGS": ["\\Flagged"]}}
    out = account.curl(account.url("INBOX"), "-X", f'UID MOVE {uids[0]} "From curl"').stdout
    assert b"[COPYUID " in out and b"* 1 EXPUNGE" in out, out
    with account.raw() as raw:
        raw.ok('EXAMINE "From curl"')
        data = fetches(raw.ok("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))[1]
        assert data == {"FLAGS": ["\\Flagged"], "BODY[HEADER.FIELDS (SUBJECT)]": b"Subject: for curl\r\n\r\n"}
    account.curl(account.url(), "-X", 'DELETE "From curl"')
    assert set(list_entries(account.curl(account.url(), "-X", 'LIST "" *').stdout.split(b"\r\n"))) == \
        set(STANDARD_MAILBOXES)


def test_curl_searches_a_mailbox_by_subject(account):
    account.fill("INBOX", [message("apples"), message("pears"), message("more apples")])
    out = account.curl(account.url("INBOX?SUBJECT%20apples")).stdout
    assert out == b"* SEARCH 1 3\r\n"


# --- the corpus through APPEND and FETCH BODY[] ---------------------------------------------------

def stored_form(sent: bytes) -> bytes:
    """What APPEND stores: every bare CR and bare LF made CRLF (clients that write their own line
    ends), nothing else changed, no line end added."""
    return BARE_LINE_END.sub(b"\r\n", sent)


def corpus_wires() -> dict[str, bytes]:
    files = corpus_files()
    assert len(files) >= 100
    return {corpus_name(p): crlf(p.read_bytes()) for p in files}


def curl_fetch_uids(account: Account, uids: list[int], workdir: Path) -> dict[int, bytes]:
    """Every message by UID with one curl process (URL globbing reuses one IMAP session)."""
    out = workdir / "fetched"
    out.mkdir()
    account.curl(account.url("INBOX;UID={" + ",".join(map(str, uids)) + "}"), "-o", f"{out}/#1.eml")
    return {uid: (out / f"{uid}.eml").read_bytes() for uid in uids}


def test_every_corpus_message_appended_comes_back_from_fetch_body_with_the_same_octets(account, tmp_path):
    wires = corpus_wires()
    must_refuse = {name for name, wire in wires.items() if b"\0" in wire}
    assert must_refuse, "the corpus should hold a message with a NUL octet"
    expected: dict[int, bytes] = {}
    names: dict[int, str] = {}
    refused: dict[str, Reply] = {}
    with account.raw() as raw:
        for name, wire in wires.items():
            reply = raw.append("INBOX", wire)
            if reply.status == "OK":
                uid = appenduid(reply)[1]
                expected[uid], names[uid] = stored_form(wire), name
            else:
                refused[name] = reply
        assert set(refused) == must_refuse, refused
        for name, reply in refused.items():
            # A literal cannot hold NUL (RFC 9051 §9 CHAR8): a syntax error. In a literal8
            # (RFC 3516) it can, and the server says it cannot store it.
            assert reply.status == "BAD", (name, reply)
            binary = raw.append("INBOX", wires[name], binary=True)
            assert binary.status == "NO" and binary.code == "UNKNOWN-CTE", (name, binary)
        # Some message had bare line ends, so the normalization was exercised.
        assert any(expected[uid] != wires[names[uid]] for uid in expected)
        raw.ok("EXAMINE INBOX")
        sizes = fetches(raw.ok("UID FETCH 1:* (UID RFC822.SIZE)"))
        assert {int(d["UID"]): int(d["RFC822.SIZE"]) for d in sizes.values()} == \
            {uid: len(m) for uid, m in expected.items()}

    client = account.imaplib()
    client.select("INBOX", readonly=True)
    typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    assert typ == "OK"
    by_imaplib = imaplib_uid_bodies(data)
    client.logout()
    mismatched = [names[uid] for uid in expected if by_imaplib.get(uid) != expected[uid]]
    assert not mismatched, f"imaplib fetched other octets for {mismatched}"

    client = account.imapclient()
    client.select_folder("INBOX", readonly=True)
    by_imapclient = {uid: data[b"BODY[]"] for uid, data in client.fetch(list(expected), ["BODY.PEEK[]"]).items()}
    client.logout()
    mismatched = [names[uid] for uid in expected if by_imapclient.get(uid) != expected[uid]]
    assert not mismatched, f"imapclient fetched other octets for {mismatched}"

    by_curl = curl_fetch_uids(account, sorted(expected), tmp_path)
    mismatched = [names[uid] for uid in expected if by_curl[uid] != expected[uid]]
    assert not mismatched, f"curl fetched other octets for {mismatched}"


def test_imaplib_appends_every_corpus_message_with_synchronizing_literals(account):
    # imaplib sends synchronizing literals and makes every line end CRLF itself.
    wires = corpus_wires()
    client = account.imaplib()
    outcomes = {}
    for name, wire in wires.items():
        try:
            outcomes[name] = client.append("INBOX", None, None, wire)
        except imaplib.IMAP4.error as e:  # BAD: a literal with NUL is a syntax error
            outcomes[name] = ("BAD", [str(e).encode()])
    refused = {name for name, (typ, _) in outcomes.items() if typ != "OK"}
    assert refused == {name for name, wire in wires.items() if b"\0" in wire}, \
        {name: outcomes[name] for name in refused}
    uids = {int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1)): name
            for name, (typ, data) in outcomes.items() if typ == "OK"}
    client.select("INBOX", readonly=True)
    typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    fetched = imaplib_uid_bodies(data)
    client.logout()
    assert set(fetched) == set(uids)
    for uid, name in uids.items():
        assert fetched[uid] == stored_form(wires[name]), name


# --- SEARCH ---------------------------------------------------------------------------------------

# (message, internal date). Internal dates differ from the Date fields on purpose, so that the
# internal-date keys (SINCE, BEFORE, ON) and the Date-field keys (SENT*) give different answers.
SEARCHABLE = [
    (message("Quarterly report", "The numbers are in.\r\n", sender="Alice Archer <alice@example.org>",
             date="Mon, 02 Mar 2026 12:00:00 +0000"), "02-Mar-2026 12:00:00 +0000"),
    (message("Lunch on Friday?", "Pizza or sushi?\r\n", sender="Bob Baker <bob@example.net>",
             date="Tue, 10 Mar 2026 12:00:00 +0000"), "10-Mar-2026 12:00:00 +0000"),
    (message("=?utf-8?q?Caf=C3=A9_meeting?=", base64.encodebytes(b"The secret word is xylophone.\r\n").decode()
             .replace("\n", "\r\n"), sender="Carol <carol@example.org>", date="Fri, 20 Mar 2026 12:00:00 +0000",
             extra="Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"),
     "20-Mar-2026 12:00:00 +0000"),
    (message("Re: Quarterly report", "The numbers look fine to me.\r\n", sender="Bob Baker <bob@example.net>",
             date="Wed, 01 Apr 2026 12:00:00 +0000"), "21-Mar-2026 12:00:00 +0000"),
]


@pytest.fixture
def searchable(account) -> Account:
    """The account's INBOX holds SEARCHABLE, messages 1 to 4 with UIDs 1 to 4."""
    with account.raw() as raw:
        uids = [appenduid(raw.append("INBOX", content, date=internal))[1] for content, internal in SEARCHABLE]
    assert uids == [1, 2, 3, 4]
    return account


def test_imaplib_search_by_subject_ignores_case_and_decodes_encoded_words(searchable):
    client = searchable.imaplib()
    client.select("INBOX", readonly=True)
    assert client.search(None, "SUBJECT", "quarterly") == ("OK", [b"1 4"])
    assert client.search(None, "SUBJECT", '"LUNCH ON"') == ("OK", [b"2"])
    assert client.search(None, "SUBJECT", "meeting") == ("OK", [b"3"])
    assert client.search(None, "SUBJECT", "nothing-like-this") == ("OK", [b""])
    client.logout()
    client = searchable.imapclient()
    client.select_folder("INBOX", readonly=True)
    assert client.search(["SUBJECT", "Café"], charset="UTF-8") == [3]


def test_imaplib_search_by_from_matches_names_and_addresses(searchable):
    client = searchable.imaplib()
    client.select("INBOX", readonly=True)
    assert client.search(None, "FROM", "bob@example.net") == ("OK", [b"2 4"])
    assert client.search(None, "FROM", "Archer") == ("OK", [b"1"])
    assert client.uid("SEARCH", "FROM", "example.org") == ("OK", [b"1 3"])
    client.logout()


def test_search_by_internal_date_since_before_and_on(searchable):
    client = searchable.imapclient()
    client.select_folder("INBOX", readonly=True)
    assert client.search(["SINCE", "10-Mar-2026"]) == [2, 3, 4]
    assert client.search(["BEFORE", "10-Mar-2026"]) == [1]
    assert client.search(["ON", "20-Mar-2026"]) == [3]
    assert client.search(["ON", "01-Apr-2026"]) == []
    assert client.search(["SINCE", "11-Mar-2026", "BEFORE", "21-Mar-2026"]) == [3]


def test_search_by_the_date_field_sentsince_sentbefore_and_senton(searchable):
    client = searchable.imapclient()
    client.select_folder("INBOX", readonly=True)
    assert client.search(["SENTSINCE", "20-Mar-2026"]) == [3, 4]
    assert client.search(["SENTBEFORE", "10-Mar-2026"]) == [1]
    assert client.search(["SENTON", "01-Apr-2026"]) == [4]
    assert client.search(["SENTON", "21-Mar-2026"]) == []


def test_search_by_body_looks_at_the_decoded_body_and_text_at_the_header_too(searchable):
    client = searchable.imaplib()
    client.select("INBOX", readonly=True)
    assert client.search(None, "BODY", "numbers") == ("OK", [b"1 4"])
    # Only in the base64 body of message 3, and only once decoded.
    assert client.search(None, "BODY", "xylophone") == ("OK", [b"3"])
    assert client.search(None, "BODY", "quarterly") == ("OK", [b""]), "a Subject word is not in the body"
    assert client.search(None, "TEXT", "quarterly") == ("OK", [b"1 4"])
    assert client.search(None, "TEXT", "sushi") == ("OK", [b"2"])
    client.logout()


def test_search_combines_keys_with_or_not_and_flags(searchable):
    client = searchable.imapclient()
    client.select_folder("INBOX")
    client.add_flags([2, 4], [b"\\Flagged"])
    assert client.search(["OR", "FROM", "alice", "SUBJECT", "lunch"]) == [1, 2]
    assert client.search(["NOT", "FROM", "bob"]) == [1, 3]
    assert client.search(["FLAGGED", "BODY", "numbers"]) == [4]
    assert client.search(["UNFLAGGED"]) == [1, 3]
    assert client.search(["UID", "2:3"]) == [2, 3]


# --- flags: STORE ---------------------------------------------------------------------------------

def flags_of(untagged: list[bytes]) -> dict[int, set[str]]:
    return {n: set(data["FLAGS"]) for n, data in fetches(untagged).items() if "FLAGS" in data}


def test_store_adds_removes_and_replaces_flags_and_answers_with_the_new_flags(account):
    account.fill("INBOX", [message("one"), message("two")])
    with account.raw() as raw:
        raw.select()
        assert flags_of(raw.ok("STORE 1 +FLAGS (\\Flagged \\Answered)")) == {1: {"\\Flagged", "\\Answered"}}
        assert flags_of(raw.ok("STORE 1 -FLAGS (\\Answered)")) == {1: {"\\Flagged"}}
        assert flags_of(raw.ok("STORE 1:2 FLAGS (\\Seen \\Draft)")) == {1: {"\\Seen", "\\Draft"},
                                                                        2: {"\\Seen", "\\Draft"}}
        assert flags_of(raw.ok("STORE 2 FLAGS ()")) == {2: set()}
        assert flags_of(raw.ok("FETCH 1:2 FLAGS")) == {1: {"\\Seen", "\\Draft"}, 2: set()}
        # UID STORE answers with the UID too (RFC 9051 §6.4.9).
        reply = fetches(raw.ok("UID STORE 2 +FLAGS (\\Deleted)"))
        assert reply == {2: {"FLAGS": ["\\Deleted"], "UID": "2"}}


def test_store_silent_changes_the_flags_without_an_untagged_fetch(account):
    account.fill("INBOX", [message("quiet")])
    with account.raw() as raw:
        raw.select()
        assert raw.ok("STORE 1 +FLAGS.SILENT (\\Flagged)") == []
        assert raw.ok("STORE 1 -FLAGS.SILENT (\\Flagged)") == []
        assert raw.ok("UID STORE 1 FLAGS.SILENT (\\Seen)") == []
        assert flags_of(raw.ok("FETCH 1 FLAGS")) == {1: {"\\Seen"}}


def test_keywords_are_stored_announced_in_flags_and_searchable(account):
    account.fill("INBOX", [message("one"), message("two")])
    with account.raw() as raw:
        select = raw.select()
        assert b"\\*" in next(line for line in select if b"PERMANENTFLAGS" in line), "keywords may be created"
        untagged = raw.ok("STORE 2 +FLAGS ($Important Project-X)")
        # A keyword new to the mailbox is announced in FLAGS (RFC 9051 §7.3.5).
        flags_line = next(line for line in untagged if line.startswith(b"* FLAGS "))
        assert {"$Important", "Project-X"} <= set(parse(flags_line)[2])
        assert flags_of(untagged) == {2: {"$Important", "Project-X"}}
        assert search_numbers(raw.ok("SEARCH KEYWORD $Important")) == [2]
        assert search_numbers(raw.ok("SEARCH UNKEYWORD Project-X")) == [1]
        raw.ok("STORE 2 -FLAGS (Project-X)")
        assert flags_of(raw.ok("FETCH 2 FLAGS")) == {2: {"$Important"}}
        # An unknown system flag is not a keyword.
        assert raw.command("STORE 1 +FLAGS (\\Bogus)").status == "BAD"
    # Another session sees the keywords in its FLAGS at SELECT.
    with account.raw() as other:
        flags_line = next(line for line in other.select() if line.startswith(b"* FLAGS "))
        assert "$Important" in parse(flags_line)[2]


def test_imapclient_sets_and_reads_flags_by_uid(account):
    uids = account.fill("INBOX", [message("a"), message("b"), message("c")])
    client = account.imapclient()
    client.select_folder("INBOX")
    client.add_flags(uids[:2], [b"\\Flagged", b"$Later"])
    client.remove_flags([uids[0]], [b"$Later"])
    client.set_flags([uids[2]], [b"\\Seen"])
    assert client.get_flags(uids) == {uids[0]: (b"\\Flagged",), uids[1]: (b"\\Flagged", b"$Later"),
                                      uids[2]: (b"\\Seen",)}


def test_fetch_of_a_body_sets_seen_and_body_peek_does_not(account):
    account.fill("INBOX", [message("peek"), message("read")])
    with account.raw() as raw:
        raw.select()
        assert fetches(raw.ok("FETCH 1 BODY.PEEK[TEXT]"))[1] == {"BODY[TEXT]": b"Hello.\r\n"}
        data = fetches(raw.ok("FETCH 2 BODY[TEXT]"))[2]
        assert data["BODY[TEXT]"] == b"Hello.\r\n" and data["FLAGS"] == ["\\Seen"]
        assert flags_of(raw.ok("FETCH 1:2 FLAGS")) == {1: set(), 2: {"\\Seen"}}


# --- APPEND, COPY, MOVE, EXPUNGE ------------------------------------------------------------------

def test_append_answers_appenduid_with_the_mailbox_uidvalidity_and_its_uidnext(account):
    with account.raw() as raw:
        before = status_items(raw.ok("STATUS INBOX (UIDNEXT UIDVALIDITY MESSAGES)"))
        content = message("appended")
        reply = raw.append("INBOX", content, flags="\\Seen $Filed", date="02-Jan-2026 03:04:05 +0000")
        assert reply.status == "OK"
        assert appenduid(reply) == (before["UIDVALIDITY"], before["UIDNEXT"])
        after = status_items(raw.ok("STATUS INBOX (UIDNEXT UIDVALIDITY MESSAGES)"))
        assert after == {"UIDNEXT": before["UIDNEXT"] + 1, "UIDVALIDITY": before["UIDVALIDITY"],
                         "MESSAGES": before["MESSAGES"] + 1}
        raw.ok("EXAMINE INBOX")
        data = fetches(raw.ok(f"UID FETCH {before['UIDNEXT']} (FLAGS INTERNALDATE BODY.PEEK[])"))[1]
        assert data["BODY[]"] == content
        assert set(data["FLAGS"]) == {"\\Seen", "$Filed"}
        assert data["INTERNALDATE"] == b"02-Jan-2026 03:04:05 +0000"


def test_append_to_a_missing_mailbox_says_trycreate(account):
    with account.raw() as raw:
        reply = raw.append("Nowhere", message("lost"))
        assert (reply.status, reply.code) == ("NO", "TRYCREATE")
        assert raw.command("STATUS Nowhere (MESSAGES)").status == "NO"


def test_imapclient_appends_with_flags_and_date_and_gets_the_uid(account):
    client = account.imapclient()
    client.create_folder("Notes")
    response = client.append("Notes", message("a note"), flags=[b"\\Draft"])
    match = re.search(rb"\[APPENDUID (\d+) (\d+)\]", response)
    assert match, response
    status = client.folder_status("Notes", ["UIDVALIDITY", "UIDNEXT", "MESSAGES"])
    assert (int(match.group(1)), int(match.group(2)) + 1, 1) == \
        (status[b"UIDVALIDITY"], status[b"UIDNEXT"], status[b"MESSAGES"])


def test_uid_move_answers_copyuid_first_then_expunges_and_the_messages_are_in_the_target(account):
    contents = [message(f"move {n}") for n in range(1, 6)]
    uids = account.fill("INBOX", contents)
    with account.raw() as raw:
        raw.ok("CREATE Moved")
        target = status_items(raw.ok("STATUS Moved (UIDNEXT UIDVALIDITY)"))
        raw.select()
        moved = [uids[1], uids[3], uids[4]]
        reply = raw.command(f"UID MOVE {moved[0]},{moved[1]}:{moved[2]} Moved")
        assert reply.status == "OK", reply
        # RFC 6851 §4.3: COPYUID in an untagged OK, before the EXPUNGE responses.
        assert reply.untagged[0].startswith(b"* OK [COPYUID "), reply
        validity, sources, destinations = copyuid(re.search(rb"\[(COPYUID [^\]]*)\]", reply.untagged[0])
                                                 .group(1).decode())
        assert validity == target["UIDVALIDITY"]
        assert sources == moved
        assert destinations == list(range(target["UIDNEXT"], target["UIDNEXT"] + 3))
        expunged = untagged_numbers(reply.untagged, "EXPUNGE")
        assert simulate_expunges(uids, expunged) == [uids[0], uids[2]]
        assert len(reply.untagged) == 1 + len(expunged), reply
        assert search_numbers(raw.ok("UID SEARCH ALL")) == [uids[0], uids[2]]

        raw.ok("EXAMINE Moved")
        moved_in = fetches(raw.ok(f"UID FETCH {','.join(map(str, destinations))} (UID BODY.PEEK[])"))
        by_uid = {int(d["UID"]): d["BODY[]"] for d in moved_in.values()}
        assert by_uid == {destination: contents[uids.index(source)]
                          for source, destination in zip(sources, destinations)}


def test_imapclient_moves_messages_between_folders(account):
    uids = account.fill("INBOX", [message("stay"), message("go")])
    client = account.imapclient()
    client.select_folder("INBOX")
    client.move([uids[1]], "Archive")
    assert client.search(["ALL"]) == [uids[0]]
    client.select_folder("Archive", readonly=True)
    assert [data[b"ENVELOPE"].subject for data in client.fetch(client.search(["ALL"]), ["ENVELOPE"]).values()] \
        == [b"go"]


def test_uid_copy_answers_copyuid_and_leaves_the_source_alone(account):
    contents = [message(f"copy {n}") for n in range(1, 4)]
    uids = account.fill("INBOX", contents, flags="\\Flagged")
    with account.raw() as raw:
        target = status_items(raw.ok("STATUS Archive (UIDNEXT UIDVALIDITY)"))
        raw.select()
        reply = raw.command(f"UID COPY {uids[2]},{uids[0]} Archive")
        assert reply.status == "OK" and reply.untagged == [], reply
        validity, sources, destinations = copyuid(reply.code)
        assert validity == target["UIDVALIDITY"]
        assert sorted(sources) == sorted([uids[0], uids[2]])
        assert sorted(destinations) == [target["UIDNEXT"], target["UIDNEXT"] + 1]
        assert search_numbers(raw.ok("UID SEARCH ALL")) == uids, "COPY removes nothing"
        raw.ok("EXAMINE Archive")
        copied = fetches(raw.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[])"))
        by_uid = {int(d["UID"]): (d["BODY[]"], d["FLAGS"]) for d in copied.values()}
        assert by_uid == {destination: (contents[uids.index(source)], ["\\Flagged"])
                          for source, destination in zip(sources, destinations)}


def test_copy_to_a_missing_mailbox_says_trycreate(account):
    account.fill("INBOX", [message("x")])
    with account.raw() as raw:
        raw.select()
        reply = raw.command("COPY 1 Nowhere")
        assert (reply.status, reply.code) == ("NO", "TRYCREATE")


def test_expunge_removes_exactly_the_deleted_messages_and_reports_each(account):
    uids = account.fill("INBOX", [message(f"n{n}") for n in range(1, 7)])
    with account.raw() as raw:
        raw.select()
        raw.ok("STORE 2,4:5 +FLAGS.SILENT (\\Deleted)")
        reply = raw.command("EXPUNGE")
        assert reply.status == "OK"
        numbers = untagged_numbers(reply.untagged, "EXPUNGE")
        assert len(numbers) == 3
        assert simulate_expunges(uids, numbers) == [uids[0], uids[2], uids[5]]
        assert search_numbers(raw.ok("UID SEARCH ALL")) == [uids[0], uids[2], uids[5]]
        assert untagged_numbers(raw.ok("NOOP"), "EXPUNGE") == [], "each EXPUNGE is reported once"
    client = account.imapclient()
    client.select_folder("INBOX")
    client.add_flags([uids[0]], [b"\\Deleted"])
    client.expunge()
    assert client.search(["ALL"]) == [uids[2], uids[5]]


def test_uid_expunge_removes_only_the_named_deleted_messages(account):
    uids = account.fill("INBOX", [message(f"n{n}") for n in range(1, 5)], flags="\\Deleted")
    with account.raw() as raw:
        raw.select()
        reply = raw.command(f"UID EXPUNGE {uids[1]}:{uids[2]}")
        assert reply.status == "OK"
        assert simulate_expunges(uids, untagged_numbers(reply.untagged, "EXPUNGE")) == [uids[0], uids[3]]
        raw.ok(f"UID STORE {uids[3]} -FLAGS.SILENT (\\Deleted)")
        reply = raw.command(f"UID EXPUNGE {uids[3]}")
        assert untagged_numbers(reply.untagged, "EXPUNGE") == [], "UID EXPUNGE needs \\Deleted too"
    client = account.imapclient()
    client.select_folder("INBOX")
    client.uid_expunge([uids[0]])
    assert client.search(["ALL"]) == [uids[3]]


def test_close_expunges_silently_and_unselect_does_not(account):
    uids = account.fill("INBOX", [message("a"), message("b")], flags="\\Deleted")
    with account.raw() as raw:
        raw.select()
        assert raw.ok("UNSELECT") == []
        raw.select()
        assert raw.ok(f"UID STORE {uids[0]} -FLAGS.SILENT (\\Deleted)") == []
        assert raw.ok("CLOSE") == [], "CLOSE sends no EXPUNGE responses"
        assert status_items(raw.ok("STATUS INBOX (MESSAGES)")) == {"MESSAGES": 1}


# --- IDLE -----------------------------------------------------------------------------------------

def test_idle_sees_a_message_delivered_over_smtp_within_one_second(account):
    with account.raw() as raw:
        raw.select()
        tag = raw.idle()
        raw.sock.settimeout(1.0)
        account.deliver(message("arrives while idling"))
        sent = time.monotonic()
        line = raw.response()  # within the 1 s socket timeout, or the read raises
        elapsed = time.monotonic() - sent
        assert line == b"* 1 EXISTS", line
        assert elapsed < 1.0, elapsed
        raw.sock.settimeout(10)
        assert raw.done(tag).status == "OK"
        data = fetches(raw.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]"))[1]
        assert data["BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: arrives while idling\r\n\r\n"


def test_imapclient_idle_check_reports_smtp_deliveries_within_one_second(account):
    client = account.imapclient()
    client.select_folder("INBOX")
    client.idle()
    for n in (1, 2):
        account.deliver(message(f"delivery {n}"))
        sent = time.monotonic()
        responses = client.idle_check(timeout=1)
        elapsed = time.monotonic() - sent
        assert (n, b"EXISTS") in responses, responses
        assert elapsed < 1.0, elapsed
    client.idle_done()
    assert client.search(["SUBJECT", "delivery"]) == [1, 2]


# --- FETCH sections and SEARCH for IMAP4rev2 -------------------------------------------------------

MULTIPART = (b"From: Ann <ann@example.org>\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
             b"preamble\r\n--b\r\n\r\nHello\r\n--b\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--b--\r\n")


def test_fetch_returns_sections_partial_ranges_and_decoded_binary(account):
    account.fill("INBOX", [MULTIPART])
    with account.raw() as raw:
        raw.ok("EXAMINE INBOX")
        data = fetches(raw.ok("FETCH 1 (BODY.PEEK[]<0.10> BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[TEXT]<5.20> "
                              "BODY.PEEK[HEADER.FIELDS (SUBJECT)] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[3])"))[1]
        assert data["BODY[]<0>"] == MULTIPART[:10]
        assert data["BODY[1]"] == b"Hello"
        assert data["BODY[2.MIME]"] == (b"Content-Type: application/octet-stream\r\n"
                                        b"Content-Transfer-Encoding: base64\r\n\r\n")
        body = MULTIPART.split(b"\r\n\r\n", 1)[1]
        assert data["BODY[TEXT]<5>"] == body[5:25]
        assert data["BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: parts\r\n\r\n"
        # RFC 3516: BINARY undoes the transfer encoding; NUL octets come as a literal8.
        assert data["BINARY[2]"] == b"\x00\x01\x02\x03\x04" and data["BINARY.SIZE[2]"] == "5"
        assert data["BODY[3]"] is None
        assert fetches(raw.ok("FETCH 1 FLAGS")) == {1: {"FLAGS": []}}, "PEEK and EXAMINE set no \\Seen"


def test_after_enable_imap4rev2_search_answers_with_esearch(account):
    account.fill("INBOX", [message("one"), message("two"), message("three")])
    with account.raw() as raw:
        assert raw.ok("ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2"]
        select = raw.select()
        assert not any(line.endswith(b" RECENT") for line in select), "IMAP4rev2 has no RECENT"
        tag_line = raw.command("SEARCH ALL")
        assert tag_line.untagged == [f"* ESEARCH (TAG \"{tag_line.tagged.split()[0].decode()}\") ALL 1:3".encode()]
        reply = raw.command("SEARCH RETURN (MIN MAX COUNT) NOT SUBJECT two")
        assert reply.untagged[0].endswith(b"MIN 1 MAX 3 COUNT 2"), reply
        reply = raw.command("UID SEARCH RETURN (COUNT) SUBJECT nothing")
        assert reply.untagged[0].endswith(b" UID COUNT 0"), reply


# --- two sessions on one mailbox; SMTP and POP3 on the same INBOX ---------------------------------

def test_a_session_learns_of_another_sessions_append_at_its_next_noop(account):
    account.fill("INBOX", [message("first")])
    with account.raw() as a, account.raw() as b:
        b.select()
        a.append("INBOX", message("second"))
        assert untagged_numbers(b.ok("NOOP"), "EXISTS") == [2]
        assert b.ok("NOOP") == [], "reported once"
        assert search_numbers(b.ok("SEARCH SUBJECT second")) == [2]


def test_a_session_learns_of_another_sessions_flag_change_as_an_untagged_fetch(account):
    uids = account.fill("INBOX", [message("one"), message("two")])
    with account.raw() as a, account.raw() as b:
        a.select()
        b.select()
        a.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        updates = fetches(b.ok("NOOP"))
        assert updates == {2: {"UID": str(uids[1]), "FLAGS": ["\\Flagged"]}}


def test_expunge_by_another_session_is_held_back_during_fetch_store_and_search_and_sent_at_noop(account):
    uids = account.fill("INBOX", [message(f"m{n}") for n in range(1, 4)])
    with account.raw() as a, account.raw() as b:
        a.select()
        b.select()
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        # RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH; sequence numbers
        # stay as the client knows them until then.
        for command in ("FETCH 1:3 UID", "STORE 3 +FLAGS (\\Seen)", "SEARCH ALL"):
            reply = b.command(command)
            assert reply.status == "OK", (command, reply)
            assert untagged_numbers(reply.untagged, "EXPUNGE") == [], (command, reply)
        assert fetches(b.ok("FETCH 3 UID")) == {3: {"UID": str(uids[2])}}
        assert untagged_numbers(b.ok("NOOP"), "EXPUNGE") == [2]
        assert fetches(b.ok("FETCH 1:* UID")) == {1: {"UID": str(uids[0])}, 2: {"UID": str(uids[2])}}


def test_an_idling_session_sees_exists_fetch_and_expunge_from_another_session(account):
    account.fill("INBOX", [message("one"), message("two")])
    with account.raw() as a, account.raw(timeout=2) as b:
        a.select()
        b.select()
        tag = b.idle()
        a.append("INBOX", message("three"))
        assert b.response() == b"* 3 EXISTS"
        a.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
        assert fetches([b.response()]) == {1: {"UID": "1", "FLAGS": ["\\Answered"]}}
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        b_flags = fetches([b.response()])
        assert b_flags == {2: {"UID": "2", "FLAGS": ["\\Deleted"]}}
        a.ok("EXPUNGE")
        assert b.response() == b"* 2 EXPUNGE"
        assert b.done(tag).untagged == []
        assert fetches(b.ok("FETCH 1:* UID")) == {1: {"UID": "1"}, 2: {"UID": "3"}}


def test_a_message_appended_over_imap_is_listed_and_retrieved_by_pop3(account):
    content = message("for pop3")
    account.fill("INBOX", [content])
    pop = account.pop3()
    try:
        count, total = pop.stat()
        assert (count, total) == (1, len(content))
        _, lines, octets = pop.retr(1)
        assert b"".join(line + b"\r\n" for line in lines) == content and octets == len(content)
    finally:
        pop.quit()


def test_pop3_dele_then_quit_reaches_an_imap_session_as_expunge_at_noop(account):
    uids = account.fill("INBOX", [message(f"p{n}") for n in range(1, 4)])
    with account.raw() as imap:
        imap.select()
        pop = account.pop3()
        assert pop.dele(2).startswith(b"+OK")
        assert untagged_numbers(imap.ok("NOOP"), "EXPUNGE") == [], "nothing happens before QUIT"
        assert pop.quit().startswith(b"+OK")
        assert untagged_numbers(imap.ok("NOOP"), "EXPUNGE") == [2]
        assert search_numbers(imap.ok("UID SEARCH ALL")) == [uids[0], uids[2]]


def test_imap_expunge_is_seen_by_the_next_pop3_session(account):
    account.fill("INBOX", [message("keep"), message("drop"), message("keep too")])
    pop = account.pop3()
    assert pop.stat()[0] == 3
    before = [line.split()[1] for line in pop.uidl()[1]]
    pop.quit()
    with account.raw() as imap:
        imap.select()
        imap.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        imap.ok("EXPUNGE")
    pop = wait_until(lambda: try_pop3(account), 5, "the POP3 maildrop lock")
    try:
        assert pop.stat()[0] == 2
        assert [line.split()[1] for line in pop.uidl()[1]] == [before[0], before[2]]
        assert subject_of(pop.top(2, 0)[1]) == b"Subject: keep too"
    finally:
        pop.quit()


def try_pop3(account: Account) -> poplib.POP3 | None:
    """A POP3 session, or None while the previous session's maildrop lock is being released."""
    try:
        return account.pop3()
    except poplib.error_proto as e:
        assert b"[IN-USE]" in e.args[0], e
        return None


def subject_of(lines: list[bytes]) -> bytes:
    return next(line for line in lines if line.startswith(b"Subject: "))


# --- bad input ------------------------------------------------------------------------------------

def test_a_synchronizing_literal_of_4_gb_is_refused_before_any_data_and_the_session_goes_on(shared, account):
    with account.raw() as raw:
        tag = raw.send_command("APPEND INBOX {4000000000}")
        reply = raw.response()
        # No continuation request: the client never sends the 4 GB.
        assert reply.startswith(f"{tag} BAD".encode()) or reply.startswith(f"{tag} NO".encode()), reply
        still_serving(shared)
        assert raw.ok("NOOP") == []
        assert raw.append("INBOX", message("small")).status == "OK"
    still_serving(shared)


def test_a_synchronizing_literal_beyond_32_bits_is_refused_before_any_data(shared, account):
    with account.raw() as raw:
        tag = raw.send_command("APPEND INBOX {4294967296}")
        reply = raw.response()
        assert reply.startswith(f"{tag} BAD".encode()) or reply.startswith(f"{tag} NO".encode()), reply
        assert raw.ok("NOOP") == []
    still_serving(shared)


@pytest.mark.parametrize("length", ["4000000000", "4294967296", "18446744073709551616"])
def test_a_non_synchronizing_literal_over_the_limit_gets_bye_and_nothing_after_it_runs(shared, account, length):
    # RFC 7888 §4: a LITERAL+ the server will not take cannot be refused, only answered with BYE.
    # RFC 9051 §9 counts literals with number64, so 4294967296 (2^32) is a literal announcement too;
    # what follows it is literal data and must never run as commands.
    with account.raw() as raw:
        raw.send(f"t1 APPEND INBOX {{{length}+}}\r\nt2 CREATE Smuggled\r\n".encode())
        line = raw.response()
        assert line.startswith(b"* BYE"), line
        assert raw.closed(timeout=5)
    with account.raw() as check:
        assert "Smuggled" not in list_entries(check.ok('LIST "" *'))
    still_serving(shared)


def test_deeply_nested_parentheses_in_search_get_bad_and_the_session_goes_on(shared, account):
    account.fill("INBOX", [message("nested")])
    with account.raw(timeout=30) as raw:
        raw.select()
        reply = raw.command(f"SEARCH {'(' * 100_000}ALL{')' * 100_000}")
        assert reply.status == "BAD", reply
        still_serving(shared)
        reply = raw.command(f"SEARCH {'NOT ' * 100_000}ALL")
        assert reply.status == "BAD", reply
        assert raw.command("FETCH 1 " + "(" * 100_000).status == "BAD"
        assert search_numbers(raw.ok("SEARCH ((((ALL))))")) == [1]
    still_serving(shared)


def test_a_sequence_set_with_a_million_ranges_is_answered_within_the_mailbox(shared, account):
    uids = account.fill("INBOX", [message(f"r{n}") for n in range(1, 4)])
    assert uids == [1, 2, 3]
    ranges = ",".join(f"{i * 4 + 2}:{i * 4 + 3}" for i in range(1_000_000))
    with account.raw(timeout=60) as raw:
        raw.select()
        started = time.monotonic()
        tag = raw.send_command(f"UID FETCH {ranges} FLAGS")
        # Meanwhile (the server reads and parses ~16 MB) another client is served.
        still_serving(shared)
        reply = raw.finish(tag)
        assert reply.status == "OK"
        assert fetches(reply.untagged) == {2: {"UID": "2", "FLAGS": []}, 3: {"UID": "3", "FLAGS": []}}
        assert search_numbers(raw.ok(f"UID SEARCH UID {ranges}")) == [2, 3]
        singles = ",".join(str(i % 3 + 1) for i in range(1_000_000))
        assert raw.ok(f"STORE {singles} +FLAGS.SILENT (\\Seen)") == []
        assert time.monotonic() - started < 60
        assert flags_of(raw.ok("FETCH 1:3 FLAGS")) == {1: {"\\Seen"}, 2: {"\\Seen"}, 3: {"\\Seen"}}
    still_serving(shared)


@pytest.mark.parametrize("name", ["&AGE-", "&Jjo", "&2D0-", "a&AOl-", "&-&", "&ZeVnLIqe"])
def test_an_invalid_modified_utf7_mailbox_name_gets_bad_and_creates_nothing(shared, account, name):
    with account.raw() as raw:
        for command in (f'CREATE "{name}"', f'SELECT "{name}"', f'RENAME INBOX "{name}"',
                        f'STATUS "{name}" (MESSAGES)'):
            reply = raw.command(command)
            assert reply.status == "BAD", (command, reply)
        assert set(list_entries(raw.ok('LIST "" *'))) == set(STANDARD_MAILBOXES)
        assert status_items(raw.ok("STATUS INBOX (MESSAGES)")) == {"MESSAGES": 0}, "INBOX was not renamed"
    still_serving(shared)


@pytest.mark.parametrize("command", ["SELECT INBOX", "EXAMINE INBOX", "CREATE Foo", "DELETE Sent", "RENAME Sent Foo",
                                     'LIST "" *', "STATUS INBOX (MESSAGES)", "SUBSCRIBE Sent", "NAMESPACE",
                                     "APPEND INBOX {1+}\r\nx", "FETCH 1 FLAGS", "UID SEARCH ALL", "EXPUNGE",
                                     "IDLE", "ENABLE IMAP4rev2", "CLOSE"])
def test_commands_before_login_are_refused_and_login_still_works(shared, account, command):
    with Imap(shared.port("imap")) as raw:
        reply = raw.command(command)
        assert reply.status in ("BAD", "NO"), reply
        raw.login(account.address)
        assert set(list_entries(raw.ok('LIST "" *'))) == set(STANDARD_MAILBOXES), "nothing was created"
    still_serving(shared)


@pytest.mark.parametrize("command", ["FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "UID SEARCH ALL",
                                     "EXPUNGE", "UID EXPUNGE 1", "COPY 1 Sent", "UID MOVE 1 Sent", "CLOSE",
                                     "CHECK"])
def test_selected_state_commands_without_a_selected_mailbox_are_refused(shared, account, command):
    account.fill("INBOX", [message("not selected")])
    with account.raw() as raw:
        reply = raw.command(command)
        assert reply.status in ("BAD", "NO"), reply
        raw.select()
        assert fetches(raw.ok("FETCH 1 FLAGS")) == {1: {"FLAGS": []}}
        assert status_items(raw.ok("STATUS Sent (MESSAGES)")) == {"MESSAGES": 0}
    still_serving(shared)


@pytest.mark.parametrize("command", [f"LOGIN ta {DEMO_PASSWORD}", "AUTHENTICATE PLAIN AHRhAENJUzUwNQ==", "STARTTLS"])
def test_authentication_commands_after_login_are_refused(shared, account, command):
    with account.raw() as raw:
        reply = raw.command(command)
        assert reply.status == "BAD", reply
        raw.ok("APPEND INBOX {6+}\r\nmine\r\n")
        raw.select()
        assert fetches(raw.ok("FETCH 1 BODY.PEEK[]")) == {1: {"BODY[]": b"mine\r\n"}}, "still the same account"
    still_serving(shared)


def test_binary_junk_never_crashes_the_server(shared, account):
    rng = random.Random(9051)
    junk = [
        bytes(rng.randrange(256) for _ in range(65536)),
        b"\x00" * 4096 + b"\r\n" + b"\xff\xfe" * 2048 + b"\n",
        b"a LOGIN \xc3\x28 \xff\r\nb SELECT \x00\r\nc FETCH \x80 (\r\n",
        b"\r" * 5000 + b"a NOOP\r\n",
        b"a AUTHENTICATE PLAIN\r\n" + b"\x80" * 3000 + b"\r\n",
        b"* OK\r\n+ go\r\n) ( \r\n\"\r\n{3}\r\n",
        b"a APPEND INBOX {" + b"9" * 300 + b"}\r\n",
        b"a LOGIN " + b"x" * 100000,  # no line end at all, then the client vanishes
    ]
    for chunk in junk:
        with Imap(shared.port("imap")) as c:
            try:
                c.send(chunk)
                c.closed(timeout=0.2)
            except (ConnectionResetError, BrokenPipeError):
                pass
        assert shared.alive()
    with account.raw() as c:
        c.select()
        try:
            c.send(bytes(rng.randrange(256) for _ in range(8192)))
            c.closed(timeout=0.5)
        except (ConnectionResetError, BrokenPipeError):
            pass
    still_serving(shared)


def test_a_client_making_too_many_errors_gets_bye_and_is_closed(make_server):
    server = imap_server(make_server, {"imap": {"errors_max": 3}})
    with Imap(server.port("imap")) as c:
        assert c.command("BOGUS").status == "BAD"
        assert c.command("SELECT INBOX").status == "BAD"
        assert c.ok("NOOP") == []
        tag = c.send_command("FETCH")
        line = c.response()
        assert line.startswith(f"{tag} BAD".encode()), line
        assert c.response().startswith(b"* BYE"), "the limit is announced"
        assert c.closed()
    # Failed logins count too: a password guesser is cut off.
    with Imap(server.port("imap")) as c:
        for _ in range(3):
            assert c.command(f"LOGIN ta wrong-{random.getrandbits(32)}").status == "NO"
        assert c.response().startswith(b"* BYE")
        assert c.closed()
    still_serving(server)


def test_connections_over_the_per_ip_limit_get_bye_and_a_freed_place_is_reused(make_server):
    server = imap_server(make_server, {"imap": {"connections_per_ip_max": 2}})
    first, second = Imap(server.port("imap")), Imap(server.port("imap"))
    with first, second:
        with Imap(server.port("imap")) as third:
            assert third.greeting.startswith(b"* BYE [UNAVAILABLE]"), third.greeting
            assert third.closed()
        assert first.ok("NOOP") == [] and second.ok("NOOP") == []
    # The places are freed once the server has seen the two close.
    def admitted():
        client = Imap(server.port("imap"))
        if client.greeting.startswith(b"* OK"):
            return client
        client.close()
        return None
    with wait_until(admitted, 5, "a freed connection place", interval=0.05) as client:
        client.login("ta", DEMO_PASSWORD)


def test_a_silent_session_is_logged_out_after_the_idle_timeout(make_server):
    server = imap_server(make_server, {"imap": {"idle_timeout_secs": 2}})
    with Imap(server.port("imap")) as raw:
        raw.login("ta", DEMO_PASSWORD)
        raw.select()
        started = time.monotonic()
        line = raw.response()  # the socket timeout (10 s) bounds the wait
        elapsed = time.monotonic() - started
        assert line.startswith(b"* BYE"), line
        assert 1.5 <= elapsed < 8, elapsed
        assert raw.closed()
    still_serving(server)


def test_a_signal_ends_an_idling_session_with_bye_and_the_server_exits_0(make_server):
    server = imap_server(make_server)
    with Imap(server.port("imap")) as raw:
        raw.login("ta", DEMO_PASSWORD)
        raw.select()
        raw.idle()
        server.proc.send_signal(signal.SIGTERM)
        assert raw.response().startswith(b"* BYE"), "the idling client is told"
        assert raw.closed()
    assert server.proc.wait(timeout=30) == 0


# --- a client that stops reading ------------------------------------------------------------------

def big_message(n: int, size: int) -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab\r\n"
    head = b"Subject: big %d\r\nFrom: filler@example.org\r\n\r\n" % n
    return head + line * ((size - len(head)) // len(line))


def fill_pipelined(account: Account, count: int, size: int) -> int:
    """APPENDs `count` messages of about `size` octets, pipelined with LITERAL+; returns the
    total octets stored."""
    messages = [big_message(n, size) for n in range(count)]
    with account.raw(timeout=60) as raw:
        tags = []
        for m in messages:
            tag = f"f{len(tags)}"
            raw.send(f"{tag} APPEND INBOX {{{len(m)}+}}\r\n".encode() + m + b"\r\n")
            tags.append(tag)
        for tag in tags:
            assert raw.finish(tag).status == "OK", tag
    return sum(len(m) for m in messages)


def stalled_reader(account: Account) -> Imap:
    """A logged-in client with INBOX selected and a small receive window, which then reads no more."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so that the kernel cannot take the replies on the reader's behalf.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect((HOST, account.port))
    client = Imap(account.port, sock=sock)
    client.login(account.address, account.password)
    client.select()
    return client


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    return count


def test_a_client_that_stops_reading_a_large_fetch_holds_bounded_memory_and_others_are_served(make_server):
    server = imap_server(make_server)
    account = new_account(server)
    total = fill_pipelined(account, 200, 100 * 1024)
    assert total > 20_000_000
    rounds = 10  # 200 MB of replies pending if the server ran every FETCH before sending
    with stalled_reader(account) as stalled:
        baseline = server.rss_kib()
        stalled.send(b"".join(b"s%d UID FETCH 1:* BODY[]\r\n" % n for n in range(rounds)))
        peak = baseline
        deadline = time.monotonic() + 3
        served = 0
        while time.monotonic() < deadline:
            # Meanwhile another client is served, and reads a large message whole.
            still_serving(server)
            with account.raw() as other:
                other.ok("EXAMINE INBOX")
                body = fetches(other.ok("UID FETCH 200 BODY.PEEK[]"))
                assert next(iter(body.values()))["BODY[]"] == big_message(199, 100 * 1024)
            served += 1
            peak = max(peak, server.rss_kib())
        assert served >= 2
        grown = peak - baseline
        assert grown < 64 * 1024, f"server memory grew by {grown} KiB for a client that reads nothing"
        assert server.alive()


def test_a_client_that_takes_nothing_for_the_write_timeout_is_dropped(make_server):
    server = imap_server(make_server, {"server": {"write_timeout_secs": 2}})
    without_clients = open_sockets(server.pid)  # listeners and the like
    account = new_account(server)
    total = fill_pipelined(account, 100, 100 * 1024)
    wait_until(lambda: open_sockets(server.pid) == without_clients, 5, "the filling session to end")
    with stalled_reader(account) as stalled:
        assert open_sockets(server.pid) == without_clients + 1
        stalled.send(b"s1 UID FETCH 1:* BODY[]\r\n")
        started = time.monotonic()
        wait_until(lambda: open_sockets(server.pid) == without_clients, 15, "the stalled connection to be dropped",
                   interval=0.05)
        elapsed = time.monotonic() - started
        assert elapsed >= 1.5, f"dropped after {elapsed:.2f}s, before the 2 s write timeout"
        # What the kernel already held arrives; then the connection ends without the tagged reply.
        received = bytearray(stalled.buf)
        stalled.sock.settimeout(10)
        while True:
            try:
                chunk = stalled.sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        assert len(received) < total
        assert b"\r\ns1 OK" not in received
    still_serving(server)


# --- TLS and authentication -----------------------------------------------------------------------

def capabilities(line: bytes) -> set[str]:
    """The capability names of a CAPABILITY response or response code."""
    words = re.sub(rb"^.*?CAPABILITY ", b"", line).rstrip(b"]").split(b"]")[0].split()
    return {w.decode().upper() for w in words}


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_starttls_verified_against_the_generated_certificate_then_login_works(shared, account):
    client = imaplib.IMAP4(HOST, account.port, timeout=10)
    assert "STARTTLS" in client.capabilities
    typ, _ = client.starttls(ssl_context=tls_context(shared))
    assert typ == "OK"
    assert isinstance(client.sock, ssl.SSLSocket)
    assert client.sock.getpeercert() is not None
    assert "STARTTLS" not in client.capabilities, "STARTTLS is offered only before TLS"
    assert "AUTH=PLAIN" in client.capabilities
    client.login(account.address, account.password)
    assert client.select("INBOX") == ("OK", [b"0"])
    client.logout()


def test_starttls_twice_and_starttls_after_login_are_refused(shared, account):
    with Imap(account.port) as raw:
        raw.ok("STARTTLS")
        raw.sock = tls_context(shared).wrap_socket(raw.sock, server_hostname="localhost")
        assert raw.command("STARTTLS").status == "BAD"
        raw.login(account.address)
        assert raw.command("STARTTLS").status == "BAD"
        assert raw.ok("NOOP") == []


def test_commands_pipelined_after_starttls_in_plaintext_are_discarded(shared, account):
    # RFC 9051 §6.2.1: nothing received before the TLS handshake may be acted on after it.
    with Imap(account.port) as raw:
        raw.send(f"t1 STARTTLS\r\nt2 LOGIN {quote(account.address)} {quote(account.password)}\r\n"
                 f"t3 CREATE Injected\r\n".encode())
        assert raw.response().startswith(b"t1 OK")
        raw.sock = tls_context(shared).wrap_socket(raw.sock, server_hostname="localhost")
        assert raw.command("SELECT INBOX").status == "BAD", "the plaintext LOGIN was not used"
        raw.login(account.address)
        assert "Injected" not in list_entries(raw.ok('LIST "" *'))


def test_implicit_tls_with_imaplib_imap4_ssl(shared, account):
    client = VerifiedImap4Ssl(HOST, shared.port("imap", "implicit"), ssl_context=tls_context(shared), timeout=10)
    assert "STARTTLS" not in client.capabilities and "AUTH=PLAIN" in client.capabilities
    client.login(account.address, account.password)
    client.append("INBOX", None, None, message("over implicit TLS"))
    client.select("INBOX")
    typ, data = client.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: over implicit TLS\r\n\r\n"
    client.logout()


def test_imapclient_over_implicit_tls_and_starttls(shared, account):
    client = IMAPClient(HOST, shared.port("imap", "implicit"), ssl=True, ssl_context=tls_context(shared), timeout=10)
    client.login(account.address, account.password)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()
    client = IMAPClient(HOST, account.port, ssl=False, timeout=10)
    client.starttls(tls_context(shared))
    client.login(account.address, account.password)
    assert b"STARTTLS" not in client.capabilities()
    client.logout()


def test_plaintext_never_says_logindisabled_and_refuses_passwords_until_tls(make_server):
    server = imap_server(make_server, {"auth": {"plaintext": "never"}})
    with Imap(server.port("imap")) as raw:
        caps = capabilities(raw.greeting)
        assert {"LOGINDISABLED", "STARTTLS"} <= caps and "AUTH=PLAIN" not in caps, caps
        caps = capabilities(raw.ok("CAPABILITY")[0])
        assert "LOGINDISABLED" in caps and "AUTH=PLAIN" not in caps
        reply = raw.command(f"LOGIN ta {DEMO_PASSWORD}")
        assert (reply.status, reply.code) == ("NO", "PRIVACYREQUIRED"), reply
        reply = raw.command(f"AUTHENTICATE PLAIN {plain('ta', DEMO_PASSWORD)}")
        assert reply.status == "NO", reply
        assert raw.command("SELECT INBOX").status == "BAD", "not logged in"
        raw.ok("STARTTLS")
        raw.sock = tls_context(server).wrap_socket(raw.sock, server_hostname="localhost")
        caps = capabilities(raw.ok("CAPABILITY")[0])
        assert "AUTH=PLAIN" in caps and not {"LOGINDISABLED", "STARTTLS"} & caps, caps
        raw.login("ta", DEMO_PASSWORD)
        raw.select()
    client = imaplib.IMAP4(HOST, server.port("imap"), timeout=10)
    with pytest.raises(imaplib.IMAP4.error):
        client.login("ta", DEMO_PASSWORD)
    client.shutdown()
    # Implicit TLS is TLS: no LOGINDISABLED there.
    client = VerifiedImap4Ssl(HOST, server.port("imap", "implicit"), ssl_context=tls_context(server), timeout=10)
    assert "LOGINDISABLED" not in client.capabilities
    client.login("ta", DEMO_PASSWORD)
    client.logout()


def test_authenticate_plain_with_an_initial_response_logs_in_and_reports_capabilities(shared, account):
    with Imap(account.port) as raw:
        assert "SASL-IR" in capabilities(raw.greeting)
        reply = raw.command(f"AUTHENTICATE PLAIN {plain(account.address, account.password)}")
        assert reply.status == "OK", reply
        assert reply.code.startswith("CAPABILITY ") and "IDLE" in reply.code.split()
        raw.select()


def test_authenticate_plain_with_a_continuation_and_a_cancel(shared, account):
    with Imap(account.port) as raw:
        tag = raw.send_command("AUTHENTICATE PLAIN")
        assert raw.response().startswith(b"+")
        raw.send(b"*\r\n")
        assert raw.finish(tag).status == "BAD", "cancelled (RFC 9051 §6.2.2)"
        tag = raw.send_command("AUTHENTICATE PLAIN")
        assert raw.response().startswith(b"+")
        raw.send(plain(account.address, account.password).encode() + b"\r\n")
        assert raw.finish(tag).status == "OK"
    client = imaplib.IMAP4(HOST, account.port, timeout=10)
    typ, _ = client.authenticate("PLAIN", lambda _: f"\0{account.address}\0{account.password}".encode())
    assert typ == "OK"
    client.logout()


def test_authenticate_plain_refuses_a_wrong_password_and_another_authorization_identity(shared, account):
    with Imap(account.port) as raw:
        reply = raw.command(f"AUTHENTICATE PLAIN {plain(account.address, 'wrong')}")
        assert (reply.status, reply.code) == ("NO", "AUTHENTICATIONFAILED")
        as_other = base64.b64encode(f"ta@{DOMAIN}\0{account.address}\0{account.password}".encode()).decode()
        assert raw.command(f"AUTHENTICATE PLAIN {as_other}").status == "NO", "no proxy logins"
        assert raw.command("AUTHENTICATE CRAM-MD5").status == "NO"
        assert raw.command("SELECT INBOX").status == "BAD", "not logged in"


def test_login_with_the_bare_local_part_or_the_alias_domain_reaches_the_same_mailbox(shared, account):
    local = account.address.split("@")[0]
    account.fill("INBOX", [message("whose is it")])
    for user in (local, f"{local}@localhost", account.address.upper()):
        with Imap(account.port) as raw:
            raw.login(user, account.password)
            assert untagged_numbers(raw.select(), "EXISTS") == [1], user
    client = imaplib.IMAP4(HOST, account.port, timeout=10)
    client.login(local, account.password)
    assert client.select("INBOX") == ("OK", [b"1"])
    client.logout()


def test_a_wrong_password_is_refused_after_the_failure_delay_without_holding_up_others(make_server):
    server = imap_server(make_server, {"auth": {"failure_delay_ms": 1000}})
    with Imap(server.port("imap")) as slow:
        started = time.monotonic()
        tag = slow.send_command("LOGIN ta not-the-password")
        # Meanwhile another client logs in and is served at once.
        still_serving(server)
        assert time.monotonic() - started < 0.9, "another client waited for the delay"
        reply = slow.finish(tag)
        elapsed = time.monotonic() - started
        assert (reply.status, reply.code) == ("NO", "AUTHENTICATIONFAILED"), reply
        assert elapsed >= 0.9, f"failed login answered after {elapsed:.3f}s, before the 1 s delay"
        started = time.monotonic()
        slow.login("ta", DEMO_PASSWORD)
        assert time.monotonic() - started < 0.9, "a right password is not delayed"
    client = imaplib.IMAP4(HOST, server.port("imap"), timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login("nobody", DEMO_PASSWORD)
    client.shutdown()


def test_the_verbose_transcript_shows_the_dialogue_but_never_a_password(make_server):
    server = imap_server(make_server, verbose=True)
    secret = "Tr4nscript-Secret-77"
    account = new_account(server, password=secret)
    with Imap(account.port) as raw:
        raw.ok(f"LOGIN {account.address} {secret}")  # atoms
    with Imap(account.port) as raw:
        raw.ok(f'LOGIN "{account.address}" "{secret}"')  # quoted strings
    with Imap(account.port) as raw:
        raw.ok(f"LOGIN {account.address} {{{len(secret)}+}}\r\n{secret}")  # a literal
    with Imap(account.port) as raw:
        assert raw.command(f"LOGIN {account.address} Wr0ng-{secret}").status == "NO"
        raw.ok(f"AUTHENTICATE PLAIN {plain(account.address, secret)}")
    with Imap(account.port) as raw:
        tag = raw.send_command("AUTHENTICATE PLAIN")
        assert raw.response().startswith(b"+")
        raw.send(plain(account.address, secret).encode() + b"\r\n")
        assert raw.finish(tag).status == "OK"
        raw.ok("SELECT INBOX")
    client = account.imapclient()
    client.logout()
    assert server.stop() == 0
    log = server.log()
    assert "C: t1 LOGIN <redacted>" in log and "S: t1 OK" in log, log[-3000:]
    assert "SELECT INBOX" in log and "AUTHENTICATE PLAIN <redacted>" in log
    for forbidden in (secret, plain(account.address, secret), base64.b64encode(secret.encode()).decode(),
                      plain(account.address, secret)[:-4]):
        assert forbidden not in log, f"{forbidden!r} is in the transcript"


def test_the_verbose_transcript_hides_the_password_of_malformed_logins_too(make_server):
    # Typed by hand, or sent by a broken client: a missing tag, a doubled space, a tab.
    server = imap_server(make_server, verbose=True)
    secrets = [f"Malformed-Secret-{n}" for n in range(5)]
    with Imap(server.port("imap")) as raw:
        for line in (f"LOGIN ta {secrets[0]}", f"m1  LOGIN ta {secrets[1]}", f"m2 LOGIN\tta {secrets[2]}",
                     f"m3\tLOGIN ta {secrets[3]}", f"m4  AUTHENTICATE  PLAIN  {plain('ta', secrets[4])}"):
            raw.send(line.encode() + b"\r\n")
            assert b" BAD " in raw.response()
        raw.login("ta", DEMO_PASSWORD)
    assert server.stop() == 0
    log = server.log()
    assert "LOGIN <redacted>" in log, log[-3000:]
    for secret in secrets[:4] + [plain("ta", secrets[4])]:
        assert secret not in log, f"{secret!r} is in the transcript"


# --- LIST, LSUB, NAMESPACE, STATUS; UIDVALIDITY and UIDNEXT ---------------------------------------

def test_every_new_account_has_the_six_standard_mailboxes_with_their_special_use(account):
    with account.raw() as raw:
        listed = list_entries(raw.ok('LIST "" *'))
        assert set(listed) == set(STANDARD_MAILBOXES)
        for name, attribute in STANDARD_MAILBOXES.items():
            assert "\\hasnochildren" in listed[name], (name, listed[name])
            if attribute:
                assert attribute.lower() in listed[name], (name, listed[name])
            else:
                assert not {"\\sent", "\\drafts", "\\trash", "\\junk", "\\archive"} & set(listed[name])
        special = list_entries(raw.ok('LIST (SPECIAL-USE) "" *'))
        assert set(special) == {name for name, attribute in STANDARD_MAILBOXES.items() if attribute}
        assert list_entries(raw.ok('LIST "" * RETURN (SPECIAL-USE)')) == listed


def test_list_patterns_percent_star_reference_and_the_delimiter(account):
    with account.raw() as raw:
        raw.ok("CREATE Lists/a/deep")
        raw.ok("CREATE Lists/b")
        assert set(list_entries(raw.ok('LIST "" %'))) == set(STANDARD_MAILBOXES) | {"Lists"}
        assert set(list_entries(raw.ok('LIST "" Lists/%'))) == {"Lists/a", "Lists/b"}
        assert set(list_entries(raw.ok('LIST "Lists/" *'))) == {"Lists/a", "Lists/a/deep", "Lists/b"}
        assert set(list_entries(raw.ok('LIST "" inbox'))) == {"INBOX"}, "INBOX is case-insensitive"
        # An empty pattern asks for the hierarchy delimiter (RFC 9051 §6.3.9).
        assert raw.ok('LIST "" ""') == [b'* LIST (\\Noselect) "/" ""']
        listed = list_entries(raw.ok('LIST "" (INBOX Lists/b) RETURN (CHILDREN)'))
        assert listed == {"INBOX": ["\\hasnochildren"], "Lists/b": ["\\hasnochildren"]}


def test_list_extended_subscribed_with_recursivematch_reports_childinfo(account):
    with account.raw() as raw:
        raw.ok("CREATE Clubs/Chess")
        raw.ok("CREATE Clubs/Go")
        raw.ok("SUBSCRIBE Clubs/Chess")
        subscribed = list_entries(raw.ok('LIST (SUBSCRIBED) "" *'))
        assert "Clubs/Chess" in subscribed and "\\subscribed" in subscribed["Clubs/Chess"]
        assert "Clubs" not in subscribed and "Clubs/Go" not in subscribed
        untagged = raw.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
        clubs = next(line for line in untagged if b'"/" Clubs' in line)
        # RFC 5258 §3.5: Clubs is not subscribed, but has a subscribed child.
        assert clubs.endswith(b'("CHILDINFO" ("SUBSCRIBED"))'), clubs
        assert b"\\Subscribed" not in clubs


def test_list_status_returns_a_status_after_each_mailbox(account):
    account.fill("INBOX", [message("a"), message("b")], flags="\\Seen")
    account.fill("INBOX", [message("c")])
    account.fill("Drafts", [message("d")])
    with account.raw() as raw:
        untagged = raw.ok('LIST "" * RETURN (STATUS (MESSAGES UNSEEN))')
        names = [text(parse(line)[4]) for line in untagged if line.startswith(b"* LIST ")]
        assert set(names) == set(STANDARD_MAILBOXES)
        for name in names:
            index = next(i for i, line in enumerate(untagged) if line.startswith(b"* LIST ")
                         and text(parse(line)[4]) == name)
            assert untagged[index + 1].startswith(b"* STATUS "), "the STATUS comes right after its LIST"
        assert status_items(untagged, "INBOX") == {"MESSAGES": 3, "UNSEEN": 1}
        assert status_items(untagged, "Drafts") == {"MESSAGES": 1, "UNSEEN": 1}
        assert status_items(untagged, "Trash") == {"MESSAGES": 0, "UNSEEN": 0}


def test_list_status_gives_what_status_gives_for_every_item(account):
    account.fill("INBOX", [message("a"), message("b")], flags="\\Seen \\Deleted")
    account.fill("INBOX", [message("c")], flags="\\Deleted")
    account.fill("Junk", [message("spam")])
    items = "MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE"
    with account.raw() as raw:
        listed = raw.ok(f'LIST "" * RETURN (STATUS ({items}))')
        for name in STANDARD_MAILBOXES:
            alone = status_items(raw.ok(f"STATUS {name} ({items})"))
            assert status_items(listed, name) == alone, name
        assert status_items(listed, "INBOX")["DELETED"] == 3


def test_subscribe_unsubscribe_and_lsub(account):
    with account.raw() as raw:
        assert set(list_entries(raw.ok('LSUB "" *'), "LSUB")) == set(STANDARD_MAILBOXES)
        raw.ok("CREATE Hobbies/Knitting")
        assert "Hobbies/Knitting" not in list_entries(raw.ok('LSUB "" *'), "LSUB"), "CREATE does not subscribe"
        raw.ok("SUBSCRIBE Hobbies/Knitting")
        assert "Hobbies/Knitting" in list_entries(raw.ok('LSUB "" *'), "LSUB")
        # `%` shows the unsubscribed parent of a subscribed name as \Noselect (RFC 3501 §6.3.9).
        assert list_entries(raw.ok('LSUB "" Hob%'), "LSUB") == {"Hobbies": ["\\noselect"]}
        raw.ok("UNSUBSCRIBE Hobbies/Knitting")
        assert not any(name.startswith("Hobbies") for name in list_entries(raw.ok('LSUB "" *'), "LSUB"))
        raw.ok("UNSUBSCRIBE Trash")
        assert "Trash" not in list_entries(raw.ok('LSUB "" *'), "LSUB")
    client = account.imapclient()
    client.subscribe_folder("Trash")
    assert "Trash" in [folder[2] for folder in client.list_sub_folders()]


def test_namespace_is_one_personal_namespace_with_slash(account):
    with account.raw() as raw:
        assert raw.ok("NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL']
    client = account.imapclient()
    namespace = client.namespace()
    assert namespace.personal == (("", "/"),) and namespace.other is None and namespace.shared is None


def test_status_reports_messages_uidnext_uidvalidity_unseen_and_size(account):
    contents = [message("s1", "x" * 100), message("s2", "y" * 2000), message("s3")]
    uids = account.fill("INBOX", contents[:1], flags="\\Seen") + account.fill("INBOX", contents[1:])
    with account.raw() as raw:
        validity = next(int(m.group(1)) for line in raw.ok("EXAMINE INBOX")
                        if (m := re.search(rb"\[UIDVALIDITY (\d+)\]", line)))
        raw.ok("UNSELECT")
        status = status_items(raw.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)"), "INBOX")
        assert status == {"MESSAGES": 3, "UIDNEXT": uids[-1] + 1, "UIDVALIDITY": validity, "UNSEEN": 2,
                          "SIZE": sum(len(c) for c in contents)}
        other = status_items(raw.ok("STATUS Junk (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)"))
        assert other["MESSAGES"] == 0 and other["SIZE"] == 0 and other["UIDNEXT"] == 1
        assert other["UIDVALIDITY"] > 0
        assert raw.command("STATUS Nowhere (MESSAGES)").code == "NONEXISTENT"
    client = account.imapclient()
    assert client.folder_status("INBOX", ["MESSAGES", "UNSEEN"]) == {b"MESSAGES": 3, b"UNSEEN": 2}


def test_uidvalidity_and_uidnext_persist_across_a_restart(make_server):
    server = imap_server(make_server)
    account = new_account(server)
    account.fill("INBOX", [message("before restart 1"), message("before restart 2")])
    with account.raw() as raw:
        raw.ok("CREATE Kept")
        before = {name: status_items(raw.ok(f"STATUS {name} (UIDNEXT UIDVALIDITY MESSAGES)"))
                  for name in ("INBOX", "Kept", "Sent")}
    assert server.stop() == 0
    server.start()
    with account.raw() as raw:
        after = {name: status_items(raw.ok(f"STATUS {name} (UIDNEXT UIDVALIDITY MESSAGES)"))
                 for name in ("INBOX", "Kept", "Sent")}
        assert after == before
        select = raw.select()
        assert f"[UIDVALIDITY {before['INBOX']['UIDVALIDITY']}]".encode() in b"".join(select)
        assert appenduid(raw.append("INBOX", message("after restart"))) == \
            (before["INBOX"]["UIDVALIDITY"], before["INBOX"]["UIDNEXT"])


def test_uids_are_never_reused_after_expunge_even_across_a_restart(make_server):
    server = imap_server(make_server)
    account = new_account(server)
    uids = account.fill("INBOX", [message(f"u{n}") for n in range(1, 4)])
    assert uids == [1, 2, 3]
    with account.raw() as raw:
        raw.select()
        raw.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        raw.ok("EXPUNGE")
        # The highest UIDs are gone; the next one is still past them.
        assert appenduid(raw.append("INBOX", message("u4")))[1] == 4
        raw.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
        raw.ok("UID EXPUNGE 4")
        assert status_items(raw.ok("STATUS INBOX (UIDNEXT MESSAGES)")) == {"UIDNEXT": 5, "MESSAGES": 1}
    server.kill9()  # not even a clean shutdown
    server.start()
    with account.raw() as raw:
        assert status_items(raw.ok("STATUS INBOX (UIDNEXT MESSAGES)")) == {"UIDNEXT": 5, "MESSAGES": 1}
        assert appenduid(raw.append("INBOX", message("u5")))[1] == 5
        raw.select()
        assert search_numbers(raw.ok("UID SEARCH ALL")) == [1, 5]


def test_a_deleted_and_recreated_mailbox_gets_a_new_uidvalidity(account):
    with account.raw() as raw:
        raw.ok("CREATE Again")
        raw.append("Again", message("old"))
        first = status_items(raw.ok("STATUS Again (UIDVALIDITY UIDNEXT)"))
        raw.ok("DELETE Again")
        raw.ok("CREATE Again")
        second = status_items(raw.ok("STATUS Again (UIDVALIDITY UIDNEXT)"))
        # RFC 9051 §2.3.1.1: UIDs that do not persist come with a greater UIDVALIDITY.
        assert second["UIDNEXT"] == 1
        assert second["UIDVALIDITY"] > first["UIDVALIDITY"], (first, second)


def test_a_mailbox_renamed_onto_a_former_name_never_takes_that_names_uidvalidity(account):
    # RFC 9051 §2.3.1.1: a mailbox name, its UIDVALIDITY and a UID name one message, for ever.
    with account.raw() as raw:
        raw.ok("CREATE P/Q")  # P is created with it
        uid = appenduid(raw.append("P/Q", message("first in P/Q")))[1]
        old = status_items(raw.ok("STATUS P/Q (UIDVALIDITY)"))["UIDVALIDITY"]
        raw.ok("RENAME P/Q Z")
        raw.append("P", message("first in P"))
        raw.ok("RENAME P T")
        raw.ok("RENAME T P/Q")
        new = status_items(raw.ok("STATUS P/Q (UIDVALIDITY)"))["UIDVALIDITY"]
        raw.ok("EXAMINE P/Q")
        subject = fetches(raw.ok(f"UID FETCH {uid} BODY.PEEK[HEADER.FIELDS (SUBJECT)]"))[1]
        assert new > old, (f"P/Q UIDVALIDITY {old} UID {uid} was 'first in P/Q' and is now "
                           f"{subject['BODY[HEADER.FIELDS (SUBJECT)]']!r} under the same UIDVALIDITY {new}")
