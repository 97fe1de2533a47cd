//! LOGIN and AUTHENTICATE PLAIN (RFC 9051 §6.2, RFC 4959), and keeping secrets out of the
//! transcript.

use super::*;

/// base64 of `\0alice\0secret`.
const ALICE_PLAIN: &str = "AGFsaWNlAHNlY3JldA==";

#[test]
fn login_with_good_credentials_authenticates() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    let output = chat(&mut session, &mut store, "a1 LOGIN alice secret\r\n");
    assert!(output.starts_with("a1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+"), "{output}");
    assert!(output.ends_with("] Logged in\r\n"));
    assert_eq!(session.account(), Some("alice@example.org"));
    assert_eq!(store.log, [Request::Authenticate { user: "alice".into(), password: "secret".into() }]);
}

#[test]
fn login_with_quoted_and_literal_arguments() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    let output = chat(&mut session, &mut store, "a1 LOGIN \"alice\" {6}\r\n");
    assert_eq!(output, "+ Ready for literal data\r\n");
    let output = chat(&mut session, &mut store, "secret\r\n");
    assert!(output.starts_with("a1 OK "), "{output}");
}

#[test]
fn login_with_bad_credentials_is_refused() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    let output = chat(&mut session, &mut store, "a1 LOGIN alice nope\r\n");
    assert_eq!(output, "a1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
    assert_eq!(session.account(), None);
}

#[test]
fn a_directory_that_cannot_answer_gives_unavailable() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    let output = chat(&mut session, &mut store, "a1 LOGIN later pw\r\n");
    assert_eq!(output, "a1 NO [UNAVAILABLE] Authentication is not available now; try again later\r\n");
}

#[test]
fn plaintext_login_before_tls_is_refused_without_asking_the_directory() {
    let mut config = config();
    config.plaintext_auth = false;
    let mut store = FakeStore::new();
    let mut session = session_with(config);
    let output = chat(&mut session, &mut store, "a1 LOGIN alice secret\r\n");
    assert_eq!(output, "a1 NO [PRIVACYREQUIRED] LOGIN is disabled before TLS; use STARTTLS\r\n");
    let output = chat(&mut session, &mut store, &format!("a2 AUTHENTICATE PLAIN {ALICE_PLAIN}\r\n"));
    assert!(output.starts_with("a2 NO [PRIVACYREQUIRED]"), "{output}");
    assert!(store.log.is_empty());
}

#[test]
fn logins_are_allowed_on_a_tls_connection() {
    let mut config = config();
    config.plaintext_auth = false;
    config.tls = true;
    let mut store = FakeStore::new();
    let mut session = session_with(config);
    assert!(chat(&mut session, &mut store, "a1 LOGIN alice secret\r\n").starts_with("a1 OK "));
}

#[test]
fn authenticate_plain_with_an_initial_response() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    let output = chat(&mut session, &mut store, &format!("a1 AUTHENTICATE PLAIN {ALICE_PLAIN}\r\n"));
    assert!(output.starts_with("a1 OK [CAPABILITY "), "{output}");
    let output = chat(&mut session, &mut store, "a2 NOOP\r\n");
    assert_eq!(output, "a2 OK NOOP completed\r\n", "back to commands after the exchange");
}

#[test]
fn authenticate_plain_with_a_continuation() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "a1 AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    let output = chat(&mut session, &mut store, &format!("{ALICE_PLAIN}\r\n"));
    assert!(output.starts_with("a1 OK [CAPABILITY "), "{output}");
    assert_eq!(session.account(), Some("alice@example.org"));
}

#[test]
fn authenticate_can_be_cancelled() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    chat(&mut session, &mut store, "a1 AUTHENTICATE PLAIN\r\n");
    assert_eq!(chat(&mut session, &mut store, "*\r\n"), "a1 BAD Authentication cancelled\r\n");
    assert_eq!(chat(&mut session, &mut store, "a2 NOOP\r\n"), "a2 OK NOOP completed\r\n");
}

#[test]
fn authenticate_with_bad_base64_is_bad() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    chat(&mut session, &mut store, "a1 AUTHENTICATE PLAIN\r\n");
    assert_eq!(chat(&mut session, &mut store, "not base64!\r\n"), "a1 BAD Invalid base64 in the SASL response\r\n");
    assert_eq!(chat(&mut session, &mut store, "a2 NOOP\r\n"), "a2 OK NOOP completed\r\n");
}

#[test]
fn authenticate_with_another_mechanism_is_refused() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    let output = chat(&mut session, &mut store, "a1 AUTHENTICATE CRAM-MD5\r\n");
    assert_eq!(output, "a1 NO [CANNOT] Unsupported mechanism; use PLAIN\r\n");
    assert_eq!(chat(&mut session, &mut store, "a2 NOOP\r\n"), "a2 OK NOOP completed\r\n");
}

#[test]
fn authenticate_as_someone_else_is_refused() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    // base64 of `admin\0alice\0secret`
    let output = chat(&mut session, &mut store, "a1 AUTHENTICATE PLAIN YWRtaW4AYWxpY2UAc2VjcmV0\r\n");
    assert_eq!(output, "a1 NO [AUTHENTICATIONFAILED] Logging in as another user is not allowed\r\n");
    assert!(store.log.is_empty());
}

#[test]
fn transcripts_never_show_passwords_or_sasl_data() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    chat(&mut session, &mut store, "a1 LOGIN alice wrongpass\r\n");
    chat(&mut session, &mut store, "a2 LOGIN alice {9}\r\n");
    chat(&mut session, &mut store, "wrongpass\r\n");
    chat(&mut session, &mut store, &format!("a3 AUTHENTICATE PLAIN {ALICE_PLAIN}\r\n"));
    let mut session2 = session_with(config());
    chat(&mut session2, &mut store, "b1 AUTHENTICATE PLAIN\r\n");
    chat(&mut session2, &mut store, &format!("{ALICE_PLAIN}\r\n"));
    chat(&mut session2, &mut store, "b2 LOGIN alice secret extra junk\r\n");
    let transcript = [session.take_transcript(), session2.take_transcript()].concat();
    let all = transcript.join("\n");
    assert!(!all.contains("wrongpass") && !all.contains("secret") && !all.contains(ALICE_PLAIN), "{all}");
    assert!(transcript.contains(&"C: a1 LOGIN <redacted>".to_owned()), "{all}");
    assert!(transcript.contains(&"C: a3 AUTHENTICATE PLAIN <redacted>".to_owned()), "{all}");
    assert!(transcript.contains(&"C: <redacted>".to_owned()), "{all}");
    assert!(transcript.contains(&"C: b2 LOGIN <redacted>".to_owned()), "{all}");
}

#[test]
fn request_debug_redacts_the_password() {
    let request = Request::Authenticate { user: "alice".into(), password: "secret".into() };
    let debug = format!("{request:?}");
    assert!(debug.contains("alice") && !debug.contains("secret"), "{debug}");
}
