//! ENVELOPE (RFC 9051 §7.5.2).

use crate::common::{crlf, envelope};

#[test]
fn envelope_strings_are_the_field_values_as_written() {
    let raw = crlf(
        "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\n\
         From: Fred Foobar <foobar@Blurdybloop.example>\n\
         Subject: =?iso-8859-1?q?caf=E9?= time\n\
         To: mooch@owatagu.siam.example\n\
         Cc: Ann <ann@example.org>, bob@example.org\n\
         Bcc: eve@example.org\n\
         In-Reply-To: <parent@example.org>\n\
         Message-ID: <B27397-0100000@Blurdybloop.example>\n\
         \n\
         Hello\n",
    );
    assert_eq!(
        envelope(&raw),
        "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"=?iso-8859-1?q?caf=E9?= time\" \
         ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
         ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
         ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
         ((NIL NIL \"mooch\" \"owatagu.siam.example\")) \
         ((\"Ann\" NIL \"ann\" \"example.org\")(NIL NIL \"bob\" \"example.org\")) \
         ((NIL NIL \"eve\" \"example.org\")) \
         \"<parent@example.org>\" \"<B27397-0100000@Blurdybloop.example>\")"
    );
}

#[test]
fn absent_fields_are_nil() {
    let raw = crlf("X-Other: 1\n\nbody\n");
    assert_eq!(envelope(&raw), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

#[test]
fn absent_or_empty_sender_and_reply_to_are_the_from() {
    let raw = crlf("From: a@example.org\nSender:\nSubject: x\n\n");
    assert_eq!(
        envelope(&raw),
        "(NIL \"x\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) \
         ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL)"
    );
}

#[test]
fn sender_and_reply_to_are_their_own_when_present() {
    let raw = crlf("From: a@example.org\nSender: s@example.org\nReply-To: r@example.org\n\n");
    assert_eq!(
        envelope(&raw),
        "(NIL NIL ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"s\" \"example.org\")) \
         ((NIL NIL \"r\" \"example.org\")) NIL NIL NIL NIL NIL)"
    );
}

#[test]
fn an_empty_subject_is_an_empty_string_not_nil() {
    let raw = crlf("Subject:\n\n");
    assert!(envelope(&raw).starts_with("(NIL \"\" NIL"));
}

#[test]
fn folded_fields_are_unfolded() {
    let raw = crlf("Subject: a long\n   subject\nTo: \"Doe,\n John\" <john@example.org>\n\n");
    assert_eq!(
        envelope(&raw),
        "(NIL \"a long   subject\" NIL NIL NIL ((\"Doe, John\" NIL \"john\" \"example.org\")) \
         NIL NIL NIL NIL)"
    );
}

#[test]
fn the_first_of_repeated_fields_counts() {
    let raw = crlf("Subject: one\nSubject: two\n\n");
    assert!(envelope(&raw).starts_with("(NIL \"one\" "));
}

#[test]
fn groups_are_written_in_rfc9051_group_syntax() {
    let raw = crlf("To: A Group: a@example.org, \"B\" <b@example.org>;, c@example.org\n\n");
    assert_eq!(
        envelope(&raw),
        "(NIL NIL NIL NIL NIL ((NIL NIL \"A Group\" NIL)(NIL NIL \"a\" \"example.org\")\
         (\"B\" NIL \"b\" \"example.org\")(NIL NIL NIL NIL)(NIL NIL \"c\" \"example.org\")) \
         NIL NIL NIL NIL)"
    );
}

#[test]
fn an_empty_group_is_a_start_and_an_end() {
    let raw = crlf("To: undisclosed-recipients:;\n\n");
    assert_eq!(
        envelope(&raw),
        "(NIL NIL NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
         NIL NIL NIL NIL)"
    );
}

#[test]
fn an_unterminated_group_is_closed() {
    let raw = crlf("Cc: friends: a@example.org\n\n");
    assert!(envelope(&raw).contains("((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"example.org\")(NIL NIL NIL NIL))"));
}

#[test]
fn quoting_is_removed_from_names_and_local_parts() {
    let raw = crlf("From: \"Joe \\\"Q\\\" Public\" <\"joe public\"@example.org>\n\n");
    assert!(envelope(&raw).contains(r#"(("Joe \"Q\" Public" NIL "joe public" "example.org"))"#));
}

#[test]
fn an_unquoted_phrase_keeps_its_words_and_dots() {
    let raw = crlf("From: John Q. Public <jqp@example.org>\n\n");
    assert!(envelope(&raw).contains("((\"John Q. Public\" NIL \"jqp\" \"example.org\"))"));
}

#[test]
fn a_comment_names_an_address_that_has_no_phrase() {
    let raw = crlf("From: john@example.org (John Doe)\n\n");
    assert!(envelope(&raw).contains("((\"John Doe\" NIL \"john\" \"example.org\"))"));
}

#[test]
fn encoded_words_in_names_are_not_decoded() {
    let raw = crlf("From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\n\n");
    assert!(envelope(&raw).contains("((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"example.org\"))"));
}

#[test]
fn a_source_route_is_the_adl() {
    let raw = crlf("From: Joe <@a.example,@b.example:joe@c.example>\n\n");
    assert!(envelope(&raw).contains("((\"Joe\" \"@a.example,@b.example\" \"joe\" \"c.example\"))"));
}

#[test]
fn a_domain_literal_is_the_host() {
    let raw = crlf("From: joe@[192.0.2.1]\n\n");
    assert!(envelope(&raw).contains("((NIL NIL \"joe\" \"[192.0.2.1]\"))"));
}

#[test]
fn a_missing_domain_or_local_part_is_marked_as_dovecot_does() {
    let raw = crlf("From: postmaster\nTo: <@example.org>\n\n");
    let envelope = envelope(&raw);
    assert!(envelope.contains("((NIL NIL \"postmaster\" \"MISSING_DOMAIN\"))"));
    assert!(envelope.contains("((NIL NIL \"MISSING_MAILBOX\" \"example.org\"))"));
}

#[test]
fn eight_bit_field_values_are_sent_as_literals() {
    let raw = [&b"Subject: caf\xc3\xa9\r\n\r\n"[..]].concat();
    assert_eq!(envelope(&raw), "(NIL {5}\r\ncaf\u{e9} NIL NIL NIL NIL NIL NIL NIL NIL)");
}

#[test]
fn field_names_are_matched_case_insensitively() {
    let raw = crlf("SUBJECT: x\nfrom: a@example.org\n\n");
    assert!(envelope(&raw).starts_with("(NIL \"x\" ((NIL NIL \"a\" \"example.org\"))"));
}

#[test]
fn the_envelope_ignores_the_body() {
    let raw = crlf("X: 1\n\nSubject: not a header\n");
    assert_eq!(envelope(&raw), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}
