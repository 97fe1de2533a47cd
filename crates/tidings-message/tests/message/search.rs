//! The content predicates of SEARCH (RFC 9051 §6.4.4) and the sent date.

use crate::common::crlf;
use tidings_message::Message;

#[test]
fn header_search_decodes_encoded_words_in_iso_8859_1_and_utf8() {
    let raw = crlf("Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= and =?UTF-8?B?w6lsw6h2ZQ==?=\n\n");
    let message = Message::parse(&raw);
    assert!(message.header_contains("Subject", "café crème"));
    assert!(message.header_contains("Subject", "ÉLÈVE"));
    assert!(!message.header_contains("Subject", "=?ISO"));
}

#[test]
fn header_search_ignores_case_of_field_name_and_text() {
    let raw = crlf("subject: Quarterly REPORT\n\n");
    let message = Message::parse(&raw);
    assert!(message.header_contains("SUBJECT", "quarterly report"));
    assert!(!message.header_contains("Subject", "annual"));
}

#[test]
fn header_search_finds_names_and_addresses_of_address_fields() {
    let raw = crlf("From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <jm@example.org>\n\n");
    let message = Message::parse(&raw);
    assert!(message.header_contains("from", "jürgen"));
    assert!(message.header_contains("from", "JM@EXAMPLE.ORG"));
    assert!(!message.header_contains("to", "jm@example.org"));
}

#[test]
fn header_search_sees_folded_values_unfolded() {
    let raw = crlf("Subject: a long\n subject line\n\n");
    assert!(Message::parse(&raw).header_contains("subject", "long subject"));
}

#[test]
fn an_empty_needle_matches_messages_that_have_the_field() {
    let raw = crlf("X-Flag:\nSubject: s\n\n");
    let message = Message::parse(&raw);
    assert!(message.header_contains("x-flag", ""));
    assert!(!message.header_contains("x-absent", ""));
}

#[test]
fn header_search_looks_at_every_field_of_that_name() {
    let raw = crlf("Received: from a\nReceived: from b\n\n");
    assert!(Message::parse(&raw).header_contains("received", "from b"));
}

#[test]
fn body_search_decodes_quoted_printable_iso_8859_1() {
    let raw = crlf(
        "Content-Type: text/plain; charset=ISO-8859-1\n\
         Content-Transfer-Encoding: quoted-printable\n\
         \n\
         Un caf=E9 cr=\n\
         =E8me, s'il vous pla=EEt.\n",
    );
    let message = Message::parse(&raw);
    assert!(message.body_contains("CAFÉ CRÈME"));
    assert!(message.body_contains("plaît"));
    assert!(!message.body_contains("=E9"));
}

#[test]
fn body_search_decodes_quoted_printable_utf8() {
    let raw = crlf(
        "Content-Type: text/plain; charset=\"UTF-8\"\n\
         Content-Transfer-Encoding: quoted-printable\n\
         \n\
         Stra=C3=9Fe und Br=C3=\n\
         =BCcke\n",
    );
    let message = Message::parse(&raw);
    assert!(message.body_contains("straße"));
    assert!(message.body_contains("BRÜCKE"));
}

#[test]
fn body_search_decodes_base64_utf8() {
    // "Grüße aus Köln" in UTF-8, base64.
    let raw = crlf(
        "Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: base64\n\
         \n\
         R3LDvMOfZSBhdXMgS8O2bG4=\n",
    );
    let message = Message::parse(&raw);
    assert!(message.body_contains("grüße aus köln"));
    assert!(!message.body_contains("R3LD"));
}

#[test]
fn body_search_decodes_base64_iso_8859_1() {
    // "Señor" in ISO-8859-1, base64.
    let raw = crlf(
        "Content-Type: text/plain; charset=iso-8859-1\n\
         Content-Transfer-Encoding: base64\n\
         \n\
         U2Xxb3I=\n",
    );
    assert!(Message::parse(&raw).body_contains("SEÑOR"));
}

#[test]
fn body_search_covers_every_text_part_and_attached_messages() {
    let raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n\
         \n\
         --b\n\
         Content-Type: multipart/alternative; boundary=a\n\
         \n\
         --a\n\
         \n\
         plain words\n\
         --a\n\
         Content-Type: text/html\n\
         \n\
         <p>html words</p>\n\
         --a--\n\
         --b\n\
         Content-Type: message/rfc822\n\
         \n\
         Subject: forwarded subject\n\
         \n\
         forwarded words\n\
         --b--\n",
    );
    let message = Message::parse(&raw);
    assert!(message.body_contains("plain words"));
    assert!(message.body_contains("html words"));
    assert!(message.body_contains("forwarded words"));
    assert!(!message.body_contains("forwarded subject"));
}

#[test]
fn body_search_skips_attachments_and_the_header() {
    let raw = crlf(
        "Subject: needle in the header\n\
         Content-Type: multipart/mixed; boundary=b\n\
         \n\
         --b\n\
         \n\
         hay\n\
         --b\n\
         Content-Type: application/octet-stream\n\
         \n\
         needle in an attachment\n\
         --b--\n",
    );
    assert!(!Message::parse(&raw).body_contains("needle"));
}

#[test]
fn text_search_covers_header_and_body() {
    let raw = crlf(
        "Subject: =?utf-8?q?h=C3=A9llo?=\n\
         Content-Type: multipart/mixed; boundary=b\n\
         \n\
         --b\n\
         Content-Type: text/plain; name=attached.txt\n\
         \n\
         body words\n\
         --b--\n",
    );
    let message = Message::parse(&raw);
    assert!(message.text_contains("HÉLLO"));
    assert!(message.text_contains("body words"));
    assert!(message.text_contains("attached.txt"));
    assert!(!message.text_contains("absent"));
}

#[test]
fn every_message_contains_the_empty_string() {
    let message = Message::parse(b"");
    assert!(message.body_contains(""));
    assert!(message.text_contains(""));
}

#[test]
fn the_sent_day_is_the_date_fields_day_in_its_own_zone() {
    // 23:30 at -0800 is already the next day in UTC; SENTON compares the day as written.
    let raw = crlf("Date: Wed, 31 Dec 2025 23:30:00 -0800\n\n");
    assert_eq!(Message::parse(&raw).sent_day(), Some(20_453));
    let raw = crlf("Date: 1 Jan 1970 00:00:00 +1400\n\n");
    assert_eq!(Message::parse(&raw).sent_day(), Some(0));
}

#[test]
fn no_date_or_an_unparsable_date_has_no_sent_day() {
    assert_eq!(Message::parse(&crlf("Subject: x\n\n")).sent_day(), None);
    assert_eq!(Message::parse(&crlf("Date: someday\n\n")).sent_day(), None);
}
