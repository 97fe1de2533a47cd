//! DATA content: end-of-data detection, dot-unstuffing, smuggling, and the content checks.

use super::*;

const DATA_OK: &str = "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as Q1\r\n";

/// Sends a transaction whose DATA content is `content` (which must include the end marker).
fn send_message(client: &mut Client, content: &[u8]) -> String {
    client.begin();
    let mut input = b"DATA\r\n".to_vec();
    input.extend_from_slice(content);
    client.send(&input)
}

#[test]
fn dot_stuffed_lines_keep_one_dot() {
    let mut client = Client::mx();
    assert_eq!(send_message(&mut client, b"..one\r\n...\r\n.x\r\n.\r\n"), DATA_OK);
    assert_eq!(client.delivered_data(), b".one\r\n..\r\nx\r\n");
}

#[test]
fn smuggling_sequences_do_not_end_data() {
    for sequence in [&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n"] {
        for policy in [BareLineEnding::Reject, BareLineEnding::Normalize] {
            let mut config = config(Mode::Mx);
            config.bare_line_ending = policy;
            let mut client = Client::ehlo(config);
            client.begin();
            let mut input = b"DATA\r\nSubject: one\r\n\r\nbody".to_vec();
            input.extend_from_slice(sequence);
            input.extend_from_slice(b"MAIL FROM:<smuggled@evil.example>\r\nRCPT TO:<bob@mx.example>\r\nDATA\r\n");
            let reply = client.send(&input);
            assert_eq!(reply, "354 End data with <CR><LF>.<CR><LF>\r\n", "{sequence:?} {policy:?}");
            assert!(client.session.in_content());
            assert_eq!(client.requests.len(), 1, "no command after {sequence:?} was acted on");
            let reply = client.send(b"\r\n.\r\n");
            let expected = match policy {
                BareLineEnding::Reject => {
                    "550 5.6.0 Message refused: bare CR or LF found; lines must end with CRLF (RFC 5321 section 2.3.8)\r\n"
                }
                BareLineEnding::Normalize => "250 2.0.0 Ok: queued as Q1\r\n",
            };
            assert_eq!(reply, expected, "{sequence:?} {policy:?}");
            if policy == BareLineEnding::Normalize {
                let data = client.delivered_data();
                assert!(data.windows(9).any(|w| w == b"MAIL FROM"), "{sequence:?}");
                assert!(data.ends_with(b"DATA\r\n\r\n"), "{sequence:?}");
            }
        }
    }
}

#[test]
fn bare_lf_in_content_is_rejected_with_550_under_the_default_policy() {
    let mut client = Client::mx();
    let reply = send_message(&mut client, b"line one\nline two\r\n.\r\n");
    assert_eq!(
        reply,
        "354 End data with <CR><LF>.<CR><LF>\r\n\
         550 5.6.0 Message refused: bare CR or LF found; lines must end with CRLF (RFC 5321 section 2.3.8)\r\n"
    );
    assert!(client.delivered.is_empty());
    assert_eq!(client.send(b"NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

#[test]
fn bare_lf_and_cr_are_stored_as_crlf_under_the_normalize_policy() {
    let mut config = config(Mode::Mx);
    config.bare_line_ending = BareLineEnding::Normalize;
    let mut client = Client::ehlo(config);
    assert_eq!(send_message(&mut client, b"one\ntwo\rthree\r\n.\r\n"), DATA_OK);
    assert_eq!(client.delivered_data(), b"one\r\ntwo\r\nthree\r\n");
}

#[test]
fn nul_octets_make_the_message_refused() {
    let mut client = Client::mx();
    assert_eq!(
        send_message(&mut client, b"a\0b\r\n.\r\n"),
        "354 End data with <CR><LF>.<CR><LF>\r\n550 5.6.0 Message refused: NUL octets are not allowed in mail\r\n"
    );
    assert!(client.delivered.is_empty());
}

#[test]
fn a_content_line_over_the_limit_is_refused_naming_the_limit() {
    let mut client = Client::mx();
    let mut content = vec![b'x'; 1500];
    content.extend_from_slice(b"\r\n.\r\n");
    assert_eq!(
        send_message(&mut client, &content),
        "354 End data with <CR><LF>.<CR><LF>\r\n550 5.6.0 Message refused: a line is longer than 1000 octets \
         including CRLF (RFC 5321 section 4.5.3.1.6)\r\n"
    );
}

#[test]
fn content_over_the_size_limit_is_refused_with_552_after_the_end() {
    let mut config = config(Mode::Mx);
    config.limits.message_bytes_max = 100;
    let mut client = Client::ehlo(config);
    client.begin();
    assert_eq!(client.send(b"DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    for _ in 0..50 {
        assert_eq!(client.send(&[b"0123456789".repeat(7).as_slice(), b"\r\n"].concat()), "");
    }
    assert_eq!(client.send(b".\r\n"), "552 5.3.4 Message size exceeds fixed maximum message size of 100 octets\r\n");
    assert!(client.delivered.is_empty());
    assert_eq!(client.send(b"MAIL FROM:<a@b.example>\r\n"), "250 2.1.0 Sender <a@b.example> ok\r\n");
}

#[test]
fn more_received_fields_than_the_limit_are_refused_as_a_loop() {
    let mut config = config(Mode::Mx);
    config.limits.received_fields_max = 3;
    let mut client = Client::ehlo(config);
    let content = b"Received: a\r\nReceived: b\r\nReceived: c\r\nReceived: d\r\nSubject: x\r\n\r\nbody\r\n.\r\n";
    assert_eq!(
        send_message(&mut client, content),
        "354 End data with <CR><LF>.<CR><LF>\r\n554 5.4.6 Message refused: more than 3 Received header fields, \
         probably a mail loop\r\n"
    );
}

#[test]
fn received_fields_up_to_the_limit_are_accepted() {
    let mut config = config(Mode::Mx);
    config.limits.received_fields_max = 3;
    let mut client = Client::ehlo(config);
    let content = b"Received: a\r\nReceived: b\r\nReceived: c\r\n\r\nReceived: in the body\r\n.\r\n";
    assert_eq!(send_message(&mut client, content), DATA_OK);
}

#[test]
fn content_split_across_many_feeds_is_reassembled() {
    let mut client = Client::mx();
    client.begin();
    client.send(b"DATA\r\n");
    let content = b"Subject: split\r\n\r\n..dot\r\nend\r\n.\r\n";
    let mut output = String::new();
    for octet in content.chunks(1) {
        output.push_str(&client.send(octet));
    }
    assert_eq!(output, "250 2.0.0 Ok: queued as Q1\r\n");
    assert_eq!(client.delivered_data(), b"Subject: split\r\n\r\n.dot\r\nend\r\n");
}

#[test]
fn the_transcript_summarises_message_content() {
    let mut client = Client::mx();
    client.session.take_transcript();
    send_message(&mut client, b"hello\r\n.\r\n");
    assert_eq!(
        client.session.take_transcript(),
        [
            "C: MAIL FROM:<sender@client.example>",
            "S: 250 2.1.0 Sender <sender@client.example> ok",
            "C: RCPT TO:<ta@mx.example>",
            "S: 250 2.1.5 Recipient <ta@mx.example> ok",
            "C: DATA",
            "S: 354 End data with <CR><LF>.<CR><LF>",
            "C: <message data, 7 octets>",
            "S: 250 2.0.0 Ok: queued as Q1",
        ]
    );
}

#[test]
fn the_transcript_is_empty_unless_enabled() {
    let mut config = config(Mode::Mx);
    config.transcript = false;
    let mut client = Client::ehlo(config);
    client.send(b"NOOP\r\n");
    assert!(client.session.take_transcript().is_empty());
}
