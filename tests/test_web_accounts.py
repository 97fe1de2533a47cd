"""The accounts part of the HTTP API (docs/web-api.md "Accounts") against the real binary:
verification codes by mail (read back over POP3), sign-up, existence checks, password reset,
outside addresses through a smarthost (a second node), and `tidings mail account create`."""

from __future__ import annotations

import http.client
import json
import os
import poplib
import re
import subprocess

import pytest

from conftest import DEMO_DOMAIN, DEMO_PASSWORD, binary, wait_until

LISTENERS = [("http", "none"), ("pop3", "none"), ("smtp", "none")]
TIMEOUT = 10
CODE_LINE = re.compile(rb"^(\d{6})\r?$", re.M)


def api(server, method: str, path: str, body=None, headers: dict | None = None):
    """One request; returns (status, JSON body or None, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=TIMEOUT)
    try:
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        response = conn.getresponse()
        raw = response.read()
        parsed = json.loads(raw) if raw and response.getheader("Content-Type", "").startswith("application/json") else None
        return response.status, parsed, response
    finally:
        conn.close()


def pop3_messages(server, user: str, password: str) -> list[bytes]:
    box = poplib.POP3("127.0.0.1", server.pop3_port, timeout=TIMEOUT)
    try:
        box.user(user)
        box.pass_(password)
        count, _ = box.stat()
        return [b"\r\n".join(box.retr(i)[1]) for i in range(1, count + 1)]
    finally:
        box.quit()


def wait_for_code(server, user: str, password: str, seen: int) -> tuple[str, bytes]:
    """Waits for message number `seen + 1` in the mailbox and returns its code and octets."""

    def arrived():
        messages = pop3_messages(server, user, password)
        return messages[seen] if len(messages) > seen else None

    message = wait_until(arrived, TIMEOUT, f"a code in {user}'s mailbox")
    match = CODE_LINE.search(message.split(b"\r\n\r\n", 1)[1])
    assert match, message
    return match.group(1).decode(), message


def mailbox_size(server, user: str, password: str) -> int:
    return len(pop3_messages(server, user, password))


def login(server, user: str, password: str):
    return api(server, "POST", "/api/v1/session", {"user": user, "password": password, "mode": "token"})


@pytest.fixture
def node(make_server):
    return make_server(listeners=LISTENERS)


def test_sign_up_with_a_code_mailed_to_a_local_address(node):
    email = f"cis505@{DEMO_DOMAIN}"
    before = mailbox_size(node, email, DEMO_PASSWORD)
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": "CIS505@mmsys.upenn.edu"})
    assert status == 202, body
    assert body == {"sent_to": email, "expires_in_secs": 600}
    code, message = wait_for_code(node, email, DEMO_PASSWORD, before)
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r\nSubject: Your tidings verification code\r\n" in head
    assert "From: tidings <postmaster@mmsys.upenn.edu>" in head
    assert head.startswith("Received: from web")
    for field in ("Date: ", "Message-ID: <", "Content-Type: text/plain; charset=utf-8", f"To: {email}"):
        assert field in head, head

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    request = {"address": "newuser", "password": "s3cret-pw", "email": email, "code": wrong}
    status, body, _ = api(node, "POST", "/api/v1/accounts", request)
    assert (status, body["error"]["code"]) == (403, "invalid_code")

    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "code": code})
    assert (status, body) == (201, {"address": f"newuser@{DEMO_DOMAIN}"})
    status, body, _ = login(node, "newuser@mmsys.upenn.edu", "s3cret-pw")
    assert status == 200 and body["account"] == f"newuser@{DEMO_DOMAIN}", body

    # The code is used up: another account cannot be made with it.
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "address": "other", "code": code})
    assert (status, body["error"]["code"]) == (403, "invalid_code")
    # Without a right code, a taken address answers like a free one: nothing to learn.
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "code": code})
    assert (status, body["error"]["code"]) == (403, "invalid_code")
    # With a right code, 409; the code is not used up by it.
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": email})[0] == 202
    code, _ = wait_for_code(node, email, DEMO_PASSWORD, before + 1)
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "code": code})
    assert (status, body["error"]["code"]) == (409, "exists")
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "address": "newuser2", "code": code})
    assert (status, body) == (201, {"address": f"newuser2@{DEMO_DOMAIN}"})

    status, body, _ = api(node, "GET", "/api/v1/accounts/exists?address=newuser")
    assert (status, body) == (200, {"address": f"newuser@{DEMO_DOMAIN}", "exists": True})
    status, body, _ = api(node, "GET", "/api/v1/accounts/exists?address=nobody%40localhost")
    assert (status, body) == (200, {"address": f"nobody@{DEMO_DOMAIN}", "exists": False})
    status, body, _ = api(node, "GET", "/api/v1/accounts/exists")
    assert status == 400


def test_bad_requests_are_refused_clearly(node):
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": "not an address"})
    assert (status, body["error"]["code"]) == (400, "bad_request")
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": "x@y.example", "extra": 1})
    assert status == 400
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": f"nobody@{DEMO_DOMAIN}"})
    assert (status, body["error"]["code"]) == (422, "undeliverable")
    request = {"address": "someone@elsewhere.example", "password": "long-enough", "email": "a@b.example", "code": "123456"}
    status, body, _ = api(node, "POST", "/api/v1/accounts", request)
    assert (status, body["error"]["code"]) == (422, "unprocessable")
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "address": "someone", "password": ""})
    assert (status, body["error"]["code"]) == (422, "weak_password")
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "address": "someone", "password": "7chars!"})
    assert (status, body["error"]["code"]) == (422, "weak_password"), "[web] password_chars_min is 8"
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "address": "someone"})
    assert (status, body["error"]["code"]) == (403, "invalid_code")
    for role in ("postmaster", "Abuse", f"hostmaster@{DEMO_DOMAIN}", "admin@localhost", "mailer-daemon"):
        status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "address": role})
        assert (status, body["error"]["code"]) == (422, "reserved"), role
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": "user@[127.0.0.1]"})
    assert (status, body["error"]["code"]) == (400, "bad_request")


def test_a_local_part_taken_in_another_local_domain_is_refused(make_server):
    node = make_server(listeners=LISTENERS, start=False,
                       settings={"mail": {"domains": [DEMO_DOMAIN, "other.test"]},
                                 "web": {"signup_domain": DEMO_DOMAIN}})
    added = node.account("add", "shared@other.test", password="other-pw-1")
    assert added.returncode == 0, added.stderr
    node.start()
    email = f"cis505@{DEMO_DOMAIN}"
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": email})[0] == 202
    code, _ = wait_for_code(node, email, DEMO_PASSWORD, 0)
    request = {"address": "shared", "password": "pw-shared", "email": email, "code": code}
    status, body, _ = api(node, "POST", "/api/v1/accounts", request)
    assert (status, body["error"]["code"]) == (409, "exists"), body
    assert login(node, "shared", "other-pw-1")[0] == 200, "the bare name still logs in"
    assert api(node, "POST", "/api/v1/accounts", {**request, "address": "unshared"})[0] == 201


def test_five_wrong_codes_void_the_code(node):
    email = f"ta@{DEMO_DOMAIN}"
    before = mailbox_size(node, email, DEMO_PASSWORD)
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": email})[0] == 202
    code, _ = wait_for_code(node, email, DEMO_PASSWORD, before)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    request = {"address": "guesser", "password": "pw-pw-pw", "email": email}
    for _ in range(5):
        assert api(node, "POST", "/api/v1/accounts", {**request, "code": wrong})[0] == 403
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "code": code})
    assert (status, body["error"]["code"]) == (403, "invalid_code")


def test_asking_again_does_not_buy_more_tries(node):
    email = f"ta@{DEMO_DOMAIN}"
    before = mailbox_size(node, email, DEMO_PASSWORD)
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": email})[0] == 202
    code, _ = wait_for_code(node, email, DEMO_PASSWORD, before)
    request = {"address": "guesser", "password": "pw-pw-pw", "email": email}
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert api(node, "POST", "/api/v1/accounts", {**request, "code": wrong})[0] == 403
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": email})[0] == 202
    code, _ = wait_for_code(node, email, DEMO_PASSWORD, before + 1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert api(node, "POST", "/api/v1/accounts", {**request, "code": wrong})[0] == 403
    status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "code": code})
    assert (status, body["error"]["code"]) == (403, "invalid_code"), "the new code had one try left"


def test_wrong_codes_are_limited_per_client(make_server):
    node = make_server(listeners=LISTENERS, settings={"web": {"code_failures_per_ip": 3}})
    request = {"address": "guesser", "password": "pw-pw-pw", "email": f"ta@{DEMO_DOMAIN}", "code": "123456"}
    for n in range(3):
        status, body, _ = api(node, "POST", "/api/v1/accounts", {**request, "email": f"x{n}@example.org"})
        assert (status, body["error"]["code"]) == (403, "invalid_code")
    status, body, response = api(node, "POST", "/api/v1/accounts", request)
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert 0 < int(response.getheader("Retry-After")) <= 600
    reset = {"address": "ta", "code": "123456", "password": "new-password"}
    assert api(node, "POST", "/api/v1/accounts/password-reset", reset)[0] == 429


def test_a_failing_smarthost_is_not_described_and_outside_codes_are_capped(make_server):
    node = make_server(listeners=LISTENERS, settings={"outbound": {"smarthost": "127.0.0.1:1"},
                                                      "web": {"outside_codes_per_window": 1}})
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": "a@elsewhere.test"})
    assert (status, body["error"]["code"]) == (502, "smarthost")
    assert body["error"]["message"] == "the mail relay did not take the message; try again later"
    assert "127.0.0.1" not in json.dumps(body)
    assert "127.0.0.1:1" in node.log(), "the details are in the log"
    status, body, response = api(node, "POST", "/api/v1/accounts/codes", {"email": "b@elsewhere.test"})
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert response.getheader("Retry-After")
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": f"ta@{DEMO_DOMAIN}"})[0] == 202, "local ones go on"


def test_codes_are_rate_limited_per_address_and_per_ip(make_server):
    node = make_server(listeners=LISTENERS, settings={"web": {"codes_per_address": 2, "codes_per_ip": 3,
                                                              "exists_checks_per_ip": 2}})
    for _ in range(2):
        assert api(node, "POST", "/api/v1/accounts/codes", {"email": f"ta@{DEMO_DOMAIN}"})[0] == 202
    status, body, response = api(node, "POST", "/api/v1/accounts/codes", {"email": f"ta@{DEMO_DOMAIN}"})
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert 0 < int(response.getheader("Retry-After")) <= 600
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": f"instructor@{DEMO_DOMAIN}"})[0] == 202
    status, _, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": f"cis505@{DEMO_DOMAIN}"})
    assert status == 429, "the IP has had three"
    for _ in range(2):
        assert api(node, "GET", "/api/v1/accounts/exists?address=ta")[0] == 200
    status, _, response = api(node, "GET", "/api/v1/accounts/exists?address=ta")
    assert status == 429 and response.getheader("Retry-After")


def test_sign_up_can_be_closed(make_server):
    node = make_server(listeners=LISTENERS, settings={"web": {"signup": False}})
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": f"ta@{DEMO_DOMAIN}"})
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_password_reset_by_a_code_sent_to_the_recovery_address(node):
    recovery = f"instructor@{DEMO_DOMAIN}"
    before = mailbox_size(node, recovery, DEMO_PASSWORD)
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": recovery})[0] == 202
    code, _ = wait_for_code(node, recovery, DEMO_PASSWORD, before)
    request = {"address": "resetme", "password": "old-password", "email": recovery, "code": code}
    assert api(node, "POST", "/api/v1/accounts", request)[0] == 201
    status, session, _ = login(node, "resetme", "old-password")
    assert status == 200
    bearer = {"Authorization": f"Bearer {session['token']}"}
    assert api(node, "GET", "/api/v1/session", headers=bearer)[0] == 200

    # The same answer for an account that exists and one that does not.
    status, body, _ = api(node, "POST", "/api/v1/accounts/password-reset/code", {"address": "nobody-here"})
    assert (status, body) == (202, {"expires_in_secs": 600})
    status, body, _ = api(node, "POST", "/api/v1/accounts/password-reset/code", {"address": "resetme"})
    assert (status, body) == (202, {"expires_in_secs": 600})
    code, message = wait_for_code(node, recovery, DEMO_PASSWORD, before + 1)
    assert b"Subject: Your tidings password reset code" in message

    reset = {"address": f"resetme@{DEMO_DOMAIN}", "code": f"{(int(code) + 1) % 1_000_000:06d}", "password": "new-password"}
    status, body, _ = api(node, "POST", "/api/v1/accounts/password-reset", reset)
    assert (status, body["error"]["code"]) == (403, "invalid_code")
    status, _, _ = api(node, "POST", "/api/v1/accounts/password-reset", {**reset, "code": code})
    assert status == 204
    assert api(node, "GET", "/api/v1/session", headers=bearer)[0] == 401, "the old session ended"
    assert login(node, "resetme", "old-password")[0] == 401
    assert login(node, "resetme", "new-password")[0] == 200
    status, _, _ = api(node, "POST", "/api/v1/accounts/password-reset", {**reset, "code": code})
    assert status == 403, "the code is used up"


def test_a_recovery_address_set_on_the_command_line_receives_reset_codes(node):
    recovery = f"cis505@{DEMO_DOMAIN}"
    result = node.account("recovery", f"ta@{DEMO_DOMAIN}", recovery)
    assert result.returncode == 0, result.stderr
    before = mailbox_size(node, recovery, DEMO_PASSWORD)
    assert api(node, "POST", "/api/v1/accounts/password-reset/code", {"address": "ta"})[0] == 202
    code, _ = wait_for_code(node, recovery, DEMO_PASSWORD, before)
    reset = {"address": "ta", "code": code, "password": "ta-new-pw"}
    assert api(node, "POST", "/api/v1/accounts/password-reset", reset)[0] == 204
    assert login(node, "ta", "ta-new-pw")[0] == 200
    assert node.account("recovery", f"ta@{DEMO_DOMAIN}", "--clear").returncode == 0
    assert api(node, "POST", "/api/v1/accounts/password-reset/code", {"address": "ta"})[0] == 202


def test_outside_addresses_need_a_smarthost(make_server, node):
    status, body, _ = api(node, "POST", "/api/v1/accounts/codes", {"email": "friend@elsewhere.test"})
    assert (status, body["error"]["code"]) == (422, "undeliverable")

    # The relay offers STARTTLS (with its self-signed certificate): the sender takes it.
    relay = make_server(name="relay", demo=False, start=False, listeners=[("smtp", "starttls"), ("pop3", "none")],
                        settings={"mail": {"domains": ["elsewhere.test"]}})
    added = relay.account("add", "friend@elsewhere.test", password="friend-pw")
    assert added.returncode == 0, added.stderr
    relay.start()
    sender = make_server(name="sender", listeners=LISTENERS,
                         settings={"outbound": {"smarthost": f"127.0.0.1:{relay.smtp_port}"}})
    status, body, _ = api(sender, "POST", "/api/v1/accounts/codes", {"email": "Friend@Elsewhere.test"})
    assert (status, body) == (202, {"sent_to": "friend@elsewhere.test", "expires_in_secs": 600})
    code, message = wait_for_code(relay, "friend@elsewhere.test", "friend-pw", 0)
    assert message.count(b"Received: ") >= 2, "our trace field and the relay's"
    assert b"ESMTPS" in message, "the relay's trace field says TLS"
    request = {"address": f"friend@{DEMO_DOMAIN}", "password": "pw-friend", "email": "friend@elsewhere.test",
               "code": code}
    status, body, _ = api(sender, "POST", "/api/v1/accounts", request)
    assert (status, body) == (201, {"address": f"friend@{DEMO_DOMAIN}"})
    assert login(sender, "friend", "pw-friend")[0] == 200

    relay.stop()
    status, body, _ = api(sender, "POST", "/api/v1/accounts/codes", {"email": "friend@elsewhere.test"})
    assert (status, body["error"]["code"]) == (502, "smarthost")
    assert str(relay.smtp_port) not in body["error"]["message"]


def mail_cli(node, *args: str, password: str, stdin=None, **kw):
    env = dict(os.environ, TIDINGS_PASSWORD=password)
    return subprocess.Popen([str(binary()), "mail", "account", "create", "--api",
                             f"http://127.0.0.1:{node.port('http')}", *args],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def test_mail_account_create_end_to_end(node):
    email = f"cis505@{DEMO_DOMAIN}"
    before = mailbox_size(node, email, DEMO_PASSWORD)
    # The code typed on standard input once it has arrived.
    cli = mail_cli(node, "--email", email, "clinew", password="cli-pw-1", stdin=subprocess.PIPE)
    code, _ = wait_for_code(node, email, DEMO_PASSWORD, before)
    out, err = cli.communicate(code + "\n", timeout=30)
    assert cli.returncode == 0, err
    assert out == f"created clinew@{DEMO_DOMAIN}\n"
    assert "verification code was sent" in err
    assert login(node, "clinew", "cli-pw-1")[0] == 200

    # A code asked for elsewhere, given with --code.
    assert api(node, "POST", "/api/v1/accounts/codes", {"email": email})[0] == 202
    code, _ = wait_for_code(node, email, DEMO_PASSWORD, before + 1)
    cli = mail_cli(node, "--email", email, "--code", code, "--json", f"cli2@{DEMO_DOMAIN}", password="cli-pw-2")
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    assert json.loads(out) == {"address": f"cli2@{DEMO_DOMAIN}", "recovery": email}
    assert login(node, f"cli2@{DEMO_DOMAIN}", "cli-pw-2")[0] == 200

    # A wrong code: a clear error and a non-zero exit.
    cli = mail_cli(node, "--email", email, "--code", "000000", "cli3", password="cli-pw-3")
    out, err = cli.communicate(timeout=30)
    assert cli.returncode != 0 and "invalid_code" in err, err
