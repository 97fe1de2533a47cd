"""The web app (`/`: webmail and chat) end to end, in headless Chromium driven by Playwright.

The browser is the system's Chromium (/usr/bin/chromium, Debian's `chromium` package); Playwright
never downloads one. Every test starts its own demo server (HTTP, SMTP and POP3 on loopback) and
checks, besides its story, that no page loaded anything from outside the server's origin, that no
script error happened and that the Content-Security-Policy refused nothing of the app's own.

Screenshots of the main screens are written to docs/screenshots/ as the tests go.
"""

from __future__ import annotations

import email
import email.policy
import json
import poplib
import re
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from websockets.sync.client import connect

from conftest import DEMO_DOMAIN, DEMO_PASSWORD, ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LISTENERS = [("http", "none"), ("smtp", "none"), ("pop3", "none")]
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
# Every wait is bounded: Playwright's auto-waiting expectations, at most this long.
WAIT_MS = 15_000
TIMEOUT = 10

expect.set_options(timeout=WAIT_MS)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class App:
    """One browser context on the app, recording what the rules forbid: requests to other origins,
    uncaught script errors and console errors of the app's own pages."""

    def __init__(self, browser: Browser, server, viewport=DESKTOP):
        self.origin = f"http://127.0.0.1:{server.port('http')}"
        self.context: BrowserContext = browser.new_context(viewport=viewport, base_url=self.origin,
                                                           accept_downloads=True)
        self.context.set_default_timeout(WAIT_MS)
        self.page: Page = self.context.new_page()
        self.foreign: list[str] = []
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.csp: list[str] = []
        self.page.on("request", self._request)
        self.page.on("websocket", lambda ws: self._url(ws.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", self._console)

    def _url(self, url: str):
        self.requests.append(url)
        same = url.startswith(self.origin + "/") or url.startswith(self.origin.replace("http:", "ws:", 1) + "/")
        if not same and not url.startswith("about:"):
            self.foreign.append(url)

    def _request(self, request):
        self._url(request.url)

    def _console(self, msg):
        text = msg.text
        where = (msg.location or {}).get("url", "")
        # Messages from the sandboxed frame of an HTML mail say that its (sanitised) content was
        # kept from running: that is the point. Only the app's own pages must be clean.
        from_mail_frame = "/html" in where
        if ("Content Security Policy" in text or "Refused to" in text) and not from_mail_frame:
            self.csp.append(text)
        if msg.type == "error" and not from_mail_frame and "Failed to load resource" not in text:
            self.errors.append(text)

    def goto(self, route: str = "/"):
        self.page.goto(self.origin + route)

    def sign_in(self, user: str, password: str = DEMO_PASSWORD):
        page = self.page
        self.goto("/#/signin")
        page.get_by_label("Address or user name").fill(user)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1, name="Inbox")).to_be_visible()
        # The page's WebSocket is up (the cookie logged it in): live updates from here on.
        expect(page.locator("html[data-link=up]")).to_have_count(1)

    def check_clean(self):
        assert self.foreign == [], f"requests outside the origin: {self.foreign}"
        assert self.csp == [], f"the CSP refused some of the app: {self.csp}"
        assert self.errors == [], f"script or console errors: {self.errors}"

    def shot(self, name: str, full_page: bool = False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def close(self):
        self.context.close()


@pytest.fixture
def apps(browser):
    """Factory of App contexts; each is checked for cleanliness and closed at teardown."""
    made: list[App] = []

    def make(server, viewport=DESKTOP) -> App:
        app = App(browser, server, viewport)
        made.append(app)
        return app

    yield make
    try:
        for app in made:
            app.check_clean()
    finally:
        for app in made:
            app.close()


def web_server(make_server, settings: dict | None = None):
    return make_server(settings=settings, listeners=LISTENERS)


def address(local: str) -> str:
    return f"{local}@{DEMO_DOMAIN}"


def pop3_messages(server, user: str, password: str = DEMO_PASSWORD) -> list[EmailMessage]:
    """Every message in `user`'s maildrop, read over POP3 (oldest first)."""
    client = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=TIMEOUT)
    try:
        client.user(user)
        client.pass_(password)
        count = len(client.list()[1])
        return [email.message_from_bytes(b"\r\n".join(client.retr(i)[1]), policy=email.policy.default)
                for i in range(1, count + 1)]
    finally:
        client.quit()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def latest_code(server, user: str, known: int) -> str:
    """The six-digit code of the newest message in `user`'s maildrop, which must hold more than
    `known` messages (the code's mail is delivered before the API answers)."""
    messages = pop3_messages(server, user)
    assert len(messages) > known, f"no new mail for {user}"
    match = re.search(r"(?<!\d)(\d{6})(?!\d)", text_of(messages[-1]))
    assert match, text_of(messages[-1])
    return match.group(1)


def api(server, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port('http')}/api/v1{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        data = e.read()
        return e.code, json.loads(data) if data else None


def send_mail(server, to: str, message: EmailMessage):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=TIMEOUT) as smtp:
        smtp.send_message(message, from_addr="sender@outside.example", to_addrs=[to])


def test_sign_up_with_an_emailed_code_then_sign_in(make_server, apps):
    server = web_server(make_server)
    app = apps(server)
    page = app.page
    recovery = address("cis505")
    before = len(pop3_messages(server, "cis505"))

    app.goto("/")
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_focused()
    page.get_by_role("link", name="Create one").click()
    expect(page.get_by_role("heading", level=1, name="Create an account")).to_be_focused()
    page.get_by_label("Your current email address").fill(recovery)
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_text(f"Code sent to {recovery}")).to_be_visible()
    expect(page.get_by_label("Code from the email")).to_be_focused()
    code = latest_code(server, "cis505", before)

    page.get_by_label("Code from the email").fill(code)
    page.get_by_label("New address").fill("newbie")
    page.get_by_label("Password", exact=True).fill("a long new password")
    page.get_by_label("Password again").fill("a long new password")
    app.shot("sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1, name="Inbox")).to_be_visible()
    expect(page.locator("#account-name")).to_have_text(address("newbie"))

    # The code was single-use: the same code again is refused, with a message on the page.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    status, _ = api(server, "POST", "/accounts", {"address": "another", "password": "a long new password",
                                                   "email": recovery, "code": code})
    assert status == 403

    app.sign_in("newbie", "a long new password")
    expect(page.locator("#account-name")).to_have_text(address("newbie"))
    # A wrong password says so, on the page.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Address or user name").fill("newbie")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong address or password.")
    # The password field has focus again, its text selected: the keyboard alone finishes.
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    page.keyboard.type("a long new password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Inbox")).to_be_focused()


def test_mail_with_an_attachment_arrives_live_and_is_answered(make_server, apps):
    server = web_server(make_server)
    alice, bob = apps(server), apps(server)
    alice.sign_in("instructor")
    bob.sign_in("ta")
    a, b = alice.page, bob.page
    b.evaluate("window.__notReloaded = true")

    a.get_by_role("link", name="Compose").click()
    expect(a.get_by_role("heading", level=1, name="New message")).to_be_focused()
    a.get_by_label("To", exact=True).fill(address("ta"))
    a.get_by_label("Subject", exact=True).fill("Project notes")
    a.get_by_label("Message", exact=True).fill("Hello TA,\nthe notes are attached.\n")
    a.get_by_label("Attach files").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"line one\nline two\n"}])
    expect(a.get_by_role("list", name="Attached files")).to_contain_text("notes.txt")
    alice.shot("composer", full_page=True)
    a.get_by_role("button", name="Send").click()
    expect(a.get_by_role("heading", level=1, name="Inbox")).to_be_visible()

    # Bob's open inbox shows it without a reload, and the unread count goes up.
    item = b.locator(".message-list a", has_text="Project notes")
    expect(item).to_be_visible()
    expect(b.locator(".folder-list a", has_text="Inbox")).to_contain_text("unread")
    assert b.evaluate("window.__notReloaded") is True
    bob.shot("inbox")
    item.click()
    expect(b.get_by_role("heading", level=2, name="Project notes")).to_be_focused()
    expect(b.locator(".reader .from")).to_contain_text(address("instructor"))
    expect(b.locator(".text-body")).to_contain_text("the notes are attached.")
    link = b.get_by_role("link", name="notes.txt")
    expect(link).to_be_visible()
    bob.shot("reader")
    with b.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes() == b"line one\nline two\n"

    b.get_by_role("button", name="Reply", exact=True).click()
    expect(b.get_by_label("To", exact=True)).to_have_value(address("instructor"))
    expect(b.get_by_label("Subject", exact=True)).to_have_value("Re: Project notes")
    b.get_by_label("Message", exact=True).press("Control+Home")
    b.get_by_label("Message", exact=True).type("Thanks, got them. ")
    b.get_by_role("button", name="Send").click()
    expect(b.get_by_role("heading", level=1, name="Inbox")).to_be_visible()

    reply = a.locator(".message-list a", has_text="Re: Project notes")
    expect(reply).to_be_visible()
    reply.click()
    expect(a.locator(".text-body")).to_contain_text("Thanks, got them.")
    expect(a.locator(".text-body")).to_contain_text("> the notes are attached.")

    # The sender's copy is in Sent.
    a.locator(".folder-list a", has_text="Sent").click()
    expect(a.locator(".message-list a", has_text="Project notes").first).to_be_visible()

    # Folders: create, rename, delete; move the reply there and back.
    a.get_by_text("New folder", exact=True).click()
    a.get_by_label("New folder name").fill("Projects")
    a.get_by_role("button", name="Create folder").click()
    expect(a.locator(".folder-list a", has_text="Projects")).to_be_visible()
    a.locator(".folder-list a", has_text="Inbox").click()
    a.locator(".message-list a", has_text="Re: Project notes").click()
    a.get_by_label("Move to").select_option("Projects")
    a.get_by_role("button", name="Move", exact=True).click()
    expect(a.locator(".message-list a", has_text="Re: Project notes")).to_have_count(0)
    a.locator(".folder-list a", has_text="Projects").click()
    expect(a.locator(".message-list a", has_text="Re: Project notes")).to_be_visible()
    a.get_by_role("button", name="Rename folder").click()
    a.get_by_label("New name").fill("Archive 2025")
    a.get_by_role("button", name="Save name").click()
    expect(a.get_by_role("heading", level=1, name="Archive 2025")).to_be_visible()
    a.once("dialog", lambda d: d.accept())
    a.get_by_role("button", name="Delete folder").click()
    expect(a.get_by_role("heading", level=1, name="Inbox")).to_be_visible()
    expect(a.locator(".folder-list a", has_text="Archive 2025")).to_have_count(0)

    # Search finds the first message by a word of its text.
    b.get_by_label("Search mail").fill("attached")
    b.get_by_role("button", name="Search").click()
    expect(b.get_by_role("heading", level=1, name="Search: attached")).to_be_visible()
    expect(b.locator(".message-list a", has_text="Project notes")).to_be_visible()

    # On a phone the list is one column; the reader replaces it.
    phone = apps(server, PHONE)
    phone.sign_in("ta")
    p = phone.page
    expect(p.locator(".message-list a", has_text="Project notes")).to_be_visible()
    phone.shot("phone-inbox")
    p.locator(".message-list a", has_text="Project notes").click()
    expect(p.get_by_role("heading", level=2, name="Project notes")).to_be_visible()
    expect(p.locator(".list")).to_be_hidden()
    p.get_by_role("link", name="Back to the list").click()
    expect(p.locator(".list")).to_be_visible()


def seed_room(server, room: str, count: int):
    """`count` messages to `room` from the instructor, over the WebSocket API with a password."""
    with connect(f"ws://127.0.0.1:{server.port('http')}/ws", open_timeout=TIMEOUT) as ws:
        def request(kind, **fields):
            request.n += 1
            ws.send(json.dumps({"type": kind, "id": request.n, **fields}))
            while True:
                frame = json.loads(ws.recv(timeout=TIMEOUT))
                if frame.get("id") == request.n:
                    assert frame["type"] == "ok", frame
                    return frame
        request.n = 0
        assert json.loads(ws.recv(timeout=TIMEOUT))["type"] == "hello"
        request("login", user=address("instructor"), password=DEMO_PASSWORD)
        request("join", room=room)
        for i in range(1, count + 1):
            request("send", room=room, text=f"seed {i:03}")


def test_chat_room_live_and_its_history_after_a_reload(make_server, apps):
    # The seeding sends quicker than the flood limit lets a person.
    server = web_server(make_server, {"web": {"flood_requests_per_sec": 1000, "flood_burst": 1000}})
    seed_room(server, "#project", 70)
    alice, bob = apps(server), apps(server)
    alice.sign_in("instructor")
    bob.sign_in("ta")
    a, b = alice.page, bob.page

    # The instructor's account is in #project already (the seeding joined it): rejoined at sign-in.
    a.get_by_role("link", name="Chat").click()
    expect(a.locator(".room-list a", has_text="#project")).to_be_visible()
    # A new room: created by the instructor, joined by the TA.
    a.get_by_label("Room name").fill("#cis505-web")
    a.get_by_role("button", name="Create", exact=True).click()
    expect(a.get_by_role("heading", level=1, name="#cis505-web")).to_be_focused()
    b.get_by_role("link", name="Chat").click()
    b.get_by_label("Room name").fill("cis505-web")
    b.get_by_role("button", name="Join", exact=True).click()
    expect(b.get_by_role("heading", level=1, name="#cis505-web")).to_be_visible()
    expect(a.locator(".member-list")).to_contain_text("ta")

    lines = [("a", "hello from the instructor"), ("b", "hi! the TA here"), ("a", "office hours at 3?"),
             ("b", "works for me"), ("a", "/me waves")]
    for who, text in lines:
        page = a if who == "a" else b
        other = b if who == "a" else a
        page.get_by_label("Message #cis505-web").fill(text)
        page.get_by_label("Message #cis505-web").press("Enter")
        shown = text.removeprefix("/me ")
        expect(other.locator(".log .msg").last.locator(".text")).to_have_text(shown)
        expect(page.get_by_label("Message #cis505-web")).to_have_value("")
    expected = [t.removeprefix("/me ") for _, t in lines]
    expect(a.locator(".log .text")).to_have_text(expected)
    alice.shot("chat-room")

    for page in (a, b):
        page.reload()
        expect(page.get_by_role("heading", level=1, name="#cis505-web")).to_be_visible()
        expect(page.locator(".log .text")).to_have_text(expected)
    expect(a.locator(".log .kind-action .who")).to_have_text("* instructor")

    # Scroll-back: the newest page first, then older pages until the first message, in order.
    a.locator(".room-list a", has_text="#project").click()
    expect(a.locator(".log .text").last).to_have_text("seed 070")
    older = a.get_by_role("button", name="Load older messages")
    for _ in range(5):
        if not older.is_visible():
            break
        older.click()
        expect(a.locator("button.older[disabled]")).to_have_count(0)
    expect(a.locator(".log .text")).to_have_text([f"seed {i:03}" for i in range(1, 71)])

    # Leaving removes the room from the list.
    b.locator(".room-list a", has_text="#cis505-web").click()
    b.get_by_role("button", name="Leave room").click()
    expect(b.locator(".room-list a", has_text="#cis505-web")).to_have_count(0)
    expect(a.locator(".member-list")).not_to_contain_text("ta")

    phone = apps(server, PHONE)
    phone.sign_in("instructor")
    phone.goto("/#/chat/%23cis505-web")
    expect(phone.page.locator(".log .text")).to_have_text(expected)
    phone.shot("phone-chat")


def test_password_reset_with_a_code_from_the_recovery_mailbox(make_server, apps):
    server = web_server(make_server)
    recovery = address("cis505")
    before = len(pop3_messages(server, "cis505"))
    assert api(server, "POST", "/accounts/codes", {"email": recovery})[0] in (200, 202, 204)
    code = latest_code(server, "cis505", before)
    status, _ = api(server, "POST", "/accounts", {"address": "forgetful", "password": "the first password",
                                                   "email": recovery, "code": code})
    assert status in (200, 201)

    app = apps(server)
    page = app.page
    app.goto("/#/signin")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1, name="Reset your password")).to_be_focused()
    before = len(pop3_messages(server, "cis505"))
    page.get_by_label("Your address").fill(address("forgetful"))
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_label("Code from the email")).to_be_focused()
    code = latest_code(server, "cis505", before)
    page.get_by_label("Code from the email").fill(code)
    page.get_by_label("New password", exact=True).fill("the second password")
    page.get_by_label("New password again").fill("the second password")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Password changed")).to_be_visible()
    expect(page.get_by_label("Address or user name")).to_have_value(address("forgetful"))

    assert api(server, "POST", "/session", {"user": "forgetful", "password": "the first password",
                                            "mode": "token"})[0] == 401
    app.sign_in(address("forgetful"), "the second password")
    expect(page.locator("#account-name")).to_have_text(address("forgetful"))


HOSTILE_HTML = """<html><head><script>window.top.__pwned = 1; document.title = 'pwned';
fetch('/pwned-by-script');</script></head>
<body onload="window.top.__pwned = 2; fetch('/pwned-by-onload')">
<h1>Quarterly report</h1>
<p>Numbers inside.</p>
<img src="x" onerror="window.top.__pwned = 3; fetch('/pwned-by-onerror')">
<a id="js" href="javascript:window.top.__pwned = 4; fetch('/pwned-by-link')">open the report</a>
<svg onload="window.top.__pwned = 5"><circle r="4"/></svg>
<iframe src="javascript:parent.__pwned = 6"></iframe>
<form action="/pwned-by-form"><input name="q"><button>go</button></form>
<img src="http://127.0.0.2:9/tracker.png" alt="tracker">
</body></html>"""

HOSTILE_CHAT = ['<img src=x onerror="window.__pwned=7;fetch(\'/pwned-by-chat\')">',
                "<script>window.__pwned=8</script>",
                '<a href="javascript:window.__pwned=9">link</a> & "quotes"']


def test_hostile_html_mail_and_chat_markup_stay_inert(make_server, apps):
    server = web_server(make_server)
    message = EmailMessage()
    message["From"] = "Mallory <mallory@outside.example>"
    message["To"] = address("instructor")
    message["Subject"] = "Quarterly report"
    message.set_content("Numbers inside (text part).")
    message.add_alternative(HOSTILE_HTML, subtype="html")
    send_mail(server, address("instructor"), message)

    app = apps(server)
    app.sign_in("instructor")
    page = app.page
    title = page.title()
    page.locator(".message-list a", has_text="Quarterly report").click()
    frame_el = page.locator("iframe.html-body")
    expect(frame_el).to_be_visible()
    assert frame_el.get_attribute("sandbox") is not None
    assert "allow-scripts" not in frame_el.get_attribute("sandbox")
    assert "allow-same-origin" not in frame_el.get_attribute("sandbox")
    frame = page.frame_locator("iframe.html-body")
    expect(frame.get_by_role("heading", name="Quarterly report")).to_be_visible()
    frame.get_by_text("open the report").click()
    # The remote image waits for the reader's consent; then only the frame asks for it.
    assert not any("127.0.0.2" in u for u in app.requests)
    page.get_by_role("button", name="Show remote images").click()
    expect(frame_el).to_have_attribute("src", re.compile(r"/html\?images=allow$"))
    expect(frame.get_by_role("heading", name="Quarterly report")).to_be_visible()
    app.foreign = [u for u in app.foreign if not u.startswith("http://127.0.0.2:9/")]

    # The chat half: markup is shown as text.
    page.get_by_role("link", name="Chat").click()
    page.get_by_label("Room name").fill("#xss")
    page.get_by_role("button", name="Join", exact=True).click()
    box = page.get_by_label("Message #xss")
    for text in HOSTILE_CHAT:
        box.fill(text)
        box.press("Enter")
        expect(page.locator(".log .text").last).to_have_text(text)
    page.reload()
    expect(page.locator(".log .text")).to_have_text(HOSTILE_CHAT)
    assert page.locator(".log img, .log script, .log a").count() == 0

    # Nothing ran: no flag, same title, none of the payloads' requests.
    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned" and title != "pwned"
    pwned = [u for u in app.requests if "pwned" in u]
    assert pwned == [], pwned
    assert not any(u.endswith("/x") for u in app.requests), app.requests
