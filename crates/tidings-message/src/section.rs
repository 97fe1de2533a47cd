//! `BODY[section]` octets (RFC 9051 §6.4.5).

use std::borrow::Cow;

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::fetch::Section;

use crate::header;
use crate::mime::{Kind, Tree};

/// Which octets of an entity a section names.
enum Wanted<'s> {
    Header,
    Text,
    Fields(&'s [AString<'s>], bool),
}

/// The octets `section` names, or `None` when the part does not exist (or is not a
/// message/rfc822 part, for HEADER, TEXT and HEADER.FIELDS of a part).
pub(crate) fn extract<'a: 't, 't>(
    raw: &'a [u8],
    header_end: usize,
    tree: impl FnOnce() -> &'t Tree<'a>,
    section: &Section<'_>,
) -> Option<Cow<'a, [u8]>> {
    let (part, wanted) = match section {
        Section::Part(part) => {
            let tree = tree();
            let part = tree.part(tree.resolve(part.0.as_ref())?);
            return Some(Cow::Borrowed(part.content(raw)));
        }
        Section::Mime(part) => {
            let tree = tree();
            let part = tree.part(tree.resolve(part.0.as_ref())?);
            return Some(Cow::Borrowed(part.header(raw)));
        }
        Section::Header(part) => (part, Wanted::Header),
        Section::Text(part) => (part, Wanted::Text),
        Section::HeaderFields(part, names) => (part, Wanted::Fields(names.as_ref(), true)),
        Section::HeaderFieldsNot(part, names) => (part, Wanted::Fields(names.as_ref(), false)),
    };
    // HEADER, TEXT and HEADER.FIELDS[.NOT]: of the message, or of a message/rfc822 part's
    // encapsulated message.
    let (header, text) = match part {
        None => (&raw[..header_end], &raw[header_end..]),
        Some(part) => {
            let tree = tree();
            let index = tree.resolve(part.0.as_ref())?;
            let Kind::Message(entity) = tree.part(index).kind else {
                return None;
            };
            let entity = tree.part(entity);
            (entity.header(raw), entity.content(raw))
        }
    };
    Some(match wanted {
        Wanted::Header => Cow::Borrowed(header),
        Wanted::Text => Cow::Borrowed(text),
        Wanted::Fields(names, keep) => Cow::Owned(header_fields(header, names, keep)),
    })
}

/// The fields of a header block whose names are (`keep`) or are not (`!keep`) in `names`
/// (compared case-insensitively), as stored and in order, then the blank line when the block
/// has one (RFC 9051 §6.4.5: "the blank line is included in all header fetches").
pub(crate) fn header_fields(block: &[u8], names: &[AString<'_>], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in header::fields(block) {
        let listed = names.iter().any(|name| field.is(name.as_ref()));
        if listed == keep {
            out.extend_from_slice(field.raw);
        }
    }
    if let Some(blank) = header::blank_line(block) {
        out.extend_from_slice(blank);
    }
    out
}
