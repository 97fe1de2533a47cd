"""The webmail HTTP API (docs/web-api.md "Mail" and "Live updates") against the real binary: mail
delivered over SMTP, read, sanitised, downloaded, sent, answered, moved, deleted and searched
through /api/v1, and pushed over the WebSocket to a socket logged in by its session cookie."""

from __future__ import annotations

import base64
import email.policy
import http.client
import json
import smtplib
import time
import urllib.parse
from email.message import EmailMessage

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import DEMO_DOMAIN, DEMO_PASSWORD

TIMEOUT = 10
LISTENERS = [("http", "none"), ("smtp", "none"), ("imap", "none")]
TA = f"ta@{DEMO_DOMAIN}"
CIS505 = f"cis505@{DEMO_DOMAIN}"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


class Api:
    """A client of /api/v1 with a session: a cookie (and its CSRF token) or a bearer token."""

    def __init__(self, port: int, user: str = "ta", mode: str = "cookie"):
        self.port = port
        self.cookie = None
        self.csrf = None
        self.token = None
        status, headers, body = self.call("POST", "/api/v1/session",
                                          {"user": user, "password": DEMO_PASSWORD, "mode": mode}, auth=False)
        assert status == 200, body
        info = json.loads(body)
        if mode == "cookie":
            self.cookie = headers["set-cookie"].split(";", 1)[0]
            self.csrf = info["csrf_token"]
        else:
            self.token = info["token"]
        self.account = info["account"]

    def call(self, method: str, path: str, body=None, auth: bool = True, csrf: bool = True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.cookie:
            headers["Cookie"] = self.cookie
            if csrf:
                headers["X-CSRF-Token"] = self.csrf
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, raw

    def json(self, method: str, path: str, body=None, status: int = 200, **kw):
        got, _, raw = self.call(method, path, body, **kw)
        assert got == status, (got, raw)
        return json.loads(raw) if raw else None

    def get(self, path: str, **kw):
        return self.json("GET", path, **kw)


def folder_path(name: str) -> str:
    return "/api/v1/mail/folders/" + urllib.parse.quote(name, safe="")


def deliver(server, message: EmailMessage, to: str = TA):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=TIMEOUT) as smtp:
        smtp.sendmail("sender@example.org", [to], message.as_bytes(policy=email.policy.SMTP))


def html_mail(subject: str = "Quarterly report") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ann Sender <sender@example.org>"
    message["To"] = TA
    message["Subject"] = subject
    message["Message-ID"] = "<report-1@example.org>"
    message.set_content("Plain text part of the report.\n")
    message.add_alternative(
        "<html><body><p>Hello <b>TA</b></p><script>alert('x')</script>"
        "<img src=\"https://tracker.example/pixel.gif\" onerror=\"alert(1)\">"
        "<a href=\"javascript:alert(2)\">click</a><a href=\"https://example.org/\">site</a>"
        "<form action=\"https://evil.example/\"><input name=p></form></body></html>",
        subtype="html",
    )
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    return message


def plain_mail(subject: str, text: str = "hello\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "bob@example.org"
    message["To"] = TA
    message["Subject"] = subject
    message.set_content(text)
    return message


def messages(api: Api, folder: str = "INBOX") -> list[dict]:
    return api.get(folder_path(folder) + "/messages?per_page=200")["messages"]


def find(api: Api, subject: str, folder: str = "INBOX") -> dict:
    found = [m for m in messages(api, folder) if m["subject"] == subject]
    assert found, f"{subject!r} not in {folder}"
    return found[0]


@pytest.fixture
def server(make_server):
    return make_server(listeners=LISTENERS)


def test_read_a_multipart_html_message_sanitised_with_its_attachment(server):
    api = Api(server.port("http"))
    deliver(server, html_mail())
    folders = {f["name"]: f for f in api.get("/api/v1/mail/folders")["folders"]}
    assert folders["INBOX"]["role"] == "inbox" and folders["INBOX"]["total"] == 1
    assert folders["INBOX"]["unread"] == 1
    assert folders["Trash"]["role"] == "trash" and folders["Sent"]["role"] == "sent"

    summary = find(api, "Quarterly report")
    assert summary["from"] == {"name": "Ann Sender", "address": "sender@example.org"}
    assert summary["has_attachments"] and not summary["seen"]
    assert summary["preview"].startswith("Plain text part")
    assert summary["to"][0]["address"] == TA

    uid = summary["uid"]
    message = api.get(f"{folder_path('INBOX')}/messages/{uid}")
    html = message["html"]
    for gone in ["<script", "alert", "onerror", "javascript:", "tracker.example", "<form", "<input"]:
        assert gone not in html, (gone, html)
    assert "<b>TA</b>" in html and 'rel="noopener noreferrer"' in html
    assert message["has_remote_images"] is True
    assert message["text"].startswith("Plain text part")
    assert message["message_id"] == "report-1@example.org"
    assert message["attachments"] == [
        {"index": 0, "filename": "report.pdf", "content_type": "application/pdf", "size": len(PDF)}]
    assert find(api, "Quarterly report")["seen"], "reading marks it seen"
    unread = {f["name"]: f["unread"] for f in api.get("/api/v1/mail/folders")["folders"]}
    assert unread["INBOX"] == 0

    allowed = api.get(f"{folder_path('INBOX')}/messages/{uid}?images=allow")["html"]
    assert "https://tracker.example/pixel.gif" in allowed and "onerror" not in allowed

    status, headers, body = api.call("GET", f"{folder_path('INBOX')}/messages/{uid}/html")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert csp.startswith("sandbox") and "allow-scripts" not in csp and "img-src data:;" in csp, csp
    assert "frame-ancestors 'self'" in csp and headers["x-frame-options"] == "SAMEORIGIN"
    assert b"<script" not in body and b"<b>TA</b>" in body
    _, headers, _ = api.call("GET", f"{folder_path('INBOX')}/messages/{uid}/html?images=allow")
    assert "img-src data: https: http:" in headers["content-security-policy"]

    status, headers, body = api.call("GET", f"{folder_path('INBOX')}/messages/{uid}/attachments/0")
    assert status == 200 and body == PDF
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"] == "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    assert headers["x-content-type-options"] == "nosniff"
    assert api.call("GET", f"{folder_path('INBOX')}/messages/{uid}/attachments/1")[0] == 404
    assert api.call("GET", f"{folder_path('INBOX')}/messages/999")[0] == 404
    assert api.call("GET", f"{folder_path('INBOX')}/messages/abc")[0] == 400


def test_flags_paging_move_delete_and_search(server):
    api = Api(server.port("http"), mode="token")
    for n in range(5):
        deliver(server, plain_mail(f"note {n}", f"body number {n} with needle{n}\n"))
    page = api.get(folder_path("INBOX") + "/messages?page=1&per_page=2")
    assert page["total"] == 5 and page["pages"] == 3
    assert [m["subject"] for m in page["messages"]] == ["note 4", "note 3"], "newest first"
    last = api.get(folder_path("INBOX") + "/messages?page=3&per_page=2")
    assert [m["subject"] for m in last["messages"]] == ["note 0"]
    assert api.get(folder_path("INBOX") + "/messages?page=9&per_page=2")["messages"] == []
    assert api.call("GET", folder_path("INBOX") + "/messages?per_page=201")[0] == 400
    assert api.call("GET", folder_path("INBOX") + "/messages?page=0")[0] == 400

    uid = find(api, "note 1")["uid"]
    flags = api.json("PATCH", f"{folder_path('INBOX')}/messages/{uid}", {"flagged": True, "seen": True})
    assert flags == {"uid": uid, "seen": True, "flagged": True, "answered": False}
    assert api.json("PATCH", f"{folder_path('INBOX')}/messages/{uid}", {"seen": False})["seen"] is False

    found = api.get("/api/v1/mail/search?q=NEEDLE3")["messages"]
    assert [m["subject"] for m in found] == ["note 3"] and found[0]["folder"] == "INBOX"
    assert len(api.get("/api/v1/mail/search?q=bob%40example&folder=INBOX")["messages"]) == 5
    assert api.get("/api/v1/mail/search?q=nothing-like-this")["messages"] == []
    assert api.call("GET", "/api/v1/mail/search?q=")[0] == 400

    created = api.json("POST", "/api/v1/mail/folders", {"name": "Lists/rust"}, status=201)
    assert created["name"] == "Lists/rust" and created["total"] == 0
    moved = api.json("POST", f"{folder_path('INBOX')}/messages/{uid}/move", {"to": "Lists/rust"})
    assert moved["folder"] == "Lists/rust"
    assert [m["subject"] for m in messages(api, "Lists/rust")] == ["note 1"]
    assert api.get("/api/v1/mail/search?q=needle1&folder=Lists%2Frust")["messages"][0]["uid"] == moved["uid"]

    renamed = api.json("PATCH", folder_path("Lists/rust"), {"name": "Lists/Rust-lang"})
    assert renamed["name"] == "Lists/Rust-lang" and renamed["total"] == 1
    assert api.call("GET", folder_path("Lists/rust") + "/messages")[0] == 404
    assert api.json("POST", "/api/v1/mail/folders", {"name": "Lists/Rust-lang"}, status=409)
    assert api.json("PATCH", folder_path("INBOX"), {"name": "Elsewhere"}, status=403)["error"]["code"] == "forbidden"
    assert api.json("DELETE", folder_path("INBOX"), status=403)["error"]["code"] == "forbidden"
    assert api.json("DELETE", folder_path("Lists"), status=409)["error"]["code"] == "has_children"
    assert api.json("DELETE", folder_path("Lists/Rust-lang"), status=204) is None
    assert api.json("DELETE", folder_path("Lists"), status=204) is None
    assert api.json("POST", "/api/v1/mail/folders", {"name": "a//b"}, status=400)

    victim = find(api, "note 2")["uid"]
    trashed = api.json("DELETE", f"{folder_path('INBOX')}/messages/{victim}")
    assert trashed["folder"] == "Trash"
    assert [m["subject"] for m in messages(api, "Trash")] == ["note 2"]
    assert api.json("DELETE", f"{folder_path('Trash')}/messages/{trashed['uid']}", status=204) is None
    assert messages(api, "Trash") == []
    assert api.call("DELETE", f"{folder_path('Trash')}/messages/{trashed['uid']}")[0] == 404


def test_search_is_truncated_only_when_a_match_is_left_out(server):
    api = Api(server.port("http"), mode="token")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=TIMEOUT) as smtp:
        for n in range(100):
            message = plain_mail(f"hit {n}", "haystack with a pin\n")
            smtp.sendmail("sender@example.org", [TA], message.as_bytes(policy=email.policy.SMTP))
    exact = api.get("/api/v1/mail/search?q=pin")
    assert len(exact["messages"]) == 100 and exact["truncated"] is False
    assert exact["messages"][0]["subject"] == "hit 99", "newest first"
    deliver(server, plain_mail("hit 100", "one pin more\n"))
    over = api.get("/api/v1/mail/search?q=pin")
    assert len(over["messages"]) == 100 and over["truncated"] is True


def test_a_large_message_is_summarised_from_its_start(server):
    api = Api(server.port("http"), mode="token")
    message = plain_mail("big one", "first words of a long text\n" + "x" * 76 * 8000 + "\ntail-marker\n")
    deliver(server, message)
    summary = find(api, "big one")
    assert summary["size"] > 600_000 and summary["preview"].startswith("first words of a long text")
    assert api.get("/api/v1/mail/search?q=first%20words")["messages"][0]["subject"] == "big one"


def test_send_with_an_attachment_reply_and_forward(server):
    ta = Api(server.port("http"))
    sent = ta.json("POST", "/api/v1/mail/send", {
        "to": [f"Course Account <{CIS505}>"], "cc": [], "subject": "Slides für Montag",
        "text": "See the attachment.\n",
        "attachments": [{"filename": "slides.pdf", "content_type": "application/pdf",
                         "data_base64": base64.b64encode(PDF).decode()}],
    })
    assert sent["delivered"] == [CIS505] and sent["sent_copy"]["folder"] == "Sent"
    copy = find(ta, "Slides für Montag", "Sent")
    assert copy["seen"] and copy["has_attachments"]

    cis = Api(server.port("http"), user="cis505", mode="token")
    got = find(cis, "Slides für Montag")
    assert got["from"]["address"] == TA
    message = cis.get(f"{folder_path('INBOX')}/messages/{got['uid']}")
    assert message["text"].strip() == "See the attachment."
    status, _, body = cis.call("GET", f"{folder_path('INBOX')}/messages/{got['uid']}/attachments/0")
    assert status == 200 and body == PDF

    reply = cis.json("POST", "/api/v1/mail/send", {
        "to": [TA], "subject": "Re: Slides für Montag", "text": "Thanks!\n",
        "reply_to": {"folder": "INBOX", "uid": got["uid"]},
    })
    assert reply["delivered"] == [TA]
    assert find(cis, "Slides für Montag")["answered"]
    answer = find(ta, "Re: Slides für Montag")
    answer_view = ta.get(f"{folder_path('INBOX')}/messages/{answer['uid']}")
    assert answer_view["in_reply_to"] == [message["message_id"]]
    assert message["message_id"] in answer_view["references"]

    ta.json("POST", "/api/v1/mail/send", {
        "to": [CIS505], "subject": "Fwd: slides", "text": "Forwarding.\n",
        "forward_of": {"folder": "Sent", "uid": copy["uid"]},
    })
    forwarded = cis.get(f"{folder_path('INBOX')}/messages/{find(cis, 'Fwd: slides')['uid']}")
    assert [a["filename"] for a in forwarded["attachments"]] == ["slides.pdf"]

    assert ta.json("POST", "/api/v1/mail/send", {"to": [], "subject": "x"}, status=400)
    assert ta.json("POST", "/api/v1/mail/send", {"to": ["not an address"]}, status=400)
    assert ta.json("POST", "/api/v1/mail/send", {"to": [CIS505], "subject": "a\nBcc: x@y"}, status=400)
    assert ta.json("POST", "/api/v1/mail/send", {"to": [f"nobody@{DEMO_DOMAIN}"]}, status=422)
    assert ta.json("POST", "/api/v1/mail/send", {"to": [CIS505] * 101}, status=400)
    assert ta.json("POST", "/api/v1/mail/send", {"to": [CIS505], "bcc": []}, status=400)


def test_send_keeps_to_the_node_message_size_limit(make_server):
    server = make_server(listeners=LISTENERS, settings={"smtp": {"message_bytes_max": 100_000}})
    ta = Api(server.port("http"), mode="token")

    def send(data: bytes, **extra):
        return ta.call("POST", "/api/v1/mail/send", {
            "to": [CIS505], "subject": "big", "text": "see attached\n",
            "attachments": [{"filename": "a.bin", "data_base64": base64.b64encode(data).decode()}], **extra,
        })

    status, _, body = send(bytes(120_000))
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large", body
    status, _, body = send(bytes(90_000))
    assert status == 413, "base64 makes the built message larger than the limit"
    assert send(bytes(60_000))[0] == 200
    sent = find(ta, "big", "Sent")
    status, _, body = send(bytes(60_000), forward_of={"folder": "Sent", "uid": sent["uid"]})
    assert status == 413, "the forwarded attachments count too"
    many = ta.call("POST", "/api/v1/mail/send", {"to": ["not an address"] * 101, "text": "x"})
    assert many[0] == 400 and "at most 100 recipients" in json.loads(many[2])["error"]["message"]


def test_an_account_sends_to_at_most_recipients_per_hour(make_server):
    server = make_server(listeners=LISTENERS, settings={"web": {"recipients_per_hour": 3}})
    ta, cis = Api(server.port("http"), mode="token"), Api(server.port("http"), user="cis505", mode="token")
    ta.json("POST", "/api/v1/mail/send", {"to": [CIS505, f"instructor@{DEMO_DOMAIN}"], "subject": "one"})
    status, headers, body = ta.call("POST", "/api/v1/mail/send", {"to": [CIS505, CIS505], "subject": "two"})
    assert status == 429 and json.loads(body)["error"]["code"] == "rate_limited", body
    assert int(headers["retry-after"]) > 0
    ta.json("POST", "/api/v1/mail/send", {"to": [CIS505], "subject": "three"})
    cis.json("POST", "/api/v1/mail/send", {"to": [TA], "subject": "another account's budget"})


def test_sessions_and_csrf_are_required(server):
    api = Api(server.port("http"))
    status, _, body = api.call("POST", "/api/v1/mail/folders", {"name": "X"}, csrf=False)
    assert status == 403 and json.loads(body)["error"]["code"] == "csrf"
    status, _, body = api.call("GET", "/api/v1/mail/folders", auth=False)
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthenticated"
    assert api.call("DELETE", "/api/v1/mail/folders/Trash/messages/1", auth=False)[0] == 401
    assert api.call("POST", "/api/v1/mail/send", {"to": [CIS505]}, auth=False)[0] == 401


def ws_connect(server, cookie: str | None, origin: str | None):
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    return connect(f"ws://127.0.0.1:{server.port('http')}/ws", additional_headers=headers, origin=origin,
                   open_timeout=TIMEOUT, close_timeout=5)


def recv_until(ws, kind: str, **fields) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
            return frame


def test_websocket_cookie_login_needs_this_origin_and_pushes_mail(server):
    api = Api(server.port("http"))
    port = server.port("http")
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(server, api.cookie, "http://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(server, api.cookie, f"https://127.0.0.1:{port + 1}")
    assert refused.value.response.status_code == 403
    # An https page through a TLS-terminating proxy: the host is this one, the scheme differs.
    with ws_connect(server, api.cookie, f"https://127.0.0.1:{port}") as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT))["account"] == TA

    with ws_connect(server, api.cookie, f"http://127.0.0.1:{port}") as ws:
        hello = json.loads(ws.recv(timeout=TIMEOUT))
        assert hello["type"] == "hello" and hello["account"] == TA and hello["nick"] == "ta"
        deliver(server, plain_mail("live one"))
        event = recv_until(ws, "mail")
        assert event["folder"] == "INBOX" and event["subject"] == "live one"
        assert event["from"] == {"name": None, "address": "bob@example.org"}
        assert event["uid"] == find(api, "live one")["uid"]
        recv_until(ws, "mailboxes")
        api.json("POST", "/api/v1/mail/folders", {"name": "Projects"}, status=201)
        recv_until(ws, "mailboxes")

    # Without a cookie, from anywhere: an ordinary socket that logs in itself, here with a token.
    token = Api(port, mode="token").token
    with ws_connect(server, None, "http://evil.example") as ws:
        hello = json.loads(ws.recv(timeout=TIMEOUT))
        assert "account" not in hello
        ws.send(json.dumps({"type": "login", "id": 1, "token": token}))
        assert recv_until(ws, "ok", id=1)["account"] == TA
        deliver(server, plain_mail("live two"))
        assert recv_until(ws, "mail")["subject"] == "live two"
        ws.send(json.dumps({"type": "login", "id": 2, "token": "bogus"}))
        assert recv_until(ws, "error", id=2)["code"] == "bad_request", "already logged in"

    with ws_connect(server, None, None) as ws:
        json.loads(ws.recv(timeout=TIMEOUT))
        ws.send(json.dumps({"type": "login", "id": 3, "token": "bogus"}))
        assert recv_until(ws, "error", id=3)["code"] == "unauthorized"
