//! What IMAP needs from a stored message's octets: ENVELOPE, BODY and BODYSTRUCTURE
//! (RFC 9051 §7.5.2), `BODY[section]` (RFC 9051 §6.4.5), `BINARY[section]` (RFC 3516) and the
//! content predicates of SEARCH (RFC 9051 §6.4.4).
//!
//! This crate is pure: no I/O, no clock. A [`Message`] borrows the stored octets and never
//! copies them to answer `BODY[section]`; its MIME structure is parsed once, on first need, into
//! offsets of the stored octets (so `BODY[]`, `RFC822.SIZE` and `BODY[HEADER]` parse nothing
//! beyond the header's end). Malformed input gets a best-effort structure; nothing here panics
//! or fails on what a sender wrote.
//!
//! Field values are parsed with mail-parser where it decodes (RFC 2047 encoded-words, charsets,
//! dates); the part tree itself is found here, line by line, per RFC 2046 §5.1.1, so that every
//! offset is exact and no body is decoded unless BINARY or SEARCH asks for it.
//!
//! # Example
//!
//! ```
//! use std::borrow::Cow;
//! use std::num::NonZeroU32;
//! use tidings_message::Message;
//! use tidings_message::imap_types::fetch::{Part, Section};
//!
//! let raw = b"From: Ann <ann@example.org>\r\n\
//!             Subject: =?utf-8?q?caf=C3=A9?=\r\n\
//!             Content-Type: multipart/mixed; boundary=b\r\n\
//!             \r\n\
//!             --b\r\n\
//!             \r\n\
//!             Hello\r\n\
//!             --b\r\n\
//!             Content-Transfer-Encoding: base64\r\n\
//!             \r\n\
//!             d29ybGQ=\r\n\
//!             --b--\r\n";
//! let message = Message::parse(raw);
//!
//! let one = NonZeroU32::new(1).unwrap();
//! let first = Section::Part(Part(one.into()));
//! assert_eq!(message.section(Some(&first)), Some(Cow::Borrowed(&b"Hello"[..])));
//! assert_eq!(message.binary(&[NonZeroU32::new(2).unwrap()]), Ok(Some(b"world".to_vec())));
//! assert!(message.header_contains("subject", "CAFÉ"));
//! assert!(message.body_contains("WORLD"));
//! ```

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::num::NonZeroU32;

pub use imap_codec::imap_types;
use imap_types::body::BodyStructure;
use imap_types::envelope::Envelope;
use imap_types::fetch::Section;

mod decode;
mod envelope;
mod header;
mod imap;
mod mime;
mod params;
mod search;
mod section;
mod structure;

pub use mime::{NESTING_MAX, PARTS_MAX};

use decode::TransferEncoding;
use mime::{Kind, Tree};
use search::Needle;

/// A stored message (RFC 5322, with MIME), borrowed, with its structure parsed on demand.
///
/// Cheap to create: [`Message::parse`] only finds where the header ends. The MIME part tree is
/// built the first time a method needs it and then reused, so one `Message` should serve all
/// the items of one FETCH.
pub struct Message<'a> {
    raw: &'a [u8],
    /// Offset of the first body octet (just past the blank line; `raw.len()` if there is none).
    header_end: usize,
    tree: OnceCell<Tree<'a>>,
}

/// Why BINARY cannot give a part's decoded content (RFC 3516 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one this server decodes (7bit, 8bit,
    /// binary, base64, quoted-printable). The IMAP layer answers `NO [UNKNOWN-CTE]`.
    UnknownCte,
}

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryError::UnknownCte => f.write_str(
                "the part's Content-Transfer-Encoding is none of 7bit, 8bit, binary, base64, \
                 quoted-printable, so it cannot be decoded; fetch BODY[part] instead",
            ),
        }
    }
}

impl std::error::Error for BinaryError {}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("size", &self.raw.len())
            .field("header_end", &self.header_end)
            .field("parts", &self.tree.get().map(|t| t.parts.len()))
            .finish()
    }
}

impl<'a> Message<'a> {
    /// Takes a stored message's octets. Never fails: malformed input gets a best-effort
    /// structure (no blank line: all header and an empty body; no usable Content-Type:
    /// text/plain; a multipart without delimiters: one empty text/plain part).
    pub fn parse(raw: &'a [u8]) -> Message<'a> {
        Message { raw, header_end: mime::header_end(raw), tree: OnceCell::new() }
    }

    /// The stored octets.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Size of the message in octets (RFC822.SIZE, RFC 9051 §7.5.2).
    pub fn size(&self) -> usize {
        self.raw.len()
    }

    fn tree(&self) -> &Tree<'a> {
        self.tree.get_or_init(|| Tree::parse(self.raw))
    }

    /// The message header, blank line included (`BODY[HEADER]`).
    fn header(&self) -> &'a [u8] {
        &self.raw[..self.header_end]
    }

    /// ENVELOPE (RFC 9051 §7.5.2): date, subject, from, sender, reply-to, to, cc, bcc,
    /// in-reply-to and message-id of the first field of each name. Strings are the field values
    /// as written, unfolded and trimmed, not decoded (clients decode RFC 2047 themselves); an
    /// absent field is NIL; an absent or empty Sender or Reply-To is the From. Addresses are
    /// split into name (the phrase, unquoted, or a comment when there is no phrase), source
    /// route, mailbox (the local part, unquoted) and host; groups are a `(NIL NIL "name" NIL)`
    /// start and a `(NIL NIL NIL NIL)` end (RFC 9051 §9). A missing local part or domain is
    /// `MISSING_MAILBOX` / `MISSING_DOMAIN`, as Dovecot sends (NIL would read as group syntax).
    pub fn envelope(&self) -> Envelope<'static> {
        envelope::envelope(self.header())
    }

    /// BODYSTRUCTURE (`extension_data` true) or BODY (false), RFC 9051 §7.5.2.
    ///
    /// Type and subtype are as written in the message, except that imap-codec always writes
    /// `"TEXT"` for text/* and `"MESSAGE" "RFC822"` for message/rfc822; without a usable
    /// Content-Type the type is text/plain (message/rfc822 in a multipart/digest). Parameters
    /// are as written, unquoted, with RFC 2231 continuations joined (an extended value stays
    /// encoded, under `name*`); text/* without a charset gets `("charset" "us-ascii")`.
    /// Content-ID, Content-Description, Content-MD5 and Content-Location are the field values
    /// as written; the encoding is the Content-Transfer-Encoding token as written, `"7BIT"` by
    /// default. Size is the content's octets as stored; lines (text/* and message/rfc822) is
    /// the number of line ends in them. Extension data is always complete: MD5 (NIL without a
    /// Content-MD5 field), disposition, language and location.
    pub fn body_structure(&self, extension_data: bool) -> BodyStructure<'static> {
        structure::body_structure(self.tree(), self.raw, mime::ROOT, extension_data)
    }

    /// `BODY[section]` (RFC 9051 §6.4.5): the octets exactly as stored, borrowed when they are a
    /// contiguous run of the message (everything but `HEADER.FIELDS[.NOT]`).
    ///
    /// `None` is the whole message. HEADER includes the blank line; TEXT is the rest.
    /// HEADER.FIELDS / HEADER.FIELDS.NOT give the matching (or other) fields as stored, in
    /// order, names compared case-insensitively, then the blank line if the header has one. A
    /// part number names a body part's content: part 1 of a non-multipart message is its body,
    /// a message/rfc822 part's content is the whole encapsulated message. part.MIME is the
    /// part's MIME header. part.HEADER, part.TEXT and `part.HEADER.FIELDS[.NOT]` apply to
    /// message/rfc822 parts only.
    ///
    /// Returns `None` for a part that does not exist, and for part.HEADER / part.TEXT /
    /// `part.HEADER.FIELDS[.NOT]` of a part that is not message/rfc822; the IMAP layer answers
    /// NIL or an empty string as RFC 9051 allows.
    pub fn section(&self, section: Option<&Section<'_>>) -> Option<Cow<'a, [u8]>> {
        match section {
            None => Some(Cow::Borrowed(self.raw)),
            Some(section) => section::extract(self.raw, self.header_end, || self.tree(), section),
        }
    }

    /// `BINARY[part]` (RFC 3516 §4.2): the part's content with its Content-Transfer-Encoding
    /// removed: base64 and quoted-printable decoded (leniently: octets outside the base64
    /// alphabet are skipped, a quoted-printable `=` without two hex digits is kept), 7bit, 8bit
    /// and binary as stored. An empty part list is the whole message as stored.
    ///
    /// `Ok(None)` for a part that does not exist; `Err(BinaryError::UnknownCte)` for any other
    /// encoding (RFC 3516 §4.3: the IMAP layer answers `NO [UNKNOWN-CTE]`).
    pub fn binary(&self, part: &[NonZeroU32]) -> Result<Option<Vec<u8>>, BinaryError> {
        if part.is_empty() {
            return Ok(Some(self.raw.to_vec()));
        }
        let tree = self.tree();
        let Some(index) = tree.resolve(part) else {
            return Ok(None);
        };
        let part = tree.part(index);
        let fields = structure::MimeFields::of(part.header(self.raw));
        TransferEncoding::from_token(fields.transfer_encoding())
            .decode(part.content(self.raw))
            .map(|content| Some(content.into_owned()))
            .ok_or(BinaryError::UnknownCte)
    }

    /// SEARCH HEADER / FROM / TO / CC / BCC / SUBJECT (RFC 9051 §6.4.4): whether a field of
    /// the message header named `field` (case-insensitively) contains `needle`, ignoring case,
    /// in its value decoded to UTF-8 (unfolded, RFC 2047 encoded-words decoded). An empty
    /// needle matches any message that has the field.
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        let needle = Needle::new(needle);
        header::fields(self.header())
            .filter(|f| f.is(field.as_bytes()))
            .any(|f| needle.is_empty() || needle.found_in(&search::decode_field(f.value)))
    }

    /// SEARCH BODY (RFC 9051 §6.4.4): whether the text of the message's body contains `needle`,
    /// ignoring case. The text is every text/* part at any depth (inside multiparts and
    /// message/rfc822 parts), transfer encoding removed and converted from its charset to
    /// UTF-8. Other parts (attachments, images) and multipart preambles are not searched.
    pub fn body_contains(&self, needle: &str) -> bool {
        let needle = Needle::new(needle);
        needle.is_empty()
            || self.tree().parts.iter().any(|part| {
                matches!(part.kind, Kind::Leaf) && part.is_text() && needle.found_in(&search::part_text(part, self.raw))
            })
    }

    /// SEARCH TEXT (RFC 9051 §6.4.4): whether the header or the body contains `needle`,
    /// ignoring case: every header field (as `Name: decoded value`) of the message, of its MIME
    /// parts and of encapsulated messages, and the text [`Message::body_contains`] searches.
    pub fn text_contains(&self, needle: &str) -> bool {
        let needle = Needle::new(needle);
        needle.is_empty()
            || self.tree().parts.iter().any(|part| {
                search::header_block_contains(part.header(self.raw), &needle)
                    || matches!(part.kind, Kind::Leaf)
                        && part.is_text()
                        && needle.found_in(&search::part_text(part, self.raw))
            })
    }

    /// The calendar day of the Date field (the first one), in the field's own time zone, as
    /// days since 1970-01-01 (negative before). SENTBEFORE / SENTON / SENTSINCE compare these
    /// days (RFC 9051 §6.4.4). `None` when there is no Date field or it cannot be parsed.
    pub fn sent_day(&self) -> Option<i64> {
        let date = header::find(self.header(), b"date")?;
        search::sent_day(date.value)
    }
}
