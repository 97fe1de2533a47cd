"""`tidings mail`, the command-line mail client, end to end: the real binary against real servers.

IMAP commands run against two kinds of server, as the `mail_server` fixture's parameter:

- "dovecot": Dovecot (Debian's dovecot-imapd), started per module in the foreground with its own
  base_dir, a passwd-file of test users, Maildir storage, and a generated certificate (so STARTTLS
  and implicit TLS are exercised with --ca);
- "tidings": tidings' own IMAP service, with STARTTLS on one port and implicit TLS on another.

A second Dovecot ("legacy": no TLS, no MOVE, no UIDPLUS, no LITERAL+) exercises the plaintext
loopback path and the COPY/STORE/EXPUNGE fallback. `send` runs against tidings' submission service
and is read back over POP3.

Messages are seeded and checked with Python's imaplib, independent of the client under test.
Servers bind free loopback ports; readiness is polled with a bound, never slept for.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import itertools
import json
import os
import poplib
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from conftest import DEMO_PASSWORD, READY_TIMEOUT_SECS, Server, binary, wait_until

HOST = "127.0.0.1"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVECOT_USERS = 64
CLI_TIMEOUT_SECS = 60

# Messages that stress the formats: `From ` lines at several quoting depths, dot lines, trailing
# empty lines, a message with its own Status fields, 8-bit text, flags of every kind, and dates.
ROUND_TRIP = [
    (b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: plain\r\n"
     b"Date: Sat, 21 Nov 2026 09:42:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello Bob.\r\n",
     {"\\Seen"}, "21-Nov-2026 09:42:00 +0000"),
    (b"Subject: from lines\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nFrom\r\n"
     b". a dot\r\n.\r\n..\r\n", {"\\Flagged", "\\Answered"}, "01-Jan-2020 00:00:00 +0000"),
    (b"Subject: trailing empty lines\r\n\r\nbody\r\n\r\n\r\n", {"$Forwarded", "Work"},
     "15-Mar-2021 12:30:45 +0000"),
    (b"Status: RO\r\nX-Status: A\r\nX-Keywords: stale\r\nSubject: its own status fields\r\n\r\nx\r\n",
     {"\\Draft"}, "02-Feb-2022 02:02:02 +0000"),
    ("Subject: =?utf-8?B?R3LDvMOfZQ==?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln\r\n".encode(), set(),
     "03-Mar-2023 03:03:03 +0000"),
    (b"Subject: deleted but kept\r\n\r\nstill here\r\n", {"\\Deleted", "\\Seen"},
     "04-Apr-2024 04:04:04 +0000"),
]


# --- servers -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed end-entity certificate for localhost and 127.0.0.1 (openssl)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:FALSE"],
        check=True, capture_output=True, timeout=60)
    key.chmod(0o644)
    return cert, key


class Dovecot:
    """One Dovecot in the foreground (`dovecot -F`) on free loopback ports, with DOVECOT_USERS
    users `userNN@example.org` (password `pw-NN`) stored as Maildir under its own directory.

    Run as root, Dovecot refuses mail access as root and its login processes drop to dovenull, so
    the directory is a fresh one outside pytest's private tree, readable by them, and mail is
    stored as `nobody`.
    """

    def __init__(self, root: Path, tls: bool = True, legacy: bool = False):
        self.root = root
        self.tls = tls
        self.legacy = legacy
        self.imap_port = free_port()
        self.imaps_port = free_port() if tls else None
        self.log_path = root / "dovecot.log"
        self.ca: Path | None = None
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        root = self.root
        mail = root / "mail"
        mail.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(mail, nobody.pw_uid, nobody.pw_gid)
            users = (f"mail_uid = {nobody.pw_uid}\nmail_gid = {nobody.pw_gid}\n"
                     "default_login_user = dovenull\ndefault_internal_user = dovecot\n")
            chroot = ""
        else:
            me = pwd.getpwuid(os.geteuid())
            users = (f"mail_uid = {me.pw_uid}\nmail_gid = {me.pw_gid}\nfirst_valid_uid = {me.pw_uid}\n"
                     f"default_login_user = {me.pw_name}\ndefault_internal_user = {me.pw_name}\n"
                     f"default_internal_group = {me.pw_name}\n")
            chroot = "  chroot =\n"
        passwd = root / "passwd"
        passwd.write_text("".join(f"user{n:02}@example.org:{{PLAIN}}pw-{n:02}::::\n"
                                  for n in range(1, DOVECOT_USERS + 1)))
        passwd.chmod(0o644)
        if self.tls:
            cert, key = make_certificate(root)
            self.ca = cert
            ssl_settings = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
            imaps = f"address = {HOST}\n    port = {self.imaps_port}\n    ssl = yes"
        else:
            ssl_settings = "ssl = no\n"
            imaps = "port = 0"
        legacy = ""
        if self.legacy:
            # The capabilities of an older server after login: no MOVE (RFC 6851), no UIDPLUS
            # (RFC 4315), no LITERAL+.
            legacy = "imap_capability = IMAP4rev1 SASL-IR ID ENABLE IDLE NAMESPACE CHILDREN\n"
        return f"""# Written by tests/test_mail_client.py
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log_path}
protocols = imap
listen = {HOST}
{ssl_settings}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
{legacy}mail_location = maildir:{mail}/%u
{users}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
"""

    def start(self) -> "Dovecot":
        if not Path(DOVECOT).exists():
            pytest.fail("Dovecot is not installed: apt-get install dovecot-imapd (.ci/run does)")
        conf = self.root / "dovecot.conf"
        conf.write_text(self.config())
        out = open(self.root / "stdout.log", "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out.close()
        wait_until(self.greets, READY_TIMEOUT_SECS, "Dovecot's IMAP greeting")
        return self

    def greets(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"dovecot exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with socket.create_connection((HOST, self.imap_port), timeout=2) as s:
                return s.recv(512).startswith(b"* OK")
        except OSError:
            return False

    def log(self) -> str:
        text = ""
        for path in (self.root / "stdout.log", self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def check_log(self):
        """Dovecot logged no error, fatal error or panic (the client never upset it)."""
        bad = [line for line in self.log().splitlines() if re.search(r"\b(Error|Fatal|Panic):", line)]
        assert not bad, "\n".join(bad[-20:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def dovecot_root():
    """A directory for Dovecot instances that Dovecot's unprivileged processes can traverse."""
    root = Path(tempfile.mkdtemp(prefix="tidings-dovecot-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def started_dovecot(root: Path, **kw) -> Dovecot:
    root.mkdir()
    root.chmod(0o755)
    return Dovecot(root, **kw).start()


@dataclass
class MailServer:
    """A server under test: where its IMAP (and SMTP) services are and how to make accounts."""
    kind: str
    imap_port: int
    ca: Path | None
    new_account: callable
    imaps_port: int | None = None
    submission_port: int | None = None
    extra_args: list[str] = field(default_factory=list)


@dataclass
class Account:
    server: MailServer
    user: str
    password: str

    def mail(self, *args: str, check: bool = True, input: bytes | None = None, imap: str | None = None,
             password: str | None = None, ca: bool = True, **kw) -> subprocess.CompletedProcess:
        """Runs `tidings mail --imap … --user … ARGS` with the password in TIDINGS_PASSWORD."""
        command = [str(binary()), "mail", "--imap", imap or f"{HOST}:{self.server.imap_port}", "--user", self.user]
        if ca and self.server.ca:
            command += ["--ca", str(self.server.ca)]
        command += [*self.server.extra_args, *args]
        env = dict(os.environ, TIDINGS_PASSWORD=self.password if password is None else password)
        result = subprocess.run(command, capture_output=True, env=env, input=input, timeout=CLI_TIMEOUT_SECS, **kw)
        if check:
            assert result.returncode == 0, f"{command} failed:\n{result.stderr.decode(errors='replace')}"
        return result

    def mail_json(self, *args: str, **kw):
        return json.loads(self.mail("--json", *args, **kw).stdout)

    def imap(self) -> imaplib.IMAP4:
        """An imaplib session (STARTTLS when offered), logged in."""
        client = imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)
        if "STARTTLS" in client.capabilities:
            context = ssl.create_default_context(cafile=str(self.server.ca)) if self.server.ca else None
            client.starttls(ssl_context=context)
        client.login(self.user, self.password)
        return client


@pytest.fixture(scope="module")
def tidings_server(tmp_path_factory):
    """tidings with every mail service, STARTTLS and implicit-TLS IMAP, one per module."""
    tidings = Server(tmp_path_factory.mktemp("tidings-imap"), listeners=[
        ("smtp", "starttls"), ("submission", "starttls"), ("pop3", "starttls"), ("imap", "starttls"),
        ("imap", "implicit")])
    tidings.start()
    users = itertools.count(1)

    def new_account() -> Account:
        address = f"client{next(users)}@mmsys.upenn.edu"
        result = tidings.account("add", address, password="secret-pw")
        assert result.returncode == 0, result.stderr
        return Account(server, address, "secret-pw")

    server = MailServer("tidings", tidings.port("imap", "starttls"), tidings.data / "tls" / "cert.pem", new_account,
                        submission_port=tidings.submission_port, imaps_port=tidings.port("imap", "implicit"))
    yield server
    assert tidings.stop() == 0
    assert "panicked" not in tidings.log()


@pytest.fixture(scope="module", params=["dovecot", "tidings"])
def mail_server(request, dovecot_root):
    """The IMAP server under test, one per module and kind."""
    if request.param == "dovecot":
        dovecot = started_dovecot(dovecot_root / "main", tls=True)
        users = itertools.count(1)

        def new_account() -> Account:
            n = next(users)
            assert n <= DOVECOT_USERS, "raise DOVECOT_USERS"
            return Account(server, f"user{n:02}@example.org", f"pw-{n:02}")

        server = MailServer("dovecot", dovecot.imap_port, dovecot.ca, new_account, imaps_port=dovecot.imaps_port)
        yield server
        dovecot.stop()
        dovecot.check_log()
    else:
        yield request.getfixturevalue("tidings_server")


@pytest.fixture
def account(mail_server) -> Account:
    """A fresh, empty account on the server under test."""
    return mail_server.new_account()


@pytest.fixture(scope="module")
def legacy(dovecot_root):
    """A Dovecot without TLS, MOVE, UIDPLUS or LITERAL+."""
    dovecot = started_dovecot(dovecot_root / "legacy", tls=False, legacy=True)
    users = itertools.count(1)

    def new_account() -> Account:
        n = next(users)
        return Account(server, f"user{n:02}@example.org", f"pw-{n:02}")

    server = MailServer("dovecot-legacy", dovecot.imap_port, None, new_account)
    yield server
    dovecot.stop()
    dovecot.check_log()


# --- IMAP helpers (imaplib, independent of the client under test) ---------------------------------

def quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def append(account: Account, folder: str, message: bytes, flags=(), date: str | None = None) -> None:
    imap = account.imap()
    try:
        if folder.upper() != "INBOX":
            imap.create(quoted(folder))
        flag_list = "(" + " ".join(sorted(flags)) + ")" if flags else None
        internal = f'"{date}"' if date else None
        typ, data = imap.append(quoted(folder), flag_list, internal, message)
        assert typ == "OK", data
    finally:
        imap.logout()


def seed(account: Account, folder: str, messages) -> None:
    for message, flags, date in messages:
        append(account, folder, message, flags, date)


@dataclass(frozen=True)
class Stored:
    uid: int
    flags: frozenset
    internal_date: float
    octets: bytes


FETCH_RE = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]+)\"")


def snapshot(account: Account, folder: str) -> list[Stored]:
    """Every message of `folder`, in UID order, with its flags (without \\Recent), internal date
    (Unix time) and octets."""
    imap = account.imap()
    try:
        typ, data = imap.select(quoted(folder), readonly=True)
        assert typ == "OK", data
        if int(data[0]) == 0:
            return []
        typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        assert typ == "OK", data
    finally:
        imap.logout()
    stored = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = flags = date = None
        for m in FETCH_RE.finditer(item[0]):
            if m.group(1):
                uid = int(m.group(1))
            elif m.group(2) is not None:
                flags = frozenset(f for f in m.group(2).decode().split() if f != "\\Recent")
            elif m.group(3):
                date = datetime.strptime(m.group(3).decode(), "%d-%b-%Y %H:%M:%S %z").timestamp()
        stored.append(Stored(uid, flags, date, item[1]))
    return sorted(stored, key=lambda s: s.uid)


def contents(messages: list[Stored]) -> list[tuple[bytes, frozenset, float]]:
    return [(m.octets, m.flags, m.internal_date) for m in messages]


def expected(messages) -> list[tuple[bytes, frozenset, float]]:
    return [(octets, frozenset(flags), datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp())
            for octets, flags, date in messages]


def folder_names(account: Account) -> list[str]:
    return [f["name"] for f in account.mail_json("folders")]


# --- folders ---------------------------------------------------------------------------------------

def test_folders_lists_inbox_first_with_counts_and_special_uses(account):
    seed(account, "INBOX", ROUND_TRIP[:2])
    folders = account.mail_json("folders")
    assert folders[0]["name"] == "INBOX"
    assert folders[0]["messages"] == 2
    assert folders[0]["unseen"] == 1
    trash = [f for f in folders if "\\Trash" in f["attributes"]]
    assert len(trash) == 1
    text = account.mail("folders").stdout.decode()
    assert re.search(r"^INBOX\s+2\s+1\b", text, re.M), text


def test_folder_create_rename_and_delete(account):
    assert account.mail("folder", "create", "Projects").stdout.decode() == "Created folder Projects\n"
    assert "Projects" in folder_names(account)
    account.mail("folder", "rename", "Projects", "Archive-2026")
    names = folder_names(account)
    assert "Archive-2026" in names and "Projects" not in names
    account.mail("folder", "delete", "Archive-2026")
    assert "Archive-2026" not in folder_names(account)


def test_folder_names_beyond_ascii_are_sent_in_modified_utf7_and_shown_decoded(account):
    account.mail("folder", "create", "Entwürfe & Notizen")
    assert "Entwürfe & Notizen" in folder_names(account)
    imap = account.imap()
    try:
        typ, data = imap.list()
        assert any(b'"Entw&APw-rfe &- Notizen"' in line or b"Entw&APw-rfe &- Notizen" in line for line in data), data
    finally:
        imap.logout()


def test_creating_a_folder_that_exists_fails_with_the_servers_reason(account):
    account.mail("folder", "create", "Twice")
    result = account.mail("folder", "create", "Twice", check=False)
    assert result.returncode == 1
    assert b"creating Twice failed: NO" in result.stderr


# --- list and read -------------------------------------------------------------------------------

def test_list_shows_uid_flags_date_sender_subject_and_size(account):
    seed(account, "INBOX", ROUND_TRIP[:2])
    listing = account.mail_json("list")
    assert listing["folder"] == "INBOX"
    first, second = listing["messages"]
    assert first["uid"] < second["uid"]
    assert first["subject"] == "plain"
    assert first["from"] == "Ann <ann@example.org>"
    assert first["date"] == "2026-11-21T09:42:00Z"
    assert first["internal_date"] == "2026-11-21T09:42:00+00:00"
    assert first["size"] == len(ROUND_TRIP[0][0])
    assert "\\Seen" in first["flags"]
    assert {"\\Flagged", "\\Answered"} <= set(second["flags"])
    text = account.mail("list").stdout.decode()
    assert "INBOX: 2 messages" in text
    assert re.search(rf"^\s+{first['uid']}\s+-----\s+2026-11-21 09:42\s+Ann\s+\d+ B\s+plain$", text, re.M), text
    assert re.search(rf"^\s+{second['uid']}\s+NAF--\s", text, re.M), text


def test_list_of_an_empty_folder_says_so(account):
    assert account.mail("list").stdout.decode() == "INBOX: no messages\n"
    assert account.mail_json("list")["messages"] == []


def test_list_of_a_missing_folder_fails_naming_it(account):
    result = account.mail("list", "--folder", "Nowhere", check=False)
    assert result.returncode == 1
    assert b"opening Nowhere failed" in result.stderr


def test_read_shows_the_header_fields_and_text_and_marks_the_message_seen(account):
    seed(account, "INBOX", [(ROUND_TRIP[0][0], set(), None)])
    uid = account.mail_json("list")["messages"][0]["uid"]
    text = account.mail("read", str(uid)).stdout.decode()
    assert text.startswith("From: Ann <ann@example.org>\nTo: bob@example.org\n"), text
    assert "Subject: plain\n" in text
    assert text.endswith("\nHello Bob.\n")
    assert "\\Seen" in snapshot(account, "INBOX")[0].flags


def test_read_peek_leaves_the_flags_alone(account):
    seed(account, "INBOX", [(ROUND_TRIP[0][0], set(), None)])
    uid = account.mail_json("list")["messages"][0]["uid"]
    shown = account.mail_json("read", str(uid), "--peek")
    assert shown["subject"] == "plain" and shown["text"] == "Hello Bob.\n"
    assert shown["from"] == "Ann <ann@example.org>"
    assert snapshot(account, "INBOX")[0].flags == frozenset()


def test_read_raw_writes_the_stored_octets(account):
    seed(account, "INBOX", [ROUND_TRIP[1]])
    uid = account.mail_json("list")["messages"][0]["uid"]
    assert account.mail("read", str(uid), "--raw").stdout == ROUND_TRIP[1][0]


def test_read_of_a_uid_that_does_not_exist_fails_clearly(account):
    result = account.mail("read", "4242", check=False)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "tidings: no message with UID 4242 in INBOX"


# Dovecot here has no submission service: sending is tidings' alone.
def test_sent_mail_is_listed_and_read_in_the_recipients_inbox(tidings_server):
    mail_server = tidings_server
    sender, recipient = mail_server.new_account(), mail_server.new_account()
    sent = sender.mail_json("--smtp", f"{HOST}:{mail_server.submission_port}", "send", "--to", recipient.user,
                            "--subject", "Grüße over IMAP", "--body", "hello\n")
    (listed,) = recipient.mail_json("list")["messages"]
    assert listed["subject"] == "Grüße over IMAP" and listed["from"] == sender.user
    shown = recipient.mail_json("read", str(listed["uid"]))
    assert shown["message_id"] == sent["message_id"] and shown["text"] == "hello\n"


# --- delete and move -------------------------------------------------------------------------------

def test_delete_moves_the_message_to_trash(account):
    seed(account, "INBOX", ROUND_TRIP[:2])
    uid = account.mail_json("list")["messages"][0]["uid"]
    out = account.mail_json("delete", str(uid))
    assert out == {"folder": "INBOX", "uids": [uid], "action": "moved", "to": "Trash"}
    assert [m.octets for m in snapshot(account, "INBOX")] == [ROUND_TRIP[1][0]]
    assert [m.octets for m in snapshot(account, "Trash")] == [ROUND_TRIP[0][0]]


def test_delete_in_trash_removes_the_message_for_good(account):
    seed(account, "Trash", ROUND_TRIP[:1])
    uid = snapshot(account, "Trash")[0].uid
    text = account.mail("delete", str(uid), "--folder", "Trash").stdout.decode()
    assert text == f"Deleted UID {uid} from Trash for good\n"
    assert snapshot(account, "Trash") == []


def test_delete_with_expunge_removes_only_the_named_messages(account):
    seed(account, "INBOX", ROUND_TRIP[:3])
    uids = [m.uid for m in snapshot(account, "INBOX")]
    account.mail("delete", str(uids[0]), str(uids[2]), "--expunge")
    assert [m.uid for m in snapshot(account, "INBOX")] == [uids[1]]
    assert snapshot(account, "Trash") == []


def test_delete_of_a_missing_uid_changes_nothing(account):
    seed(account, "INBOX", ROUND_TRIP[:1])
    result = account.mail("delete", "999", check=False)
    assert result.returncode == 1 and b"no message with UID 999 in INBOX" in result.stderr
    assert len(snapshot(account, "INBOX")) == 1


def test_move_puts_the_message_in_the_target_folder_with_its_flags(account):
    seed(account, "INBOX", ROUND_TRIP[:2])
    account.mail("folder", "create", "Kept")
    moving = snapshot(account, "INBOX")[1]
    text = account.mail("move", str(moving.uid), "Kept").stdout.decode()
    assert text == f"Moved UID {moving.uid} from INBOX to Kept\n"
    assert [m.octets for m in snapshot(account, "INBOX")] == [ROUND_TRIP[0][0]]
    (moved,) = snapshot(account, "Kept")
    assert (moved.octets, moved.flags) == (moving.octets, moving.flags)


def test_move_to_a_missing_folder_fails_and_keeps_the_message(account):
    seed(account, "INBOX", ROUND_TRIP[:1])
    uid = snapshot(account, "INBOX")[0].uid
    result = account.mail("move", str(uid), "Nowhere", check=False)
    assert result.returncode == 1 and b"moving to Nowhere failed" in result.stderr
    assert len(snapshot(account, "INBOX")) == 1


# --- import and export -------------------------------------------------------------------------------

def test_mbox_export_then_import_round_trips_messages_flags_and_dates(account, tmp_path):
    seed(account, "Source", ROUND_TRIP)
    first = tmp_path / "first.mbox"
    out = account.mail_json("export", "--folder", "Source", "--mbox", str(first))
    assert out["exported"] == len(ROUND_TRIP)
    imported = account.mail_json("import", "--mbox", str(first), "--folder", "Copy")
    assert imported["imported"] == len(ROUND_TRIP) and imported["created"] is True
    assert contents(snapshot(account, "Copy")) == expected(ROUND_TRIP)
    # Exporting the copy gives the same file octet for octet.
    second = tmp_path / "second.mbox"
    account.mail("export", "--folder", "Copy", "--mbox", str(second))
    assert second.read_bytes() == first.read_bytes()


def test_the_exported_mbox_is_mboxrd_with_status_fields_other_programs_read(account, tmp_path):
    seed(account, "Source", ROUND_TRIP[:2])
    path = tmp_path / "out.mbox"
    account.mail("export", "--folder", "Source", "--mbox", str(path))
    text = path.read_bytes()
    assert b"\r" not in text
    assert text.startswith(b"From MAILER-DAEMON Sat Nov 21 09:42:00 2026\nX-Tidings-Added: Status\nStatus: RO\n")
    assert b"\nX-Tidings-Added: Status X-Status\nStatus: O\nX-Status: AF\nSubject: from lines\n" in text
    assert b"\n>From the start\n>>From quoted\n>>>From twice\nFrom\n" in text
    # Python's mailbox module (an independent mbox reader) sees the same messages and flags.
    import mailbox
    messages = list(mailbox.mbox(str(path), create=False))
    assert [m["Subject"] for m in messages] == ["plain", "from lines"]
    assert [m.get_flags() for m in messages] == ["RO", "OAF"]


def test_exporting_over_an_existing_file_is_refused(account, tmp_path):
    path = tmp_path / "exists.mbox"
    path.write_bytes(b"precious")
    result = account.mail("export", "--folder", "INBOX", "--mbox", str(path), check=False)
    assert result.returncode == 1 and b"never overwritten" in result.stderr
    assert path.read_bytes() == b"precious"


def test_a_foreign_mboxo_file_imports_with_flags_from_its_status_fields(account, tmp_path):
    path = tmp_path / "postfix.mbox"
    path.write_bytes(
        b"From alice@example.org Thu Jan  1 00:00:00 2026\n"
        b"Return-Path: <alice@example.org>\nSubject: one\nStatus: RO\nX-Status: F\nX-Keywords: Work\n\n"
        b">From quoted in mboxo\nbody\n\n"
        b"From bob@example.org Fri Jan  2 10:00:00 2026\nSubject: two\nStatus: O\n\nsecond\n\n")
    account.mail("import", "--mbox", str(path))
    one, two = snapshot(account, "INBOX")
    assert one.octets == (b"Return-Path: <alice@example.org>\r\nSubject: one\r\nStatus: RO\r\nX-Status: F\r\n"
                          b"X-Keywords: Work\r\n\r\nFrom quoted in mboxo\r\nbody\r\n")
    assert one.flags == {"\\Seen", "\\Flagged", "Work"}
    assert one.internal_date == datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()
    assert two.octets == b"Subject: two\r\nStatus: O\r\n\r\nsecond\r\n"
    assert two.flags == frozenset()


def test_maildir_import_then_export_round_trips_messages_flags_and_dates(account, tmp_path):
    source = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (source / sub).mkdir(parents=True)
    (source / "dovecot-keywords").write_text("0 Work\n1 $Label1\n")
    files = [
        ("cur/1700000001.M1P1.host,S=20:2,S", b"Subject: seen\n\nread me\n", {"\\Seen"}),
        ("cur/1700000002.M2P1.host:2,FRa", b"Subject: flagged\n\nFrom here\n.\n", {"\\Flagged", "\\Answered", "Work"}),
        ("cur/1700000003.M3P1.host:2,DPTb", b"Subject: draft\n\n", {"\\Draft", "\\Deleted", "$Forwarded", "$Label1"}),
        ("new/1700000004.M4P1.host", b"Subject: new\n\nunseen\n", set()),
    ]
    for i, (name, octets, _) in enumerate(files):
        path = source / name
        path.write_bytes(octets)
        os.utime(path, (1_700_000_000 + i * 60, 1_700_000_000 + i * 60))
    out = account.mail_json("import", "--maildir", str(source), "--folder", "FromMaildir")
    assert out["imported"] == 4
    stored = snapshot(account, "FromMaildir")
    assert [(m.octets, m.flags, m.internal_date) for m in stored] == [
        (octets.replace(b"\n", b"\r\n"), frozenset(flags), 1_700_000_000 + i * 60)
        for i, (_, octets, flags) in enumerate(files)]
    # Export to a new Maildir and import that again: same messages, flags and dates.
    target = tmp_path / "Exported"
    assert account.mail_json("export", "--folder", "FromMaildir", "--maildir", str(target))["exported"] == 4
    assert sorted(p.read_bytes() for p in (target / "cur").iterdir()) == sorted(f[1] for f in files)
    account.mail("import", "--maildir", str(target), "--folder", "Again")
    assert contents(snapshot(account, "Again")) == contents(stored)


def test_import_of_a_file_that_is_not_an_mbox_fails_before_appending(account, tmp_path):
    path = tmp_path / "not.mbox"
    path.write_bytes(b"Subject: no From line\n\nbody\n")
    result = account.mail("import", "--mbox", str(path), "--folder", "X", check=False)
    assert result.returncode == 1 and b"not an mbox file" in result.stderr
    assert snapshot(account, "X") == []


# --- connections: TLS and failover ----------------------------------------------------------------

@pytest.fixture
def silent_listener():
    """A loopback port that accepts connections (the kernel completes the handshake) and never
    says a word."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen(16)
        yield s.getsockname()[1]


def test_a_dead_primary_fails_over_to_the_backup(account):
    seed(account, "INBOX", ROUND_TRIP[:1])
    dead = free_port()
    out = account.mail_json("--backup-imap", f"{HOST}:{account.server.imap_port}", "list", imap=f"{HOST}:{dead}")
    assert [m["subject"] for m in out["messages"]] == ["plain"]


def test_a_primary_that_accepts_but_never_greets_fails_over_after_the_connect_timeout(account, silent_listener):
    seed(account, "INBOX", ROUND_TRIP[:1])
    started = time.monotonic()
    result = account.mail("--json", "--connect-timeout", "1", "--backup-imap", f"{HOST}:{account.server.imap_port}",
                          "list", imap=f"{HOST}:{silent_listener}")
    elapsed = time.monotonic() - started
    assert [m["subject"] for m in json.loads(result.stdout)["messages"]] == ["plain"]
    assert 1 <= elapsed < 20, elapsed


def test_when_no_server_answers_the_error_names_each_address(account, silent_listener):
    dead = free_port()
    result = account.mail("--connect-timeout", "0.5", "--backup-imap", f"{HOST}:{silent_listener}", "folders",
                          imap=f"{HOST}:{dead}", check=False)
    error = result.stderr.decode()
    assert result.returncode == 1
    assert f"{HOST}:{dead}: cannot connect" in error, error
    assert f"{HOST}:{silent_listener}: no answer within 0.5 s" in error, error


def test_a_wrong_password_fails_without_failing_over(account):
    result = account.mail("--backup-imap", f"{HOST}:{free_port()}", "folders", password="wrong", check=False)
    assert result.returncode == 1
    assert f"login as {account.user} failed".encode() in result.stderr


def test_starttls_is_used_when_offered_and_the_certificate_is_verified(account):
    assert account.server.ca is not None, "both servers under test offer STARTTLS"
    result = account.mail("folders", ca=False, check=False)
    assert result.returncode == 1
    assert b"TLS handshake with" in result.stderr and b"--ca FILE" in result.stderr
    assert account.mail("--insecure", "folders", ca=False).returncode == 0


def test_implicit_tls_with_imaps(account):
    assert account.server.imaps_port is not None, "both servers under test have an implicit-TLS port"
    seed(account, "INBOX", ROUND_TRIP[:1])
    out = json.loads(account.mail("--json", "--imaps", "list", imap=f"localhost:{account.server.imaps_port}").stdout)
    assert [m["subject"] for m in out["messages"]] == ["plain"]


def test_user_is_required():
    result = subprocess.run([str(binary()), "mail", "folders"], capture_output=True, timeout=CLI_TIMEOUT_SECS)
    assert result.returncode == 1 and b"--user ADDRESS is required" in result.stderr


# --- an older server: plaintext on loopback, no MOVE, no UIDPLUS, no LITERAL+ ----------------------------

def test_dovecot_legacy_move_without_the_move_capability_copies_and_expunges(legacy):
    account = legacy.new_account()
    seed(account, "INBOX", ROUND_TRIP[:2])
    account.mail("folder", "create", "Archive")
    moving = snapshot(account, "INBOX")[0]
    account.mail("move", str(moving.uid), "Archive")
    assert [m.octets for m in snapshot(account, "INBOX")] == [ROUND_TRIP[1][0]]
    (moved,) = snapshot(account, "Archive")
    assert (moved.octets, moved.flags) == (moving.octets, moving.flags)


def test_dovecot_legacy_delete_moves_to_trash_and_expunge_removes(legacy):
    account = legacy.new_account()
    seed(account, "INBOX", ROUND_TRIP[:3])
    uids = [m.uid for m in snapshot(account, "INBOX")]
    assert account.mail_json("delete", str(uids[0]))["to"] == "Trash"
    account.mail("delete", str(uids[1]), "--expunge")
    assert [m.uid for m in snapshot(account, "INBOX")] == [uids[2]]
    assert [m.octets for m in snapshot(account, "Trash")] == [ROUND_TRIP[0][0]]


def test_dovecot_legacy_import_and_export_round_trip_over_plaintext_loopback(legacy, tmp_path):
    account = legacy.new_account()
    seed(account, "Source", ROUND_TRIP)
    path = tmp_path / "legacy.mbox"
    account.mail("export", "--folder", "Source", "--mbox", str(path))
    account.mail("import", "--mbox", str(path), "--folder", "Copy")
    assert contents(snapshot(account, "Copy")) == expected(ROUND_TRIP)


# --- send: tidings' submission service, read back over POP3 ----------------------------------------

TA = "ta@mmsys.upenn.edu"
INSTRUCTOR = "instructor@mmsys.upenn.edu"
CIS505 = "cis505@mmsys.upenn.edu"


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    """A demo tidings node: submission with STARTTLS (its generated certificate), POP3."""
    server = Server(tmp_path_factory.mktemp("mail-send")).start()
    yield server
    assert server.stop() == 0
    assert "panicked" not in server.log()


def send(server, *args: str, input: bytes | None = None, user: str = TA, password: str = DEMO_PASSWORD,
         smtp: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = [str(binary()), "mail", "--smtp", smtp or f"{HOST}:{server.submission_port}", "--user", user,
               "--ca", str(server.data / "tls" / "cert.pem"), "send", *args]
    result = subprocess.run(command, capture_output=True, input=input, timeout=CLI_TIMEOUT_SECS,
                            env=dict(os.environ, TIDINGS_PASSWORD=password))
    if check:
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result


def maildrop(server, user: str) -> list[bytes]:
    """Every message of `user`'s maildrop over POP3 (nothing deleted)."""
    def attempt():
        try:
            pop = poplib.POP3(HOST, server.pop3_port, timeout=10)
            pop.user(user)
            pop.pass_(DEMO_PASSWORD)
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0], e
            return None
        try:
            return [b"".join(line + b"\r\n" for line in pop.retr(n)[1]) for n in range(1, pop.stat()[0] + 1)]
        finally:
            pop.quit()
    return wait_until(attempt, 10, f"{user}'s maildrop")


def delivered(server, user: str, message_id: str) -> email.message.EmailMessage | None:
    for octets in maildrop(server, user):
        message = email.message_from_bytes(octets, policy=email.policy.default)
        if message["Message-ID"] == message_id:
            return message
    return None


def test_send_delivers_a_mime_message_with_attachment_and_utf8_subject(submission, tmp_path):
    attachment = tmp_path / "report.pdf"
    attachment.write_bytes(bytes(range(256)) * 40)
    body = "Hallo!\n.\n..two dots\nFrom the desk of TA\nGrüße\n"
    out = json.loads(send(submission, "--json", "--to", f"Instructor <{INSTRUCTOR}>", "--cc", CIS505,
                          "--subject", "Grüße 📬 from tidings", "--attach", str(attachment),
                          input=body.encode()).stdout)
    assert out["recipients"] == [INSTRUCTOR, CIS505]
    assert out["reply"].startswith("250")
    for user in (INSTRUCTOR, CIS505):
        message = delivered(submission, user, out["message_id"])
        assert message is not None, f"not delivered to {user}"
        assert message["Subject"] == "Grüße 📬 from tidings"
        assert message["From"] == TA
        assert message["To"] == f"Instructor <{INSTRUCTOR}>"
        assert message["Cc"] == CIS505
        assert message["Date"] and message["MIME-Version"] == "1.0"
        assert message.get_content_type() == "multipart/mixed"
        text, pdf = list(message.iter_parts())
        assert text.get_content().replace("\r\n", "\n") == body
        assert pdf.get_content_type() == "application/pdf"
        assert pdf.get_filename() == "report.pdf"
        assert pdf.get_content() == attachment.read_bytes()


def test_send_with_body_option_and_bcc_keeps_bcc_out_of_the_header(submission):
    result = send(submission, "--to", INSTRUCTOR, "--bcc", CIS505, "--subject", "bcc test", "--body", "short body")
    text = result.stdout.decode()
    message_id = re.search(r"Sent (<[^>]+>) to ", text).group(1)
    assert f"to {INSTRUCTOR}, {CIS505} via" in text
    for user in (INSTRUCTOR, CIS505):
        message = delivered(submission, user, message_id)
        assert message is not None and "Bcc" not in message and CIS505 not in str(message["To"])
        assert message.get_content() == "short body\r\n"


def test_send_with_a_dead_primary_uses_the_backup_smtp(submission):
    out = json.loads(send(submission, "--json", "--backup-smtp", f"{HOST}:{submission.submission_port}",
                          "--to", INSTRUCTOR, "--subject", "via backup", "--body", "x",
                          smtp=f"{HOST}:{free_port()}").stdout)
    assert out["server"] == f"{HOST}:{submission.submission_port}"
    assert delivered(submission, INSTRUCTOR, out["message_id"]) is not None


def test_send_with_a_wrong_password_fails_and_delivers_nothing(submission):
    before = len(maildrop(submission, INSTRUCTOR))
    result = send(submission, "--to", INSTRUCTOR, "--body", "x", password="wrong", check=False)
    assert result.returncode == 1 and b"authentication as ta@mmsys.upenn.edu failed: 535" in result.stderr
    assert len(maildrop(submission, INSTRUCTOR)) == before


def test_send_verifies_the_certificate_of_starttls(submission):
    command = [str(binary()), "mail", "--smtp", f"{HOST}:{submission.submission_port}", "--user", TA,
               "send", "--to", INSTRUCTOR, "--body", "x"]
    result = subprocess.run(command, capture_output=True, timeout=CLI_TIMEOUT_SECS,
                            env=dict(os.environ, TIDINGS_PASSWORD=DEMO_PASSWORD))
    assert result.returncode == 1 and b"TLS handshake with" in result.stderr


def test_send_to_an_invalid_address_fails_before_connecting(submission):
    result = send(submission, "--to", "not an address", "--body", "x", smtp=f"{HOST}:{free_port()}", check=False)
    assert result.returncode == 1 and b"is not a valid address" in result.stderr
