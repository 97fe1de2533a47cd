"""End-to-end behaviour of the SMTP and submission services, driven over loopback by smtplib and a
raw line client, with delivery checked over POP3.

Every test states one behaviour; each abuse test also checks that the server keeps serving
other clients (a second client completes a delivery).
"""

from __future__ import annotations

import base64
import email.utils
import poplib
import random
import re
import smtplib
import socket
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import DEMO_PASSWORD, LineClient, wait_until

HOST = "mx.test.example"
DOMAIN = "mmsys.upenn.edu"
TA = f"ta@{DOMAIN}"
INSTRUCTOR = f"instructor@{DOMAIN}"
CIS505 = f"cis505@{DOMAIN}"
OUTSIDER = "alice@example.org"

SMUGGLING_SEQUENCES = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n"]


# ----- helpers -----


def pop3_login(server, user: str, tls: bool = False) -> poplib.POP3:
    """A POP3 session logged in as `user` (after STLS when `tls`)."""
    pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=30)
    if tls:
        pop.stls(context=tls_context(server))
    pop.user(user)
    pop.pass_(DEMO_PASSWORD)
    return pop


def mailbox(server, user: str = "ta", tls: bool = False) -> list[bytes]:
    """Every message in `user`'s maildrop over POP3 (RETR, nothing deleted), as octets."""
    pop = pop3_login(server, user, tls)
    try:
        count, _ = pop.stat()
        messages = []
        for number in range(1, count + 1):
            _, lines, _ = pop.retr(number)
            messages.append(b"".join(line + b"\r\n" for line in lines))
        return messages
    finally:
        pop.quit()


def stat(server, user: str = "ta", tls: bool = False) -> int:
    """The number of messages in `user`'s maildrop (POP3 STAT)."""
    pop = pop3_login(server, user, tls)
    try:
        return pop.stat()[0]
    finally:
        pop.quit()


def body_of(message: bytes) -> bytes:
    """A stored message without the two trace fields the server prepends."""
    match = re.match(rb"Return-Path: [^\r\n]*\r\nReceived: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n", message)
    assert match, message[:300]
    return message[match.end():]


def connect(port: int, helo: str | None = "client.example", timeout: float = 10) -> LineClient:
    """A raw client past the greeting and, unless `helo` is None, past EHLO."""
    client = LineClient(port, timeout=timeout)
    code, texts = client.smtp_reply()
    assert code == 220 and texts[0].startswith(f"{HOST} "), (code, texts)
    if helo is not None:
        code, texts = client.command(f"EHLO {helo}")
        assert code == 250, (code, texts)
    return client


def dot_stuff(content: bytes) -> bytes:
    return re.sub(rb"(?m)^\.", b"..", content)


def send_raw(client: LineClient, sender: str, recipients: list[str], content: bytes) -> tuple[int, list[str]]:
    """One transaction over a raw client; returns the reply to the end of the data."""
    assert client.command(f"MAIL FROM:<{sender}>")[0] == 250
    for rcpt in recipients:
        assert client.command(f"RCPT TO:<{rcpt}>")[0] == 250
    assert client.command("DATA")[0] == 354
    client.send(dot_stuff(content) + b".\r\n")
    return client.smtp_reply()


def auth_plain_line(user: str, password: str) -> str:
    return "AUTH PLAIN " + base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def still_serving(server, user: str = "cis505") -> None:
    """Another client completes a delivery, and the message is in `user`'s maildrop."""
    assert server.alive(), server.log()
    marker = f"still-serving-{random.getrandbits(64):016x}"
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as smtp:
        smtp.sendmail(OUTSIDER, [f"{user}@{DOMAIN}"], f"Subject: {marker}\r\n\r\n{marker}\r\n".encode())
    assert any(marker.encode() in m for m in mailbox(server, user))
    assert server.alive()


def login_submission(server, user: str = "ta") -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10)
    smtp.login(user, DEMO_PASSWORD)
    return smtp


def tls_context(server) -> ssl.SSLContext:
    """Trusts exactly the self-signed certificate the server generated into its data directory."""
    return ssl.create_default_context(cafile=str(server.data / "tls" / "cert.pem"))


# ----- EHLO and HELO -----


def test_ehlo_advertises_every_supported_extension(server):
    with connect(server.smtp_port, helo=None) as client:
        code, lines = client.command("EHLO client.example")
        assert code == 250
        assert lines[0] == f"{HOST} Hello client.example"
        keywords = set(lines[1:])
        for keyword in ["PIPELINING", "8BITMIME", "SIZE 26214400", "ENHANCEDSTATUSCODES", "SMTPUTF8",
                        "STARTTLS", "AUTH PLAIN LOGIN", "CHUNKING"]:
            assert keyword in keywords, (keyword, lines)


def test_after_ehlo_replies_carry_enhanced_status_codes(server):
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>") == (250, [f"2.1.0 Sender <{OUTSIDER}> ok"])
        code, texts = client.command(f"RCPT TO:<nobody@{DOMAIN}>")
        assert code == 550 and texts[0].startswith("5.1.1 "), texts


def test_helo_gets_a_plain_greeting_and_no_enhanced_status_codes(server):
    with connect(server.smtp_port, helo=None) as client:
        assert client.command("HELO client.example") == (250, [f"{HOST} Hello client.example"])
        assert client.command(f"MAIL FROM:<{OUTSIDER}>") == (250, [f"Sender <{OUTSIDER}> ok"])
        code, texts = client.command(f"RCPT TO:<nobody@{DOMAIN}>")
        assert code == 550 and not re.match(r"\d\.\d+\.\d+ ", texts[0]), texts
        code, texts = client.command("FOO")
        assert (code, texts) == (500, ["Command not recognized"])


# ----- delivery and durability -----


def test_fifty_concurrent_clients_sending_twenty_messages_each_deliver_all_1000_exactly_once(server):
    clients, per_client = 50, 20
    barrier = threading.Barrier(clients, timeout=30)

    def client(number: int) -> int:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, local_hostname=f"c{number}.example", timeout=60) as smtp:
            barrier.wait()  # every client is connected before any sends
            for i in range(per_client):
                marker = f"marker-{number:02d}-{i:02d}"
                assert smtp.sendmail(OUTSIDER, [TA], f"Subject: {marker}\r\n\r\n{marker}\r\n".encode()) == {}
        return per_client

    with ThreadPoolExecutor(max_workers=clients) as pool:
        sent = sum(pool.map(client, range(clients)))
    assert sent == clients * per_client

    assert stat(server) == clients * per_client
    markers = Counter()
    for message in mailbox(server):
        found = re.findall(rb"marker-\d\d-\d\d", body_of(message))
        assert len(set(found)) == 1, found
        markers[found[0]] += 1
    expected = {f"marker-{c:02d}-{i:02d}".encode() for c in range(clients) for i in range(per_client)}
    assert set(markers) == expected
    assert all(count == 1 for count in markers.values()), [m for m, n in markers.items() if n != 1]


def test_a_message_acknowledged_with_250_survives_kill_9_right_after(make_server):
    server = make_server()
    with connect(server.smtp_port) as client:
        code, texts = send_raw(client, OUTSIDER, [TA], b"Subject: durable\r\n\r\ndurable-marker\r\n")
        assert code == 250, texts
        server.kill9()  # before QUIT, right after the 250
    assert not server.alive()
    server.start()  # same data directory
    messages = mailbox(server)
    assert len(messages) == 1
    assert body_of(messages[0]) == b"Subject: durable\r\n\r\ndurable-marker\r\n"
    still_serving(server)


def test_every_message_acknowledged_before_a_kill_9_under_concurrent_load_survives(make_server):
    server = make_server()
    acked: list[str] = []
    attempted: list[str] = []
    failures_before_kill: list[BaseException] = []
    killed = threading.Event()
    lock = threading.Lock()

    def client(number: int):
        try:
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as smtp:
                for i in range(10_000):
                    marker = f"load-{number}-{i}"
                    with lock:
                        attempted.append(marker)
                    smtp.sendmail(OUTSIDER, [TA if number % 2 == 0 else CIS505],
                                  f"Subject: {marker}\r\n\r\n{marker}\r\n".encode())
                    with lock:
                        acked.append(marker)
        except (smtplib.SMTPException, OSError) as e:
            if not killed.is_set():
                failures_before_kill.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acked) >= 200 or failures_before_kill, 30, "200 acknowledged messages")
    killed.set()
    server.kill9()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures_before_kill, failures_before_kill
    with lock:
        acknowledged, tried = set(acked), set(attempted)
    server.start()
    stored = Counter()
    for user in ["ta", "cis505"]:
        for message in mailbox(server, user):
            stored[re.search(rb"load-\d+-\d+", body_of(message)).group().decode()] += 1
    assert acknowledged <= set(stored), sorted(acknowledged - set(stored))[:10]
    assert set(stored) <= tried
    assert all(n == 1 for n in stored.values())


def test_received_and_return_path_fields_describe_the_transaction(server):
    with connect(server.smtp_port) as client:
        code, texts = send_raw(client, OUTSIDER, [TA], b"Subject: trace\r\n\r\nbody\r\n")
    assert code == 250 and texts[0].startswith("2.0.0 Ok: queued as "), texts
    queue_id = texts[0].rsplit(" ", 1)[1]
    [message] = mailbox(server)
    match = re.fullmatch(
        rb"Return-Path: <alice@example\.org>\r\n"
        rb"Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n"
        rb"\tby mx\.test\.example \(tidings\) with ESMTP id ([0-9A-Za-z]+)\r\n"
        rb"\tfor <ta@mmsys\.upenn\.edu>; ([^\r\n]+)\r\n"
        rb"Subject: trace\r\n\r\nbody\r\n", message)
    assert match, message
    assert match.group(1).decode() == queue_id
    date = email.utils.parsedate_to_datetime(match.group(2).decode())
    assert date.tzinfo is not None
    assert match.group(2).decode().startswith(date.strftime("%a, "))  # the weekday is right
    assert abs(date.timestamp() - time.time()) < 300


def test_received_field_names_the_protocol_smtp_esmtps_esmtpa_and_esmtpsa(server):
    # HELO: SMTP
    with connect(server.smtp_port, helo=None) as client:
        assert client.command("HELO old.example")[0] == 250
        assert send_raw(client, OUTSIDER, [TA], b"Subject: helo\r\n\r\nx\r\n")[0] == 250
    # STARTTLS, no AUTH: ESMTPS
    with smtplib.SMTP("127.0.0.1", server.smtp_port, local_hostname="tls.example", timeout=10) as smtp:
        smtp.starttls(context=tls_context(server))
        smtp.sendmail(OUTSIDER, [TA], b"Subject: tls\r\n\r\nx\r\n")
    # AUTH without TLS (loopback): ESMTPA
    with smtplib.SMTP("127.0.0.1", server.submission_port, local_hostname="auth.example", timeout=10) as smtp:
        smtp.login("ta", DEMO_PASSWORD)
        smtp.sendmail(TA, [TA], b"Subject: auth\r\n\r\nx\r\n")
    # STARTTLS and AUTH: ESMTPSA
    with smtplib.SMTP("127.0.0.1", server.submission_port, local_hostname="both.example", timeout=10) as smtp:
        smtp.starttls(context=tls_context(server))
        smtp.login("ta", DEMO_PASSWORD)
        smtp.sendmail(TA, [TA], b"Subject: both\r\n\r\nx\r\n")
    protocols = {}
    for message in mailbox(server):
        match = re.search(rb"Received: from (\S+) \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test\.example \(tidings\) "
                          rb"with (\S+) id ", message)
        assert match, message
        protocols[match.group(1).decode()] = match.group(2).decode()
    assert protocols == {"old.example": "SMTP", "tls.example": "ESMTPS", "auth.example": "ESMTPA",
                         "both.example": "ESMTPSA"}


def test_null_sender_gets_an_empty_return_path(server):
    with connect(server.smtp_port) as client:
        assert client.command("MAIL FROM:<>")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: bounce\r\n\r\nbounce\r\n.\r\n")
        assert client.smtp_reply()[0] == 250
    [message] = mailbox(server)
    assert message.startswith(b"Return-Path: <>\r\nReceived: from client.example ")


def test_a_message_for_several_recipients_names_none_of_them_in_received(server):
    with connect(server.smtp_port) as client:
        assert send_raw(client, OUTSIDER, [TA, INSTRUCTOR], b"Subject: two\r\n\r\nx\r\n")[0] == 250
    for user in ["ta", "instructor"]:
        [message] = mailbox(server, user)
        assert re.match(rb"Return-Path: <alice@example\.org>\r\nReceived: from client\.example \(\[127\.0\.0\.1\]\)"
                        rb"\r\n\tby mx\.test\.example \(tidings\) with ESMTP id \w+;\r\n\t[^\r\n]+\r\n"
                        rb"Subject: two\r\n", message), message
        assert b"for <" not in message


# ----- PIPELINING and CHUNKING -----


def test_pipelined_mail_rcpt_rcpt_data_get_their_four_replies_in_order(server):
    with connect(server.smtp_port) as client:
        client.send(f"MAIL FROM:<{OUTSIDER}>\r\nRCPT TO:<{TA}>\r\nRCPT TO:<nobody@{DOMAIN}>\r\nDATA\r\n")
        replies = [client.smtp_reply() for _ in range(4)]
        assert [code for code, _ in replies] == [250, 250, 550, 354], replies
        assert replies[1][1] == [f"2.1.5 Recipient <{TA}> ok"]
        assert f"<nobody@{DOMAIN}>" in replies[2][1][0]
        client.send(b"Subject: pipelined\r\n\r\nx\r\n.\r\nQUIT\r\n")
        assert client.smtp_reply()[0] == 250
        assert client.smtp_reply()[0] == 221
    [message] = mailbox(server)
    assert body_of(message) == b"Subject: pipelined\r\n\r\nx\r\n"


def test_bdat_chunks_then_bdat_last_deliver_exactly_the_concatenated_octets(server):
    chunks = [b"Subject: chunked\r\n\r\n.a dot stays\r", b"\n.\r\nsecond chunk\r\n", b"last line\r\n"]
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        for chunk in chunks[:-1]:
            client.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
            assert client.smtp_reply() == (250, [f"2.0.0 {len(chunk)} octets received"])
        client.send(f"BDAT {len(chunks[-1])} LAST\r\n".encode() + chunks[-1])
        code, texts = client.smtp_reply()
        assert code == 250 and texts[0].startswith("2.0.0 Ok: queued as "), texts
    [message] = mailbox(server)
    assert body_of(message) == b"".join(chunks)


def test_pipelined_bdat_chunks_with_an_empty_last_chunk_deliver_the_octets(server):
    with connect(server.smtp_port) as client:
        chunks = [b"Subject: x\r", b"\n\r\nbody\r\n"]
        client.send(f"MAIL FROM:<{OUTSIDER}>\r\nRCPT TO:<{TA}>\r\n".encode()
                    + b"".join(f"BDAT {len(chunk)}\r\n".encode() + chunk for chunk in chunks)
                    + b"BDAT 0 LAST\r\n")
        replies = [client.smtp_reply()[0] for _ in range(5)]
        assert replies == [250, 250, 250, 250, 250]
    [message] = mailbox(server)
    assert body_of(message) == b"Subject: x\r\n\r\nbody\r\n"


def test_a_bdat_chunk_outside_a_transaction_is_consumed_and_never_run_as_commands(server):
    with connect(server.smtp_port) as client:
        smuggled = f"MAIL FROM:<evil@evil.example>\r\nRCPT TO:<{TA}>\r\nDATA\r\n".encode()
        client.send(f"BDAT {len(smuggled)} LAST\r\n".encode() + smuggled)
        code, texts = client.smtp_reply()
        assert code == 503 and texts[0].startswith("5.5.1 "), texts
        # The next reply answers our NOOP: the chunk's lines were not commands.
        assert client.command("NOOP") == (250, ["2.0.0 Ok"])
        # A BDAT whose size cannot be read leaves no way to find the chunk's end: 501 and close.
        code, texts = client.command("BDAT many")
        assert code == 501, texts
        assert client.closed(timeout=5)
    assert stat(server) == 0
    still_serving(server)


# ----- bad input -----


def test_unknown_commands_get_500_5_5_2_and_the_session_goes_on(server):
    with connect(server.smtp_port) as client:
        for line in ["FOO", "MAIL", "XYZZY bar", "EHLOX client"]:
            code, texts = client.command(line)
            assert code in (500, 501), (line, code, texts)
        assert client.command("FOO") == (500, ["5.5.2 Command not recognized"])
        assert send_raw(client, OUTSIDER, [TA], b"Subject: after junk\r\n\r\nx\r\n")[0] == 250
    assert stat(server) == 1
    still_serving(server)


def test_out_of_order_commands_get_503(server):
    with connect(server.smtp_port, helo=None) as client:
        code, _ = client.command(f"MAIL FROM:<{OUTSIDER}>")  # before EHLO
        assert code == 503
        assert client.command("EHLO client.example")[0] == 250
        code, texts = client.command(f"RCPT TO:<{TA}>")  # before MAIL
        assert code == 503 and texts[0].startswith("5.5.1 "), texts
        code, texts = client.command("DATA")  # before MAIL and RCPT
        assert code == 503 and texts[0].startswith("5.5.1 "), texts
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        code, texts = client.command(f"MAIL FROM:<{OUTSIDER}>")  # nested MAIL
        assert code == 503 and texts[0].startswith("5.5.1 "), texts
        # DATA after MAIL but before any RCPT: RFC 5321 §3.3 allows 503 (bad sequence) or 554
        # (no valid recipients); either way the data must not be invited.
        code, texts = client.command("DATA")
        assert code in (503, 554) and texts[0].startswith("5.5.1 "), (code, texts)
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: in order\r\n\r\nx\r\n.\r\n")
        assert client.smtp_reply()[0] == 250
    assert stat(server) == 1
    still_serving(server)


def test_a_998_octet_line_is_accepted_even_when_dot_stuffing_makes_it_longer_and_999_is_refused(server):
    # RFC 5321 §4.5.3.1.6: 1000 octets including CRLF, not counting the dot doubled for transparency.
    allowed = [b"x" * 998, b"." + b"x" * 997, b"." * 998]
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as smtp:
        for line in allowed:
            assert smtp.sendmail(OUTSIDER, [TA], b"Subject: long\r\n\r\n" + line + b"\r\n") == {}
        for line in [b"x" * 999, b"." + b"x" * 998]:
            with pytest.raises(smtplib.SMTPDataError) as refusal:
                smtp.sendmail(OUTSIDER, [TA], b"Subject: too long\r\n\r\n" + line + b"\r\n")
            assert refusal.value.smtp_code == 550 and refusal.value.smtp_error.startswith(b"5.6.0 ")
    assert [body_of(m) for m in mailbox(server)] == [b"Subject: long\r\n\r\n" + line + b"\r\n" for line in allowed]


def test_a_ten_kilobyte_command_line_gets_500_and_the_session_still_works(server):
    with connect(server.smtp_port) as client:
        code, texts = client.command("NOOP " + "x" * 10240)
        assert code == 500 and texts == ["5.5.2 Line too long"], (code, texts)
        code, texts = client.command(f"MAIL FROM:<{OUTSIDER}> " + "X" * 10240)
        assert code == 500, (code, texts)
        assert client.command("NOOP") == (250, ["2.0.0 Ok"])
        assert send_raw(client, OUTSIDER, [TA], b"Subject: after a long line\r\n\r\nx\r\n")[0] == 250
    [message] = mailbox(server)
    assert body_of(message) == b"Subject: after a long line\r\n\r\nx\r\n"
    still_serving(server)


def read_until_close(client: LineClient, timeout: float = 10) -> tuple[list[bytes], bool]:
    """The reply lines the server sends until it closes or resets the connection, and whether it
    did so within `timeout` seconds of silence."""
    client.sock.settimeout(timeout)
    data, closed = client.buf, True
    try:
        while chunk := client.sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        closed = False
    return [line for line in data.split(b"\r\n") if line], closed


def test_binary_junk_gets_error_replies_or_a_close_and_never_kills_the_server(server):
    rng = random.Random(505)
    junks = [
        bytes(rng.randrange(256) for _ in range(16384)),  # anything, lines included
        bytes(rng.choice(b"\0\xff\r\n") for _ in range(4096)),  # NUL, 0xFF and line ends
        b"\0" * 20000 + b"\xff" * 20000,  # no line end at all: a huge discarded line
        b"EHLO x\r\nMAIL FROM:<\0\xff>\r\nRCPT TO:<\xff@\0>\r\nDATA\r\n" + b"\xff\xfe\0" * 1000,
    ]
    for junk in junks:
        client = connect(server.smtp_port, helo=None)
        try:
            client.sock.sendall(junk + b"\r\n")
        except OSError:
            pass  # the server closed first
        try:
            client.sock.shutdown(socket.SHUT_WR)  # then the server sees the end of the input
        except OSError:
            pass
        lines, closed = read_until_close(client)
        client.close()
        assert closed, f"the server neither closed nor answered the end of input: {lines[-3:]}"
        for line in lines:
            assert re.match(rb"\d{3}[ -]", line), line
            code = int(line[:3])
            # Only errors, except what the junk legitimately earned (its EHLO, MAIL... lines).
            assert code >= 400 or junk.startswith(b"EHLO"), line
        assert server.alive(), server.log()
    assert stat(server) == 0
    still_serving(server)


def smuggling_transaction(client: LineClient, sequence: bytes) -> tuple[int, list[str]]:
    """A message whose content holds `sequence` then a whole second transaction; returns the
    reply to the real end of data."""
    assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
    assert client.command(f"RCPT TO:<{TA}>")[0] == 250
    assert client.command("DATA")[0] == 354
    client.send(b"Subject: innocent\r\n\r\nbefore the sequence" + sequence
                + f"MAIL FROM:<evil@evil.example>\r\nRCPT TO:<{INSTRUCTOR}>\r\nDATA\r\n".encode()
                + b"Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n")
    return client.smtp_reply()


def test_smtp_smuggling_sequences_do_not_end_data_and_the_message_is_refused(server):
    for sequence in SMUGGLING_SEQUENCES:
        with connect(server.smtp_port) as client:
            code, texts = smuggling_transaction(client, sequence)
            assert code == 550 and texts[0].startswith("5.6.0 "), (sequence, code, texts)
            # The very next reply answers our NOOP: none came for the smuggled commands.
            assert client.command("NOOP") == (250, ["2.0.0 Ok"]), sequence
    assert stat(server, "ta") == 0
    assert stat(server, "instructor") == 0
    still_serving(server)


def test_smtp_smuggling_sequences_are_content_under_the_normalize_policy(make_server):
    server = make_server({"smtp": {"bare_line_ending": "normalize"}})
    for sequence in SMUGGLING_SEQUENCES:
        with connect(server.smtp_port) as client:
            code, texts = smuggling_transaction(client, sequence)
            assert code == 250, (sequence, code, texts)
            assert client.command("NOOP") == (250, ["2.0.0 Ok"]), sequence
    messages = mailbox(server, "ta")
    assert len(messages) == len(SMUGGLING_SEQUENCES)
    for message in messages:
        body = body_of(message)
        assert body.startswith(b"Subject: innocent\r\n\r\nbefore the sequence\r\n")
        assert b"MAIL FROM:<evil@evil.example>\r\n" in body and body.endswith(b"smuggled body\r\n")
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", body) is None  # stored with CRLF only
    assert stat(server, "instructor") == 0
    still_serving(server)


def test_a_message_over_the_size_limit_gets_552_5_3_4_and_nothing_is_stored(make_server):
    server = make_server({"smtp": {"message_bytes_max": 10000}})
    with connect(server.smtp_port, helo=None) as client:
        code, lines = client.command("EHLO client.example")
        assert "SIZE 10000" in lines
        code, texts = client.command(f"MAIL FROM:<{OUTSIDER}> SIZE=10001")
        assert code == 552 and texts[0].startswith("5.3.4 "), texts
        # Declared within the limit, sent over it.
        assert client.command(f"MAIL FROM:<{OUTSIDER}> SIZE=9000")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 250 + b".\r\n")
        code, texts = client.smtp_reply()
        assert code == 552 and texts[0].startswith("5.3.4 "), texts
        # The same over BDAT.
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        chunk = (b"z" * 78 + b"\r\n") * 200
        client.send(f"BDAT {len(chunk)} LAST\r\n".encode() + chunk)
        code, texts = client.smtp_reply()
        assert code == 552 and texts[0].startswith("5.3.4 "), texts
        assert stat(server) == 0
        # Exactly at the limit is accepted, on the same connection.
        exact = b"Subject: exact\r\n\r\n" + (b"e" * 98 + b"\r\n") * 99
        exact += b"f" * (10000 - len(exact) - 2) + b"\r\n"
        assert len(exact) == 10000
        assert send_raw(client, OUTSIDER, [TA], exact)[0] == 250
    [message] = mailbox(server)
    assert body_of(message) == exact
    still_serving(server)


def test_wrong_passwords_get_535_5_7_8_after_the_failure_delay_then_the_right_one_works(make_server):
    server = make_server({"auth": {"failure_delay_ms": 1000}})
    with connect(server.submission_port) as client, connect(server.submission_port) as other:
        started = time.monotonic()
        client.send(auth_plain_line("ta", "wrong") + "\r\n")
        # Meanwhile another client is served without waiting for that delay.
        assert other.command(auth_plain_line("ta", DEMO_PASSWORD)) == (235, ["2.7.0 Authentication successful"])
        assert time.monotonic() - started < 0.9
        assert client.smtp_reply() == (535, ["5.7.8 Authentication credentials invalid"])
        assert time.monotonic() - started >= 0.9

        assert client.command("AUTH LOGIN") == (334, [b64("Username:")])
        assert client.command(b64("ta")) == (334, [b64("Password:")])
        started = time.monotonic()
        assert client.command(b64("not the password")) == (535, ["5.7.8 Authentication credentials invalid"])
        assert time.monotonic() - started >= 0.9

        started = time.monotonic()
        assert client.command(auth_plain_line("nosuchuser", DEMO_PASSWORD))[0] == 535
        assert time.monotonic() - started >= 0.9  # an unknown user looks the same

        assert client.command(auth_plain_line("ta", DEMO_PASSWORD)) == (235, ["2.7.0 Authentication successful"])
        assert send_raw(client, TA, [INSTRUCTOR], b"Subject: finally\r\n\r\nx\r\n")[0] == 250
    assert len(mailbox(server, "instructor")) == 1
    still_serving(server)


def test_auth_login_with_the_right_password_succeeds(server):
    with connect(server.submission_port) as client:
        assert client.command("AUTH LOGIN") == (334, [b64("Username:")])
        assert client.command(b64(TA)) == (334, [b64("Password:")])
        assert client.command(b64(DEMO_PASSWORD)) == (235, ["2.7.0 Authentication successful"])
        assert send_raw(client, TA, [CIS505], b"Subject: login\r\n\r\nx\r\n")[0] == 250
    assert stat(server, "cis505") == 1


def test_smtplib_login_with_a_wrong_password_raises_535(server):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            smtp.login("ta", "wrong")
        assert failure.value.smtp_code == 535
        smtp.login("ta", DEMO_PASSWORD)
        assert smtp.sendmail(TA, [TA], b"Subject: x\r\n\r\nx\r\n") == {}
    assert stat(server) == 1


def test_a_silent_client_gets_421_and_is_closed_after_the_command_timeout(make_server):
    server = make_server({"smtp": {"command_timeout_secs": 2}})
    started = time.monotonic()
    silent = connect(server.smtp_port, helo=None)
    after_ehlo = connect(server.smtp_port)
    try:
        # Meanwhile other clients are served.
        with connect(server.smtp_port) as busy:
            for _ in range(3):
                assert busy.command("NOOP")[0] == 250
            assert send_raw(busy, OUTSIDER, [TA], b"Subject: busy\r\n\r\nx\r\n")[0] == 250
        # Before EHLO there are no enhanced status codes (RFC 2034); after it, 4.4.2.
        assert silent.smtp_reply() == (421, [f"{HOST} Timeout, closing connection"])
        assert after_ehlo.smtp_reply() == (421, [f"4.4.2 {HOST} Timeout, closing connection"])
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 8, elapsed
        assert silent.closed(timeout=5)
        assert after_ehlo.closed(timeout=5)
    finally:
        silent.close()
        after_ehlo.close()
    assert stat(server) == 1
    still_serving(server)


def admitted_client(server) -> LineClient:
    """Waits until a new SMTP connection is admitted (greeted with 220, not refused with 421)."""

    def attempt():
        client = LineClient(server.smtp_port)
        if client.smtp_reply()[0] == 220:
            return client
        client.close()
        return None

    return wait_until(attempt, 10, "an SMTP connection to be admitted")


def test_a_disconnect_in_the_middle_of_data_stores_nothing(make_server):
    # One connection per IP at a time: the next one is admitted only once the cut session is over.
    server = make_server({"smtp": {"connections_per_ip_max": 1}})
    cuts = [
        b"DATA\r\n", b"Subject: cut\r\n\r\nhalf a li",
        b"DATA\r\n", b"Subject: cut\r\n\r\nwhole lines\r\n",
        b"DATA\r\n", b"Subject: cut\r\n\r\nx\r\n.",
        b"DATA\r\n", b"Subject: cut\r\n\r\nx\r\n.\r",
        b"BDAT 100 LAST\r\n", b"Subject: cut\r\n\r\nonly part of the chunk\r\n",
    ]
    client = admitted_client(server)
    for command, partial in zip(cuts[::2], cuts[1::2]):
        assert client.command("EHLO client.example")[0] == 250
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        client.send(command)
        if command == b"DATA\r\n":
            assert client.smtp_reply()[0] == 354
        client.send(partial)
        client.close()
        client = admitted_client(server)
        assert stat(server) == 0, partial
    with client:
        assert client.command("EHLO client.example")[0] == 250
        assert send_raw(client, OUTSIDER, [TA], b"Subject: whole\r\n\r\nx\r\n")[0] == 250
    [message] = mailbox(server)
    assert body_of(message) == b"Subject: whole\r\n\r\nx\r\n"


def test_too_many_errors_get_421_and_the_connection_is_closed(make_server):
    server = make_server({"smtp": {"errors_max": 3}})
    with connect(server.smtp_port) as client:
        assert client.command("FOO")[0] == 500
        assert client.command(f"RCPT TO:<{TA}>")[0] == 503
        assert client.command("BAR")[0] == 500
        assert client.smtp_reply() == (421, [f"4.7.0 {HOST} Too many errors"])
        assert client.closed(timeout=5)
    still_serving(server)


def test_a_client_stalling_in_data_gets_421_4_4_2_after_the_data_timeout_and_nothing_is_stored(make_server):
    server = make_server({"smtp": {"data_timeout_secs": 2}})
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: stalled\r\n\r\nhalf")
        started = time.monotonic()
        assert client.smtp_reply() == (421, [f"4.4.2 {HOST} Timeout, closing connection"])
        assert 1.5 <= time.monotonic() - started < 8
        assert client.closed(timeout=5)
    assert stat(server) == 0
    still_serving(server)


def test_recipients_over_the_limit_get_452_4_5_3_and_the_others_get_the_message(make_server):
    server = make_server({"smtp": {"recipients_max": 2}})
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        assert client.command(f"RCPT TO:<{INSTRUCTOR}>")[0] == 250
        assert client.command(f"RCPT TO:<{CIS505}>") == (452, ["4.5.3 Too many recipients"])
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: two of three\r\n\r\nx\r\n.\r\n")
        assert client.smtp_reply()[0] == 250
    assert (stat(server, "ta"), stat(server, "instructor"), stat(server, "cis505")) == (1, 1, 0)


def test_a_message_with_more_received_fields_than_the_limit_is_refused_as_a_mail_loop(make_server):
    server = make_server({"smtp": {"received_fields_max": 5}})
    hops = [f"Received: from hop{n}.example by hop{n + 1}.example; Thu, 1 Jan 2026 00:00:00 +0000\r\n".encode()
            for n in range(6)]
    with connect(server.smtp_port) as client:
        code, texts = send_raw(client, OUTSIDER, [TA], b"".join(hops) + b"Subject: loop\r\n\r\nx\r\n")
        assert code == 554 and texts[0].startswith("5.4.6 "), texts
        # Five are within the limit (the server's own makes six in the stored copy).
        assert send_raw(client, OUTSIDER, [TA], b"".join(hops[:5]) + b"Subject: ok\r\n\r\nx\r\n")[0] == 250
    [message] = mailbox(server)
    assert message.count(b"\nReceived: ") + message.startswith(b"Received: ") == 6


def test_smtputf8_senders_are_accepted_with_the_parameter_and_refused_without(server):
    with connect(server.smtp_port) as client:
        code, texts = client.command("MAIL FROM:<jos\u00e9@example.org>")
        assert code == 553 and texts[0].startswith("5.6.7 "), texts
        assert client.command("MAIL FROM:<jos\u00e9@example.org> SMTPUTF8")[0] == 250
        assert client.command(f"RCPT TO:<{TA}>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send("Subject: caf\u00e9\r\n\r\n\u00e7a va\r\n.\r\n".encode())
        assert client.smtp_reply()[0] == 250
    [message] = mailbox(server)
    assert message.startswith("Return-Path: <jos\u00e9@example.org>\r\n".encode())
    assert b" with UTF8SMTP id " in message
    assert body_of(message) == "Subject: caf\u00e9\r\n\r\n\u00e7a va\r\n".encode()


def test_vrfy_neither_confirms_nor_denies_that_a_user_exists(server):
    with connect(server.smtp_port) as client:
        known = client.command(f"VRFY {TA}")
        unknown = client.command(f"VRFY nobody@{DOMAIN}")
        assert known[0] == unknown[0] == 252
        assert known == unknown
        assert client.command("EXPN staff")[0] == 502


# ----- relay rules -----


def test_mx_refuses_an_unknown_local_user_with_550_5_1_1(server):
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        code, texts = client.command(f"RCPT TO:<nobody@{DOMAIN}>")
        assert code == 550 and texts[0].startswith("5.1.1 "), texts
        code, texts = client.command("RCPT TO:<nobody@localhost>")
        assert code == 550 and texts[0].startswith("5.1.1 "), texts


def test_mx_is_never_an_open_relay(server):
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        for rcpt in ["bob@example.com", f"ta@{DOMAIN}.evil.example", "postmaster@example.net"]:
            code, texts = client.command(f"RCPT TO:<{rcpt}>")
            assert code == 550 and texts[0].startswith("5.7.1 "), (rcpt, texts)
        code, texts = client.command("DATA")
        assert code in (503, 554), (code, texts)  # no valid recipient, no data
    # Authenticating on the MX port does not make it a relay either.
    with connect(server.smtp_port) as client:
        assert client.command(auth_plain_line("ta", DEMO_PASSWORD))[0] == 235
        assert client.command(f"MAIL FROM:<{TA}>")[0] == 250
        code, texts = client.command("RCPT TO:<bob@example.com>")
        assert code == 550 and texts[0].startswith("5.7.1 "), texts
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refusal:
            smtp.sendmail(OUTSIDER, ["bob@example.com"], b"Subject: relay?\r\n\r\nx\r\n")
        assert refusal.value.recipients["bob@example.com"][0] == 550


def test_submission_requires_auth_before_mail_with_530_5_7_0(server):
    with connect(server.submission_port) as client:
        code, texts = client.command(f"MAIL FROM:<{TA}>")
        assert code == 530 and texts[0].startswith("5.7.0 "), texts


def test_submission_refuses_a_sender_address_of_another_user_with_553_5_7_1(server):
    with connect(server.submission_port) as client:
        assert client.command(auth_plain_line("ta", DEMO_PASSWORD))[0] == 235
        for sender in [INSTRUCTOR, OUTSIDER, "instructor@localhost"]:
            code, texts = client.command(f"MAIL FROM:<{sender}>")
            assert code == 553 and texts[0].startswith("5.7.1 "), (sender, texts)
    with login_submission(server) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as refusal:
            smtp.sendmail(CIS505, [TA], b"Subject: forged\r\n\r\nx\r\n")
        assert refusal.value.smtp_code == 553
    assert stat(server) == 0


def test_submission_as_self_to_a_local_user_is_delivered(server):
    with login_submission(server) as smtp:
        assert smtp.sendmail(TA, [INSTRUCTOR], b"Subject: from ta\r\n\r\nhello\r\n") == {}
    [message] = mailbox(server, "instructor")
    assert message.startswith(b"Return-Path: <ta@mmsys.upenn.edu>\r\n")
    assert body_of(message) == b"Subject: from ta\r\n\r\nhello\r\n"


def test_submission_to_a_non_local_recipient_says_outbound_delivery_is_not_supported(server):
    with login_submission(server) as smtp:
        code, text = smtp.mail(TA)
        assert code == 250
        code, text = smtp.rcpt("bob@example.com")
        assert 500 <= code < 600, (code, text)
        assert b"outbound delivery is not" in text.lower(), text


# ----- TLS -----


def test_starttls_then_auth_and_send_works_and_starttls_is_no_longer_offered(server):
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        code, _ = smtp.starttls(context=tls_context(server))
        assert code == 220
        assert isinstance(smtp.sock, ssl.SSLSocket)
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        assert smtp.has_extn("auth")
        smtp.login(TA, DEMO_PASSWORD)
        assert smtp.sendmail(TA, [CIS505], b"Subject: over tls\r\n\r\nsecret\r\n") == {}
    [message] = mailbox(server, "cis505")
    assert b" with ESMTPSA id " in message
    assert body_of(message) == b"Subject: over tls\r\n\r\nsecret\r\n"


def test_starttls_certificate_verifies_for_localhost(server):
    context = tls_context(server)
    with LineClient(server.smtp_port) as client:
        assert client.smtp_reply()[0] == 220
        assert client.command("EHLO client.example")[0] == 250
        assert client.command("STARTTLS") == (220, ["2.0.0 Ready to start TLS"])
        with context.wrap_socket(client.sock, server_hostname="localhost") as tls:
            tls.sendall(b"EHLO client.example\r\n")
            reply = b""
            while not re.search(rb"(^|\r\n)250 [^\r\n]*\r\n$", reply):
                chunk = tls.recv(4096)
                assert chunk, reply
                reply += chunk
            assert b"STARTTLS" not in reply and b"AUTH PLAIN LOGIN" in reply


def test_commands_pipelined_after_starttls_are_discarded_not_run_inside_tls(server):
    with connect(server.submission_port) as client:
        client.send(f"STARTTLS\r\n{auth_plain_line('ta', DEMO_PASSWORD)}\r\nMAIL FROM:<{TA}>\r\n")
        assert client.smtp_reply() == (220, ["2.0.0 Ready to start TLS"])
        tls = tls_context(server).wrap_socket(client.sock, server_hostname="localhost")
        client.sock = tls
        code, lines = client.command("EHLO client.example")
        assert code == 250 and "AUTH PLAIN LOGIN" in lines
        # The injected AUTH did not happen: MAIL still needs authentication.
        code, texts = client.command(f"MAIL FROM:<{TA}>")
        assert code == 530 and texts[0].startswith("5.7.0 "), texts


def test_authentication_before_starttls_is_forgotten_after_it(server):
    with connect(server.submission_port) as client:
        assert client.command(auth_plain_line("ta", DEMO_PASSWORD))[0] == 235
        assert client.command("STARTTLS")[0] == 220
        client.sock = tls_context(server).wrap_socket(client.sock, server_hostname="localhost")
        assert client.command("EHLO client.example")[0] == 250
        assert client.command(f"MAIL FROM:<{TA}>")[0] == 530  # RFC 3207 §4.2
        assert client.command(auth_plain_line("ta", DEMO_PASSWORD))[0] == 235
        assert send_raw(client, TA, [TA], b"Subject: re-authenticated\r\n\r\nx\r\n")[0] == 250
    [message] = mailbox(server)
    assert b" with ESMTPSA id " in message


def test_submission_over_implicit_tls_offers_auth_but_not_starttls(make_server):
    server = make_server(listeners=[("smtp", "starttls"), ("submission", "implicit"), ("pop3", "starttls")])
    with smtplib.SMTP_SSL("127.0.0.1", server.submission_port, context=tls_context(server), timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("auth") and not smtp.has_extn("starttls")
        smtp.login("ta", DEMO_PASSWORD)
        assert smtp.sendmail(TA, [INSTRUCTOR], b"Subject: implicit\r\n\r\nx\r\n") == {}
    [message] = mailbox(server, "instructor")
    assert b" with ESMTPSA id " in message


def test_auth_plain_cannot_act_as_another_user(server):
    with connect(server.submission_port) as client:
        response = base64.b64encode(f"instructor\0ta\0{DEMO_PASSWORD}".encode()).decode()
        code, texts = client.command(f"AUTH PLAIN {response}")
        assert code == 535 and texts[0].startswith("5.7.8 "), texts
        code, _ = client.command(f"MAIL FROM:<{INSTRUCTOR}>")
        assert code == 530


def test_with_plaintext_auth_never_auth_needs_tls_first(make_server):
    server = make_server({"auth": {"plaintext": "never"}})
    with connect(server.submission_port, helo=None) as client:
        code, lines = client.command("EHLO client.example")
        assert code == 250 and "STARTTLS" in lines
        assert not any(line.startswith("AUTH") for line in lines), lines
        assert client.command(auth_plain_line("ta", DEMO_PASSWORD)) == (
            538, ["5.7.11 Encryption required for requested authentication mechanism"])
        assert client.command("AUTH LOGIN")[0] == 538
    with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")
        smtp.starttls(context=tls_context(server))
        smtp.ehlo()
        assert smtp.has_extn("auth")
        smtp.login("ta", DEMO_PASSWORD)
        assert smtp.sendmail(TA, [TA], b"Subject: tls first\r\n\r\nx\r\n") == {}
    assert stat(server, tls=True) == 1


# ----- connection limits -----


def test_connections_over_the_per_ip_limit_get_421_and_a_freed_place_is_reused(make_server):
    server = make_server({"smtp": {"connections_per_ip_max": 3}})
    held = [connect(server.smtp_port) for _ in range(3)]
    try:
        with LineClient(server.smtp_port) as fourth:
            code, texts = fourth.smtp_reply()
            assert code == 421 and texts[0].startswith("4.7.0 "), texts
            assert fourth.closed(timeout=5)
        # The three admitted sessions are unaffected.
        for client in held:
            assert client.command("NOOP")[0] == 250
        held.pop().close()

        def admitted():
            probe = LineClient(server.smtp_port)
            code, _ = probe.smtp_reply()
            if code == 220:
                return probe
            probe.close()
            return None

        probe = wait_until(admitted, 10, "a freed connection place")
        held.append(probe)
        assert probe.command("EHLO client.example")[0] == 250
        assert send_raw(probe, OUTSIDER, [TA], b"Subject: admitted\r\n\r\nx\r\n")[0] == 250
    finally:
        for client in held:
            client.close()
    assert stat(server) == 1


# ----- addresses -----


def test_rcpt_to_postmaster_is_accepted_and_delivered_to_the_configured_account(make_server):
    server = make_server({"mail": {"postmaster": INSTRUCTOR}})
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        assert client.command("RCPT TO:<postmaster>")[0] == 250
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: to the postmaster\r\n\r\nx\r\n.\r\n")
        assert client.smtp_reply()[0] == 250
        content = b"Subject: domain postmaster\r\n\r\nx\r\n"
        assert send_raw(client, OUTSIDER, [f"Postmaster@{DOMAIN}"], content)[0] == 250
    subjects = sorted(re.search(rb"Subject: ([^\r\n]+)", m).group(1) for m in mailbox(server, "instructor"))
    assert subjects == [b"domain postmaster", b"to the postmaster"]


def test_rcpt_to_postmaster_without_a_configured_account_is_refused(server):
    with connect(server.smtp_port) as client:
        assert client.command(f"MAIL FROM:<{OUTSIDER}>")[0] == 250
        assert client.command("RCPT TO:<postmaster>")[0] == 550


def test_auth_accepts_the_bare_local_part_and_the_full_address(server):
    for login in ["ta", TA, "ta@localhost"]:
        with smtplib.SMTP("127.0.0.1", server.submission_port, timeout=10) as smtp:
            code, _ = smtp.login(login, DEMO_PASSWORD)
            assert code == 235, login
            assert smtp.sendmail(TA, [TA], f"Subject: as {login}\r\n\r\nx\r\n".encode()) == {}
    assert stat(server) == 3


def test_rcpt_to_the_alias_domain_delivers_to_the_canonical_mailbox(server):
    with connect(server.smtp_port) as client:
        assert send_raw(client, OUTSIDER, ["ta@localhost"], b"Subject: via alias\r\n\r\nx\r\n")[0] == 250
    [message] = mailbox(server, "ta")
    assert b"\tfor <ta@mmsys.upenn.edu>; " in message
    assert body_of(message) == b"Subject: via alias\r\n\r\nx\r\n"


def test_a_quoted_local_part_means_its_contents(server):
    # RFC 5322 §3.2.4: "ta"@domain and ta@domain are the same mailbox.
    with connect(server.smtp_port) as client:
        assert send_raw(client, OUTSIDER, ['"ta"@mmsys.upenn.edu'], b"Subject: quoted\r\n\r\nx\r\n")[0] == 250
    [message] = mailbox(server, "ta")
    assert body_of(message) == b"Subject: quoted\r\n\r\nx\r\n"


def test_one_mailbox_named_several_ways_in_one_transaction_gets_one_copy(server):
    with connect(server.smtp_port) as client:
        names = ["ta@localhost", TA, "TA@MMSYS.UPENN.EDU"]
        assert send_raw(client, OUTSIDER, names, b"Subject: once\r\n\r\nx\r\n")[0] == 250
    [message] = mailbox(server, "ta")
    assert b"\tfor <ta@mmsys.upenn.edu>; " in message  # one recipient after all


def test_a_helo_name_cannot_break_the_received_field(server):
    with connect(server.smtp_port, helo="evil(x);by.example") as client:
        assert send_raw(client, OUTSIDER, [TA], b"Subject: helo\r\n\r\nx\r\n")[0] == 250
        code, _ = client.command("EHLO evil\x0bX-Injected:")
        assert code == 501  # control characters are refused outright
    [message] = mailbox(server)
    assert message.split(b"\r\n")[1] == b"Received: from evil?x??by.example ([127.0.0.1])"
