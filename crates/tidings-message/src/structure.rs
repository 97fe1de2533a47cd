//! BODY and BODYSTRUCTURE (RFC 9051 §7.5.2) from the part tree.

use std::borrow::Cow;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_codec::imap_types::core::{IString, Vec1};

use crate::header::{self, Field};
use crate::imap::{istr, istring, nstring};
use crate::mime::{Kind, Part, Tree};
use crate::params::{self, Param};

/// The MIME fields of one header block that BODYSTRUCTURE reports (first occurrence of each).
#[derive(Default)]
pub(crate) struct MimeFields<'a> {
    pub id: Option<Field<'a>>,
    pub description: Option<Field<'a>>,
    pub transfer_encoding: Option<Field<'a>>,
    pub md5: Option<Field<'a>>,
    pub disposition: Option<Field<'a>>,
    pub language: Option<Field<'a>>,
    pub location: Option<Field<'a>>,
}

impl<'a> MimeFields<'a> {
    pub fn of(block: &'a [u8]) -> MimeFields<'a> {
        let mut fields = MimeFields::default();
        for field in header::fields(block) {
            let Some(suffix) =
                field.name.get(..8).filter(|prefix| prefix.eq_ignore_ascii_case(b"content-")).map(|_| &field.name[8..])
            else {
                continue;
            };
            let slot = if suffix.eq_ignore_ascii_case(b"id") {
                &mut fields.id
            } else if suffix.eq_ignore_ascii_case(b"description") {
                &mut fields.description
            } else if suffix.eq_ignore_ascii_case(b"transfer-encoding") {
                &mut fields.transfer_encoding
            } else if suffix.eq_ignore_ascii_case(b"md5") {
                &mut fields.md5
            } else if suffix.eq_ignore_ascii_case(b"disposition") {
                &mut fields.disposition
            } else if suffix.eq_ignore_ascii_case(b"language") {
                &mut fields.language
            } else if suffix.eq_ignore_ascii_case(b"location") {
                &mut fields.location
            } else {
                continue;
            };
            slot.get_or_insert(field);
        }
        fields
    }

    /// The Content-Transfer-Encoding token as written, if there is one.
    pub fn transfer_encoding(&self) -> Option<&'a [u8]> {
        self.transfer_encoding.and_then(|f| params::first_token(f.value))
    }
}

/// The BODYSTRUCTURE (`extension` true) or BODY (false) of the entity at `index`.
pub(crate) fn body_structure(tree: &Tree<'_>, raw: &[u8], index: u32, extension: bool) -> BodyStructure<'static> {
    let part = tree.part(index);
    let fields = MimeFields::of(part.header(raw));
    let (ty, subtype) = part.media_type();
    if let Kind::Multipart(children) = &part.kind {
        let bodies: Vec<_> = children.iter().map(|&child| body_structure(tree, raw, child, extension)).collect();
        return BodyStructure::Multi {
            // The tree never has a multipart without parts; an empty text/plain is the
            // harmless answer should that ever change.
            bodies: Vec1::try_from(bodies).unwrap_or_else(|_| Vec1::from(empty_text(extension))),
            subtype: istring(subtype.into()),
            extension_data: extension.then(|| MultiPartExtensionData {
                parameter_list: pairs(part.params()),
                tail: Some(disposition(&fields)),
            }),
        };
    }

    let content = part.content(raw);
    let specific = match &part.kind {
        Kind::Message(entity) => SpecificFields::Message {
            envelope: Box::new(crate::envelope::envelope(tree.part(*entity).header(raw))),
            body_structure: Box::new(body_structure(tree, raw, *entity, extension)),
            number_of_lines: lines(content),
        },
        _ if part.is_text() => {
            SpecificFields::Text { subtype: istring(subtype.into()), number_of_lines: lines(content) }
        }
        _ => SpecificFields::Basic { r#type: istring(ty.into()), subtype: istring(subtype.into()) },
    };
    BodyStructure::Single {
        body: Body { basic: basic_fields(part, &fields, content.len()), specific },
        extension_data: extension.then(|| SinglePartExtensionData {
            md5: nstring(fields.md5.map(|f| f.unfolded())),
            tail: Some(disposition(&fields)),
        }),
    }
}

fn basic_fields(part: &Part<'_>, fields: &MimeFields<'_>, size: usize) -> BasicFields<'static> {
    let mut parameter_list = pairs(part.params());
    if part.is_text() && params::param(part.params(), b"charset").is_none() {
        // RFC 2045 §5.2: text without a charset parameter is US-ASCII.
        parameter_list.push((istr("charset"), istr("us-ascii")));
    }
    BasicFields {
        parameter_list,
        id: nstring(fields.id.map(|f| f.unfolded())),
        description: nstring(fields.description.map(|f| f.unfolded())),
        content_transfer_encoding: istring(
            fields.transfer_encoding().map_or(Cow::Borrowed(&b"7BIT"[..]), Cow::Borrowed),
        ),
        size: u32::try_from(size).unwrap_or(u32::MAX),
    }
}

/// Disposition, language and location: the extension data single parts and multiparts share.
fn disposition(fields: &MimeFields<'_>) -> Disposition<'static> {
    Disposition {
        disposition: fields
            .disposition
            .and_then(|f| params::disposition(f.value))
            .map(|(kind, params)| (istring(kind.into()), pairs(&params))),
        tail: Some(Language {
            language: fields.language.map_or_else(Vec::new, |f| {
                params::languages(f.value).into_iter().map(|tag| istring(tag.into())).collect()
            }),
            tail: Some(Location { location: nstring(fields.location.map(|f| f.unfolded())), extensions: Vec::new() }),
        }),
    }
}

fn pairs(params: &[Param<'_>]) -> Vec<(IString<'static>, IString<'static>)> {
    params.iter().map(|p| (istring(p.name.clone()), istring(p.value.clone()))).collect()
}

/// Size in text lines: the number of line ends (the last line before a delimiter has none of
/// its own, it belongs to the delimiter), as Dovecot counts.
fn lines(content: &[u8]) -> u32 {
    let count = content.iter().filter(|&&b| b == b'\n').count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn empty_text(extension: bool) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![(istr("charset"), istr("us-ascii"))],
                id: nstring(None),
                description: nstring(None),
                content_transfer_encoding: istr("7BIT"),
                size: 0,
            },
            specific: SpecificFields::Text { subtype: istr("plain"), number_of_lines: 0 },
        },
        extension_data: extension
            .then(|| SinglePartExtensionData { md5: nstring(None), tail: Some(disposition(&MimeFields::default())) }),
    }
}
