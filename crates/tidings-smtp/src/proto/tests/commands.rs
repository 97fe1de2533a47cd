//! Greeting, HELO/EHLO, the simple commands, command syntax and sequencing.

use super::*;

#[test]
fn greeting_names_the_host() {
    // `Client::connect` checks the exact greeting.
    let client = Client::connect(config(Mode::Mx));
    assert_eq!(client.stop, Stop::NeedInput);
}

#[test]
fn ehlo_lists_extensions_without_starttls_or_auth_on_a_plain_connection() {
    let mut client = Client::connect(config(Mode::Mx));
    assert_eq!(client.send(b"EHLO client.example\r\n"), EHLO_REPLY_PLAIN);
}

#[test]
fn ehlo_offers_starttls_before_tls_but_not_auth() {
    let mut config = config(Mode::Submission);
    config.starttls = true;
    let mut client = Client::connect(config);
    let reply = client.send(b"EHLO client.example\r\n");
    assert!(reply.contains("250-STARTTLS\r\n"), "{reply}");
    assert!(!reply.contains("AUTH"), "{reply}");
    assert!(reply.ends_with("250-STARTTLS\r\n250 HELP\r\n"), "{reply}");
}

#[test]
fn ehlo_offers_auth_and_not_starttls_on_an_implicit_tls_connection() {
    let mut config = config(Mode::Submission);
    config.tls = true;
    config.starttls = true;
    let mut client = Client::connect(config);
    let reply = client.send(b"EHLO client.example\r\n");
    assert!(!reply.contains("STARTTLS"), "{reply}");
    assert!(reply.ends_with("250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"), "{reply}");
}

#[test]
fn ehlo_offers_auth_without_tls_only_when_plaintext_auth_is_allowed() {
    let mut config = config(Mode::Submission);
    config.plaintext_auth = true;
    let mut client = Client::connect(config);
    assert!(client.send(b"EHLO client.example\r\n").contains("250-AUTH PLAIN LOGIN\r\n"));
}

#[test]
fn ehlo_advertises_the_configured_size_limit() {
    let mut config = config(Mode::Mx);
    config.limits.message_bytes_max = 1000;
    let mut client = Client::connect(config);
    assert!(client.send(b"EHLO client.example\r\n").contains("250-SIZE 1000\r\n"));
}

#[test]
fn helo_gets_a_plain_reply_and_no_enhanced_status_codes_afterwards() {
    let mut client = Client::connect(config(Mode::Mx));
    assert_eq!(client.send(b"HELO client.example\r\n"), "250 mx.example Hello client.example\r\n");
    assert_eq!(client.send(b"NOOP\r\n"), "250 Ok\r\n");
    assert_eq!(client.send(b"MAIL FROM:<a@client.example>\r\n"), "250 Sender <a@client.example> ok\r\n");
    assert_eq!(client.send(b"FOO\r\n"), "500 Command not recognized\r\n");
}

#[test]
fn mail_parameters_after_helo_are_refused_with_555() {
    let mut client = Client::connect(config(Mode::Mx));
    client.send(b"HELO client.example\r\n");
    assert_eq!(
        client.send(b"MAIL FROM:<a@client.example> SIZE=10\r\n"),
        "555 MAIL parameters are not recognized after HELO\r\n"
    );
}

#[test]
fn helo_and_ehlo_without_an_argument_are_rejected_with_501() {
    let mut client = Client::connect(config(Mode::Mx));
    assert_eq!(client.send(b"EHLO\r\n"), "501 Syntax: EHLO hostname\r\n");
    assert_eq!(client.send(b"HELO \r\n"), "501 Syntax: HELO hostname\r\n");
}

#[test]
fn enhanced_status_codes_are_absent_before_ehlo() {
    let mut client = Client::connect(config(Mode::Mx));
    assert_eq!(client.send(b"NOOP\r\n"), "250 Ok\r\n");
    assert_eq!(client.send(b"MAIL FROM:<a@b.example>\r\n"), "503 Send HELO/EHLO first\r\n");
}

#[test]
fn ehlo_resets_a_transaction_in_progress() {
    let mut client = Client::mx();
    client.begin();
    client.send(b"EHLO client.example\r\n");
    assert_eq!(client.send(b"DATA\r\n"), "503 5.5.1 Need MAIL command first\r\n");
}

#[test]
fn commands_are_case_insensitive() {
    let mut client = Client::connect(config(Mode::Mx));
    assert!(client.send(b"ehlo client.example\r\n").starts_with("250-mx.example"));
    assert_eq!(
        client.send(b"mail from:<a@b.example>\r\nRcPt To:<ta@mx.example>\r\n"),
        "250 2.1.0 Sender <a@b.example> ok\r\n250 2.1.5 Recipient <ta@mx.example> ok\r\n"
    );
}

#[test]
fn a_bare_lf_also_ends_a_command_line() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"NOOP\nRSET\n"), "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
}

#[test]
fn unknown_command_is_rejected_with_500() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"FROBNICATE now\r\n"), "500 5.5.2 Command not recognized\r\n");
    assert_eq!(client.send(b"\r\n"), "500 5.5.2 Command not recognized\r\n");
}

#[test]
fn binary_junk_gets_500_replies_and_the_session_stays_usable() {
    let mut client = Client::mx();
    let reply = client.send(b"\xff\xfe\x00\x01junk\r\nNO\x00OP\r\n");
    assert_eq!(reply, "500 5.5.2 Command not recognized (not UTF-8)\r\n500 5.5.2 Command not recognized\r\n");
    assert_eq!(client.send(b"NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

#[test]
fn noop_accepts_arguments() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"NOOP anything at all\r\n"), "250 2.0.0 Ok\r\n");
}

#[test]
fn rset_clears_the_transaction() {
    let mut client = Client::mx();
    client.begin();
    assert_eq!(client.send(b"RSET\r\n"), "250 2.0.0 Ok\r\n");
    assert_eq!(client.send(b"RCPT TO:<ta@mx.example>\r\n"), "503 5.5.1 Need MAIL command first\r\n");
}

#[test]
fn vrfy_neither_confirms_nor_denies_users() {
    let mut client = Client::mx();
    assert_eq!(
        client.send(b"VRFY ta\r\n"),
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    );
    assert!(client.requests.is_empty());
}

#[test]
fn expn_is_not_supported() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"EXPN staff\r\n"), "502 5.5.1 EXPN is not supported\r\n");
}

#[test]
fn multi_line_help_reply_carries_the_enhanced_code_on_every_line() {
    let mut client = Client::mx();
    let reply = client.send(b"HELP\r\n");
    let lines: Vec<&str> = reply.split_terminator("\r\n").collect();
    assert!(lines.len() > 1);
    for line in &lines[..lines.len() - 1] {
        assert!(line.starts_with("214-2.0.0 "), "{line}");
    }
    assert!(lines[lines.len() - 1].starts_with("214 2.0.0 "));
}

#[test]
fn quit_replies_221_and_closes() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"QUIT\r\nNOOP\r\n"), "221 2.0.0 mx.example Bye\r\n");
    assert_eq!(client.stop, Stop::Close);
    assert_eq!(client.session.poll(), Step::Close);
}

#[test]
fn out_of_sequence_commands_get_503() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"RCPT TO:<ta@mx.example>\r\n"), "503 5.5.1 Need MAIL command first\r\n");
    assert_eq!(client.send(b"DATA\r\n"), "503 5.5.1 Need MAIL command first\r\n");
    client.begin();
    assert_eq!(client.send(b"MAIL FROM:<a@b.example>\r\n"), "503 5.5.1 Nested MAIL command\r\n");
}

#[test]
fn a_ten_kilobyte_command_line_is_refused_without_being_buffered_and_the_session_stays_usable() {
    let mut client = Client::mx();
    let mut output = String::new();
    output.push_str(&client.send(b"NOOP "));
    for _ in 0..10 {
        output.push_str(&client.send(&[b'x'; 1024]));
        assert!(client.session.buffered_input_bytes() <= 4096 + 1024);
    }
    output.push_str(&client.send(b"\r\nNOOP\r\n"));
    assert_eq!(output, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
    assert_eq!(client.stop, Stop::NeedInput);
}

#[test]
fn a_complete_overlong_line_in_one_feed_is_refused() {
    let mut client = Client::mx();
    let mut line = b"NOOP ".to_vec();
    line.extend_from_slice(&[b'y'; 10_000]);
    line.extend_from_slice(b"\r\nRSET\r\n");
    assert_eq!(client.send(&line), "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
}

#[test]
fn a_line_at_the_limit_is_accepted() {
    let mut client = Client::mx();
    let mut line = b"NOOP ".to_vec();
    line.resize(4094, b'z');
    line.extend_from_slice(b"\r\n");
    assert_eq!(line.len(), 4096);
    assert_eq!(client.send(&line), "250 2.0.0 Ok\r\n");
}

#[test]
fn too_many_errors_close_the_session_with_421() {
    let mut client = Client::mx();
    let errors_max = Limits::default().errors_max as usize;
    let reply = client.send(&b"BAD\r\n".repeat(errors_max + 2));
    assert_eq!(
        reply,
        format!(
            "{}421 4.7.0 mx.example Too many errors\r\n",
            "500 5.5.2 Command not recognized\r\n".repeat(errors_max)
        )
    );
    assert_eq!(client.stop, Stop::Close);
}

#[test]
fn failed_recipients_count_as_errors_too() {
    let mut config = config(Mode::Mx);
    config.limits.errors_max = 2;
    let mut client = Client::ehlo(config);
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    let reply =
        client.send(b"RCPT TO:<nobody@mx.example>\r\nRCPT TO:<else@other.example>\r\nRCPT TO:<ta@mx.example>\r\n");
    assert!(
        reply.ends_with("550 5.7.1 <else@other.example>: Relaying denied\r\n421 4.7.0 mx.example Too many errors\r\n"),
        "{reply}"
    );
    assert_eq!(client.requests.len(), 2);
}

#[test]
fn replies_to_pipelined_commands_are_flushed_in_bounded_pieces() {
    let mut client = Client::mx();
    let said = client.send(&b"EHLO again.example\r\n".repeat(5000));
    assert_eq!(said.matches("250-mx.example Hello again.example\r\n").count(), 5000);
    assert!(client.flushes > 0, "the session asked for flushes");
    assert!(
        client.largest_flush < tidings_core::OUTPUT_BYTES_HIGH_WATER + 1024,
        "at most one reply past the high-water mark ({} octets)",
        client.largest_flush
    );
    assert_eq!(client.stop, Stop::NeedInput);
}
