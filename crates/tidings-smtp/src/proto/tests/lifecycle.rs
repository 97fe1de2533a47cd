//! Closing: EOF, timeouts, shutdown; idleness.

use super::*;

#[test]
fn eof_mid_data_closes_without_delivery() {
    let mut client = Client::mx();
    client.begin();
    client.send(b"DATA\r\npartial message\r\n");
    assert!(client.session.in_content());
    client.session.eof();
    assert_eq!(client.run(), "");
    assert_eq!(client.stop, Stop::Close);
    assert!(client.delivered.is_empty());
}

#[test]
fn eof_drops_buffered_commands() {
    let mut client = Client::mx();
    client.session.feed(b"NOOP\r\n");
    client.session.eof();
    assert_eq!(client.run(), "");
    assert_eq!(client.stop, Stop::Close);
}

#[test]
fn timeout_replies_421_4_4_2_and_closes() {
    let mut client = Client::mx();
    client.session.timeout();
    assert_eq!(client.run(), "421 4.4.2 mx.example Timeout, closing connection\r\n");
    assert_eq!(client.stop, Stop::Close);
}

#[test]
fn timeout_before_ehlo_has_no_enhanced_code() {
    let mut client = Client::connect(config(Mode::Mx));
    client.session.timeout();
    assert_eq!(client.run(), "421 mx.example Timeout, closing connection\r\n");
}

#[test]
fn shutdown_replies_421_4_3_2_and_closes() {
    let mut client = Client::mx();
    assert!(client.session.is_idle());
    client.session.shutdown();
    assert_eq!(client.run(), "421 4.3.2 mx.example Service shutting down\r\n");
    assert_eq!(client.stop, Stop::Close);
    client.session.shutdown();
    client.session.timeout();
    assert_eq!(client.run(), "", "a closed session says nothing more");
}

#[test]
fn a_session_is_not_idle_with_a_partial_line_or_during_data_or_auth() {
    let mut client = Client::mx();
    assert!(client.session.is_idle());
    client.send(b"NOO");
    assert!(!client.session.is_idle());
    client.send(b"P\r\n");
    assert!(client.session.is_idle());
    client.begin();
    assert!(client.session.is_idle(), "an open transaction between commands is idle");
    client.send(b"DATA\r\n");
    assert!(!client.session.is_idle());
    client.send(b".\r\n");
    assert!(client.session.is_idle());
}

#[test]
fn a_session_is_not_idle_during_an_auth_exchange() {
    let mut config = config(Mode::Submission);
    config.plaintext_auth = true;
    let mut client = Client::ehlo(config);
    assert_eq!(client.send(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert!(!client.session.is_idle());
}

#[test]
fn input_after_close_is_ignored() {
    let mut client = Client::mx();
    client.send(b"QUIT\r\n");
    assert_eq!(client.send(b"NOOP\r\n"), "");
    assert_eq!(client.stop, Stop::Close);
}

#[test]
fn refuse_connection_formats_a_421() {
    assert_eq!(
        refuse_connection("mx.example", "Too many connections, try again later"),
        b"421 4.7.0 mx.example Too many connections, try again later\r\n"
    );
}
