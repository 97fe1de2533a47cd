//! MAIL and RCPT: envelopes, recipients, relaying, and a whole transaction.

use super::*;

#[test]
fn a_full_transaction_is_delivered_with_its_envelope_and_trace() {
    let mut client = Client::mx();
    client.begin();
    assert_eq!(client.send(b"DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert!(client.session.in_content());
    assert_eq!(client.send(b"Subject: hi\r\n\r\nhello\r\n.\r\n"), "250 2.0.0 Ok: queued as Q1\r\n");
    assert!(!client.session.in_content());
    let delivered = &client.delivered[0];
    assert_eq!(delivered.reverse_path, Some(address("sender@client.example")));
    assert_eq!(delivered.recipients, [address("ta@mx.example")]);
    assert_eq!(delivered.data, b"Subject: hi\r\n\r\nhello\r\n");
    assert_eq!(delivered.body, BodyType::SevenBit);
    assert!(!delivered.smtputf8);
    assert_eq!(
        delivered.trace,
        Trace {
            helo: "client.example".into(),
            peer: "192.0.2.7".parse().unwrap(),
            hostname: HOST.into(),
            protocol: "ESMTP",
            recipient: Some(address("ta@mx.example")),
        }
    );
}

#[test]
fn pipelined_mail_rcpt_rcpt_data_in_one_feed_get_their_replies_in_one_batch() {
    let mut client = Client::mx();
    let reply =
        client.send(b"MAIL FROM:<a@client.example>\r\nRCPT TO:<ta@mx.example>\r\nRCPT TO:<bob@mx.example>\r\nDATA\r\n");
    assert_eq!(
        reply,
        "250 2.1.0 Sender <a@client.example> ok\r\n250 2.1.5 Recipient <ta@mx.example> ok\r\n\
         250 2.1.5 Recipient <bob@mx.example> ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    assert_eq!(client.send(b"x\r\n.\r\nQUIT\r\n"), "250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 mx.example Bye\r\n");
    assert_eq!(client.delivered[0].recipients, [address("ta@mx.example"), address("bob@mx.example")]);
    assert_eq!(client.delivered[0].trace.recipient, None);
}

#[test]
fn a_whole_transaction_in_one_feed_is_delivered() {
    let mut client = Client::mx();
    let reply = client.send(b"MAIL FROM:<>\r\nRCPT TO:<ta@mx.example>\r\nDATA\r\nbounce\r\n.\r\nNOOP\r\n");
    assert!(reply.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok\r\n"));
    assert_eq!(client.delivered[0].reverse_path, None);
}

#[test]
fn a_request_blocks_later_pipelined_commands_until_resolved() {
    let mut client = Client::mx();
    client.session.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<ta@mx.example>\r\nNOOP\r\n");
    let step = client.session.poll();
    assert!(matches!(step, Step::Request(Request::CheckRecipient { .. })), "{step:?}");
    assert!(!client.session.is_idle());
    assert_eq!(client.session.take_output(), b"250 2.1.0 Sender <a@b.example> ok\r\n");
    client.session.resolve(Response::Recipient(RcptVerdict::Local(address("ta@mx.example"))));
    assert_eq!(client.run(), "250 2.1.5 Recipient <ta@mx.example> ok\r\n250 2.0.0 Ok\r\n");
}

#[test]
fn mail_from_with_bad_address_syntax_is_rejected_with_501() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"MAIL FROM:a@b.example\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
    assert_eq!(client.send(b"MAIL FROM:<a@@b>\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
    assert_eq!(client.send(b"MAIL FROM:<postmaster>\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
    assert_eq!(client.send(b"MAIL TO:<a@b.example>\r\n"), "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]\r\n");
}

#[test]
fn mail_from_accepts_a_space_before_the_path() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"MAIL FROM: <a@b.example>\r\n"), "250 2.1.0 Sender <a@b.example> ok\r\n");
}

#[test]
fn mail_from_with_an_unknown_parameter_is_rejected_with_555() {
    let mut client = Client::mx();
    assert_eq!(
        client.send(b"MAIL FROM:<a@b.example> RET=FULL\r\n"),
        "555 5.5.4 MAIL parameter RET is not recognized\r\n"
    );
}

#[test]
fn mail_from_with_a_malformed_parameter_value_is_rejected_with_501() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"MAIL FROM:<a@b.example> SIZE=ten\r\n"), "501 5.5.4 Bad value for MAIL parameter SIZE\r\n");
    assert_eq!(
        client.send(b"MAIL FROM:<a@b.example> BODY=9BIT\r\n"),
        "501 5.5.4 Bad value for MAIL parameter BODY\r\n"
    );
}

#[test]
fn mail_from_accepts_size_body_smtputf8_and_auth_parameters() {
    let mut client = Client::mx();
    assert_eq!(
        client.send(b"MAIL FROM:<a@b.example> size=100 BODY=8bitmime SMTPUTF8 AUTH=<>\r\n"),
        "250 2.1.0 Sender <a@b.example> ok\r\n"
    );
    client.send(b"RCPT TO:<ta@mx.example>\r\nDATA\r\nx\r\n.\r\n");
    assert_eq!(client.delivered[0].body, BodyType::EightBitMime);
    assert!(client.delivered[0].smtputf8);
    assert_eq!(client.delivered[0].trace.protocol, "UTF8SMTP");
}

#[test]
fn mail_from_with_a_size_over_the_limit_is_rejected_with_552() {
    let mut client = Client::mx();
    assert_eq!(
        client.send(b"MAIL FROM:<a@b.example> SIZE=26214401\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size of 26214400 octets\r\n"
    );
    assert_eq!(
        client.send(b"MAIL FROM:<a@b.example> SIZE=99999999999999999999999\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size of 26214400 octets\r\n"
    );
    assert_eq!(client.send(b"MAIL FROM:<a@b.example> SIZE=26214400\r\n"), "250 2.1.0 Sender <a@b.example> ok\r\n");
}

#[test]
fn non_ascii_sender_without_smtputf8_is_rejected_with_553() {
    let mut client = Client::mx();
    assert_eq!(
        client.send("MAIL FROM:<jörg@bücher.example>\r\n".as_bytes()),
        "553 5.6.7 Non-ASCII sender address needs the SMTPUTF8 parameter\r\n"
    );
    assert_eq!(
        client.send("MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".as_bytes()),
        "250 2.1.0 Sender <jörg@bücher.example> ok\r\n"
    );
}

#[test]
fn non_ascii_recipient_needs_smtputf8_in_mail_from() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(
        client.send("RCPT TO:<jörg@mx.example>\r\n".as_bytes()),
        "553 5.6.7 Non-ASCII recipient address needs SMTPUTF8 in MAIL FROM\r\n"
    );
}

#[test]
fn rcpt_to_unknown_local_user_is_rejected_with_550() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(
        client.send(b"RCPT TO:<nobody@mx.example>\r\n"),
        "550 5.1.1 <nobody@mx.example>: Recipient address rejected: no such user\r\n"
    );
}

#[test]
fn rcpt_to_another_domain_without_auth_is_relaying_denied() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(
        client.send(b"RCPT TO:<victim@elsewhere.example>\r\n"),
        "550 5.7.1 <victim@elsewhere.example>: Relaying denied\r\n"
    );
    assert_eq!(client.send(b"DATA\r\n"), "554 5.5.1 No valid recipients\r\n");
}

#[test]
fn rcpt_to_another_domain_after_auth_says_outbound_is_not_supported_yet() {
    let mut config = config(Mode::Mx);
    config.tls = true;
    let mut client = Client::ehlo(config);
    assert_eq!(client.send(b"AUTH PLAIN AHRhQG14LmV4YW1wbGUAc2VjcmV0\r\n"), "235 2.7.0 Authentication successful\r\n");
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    let reply = client.send(b"RCPT TO:<friend@elsewhere.example>\r\n");
    assert!(
        reply.starts_with("550 5.7.1 <friend@elsewhere.example>: Relaying to other domains is not supported yet"),
        "{reply}"
    );
}

#[test]
fn rcpt_temporary_failure_is_451() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(
        client.send(b"RCPT TO:<tempfail@mx.example>\r\n"),
        "451 4.3.0 <tempfail@mx.example>: Temporary failure checking recipient, try again later\r\n"
    );
}

#[test]
fn rcpt_to_postmaster_without_a_domain_is_checked_as_postmaster() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(client.send(b"RCPT TO:<Postmaster>\r\n"), "250 2.1.5 Recipient <postmaster> ok\r\n");
    assert_eq!(client.requests.last().map(String::as_str), Some("CheckRecipient { path: Postmaster }"));
}

#[test]
fn rcpt_to_the_null_path_or_with_parameters_is_refused() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(client.send(b"RCPT TO:<>\r\n"), "501 5.1.3 Bad recipient address syntax\r\n");
    assert_eq!(
        client.send(b"RCPT TO:<ta@mx.example> NOTIFY=NEVER\r\n"),
        "555 5.5.4 RCPT parameters are not recognized\r\n"
    );
    assert_eq!(client.send(b"RCPT <ta@mx.example>\r\n"), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    assert!(client.requests.is_empty());
}

#[test]
fn recipients_are_canonical_and_duplicates_are_removed() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<TA@MX.example>\r\nRCPT TO:<alias@mx.example>\r\n");
    client.send(b"RCPT TO:<bob@mx.example>\r\nRCPT TO:<ta@mx.example>\r\nDATA\r\nx\r\n.\r\n");
    assert_eq!(client.delivered[0].recipients, [address("ta@mx.example"), address("bob@mx.example")]);
}

#[test]
fn a_recipient_over_a_configured_limit_gets_452_and_the_others_are_delivered() {
    let mut config = config(Mode::Mx);
    config.limits.recipients_max = 2;
    let mut client = Client::ehlo(config);
    let reply = client.send(
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<ta@mx.example>\r\nRCPT TO:<bob@mx.example>\r\nRCPT TO:<postmaster>\r\n",
    );
    assert!(reply.ends_with("250 2.1.5 Recipient <bob@mx.example> ok\r\n452 4.5.3 Too many recipients\r\n"), "{reply}");
    assert_eq!(client.requests.len(), 2, "the recipient over the limit is not even checked");
    assert_eq!(
        client.send(b"DATA\r\nx\r\n.\r\n"),
        "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as Q1\r\n"
    );
    assert_eq!(client.delivered[0].recipients.len(), 2);
}

#[test]
fn the_hundred_and_first_recipient_gets_452_by_default() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    // The test resolver knows few users, so these checks are answered by hand.
    let mut replies = String::new();
    for index in 0..101 {
        client.session.feed(format!("RCPT TO:<u{index}@mx.example>\r\n").as_bytes());
        match client.session.poll() {
            Step::Request(Request::CheckRecipient { path: Path::Mailbox(rcpt) }) => {
                client.session.resolve(Response::Recipient(RcptVerdict::Local(rcpt)));
                assert_eq!(client.session.poll(), Step::NeedInput);
            }
            Step::NeedInput => {}
            other => panic!("{other:?}"),
        }
        replies = String::from_utf8_lossy(&client.session.take_output()).into_owned();
    }
    assert_eq!(replies, "452 4.5.3 Too many recipients\r\n");
}

#[test]
fn delivery_temporary_failure_is_451_and_resets_the_transaction() {
    let mut client = Client::mx();
    client.delivery = DeliveryVerdict::TempFail { reason: "Store busy, try again later".into() };
    client.begin();
    assert_eq!(
        client.send(b"DATA\r\nx\r\n.\r\n"),
        "354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 Store busy, try again later\r\n"
    );
    assert_eq!(client.send(b"DATA\r\n"), "503 5.5.1 Need MAIL command first\r\n");
}

#[test]
fn delivery_permanent_failure_is_554_and_resets_the_transaction() {
    let mut client = Client::mx();
    client.delivery = DeliveryVerdict::PermFail { reason: "Mailbox full".into() };
    client.begin();
    assert_eq!(client.send(b"DATA\r\nx\r\n.\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n554 5.3.0 Mailbox full\r\n");
    assert_eq!(client.send(b"MAIL FROM:<a@b.example>\r\n"), "250 2.1.0 Sender <a@b.example> ok\r\n");
}

#[test]
fn data_with_arguments_is_a_syntax_error() {
    let mut client = Client::mx();
    client.begin();
    assert_eq!(client.send(b"DATA now\r\n"), "501 5.5.4 Syntax: DATA\r\n");
}
