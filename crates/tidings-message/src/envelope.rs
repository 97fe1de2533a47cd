//! ENVELOPE (RFC 9051 §7.5.2) from a header block: field values as written (unfolded, not
//! decoded), addresses split per RFC 5322 §3.4 into name, source route, mailbox and host, and
//! groups in the RFC 9051 §9 `address` group form.

use std::borrow::Cow;

use imap_codec::imap_types::envelope::{Address, Envelope};

use crate::header::{self, Field};
use crate::imap::nstring;

/// Stands in for a missing local part, as Dovecot does (a NIL mailbox would mark a group end).
const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
/// Stands in for a missing domain, as Dovecot does (a NIL host would mark a group).
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

/// The envelope of the message whose header block is `block`.
pub(crate) fn envelope(block: &[u8]) -> Envelope<'static> {
    let mut date = None;
    let mut subject = None;
    let mut from = None;
    let mut sender = None;
    let mut reply_to = None;
    let mut to = None;
    let mut cc = None;
    let mut bcc = None;
    let mut in_reply_to = None;
    let mut message_id = None;
    for field in header::fields(block) {
        let slot = match field.name.len() {
            2 if field.is(b"to") => &mut to,
            2 if field.is(b"cc") => &mut cc,
            3 if field.is(b"bcc") => &mut bcc,
            4 if field.is(b"date") => &mut date,
            4 if field.is(b"from") => &mut from,
            6 if field.is(b"sender") => &mut sender,
            7 if field.is(b"subject") => &mut subject,
            8 if field.is(b"reply-to") => &mut reply_to,
            10 if field.is(b"message-id") => &mut message_id,
            11 if field.is(b"in-reply-to") => &mut in_reply_to,
            _ => continue,
        };
        // The first occurrence counts.
        slot.get_or_insert(field);
    }
    let text = |field: Option<Field<'_>>| nstring(field.map(|f| f.unfolded()));
    let from = addresses(from);
    // RFC 9051 §7.5.2: an absent or empty Sender or Reply-To is the From.
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: text(date),
        subject: text(subject),
        sender: or_from(addresses(sender)),
        reply_to: or_from(addresses(reply_to)),
        from,
        to: addresses(to),
        cc: addresses(cc),
        bcc: addresses(bcc),
        in_reply_to: text(in_reply_to),
        message_id: text(message_id),
    }
}

fn addresses(field: Option<Field<'_>>) -> Vec<Address<'static>> {
    field.map_or_else(Vec::new, |f| address_list(f.value))
}

/// A lexical token of an address field (RFC 5322 §3.2).
#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    /// An atom, or any run of octets that are not specials or whitespace.
    Atom(&'a [u8]),
    /// A quoted string, unquoted.
    Quoted(Cow<'a, [u8]>),
    /// A domain literal, brackets included.
    DomainLiteral(&'a [u8]),
    /// A comment, without its parentheses.
    Comment(Cow<'a, [u8]>),
    Special(u8),
}

fn tokens(value: &[u8]) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < value.len() {
        let byte = value[i];
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let (text, next) = delimited(value, i + 1, b'"', false);
                out.push(Token::Quoted(text));
                i = next;
            }
            b'(' => {
                let (text, next) = delimited(value, i + 1, b')', true);
                out.push(Token::Comment(text));
                i = next;
            }
            b'[' => {
                let end = memchr::memchr(b']', &value[i..]).map_or(value.len(), |e| i + e + 1);
                out.push(Token::DomainLiteral(&value[i..end]));
                i = end;
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' | b'\\' | b')' | b']' => {
                out.push(Token::Special(byte));
                i += 1;
            }
            _ => {
                let start = i;
                while i < value.len()
                    && !matches!(
                        value[i],
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'"'
                            | b'('
                            | b')'
                            | b'['
                            | b']'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                            | b'.'
                            | b'\\'
                    )
                {
                    i += 1;
                }
                out.push(Token::Atom(&value[start..i]));
            }
        }
    }
    out
}

/// The text of a quoted string or comment starting at `start` (just past the opening
/// character), quoted pairs and line ends removed; `nests` for comments. Returns the text and
/// the offset past the closing character (or the end, when it is missing).
fn delimited(value: &[u8], start: usize, close: u8, nests: bool) -> (Cow<'_, [u8]>, usize) {
    let mut depth = 0usize;
    let mut i = start;
    let mut owned: Option<Vec<u8>> = None;
    while i < value.len() {
        let byte = value[i];
        if byte == close && depth == 0 {
            let text = owned.map_or(Cow::Borrowed(&value[start..i]), Cow::Owned);
            return (text, i + 1);
        }
        match byte {
            b'\\' | b'\r' | b'\n' => {
                let out = owned.get_or_insert_with(|| value[start..i].to_vec());
                if byte == b'\\'
                    && let Some(&escaped) = value.get(i + 1)
                {
                    out.push(escaped);
                    i += 1;
                }
            }
            _ => {
                if nests && byte == b'(' {
                    depth += 1;
                } else if nests && byte == close {
                    depth -= 1;
                }
                if let Some(out) = owned.as_mut() {
                    out.push(byte);
                }
            }
        }
        i += 1;
    }
    (owned.map_or(Cow::Borrowed(&value[start..]), Cow::Owned), value.len())
}

/// Parses an address list (RFC 5322 §3.4 `address-list`, leniently) into ENVELOPE addresses.
pub(crate) fn address_list(value: &[u8]) -> Vec<Address<'static>> {
    let tokens = tokens(value);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Special(b',') => {
                i += 1;
                continue;
            }
            Token::Special(b';') => {
                if in_group {
                    out.push(group_end());
                    in_group = false;
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        // One mailbox or the start of a group: the words up to `<`, `:`, `,` or `;`.
        let start = i;
        while i < tokens.len() && !matches!(tokens[i], Token::Special(b'<' | b':' | b',' | b';')) {
            i += 1;
        }
        let words = &tokens[start..i];
        match tokens.get(i) {
            Some(Token::Special(b':')) => {
                if in_group {
                    out.push(group_end());
                }
                out.push(Address {
                    name: nstring(None),
                    adl: nstring(None),
                    mailbox: nstring(Some(phrase(words).unwrap_or_default().into())),
                    host: nstring(None),
                });
                in_group = true;
                i += 1;
            }
            Some(Token::Special(b'<')) => {
                let close = tokens[i..].iter().position(|t| *t == Token::Special(b'>')).map_or(tokens.len(), |p| i + p);
                let inside = &tokens[i + 1..close];
                i = (close + 1).min(tokens.len());
                // Anything after `>` up to the next separator: comments may name the mailbox.
                let trailing_start = i;
                while i < tokens.len() && !matches!(tokens[i], Token::Special(b',' | b';')) {
                    i += 1;
                }
                let name = phrase(words)
                    .or_else(|| first_comment(words))
                    .or_else(|| first_comment(&tokens[trailing_start..i]));
                out.push(angle_address(name, inside));
            }
            _ => {
                if words.iter().any(|t| !matches!(t, Token::Comment(_))) {
                    out.push(addr_spec(first_comment(words), words));
                }
            }
        }
    }
    if in_group {
        out.push(group_end());
    }
    out
}

fn group_end() -> Address<'static> {
    Address { name: nstring(None), adl: nstring(None), mailbox: nstring(None), host: nstring(None) }
}

/// The display name a run of words makes (RFC 5322 `phrase`, quotes removed, words joined by
/// single spaces, a `.` kept next to the word before it as in `John Q. Public`); `None` when
/// there are no words.
fn phrase(words: &[Token<'_>]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut any = false;
    for token in words {
        let text: &[u8] = match token {
            Token::Atom(text) | Token::DomainLiteral(text) => text,
            Token::Quoted(text) => text,
            Token::Special(b'.') => {
                out.push(b'.');
                continue;
            }
            Token::Special(byte) => std::slice::from_ref(byte),
            Token::Comment(_) => continue,
        };
        if any {
            out.push(b' ');
        }
        out.extend_from_slice(text);
        any = true;
    }
    any.then_some(out)
}

fn first_comment<'a>(tokens: &[Token<'a>]) -> Option<Vec<u8>> {
    tokens.iter().find_map(|t| match t {
        Token::Comment(text) if !header::trim(text).is_empty() => Some(header::trim(text).to_vec()),
        _ => None,
    })
}

/// `<[route:]local@domain>`: the tokens between the angle brackets.
fn angle_address(name: Option<Vec<u8>>, inside: &[Token<'_>]) -> Address<'static> {
    let (route, spec) = match inside.first() {
        Some(Token::Special(b'@')) => match inside.iter().position(|t| *t == Token::Special(b':')) {
            Some(colon) => (Some(&inside[..colon]), &inside[colon + 1..]),
            None => (None, inside),
        },
        _ => (None, inside),
    };
    let mut address = addr_spec(name, spec);
    if let Some(route) = route {
        address.adl = nstring(Some(concat(route).into()));
    }
    address
}

/// `local-part@domain`, split at the last `@`.
fn addr_spec(name: Option<Vec<u8>>, words: &[Token<'_>]) -> Address<'static> {
    let (local, domain) = match words.iter().rposition(|t| *t == Token::Special(b'@')) {
        Some(at) => (&words[..at], &words[at + 1..]),
        None => (words, &words[..0]),
    };
    let mailbox = concat(local);
    let host = concat(domain);
    Address {
        name: nstring(name.filter(|n| !n.is_empty()).map(Cow::Owned)),
        adl: nstring(None),
        mailbox: nstring(Some(if mailbox.is_empty() { MISSING_MAILBOX.into() } else { mailbox.into() })),
        host: nstring(Some(if host.is_empty() { MISSING_DOMAIN.into() } else { host.into() })),
    }
}

/// Tokens written back without whitespace or comments, quoted strings unquoted (a local part,
/// a domain, a route).
fn concat(tokens: &[Token<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for token in tokens {
        match token {
            Token::Atom(text) | Token::DomainLiteral(text) => out.extend_from_slice(text),
            Token::Quoted(text) => out.extend_from_slice(text),
            Token::Special(byte) => out.push(*byte),
            Token::Comment(_) => {}
        }
    }
    out
}
