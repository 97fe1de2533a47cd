//! Across states: greeting, capabilities, NOOP, LOGOUT, pipelining, state rules, errors,
//! ending a session, transcripts, idleness.

use super::*;
use crate::proto::Limits;

#[test]
fn greeting_lists_capabilities_and_refuses_plaintext_logins_without_tls() {
    let mut session = Session::new(SessionConfig::new(HOST));
    assert_eq!(session.poll(), Step::NeedInput);
    let greeting = text(session.take_output());
    assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LOGINDISABLED "), "{greeting}");
    assert!(greeting.ends_with(&format!("] {HOST} IMAP4rev2 server ready\r\n")));
    assert!(!greeting.contains("AUTH=PLAIN"));
    assert!(!greeting.contains("STARTTLS"));
}

#[test]
fn capability_lists_starttls_and_auth_plain_when_allowed() {
    let mut config = config();
    config.starttls = true;
    let mut session = session_with(config);
    let output = chat(&mut session, &mut FakeStore::new(), "c1 CAPABILITY\r\n");
    let first = output.lines().next().unwrap();
    for capability in [
        "IMAP4rev1",
        "IMAP4rev2",
        "STARTTLS",
        "AUTH=PLAIN",
        "LITERAL+",
        "SASL-IR",
        "ID",
        "ENABLE",
        "IDLE",
        "NAMESPACE",
        "UIDPLUS",
        "MOVE",
        "UNSELECT",
        "CHILDREN",
        "SPECIAL-USE",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "ESEARCH",
        "BINARY",
        "STATUS=SIZE",
        "UTF8=ACCEPT",
    ] {
        assert!(first.split(' ').any(|word| word == capability), "{capability} missing from {first}");
    }
    assert!(output.ends_with("c1 OK CAPABILITY completed\r\n"));
}

#[test]
fn capabilities_after_login_leave_out_authentication() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "c1 CAPABILITY\r\n");
    assert!(!output.contains("AUTH=PLAIN") && !output.contains("LOGINDISABLED") && !output.contains("STARTTLS"));
}

#[test]
fn noop_and_logout_in_any_state() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "n1 NOOP\r\n"), "n1 OK NOOP completed\r\n");
    session.feed(b"l1 LOGOUT\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::Close);
    assert_eq!(output, format!("* BYE {HOST} IMAP4rev2 server logging out\r\nl1 OK LOGOUT completed\r\n"));
    assert_eq!(session.poll(), Step::Close, "Close is final");
}

#[test]
fn commands_are_case_insensitive() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "n1 noop\r\n"), "n1 OK NOOP completed\r\n");
}

#[test]
fn a_command_split_over_feeds_is_answered_once_complete() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "n1 NO"), "");
    assert!(!session.is_idle(), "a partial command is buffered");
    assert_eq!(chat(&mut session, &mut store, "OP\r"), "");
    assert_eq!(chat(&mut session, &mut store, "\n"), "n1 OK NOOP completed\r\n");
    assert!(session.is_idle());
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut store = store_with(2);
    let mut session = logged_in(&mut store);
    let output = chat(
        &mut session,
        &mut store,
        "p1 SELECT INBOX\r\np2 FETCH 1 (FLAGS)\r\np3 STORE 2 +FLAGS (\\Flagged)\r\np4 NOOP\r\n",
    );
    let tagged: Vec<&str> = output.split("\r\n").filter(|l| l.starts_with('p')).collect();
    assert_eq!(
        tagged,
        [
            "p1 OK [READ-WRITE] SELECT completed",
            "p2 OK FETCH completed",
            "p3 OK STORE completed",
            "p4 OK NOOP completed"
        ]
    );
    assert!(output.contains("* 1 FETCH (FLAGS ())\r\n"), "{output}");
    assert!(output.contains("* 2 FETCH (FLAGS (\\Flagged))\r\n"), "{output}");
}

#[test]
fn a_request_blocks_later_pipelined_commands_until_resolved() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    session.feed(b"a1 LOGIN alice secret\r\na2 NOOP\r\n");
    let step = session.poll();
    assert!(matches!(step, Step::Request(Request::Authenticate { .. })), "{step:?}");
    assert_eq!(session.poll(), Step::NeedInput, "still waiting for the verdict");
    assert_eq!(session.take_output(), b"");
    session.resolve(Response::Auth(AuthVerdict::Ok { account: "alice@example.org".into() }));
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::NeedInput);
    assert!(output.starts_with("a1 OK [CAPABILITY "), "{output}");
    assert!(output.ends_with("a2 OK NOOP completed\r\n"));
}

#[test]
fn commands_of_a_later_state_are_refused_before_it() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "a1 SELECT INBOX\r\n"), "a1 BAD Not authenticated: log in first\r\n");
    assert_eq!(chat(&mut session, &mut store, "a2 LIST \"\" *\r\n"), "a2 BAD Not authenticated: log in first\r\n");
    let mut session = logged_in(&mut store);
    assert_eq!(chat(&mut session, &mut store, "a3 FETCH 1 FLAGS\r\n"), "a3 BAD No mailbox selected\r\n");
    assert_eq!(chat(&mut session, &mut store, "a4 EXPUNGE\r\n"), "a4 BAD No mailbox selected\r\n");
    assert_eq!(chat(&mut session, &mut store, "a5 LOGIN alice secret\r\n"), "a5 BAD Already authenticated\r\n");
    assert!(store.log.iter().all(|r| !matches!(r, Request::Select { .. })));
}

#[test]
fn unknown_commands_and_junk_get_bad() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "a1 XYZZY\r\n"), "a1 BAD Syntax error or unknown command\r\n");
    assert_eq!(chat(&mut session, &mut store, "\r\n"), "* BAD Syntax error or unknown command\r\n");
    assert_eq!(chat(&mut session, &mut store, "a2 NOOP extra\r\n"), "a2 BAD Syntax error or unknown command\r\n");
}

#[test]
fn too_many_errors_end_the_session_with_bye() {
    let mut config = config();
    config.limits = Limits { errors_max: 3, ..Limits::default() };
    let mut session = session_with(config);
    let mut store = FakeStore::new();
    session.feed(b"a BAD\r\nb BAD\r\nc BAD\r\nd NOOP\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::Close);
    assert_eq!(lines_starting(&output, "* BYE"), ["* BYE Too many errors"]);
    assert!(!output.contains("d OK"), "nothing after the BYE: {output}");
}

#[test]
fn failed_logins_count_toward_the_error_limit() {
    let mut config = config();
    config.limits.errors_max = 2;
    let mut session = session_with(config);
    let mut store = FakeStore::new();
    chat(&mut session, &mut store, "a LOGIN alice wrong\r\n");
    session.feed(b"b LOGIN alice wrong\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::Close);
    assert_eq!(output, "b NO [AUTHENTICATIONFAILED] Invalid credentials\r\n* BYE Too many errors\r\n");
}

#[test]
fn timeout_says_bye_and_closes() {
    let mut session = session_with(config());
    session.timeout();
    assert_eq!(session.poll(), Step::Close);
    assert_eq!(text(session.take_output()), "* BYE Autologout; idle for too long\r\n");
}

#[test]
fn shutdown_during_a_request_answers_it_first() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    session.feed(b"a LOGIN alice secret\r\n");
    let Step::Request(request) = session.poll() else { panic!() };
    session.shutdown();
    session.resolve(store.answer(request));
    assert_eq!(session.poll(), Step::Close);
    let output = text(session.take_output());
    assert!(output.starts_with("a OK [CAPABILITY "), "{output}");
    assert!(output.ends_with("* BYE Server shutting down\r\n"));
}

#[test]
fn eof_closes_without_running_buffered_commands() {
    let mut session = session_with(config());
    session.feed(b"a NOOP\r\n");
    session.eof();
    assert_eq!(session.poll(), Step::Close);
    assert_eq!(session.take_output(), b"");
}

#[test]
fn starttls_discards_input_sent_before_the_handshake() {
    let mut config = config();
    config.starttls = true;
    config.plaintext_auth = false;
    let mut session = session_with(config);
    let mut store = FakeStore::new();
    session.feed(b"t1 STARTTLS\r\nt2 LOGIN alice secret\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::StartTls);
    assert_eq!(output, "t1 OK Begin TLS negotiation now\r\n");
    session.feed(b"t3 LOGIN injected before tls\r\n");
    session.tls_established();
    assert_eq!(chat(&mut session, &mut store, ""), "", "the pipelined LOGIN was dropped");
    let output = chat(&mut session, &mut store, "t4 CAPABILITY\r\n");
    assert!(output.contains(" AUTH=PLAIN ") && !output.contains("STARTTLS"), "{output}");
    let output = chat(&mut session, &mut store, "t5 LOGIN alice secret\r\n");
    assert!(output.starts_with("t5 OK "), "{output}");
}

#[test]
fn starttls_is_refused_when_not_offered() {
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut FakeStore::new(), "t1 STARTTLS\r\n"), "t1 BAD STARTTLS is not available\r\n");
}

#[test]
fn transcript_shows_both_sides_and_summarises_literals() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "a1 APPEND INBOX {14+}\r\nSubject: hi\r\n\r\n");
    let transcript = session.take_transcript();
    assert_eq!(transcript[0], "C: a1 APPEND INBOX {14+} <14 octets>");
    assert!(transcript[1].starts_with("S: a1 OK [APPENDUID 1001 1] APPEND completed"), "{transcript:?}");
}

#[test]
fn id_names_the_server() {
    let mut session = session_with(config());
    let output = chat(&mut session, &mut FakeStore::new(), "i1 ID (\"name\" \"test\")\r\n");
    assert!(output.starts_with("* ID (\"name\" \"tidings\" \"version\" "), "{output}");
    assert!(output.ends_with("i1 OK ID completed\r\n"));
}

#[test]
fn an_idle_session_holds_no_input() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "a NOOP\r\n");
    assert!(session.is_idle());
}

#[test]
fn refuse_connection_is_a_bye() {
    assert_eq!(crate::proto::refuse_connection("busy\r\nnow"), b"* BYE busy  now\r\n");
}
