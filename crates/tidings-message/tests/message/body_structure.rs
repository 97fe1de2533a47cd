//! BODY and BODYSTRUCTURE (RFC 9051 §7.5.2).

use crate::common::{body, body_structure, crlf};

#[test]
fn a_message_without_content_type_is_us_ascii_text_plain() {
    let raw = crlf("Subject: x\n\nHello\nworld\n");
    assert_eq!(
        body_structure(&raw),
        "(\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 14 2 NIL NIL NIL NIL)"
    );
}

#[test]
fn body_is_bodystructure_without_extension_data() {
    let raw = crlf("Subject: x\n\nHello\n");
    assert_eq!(body(&raw), "(\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 7 1)");
}

#[test]
fn type_subtype_and_parameters_are_as_written() {
    let raw = crlf(
        "Content-Type: Application/PDF; Name=\"Report 1.pdf\"\n\
         Content-Transfer-Encoding: Base64\n\
         \n\
         JVBERi0=\n",
    );
    assert_eq!(
        body_structure(&raw),
        "(\"Application\" \"PDF\" (\"Name\" \"Report 1.pdf\") NIL NIL \"Base64\" 10 \
         NIL NIL NIL NIL)"
    );
}

#[test]
fn text_with_a_charset_keeps_it_and_gets_no_default() {
    let raw = crlf("Content-Type: text/html; charset=UTF-8\n\n<p>x</p>\n");
    assert_eq!(body(&raw), "(\"TEXT\" \"html\" (\"charset\" \"UTF-8\") NIL NIL \"7BIT\" 10 1)");
}

#[test]
fn an_unusable_content_type_is_text_plain() {
    let raw = crlf("Content-Type: garbage\n\nx\n");
    assert_eq!(body(&raw), "(\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 3 1)");
}

#[test]
fn nested_multiparts_are_nested_lists_with_their_subtypes() {
    let raw = crlf(
        "Content-Type: multipart/mixed; boundary=outer\n\
         \n\
         preamble\n\
         --outer\n\
         Content-Type: multipart/alternative; boundary=inner\n\
         \n\
         --inner\n\
         Content-Type: text/plain; charset=utf-8\n\
         \n\
         plain\n\
         --inner\n\
         Content-Type: text/html; charset=utf-8\n\
         \n\
         <b>html</b>\n\
         --inner--\n\
         --outer\n\
         Content-Type: image/png\n\
         Content-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"dot.png\"\n\
         \n\
         iVBORw0KGgo=\n\
         --outer--\n\
         epilogue\n",
    );
    assert_eq!(
        body(&raw),
        "(((\"TEXT\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 5 0)\
         (\"TEXT\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 11 0) \"alternative\")\
         (\"image\" \"png\" NIL NIL NIL \"base64\" 12) \"mixed\")"
    );
    assert_eq!(
        body_structure(&raw),
        "(((\"TEXT\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 5 0 NIL NIL NIL NIL)\
         (\"TEXT\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 11 0 NIL NIL NIL NIL) \
         \"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)\
         (\"image\" \"png\" NIL NIL NIL \"base64\" 12 NIL (\"attachment\" (\"filename\" \"dot.png\")) \
         NIL NIL) \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)"
    );
}

#[test]
fn an_attached_message_has_its_envelope_structure_and_lines() {
    let raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n\
         \n\
         --b\n\
         \n\
         see attached\n\
         --b\n\
         Content-Type: message/rfc822\n\
         \n\
         From: Ann <ann@example.org>\n\
         Subject: inner\n\
         \n\
         inner body\n\
         --b--\n",
    );
    assert_eq!(
        body(&raw),
        "((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 12 0)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 57 \
         (NIL \"inner\" ((\"Ann\" NIL \"ann\" \"example.org\")) ((\"Ann\" NIL \"ann\" \"example.org\")) \
         ((\"Ann\" NIL \"ann\" \"example.org\")) NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 0) 3) \"mixed\")"
    );
}

#[test]
fn parts_of_a_digest_are_messages_by_default() {
    let raw = crlf(
        "Content-Type: multipart/digest; boundary=d\n\
         \n\
         --d\n\
         \n\
         Subject: one\n\
         \n\
         first\n\
         --d--\n",
    );
    assert_eq!(
        body(&raw),
        "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 \
         (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 5 0) 2) \"digest\")"
    );
}

#[test]
fn rfc2231_continuations_are_joined_and_extended_values_stay_encoded() {
    let raw = crlf(
        "Content-Type: application/x-stuff;\n \
         title*0*=us-ascii'en'This%20is%20even%20more%20;\n \
         title*1*=%2A%2A%2Afun%2A%2A%2A%20;\n \
         title*2=\"isn't it!\";\n \
         name*0=\"long\"; name*1=\"name.txt\"\n\
         \n\
         x\n",
    );
    assert_eq!(
        body(&raw),
        "(\"application\" \"x-stuff\" (\"title*\" \
         \"us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!\" \
         \"name\" \"longname.txt\") NIL NIL \"7BIT\" 3)"
    );
}

#[test]
fn extension_data_has_md5_disposition_language_and_location() {
    let raw = crlf(
        "Content-Type: text/plain; charset=us-ascii\n\
         Content-ID: <part1@example.org>\n\
         Content-Description: A  note\n\
         Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\
         Content-Disposition: inline; filename=note.txt\n\
         Content-Language: en-GB, fr\n\
         Content-Location: https://example.org/\n  note.txt\n\
         \n\
         note\n",
    );
    assert_eq!(
        body_structure(&raw),
        "(\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") \"<part1@example.org>\" \"A  note\" \
         \"7BIT\" 6 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"inline\" (\"filename\" \"note.txt\")) \
         (\"en-GB\" \"fr\") \"https://example.org/  note.txt\")"
    );
}

#[test]
fn a_description_is_sent_as_written_not_decoded() {
    let raw = crlf("Content-Description: =?utf-8?q?caf=C3=A9?=\n\nx\n");
    assert!(body(&raw).contains("NIL \"=?utf-8?q?caf=C3=A9?=\" \"7BIT\""));
}

#[test]
fn a_multipart_without_parts_reports_one_empty_text_part() {
    let raw = crlf("Content-Type: multipart/mixed; boundary=b\n\nno delimiter here\n");
    assert_eq!(body(&raw), "((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0) \"mixed\")");
}

#[test]
fn sizes_count_stored_octets_and_lines_count_line_ends() {
    // The CRLF before a delimiter belongs to the delimiter: "a\r\nb" is 4 octets, 1 line end.
    let raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\na\nb\n--b--\n");
    assert_eq!(body(&raw), "((\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 4 1) \"mixed\")");
}

#[test]
fn a_message_with_only_a_header_has_an_empty_body() {
    let raw = crlf("Subject: no body\n");
    assert_eq!(body(&raw), "(\"TEXT\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0)");
}
