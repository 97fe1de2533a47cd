//! AUTH PLAIN and LOGIN, and the submission rules that depend on it.

use super::*;

const PLAIN_TA: &str = "AHRhQG14LmV4YW1wbGUAc2VjcmV0"; // "\0ta@mx.example\0secret"
const PLAIN_TA_WITH_AUTHZID: &str = "dGFAbXguZXhhbXBsZQB0YUBteC5leGFtcGxlAHNlY3JldA=="; // "ta@…\0ta@…\0secret"
const PLAIN_OTHER_AUTHZID: &str = "Ym9iQG14LmV4YW1wbGUAdGFAbXguZXhhbXBsZQBzZWNyZXQ="; // "bob@…\0ta@…\0secret"
const PLAIN_WRONG: &str = "AHRhQG14LmV4YW1wbGUAd3Jvbmc="; // "\0ta@mx.example\0wrong"
const PLAIN_TEMPFAIL: &str = "AHRlbXBmYWlsAHg="; // "\0tempfail\0x"
const LOGIN_USER: &str = "dGFAbXguZXhhbXBsZQ=="; // "ta@mx.example"
const LOGIN_PASSWORD: &str = "c2VjcmV0"; // "secret"

/// A submission session over TLS, after EHLO.
fn submission() -> Client {
    let mut config = config(Mode::Submission);
    config.tls = true;
    Client::ehlo(config)
}

fn line(text: &str) -> Vec<u8> {
    format!("{text}\r\n").into_bytes()
}

#[test]
fn auth_plain_with_an_initial_response_succeeds_with_235() {
    let mut client = submission();
    assert_eq!(client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}"))), "235 2.7.0 Authentication successful\r\n");
    assert_eq!(client.requests, [r#"Authenticate { authcid: "ta@mx.example", password: "<redacted>" }"#]);
}

#[test]
fn auth_plain_after_an_empty_challenge_succeeds() {
    let mut client = submission();
    assert_eq!(client.send(b"AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(client.send(&line(PLAIN_TA)), "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn auth_plain_with_an_authzid_equal_to_the_authcid_succeeds() {
    let mut client = submission();
    assert_eq!(
        client.send(&line(&format!("auth plain {PLAIN_TA_WITH_AUTHZID}"))),
        "235 2.7.0 Authentication successful\r\n"
    );
}

#[test]
fn auth_plain_with_another_authzid_is_refused_with_535() {
    let mut client = submission();
    assert_eq!(
        client.send(&line(&format!("AUTH PLAIN {PLAIN_OTHER_AUTHZID}"))),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert!(client.requests.is_empty());
}

#[test]
fn auth_plain_with_a_wrong_password_is_refused_with_535() {
    let mut client = submission();
    assert_eq!(
        client.send(&line(&format!("AUTH PLAIN {PLAIN_WRONG}"))),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(client.send(b"MAIL FROM:<ta@mx.example>\r\n"), "530 5.7.0 Authentication required\r\n");
}

#[test]
fn auth_plain_with_an_empty_initial_response_is_malformed() {
    let mut client = submission();
    assert_eq!(client.send(b"AUTH PLAIN =\r\n"), "501 5.5.2 Malformed PLAIN authentication response\r\n");
}

#[test]
fn auth_temporary_failure_is_454() {
    let mut client = submission();
    assert_eq!(
        client.send(&line(&format!("AUTH PLAIN {PLAIN_TEMPFAIL}"))),
        "454 4.7.0 Temporary authentication failure, try again later\r\n"
    );
}

#[test]
fn auth_login_prompts_for_user_name_then_password() {
    let mut client = submission();
    assert_eq!(client.send(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(client.send(&line(LOGIN_USER)), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(client.send(&line(LOGIN_PASSWORD)), "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn auth_login_with_the_user_name_as_initial_response_prompts_for_the_password() {
    let mut client = submission();
    assert_eq!(client.send(&line(&format!("AUTH LOGIN {LOGIN_USER}"))), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(client.send(&line(LOGIN_PASSWORD)), "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn auth_login_pipelined_in_one_feed_succeeds() {
    let mut client = submission();
    let reply = client.send(&line(&format!("AUTH LOGIN\r\n{LOGIN_USER}\r\n{LOGIN_PASSWORD}")));
    assert_eq!(reply, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n");
}

#[test]
fn a_star_cancels_the_exchange_with_501() {
    let mut client = submission();
    client.send(b"AUTH LOGIN\r\n");
    assert_eq!(client.send(b"*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
    assert_eq!(client.send(b"NOOP\r\n"), "250 2.0.0 Ok\r\n");
    assert!(client.requests.is_empty());
}

#[test]
fn invalid_base64_is_rejected_with_501() {
    let mut client = submission();
    assert_eq!(
        client.send(b"AUTH PLAIN !!notbase64!!\r\n"),
        "501 5.5.2 Invalid base64 data in authentication response\r\n"
    );
    client.send(b"AUTH PLAIN\r\n");
    assert_eq!(client.send(b"%%%\r\n"), "501 5.5.2 Invalid base64 data in authentication response\r\n");
}

#[test]
fn auth_before_ehlo_is_out_of_sequence() {
    let mut config = config(Mode::Submission);
    config.tls = true;
    let mut client = Client::connect(config);
    assert_eq!(client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}"))), "503 Send EHLO first\r\n");
}

#[test]
fn auth_when_already_authenticated_is_out_of_sequence() {
    let mut client = submission();
    client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}")));
    assert_eq!(client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}"))), "503 5.5.1 Already authenticated\r\n");
}

#[test]
fn auth_during_a_transaction_is_out_of_sequence() {
    let mut client = Client::mx();
    client.send(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(client.send(b"AUTH LOGIN\r\n"), "503 5.5.1 AUTH is not allowed during a mail transaction\r\n");
}

#[test]
fn an_unknown_mechanism_is_rejected_with_504() {
    let mut client = submission();
    assert_eq!(client.send(b"AUTH CRAM-MD5\r\n"), "504 5.5.4 Unrecognized authentication mechanism\r\n");
}

#[test]
fn auth_without_tls_is_refused_with_538_unless_plaintext_is_allowed() {
    let mut client = Client::ehlo(config(Mode::Submission));
    assert_eq!(
        client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}"))),
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    );
    assert!(client.requests.is_empty());
    let mut config = config(Mode::Submission);
    config.plaintext_auth = true;
    let mut client = Client::ehlo(config);
    assert_eq!(client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}"))), "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn the_transcript_never_records_credentials() {
    let mut client = submission();
    client.session.take_transcript();
    client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}")));
    client.send(b"RSET\r\nAUTH LOGIN\r\n");
    let mut client2 = submission();
    client2.send(b"AUTH LOGIN\r\n");
    client2.send(&line(LOGIN_USER));
    client2.send(&line(LOGIN_PASSWORD));
    client2.send(&line("AUTH dGFAbXguZXhhbXBsZQ=="));
    let first = client.session.take_transcript();
    assert_eq!(first[0], "C: AUTH PLAIN <redacted>");
    let second = client2.session.take_transcript().join("\n");
    assert!(
        second
            .contains("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: <redacted>\nS: 334 UGFzc3dvcmQ6\nC: <redacted>\nS: 235"),
        "{second}"
    );
    assert!(second.contains("C: AUTH <redacted>"), "{second}");
    for secret in [PLAIN_TA, LOGIN_USER, LOGIN_PASSWORD, "secret"] {
        assert!(!first.join("\n").contains(secret) && !second.contains(secret), "{secret} leaked");
    }
}

#[test]
fn submission_requires_auth_before_mail_with_530() {
    let mut client = submission();
    assert_eq!(client.send(b"MAIL FROM:<ta@mx.example>\r\n"), "530 5.7.0 Authentication required\r\n");
}

#[test]
fn submission_refuses_a_sender_the_account_does_not_own_with_553() {
    let mut client = submission();
    client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}")));
    assert_eq!(
        client.send(b"MAIL FROM:<bob@mx.example>\r\n"),
        "553 5.7.1 Sender address <bob@mx.example> is not owned by <ta@mx.example>\r\n"
    );
    assert_eq!(client.requests.last().map(String::as_str), Some("CheckSender { address: <bob@mx.example> }"));
}

#[test]
fn submission_refuses_the_null_sender() {
    let mut client = submission();
    client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}")));
    assert_eq!(client.send(b"MAIL FROM:<>\r\n"), "553 5.7.1 The null sender <> is not allowed for submission\r\n");
}

#[test]
fn submission_by_the_owner_is_delivered_as_esmtpsa() {
    let mut client = submission();
    client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}")));
    let reply = client.send(b"MAIL FROM:<TA@mx.example>\r\nRCPT TO:<bob@mx.example>\r\nDATA\r\nhi\r\n.\r\n");
    assert!(reply.ends_with("250 2.0.0 Ok: queued as Q1\r\n"), "{reply}");
    assert_eq!(client.delivered[0].trace.protocol, "ESMTPSA");
}

#[test]
fn submission_to_another_domain_says_outbound_is_not_supported_yet() {
    let mut client = submission();
    client.send(&line(&format!("AUTH PLAIN {PLAIN_TA}")));
    client.send(b"MAIL FROM:<ta@mx.example>\r\n");
    let reply = client.send(b"RCPT TO:<friend@elsewhere.example>\r\n");
    assert!(reply.starts_with("550 5.7.1 <friend@elsewhere.example>: Relaying to other domains is not supported yet"));
}

#[test]
fn an_overlong_auth_continuation_line_aborts_the_exchange() {
    let mut client = submission();
    client.send(b"AUTH PLAIN\r\n");
    let mut long = vec![b'A'; 5000];
    long.extend_from_slice(b"\r\nNOOP\r\n");
    assert_eq!(client.send(&long), "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
}

#[test]
fn credentials_sent_after_a_refused_auth_are_not_recorded_either() {
    let mut client = Client::ehlo(config(Mode::Submission));
    client.session.take_transcript();
    let reply = client.send(&line(&format!("AUTH LOGIN\r\n{LOGIN_USER}\r\n{LOGIN_PASSWORD}\r\nNOOP")));
    assert!(reply.starts_with("538 5.7.11"), "{reply}");
    let transcript = client.session.take_transcript();
    assert_eq!(transcript.iter().filter(|line| *line == "C: <redacted>").count(), 2, "{transcript:?}");
    assert!(transcript.contains(&"C: NOOP".to_string()));
}
