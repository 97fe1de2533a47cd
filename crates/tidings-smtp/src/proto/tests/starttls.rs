//! STARTTLS: the handshake step, discarding injected input, and the reset after TLS.

use super::*;

fn starttls_client() -> Client {
    let mut config = config(Mode::Submission);
    config.starttls = true;
    Client::ehlo(config)
}

#[test]
fn starttls_replies_220_then_asks_for_the_handshake() {
    let mut client = starttls_client();
    assert_eq!(client.send(b"STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(client.stop, Stop::StartTls);
    assert_eq!(client.session.poll(), Step::StartTls);
}

#[test]
fn starttls_discards_input_buffered_after_it() {
    let mut client = starttls_client();
    let reply = client.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<ta@mx.example>\r\n");
    assert_eq!(reply, "220 2.0.0 Ready to start TLS\r\n");
    // Bytes arriving before the handshake completes are dropped as well.
    client.session.feed(b"NOOP\r\n");
    client.session.tls_established();
    assert_eq!(client.run(), "");
    assert!(client.session.is_idle());
    assert!(client.requests.is_empty());
}

#[test]
fn after_tls_the_session_starts_over_without_ehlo_or_transaction() {
    let mut client = starttls_client();
    client.send(b"STARTTLS\r\n");
    client.session.tls_established();
    assert_eq!(client.send(b"MAIL FROM:<ta@mx.example>\r\n"), "503 Send HELO/EHLO first\r\n");
    let reply = client.send(b"EHLO client.example\r\n");
    assert!(!reply.contains("STARTTLS"), "{reply}");
    assert!(reply.contains("250-AUTH PLAIN LOGIN\r\n"), "{reply}");
    assert_eq!(client.send(b"AUTH PLAIN AHRhQG14LmV4YW1wbGUAc2VjcmV0\r\n"), "235 2.7.0 Authentication successful\r\n");
    let reply = client.send(b"MAIL FROM:<ta@mx.example>\r\nRCPT TO:<bob@mx.example>\r\nDATA\r\nx\r\n.\r\n");
    assert!(reply.ends_with("250 2.0.0 Ok: queued as Q1\r\n"));
    assert_eq!(client.delivered[0].trace.protocol, "ESMTPSA");
}

#[test]
fn after_tls_a_previous_authentication_is_forgotten() {
    let mut config = config(Mode::Submission);
    config.starttls = true;
    config.plaintext_auth = true;
    let mut client = Client::ehlo(config);
    client.send(b"AUTH PLAIN AHRhQG14LmV4YW1wbGUAc2VjcmV0\r\n");
    client.send(b"STARTTLS\r\n");
    client.session.tls_established();
    client.send(b"EHLO client.example\r\n");
    assert_eq!(client.send(b"MAIL FROM:<ta@mx.example>\r\n"), "530 5.7.0 Authentication required\r\n");
}

#[test]
fn starttls_when_not_offered_is_454() {
    let mut client = Client::mx();
    assert_eq!(client.send(b"STARTTLS\r\n"), "454 4.7.0 TLS not available\r\n");
    assert_eq!(client.stop, Stop::NeedInput);
}

#[test]
fn starttls_on_a_tls_connection_is_503() {
    let mut config = config(Mode::Mx);
    config.tls = true;
    config.starttls = true;
    let mut client = Client::ehlo(config);
    assert_eq!(client.send(b"STARTTLS\r\n"), "503 5.5.1 TLS is already active\r\n");
}

#[test]
fn starttls_with_a_parameter_is_501() {
    let mut client = starttls_client();
    assert_eq!(client.send(b"STARTTLS now\r\n"), "501 5.5.4 Syntax: STARTTLS (no parameters allowed)\r\n");
}
