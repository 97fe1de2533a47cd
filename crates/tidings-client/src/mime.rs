//! Building outgoing messages (RFC 5322, MIME RFC 2045–2047, RFC 2231): a `text/plain; charset=utf-8`
//! body, `multipart/mixed` with base64 attachments when there are any, RFC 2047 encoded words for
//! non-ASCII subjects and display names, and CRLF line ends throughout.
//!
//! ```
//! use tidings_client::mime::{Draft, build};
//! let draft = Draft {
//!     from: "Ann <ann@example.org>".parse().unwrap(),
//!     to: vec!["bob@example.org".parse().unwrap()],
//!     subject: "Grüße".into(),
//!     body: "Hallo Bob!\n".into(),
//!     ..Draft::default()
//! };
//! let octets = build(&draft, 1_795_254_120, "<1@example.org>");
//! let text = String::from_utf8(octets).unwrap();
//! assert!(text.contains("Subject: =?utf-8?B?R3LDvMOfZQ==?=\r\n"));
//! ```

use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tidings_core::Address;

/// Longest line of encoded body text, in octets without CRLF (RFC 2045 §6.7, §6.8: 76).
const ENCODED_LINE_MAX: usize = 76;
/// Longest line a 7bit body may have, in octets without CRLF (RFC 5322 §2.1.1).
const TEXT_LINE_MAX: usize = 998;
/// Octets of UTF-8 text per RFC 2047 encoded word: its base64 (56 characters) and the 12 around
/// it keep a folded line under 78 characters.
const ENCODED_WORD_TEXT_MAX: usize = 42;
/// Longest display name a [`Mailbox`] takes, in octets of UTF-8: its header form (quoted or
/// encoded words, folded) then stays well within a line.
pub const DISPLAY_NAME_BYTES_MAX: usize = 256;
/// Longest `type/subtype` an attachment's type may be, octets (RFC 6838 §4.2: 127 characters per
/// name); a longer or malformed one is sent as `application/octet-stream`.
pub const CONTENT_TYPE_BYTES_MAX: usize = 127;
/// Longest header line, octets without CRLF (RFC 5322 §2.1.1).
const HEADER_LINE_MAX: usize = 998;

/// A mailbox in an address header: an optional display name and an address (RFC 5322 §3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any, unencoded.
    pub name: Option<String>,
    /// The address.
    pub address: Address,
}

impl FromStr for Mailbox {
    type Err = anyhow::Error;

    /// Parses `addr@example.org` or `Display Name <addr@example.org>` (the name may be quoted).
    ///
    /// # Errors
    /// When the address is not a valid RFC 5321 mailbox, the form is neither of the two, or the
    /// display name has control characters or is over [`DISPLAY_NAME_BYTES_MAX`] octets.
    fn from_str(text: &str) -> anyhow::Result<Mailbox> {
        let text = text.trim();
        let (name, address) = match text.rfind('<') {
            Some(open) => {
                let Some(address) = text[open + 1..].strip_suffix('>') else {
                    bail!("{text:?}: expected \"Name <address>\"");
                };
                let name = text[..open].trim();
                let name = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(name);
                (if name.is_empty() { None } else { Some(name.replace("\\\"", "\"")) }, address)
            }
            None => (None, text),
        };
        if name.as_deref().is_some_and(|n| n.chars().any(char::is_control)) {
            bail!("{text:?}: control characters in the display name");
        }
        if name.as_deref().is_some_and(|n| n.len() > DISPLAY_NAME_BYTES_MAX) {
            bail!("{text:?}: a display name is at most {DISPLAY_NAME_BYTES_MAX} octets");
        }
        let address = Address::parse(address, true).with_context(|| format!("{text:?} is not a valid address"))?;
        Ok(Mailbox { name, address })
    }
}

impl Mailbox {
    /// The header form: the address alone, or the name (quoted, or RFC 2047 encoded words folded
    /// onto lines of their own) and `<address>`.
    pub fn to_header(&self) -> String {
        match &self.name {
            None => self.address.to_string(),
            Some(name) if !name.is_ascii() => format!("{} <{}>", encode_words(name).join("\r\n "), self.address),
            Some(name) if name.bytes().all(|b| b.is_ascii_alphanumeric() || b" !#$%&'*+-/=?^_`{|}~".contains(&b)) => {
                format!("{name} <{}>", self.address)
            }
            Some(name) => format!("\"{}\" <{}>", name.replace('\\', "\\\\").replace('"', "\\\""), self.address),
        }
    }
}

/// A file attached to a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachment {
    /// The file name offered to the recipient (no directory).
    pub filename: String,
    /// The MIME type, e.g. `application/pdf`: `type/subtype` only, at most
    /// [`CONTENT_TYPE_BYTES_MAX`] octets (anything else is sent as `application/octet-stream`).
    /// A `text/*` attachment whose data is UTF-8 is labelled `; charset=utf-8`.
    pub content_type: String,
    /// The content.
    pub data: Vec<u8>,
}

/// What the user wants to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The author (`From:`), also the envelope sender.
    pub from: Mailbox,
    /// `To:` recipients.
    pub to: Vec<Mailbox>,
    /// `Cc:` recipients.
    pub cc: Vec<Mailbox>,
    /// The subject, unencoded; may be empty.
    pub subject: String,
    /// The text body, in any line-end convention (sent with CRLF).
    pub body: String,
    /// Files to attach.
    pub attachments: Vec<Attachment>,
    /// `In-Reply-To:` (RFC 5322 §3.6.4): the message-id answered, with angle brackets.
    pub in_reply_to: Option<String>,
    /// `References:` (RFC 5322 §3.6.4): the thread's message-ids, oldest first, with angle brackets.
    pub references: Vec<String>,
}

impl Default for Draft {
    fn default() -> Draft {
        Draft {
            from: Mailbox { name: None, address: Address::from_parts("postmaster", "localhost") },
            to: Vec::new(),
            cc: Vec::new(),
            subject: String::new(),
            body: String::new(),
            attachments: Vec::new(),
            in_reply_to: None,
            references: Vec::new(),
        }
    }
}

/// A new Message-ID for a message from `domain` (RFC 5322 §3.6.4): the time in milliseconds and
/// 64 random bits.
pub fn message_id(domain: &str, now_ms: i64) -> String {
    format!("<{now_ms}.{:016x}@{domain}>", random_u64())
}

/// The message octets for `draft`, dated `date_secs` (Unix time) with `message_id` (including the
/// angle brackets). Lines end in CRLF; no line exceeds 998 octets.
pub fn build(draft: &Draft, date_secs: i64, message_id: &str) -> Vec<u8> {
    let mut head = String::new();
    header(&mut head, "Date", &tidings_core::date::rfc5322(date_secs));
    header(&mut head, "From", &draft.from.to_header());
    address_header(&mut head, "To", &draft.to);
    address_header(&mut head, "Cc", &draft.cc);
    subject_header(&mut head, &draft.subject);
    header(&mut head, "Message-ID", message_id);
    if let Some(id) = draft.in_reply_to.as_deref().filter(|id| valid_msg_id(id)) {
        header(&mut head, "In-Reply-To", id);
    }
    let references: Vec<&str> = draft.references.iter().map(String::as_str).filter(|id| valid_msg_id(id)).collect();
    if !references.is_empty() {
        header(&mut head, "References", &references.join("\r\n "));
    }
    header(&mut head, "MIME-Version", "1.0");

    let (encoding, text) = encode_text(&draft.body);
    let text_type = "text/plain; charset=utf-8";
    let mut out = Vec::new();
    if draft.attachments.is_empty() {
        header(&mut head, "Content-Type", text_type);
        header(&mut head, "Content-Transfer-Encoding", encoding);
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(text.as_bytes());
        return out;
    }
    // "=_" never occurs in base64 or quoted-printable output (RFC 2045 §6.7 rule 1 encodes "="),
    // so only a 7bit text part could contain the boundary, and it is checked.
    let boundary = loop {
        let candidate = format!("=_tidings_{:016x}", random_u64());
        if !text.contains(&candidate) {
            break candidate;
        }
    };
    header(&mut head, "Content-Type", &format!("multipart/mixed; boundary=\"{boundary}\""));
    head.push_str("\r\nThis is a message in MIME format with attachments.\r\n");
    let _ = write!(
        head,
        "\r\n--{boundary}\r\nContent-Type: {text_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{text}"
    );
    out.extend_from_slice(head.as_bytes());
    for attachment in &draft.attachments {
        let mut part = format!("\r\n--{boundary}\r\n");
        let content_type = if valid_content_type(&attachment.content_type) {
            &attachment.content_type
        } else {
            "application/octet-stream"
        };
        part.push_str(&format!("Content-Type: {content_type}"));
        // The only parameter added to the type is this fixed one: nothing of the caller's
        // reaches the header beyond a validated type/subtype.
        if content_type.get(..5).is_some_and(|t| t.eq_ignore_ascii_case("text/"))
            && std::str::from_utf8(&attachment.data).is_ok()
        {
            part.push_str("; charset=utf-8");
        }
        part.push_str(&parameter("name", &attachment.filename, true));
        part.push_str("\r\nContent-Disposition: attachment");
        part.push_str(&parameter("filename", &attachment.filename, false));
        part.push_str("\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        out.extend_from_slice(part.as_bytes());
        for chunk in BASE64.encode(&attachment.data).as_bytes().chunks(ENCODED_LINE_MAX) {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// The MIME type for a file name, from its extension; `application/octet-stream` when unknown.
pub fn content_type_for(filename: &str) -> &'static str {
    let extension = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "txt" | "text" | "log" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "ics" => "text/calendar",
        "vcf" => "text/vcard",
        "css" => "text/css",
        "xml" => "application/xml",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

/// Whether `id` is one `<left@right>` message-id (RFC 5322 §3.6.4) of printable ASCII without
/// spaces, short enough for a header line: anything else is left out of the header.
fn valid_msg_id(id: &str) -> bool {
    id.len() <= 900
        && id.strip_prefix('<').and_then(|i| i.strip_suffix('>')).is_some_and(|inner| {
            inner.contains('@') && inner.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        })
}

/// Whether `value` looks like `type/subtype` with token characters only (RFC 2045 §5.1), at most
/// [`CONTENT_TYPE_BYTES_MAX`] octets.
fn valid_content_type(value: &str) -> bool {
    if value.len() > CONTENT_TYPE_BYTES_MAX {
        return false;
    }
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
    value.split_once('/').is_some_and(|(t, s)| token(t) && token(s))
}

/// The text as RFC 2047 `B` encoded words of at most 42 octets of UTF-8 each (so that a folded
/// line stays under 78 characters), never splitting a character.
pub fn encode_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + ENCODED_WORD_TEXT_MAX).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!("=?utf-8?B?{}?=", BASE64.encode(&text.as_bytes()[start..end])));
        start = end;
    }
    words
}

fn header(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "{name}: {value}\r\n");
}

fn address_header(out: &mut String, name: &str, mailboxes: &[Mailbox]) {
    if mailboxes.is_empty() {
        return;
    }
    let list: Vec<String> = mailboxes.iter().map(Mailbox::to_header).collect();
    header(out, name, &list.join(",\r\n "));
}

fn subject_header(out: &mut String, subject: &str) {
    // A subject is one line: line ends the user typed become spaces.
    let subject: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if subject.is_empty() {
        return;
    }
    // ASCII text that could be read as an encoded word is encoded too (RFC 2047 §5 (1)), and so
    // is text with a word too long for a header line (folding happens only at spaces; encoded
    // words can be cut anywhere).
    let prefix = "Subject: ".len();
    let fits = subject.split(' ').all(|word| prefix + word.len() <= HEADER_LINE_MAX);
    if subject.is_ascii() && !subject.contains("=?") && fits {
        header(out, "Subject", &fold_ascii(&subject, "Subject: ".len()));
    } else {
        header(out, "Subject", &encode_words(&subject).join("\r\n "));
    }
}

/// Folds ASCII text at spaces so that lines stay within 78 characters where a space allows
/// (RFC 5322 §2.2.3); a word longer than that stays whole (the caller sees that every word fits
/// within 998 octets with the field name).
fn fold_ascii(text: &str, first_line_used: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut line_len = first_line_used;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            if line_len + 1 + word.len() > 78 && line_len > 1 {
                out.push_str("\r\n");
                line_len = 0;
            }
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// A `; name="value"` parameter: quoted when ASCII and short, RFC 2047 words for `name` (what most
/// readers expect there), RFC 2231 `name*` with continuations otherwise.
fn parameter(name: &str, value: &str, encoded_words: bool) -> String {
    let value: String = value.chars().filter(|c| !c.is_control()).collect();
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain && value.len() <= 60 {
        return format!(";\r\n {name}=\"{value}\"");
    }
    if encoded_words && !plain {
        return format!(";\r\n {name}=\"{}\"", encode_words(&value).join(" "));
    }
    let mut encoded = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    if encoded.len() <= 60 {
        return format!(";\r\n {name}*=utf-8''{encoded}");
    }
    let mut out = String::new();
    let mut rest = encoded.as_str();
    let mut index = 0;
    while !rest.is_empty() {
        let mut cut = rest.len().min(60);
        // Never split a %XX triplet.
        if let Some(percent) = rest[..cut].rfind('%')
            && percent + 3 > cut
        {
            cut = percent;
        }
        let charset = if index == 0 { "utf-8''" } else { "" };
        let _ = write!(out, ";\r\n {name}*{index}*={charset}{}", &rest[..cut]);
        rest = &rest[cut..];
        index += 1;
    }
    out
}

/// The body with CRLF line ends, and its transfer encoding: `7bit` for ASCII with short lines,
/// `quoted-printable` otherwise.
fn encode_text(body: &str) -> (&'static str, String) {
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<&str> = normalized.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let seven_bit = normalized.is_ascii()
        && !normalized.bytes().any(|b| b == 0)
        && lines.iter().all(|l| l.len() <= TEXT_LINE_MAX && !l.starts_with("From "));
    let mut out = String::with_capacity(normalized.len() + lines.len() + 2);
    for line in lines {
        if seven_bit {
            out.push_str(line);
        } else {
            quoted_printable_line(&mut out, line.as_bytes());
        }
        out.push_str("\r\n");
    }
    (if seven_bit { "7bit" } else { "quoted-printable" }, out)
}

/// One line of text in quoted-printable (RFC 2045 §6.7), with soft line breaks so no encoded line
/// exceeds [`ENCODED_LINE_MAX`]. A leading `From ` is encoded so that mbox files need not quote it.
fn quoted_printable_line(out: &mut String, line: &[u8]) {
    let mut width = 0;
    for (i, &b) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !last,
            b'F' if i == 0 && line.starts_with(b"From ") => false,
            33..=126 => true,
            _ => false,
        };
        let len = if literal { 1 } else { 3 };
        // Keep room for the "=" of a soft break unless this is the line's last character.
        let room = if last { ENCODED_LINE_MAX } else { ENCODED_LINE_MAX - 1 };
        if width + len > room {
            out.push_str("=\r\n");
            width = 0;
        }
        if literal {
            out.push(b as char);
        } else {
            let _ = write!(out, "={b:02X}");
        }
        width += len;
    }
}

/// 64 bits that differ between calls and processes: std's randomly keyed SipHash over the time,
/// the process id and a counter (no cryptographic claim: Message-IDs and boundaries need only be
/// unique).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(tidings_core::date::now_millis());
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    fn draft() -> Draft {
        Draft {
            from: "Ann Example <ann@example.org>".parse().unwrap(),
            to: vec!["bob@example.org".parse().unwrap(), "\"Carol, C.\" <carol@example.org>".parse().unwrap()],
            cc: vec!["dave@example.org".parse().unwrap()],
            subject: "Plain subject".into(),
            body: "line one\nline two\n".into(),
            attachments: Vec::new(),
            ..Draft::default()
        }
    }

    #[test]
    fn replies_carry_in_reply_to_and_references_and_bad_ids_are_left_out() {
        let mut d = draft();
        d.in_reply_to = Some("<b@example.org>".into());
        d.references = vec!["<a@example.org>".into(), "<b@example.org>".into(), "<x\r\nBcc: evil@example.org>".into()];
        let text = String::from_utf8(build(&d, 0, "<c@example.org>")).unwrap();
        assert!(text.contains("In-Reply-To: <b@example.org>\r\n"), "{text}");
        assert!(text.contains("References: <a@example.org>\r\n <b@example.org>\r\n"), "{text}");
        assert!(!text.contains("evil"), "{text}");
        d.in_reply_to = Some("not an id".into());
        d.references.clear();
        let text = String::from_utf8(build(&d, 0, "<c@example.org>")).unwrap();
        assert!(!text.contains("In-Reply-To") && !text.contains("References"), "{text}");
    }

    fn lines_ok(octets: &[u8]) {
        let text = std::str::from_utf8(octets).unwrap();
        assert!(!text.replace("\r\n", "").contains(['\r', '\n']), "bare CR or LF");
        assert!(text.split("\r\n").all(|l| l.len() <= 998), "a line over 998 octets");
        assert!(text.ends_with("\r\n"));
    }

    #[test]
    fn a_text_message_has_the_standard_header_fields() {
        let octets = build(&draft(), 1_795_254_120, "<1.2@example.org>");
        lines_ok(&octets);
        let text = String::from_utf8(octets.clone()).unwrap();
        assert!(text.starts_with("Date: Sat, 21 Nov 2026 09:42:00 +0000\r\nFrom: Ann Example <ann@example.org>\r\n"));
        assert!(text.contains("To: bob@example.org,\r\n \"Carol, C.\" <carol@example.org>\r\n"));
        assert!(text.contains("Cc: dave@example.org\r\nSubject: Plain subject\r\nMessage-ID: <1.2@example.org>\r\n"));
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"));
        assert!(text.ends_with("\r\n\r\nline one\r\nline two\r\n"));
        let parsed = MessageParser::default().parse(&octets).unwrap();
        assert_eq!(parsed.subject(), Some("Plain subject"));
        assert_eq!(parsed.to().unwrap().iter().count(), 2);
        assert_eq!(parsed.body_text(0).unwrap(), "line one\r\nline two\r\n");
    }

    #[test]
    fn a_non_ascii_subject_is_rfc2047_encoded_and_decodes_back() {
        let mut d = draft();
        d.subject = "Grüße aus Köln — ".repeat(6);
        let octets = build(&d, 0, "<x@example.org>");
        lines_ok(&octets);
        let text = String::from_utf8(octets.clone()).unwrap();
        assert!(text.contains("Subject: =?utf-8?B?"));
        let subject_lines =
            text.split("\r\n").skip_while(|l| !l.starts_with("Subject:")).take_while(|l| !l.starts_with("Message-ID"));
        assert!(subject_lines.clone().count() > 1, "long subjects fold");
        assert!(subject_lines.clone().all(|l| l.len() <= 78 && l.is_ascii()));
        let parsed = MessageParser::default().parse(&octets).unwrap();
        assert_eq!(parsed.subject().unwrap().trim_end(), d.subject.trim_end());
    }

    #[test]
    fn a_non_ascii_body_is_quoted_printable_and_decodes_back() {
        let mut d = draft();
        d.body = format!("Grüße\nFrom here\n{}\n= sign \t\n", "ä".repeat(100));
        let octets = build(&d, 0, "<x@example.org>");
        lines_ok(&octets);
        let text = String::from_utf8(octets.clone()).unwrap();
        assert!(text.contains("Content-Transfer-Encoding: quoted-printable"));
        assert!(text.contains("\r\n=46rom here\r\n"), "a leading From is encoded");
        let body_start = text.find("\r\n\r\n").unwrap() + 4;
        assert!(text[body_start..].split("\r\n").all(|l| l.len() <= 76));
        let parsed = MessageParser::default().parse(&octets).unwrap();
        assert_eq!(parsed.body_text(0).unwrap(), d.body.replace('\n', "\r\n"));
    }

    #[test]
    fn attachments_make_a_multipart_mixed_message_with_base64_parts() {
        let mut d = draft();
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        d.attachments = vec![
            Attachment {
                filename: "report.pdf".into(),
                content_type: content_type_for("report.pdf").into(),
                data: data.clone(),
            },
            Attachment {
                filename: format!("Übersicht {}.bin", "ü".repeat(40)),
                content_type: "application/octet-stream".into(),
                data: b"x".to_vec(),
            },
        ];
        let octets = build(&d, 0, "<x@example.org>");
        lines_ok(&octets);
        let text = String::from_utf8(octets.clone()).unwrap();
        assert!(text.contains("Content-Type: multipart/mixed; boundary=\"=_tidings_"));
        assert!(text.contains("Content-Type: application/pdf;\r\n name=\"report.pdf\"\r\nContent-Disposition: attachment;\r\n filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"));
        assert!(text.contains("filename*0*=utf-8''%C3%9Cbersicht"), "RFC 2231 continuations for long names");
        let parsed = MessageParser::default().parse(&octets).unwrap();
        assert_eq!(parsed.body_text(0).unwrap(), "line one\r\nline two\r\n");
        let attachments: Vec<_> = parsed.attachments().collect();
        assert_eq!(attachments.len(), 2);
        assert_eq!(attachments[0].contents(), &data[..]);
        assert_eq!(attachments[0].attachment_name(), Some("report.pdf"));
        assert_eq!(attachments[1].attachment_name(), Some(d.attachments[1].filename.as_str()));
    }

    #[test]
    fn display_names_are_quoted_or_encoded_as_needed() {
        let m: Mailbox = "\"Doe, Jane\" <jane@example.org>".parse().unwrap();
        assert_eq!(m.name.as_deref(), Some("Doe, Jane"));
        assert_eq!(m.to_header(), "\"Doe, Jane\" <jane@example.org>");
        let m: Mailbox = "José <jose@example.org>".parse().unwrap();
        assert_eq!(m.to_header(), "=?utf-8?B?Sm9zw6k=?= <jose@example.org>");
        assert!("not an address".parse::<Mailbox>().is_err());
        assert!("Name <broken".parse::<Mailbox>().is_err());
    }

    #[test]
    fn header_lines_stay_within_998_octets() {
        let mut d = draft();
        d.subject = format!("short {} end", "x".repeat(2000));
        d.to = vec![format!("{} <bob@example.org>", "é".repeat(128)).parse().unwrap()];
        d.attachments = vec![Attachment {
            filename: "a.bin".into(),
            content_type: format!("application/{}", "x".repeat(200)),
            data: b"x".to_vec(),
        }];
        let octets = build(&d, 0, "<x@example.org>");
        lines_ok(&octets);
        let parsed = MessageParser::default().parse(&octets).unwrap();
        assert_eq!(parsed.subject(), Some(d.subject.as_str()));
        assert_eq!(parsed.to().unwrap().first().unwrap().name(), d.to[0].name.as_deref());
        let text = String::from_utf8(octets).unwrap();
        assert!(text.contains("Content-Type: application/octet-stream;"), "an overlong type is not sent");
        let header = d.to[0].to_header();
        assert!(header.split("\r\n").count() > 1 && header.split("\r\n").all(|l| l.len() <= 78), "{header}");
        assert!(format!("{} <bob@example.org>", "n".repeat(257)).parse::<Mailbox>().is_err());
        assert!(format!("{} <bob@example.org>", "n".repeat(256)).parse::<Mailbox>().is_ok());
    }

    #[test]
    fn utf8_text_attachments_say_their_charset() {
        let mut d = draft();
        d.attachments = vec![
            Attachment { filename: "notes.txt".into(), content_type: "text/plain".into(), data: "Grüße".into() },
            Attachment { filename: "latin1.txt".into(), content_type: "text/plain".into(), data: vec![0x47, 0xfc] },
            Attachment { filename: "a.pdf".into(), content_type: "application/pdf".into(), data: b"%PDF".to_vec() },
            Attachment {
                filename: "evil.txt".into(),
                content_type: "text/plain; charset=utf-8\r\nBcc: x@example.org".into(),
                data: b"x".to_vec(),
            },
        ];
        let octets = build(&d, 0, "<x@example.org>");
        lines_ok(&octets);
        let text = String::from_utf8(octets.clone()).unwrap();
        assert!(text.contains("Content-Type: text/plain; charset=utf-8;\r\n name=\"notes.txt\""), "{text}");
        assert!(text.contains("Content-Type: text/plain;\r\n name=\"latin1.txt\""), "{text}");
        assert!(text.contains("Content-Type: application/pdf;\r\n name=\"a.pdf\""), "{text}");
        assert!(!text.contains("Bcc"), "{text}");
        let parsed = MessageParser::default().parse(&octets).unwrap();
        let notes = parsed.attachments().next().unwrap();
        assert_eq!(notes.content_type().unwrap().attribute("charset"), Some("utf-8"));
    }

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type_for("a.PDF"), "application/pdf");
        assert_eq!(content_type_for("photo.jpeg"), "image/jpeg");
        assert_eq!(content_type_for("noextension"), "application/octet-stream");
        assert_eq!(content_type_for("x.unknownext"), "application/octet-stream");
    }

    #[test]
    fn message_ids_are_unique() {
        let a = message_id("example.org", 1);
        let b = message_id("example.org", 1);
        assert_ne!(a, b);
        assert!(a.starts_with("<1.") && a.ends_with("@example.org>"));
    }
}
