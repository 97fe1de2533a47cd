"""BODYSTRUCTURE and ENVELOPE of every corpus message, as the IMAP server reports them, against what
Python's `email` package (the compat32 policy, what most Python tools use) parses from the same
stored octets: the part tree (part count, types and subtypes, parameters, the size of each leaf
body in octets) and the envelope (subject, from, to, message-id), of the message and of every
message/rfc822 part in it.

Where both parsers follow RFC 2045, RFC 2046 and RFC 5322 they must agree. Where Python's parser
departs from the RFCs, or the input is malformed and the two recover differently, the message is
listed in EXCEPTIONS with the reason and the exact difference expected; a listed message must
differ exactly so (no more, and not less: an exception that is not needed fails too).

The server's own parser is crates/tidings-message/src/mime.rs (RFC 2046 §5.1.1 delimiters, line by
line, the longest enclosing boundary winning).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import itertools
import re
import urllib.parse
from dataclasses import dataclass

import pytest

from conftest import Server, corpus_files, crlf
from test_imap import IMAP_LISTENERS, appenduid, corpus_name, fetches, new_account, stored_form


@dataclass(frozen=True)
class Node:
    """One entity of a part tree, in document order."""
    path: str  # "0" the message, "0.2" its second part, "0.2.m" the message inside message/rfc822 part 0.2
    media: str  # type/subtype, lower case
    params: tuple[tuple[str, str], ...]  # (name lower case, value), in order
    size: int | None  # octets of a leaf's body as stored; None for multiparts and message/rfc822


@dataclass(frozen=True)
class Envelope:
    path: str
    subject: str | None
    sender: tuple[str, ...]  # From addresses, local@domain
    to: tuple[str, ...]
    message_id: str | None


@dataclass
class Fetched:
    stored: bytes
    structure: list
    envelope: list


# --- the server's view ----------------------------------------------------------------------------

def s(token) -> str | None:
    """An IMAP string token as text (undecodable octets as surrogates, as Python's parser keeps them)."""
    if token is None:
        return None
    return token.decode("utf-8", "surrogateescape") if isinstance(token, bytes) else token


def imap_param_value(name: str, value: str) -> tuple[str, str]:
    """A parameter as Python reports it: an RFC 2231 extended value (`name*`, which the server sends
    still encoded, continuations joined) decoded; octets that are not ASCII as U+FFFD each, as
    compat32 makes them."""
    if name.endswith("*"):
        charset, _, encoded = value.split("'", 2) if value.count("'") >= 2 else ("us-ascii", "", value)
        raw = urllib.parse.unquote_to_bytes(encoded)
        try:
            value = raw.decode(charset or "us-ascii")
        except (LookupError, UnicodeDecodeError):
            value = raw.decode("us-ascii", "replace")
        return name[:-1], value
    return name, value.encode("utf-8", "surrogateescape").decode("us-ascii", "replace")


def imap_params(tokens) -> tuple[tuple[str, str], ...]:
    if not tokens:
        return ()
    pairs = [(s(tokens[i]).lower(), s(tokens[i + 1])) for i in range(0, len(tokens), 2)]
    return tuple(imap_param_value(name, value) for name, value in pairs)


def imap_nodes(body: list, path: str, nodes: list[Node], envelopes: list[Envelope]):
    if isinstance(body[0], list):  # multipart: its parts, then the subtype and extension data
        parts = list(itertools.takewhile(lambda p: isinstance(p, list), body))
        rest = body[len(parts):]
        nodes.append(Node(path, "multipart/" + s(rest[0]).lower(), imap_params(rest[1] if len(rest) > 1 else None),
                          None))
        for n, part in enumerate(parts, 1):
            imap_nodes(part, f"{path}.{n}", nodes, envelopes)
        return
    media = f"{s(body[0])}/{s(body[1])}".lower()
    if media == "message/rfc822":
        nodes.append(Node(path, media, imap_params(body[2]), None))
        envelopes.append(imap_envelope(body[7], f"{path}.m"))
        imap_nodes(body[8], f"{path}.m", nodes, envelopes)
        return
    nodes.append(Node(path, media, imap_params(body[2]), int(body[6])))


def imap_addresses(tokens) -> tuple[str, ...]:
    """local@domain of each address; a NIL host marks the start or the end of a group (RFC 9051
    §7.5.2). An address without a domain has the host MISSING_DOMAIN (as Dovecot says, since NIL
    would mean a group): that is the bare local part Python reports."""
    if not tokens:
        return ()
    return tuple(s(a[2]) if a[3] == b"MISSING_DOMAIN" else f"{s(a[2])}@{s(a[3])}" for a in tokens
                 if a[3] is not None)


def imap_envelope(tokens: list, path: str) -> Envelope:
    return Envelope(path, s(tokens[1]), imap_addresses(tokens[2]), imap_addresses(tokens[5]), s(tokens[9]))


def server_view(fetched: Fetched) -> tuple[list[Node], list[Envelope]]:
    nodes: list[Node] = []
    envelopes = [imap_envelope(fetched.envelope, "0")]
    imap_nodes(fetched.structure, "0", nodes, envelopes)
    return nodes, envelopes


# --- Python's view --------------------------------------------------------------------------------

def raw_field(msg: email.message.Message, name: str) -> str | None:
    """The first field `name`, unfolded and trimmed as RFC 5322 §2.2.3 says (compat32 keeps the
    value as stored, folding included)."""
    for field, value in msg.raw_items():
        if field.lower() == name:
            return re.sub(r"\r?\n", "", value).strip(" \t\r\n")
    return None


def python_addresses(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(address for _, address in email.utils.getaddresses([value]) if address)


def python_envelope(msg: email.message.Message, path: str) -> Envelope:
    return Envelope(path, raw_field(msg, "subject"), python_addresses(raw_field(msg, "from")),
                    python_addresses(raw_field(msg, "to")), raw_field(msg, "message-id"))


def python_params(msg: email.message.Message) -> tuple[tuple[str, str], ...]:
    params = msg.get_params() or [("", "")]
    pairs = [(name.lower(), email.utils.collapse_rfc2231_value(value) if isinstance(value, tuple) else value)
             for name, value in params[1:]]
    # RFC 2045 §5.2: text without a charset parameter is US-ASCII; the server says so explicitly.
    if msg.get_content_maintype() == "text" and not any(name == "charset" for name, _ in pairs):
        pairs.append(("charset", "us-ascii"))
    return tuple(pairs)


def python_nodes(msg: email.message.Message, path: str, nodes: list[Node], envelopes: list[Envelope]):
    media = msg.get_content_type()
    payload = msg.get_payload()
    if msg.get_content_maintype() == "multipart" and isinstance(payload, list):
        nodes.append(Node(path, media, python_params(msg), None))
        for n, part in enumerate(payload, 1):
            python_nodes(part, f"{path}.{n}", nodes, envelopes)
        return
    if media == "message/rfc822" and isinstance(payload, list):
        nodes.append(Node(path, media, python_params(msg), None))
        envelopes.append(python_envelope(payload[0], f"{path}.m"))
        python_nodes(payload[0], f"{path}.m", nodes, envelopes)
        return
    if isinstance(payload, list):
        # Another message/* type, which Python parses as a message too: no leaf body.
        nodes.append(Node(path, media, python_params(msg), None))
        return
    # The body as parsed from the bytes (compat32 keeps it as str, octets beyond ASCII as
    # surrogates); get_payload() would decode it by its charset.
    body = msg._payload if isinstance(msg._payload, str) else ""
    nodes.append(Node(path, media, python_params(msg), len(body.encode("ascii", "surrogateescape"))))


def python_view(stored: bytes) -> tuple[list[Node], list[Envelope]]:
    msg = email.message_from_bytes(stored, policy=email.policy.compat32)
    nodes: list[Node] = []
    envelopes = [python_envelope(msg, "0")]
    python_nodes(msg, "0", nodes, envelopes)
    return nodes, envelopes


# --- comparison -----------------------------------------------------------------------------------

def outline(nodes: list[Node]) -> str:
    """The part tree on one line: `multipart/mixed(text/plain message/rfc822[text/plain])`."""
    by_path = {node.path: node for node in nodes}

    def render(path: str) -> str:
        node = by_path[path]
        if node.media.startswith("multipart/"):
            children = itertools.takewhile(lambda child: child in by_path, (f"{path}.{n}" for n in itertools.count(1)))
            return f"{node.media}({' '.join(render(child) for child in children)})"
        if f"{path}.m" in by_path:
            return f"{node.media}[{render(f'{path}.m')}]"
        return node.media

    return render("0")


def differences(fetched: Fetched) -> dict[str, tuple]:
    """{what: (server's, Python's)} for everything compared that differs. When the part trees
    differ, only the message's own entity and envelope are compared beyond the outline (other
    paths need not name the same part)."""
    server_nodes, server_envelopes = server_view(fetched)
    python_nodes_, python_envelopes = python_view(fetched.stored)
    found: dict[str, tuple] = {}
    same_shape = outline(server_nodes) == outline(python_nodes_)
    if not same_shape:
        found["parts"] = (outline(server_nodes), outline(python_nodes_))
    theirs_by_path = {node.path: node for node in python_nodes_}
    for ours in server_nodes:
        theirs = theirs_by_path.get(ours.path)
        if theirs is None or theirs.media != ours.media or (not same_shape and ours.path != "0"):
            continue
        if ours.params != theirs.params:
            found[f"{ours.path} params"] = (ours.params, theirs.params)
        if ours.size != theirs.size:
            found[f"{ours.path} size"] = (ours.size, theirs.size)
    theirs_by_path = {envelope.path: envelope for envelope in python_envelopes}
    for ours in server_envelopes:
        theirs = theirs_by_path.get(ours.path)
        if theirs is None or (not same_shape and ours.path != "0"):
            continue
        for field in ("subject", "sender", "to", "message_id"):
            if getattr(ours, field) != getattr(theirs, field):
                found[f"{ours.path} {field}"] = (getattr(ours, field), getattr(theirs, field))
    return found


# --- the server ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> dict[str, Fetched]:
    """Every corpus message that can be stored (not those with NUL), APPENDed to a fresh account,
    then its BODYSTRUCTURE, ENVELOPE and stored octets fetched."""
    server = Server(tmp_path_factory.mktemp("imap-structure"), listeners=IMAP_LISTENERS).start()
    account = new_account(server)
    names = {}
    with account.raw() as raw:
        for path in corpus_files():
            wire = crlf(path.read_bytes())
            if b"\0" in wire:
                continue
            names[appenduid(raw.append("INBOX", wire))[1]] = (corpus_name(path), stored_form(wire))
        raw.ok("EXAMINE INBOX")
        responses = fetches(raw.ok("UID FETCH 1:* (UID BODYSTRUCTURE ENVELOPE BODY.PEEK[])"))
    result = {}
    for data in responses.values():
        name, stored = names[int(data["UID"])]
        assert data["BODY[]"] == stored, name
        result[name] = Fetched(data["BODY[]"], data["BODYSTRUCTURE"], data["ENVELOPE"])
    assert len(result) == len(names) >= 100
    yield result
    assert server.alive()
    assert server.stop() == 0
    assert "panicked" not in server.log()


# --- the known disagreements ------------------------------------------------------------------------

UNCLOSED_LAST_PART = (
    "The last part has no close delimiter, so its content runs to the end of the message, final CRLF "
    "included (RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter, and none follows). "
    "Python strips that CRLF as if a delimiter followed: its size is exactly 2 octets smaller.")
WHOLE_LINE_BOUNDARY = (
    "RFC 2046 §5.1.1: 'an exact match of the entire candidate line is not required; it is sufficient that "
    "the boundary appear in its entirety following the CRLF', so `--ab` is a delimiter of boundary `a`. "
    "Python demands that the whole line be the delimiter, and takes such lines as content.")
FOLDED_QUOTED_BOUNDARY = (
    "A quoted boundary folded over two lines: unfolding removes the CRLF (RFC 5322 §2.2.3), so the "
    "boundary is `foo bar`. Python keeps the CRLF in the value, finds no delimiter, and reports no parts.")
EMPTY_PART = (
    "Two delimiters in a row enclose an empty body part (RFC 2046 §5.1.1: `body-part := "
    "MIME-part-headers [CRLF *OCTET]`, both may be empty); the server reports it, an empty text/plain. "
    "Python drops it.")
WHITESPACE_BEFORE_COLON = (
    "`Fro :` is a header field with whitespace before its colon, which RFC 5322 §4.5.3 (obs-optional) "
    "allows. Python ends the header at that line, so to it the whole message is a text/plain body "
    "without Subject, To or Message-ID.")
TRAILING_SEMICOLON = (
    "A Content-Type that ends with `;`: the server reports the parameters written. Python adds an "
    "empty ('', '') parameter after the `;`.")
MULTIPART_WITHOUT_PARTS = (
    "A multipart with no body part (no delimiter in its body, or its header cut short by a delimiter of "
    "an enclosing multipart): IMAP cannot express that (RFC 9051 §9 `body-type-mpart = 1*body ...`), so "
    "the server reports one empty text/plain part, as Dovecot does. Python reports no parts.")
REUSED_NESTED_BOUNDARY = (
    "Nested multiparts whose boundaries are equal, or where the inner one begins with the outer one "
    "(malformed, RFC 2046 §5.1.1): the server lets the longest matching boundary win, the innermost on "
    "a tie, so each nested multipart gets its parts. Python matches such lines to the outer multipart.")
COLONLESS_HEADER_LINES = (
    "A message/rfc822 part whose content starts with lines that have no colon (no header at all; in "
    "rfc/008 it is base64, which RFC 2046 §5.2.1 forbids for message/rfc822, so nothing decodes it): "
    "the server reads the encapsulated header to its blank line or the end, as it reads every header, "
    "so the encapsulated body is empty. Python ends a header at the first line that is not a field "
    "and takes the rest as the body.")
MISSING_SEMICOLON = (
    "Parameters not separated by `;` (malformed, RFC 2045 §5.1): the server starts a new parameter at "
    "the next `attribute=`. Python reads on into the value before it (folding included), or, with no "
    "`;` after the type, takes the whole field value as the media type.")
NOT_AN_ENCAPSULATED_MESSAGE = (
    "message/partial holds a fragment and message/external-body the header of a body kept elsewhere "
    "(RFC 2046 §5.2.2, §5.2.3), not a message; IMAP gives an encapsulated structure to message/rfc822 "
    "alone (RFC 9051 §7.5.2), so the server reports these as leaves with their size. Python parses "
    "every message/* type as a message, with no leaf body.")
BARE_WORDS_ADDRESS = (
    "An address of two bare words without `@` or `<>` (malformed, RFC 5322 §3.4): the server keeps "
    "both words as the local part. Python keeps the first word and drops the second.")

# {corpus file: (why, {what differs: (server's, Python's)})}. Exactly these differences, no others.
EXCEPTIONS: dict[str, tuple[str, dict[str, tuple]]] = {
    "malformed/000.eml": (EMPTY_PART, {
        "parts": ("multipart/mixed(text/plain text/plain text/plain text/html)",
                  "multipart/mixed(text/plain text/plain text/html)"),
    }),
    "malformed/001.eml": (MULTIPART_WITHOUT_PARTS, {
        "parts": ("multipart/mixed(multipart/mixed(text/plain) text/plain)",
                  "multipart/mixed(multipart/mixed() text/plain)"),
    }),
    "malformed/002.eml": (MULTIPART_WITHOUT_PARTS, {
        # Python, without a part, keeps the body as the multipart's own payload.
        "parts": ("multipart/mixed(text/plain)", "multipart/mixed()"),
        "0 size": (None, 6),
    }),
    "malformed/003.eml": (REUSED_NESTED_BOUNDARY, {
        "parts": ("multipart/mixed(multipart/mixed(text/plain))",
                  "multipart/mixed(multipart/mixed() text/plain)"),
    }),
    "malformed/004.eml": (WHOLE_LINE_BOUNDARY, {
        "parts": ("multipart/mixed(multipart/mixed(text/plain))", "multipart/mixed()"),
        "0 size": (None, 93),
    }),
    "malformed/005.eml": (REUSED_NESTED_BOUNDARY, {
        "parts": ("multipart/mixed(multipart/mixed(text/plain))",
                  "multipart/mixed(multipart/mixed())"),
    }),
    "malformed/006.eml": (UNCLOSED_LAST_PART, {"0.1.1 size": (6, 4)}),
    "malformed/007.eml": (WHOLE_LINE_BOUNDARY, {
        "parts": ("multipart/mixed(multipart/mixed(text/plain) text/plain text/plain)",
                  "multipart/mixed(multipart/mixed(text/plain))"),
    }),
    "malformed/008.eml": (UNCLOSED_LAST_PART, {"0.2 size": (7, 5)}),
    "malformed/009.eml": (UNCLOSED_LAST_PART, {"0.2 size": (5, 3)}),
    "malformed/011.eml": (UNCLOSED_LAST_PART, {"0.2 size": (5, 3)}),
    "malformed/012.eml": (UNCLOSED_LAST_PART, {"0.2.m size": (5, 3)}),
    "malformed/013.eml": (REUSED_NESTED_BOUNDARY, {
        "parts": ("multipart/mixed(text/plain multipart/mixed(text/plain multipart/mixed(text/plain "
                  "multipart/mixed(text/plain text/plain))))",
                  "multipart/mixed(text/plain multipart/mixed() text/plain multipart/mixed() text/plain "
                  "multipart/mixed() text/plain text/plain)"),
    }),
    "malformed/016.eml": (UNCLOSED_LAST_PART, {"0.2 size": (240, 238)}),
    "malformed/017.eml": (MISSING_SEMICOLON, {
        "parts": ("multipart/mixed(image/png)", 'multipart/mixed\r\n\tboundary="boundary"()'),
    }),
    "malformed/019.eml": (WHITESPACE_BEFORE_COLON, {
        "parts": ("multipart/alternative(text/html text/html text/html text/plain multipart/alternative("
                  "text/html multipart/alternative(text/plain text/plain)))", "text/plain"),
        "0 subject": ("Sprint 3 multipart fixture", None),
        "0 to": (("rimap-test@example.test",), ()),
        "0 message_id": ("<multi-001@example.test>", None),
    }),
    "malformed/022.eml": (COLONLESS_HEADER_LINES, {"0.2.m size": (0, 42)}),
    "rfc/001.eml": (NOT_AN_ENCAPSULATED_MESSAGE + " And: " + MISSING_SEMICOLON, {
        "0.1 size": (81, None),
        "0.2 size": (81, None),
        "0.3 params": ((("access-type", "mail-server"), ("server", "listserv@bogus.bitnet"),
                        ("expiration", "Fri, 14 Jun 1991 19:13:14 -0400 (EDT)")),
                       (("access-type", 'mail-server\r\n            server="listserv@bogus.bitnet"'),
                        ("expiration", "Fri, 14 Jun 1991 19:13:14 -0400 (EDT)"))),
        "0.3 size": (101, None),
    }),
    "rfc/008.eml": (COLONLESS_HEADER_LINES, {"0.2.m size": (0, 1194)}),
    "rfc/009.eml": (BARE_WORDS_ADDRESS, {"0.2.m sender": (("SomeoneElse",), ("Someone",))}),
    "thirdparty/007.eml": (TRAILING_SEMICOLON, {"0 params": ((("boundary", "1"),), (("boundary", "1"), ("", "")))}),
    "thirdparty/009.eml": (NOT_AN_ENCAPSULATED_MESSAGE, {"0.2 size": (247, None)}),
    "thirdparty/010.eml": (MISSING_SEMICOLON, {
        # The second comment is 18 octets of UTF-8, which compat32 reads as 18 U+FFFD.
        "0 params": ((("boundary", "1"), ("comment", ""), ("comment", "\ufffd" * 18)),
                     (("boundary", "1"), ("comment", '"\r\n  comment="' + "\ufffd" * 18))),
    }),
    "thirdparty/012.eml": (FOLDED_QUOTED_BOUNDARY, {
        "parts": ("multipart/mixed(text/x-myown message/rfc822[multipart/alternative(text/html text/plain)])",
                  "multipart/mixed()"),
        "0 params": ((("boundary", "foo bar"),), (("boundary", "foo\r\n bar"),)),
        "0 size": (None, 464),
    }),
    "thirdparty/015.eml": (MULTIPART_WITHOUT_PARTS, {
        "parts": ("multipart/mixed(text/plain message/rfc822[multipart/alternative(text/plain)] "
                  "message/rfc822[multipart/alternative(text/plain)] message/rfc822[text/plain])",
                  "multipart/mixed(text/plain message/rfc822[multipart/alternative()] "
                  "message/rfc822[multipart/alternative()] message/rfc822[text/plain])"),
    }),
}

STORABLE = sorted(corpus_name(p) for p in corpus_files() if b"\0" not in p.read_bytes())


# --- the tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", STORABLE)
def test_bodystructure_and_envelope_agree_with_python_email_or_differ_as_documented(fetched, name):
    found = differences(fetched[name])
    if name not in EXCEPTIONS:
        assert found == {}, f"{name}: the server and Python's email disagree: {found}"
        return
    reason, expected = EXCEPTIONS[name]
    assert found == expected, f"{name} should differ only as documented ({reason}), but: {found}"
    if reason == UNCLOSED_LAST_PART:
        # The part is the message's last leaf, and the message ends with its line end.
        server_nodes, _ = server_view(fetched[name])
        [(what, (ours, theirs))] = found.items()
        assert what == f"{server_nodes[-1].path} size" and ours - theirs == 2
        assert fetched[name].stored.endswith(b"\r\n")


def test_every_documented_exception_is_needed(fetched):
    assert set(EXCEPTIONS) <= set(STORABLE), set(EXCEPTIONS) - set(STORABLE)
    needless = [name for name in EXCEPTIONS if not differences(fetched[name])]
    assert not needless, f"listed as exceptions, but the server and Python agree on {needless}"


def test_the_agreeing_messages_cover_nested_multiparts_encapsulated_messages_and_parameters(fetched):
    """The comparison is not vacuous: the messages that agree exercise what it compares."""
    agreeing = [name for name in STORABLE if name not in EXCEPTIONS]
    assert len(agreeing) >= 75, len(agreeing)
    nodes = [node for name in agreeing for node in server_view(fetched[name])[0]]
    envelopes = [envelope for name in agreeing for envelope in server_view(fetched[name])[1]]
    assert sum(node.media.startswith("multipart/") for node in nodes) >= 30
    assert sum(node.path.count(".") >= 2 for node in nodes) >= 10, "parts nested two levels deep"
    assert sum(node.media == "message/rfc822" for node in nodes) >= 5
    assert sum(bool(node.params) for node in nodes) >= 100
    assert sum(any(name.startswith("name") or name == "filename" for name, _ in node.params)
               for node in nodes) >= 5
    assert sum(envelope.path != "0" for envelope in envelopes) >= 5, "envelopes of encapsulated messages"
    assert sum(bool(envelope.sender) for envelope in envelopes) >= 70
