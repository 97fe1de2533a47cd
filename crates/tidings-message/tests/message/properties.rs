//! Properties that hold for any octets, checked on messages assembled at random from MIME
//! fragments (headers, boundaries, delimiters in and out of place, encodings, junk).

use std::num::NonZeroU32;

use imap_codec::imap_types::body::{BodyStructure, SpecificFields};
use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
use proptest::prelude::*;
use tidings_message::Message;

const FRAGMENTS: &[&str] = &[
    "Content-Type: multipart/mixed; boundary=a\r\n",
    "Content-Type: multipart/alternative; boundary=\"ab\"\r\n",
    "Content-Type: multipart/digest; boundary=a\r\n",
    "Content-Type: message/rfc822\r\n",
    "Content-Type: text/plain; charset=iso-8859-1\r\n",
    "Content-Type: application/x; name*0*=utf-8''%E2; name*1=x\r\n",
    "Content-Type: multipart/mixed\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "Content-Transfer-Encoding: quoted-printable\r\n",
    "Content-Transfer-Encoding: x-unknown\r\n",
    "Content-Disposition: attachment; filename=\"f\"\r\n",
    "From: \"A, B\" <a@b>, g: c@d, (x) e;\r\n",
    "To: <@r:x@y>, broken\r\n",
    "Subject: =?utf-8?q?caf=C3=A9?=\r\n",
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n",
    " folded\r\n",
    "no colon\r\n",
    "\r\n",
    "\n",
    "--a\r\n",
    "--a--\r\n",
    "--ab\r\n",
    "--ab--\r\n",
    "--a",
    "text =E9 line\r\n",
    "aGVsbG8=\r\n",
    "\r",
    "\u{e9}\u{0}\u{ff}",
];

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..40,
    )
    .prop_map(|pieces| pieces.concat())
}

/// Part numbers and sizes (`None` for multiparts) a BODYSTRUCTURE reports.
fn reported(structure: &BodyStructure<'_>, prefix: &[NonZeroU32], out: &mut Vec<(Vec<NonZeroU32>, Option<u32>)>) {
    let bodies: Vec<&BodyStructure<'_>> = match structure {
        BodyStructure::Multi { bodies, .. } => bodies.as_ref().iter().collect(),
        single => vec![single],
    };
    for (i, body) in bodies.into_iter().enumerate() {
        let mut number = prefix.to_vec();
        number.push(NonZeroU32::new(i as u32 + 1).unwrap());
        part(body, number, out);
    }
}

fn part(structure: &BodyStructure<'_>, number: Vec<NonZeroU32>, out: &mut Vec<(Vec<NonZeroU32>, Option<u32>)>) {
    match structure {
        BodyStructure::Multi { bodies, .. } => {
            out.push((number.clone(), None));
            for (i, body) in bodies.as_ref().iter().enumerate() {
                let mut child = number.clone();
                child.push(NonZeroU32::new(i as u32 + 1).unwrap());
                part(body, child, out);
            }
        }
        BodyStructure::Single { body, .. } => {
            out.push((number.clone(), Some(body.basic.size)));
            if let SpecificFields::Message { body_structure, .. } = &body.specific {
                reported(body_structure, &number, out);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_octets_give_a_consistent_structure(raw in message()) {
        let message = Message::parse(&raw);
        let whole = message.section(None).unwrap();
        prop_assert_eq!(&whole[..], &raw[..]);
        let header = message.section(Some(&Section::Header(None))).unwrap();
        let text = message.section(Some(&Section::Text(None))).unwrap();
        prop_assert_eq!([&header[..], &text[..]].concat(), raw.clone());

        let structure = message.body_structure(true);
        let mut parts = Vec::new();
        reported(&structure, &[], &mut parts);
        for (number, size) in parts {
            let section = Part(number.clone().try_into().unwrap());
            let content = message.section(Some(&Section::Part(section.clone())));
            prop_assert!(content.is_some(), "part {:?} missing", number);
            if let Some(size) = size {
                prop_assert_eq!(size as usize, content.unwrap().len());
            }
            prop_assert!(message.section(Some(&Section::Mime(section))).is_some());
            let _ = message.binary(&number);
        }

        let _ = message.sent_day();
        let _ = message.header_contains("from", "a");
        let _ = message.body_contains("\u{e9}");
        let _ = message.text_contains("line");
        let items = vec![
            MessageDataItem::Envelope(message.envelope()),
            MessageDataItem::BodyStructure(structure),
            MessageDataItem::Body(message.body_structure(false)),
        ];
        if let Err(problem) = crate::common::round_trips(items) {
            prop_assert!(false, "{}", problem);
        }
    }
}
