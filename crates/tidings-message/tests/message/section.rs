//! BODY[section] (RFC 9051 §6.4.5) and BINARY[section] (RFC 3516).

use std::borrow::Cow;

use crate::common::{crlf, fetch, part, section};
use tidings_message::{BinaryError, Message};

/// A message with a text part, an attached message/rfc822 (itself multipart) and a base64
/// attachment.
fn sample() -> Vec<u8> {
    crlf(
        "From: a@example.org\n\
         Subject: Sample\n\
         Content-Type: multipart/mixed; boundary=outer\n\
         \n\
         --outer\n\
         Content-Type: text/plain\n\
         \n\
         first part\n\
         --outer\n\
         Content-Type: message/rfc822\n\
         Content-Description: forwarded\n\
         \n\
         From: b@example.org\n\
         Subject: Inner\n\
         Content-Type: multipart/alternative; boundary=inner\n\
         \n\
         --inner\n\
         \n\
         inner plain\n\
         --inner\n\
         Content-Type: text/html\n\
         \n\
         <p>inner html</p>\n\
         --inner--\n\
         --outer\n\
         Content-Type: application/octet-stream\n\
         Content-Transfer-Encoding: base64\n\
         \n\
         AAEC\n\
         --outer--\n",
    )
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

#[test]
fn the_empty_section_is_the_whole_message() {
    let raw = sample();
    assert_eq!(fetch(&raw, ""), Some(String::from_utf8(raw.clone()).unwrap()));
}

#[test]
fn header_includes_the_blank_line_and_text_is_the_rest() {
    let raw = crlf("Subject: x\nTo: y\n\nbody\n");
    assert_eq!(fetch(&raw, "HEADER"), some("Subject: x\r\nTo: y\r\n\r\n"));
    assert_eq!(fetch(&raw, "TEXT"), some("body\r\n"));
}

#[test]
fn a_message_without_blank_line_has_all_header_and_empty_text() {
    let raw = crlf("Subject: x\n");
    assert_eq!(fetch(&raw, "HEADER"), some("Subject: x\r\n"));
    assert_eq!(fetch(&raw, "TEXT"), some(""));
    assert_eq!(fetch(&raw, "HEADER.FIELDS (SUBJECT)"), some("Subject: x\r\n"));
}

#[test]
fn header_fields_match_names_case_insensitively_in_message_order() {
    let raw = crlf("From: a@example.org\nsubject: Hi\nTo: b@example.org\nX-Other: 1\n\nbody\n");
    assert_eq!(fetch(&raw, "HEADER.FIELDS (SUBJECT from)"), some("From: a@example.org\r\nsubject: Hi\r\n\r\n"));
}

#[test]
fn header_fields_are_returned_as_stored_with_their_folding() {
    let raw = crlf("Subject: a\n  folded subject\nTo: b@example.org\n\n");
    assert_eq!(fetch(&raw, "HEADER.FIELDS (Subject)"), some("Subject: a\r\n  folded subject\r\n\r\n"));
}

#[test]
fn header_fields_not_returns_the_other_fields() {
    let raw = crlf("From: a@example.org\nSubject: Hi\nTo: b@example.org\n\nbody\n");
    assert_eq!(fetch(&raw, "HEADER.FIELDS.NOT (subject TO)"), some("From: a@example.org\r\n\r\n"));
}

#[test]
fn header_fields_without_a_match_is_the_blank_line() {
    let raw = crlf("From: a@example.org\n\nbody\n");
    assert_eq!(fetch(&raw, "HEADER.FIELDS (Cc)"), some("\r\n"));
}

#[test]
fn part_numbers_name_body_parts_at_every_depth() {
    let raw = sample();
    assert_eq!(fetch(&raw, "1"), some("first part"));
    assert_eq!(fetch(&raw, "2.1"), some("inner plain"));
    assert_eq!(fetch(&raw, "2.2"), some("<p>inner html</p>"));
    assert_eq!(fetch(&raw, "3"), some("AAEC"));
}

#[test]
fn a_message_rfc822_part_is_the_whole_encapsulated_message() {
    let raw = sample();
    let part = fetch(&raw, "2").unwrap();
    assert!(part.starts_with("From: b@example.org\r\nSubject: Inner\r\n"));
    assert!(part.ends_with("<p>inner html</p>\r\n--inner--"));
}

#[test]
fn header_and_text_of_a_message_rfc822_part_are_its_message_header_and_body() {
    let raw = sample();
    assert_eq!(
        fetch(&raw, "2.HEADER"),
        some(
            "From: b@example.org\r\nSubject: Inner\r\n\
             Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
        )
    );
    assert!(fetch(&raw, "2.TEXT").unwrap().starts_with("--inner\r\n\r\ninner plain"));
    assert_eq!(fetch(&raw, "2.HEADER.FIELDS (subject)"), some("Subject: Inner\r\n\r\n"));
    assert_eq!(fetch(&raw, "2.HEADER.FIELDS.NOT (subject content-type)"), some("From: b@example.org\r\n\r\n"));
}

#[test]
fn mime_is_the_part_header_with_its_blank_line() {
    let raw = sample();
    assert_eq!(fetch(&raw, "1.MIME"), some("Content-Type: text/plain\r\n\r\n"));
    assert_eq!(fetch(&raw, "2.MIME"), some("Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n"));
    assert_eq!(fetch(&raw, "2.1.MIME"), some("\r\n"));
}

#[test]
fn header_and_text_of_a_part_that_is_not_a_message_do_not_exist() {
    let raw = sample();
    assert_eq!(fetch(&raw, "1.HEADER"), None);
    assert_eq!(fetch(&raw, "1.TEXT"), None);
    assert_eq!(fetch(&raw, "3.HEADER.FIELDS (From)"), None);
}

#[test]
fn nonexistent_parts_do_not_exist() {
    let raw = sample();
    assert_eq!(fetch(&raw, "4"), None);
    assert_eq!(fetch(&raw, "1.1"), None);
    assert_eq!(fetch(&raw, "2.3"), None);
    assert_eq!(fetch(&raw, "4.MIME"), None);
}

#[test]
fn part_one_of_a_single_part_message_is_its_body() {
    let raw = crlf("Subject: x\n\nthe body\n");
    assert_eq!(fetch(&raw, "1"), some("the body\r\n"));
    assert_eq!(fetch(&raw, "1.MIME"), some("Subject: x\r\n\r\n"));
    assert_eq!(fetch(&raw, "2"), None);
    assert_eq!(fetch(&raw, "1.1"), None);
}

#[test]
fn a_single_part_message_rfc822_body_has_the_inner_message_as_part_one() {
    let raw = crlf("Content-Type: message/rfc822\n\nSubject: inner\n\ninner body\n");
    assert_eq!(fetch(&raw, "1"), some("Subject: inner\r\n\r\ninner body\r\n"));
    assert_eq!(fetch(&raw, "1.1"), some("inner body\r\n"));
    assert_eq!(fetch(&raw, "1.HEADER"), some("Subject: inner\r\n\r\n"));
}

#[test]
fn sections_borrow_the_stored_octets() {
    let raw = sample();
    let message = Message::parse(&raw);
    for spec in ["HEADER", "TEXT", "1", "2", "2.1", "2.MIME", "2.HEADER"] {
        assert!(matches!(message.section(Some(&section(spec))), Some(Cow::Borrowed(_))), "BODY[{spec}] was copied");
    }
}

#[test]
fn binary_decodes_base64_parts() {
    let raw = sample();
    assert_eq!(Message::parse(&raw).binary(&part("3")), Ok(Some(vec![0, 1, 2])));
}

#[test]
fn binary_decodes_quoted_printable_parts() {
    let raw = crlf(
        "Content-Type: text/plain; charset=iso-8859-1\n\
         Content-Transfer-Encoding: quoted-printable\n\
         \n\
         caf=E9 cr=\n\
         =E8me\n",
    );
    assert_eq!(Message::parse(&raw).binary(&part("1")), Ok(Some(b"caf\xe9 cr\xe8me\r\n".to_vec())));
}

#[test]
fn binary_of_7bit_8bit_and_binary_parts_is_the_content_as_stored() {
    for encoding in ["7bit", "8BIT", "binary", ""] {
        let field =
            if encoding.is_empty() { String::new() } else { format!("Content-Transfer-Encoding: {encoding}\n") };
        let raw = crlf(&format!("{field}\ncaf\u{e9}\n"));
        assert_eq!(
            Message::parse(&raw).binary(&part("1")),
            Ok(Some("caf\u{e9}\r\n".as_bytes().to_vec())),
            "{encoding}"
        );
    }
}

#[test]
fn binary_of_an_unknown_encoding_is_an_error() {
    let raw = crlf("Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n");
    assert_eq!(Message::parse(&raw).binary(&part("1")), Err(BinaryError::UnknownCte));
}

#[test]
fn binary_of_no_part_is_the_whole_message() {
    let raw = sample();
    assert_eq!(Message::parse(&raw).binary(&[]), Ok(Some(raw.clone())));
}

#[test]
fn binary_of_a_nonexistent_part_is_none() {
    let raw = sample();
    assert_eq!(Message::parse(&raw).binary(&part("9")), Ok(None));
}
