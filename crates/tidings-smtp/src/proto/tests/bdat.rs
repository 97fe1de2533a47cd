//! BDAT (RFC 3030 CHUNKING).

use super::*;

#[test]
fn bdat_chunks_are_assembled_and_delivered() {
    let mut client = Client::mx();
    client.begin();
    assert_eq!(client.send(b"BDAT 14\r\nSubject: x\r\n\r\n"), "250 2.0.0 14 octets received\r\n");
    assert_eq!(client.send(b"BDAT 7 LAST\r\n.body\r\n"), "250 2.0.0 Ok: queued as Q1\r\n");
    assert_eq!(client.delivered_data(), b"Subject: x\r\n\r\n.body\r\n", "no dot-unstuffing in BDAT");
}

#[test]
fn a_bdat_chunk_split_across_feeds_is_consumed_exactly() {
    let mut client = Client::mx();
    client.begin();
    assert_eq!(client.send(b"BDAT 11 LAST\r\nhel"), "");
    assert!(client.session.in_content());
    assert_eq!(client.send(b"lo\r\n"), "");
    assert_eq!(client.send(b"ok\r\nNOOP\r\n"), "250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok\r\n");
    assert_eq!(client.delivered_data(), b"hello\r\nok\r\n");
}

#[test]
fn pipelined_bdat_chunks_in_one_feed_are_all_answered() {
    let mut client = Client::mx();
    let reply =
        client.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<ta@mx.example>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\nQUIT\r\n");
    assert_eq!(
        reply,
        "250 2.1.0 Sender <a@b.example> ok\r\n250 2.1.5 Recipient <ta@mx.example> ok\r\n250 2.0.0 3 octets received\r\n\
         250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 mx.example Bye\r\n"
    );
    assert_eq!(client.delivered_data(), b"abc\r\n", "a final CRLF is appended");
}

#[test]
fn bdat_without_a_transaction_is_consumed_then_refused_with_503() {
    let mut client = Client::mx();
    assert_eq!(
        client.send(b"BDAT 6 LAST\r\nNOOP\r\nRSET\r\n"),
        "503 5.5.1 BDAT needs EHLO, MAIL and at least one accepted RCPT\r\n250 2.0.0 Ok\r\n"
    );
}

#[test]
fn bdat_without_accepted_recipients_is_consumed_then_refused_with_503() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<nobody@mx.example>\r\n");
    assert_eq!(
        client.send(b"BDAT 4 LAST\r\nQUIT"),
        "503 5.5.1 BDAT needs EHLO, MAIL and at least one accepted RCPT\r\n"
    );
    assert_eq!(client.stop, Stop::NeedInput);
}

#[test]
fn data_after_bdat_in_one_transaction_is_503() {
    let mut client = Client::mx();
    client.begin();
    client.send(b"BDAT 3\r\nabc");
    assert_eq!(client.send(b"DATA\r\n"), "503 5.5.1 DATA is not allowed after BDAT\r\n");
}

#[test]
fn bdat_chunks_over_the_size_limit_are_consumed_and_refused_with_552() {
    let mut config = config(Mode::Mx);
    config.limits.message_bytes_max = 10;
    let mut client = Client::ehlo(config);
    client.begin();
    assert_eq!(client.send(b"BDAT 8\r\n12345678"), "250 2.0.0 8 octets received\r\n");
    assert_eq!(
        client.send(b"BDAT 8\r\n12345678"),
        "552 5.3.4 Message size exceeds fixed maximum message size of 10 octets\r\n"
    );
    assert_eq!(
        client.send(b"BDAT 8 LAST\r\n12345678NOOP\r\n"),
        "503 5.5.1 BDAT needs EHLO, MAIL and at least one accepted RCPT\r\n250 2.0.0 Ok\r\n"
    );
    assert!(client.delivered.is_empty());
}

#[test]
fn bdat_last_after_mail_with_an_oversized_size_is_consumed_and_refused() {
    let mut config = config(Mode::Mx);
    config.limits.message_bytes_max = 10;
    let mut client = Client::ehlo(config);
    let reply = client
        .send(b"MAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<ta@mx.example>\r\nBDAT 12 LAST\r\n0123456789\r\nNOOP\r\n");
    assert_eq!(
        reply,
        "552 5.3.4 Message size exceeds fixed maximum message size of 10 octets\r\n\
         503 5.5.1 Need MAIL command first\r\n\
         503 5.5.1 BDAT needs EHLO, MAIL and at least one accepted RCPT\r\n\
         250 2.0.0 Ok\r\n"
    );
    assert!(client.requests.is_empty());
}

#[test]
fn bdat_content_gets_the_data_checks_at_last() {
    let mut client = Client::mx();
    client.begin();
    assert_eq!(
        client.send(b"BDAT 6 LAST\r\nbare\nx"),
        "550 5.6.0 Message refused: bare CR or LF found; lines must end with CRLF (RFC 5321 section 2.3.8)\r\n"
    );
    client.begin();
    assert_eq!(
        client.send(b"BDAT 5 LAST\r\na\0b\r\n"),
        "550 5.6.0 Message refused: NUL octets are not allowed in mail\r\n"
    );
}

#[test]
fn bdat_with_a_bad_size_is_501_and_closes() {
    let mut client = Client::mx();
    client.begin();
    assert_eq!(
        client.send(b"BDAT ten LAST\r\nwhatever"),
        "501 5.5.4 Syntax: BDAT size [LAST]; closing the connection\r\n"
    );
    assert_eq!(client.stop, Stop::Close);
}

#[test]
fn the_transcript_summarises_each_chunk() {
    let mut client = Client::mx();
    client.begin();
    client.session.take_transcript();
    client.send(b"BDAT 3 LAST\r\nabc");
    assert_eq!(
        client.session.take_transcript(),
        ["C: BDAT 3 LAST", "C: <message data, 3 octets>", "S: 250 2.0.0 Ok: queued as Q1"]
    );
}
