"""The `tidings` binary as a whole: account management beside a running server, demo mode, the
data-directory lock, graceful shutdown, transcripts, TLS listeners and certificates, config
errors, connection limits, memory under idle connections, and the load generator.
"""

from __future__ import annotations

import base64
import os
import poplib
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import tomllib

import pytest

from conftest import DEMO_PASSWORD, LineClient, binary, wait_until

HOST = "127.0.0.1"
TA = "ta@mmsys.upenn.edu"


# --- helpers -----------------------------------------------------------------------------------

def deliver(server, body: bytes, rcpt: str = TA):
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10) as s:
        s.sendmail("sender@example.org", [rcpt], body)


def pop_login(server, user: str, password: str = DEMO_PASSWORD) -> poplib.POP3:
    p = poplib.POP3(HOST, server.pop3_port, timeout=10)
    p.user(user)
    p.pass_(password)
    return p


def pop_count(server, user: str = TA, password: str = DEMO_PASSWORD) -> int:
    """Messages in the maildrop; the lock of a session that just ended may take a moment to go."""
    def attempt():
        try:
            p = pop_login(server, user, password)
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0], e
            return None
        count = p.stat()[0]
        p.quit()
        return (count,)
    return wait_until(attempt, 10, f"a POP3 login as {user}")[0]


def login_fails(server, user: str, password: str) -> bool:
    try:
        pop_login(server, user, password).quit()
    except poplib.error_proto as e:
        assert b"[AUTH]" in e.args[0], e
        return True
    return False


def no_verification() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def serve_once(server, *extra: str, config: str | None = None) -> subprocess.CompletedProcess:
    """Runs `tidings serve` on `server`'s config and data dir, expecting it to exit by itself."""
    config_path = server.config_path
    if config is not None:
        config_path = server.workdir / "other.toml"
        config_path.write_text(config)
    args = [str(binary()), "serve", "--config", str(config_path), "--data", str(server.data),
            "--ready-file", str(server.workdir / "other-ready.toml"), *extra]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert not (server.workdir / "other-ready.toml").exists(), "it must not have become ready"
    return result


def run_account(server, *args: str, stdin: str | None = None, env_password: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "TIDINGS_PASSWORD"}
    if env_password is not None:
        env["TIDINGS_PASSWORD"] = env_password
    return subprocess.run([str(binary()), "account", "--config", str(server.config_path), "--data",
                           str(server.data), *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=60)


def accounts(server) -> list[str]:
    result = server.account("list")
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def rcpt(server, address: str) -> tuple[int, bytes]:
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("sender@example.org")
        return s.rcpt(address)


# --- tidings account -------------------------------------------------------------------------------

def test_account_added_with_tidings_password_receives_mail_and_logs_in_while_the_server_runs(server):
    result = run_account(server, "add", "newbie@mmsys.upenn.edu", env_password="pass phrase 1")
    assert result.returncode == 0, result.stderr
    assert "newbie@mmsys.upenn.edu" in result.stdout
    assert "newbie@mmsys.upenn.edu" in accounts(server)
    deliver(server, b"Subject: welcome\r\n\r\nhi\r\n", rcpt="newbie@mmsys.upenn.edu")
    p = pop_login(server, "newbie@mmsys.upenn.edu", "pass phrase 1")
    assert p.stat()[0] == 1
    assert b"Subject: welcome" in p.retr(1)[1]
    p.quit()
    assert login_fails(server, "newbie@mmsys.upenn.edu", DEMO_PASSWORD)


def test_account_added_with_password_stdin_logs_in_with_the_first_line(server):
    result = run_account(server, "add", "stdin.user@localhost", "--password-stdin", stdin="from stdin\r\nignored\n")
    assert result.returncode == 0, result.stderr
    # The alias domain is canonicalised to the served domain.
    assert "stdin.user@mmsys.upenn.edu" in accounts(server)
    assert pop_count(server, "stdin.user@mmsys.upenn.edu", "from stdin") == 0
    assert login_fails(server, "stdin.user@mmsys.upenn.edu", "from stdin\r")


def test_account_list_shows_every_account_one_per_line(server):
    assert accounts(server) == sorted(f"{u}@mmsys.upenn.edu" for u in ("instructor", "ta", "cis505"))


def test_passwd_changes_the_login_of_a_running_server(server):
    result = run_account(server, "passwd", TA, env_password="changed-1")
    assert result.returncode == 0, result.stderr
    assert login_fails(server, TA, DEMO_PASSWORD)
    assert pop_count(server, TA, "changed-1") == 0
    # Submission logins use the same accounts.
    with smtplib.SMTP(HOST, server.submission_port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(TA, DEMO_PASSWORD)
    with smtplib.SMTP(HOST, server.submission_port, timeout=10) as s:
        assert s.login(TA, "changed-1")[0] == 235


def test_remove_makes_rcpt_to_the_account_550_5_1_1(server):
    assert server.account("add", "gone@mmsys.upenn.edu", password="pw-gone").returncode == 0
    assert rcpt(server, "gone@mmsys.upenn.edu")[0] == 250
    deliver(server, b"Subject: soon gone\r\n\r\nx\r\n", rcpt="gone@mmsys.upenn.edu")
    result = server.account("remove", "gone@mmsys.upenn.edu")
    assert result.returncode == 0, result.stderr
    assert "gone@mmsys.upenn.edu" not in accounts(server)
    code, text = rcpt(server, "gone@mmsys.upenn.edu")
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    assert login_fails(server, "gone@mmsys.upenn.edu", "pw-gone")
    assert rcpt(server, TA)[0] == 250, "other accounts are untouched"


def test_adding_an_existing_address_fails_with_a_clear_message(server):
    for address in (TA, "TA@localhost"):
        result = server.account("add", address, password="whatever")
        assert result.returncode != 0
        assert "already exists" in result.stderr, result.stderr
    assert pop_count(server, TA) == 0, "the existing account keeps its password"
    # No second "ta" was made in the alias domain: the bare login name is still unambiguous.
    assert pop_count(server, "ta") == 0
    assert len(accounts(server)) == 3


@pytest.mark.parametrize("address", ["not-an-address", "@mmsys.upenn.edu", "ta@", "a b@mmsys.upenn.edu"])
def test_a_malformed_address_fails_with_a_clear_message(server, address):
    result = server.account("add", address, password="whatever")
    assert result.returncode != 0
    assert "not an address" in result.stderr, result.stderr
    assert len(accounts(server)) == 3


def test_passwd_and_remove_of_an_unknown_account_fail_clearly(server):
    for args in (("passwd", "nobody@mmsys.upenn.edu"), ("remove", "nobody@mmsys.upenn.edu")):
        result = server.account(*args, password="x")
        assert result.returncode != 0
        assert "no account" in result.stderr, result.stderr


# --- demo mode and the data directory -------------------------------------------------------------

def test_demo_refuses_a_listener_on_a_non_loopback_address(make_server):
    server = make_server(start=False)
    config = server.config_path.read_text().replace('address = "127.0.0.1:0"', 'address = "0.0.0.0:0"', 1)
    result = serve_once(server, "--demo", config=config)
    assert result.returncode != 0
    assert "loopback" in result.stderr and "0.0.0.0" in result.stderr, result.stderr
    assert not (server.data / "tls").exists(), "refused before anything was set up"


def test_a_former_demo_directory_with_demo_passwords_is_not_served_beyond_loopback(server):
    assert server.stop() == 0
    config = server.config_path.read_text().replace('address = "127.0.0.1:0"', 'address = "0.0.0.0:0"', 1)
    result = serve_once(server, config=config)
    assert result.returncode != 0
    assert "demo password" in result.stderr and "ta@mmsys.upenn.edu" in result.stderr, result.stderr
    for user in ("instructor", "ta", "cis505"):
        assert server.account("passwd", f"{user}@mmsys.upenn.edu", password="a-real-secret").returncode == 0
    # With the passwords changed, the refusal is gone (the server starts and is stopped at once).
    server.demo = False
    server.start()
    assert "demo password" not in server.log()
    assert server.stop() == 0


def test_demo_accounts_exist_after_start_and_survive_a_restart_with_their_passwords(server):
    for user in ("instructor", "ta", "cis505"):
        assert pop_count(server, f"{user}@mmsys.upenn.edu") == 0
    deliver(server, b"Subject: kept\r\n\r\nx\r\n")
    assert server.account("passwd", "cis505@mmsys.upenn.edu", password="not-the-demo-one").returncode == 0
    assert server.stop() == 0
    server.start()
    assert len(accounts(server)) == 3
    assert pop_count(server, "instructor@mmsys.upenn.edu") == 0
    assert pop_count(server, TA) == 1, "mail survives the restart"
    # --demo creates missing accounts only; it never resets a password.
    assert pop_count(server, "cis505@mmsys.upenn.edu", "not-the-demo-one") == 0
    assert login_fails(server, "cis505@mmsys.upenn.edu", DEMO_PASSWORD)


def test_a_second_server_on_the_same_data_directory_exits_saying_it_is_in_use(server):
    result = serve_once(server, "--demo")
    assert result.returncode != 0
    assert "in use" in result.stderr, result.stderr
    assert server.alive()
    assert pop_count(server) == 0, "the first server still serves"


@pytest.mark.parametrize("config, key", [
    ("[smtp]\nmessage_bytes_mx = 5\n", "message_bytes_mx"),
    ("[pop3]\ncommand_line_bytes_max = 10\n", "command_line_bytes_max"),
    ("[serverr]\nhostname = \"mx.test.example\"\n", "serverr"),
    ("[[listener]]\nservice = \"nntp\"\naddress = \"127.0.0.1:0\"\n", "nntp"),
])
def test_a_bad_config_file_makes_serve_exit_nonzero_naming_the_key(make_server, config, key):
    server = make_server(start=False)
    result = serve_once(server, config=config)
    assert result.returncode != 0
    assert key in result.stderr, result.stderr


# --- graceful shutdown ----------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_tells_idle_sessions_and_the_process_exits_0(make_server, signum):
    server = make_server()
    deliver(server, b"Subject: keep me\r\n\r\nx\r\n")
    smtp = LineClient(server.smtp_port)
    assert smtp.smtp_reply()[0] == 220
    assert smtp.command("EHLO client.example")[0] == 250
    submission = LineClient(server.submission_port)
    assert submission.smtp_reply()[0] == 220
    pop_fresh = LineClient(server.pop3_port)
    assert pop_fresh.line().startswith(b"+OK")
    pop_in = LineClient(server.pop3_port)
    assert pop_in.line().startswith(b"+OK")
    for line in (f"USER {TA}", f"PASS {DEMO_PASSWORD}", "DELE 1"):
        pop_in.send(line + "\r\n")
        assert pop_in.line().startswith(b"+OK"), line

    server.proc.send_signal(signum)
    for client in (smtp, submission):
        code, texts = client.smtp_reply()
        assert code == 421, (code, texts)
        assert client.closed()
    for client in (pop_fresh, pop_in):
        assert client.line() == b"-ERR Server shutting down"
        assert client.closed()
    assert server.proc.wait(timeout=15) == 0
    assert "stopped" in server.log()
    server.start()
    assert pop_count(server) == 1, "a deletion marked in a session ended by the shutdown is not applied"


def test_a_transaction_in_flight_at_shutdown_finishes_and_is_stored(make_server):
    server = make_server()
    c = LineClient(server.smtp_port)
    assert c.smtp_reply()[0] == 220
    assert c.command("EHLO client.example")[0] == 250
    assert c.command("MAIL FROM:<sender@example.org>")[0] == 250
    assert c.command(f"RCPT TO:<{TA}>")[0] == 250
    assert c.command("DATA")[0] == 354
    c.send("Subject: in flight\r\n\r\nfirst half\r\n")
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "shutting down" in server.log(), 10, "the server to begin its shutdown")
    # New connections are no longer accepted.
    wait_until(lambda: not connectable(server.smtp_port), 10, "the listener to close")
    c.send("second half\r\n.\r\n")
    code, texts = c.smtp_reply()
    assert code == 250, (code, texts)
    assert c.smtp_reply()[0] == 421
    assert c.closed()
    assert server.proc.wait(timeout=15) == 0
    server.start()
    p = pop_login(server, TA)
    assert p.stat()[0] == 1
    lines = p.retr(1)[1]
    assert b"Subject: in flight" in lines and lines[-2:] == [b"first half", b"second half"]
    p.quit()


def connectable(port: int) -> bool:
    try:
        LineClient(port, timeout=2).close()
        return True
    except OSError:
        return False


# --- transcripts ----------------------------------------------------------------------------------

def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_verbose_transcript_shows_the_dialogue_but_never_passwords_or_auth_payloads(make_server):
    server = make_server(verbose=True)
    secrets = [DEMO_PASSWORD, "Wrong-Secret-99"]
    payloads = [b64(f"\0{TA}\0{DEMO_PASSWORD}"), b64(TA), b64(DEMO_PASSWORD), b64(f"\0{TA}\0Wrong-Secret-99"),
                b64(f"{TA}\0{TA}\0{DEMO_PASSWORD}")]
    # SMTP submission: AUTH PLAIN with an initial response, then a message.
    with smtplib.SMTP(HOST, server.submission_port, timeout=10) as s:
        s.ehlo("client.example")
        s.user, s.password = TA, DEMO_PASSWORD
        assert s.auth("PLAIN", s.auth_plain)[0] == 235
        s.sendmail(TA, ["instructor@mmsys.upenn.edu"], b"Subject: transcript\r\n\r\nhello\r\n")
    # AUTH LOGIN with username and password as continuations.
    with smtplib.SMTP(HOST, server.submission_port, timeout=10) as s:
        s.ehlo("client.example")
        s.user, s.password = TA, DEMO_PASSWORD
        assert s.auth("LOGIN", s.auth_login, initial_response_ok=False)[0] == 235
    # AUTH PLAIN as a continuation, after a failed attempt.
    with LineClient(server.submission_port) as c:
        assert c.smtp_reply()[0] == 220
        assert c.command("EHLO client.example")[0] == 250
        assert c.command(f"AUTH PLAIN {payloads[3]}")[0] == 535
        assert c.command("AUTH PLAIN")[0] == 334
        assert c.command(payloads[4])[0] == 235
    # POP3: USER/PASS (a wrong one first), AUTH PLAIN with an initial response and as a continuation.
    p = poplib.POP3(HOST, server.pop3_port, timeout=10)
    p.user(TA)
    with pytest.raises(poplib.error_proto):
        p.pass_("Wrong-Secret-99")
    p.user(TA)
    p.pass_(DEMO_PASSWORD)
    p.stat()
    p.quit()
    for command in ([f"AUTH PLAIN {payloads[0]}"], ["AUTH PLAIN", payloads[0]]):
        with LineClient(server.pop3_port) as c:
            assert c.line().startswith(b"+OK")
            for line in command:
                c.send(line + "\r\n")
                reply = c.line()
            assert reply.startswith(b"+OK"), reply
            c.send("QUIT\r\n")
            assert c.line().startswith(b"+OK")
    assert server.stop() == 0
    log = server.log()
    transcript = [line for line in log.splitlines() if re.search(r"\[\d+\] [CS]: ", line)]
    text = "\n".join(transcript)
    for expected in (r"\[\d+\] C: EHLO client\.example", r"\[\d+\] S: 235", r"\[\d+\] C: AUTH PLAIN",
                     r"\[\d+\] C: AUTH LOGIN", rf"\[\d+\] C: USER {re.escape(TA)}", r"\[\d+\] S: \+OK",
                     r"\[\d+\] C: STAT", r"\[\d+\] C: PASS <redacted>", r"\[\d+\] C: <redacted>", r"\[\d+\] S: -ERR \[AUTH\]"):
        assert re.search(expected, text), f"{expected!r} not in the transcript:\n{text}"
    for secret in secrets + payloads:
        assert secret not in log, f"{secret!r} appears in the log"


def test_without_verbose_there_is_no_transcript(server):
    p = pop_login(server, TA)
    p.quit()
    assert server.stop() == 0
    assert not re.search(r"\[\d+\] [CS]: ", server.log())


# --- TLS ------------------------------------------------------------------------------------------

def test_implicit_tls_listeners_serve_pop3_ssl_and_smtp_ssl(make_server):
    server = make_server(listeners=[("smtp", "starttls"), ("submission", "implicit"), ("pop3", "implicit")])
    ready = tomllib.loads(server.ready_path.read_text())
    assert {(e["service"], e["tls"]) for e in ready["listener"]} == {
        ("smtp", "starttls"), ("submission", "implicit"), ("pop3", "implicit")}
    with smtplib.SMTP_SSL(HOST, server.submission_port, timeout=10, context=no_verification()) as s:
        code, capabilities = s.ehlo("client.example")
        assert code == 250 and b"STARTTLS" not in capabilities.upper(), capabilities
        assert s.login(TA, DEMO_PASSWORD)[0] == 235
        s.sendmail(TA, ["instructor@mmsys.upenn.edu"], b"Subject: over implicit tls\r\n\r\nx\r\n")
    p = poplib.POP3_SSL(HOST, server.pop3_port, timeout=10, context=no_verification())
    assert "STLS" not in p.capa()
    p.user("instructor")
    p.pass_(DEMO_PASSWORD)
    assert p.stat()[0] == 1
    assert b"Subject: over implicit tls" in p.retr(1)[1]
    p.quit()
    # A plaintext client on an implicit-TLS port gets no plaintext greeting.
    with LineClient(server.pop3_port) as c:
        c.send("USER ta\r\n")
        assert c.closed()
        assert b"+OK" not in c.buf


def make_certificate(tmp_path, make_server) -> tuple[str, str]:
    """A certificate for mx.test.example and its key, as PEM files: made with the openssl CLI when
    it is installed, else taken from a server that generated its own."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = shutil.which("openssl")
    if openssl:
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                        "-subj", "/CN=mx.test.example", "-addext", "subjectAltName=DNS:mx.test.example"],
                       check=True, capture_output=True, timeout=30)
    else:
        donor = make_server(name="donor")
        shutil.copy(donor.data / "tls" / "cert.pem", cert)
        shutil.copy(donor.data / "tls" / "key.pem", key)
        donor.stop()
    return str(cert), str(key)


def test_a_configured_certificate_is_the_one_served(tmp_path, make_server):
    cert, key = make_certificate(tmp_path, make_server)
    server = make_server({"tls": {"certificate": cert, "private_key": key}}, name="configured")
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    context = ssl.create_default_context(cafile=cert)
    # POP3 STLS.
    with LineClient(server.pop3_port) as c:
        assert c.line().startswith(b"+OK")
        c.send("STLS\r\n")
        assert c.line().startswith(b"+OK")
        tls = context.wrap_socket(c.sock, server_hostname="mx.test.example")
        assert tls.getpeercert(binary_form=True) == der
        c.sock = tls
        c.send("QUIT\r\n")
        assert c.line().startswith(b"+OK")
    # SMTP STARTTLS.
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10) as s:
        s._host = "mx.test.example"  # the name to verify the certificate against
        assert s.starttls(context=context)[0] == 220
        assert s.sock.getpeercert(binary_form=True) == der
    assert not (server.data / "tls" / "cert.pem").exists(), "no certificate generated when one is configured"


def test_a_certificate_without_its_key_is_a_config_error(tmp_path, make_server):
    server = make_server(start=False)
    config = server.config_path.read_text() + f'\n[tls]\ncertificate = "{tmp_path / "nowhere.pem"}"\n'
    result = serve_once(server, config=config)
    assert result.returncode != 0
    assert "private_key" in result.stderr, result.stderr


# --- limits -----------------------------------------------------------------------------------------

def test_pop3_connections_over_the_per_ip_limit_get_sys_temp_and_are_closed(make_server):
    server = make_server({"pop3": {"connections_per_ip_max": 2}})
    first, second = LineClient(server.pop3_port), LineClient(server.pop3_port)
    assert first.line().startswith(b"+OK") and second.line().startswith(b"+OK")
    with LineClient(server.pop3_port) as third:
        assert third.line().startswith(b"-ERR [SYS/TEMP]")
        assert third.closed()
    # SMTP has limits of its own.
    with LineClient(server.smtp_port) as smtp:
        assert smtp.smtp_reply()[0] == 220
    first.send("QUIT\r\n")
    assert first.line().startswith(b"+OK")
    assert first.closed()

    def admitted():
        with LineClient(server.pop3_port) as c:
            return c.line().startswith(b"+OK")
    wait_until(admitted, 10, "a place freed by the session that quit")
    second.close()


def test_memory_stays_bounded_with_200_idle_smtp_connections(make_server):
    server = make_server({"smtp": {"connections_per_ip_max": 400}})
    for _ in range(20):  # warm up allocator and runtime
        with LineClient(server.smtp_port) as c:
            assert c.smtp_reply()[0] == 220
    before = server.rss_kib()
    clients = []
    try:
        for _ in range(200):
            c = LineClient(server.smtp_port)
            assert c.smtp_reply()[0] == 220
            clients.append(c)
        after = server.rss_kib()
    finally:
        for c in clients:
            c.close()
    grown = after - before
    print(f"RSS {before} KiB -> {after} KiB with 200 idle connections")
    assert grown < 64 * 200, f"RSS grew by {grown} KiB for 200 idle connections"
    deliver(server, b"Subject: still serving\r\n\r\nx\r\n")
    assert pop_count(server) == 1


# --- tidings bench ----------------------------------------------------------------------------------

def test_bench_smtp_reports_messages_per_second_and_delivers_every_message(server):
    result = subprocess.run([str(binary()), "bench", "smtp", "--server", f"127.0.0.1:{server.smtp_port}",
                             "--connections", "5", "--messages", "4"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    pattern = (r"^smtp: 20 messages of 10240 octets over 5 connections to 1 recipients in \d+\.\d\d s: \d+ messages/s durable; "
               r"latency ms p50 (\d+\.\d) p90 (\d+\.\d) p99 (\d+\.\d) max (\d+\.\d)$")
    match = re.match(pattern, result.stdout.strip())
    assert match, result.stdout
    p50, p90, p99, peak = map(float, match.groups())
    assert p50 <= p90 <= p99 <= peak
    p = pop_login(server, TA)
    count, octets = p.stat()
    assert count == 20 and octets > 20 * 10240
    p.quit()
