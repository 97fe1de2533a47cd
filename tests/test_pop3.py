"""POP3 end to end (RFC 1939, RFC 2449 CAPA/PIPELINING/RESP-CODES, RFC 5034 SASL PLAIN, RFC 2595
STLS): real clients (poplib and a raw line client) against the real binary over loopback.

Mail is put into the maildrop over SMTP first, as a real sender would.
"""

from __future__ import annotations

import base64
import poplib
import random
import smtplib
import socket
import ssl
import time

import pytest

from conftest import DEMO_PASSWORD, LineClient, Server, wait_until

USER = "ta@mmsys.upenn.edu"
HOST = "127.0.0.1"


# --- helpers -----------------------------------------------------------------------------------

def deliver(server, *bodies: bytes, rcpt: str = USER):
    """Delivers each body over SMTP (port 25 service) to `rcpt`, in order, one transaction each."""
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10) as s:
        for body in bodies:
            s.sendmail("sender@example.org", [rcpt], body)


def numbered(n: int, body_lines: int = 1) -> bytes:
    body = b"".join(b"line %d of message %d\r\n" % (i, n) for i in range(1, body_lines + 1))
    return b"Subject: message %d\r\nFrom: sender@example.org\r\n\r\n" % n + body


def try_login(server, user: str = USER) -> poplib.POP3 | None:
    """A logged-in poplib session, or None while the maildrop is locked by another session."""
    p = poplib.POP3(HOST, server.pop3_port, timeout=10)
    p.user(user)
    try:
        p.pass_(DEMO_PASSWORD)
    except poplib.error_proto as e:
        assert b"[IN-USE]" in e.args[0], e
        p.close()
        return None
    return p


def pop(server, user: str = USER) -> poplib.POP3:
    """A logged-in poplib session. The lock of a session that just ended is released right after
    it closed; a login racing that release is retried."""
    return wait_until(lambda: try_login(server, user), 5, f"{user}'s maildrop lock", interval=0.05)


def subject(lines: list[bytes]) -> bytes:
    return next(line for line in lines if line.startswith(b"Subject: "))


def subjects(server, user: str = USER) -> list[bytes]:
    """The Subject lines of the maildrop, in message-number order (a fresh session, then QUIT)."""
    p = pop(server, user)
    try:
        count = p.stat()[0]
        return [subject(p.top(n, 0)[1]) for n in range(1, count + 1)]
    finally:
        p.quit()


def uidls(p: poplib.POP3) -> list[bytes]:
    return [line.split()[1] for line in p.uidl()[1]]


def no_tls_verification() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def trusting(server) -> ssl.SSLContext:
    """A context that verifies the server against the certificate it generated in its data dir."""
    context = ssl.create_default_context(cafile=str(server.data / "tls" / "cert.pem"))
    context.check_hostname = True
    return context


class Pop3(LineClient):
    """Raw POP3: status lines and multi-line responses as the server writes them (still stuffed)."""

    def __init__(self, port: int, timeout: float = 10):
        super().__init__(port, timeout=timeout)
        self.greeting = self.status()

    def status(self) -> str:
        return self.line().decode("utf-8", "replace")

    def cmd(self, line: str | bytes) -> str:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.status()

    def body(self) -> list[bytes]:
        """The lines of a multi-line response up to (not including) the terminating '.'."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                assert chunk, f"connection closed in a multi-line response after {lines[-3:]}"
                self.buf += chunk
            line = self.line()
            if line == b".":
                return lines
            lines.append(line)

    def multi(self, line: str) -> tuple[str, list[bytes]]:
        status = self.cmd(line)
        assert status.startswith("+OK"), status
        return status, self.body()

    def login(self, user: str = USER, password: str = DEMO_PASSWORD) -> str:
        """USER/PASS; while the maildrop is still locked by the previous test's session (released
        just after that session closed) the login is retried."""
        def attempt():
            assert self.cmd(f"USER {user}").startswith("+OK")
            reply = self.cmd(f"PASS {password}")
            return None if reply.startswith("-ERR [IN-USE]") else reply
        return wait_until(attempt, 5, f"{user}'s maildrop lock", interval=0.05)

    def __exit__(self, *exc):
        try:
            self.sock.settimeout(2)
            self.send("QUIT\r\n")
            self.closed(timeout=2)
        except OSError:
            pass
        self.close()


def unstuff(lines: list[bytes]) -> list[bytes]:
    return [line[1:] if line.startswith(b".") else line for line in lines]


def plain(user: str = USER, password: str = DEMO_PASSWORD) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


DOTTED = (b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nmiddle\r\n. space\r\n"
          b"no dot\r\n...\r\nend\r\n")
SIZED = [numbered(1, 5), DOTTED, numbered(3, 40), b"Subject: empty body\r\n\r\n", numbered(5, 3) + b"\r\n\r\n"]
SHARED_USER = "instructor@mmsys.upenn.edu"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One demo server for the tests that change no maildrop: SHARED_USER holds SIZED, in order.

    Its tests only read, or fail on purpose; each ends its session with QUIT.
    """
    server = Server(tmp_path_factory.mktemp("pop3-shared")).start()
    deliver(server, *SIZED, rcpt=SHARED_USER)
    yield server
    assert server.alive(), "the shared server died during the tests"
    assert server.stop() == 0


# --- AUTHORIZATION: USER/PASS, AUTH PLAIN ------------------------------------------------------

def test_user_and_pass_with_the_full_address_log_in(shared):
    p = pop(shared, SHARED_USER)
    assert p.stat()[0] == len(SIZED)
    assert p.quit().startswith(b"+OK")


def test_user_and_pass_with_the_bare_local_part_log_in_to_the_same_maildrop(shared):
    p = pop(shared, SHARED_USER.split("@")[0])
    assert p.stat()[0] == len(SIZED)
    assert subject(p.retr(3)[1]) == b"Subject: message 3"
    p.quit()


def test_auth_plain_with_an_initial_response_logs_in(shared):
    def attempt():
        reply = c.cmd(f"AUTH PLAIN {plain(SHARED_USER)}")
        return None if reply.startswith("-ERR [IN-USE]") else reply

    with Pop3(shared.pop3_port) as c:
        reply = wait_until(attempt, 5, "the maildrop lock")
        assert reply.startswith("+OK"), reply
        assert c.cmd("STAT").startswith(f"+OK {len(SIZED)} ")


def test_auth_plain_with_a_continuation_logs_in(server):
    deliver(server, numbered(1))
    with Pop3(server.pop3_port) as c:
        assert c.cmd("AUTH PLAIN") == "+ "
        reply = c.cmd(plain())
        assert reply.startswith("+OK"), reply
        assert c.cmd("STAT").startswith("+OK 1 ")


def test_auth_plain_continuation_can_be_cancelled_with_a_star(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd("AUTH PLAIN") == "+ "
        assert c.cmd("*").startswith("-ERR")
        assert c.login(SHARED_USER).startswith("+OK")


def test_auth_plain_with_a_wrong_password_is_refused_with_the_auth_code(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd(f"AUTH PLAIN {plain(SHARED_USER, 'wrong')}").startswith("-ERR [AUTH]")
        assert c.cmd("STAT").startswith("-ERR"), "not logged in"


def test_wrong_password_is_refused_with_the_auth_code_after_the_failure_delay(make_server):
    server = make_server({"auth": {"failure_delay_ms": 1000}})
    with Pop3(server.pop3_port) as c:
        assert c.cmd(f"USER {USER}").startswith("+OK")
        started = time.monotonic()
        reply = c.cmd("PASS not-the-password")
        elapsed = time.monotonic() - started
        assert reply.startswith("-ERR [AUTH]"), reply
        assert elapsed >= 0.9, f"failed login answered after {elapsed:.3f}s, before the 1 s delay"
        # The session goes on: the right password works, without the delay.
        started = time.monotonic()
        assert c.login().startswith("+OK")
        assert time.monotonic() - started < 0.9


def test_unknown_user_is_refused_like_a_wrong_password(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd("USER nobody@mmsys.upenn.edu").startswith("+OK"), "USER must not reveal unknown names"
        assert c.cmd(f"PASS {DEMO_PASSWORD}").startswith("-ERR [AUTH]")


def test_pass_takes_the_rest_of_the_line_so_extra_words_make_a_wrong_password(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd(f"USER {SHARED_USER}").startswith("+OK")
        assert c.cmd(f"PASS {DEMO_PASSWORD} extra").startswith("-ERR [AUTH]")


# --- CAPA and STLS --------------------------------------------------------------------------------

def test_capa_lists_top_uidl_user_sasl_plain_resp_codes_pipelining_and_stls(shared):
    p = poplib.POP3(HOST, shared.pop3_port, timeout=10)
    caps = p.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "STLS"):
        assert cap in caps, (cap, caps)
    assert "PLAIN" in caps["SASL"]
    p.quit()


def test_stls_verified_against_the_generated_certificate_then_login_works_and_capa_drops_stls(shared):
    p = poplib.POP3(HOST, shared.pop3_port, timeout=10)
    assert p.stls(context=trusting(shared)).startswith(b"+OK")
    assert isinstance(p.sock, ssl.SSLSocket)
    caps = p.capa()
    assert "STLS" not in caps, caps
    assert "USER" in caps and "PLAIN" in caps["SASL"]
    p.user(SHARED_USER)
    wait_until(lambda: try_pass(p), 5, "the maildrop lock")
    assert p.stat()[0] == len(SIZED)
    assert subject(p.retr(1)[1]) == b"Subject: message 1"
    p.quit()


def try_pass(p: poplib.POP3) -> bool:
    try:
        p.pass_(DEMO_PASSWORD)
        return True
    except poplib.error_proto as e:
        assert b"[IN-USE]" in e.args[0], e
        p.user(SHARED_USER)
        return False


def test_stls_twice_is_refused(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd("STLS").startswith("+OK")
        c.sock = no_tls_verification().wrap_socket(c.sock, server_hostname="mx.test.example")
        assert c.cmd("STLS").startswith("-ERR")
        assert c.login(SHARED_USER).startswith("+OK")


def test_commands_pipelined_after_stls_in_plaintext_are_discarded(shared):
    # RFC 2595 §4: nothing sent before the TLS handshake may be taken as sent under TLS.
    with Pop3(shared.pop3_port) as c:
        c.send(f"STLS\r\nUSER {SHARED_USER}\r\n")
        assert c.status().startswith("+OK")
        c.sock = no_tls_verification().wrap_socket(c.sock, server_hostname="mx.test.example")
        assert c.cmd(f"PASS {DEMO_PASSWORD}").startswith("-ERR"), "the plaintext USER was used"
        assert c.login(SHARED_USER).startswith("+OK")


def test_plaintext_never_refuses_user_without_tls_and_accepts_it_after_stls(make_server):
    server = make_server({"auth": {"plaintext": "never"}})
    with Pop3(server.pop3_port) as c:
        _, caps = c.multi("CAPA")
        assert b"STLS" in caps and b"USER" not in caps, caps
        refused = c.cmd(f"USER {USER}")
        assert refused.startswith("-ERR") and "TLS" in refused, refused
        assert c.cmd(f"AUTH PLAIN {plain()}").startswith("-ERR")
        assert c.cmd("STLS").startswith("+OK")
        c.sock = no_tls_verification().wrap_socket(c.sock, server_hostname="mx.test.example")
        _, caps = c.multi("CAPA")
        assert b"USER" in caps and b"STLS" not in caps, caps
        assert c.login().startswith("+OK")
        assert c.cmd("STAT") == "+OK 0 0"


# --- STAT, LIST, RETR, byte-stuffing --------------------------------------------------------------

def test_stat_and_list_sizes_equal_the_octets_retr_returns_with_poplib(shared):
    p = pop(shared, SHARED_USER)
    count, total = p.stat()
    assert count == len(SIZED)
    listed = {int(n): int(size) for n, size in (line.split() for line in p.list()[1])}
    assert sorted(listed) == list(range(1, len(SIZED) + 1))
    assert sum(listed.values()) == total
    for n, size in listed.items():
        assert p.list(n).split()[1:] == [str(n).encode(), str(size).encode()]
        _, lines, octets = p.retr(n)
        assert octets == size, (n, octets, size)
    p.quit()


def test_stat_and_list_sizes_equal_the_octets_retr_returns_on_the_wire(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.login(SHARED_USER).startswith("+OK")
        stat = c.cmd("STAT").split()
        _, listing = c.multi("LIST")
        sizes = [int(line.split()[1]) for line in listing]
        assert len(sizes) == len(SIZED)
        assert int(stat[1]) == len(sizes) and int(stat[2]) == sum(sizes)
        for n, size in enumerate(sizes, 1):
            status, lines = c.multi(f"RETR {n}")
            assert status == f"+OK {size} octets"
            assert sum(len(line) + 2 for line in unstuff(lines)) == size
            # The stored message is what was sent, after the trace fields the server adds on top.
            assert b"".join(line + b"\r\n" for line in unstuff(lines)).endswith(SIZED[n - 1])


def test_retr_byte_stuffs_lines_that_begin_with_a_dot(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.login(SHARED_USER).startswith("+OK")
        _, lines = c.multi("RETR 2")
    body = lines[lines.index(b"") + 1:]
    assert body == [b"..leading dot", b"...two dots", b"..", b"middle", b".. space", b"no dot", b"....", b"end"]


def test_poplib_unstuffs_retr_to_the_original_lines(shared):
    p = pop(shared, SHARED_USER)
    _, lines, _ = p.retr(2)
    p.quit()
    body = lines[lines.index(b"") + 1:]
    assert body == DOTTED.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[:-1]


def test_top_byte_stuffs_too(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.login(SHARED_USER).startswith("+OK")
        _, lines = c.multi("TOP 2 3")
    assert lines[lines.index(b"") + 1:] == [b"..leading dot", b"...two dots", b".."]


# --- TOP ------------------------------------------------------------------------------------------

def test_top_n_0_returns_the_header_section_and_the_blank_line_only(shared):
    p = pop(shared, SHARED_USER)
    _, lines, _ = p.top(1, 0)
    full = p.retr(1)[1]
    p.quit()
    assert lines[-1] == b""
    assert b"Subject: message 1" in lines
    assert lines == full[:full.index(b"") + 1]
    assert not any(line.startswith(b"line ") for line in lines)


def test_top_n_2_returns_the_header_section_and_two_body_lines(shared):
    p = pop(shared, SHARED_USER)
    _, lines, _ = p.top(1, 2)
    p.quit()
    assert lines[lines.index(b"") + 1:] == [b"line 1 of message 1", b"line 2 of message 1"]


def test_top_with_more_lines_than_the_body_returns_the_whole_message(shared):
    p = pop(shared, SHARED_USER)
    assert p.top(1, 1000)[1] == p.retr(1)[1]
    # Message 5 ends with two empty body lines: they count as lines.
    assert p.top(5, 5)[1] == p.retr(5)[1]
    assert p.top(5, 4)[1] == p.retr(5)[1][:-1]
    p.quit()


# --- UIDL -----------------------------------------------------------------------------------------

def test_uidl_values_are_unique_valid_and_stable_across_sessions_and_restarts(server):
    deliver(server, numbered(1), numbered(2), numbered(3))
    p = pop(server)
    first = uidls(p)
    single = [p.uidl(n).split()[2] for n in (1, 2, 3)]
    p.quit()
    assert len(first) == 3 and len(set(first)) == 3, first
    assert single == first
    for uid in first:
        assert 1 <= len(uid) <= 70 and all(0x21 <= b <= 0x7E for b in uid), uid
    p = pop(server)
    assert uidls(p) == first
    p.quit()
    assert server.stop() == 0
    server.start()
    p = pop(server)
    assert uidls(p) == first
    assert [subject(p.top(n, 0)[1]) for n in (1, 2, 3)] == [b"Subject: message %d" % n for n in (1, 2, 3)]
    p.quit()


def test_uidl_values_differ_between_maildrops(shared):
    a = pop(shared, SHARED_USER)
    mine = set(uidls(a))
    a.quit()
    deliver(shared, numbered(1), rcpt="cis505@mmsys.upenn.edu")
    b = pop(shared, "cis505@mmsys.upenn.edu")
    theirs = set(uidls(b))
    b.quit()
    assert len(theirs) >= 1 and not mine & theirs


def test_new_mail_after_a_deletion_gets_a_new_higher_uidl(server):
    deliver(server, numbered(1), numbered(2))
    p = pop(server)
    before = uidls(p)
    p.dele(2)
    p.quit()
    deliver(server, numbered(3))
    p = pop(server)
    after = uidls(p)
    p.quit()
    assert len(after) == 2 and after[0] == before[0]
    assert after[1] not in before, "a UIDL must never be reused for another message"
    # This server's unique-ids are fixed-width hex (uidvalidity, uid): newer mail sorts higher.
    assert int(after[1], 16) > max(int(u, 16) for u in before)
    assert subjects(server) == [b"Subject: message 1", b"Subject: message 3"]


# --- DELE, RSET, QUIT and the UPDATE state -----------------------------------------------------------

def test_dele_then_quit_removes_exactly_the_marked_messages_and_keeps_the_others_in_order(server):
    deliver(server, *(numbered(n) for n in range(1, 6)))
    p = pop(server)
    before = uidls(p)
    assert p.dele(2).startswith(b"+OK")
    assert p.dele(4).startswith(b"+OK")
    assert p.stat()[0] == 3
    # A message marked deleted may not be referred to any more in this session.
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    with pytest.raises(poplib.error_proto):
        p.dele(2)
    assert [line.split()[0] for line in p.list()[1]] == [b"1", b"3", b"5"]
    assert p.quit().startswith(b"+OK")
    assert subjects(server) == [b"Subject: message %d" % n for n in (1, 3, 5)]
    p = pop(server)
    assert uidls(p) == [before[0], before[2], before[4]]
    p.quit()


def test_dele_then_rset_then_quit_removes_nothing(server):
    deliver(server, numbered(1), numbered(2), numbered(3))
    p = pop(server)
    p.dele(1)
    p.dele(3)
    assert p.stat()[0] == 1
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 3
    p.quit()
    assert subjects(server) == [b"Subject: message %d" % n for n in (1, 2, 3)]


def test_dele_then_a_dropped_connection_without_quit_removes_nothing(server):
    deliver(server, numbered(1), numbered(2))
    c = Pop3(server.pop3_port)
    assert c.login().startswith("+OK")
    assert c.cmd("DELE 1").startswith("+OK")
    assert c.cmd("DELE 2").startswith("+OK")
    c.close()  # dropped without QUIT: RFC 1939 §6, no UPDATE state
    p = wait_until(lambda: try_login(server), 10, "the maildrop lock to be released")
    assert p.stat()[0] == 2
    p.quit()


# --- maildrop lock --------------------------------------------------------------------------------

def test_a_second_session_on_a_locked_maildrop_gets_in_use_until_the_first_quits(server):
    deliver(server, numbered(1))
    first = pop(server)
    with Pop3(server.pop3_port) as second:
        assert second.cmd(f"USER {USER}").startswith("+OK")
        reply = second.cmd(f"PASS {DEMO_PASSWORD}")
        assert reply.startswith("-ERR [IN-USE]"), reply
        # Through the bare local part, or the alias domain, it is the same maildrop.
        for name in ("ta", "ta@localhost", "TA@MMSYS.UPENN.EDU"):
            assert second.cmd(f"USER {name}").startswith("+OK")
            assert second.cmd(f"PASS {DEMO_PASSWORD}").startswith("-ERR [IN-USE]"), name
        # Another account is not locked.
        assert second.login("cis505").startswith("+OK")
    assert first.stat()[0] == 1, "the first session is unaffected"
    first.quit()
    p = wait_until(lambda: try_login(server), 10, "login after the first session quit")
    assert p.stat()[0] == 1
    p.quit()


# --- commands in the wrong state, errors, junk --------------------------------------------------------

@pytest.mark.parametrize("command", ["STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "TOP 1 0", "UIDL", "RSET"])
def test_transaction_commands_before_login_are_refused(shared, command):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd(command).startswith("-ERR")
        assert c.login(SHARED_USER).startswith("+OK"), "the session goes on"
        assert c.cmd("STAT").startswith(f"+OK {len(SIZED)} ")


@pytest.mark.parametrize("command", [f"USER {SHARED_USER}", f"PASS {DEMO_PASSWORD}", "AUTH PLAIN", "STLS"])
def test_authorization_commands_after_login_are_refused(shared, command):
    with Pop3(shared.pop3_port) as c:
        assert c.login(SHARED_USER).startswith("+OK")
        assert c.cmd(command).startswith("-ERR")
        assert c.cmd("STAT").startswith("+OK")


def test_pass_without_user_is_refused(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd(f"PASS {DEMO_PASSWORD}").startswith("-ERR")
        assert c.cmd("STAT").startswith("-ERR"), "not logged in"


def test_pass_must_come_right_after_user(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd(f"USER {SHARED_USER}").startswith("+OK")
        assert c.cmd("NOOP").startswith("-ERR")
        assert c.cmd(f"PASS {DEMO_PASSWORD}").startswith("-ERR")
        assert c.cmd("STAT").startswith("-ERR"), "not logged in"


@pytest.mark.parametrize("command", ["XYZZY", "APOP instructor 0123456789abcdef0123456789abcdef", "RETRX 1", ""])
def test_unknown_or_unsupported_commands_are_refused_in_both_states(shared, command):
    with Pop3(shared.pop3_port) as c:
        assert c.cmd(command).startswith("-ERR")
        assert c.login(SHARED_USER).startswith("+OK")
        assert c.cmd(command).startswith("-ERR")
        assert c.cmd("NOOP") == "+OK"


@pytest.mark.parametrize("command", ["RETR 0", "RETR 99", "RETR x", "DELE 99999999999999999999", "TOP 1", "LIST 1 2"])
def test_bad_message_numbers_and_arguments_are_refused(shared, command):
    with Pop3(shared.pop3_port) as c:
        assert c.login(SHARED_USER).startswith("+OK")
        assert c.cmd(command).startswith("-ERR")
        assert c.cmd("STAT").startswith(f"+OK {len(SIZED)} ")


def test_too_many_errors_close_the_session(make_server):
    server = make_server({"pop3": {"errors_max": 3}})
    with Pop3(server.pop3_port) as c:
        assert c.cmd("BOGUS").startswith("-ERR")
        c.multi("CAPA")
        assert c.cmd("STAT").startswith("-ERR")
        assert c.cmd("BOGUS").startswith("-ERR")
        assert c.status().startswith("-ERR"), "the limit is announced"
        assert c.closed()
    # Failed logins count too.
    with Pop3(server.pop3_port) as c:
        for _ in range(3):
            assert c.cmd(f"USER {USER}").startswith("+OK")
            assert c.cmd("PASS wrong").startswith("-ERR [AUTH]")
        assert c.status().startswith("-ERR")
        assert c.closed()


def test_a_10_kb_command_line_is_refused_and_the_session_goes_on(shared):
    with Pop3(shared.pop3_port) as c:
        assert c.login(SHARED_USER).startswith("+OK")
        assert c.cmd("LIST " + "9" * 10240).startswith("-ERR")
        assert c.cmd("STAT").startswith(f"+OK {len(SIZED)} ")
        _, lines = c.multi("RETR 1")
        assert b"Subject: message 1" in lines


def test_a_10_kb_user_line_sent_in_pieces_is_refused_and_not_taken_as_user(shared):
    with Pop3(shared.pop3_port) as c:
        c.send("USER " + "a" * 5000)
        c.send("b" * 5000 + "\r\n")
        assert c.status().startswith("-ERR")
        assert c.cmd(f"PASS {DEMO_PASSWORD}").startswith("-ERR"), "the overlong USER was not taken"
        assert c.login(SHARED_USER).startswith("+OK")


def test_binary_junk_never_crashes_the_server(shared):
    rng = random.Random(1939)
    junk = [
        bytes(rng.randrange(256) for _ in range(65536)),
        b"\x00" * 4096 + b"\r\n" + b"\xff\xfe" * 2048 + b"\n",
        b"USER \xc3\x28\r\nPASS \xff\r\nAUTH PLAIN \x00\x01\r\n",
        b"\r" * 5000 + b"STAT\r\n",
        b"AUTH PLAIN\r\n" + b"\x80" * 3000 + b"\r\n",
        b"TOP 1 -1\r\nLIST -0\r\nRETR +1\r\n",
        b"USER " + b"x" * 100000,  # no line end at all, then the client vanishes
    ]
    for chunk in junk:
        with LineClient(shared.pop3_port) as c:
            assert c.line().startswith(b"+OK")
            try:
                c.send(chunk)
                c.closed(timeout=0.2)
            except (ConnectionResetError, BrokenPipeError):
                pass
        assert shared.alive()
    # Junk after login too.
    with Pop3(shared.pop3_port) as c:
        assert c.login(SHARED_USER).startswith("+OK")
        try:
            c.send(bytes(rng.randrange(256) for _ in range(8192)))
            c.closed(timeout=0.5)
        except (ConnectionResetError, BrokenPipeError):
            pass
    assert shared.alive()
    p = pop(shared, SHARED_USER)
    assert p.stat()[0] == len(SIZED)
    p.quit()


# --- timeouts -------------------------------------------------------------------------------------

def test_an_idle_session_is_logged_out_with_an_error_and_its_deletions_are_not_applied(make_server):
    server = make_server({"pop3": {"idle_timeout_secs": 2}})
    deliver(server, numbered(1), numbered(2))
    with Pop3(server.pop3_port) as c:
        assert c.login().startswith("+OK")
        assert c.cmd("DELE 1").startswith("+OK")
        started = time.monotonic()
        reply = c.status()  # blocks until the server speaks (socket timeout 10 s)
        elapsed = time.monotonic() - started
        assert reply.startswith("-ERR"), reply
        assert 1.5 <= elapsed < 8, elapsed
        assert c.closed()
    p = wait_until(lambda: try_login(server), 10, "the lock of the timed-out session to be released")
    assert p.stat()[0] == 2
    p.quit()


# --- pipelining -----------------------------------------------------------------------------------

def test_pipelined_commands_get_their_replies_in_order(server):
    deliver(server, numbered(1, 2), numbered(2, 2))
    with Pop3(server.pop3_port) as c:
        c.send(f"USER {USER}\r\nPASS {DEMO_PASSWORD}\r\nSTAT\r\nLIST\r\nUIDL 2\r\nTOP 2 1\r\nDELE 1\r\n"
               "STAT\r\nRSET\r\nNOOP\r\nQUIT\r\n")
        assert c.status().startswith("+OK"), "USER"
        assert c.status().startswith("+OK Logged in"), "PASS"
        assert c.status().startswith("+OK 2 "), "STAT"
        assert c.status().startswith("+OK"), "LIST"
        assert [line.split()[0] for line in c.body()] == [b"1", b"2"]
        assert c.status().startswith("+OK 2 "), "UIDL 2"
        assert c.status().startswith("+OK"), "TOP"
        top = c.body()
        assert top[-1] == b"line 1 of message 2" and b"Subject: message 2" in top
        assert c.status().startswith("+OK"), "DELE 1"
        assert c.status().startswith("+OK 1 "), "STAT"
        assert c.status().startswith("+OK"), "RSET"
        assert c.status() == "+OK", "NOOP"
        signoff = c.status()
        assert signoff.startswith("+OK") and "signing off" in signoff, "QUIT"
        assert c.closed()
    assert subjects(server) == [b"Subject: message 1", b"Subject: message 2"]


# --- backpressure: output is bounded by what the client reads -------------------------------------

def big_message(size: int) -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab\r\n"
    head = b"Subject: big\r\n\r\n"
    return head + line * ((size - len(head)) // len(line))


def test_pipelined_retrs_from_a_client_that_does_not_read_do_not_pile_up_in_memory(make_server):
    server = make_server({"smtp": {"message_bytes_max": 4 << 20}})
    message = big_message(2 << 20)
    deliver(server, message)
    rounds = 100  # 200 MB of replies if the server ran every command before sending
    with LineClient(server.pop3_port, timeout=30) as client:
        assert client.line().startswith(b"+OK")
        client.send(f"USER {USER}\r\nPASS {DEMO_PASSWORD}\r\n")
        assert client.line().startswith(b"+OK") and client.line().startswith(b"+OK")
        baseline = server.rss_kib()
        client.send(b"RETR 1\r\n" * rounds)
        peak, received = baseline, 0
        while received < rounds * len(message):
            chunk = client.sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            received += len(chunk)
            peak = max(peak, server.rss_kib())
    assert peak - baseline < 64 * 1024, f"server memory grew by {peak - baseline} KiB"


def test_a_slow_but_steady_reader_gets_a_message_that_takes_longer_than_the_write_timeout(make_server):
    server = make_server({"smtp": {"message_bytes_max": 20 << 20}, "server": {"write_timeout_secs": 2}})
    message = big_message(16 << 20)
    deliver(server, message)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the kernel cannot absorb the reply on the reader's behalf.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect((HOST, server.pop3_port))
    client = LineClient.__new__(LineClient)
    client.sock, client.buf = sock, b""
    with client:
        assert client.line().startswith(b"+OK")
        client.send(f"USER {USER}\r\nPASS {DEMO_PASSWORD}\r\nRETR 1\r\n")
        assert client.line().startswith(b"+OK") and client.line().startswith(b"+OK")
        assert client.line().startswith(b"+OK")
        started, received = time.monotonic(), len(client.buf)
        # About 3 MB/s: the reply takes longer than the write timeout to read, but octets keep
        # moving. (The kernel wakes a blocked writer only when about half its send buffer has
        # drained, a few MB here, so progress comes in steps well within the timeout.)
        while received < len(message) + 3:
            chunk = client.sock.recv(256 * 1024)
            assert chunk, f"dropped after {received} octets"
            received += len(chunk)
            time.sleep(0.02)
        assert time.monotonic() - started > 2
