//! Every message of the mail corpus (tests/corpus/mail, real-world and malformed), stored with
//! CRLF as the server stores it, against the invariants IMAP clients rely on.

use std::num::NonZeroU32;
use std::path::PathBuf;

use imap_codec::imap_types::body::{BodyStructure, SpecificFields};
use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
use tidings_message::Message;

use crate::common::crlf_bytes;

/// (name, stored octets) of every corpus message.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/mail");
    let mut messages = Vec::new();
    for folder in std::fs::read_dir(&root).expect("the corpus folder") {
        let folder = folder.expect("a corpus entry").path();
        if !folder.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&folder).expect("a corpus folder") {
            let file = file.expect("a corpus file").path();
            if file.extension().is_some_and(|e| e == "eml") {
                let name = file.strip_prefix(&root).unwrap().display().to_string();
                messages.push((name, crlf_bytes(&std::fs::read(&file).unwrap())));
            }
        }
    }
    messages.sort();
    assert!(messages.len() >= 100, "the corpus has {} messages", messages.len());
    messages
}

/// A part reported by BODYSTRUCTURE: its number, and its size unless it is a multipart.
struct Reported {
    number: Vec<NonZeroU32>,
    size: Option<u32>,
    message_rfc822: bool,
}

/// The parts a BODYSTRUCTURE reports, with their IMAP part numbers (RFC 9051 §6.4.5).
fn reported_parts(structure: &BodyStructure<'_>) -> Vec<Reported> {
    let mut out = Vec::new();
    numbered(structure, &[], &mut out);
    out
}

/// The parts of a message whose body is `structure`: a multipart's parts, or else the body.
fn numbered(structure: &BodyStructure<'_>, prefix: &[NonZeroU32], out: &mut Vec<Reported>) {
    match structure {
        BodyStructure::Multi { bodies, .. } => {
            for (i, body) in bodies.as_ref().iter().enumerate() {
                part(body, &number(prefix, i), out);
            }
        }
        single => part(single, &number(prefix, 0), out),
    }
}

fn part(structure: &BodyStructure<'_>, number: &[NonZeroU32], out: &mut Vec<Reported>) {
    match structure {
        BodyStructure::Multi { bodies, .. } => {
            out.push(Reported { number: number.to_vec(), size: None, message_rfc822: false });
            for (i, body) in bodies.as_ref().iter().enumerate() {
                part(body, &self::number(number, i), out);
            }
        }
        BodyStructure::Single { body, .. } => {
            let message = matches!(body.specific, SpecificFields::Message { .. });
            out.push(Reported { number: number.to_vec(), size: Some(body.basic.size), message_rfc822: message });
            if let SpecificFields::Message { body_structure, .. } = &body.specific {
                numbered(body_structure, number, out);
            }
        }
    }
}

fn number(prefix: &[NonZeroU32], index: usize) -> Vec<NonZeroU32> {
    let mut number = prefix.to_vec();
    number.push(NonZeroU32::new(index as u32 + 1).unwrap());
    number
}

fn part_section(number: &[NonZeroU32]) -> Part {
    Part(number.to_vec().try_into().expect("a part number"))
}

#[test]
fn every_corpus_message_parses_without_panicking() {
    for (name, raw) in corpus() {
        let result = std::panic::catch_unwind(|| {
            let message = Message::parse(&raw);
            let _ = message.envelope();
            let _ = message.body_structure(true);
            let _ = message.body_structure(false);
            let _ = message.sent_day();
            let _ = message.header_contains("subject", "e");
            let _ = message.body_contains("e");
            let _ = message.text_contains("ü");
            for reported in reported_parts(&message.body_structure(true)) {
                let _ = message.binary(&reported.number);
                let _ = message.section(Some(&Section::Mime(part_section(&reported.number))));
            }
        });
        assert!(result.is_ok(), "{name} panicked");
    }
}

#[test]
fn the_whole_message_section_is_the_stored_message() {
    for (name, raw) in corpus() {
        let message = Message::parse(&raw);
        assert_eq!(message.section(None).as_deref(), Some(&raw[..]), "{name}");
        assert_eq!(message.size(), raw.len(), "{name}");
    }
}

#[test]
fn header_and_text_concatenate_to_the_whole_message() {
    for (name, raw) in corpus() {
        let message = Message::parse(&raw);
        let header = message.section(Some(&Section::Header(None))).unwrap();
        let text = message.section(Some(&Section::Text(None))).unwrap();
        assert_eq!([&header[..], &text[..]].concat(), raw, "{name}");
    }
}

#[test]
fn every_reported_part_can_be_fetched_and_has_the_reported_size() {
    let mut parts_checked = 0;
    for (name, raw) in corpus() {
        let message = Message::parse(&raw);
        for reported in reported_parts(&message.body_structure(true)) {
            let section = Section::Part(part_section(&reported.number));
            let content = message
                .section(Some(&section))
                .unwrap_or_else(|| panic!("{name}: part {:?} cannot be fetched", reported.number));
            let mime = message.section(Some(&Section::Mime(part_section(&reported.number))));
            assert!(mime.is_some(), "{name}: part {:?} has no MIME header", reported.number);
            if let Some(size) = reported.size {
                assert_eq!(size as usize, content.len(), "{name}: size of {:?}", reported.number);
            }
            if reported.message_rfc822 {
                let number = Some(part_section(&reported.number));
                let header = message.section(Some(&Section::Header(number.clone()))).unwrap();
                let text = message.section(Some(&Section::Text(number))).unwrap();
                assert_eq!(
                    [&header[..], &text[..]].concat(),
                    &content[..],
                    "{name}: HEADER and TEXT of message/rfc822 part {:?}",
                    reported.number
                );
            }
            parts_checked += 1;
        }
    }
    assert!(parts_checked > 300, "only {parts_checked} parts checked");
}

#[test]
fn parts_beyond_the_reported_ones_do_not_exist() {
    for (name, raw) in corpus() {
        let message = Message::parse(&raw);
        let reported = reported_parts(&message.body_structure(true));
        let top_level = reported.iter().filter(|r| r.number.len() == 1).count();
        let beyond = part_section(&[NonZeroU32::new(top_level as u32 + 1).unwrap()]);
        assert_eq!(message.section(Some(&Section::Part(beyond))), None, "{name}");
    }
}

#[test]
fn envelope_and_body_structure_are_valid_imap() {
    for (name, raw) in corpus() {
        let message = Message::parse(&raw);
        let items = vec![
            MessageDataItem::Envelope(message.envelope()),
            MessageDataItem::BodyStructure(message.body_structure(true)),
            MessageDataItem::Body(message.body_structure(false)),
        ];
        if let Err(problem) = crate::common::round_trips(items) {
            panic!("{name}: {problem}");
        }
    }
}
