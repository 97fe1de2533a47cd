//! Across states: framing, pipelining, error limits, ending a session, transcripts, idleness.

use super::*;
use crate::proto::Limits;

#[test]
fn commands_are_case_insensitive_and_a_bare_lf_ends_a_line() {
    let mut session = logged_in();
    assert_eq!(chat(&mut session, "stat\n"), "+OK 3 120\r\n");
    assert_eq!(chat(&mut session, "LiSt 1\r\n"), "+OK 1 30\r\n");
}

#[test]
fn a_command_split_over_several_feeds_is_answered_once_complete() {
    let mut session = logged_in();
    assert_eq!(chat(&mut session, "ST"), "");
    assert!(!session.is_idle(), "a partial line is buffered");
    assert_eq!(chat(&mut session, "AT\r"), "");
    assert_eq!(chat(&mut session, "\n"), "+OK 3 120\r\n");
    assert!(session.is_idle());
}

#[test]
fn unknown_commands_are_refused() {
    let mut session = session();
    assert_eq!(chat(&mut session, "XYZZY\r\n"), "-ERR Unknown command\r\n");
    assert_eq!(chat(&mut session, "\r\n"), "-ERR Empty command line\r\n");
}

#[test]
fn pipelined_commands_in_one_feed_are_answered_in_order() {
    let mut session = logged_in();
    let output = chat(&mut session, "STAT\r\nLIST 1\r\nDELE 1\r\nSTAT\r\nNOOP\r\n");
    assert_eq!(output, "+OK 3 120\r\n+OK 1 30\r\n+OK message 1 deleted\r\n+OK 2 90\r\n+OK\r\n");
}

#[test]
fn a_request_blocks_later_pipelined_commands_until_resolved() {
    let mut session = logged_in();
    let (step, output) = step(&mut session, "NOOP\r\nRETR 1\r\nSTAT\r\nQUIT\r\n");
    assert_eq!(output, "+OK\r\n");
    assert_eq!(step, Step::Request(Request::Retrieve { uid: 101, lines: None }));
    assert_eq!(session.poll(), Step::NeedInput, "still waiting for the message");
    assert_eq!(session.take_output(), b"");
    let (step, output) = resolve(&mut session, Response::Message(Bytes::from_static(b"A: b\r\n\r\nc\r\n")));
    assert_eq!(step, Step::Close);
    assert_eq!(
        output,
        format!(
            "+OK 11 octets\r\nA: b\r\n\r\nc\r\n.\r\n+OK 3 120\r\n+OK {HOST} POP3 server signing off (3 messages left)\r\n"
        )
    );
}

#[test]
fn a_login_blocks_pipelined_commands_until_resolved() {
    let mut session = session();
    let (step, _) = step(&mut session, "USER alice\r\nPASS secret\r\nSTAT\r\n");
    assert!(matches!(step, Step::Request(Request::Authenticate { .. })));
    let (_, output) = resolve(&mut session, Response::LoggedIn(listing()));
    assert_eq!(output, "+OK Logged in, 3 messages (120 octets)\r\n+OK 3 120\r\n");
}

#[test]
fn too_many_errors_end_the_session() {
    let mut config = config();
    config.limits = Limits { errors_max: 3, ..Limits::default() };
    let mut session = session_with(config);
    assert_eq!(chat(&mut session, "BAD\r\nBAD\r\n"), "-ERR Unknown command\r\n-ERR Unknown command\r\n");
    let (step, output) = step(&mut session, "BAD\r\nNOOP\r\n");
    assert_eq!(step, Step::Close);
    assert_eq!(output, "-ERR Unknown command\r\n-ERR Too many errors\r\n");
}

#[test]
fn failed_logins_count_toward_the_error_limit() {
    let mut config = config();
    config.limits.errors_max = 2;
    let mut session = session_with(config);
    step(&mut session, "USER alice\r\nPASS a\r\n");
    resolve(&mut session, Response::AuthFailed);
    step(&mut session, "USER alice\r\nPASS b\r\n");
    let (step, output) = resolve(&mut session, Response::AuthFailed);
    assert_eq!((step, output.as_str()), (Step::Close, "-ERR [AUTH] Invalid credentials\r\n-ERR Too many errors\r\n"));
}

#[test]
fn an_overlong_line_is_refused_and_the_session_goes_on() {
    let mut config = config();
    config.limits.command_line_bytes_max = 300;
    let mut session = session_with(config);
    let long = "X".repeat(1000);
    assert_eq!(chat(&mut session, &long), "-ERR Line too long\r\n");
    assert!(!session.is_idle(), "still discarding to the end of the line");
    assert_eq!(chat(&mut session, &long), "");
    let (step, output) = step(&mut session, "still the same line\r\nQUIT\r\n");
    assert_eq!((step, output), (Step::Close, format!("+OK {HOST} POP3 server signing off\r\n")));
}

#[test]
fn an_overlong_line_with_its_end_in_one_feed_is_refused_once() {
    let mut session = session();
    let input = format!("NOOP {}\r\nQUIT\r\n", "9".repeat(3000));
    let (step, output) = step(&mut session, &input);
    assert_eq!(step, Step::Close);
    assert_eq!(output, format!("-ERR Line too long\r\n+OK {HOST} POP3 server signing off\r\n"));
}

#[test]
fn a_limit_below_the_rfc_minimum_is_raised_to_it() {
    let mut config = config();
    config.limits.command_line_bytes_max = 0;
    let mut session = session_with(config);
    let user = "u".repeat(200);
    assert_eq!(chat(&mut session, &format!("USER {user}\r\n")), "+OK User name accepted, send PASS\r\n");
}

#[test]
fn binary_junk_gets_errors_never_a_panic() {
    let mut session = session();
    let mut junk = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..5000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        junk.push((seed >> 24) as u8);
    }
    for chunk in junk.chunks(97) {
        session.feed(chunk);
        match session.poll() {
            Step::NeedInput => {}
            Step::Close => break,
            other => panic!("junk produced {other:?}"),
        }
    }
    session.take_output();
}

#[test]
fn eof_closes_without_update_even_with_messages_marked() {
    let mut session = logged_in();
    chat(&mut session, "DELE 1\r\n");
    session.feed(b"QUIT\r\n");
    session.eof();
    assert_eq!(session.poll(), Step::Close);
    assert_eq!(session.take_output(), b"");
}

#[test]
fn timeout_sends_autologout_and_closes_without_update() {
    let mut session = logged_in();
    chat(&mut session, "DELE 1\r\n");
    session.timeout();
    assert_eq!(session.poll(), Step::Close);
    assert_eq!(session.take_output(), b"-ERR [SYS/TEMP] Autologout; idle for too long\r\n");
}

#[test]
fn shutdown_sends_a_notice_and_closes_without_update() {
    let mut session = logged_in();
    chat(&mut session, "DELE 1\r\n");
    session.shutdown();
    assert_eq!(session.poll(), Step::Close);
    assert_eq!(session.take_output(), b"-ERR Server shutting down\r\n");
}

#[test]
fn shutdown_during_update_lets_it_finish_and_be_answered() {
    let mut session = logged_in();
    chat(&mut session, "DELE 1\r\n");
    step(&mut session, "QUIT\r\n");
    session.shutdown();
    let (step, output) = resolve(&mut session, Response::Updated);
    assert_eq!((step, output), (Step::Close, format!("+OK {HOST} POP3 server signing off (2 messages left)\r\n")));
}

#[test]
fn shutdown_during_retrieval_answers_it_then_ends() {
    let mut session = logged_in();
    step(&mut session, "RETR 1\r\nSTAT\r\n");
    session.shutdown();
    let (step, output) = resolve(&mut session, Response::Message(Bytes::from_static(b"x\r\n")));
    assert_eq!((step, output.as_str()), (Step::Close, "+OK 3 octets\r\nx\r\n.\r\n-ERR Server shutting down\r\n"));
}

#[test]
fn a_closed_session_stays_closed_and_ignores_input() {
    let mut session = session();
    step(&mut session, "QUIT\r\n");
    session.feed(b"NOOP\r\n");
    session.timeout();
    session.shutdown();
    assert_eq!(session.poll(), Step::Close);
    assert_eq!(session.take_output(), b"");
}

#[test]
fn is_idle_only_when_waiting_for_a_command() {
    let mut session = session();
    assert!(session.is_idle());
    session.feed(b"USER alice\r\nPASS secret\r\n");
    assert!(!session.is_idle());
    assert!(matches!(session.poll(), Step::Request(_)));
    assert!(!session.is_idle(), "a login is outstanding");
    session.resolve(Response::LoggedIn(listing()));
    assert!(session.is_idle());
    session.eof();
    assert!(!session.is_idle());
}

#[test]
fn refuse_connection_is_one_sys_temp_line() {
    assert_eq!(
        crate::proto::refuse_connection("Too many connections\r\nfrom you"),
        b"-ERR [SYS/TEMP] Too many connections  from you\r\n"
    );
}

#[test]
fn transcript_records_both_sides_and_redacts_the_password() {
    let mut session = session();
    session.take_transcript();
    step(&mut session, "USER alice\r\nPASS hunter2 hunter2\r\n");
    resolve(&mut session, Response::LoggedIn(listing()));
    let transcript = session.take_transcript();
    assert_eq!(
        transcript,
        [
            "C: USER alice",
            "S: +OK User name accepted, send PASS",
            "C: PASS <redacted>",
            "S: +OK Logged in, 3 messages (120 octets)"
        ]
    );
    assert!(session.take_transcript().is_empty(), "taken lines are gone");
}

#[test]
fn transcript_redacts_sasl_initial_responses_and_continuations() {
    let mut session = session();
    session.take_transcript();
    step(&mut session, "AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\nAUTH PLAIN\r\nAGFsaWNlAGh1bnRlcjI=\r\n");
    resolve(&mut session, Response::AuthFailed);
    let transcript = session.take_transcript();
    assert_eq!(
        transcript[..5],
        ["C: AUTH PLAIN <redacted>", "S: -ERR [AUTH] Invalid credentials", "C: AUTH PLAIN", "S: + ", "C: <redacted>"]
    );
    assert!(transcript.iter().all(|line| !line.contains("AGFsaWNlAGh1bnRlcjI")), "{transcript:?}");
}

#[test]
fn transcript_never_holds_a_password_even_when_refused() {
    let mut config = config();
    config.plaintext_auth = false;
    let mut session = session_with(config);
    chat(&mut session, "pass hunter2\r\n  PASS hunter2\r\nAUTH  PLAIN  aHVudGVyMg==\r\n");
    let transcript = session.take_transcript();
    assert!(transcript.iter().all(|line| !line.contains("hunter2") && !line.contains("aHVudGVyMg")), "{transcript:?}");
}

#[test]
fn transcript_summarises_message_bodies() {
    let mut session = logged_in();
    retrieve(&mut session, "RETR 1\r\n", 101, None, b"Subject: secret stuff\r\n\r\nbody\r\n");
    assert_eq!(session.take_transcript(), ["C: RETR 1", "S: +OK 31 octets", "S: <message, 34 octets>"]);
}

#[test]
fn transcript_is_empty_when_off() {
    let mut config = config();
    config.transcript = false;
    let mut session = session_with(config);
    chat(&mut session, "NOOP\r\n");
    assert!(session.take_transcript().is_empty());
}
