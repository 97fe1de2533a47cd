//! AUTHORIZATION state: greeting, CAPA, USER/PASS, AUTH PLAIN, STLS, and what the driver answers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

fn capa(session: &mut Session) -> Vec<String> {
    let output = chat(session, "CAPA\r\n");
    let lines: Vec<String> = output.split("\r\n").map(str::to_owned).collect();
    assert_eq!(lines.first().map(String::as_str), Some("+OK Capability list follows"));
    assert_eq!(lines[lines.len() - 2..], [".", ""], "multi-line response ends with a dot line");
    lines[1..lines.len() - 2].to_vec()
}

#[test]
fn greeting_names_the_host() {
    let mut session = Session::new(SessionConfig::new("mx.example.net"));
    assert_eq!(session.poll(), Step::NeedInput);
    assert_eq!(session.take_output(), b"+OK mx.example.net POP3 server ready\r\n");
}

#[test]
fn capa_lists_the_extensions_in_authorization() {
    assert_eq!(
        capa(&mut session()),
        ["TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION tidings"]
    );
}

#[test]
fn capa_offers_stls_before_tls() {
    let mut config = config();
    config.stls = true;
    assert!(capa(&mut session_with(config)).contains(&"STLS".to_owned()));
}

#[test]
fn capa_without_plaintext_permission_hides_user_and_sasl_plain() {
    let mut config = config();
    config.plaintext_auth = false;
    config.stls = true;
    let capabilities = capa(&mut session_with(config));
    assert!(!capabilities.contains(&"USER".to_owned()));
    assert!(!capabilities.contains(&"SASL PLAIN".to_owned()));
    assert!(capabilities.contains(&"STLS".to_owned()));
}

#[test]
fn capa_after_stls_handshake_lists_user_and_no_stls() {
    let mut config = config();
    config.plaintext_auth = false;
    config.stls = true;
    let mut session = session_with(config);
    let (step, output) = step(&mut session, "STLS\r\n");
    assert_eq!((step, output.as_str()), (Step::StartTls, "+OK Begin TLS negotiation\r\n"));
    session.tls_established();
    let capabilities = capa(&mut session);
    assert!(!capabilities.contains(&"STLS".to_owned()));
    assert!(capabilities.contains(&"USER".to_owned()));
    assert!(capabilities.contains(&"SASL PLAIN".to_owned()));
}

#[test]
fn capa_under_implicit_tls_lists_user_and_no_stls() {
    let mut config = config();
    config.plaintext_auth = false;
    config.stls = true;
    config.tls = true;
    let capabilities = capa(&mut session_with(config));
    assert!(!capabilities.contains(&"STLS".to_owned()));
    assert!(capabilities.contains(&"USER".to_owned()));
}

#[test]
fn capa_after_login_does_not_offer_stls() {
    let mut config = config();
    config.stls = true;
    let mut session = session_with(config);
    login(&mut session);
    let capabilities = capa(&mut session);
    assert!(!capabilities.contains(&"STLS".to_owned()));
    assert!(capabilities.contains(&"TOP".to_owned()));
}

#[test]
fn user_then_pass_asks_the_driver_to_authenticate_and_reports_the_maildrop() {
    let mut session = session();
    assert_eq!(chat(&mut session, "USER alice\r\n"), "+OK User name accepted, send PASS\r\n");
    let (step, output) = step(&mut session, "PASS secret\r\n");
    assert_eq!(output, "");
    assert_eq!(step, Step::Request(Request::Authenticate { user: "alice".into(), password: "secret".into() }));
    assert_eq!(session.account(), None);
    let (step, output) = resolve(&mut session, Response::LoggedIn(listing()));
    assert_eq!((step, output.as_str()), (Step::NeedInput, "+OK Logged in, 3 messages (120 octets)\r\n"));
    assert_eq!(session.account(), Some("alice"));
}

#[test]
fn login_to_an_empty_maildrop_reports_zero_messages() {
    let mut session = session();
    step(&mut session, "USER bob\r\nPASS pw\r\n");
    let (_, output) = resolve(&mut session, Response::LoggedIn(Vec::new()));
    assert_eq!(output, "+OK Logged in, 0 messages (0 octets)\r\n");
    assert_eq!(chat(&mut session, "STAT\r\n"), "+OK 0 0\r\n");
}

#[test]
fn password_is_the_rest_of_the_line_spaces_included() {
    let mut session = session();
    let (step, _) = step(&mut session, "USER alice\r\nPASS  correct horse \r\n");
    assert_eq!(step, Step::Request(Request::Authenticate { user: "alice".into(), password: " correct horse ".into() }));
}

#[test]
fn password_with_many_spaces_is_taken_whole() {
    let mut session = session();
    let (step, _) = step(&mut session, "USER alice\r\nPASS a b c d e\r\n");
    assert_eq!(step, Step::Request(Request::Authenticate { user: "alice".into(), password: "a b c d e".into() }));
}

#[test]
fn unknown_command_with_many_arguments_is_just_unknown() {
    let mut session = session();
    assert_eq!(chat(&mut session, "XAUTH a b c d\r\n"), "-ERR Unknown command\r\n");
}

#[test]
fn auth_with_too_many_arguments_is_a_syntax_error() {
    let mut session = session();
    assert_eq!(chat(&mut session, "AUTH PLAIN a b\r\n"), "-ERR Syntax: AUTH [mechanism [initial-response]]\r\n");
}

#[test]
fn wrong_password_gets_the_auth_response_code_and_stays_in_authorization() {
    let mut session = session();
    step(&mut session, "USER alice\r\nPASS wrong\r\n");
    let (step, output) = resolve(&mut session, Response::AuthFailed);
    assert_eq!((step, output.as_str()), (Step::NeedInput, "-ERR [AUTH] Invalid credentials\r\n"));
    assert_eq!(session.account(), None);
    assert!(chat(&mut session, "STAT\r\n").starts_with("-ERR Not logged in"));
    login(&mut session);
}

#[test]
fn second_session_on_locked_maildrop_gets_in_use() {
    let mut session = session();
    step(&mut session, "USER alice\r\nPASS secret\r\n");
    let (_, output) = resolve(&mut session, Response::InUse);
    assert_eq!(output, "-ERR [IN-USE] Maildrop is locked by another session\r\n");
    assert_eq!(session.account(), None);
}

#[test]
fn store_failure_at_login_gets_sys_temp() {
    let mut session = session();
    step(&mut session, "USER alice\r\nPASS secret\r\n");
    let (_, output) = resolve(&mut session, Response::TempFail);
    assert!(output.starts_with("-ERR [SYS/TEMP] "), "{output}");
}

#[test]
fn pass_without_user_is_refused() {
    let mut session = session();
    assert_eq!(chat(&mut session, "PASS secret\r\n"), "-ERR PASS must come right after a successful USER\r\n");
}

#[test]
fn pass_must_come_right_after_user() {
    let mut session = session();
    chat(&mut session, "USER alice\r\nNOOP\r\n");
    assert_eq!(chat(&mut session, "PASS secret\r\n"), "-ERR PASS must come right after a successful USER\r\n");
}

#[test]
fn user_without_a_name_is_a_syntax_error() {
    let mut session = session();
    assert_eq!(chat(&mut session, "USER\r\n"), "-ERR Syntax: USER name\r\n");
}

#[test]
fn plaintext_login_without_tls_is_refused_when_not_allowed() {
    let mut config = config();
    config.plaintext_auth = false;
    config.stls = true;
    let mut session = session_with(config);
    let refusal = "-ERR [SYS/PERM] Plaintext authentication requires TLS; send STLS first\r\n";
    assert_eq!(chat(&mut session, "USER alice\r\n"), refusal);
    assert_eq!(chat(&mut session, "PASS secret\r\n"), "-ERR PASS must come right after a successful USER\r\n");
    assert_eq!(chat(&mut session, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"), refusal);
}

#[test]
fn plaintext_login_without_stls_on_offer_says_it_is_not_allowed_here() {
    let mut config = config();
    config.plaintext_auth = false;
    let mut session = session_with(config);
    assert_eq!(
        chat(&mut session, "USER alice\r\n"),
        "-ERR [SYS/PERM] Plaintext authentication is not allowed on this connection\r\n"
    );
}

#[test]
fn an_overlong_line_between_user_and_pass_voids_the_user() {
    let mut session = session();
    chat(&mut session, "USER alice\r\n");
    assert_eq!(chat(&mut session, &format!("{}\r\n", "x".repeat(5000))), "-ERR Line too long\r\n");
    assert_eq!(chat(&mut session, "PASS x\r\n"), "-ERR PASS must come right after a successful USER\r\n");
}

#[test]
fn an_overlong_sasl_response_ends_the_exchange() {
    let mut session = session();
    chat(&mut session, "AUTH PLAIN\r\n");
    assert_eq!(chat(&mut session, &format!("{}\r\n", "QUFB".repeat(2000))), "-ERR Line too long\r\n");
    assert!(session.is_idle());
    assert_eq!(chat(&mut session, "*\r\n"), "-ERR Unknown command\r\n");
}

#[test]
fn plaintext_login_is_allowed_under_implicit_tls() {
    let mut config = config();
    config.plaintext_auth = false;
    config.tls = true;
    let mut session = session_with(config);
    login(&mut session);
}

#[test]
fn auth_plain_with_initial_response_logs_in() {
    let mut session = session();
    let response = STANDARD.encode("\0alice\0secret");
    let (step, output) = step(&mut session, &format!("AUTH PLAIN {response}\r\n"));
    assert_eq!(output, "");
    assert_eq!(step, Step::Request(Request::Authenticate { user: "alice".into(), password: "secret".into() }));
    let (_, output) = resolve(&mut session, Response::LoggedIn(listing()));
    assert_eq!(output, "+OK Logged in, 3 messages (120 octets)\r\n");
}

#[test]
fn auth_plain_without_initial_response_sends_a_continuation() {
    let mut session = session();
    assert_eq!(chat(&mut session, "auth plain\r\n"), "+ \r\n");
    assert!(!session.is_idle(), "a SASL exchange is in progress");
    let (step, _) = step(&mut session, &format!("{}\r\n", STANDARD.encode("alice\0alice\0s p")));
    assert_eq!(step, Step::Request(Request::Authenticate { user: "alice".into(), password: "s p".into() }));
}

#[test]
fn auth_plain_star_cancels_the_exchange() {
    let mut session = session();
    chat(&mut session, "AUTH PLAIN\r\n");
    assert_eq!(chat(&mut session, "*\r\n"), "-ERR Authentication cancelled\r\n");
    assert!(session.is_idle());
    assert!(chat(&mut session, "NOOP\r\n").starts_with("-ERR Not logged in"));
}

#[test]
fn auth_plain_equals_sign_is_an_empty_initial_response_which_is_malformed() {
    let mut session = session();
    assert!(chat(&mut session, "AUTH PLAIN =\r\n").starts_with("-ERR [AUTH] Malformed PLAIN response"));
}

#[test]
fn auth_plain_for_another_authorization_identity_is_refused() {
    let mut session = session();
    let response = STANDARD.encode("admin\0alice\0secret");
    let output = chat(&mut session, &format!("AUTH PLAIN {response}\r\n"));
    assert!(output.starts_with("-ERR [AUTH] Authorization identity must be empty"), "{output}");
}

#[test]
fn auth_plain_with_bad_base64_is_refused() {
    let mut session = session();
    assert_eq!(chat(&mut session, "AUTH PLAIN !!!!\r\n"), "-ERR Invalid base64 in SASL response\r\n");
    chat(&mut session, "AUTH PLAIN\r\n");
    assert_eq!(chat(&mut session, "%%%\r\n"), "-ERR Invalid base64 in SASL response\r\n");
}

#[test]
fn auth_without_a_mechanism_lists_plain() {
    let mut session = session();
    assert_eq!(chat(&mut session, "AUTH\r\n"), "+OK Supported mechanisms follow\r\nPLAIN\r\n.\r\n");
}

#[test]
fn auth_with_an_unknown_mechanism_is_refused() {
    let mut session = session();
    assert_eq!(
        chat(&mut session, "AUTH CRAM-MD5\r\n"),
        "-ERR Unsupported authentication mechanism; this server offers PLAIN\r\n"
    );
}

#[test]
fn apop_is_refused_with_a_pointer_to_what_works() {
    let mut session = session();
    assert!(chat(&mut session, "APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n").starts_with("-ERR APOP is not"));
}

#[test]
fn stls_discards_input_buffered_after_it() {
    let mut config = config();
    config.stls = true;
    let mut session = session_with(config);
    let (step, output) = step(&mut session, "STLS\r\nUSER mallory\r\nPASS injected\r\n");
    assert_eq!((step, output.as_str()), (Step::StartTls, "+OK Begin TLS negotiation\r\n"));
    assert_eq!(session.poll(), Step::NeedInput);
    session.feed(b"QUIT\r\n");
    session.tls_established();
    assert!(session.is_idle());
    assert_eq!(session.poll(), Step::NeedInput);
    assert_eq!(session.take_output(), b"");
    assert_eq!(chat(&mut session, "PASS x\r\n"), "-ERR PASS must come right after a successful USER\r\n");
}

#[test]
fn stls_forgets_a_user_given_before_it() {
    let mut config = config();
    config.stls = true;
    let mut session = session_with(config);
    chat(&mut session, "USER alice\r\n");
    step(&mut session, "STLS\r\n");
    session.tls_established();
    assert_eq!(chat(&mut session, "PASS x\r\n"), "-ERR PASS must come right after a successful USER\r\n");
}

#[test]
fn stls_is_refused_when_not_offered() {
    let mut session = session();
    assert_eq!(chat(&mut session, "STLS\r\n"), "-ERR STLS is not available on this server\r\n");
}

#[test]
fn stls_is_refused_under_tls() {
    let mut config = config();
    config.stls = true;
    config.tls = true;
    let mut session = session_with(config);
    assert_eq!(chat(&mut session, "STLS\r\n"), "-ERR Already using TLS\r\n");
}

#[test]
fn authorization_commands_after_login_are_refused() {
    let mut session = logged_in();
    for command in ["USER bob", "PASS x", "AUTH PLAIN", "STLS", "APOP a b"] {
        let output = chat(&mut session, &format!("{command}\r\n"));
        assert!(output.starts_with("-ERR Already logged in: "), "{command}: {output}");
    }
}

#[test]
fn transaction_commands_before_login_are_refused() {
    let mut session = session();
    for command in ["STAT", "LIST", "UIDL", "RETR 1", "TOP 1 1", "DELE 1", "NOOP", "RSET"] {
        let keyword = command.split(' ').next().unwrap_or_default();
        let output = chat(&mut session, &format!("{command}\r\n"));
        assert_eq!(output, format!("-ERR Not logged in: {keyword} is valid only after authentication\r\n"));
    }
}

#[test]
fn quit_in_authorization_signs_off_and_closes() {
    let mut session = session();
    let (step, output) = step(&mut session, "QUIT\r\n");
    assert_eq!((step, output), (Step::Close, format!("+OK {HOST} POP3 server signing off\r\n")));
}
