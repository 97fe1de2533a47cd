//! TRANSACTION state: STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET, and QUIT into UPDATE.

use super::*;

#[test]
fn stat_counts_messages_and_octets() {
    assert_eq!(chat(&mut logged_in(), "STAT\r\n"), "+OK 3 120\r\n");
}

#[test]
fn list_without_argument_gives_the_scan_listing() {
    assert_eq!(chat(&mut logged_in(), "LIST\r\n"), "+OK 3 messages (120 octets)\r\n1 30\r\n2 40\r\n3 50\r\n.\r\n");
}

#[test]
fn list_of_one_message_answers_on_the_status_line() {
    assert_eq!(chat(&mut logged_in(), "LIST 2\r\n"), "+OK 2 40\r\n");
}

#[test]
fn list_of_a_message_that_does_not_exist_is_refused() {
    let mut session = logged_in();
    for number in ["0", "4", "4294967295", "99999999999999999999"] {
        assert_eq!(chat(&mut session, &format!("LIST {number}\r\n")), "-ERR no such message\r\n");
    }
}

#[test]
fn message_numbers_that_are_not_decimal_are_refused() {
    let mut session = logged_in();
    for number in ["+1", "-1", "1a", "one"] {
        let output = chat(&mut session, &format!("RETR {number}\r\n"));
        assert!(output.starts_with("-ERR Invalid message number"), "{number}: {output}");
    }
}

#[test]
fn uidl_without_argument_gives_the_unique_id_listing() {
    assert_eq!(
        chat(&mut logged_in(), "UIDL\r\n"),
        "+OK 3 messages (120 octets)\r\n1 uid-a\r\n2 uid-b\r\n3 uid-c\r\n.\r\n"
    );
}

#[test]
fn uidl_of_one_message_answers_on_the_status_line() {
    assert_eq!(chat(&mut logged_in(), "UIDL 3\r\n"), "+OK 3 uid-c\r\n");
}

#[test]
fn retr_byte_stuffs_lines_beginning_with_a_dot() {
    let mut session = logged_in();
    let output = retrieve(&mut session, "RETR 2\r\n", 102, None, b"Subject: x\r\n\r\n.\r\n..a\r\nb.\r\n");
    assert_eq!(output, "+OK 26 octets\r\nSubject: x\r\n\r\n..\r\n...a\r\nb.\r\n.\r\n");
}

#[test]
fn retr_of_a_message_without_final_crlf_completes_the_last_line() {
    let mut session = logged_in();
    let output = retrieve(&mut session, "RETR 1\r\n", 101, None, b"Subject: x\r\n\r\nno end");
    assert_eq!(output, "+OK 20 octets\r\nSubject: x\r\n\r\nno end\r\n.\r\n");
}

#[test]
fn retr_of_an_empty_message_is_the_terminator_alone() {
    let mut session = logged_in();
    assert_eq!(retrieve(&mut session, "RETR 1\r\n", 101, None, b""), "+OK 0 octets\r\n.\r\n");
}

#[test]
fn retr_of_a_message_removed_meanwhile_is_an_error() {
    let mut session = logged_in();
    step(&mut session, "RETR 3\r\n");
    let (step, output) = resolve(&mut session, Response::MessageGone);
    assert_eq!(step, Step::NeedInput);
    assert_eq!(output, "-ERR Message 3 was removed by another session\r\n");
}

#[test]
fn retr_when_the_store_fails_is_a_temporary_error() {
    let mut session = logged_in();
    step(&mut session, "RETR 3\r\n");
    let (_, output) = resolve(&mut session, Response::TempFail);
    assert!(output.starts_with("-ERR [SYS/TEMP] "), "{output}");
}

const MESSAGE: &[u8] = b"From: a@example.org\r\nSubject: hi\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n";

#[test]
fn top_zero_gives_the_header_section_and_the_blank_line() {
    let mut session = logged_in();
    let output = retrieve(&mut session, "TOP 1 0\r\n", 101, Some(0), MESSAGE);
    assert_eq!(output, "+OK Top of message follows\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\n.\r\n");
}

#[test]
fn top_n_adds_the_first_n_body_lines_stuffed() {
    let mut session = logged_in();
    let output = retrieve(&mut session, "TOP 1 2\r\n", 101, Some(2), MESSAGE);
    assert_eq!(
        output,
        "+OK Top of message follows\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\nline 1\r\n..line 2\r\n.\r\n"
    );
}

#[test]
fn top_of_a_message_without_body_gives_the_headers() {
    let mut session = logged_in();
    let output = retrieve(&mut session, "TOP 2 5\r\n", 102, Some(5), b"Subject: only\r\n");
    assert_eq!(output, "+OK Top of message follows\r\nSubject: only\r\n.\r\n");
}

#[test]
fn top_with_a_huge_line_count_asks_for_the_whole_body() {
    let mut session = logged_in();
    let (step, _) = step(&mut session, "TOP 1 99999999999\r\n");
    assert_eq!(step, Step::Request(Request::Retrieve { uid: 101, lines: Some(u32::MAX) }));
}

#[test]
fn top_needs_both_a_message_number_and_a_line_count() {
    let mut session = logged_in();
    assert_eq!(chat(&mut session, "TOP 1\r\n"), "-ERR Syntax: TOP msg n\r\n");
    assert!(chat(&mut session, "TOP 1 x\r\n").starts_with("-ERR Invalid line count"));
}

#[test]
fn dele_marks_and_later_listings_exclude_the_message() {
    let mut session = logged_in();
    assert_eq!(chat(&mut session, "DELE 2\r\n"), "+OK message 2 deleted\r\n");
    assert_eq!(chat(&mut session, "STAT\r\n"), "+OK 2 80\r\n");
    assert_eq!(chat(&mut session, "LIST\r\n"), "+OK 2 messages (80 octets)\r\n1 30\r\n3 50\r\n.\r\n");
    assert_eq!(chat(&mut session, "UIDL\r\n"), "+OK 2 messages (80 octets)\r\n1 uid-a\r\n3 uid-c\r\n.\r\n");
}

#[test]
fn a_message_marked_deleted_cannot_be_listed_retrieved_or_deleted_again() {
    let mut session = logged_in();
    chat(&mut session, "DELE 2\r\n");
    for command in ["LIST 2", "UIDL 2", "RETR 2", "TOP 2 0", "DELE 2"] {
        assert_eq!(chat(&mut session, &format!("{command}\r\n")), "-ERR message 2 already deleted\r\n");
    }
}

#[test]
fn rset_unmarks_every_deleted_message() {
    let mut session = logged_in();
    chat(&mut session, "DELE 1\r\nDELE 3\r\n");
    assert_eq!(chat(&mut session, "RSET\r\n"), "+OK maildrop has 3 messages (120 octets)\r\n");
    assert_eq!(chat(&mut session, "STAT\r\n"), "+OK 3 120\r\n");
    let (step, output) = step(&mut session, "QUIT\r\n");
    assert_eq!((step, output), (Step::Close, format!("+OK {HOST} POP3 server signing off (3 messages left)\r\n")));
}

#[test]
fn noop_answers_ok() {
    assert_eq!(chat(&mut logged_in(), "NOOP\r\n"), "+OK\r\n");
}

#[test]
fn commands_with_unexpected_arguments_are_syntax_errors() {
    let mut session = logged_in();
    assert_eq!(chat(&mut session, "STAT 1\r\n"), "-ERR Syntax: STAT\r\n");
    assert_eq!(chat(&mut session, "LIST 1 2\r\n"), "-ERR Syntax: LIST [msg]\r\n");
    assert_eq!(chat(&mut session, "RETR\r\n"), "-ERR Syntax: RETR msg\r\n");
    assert_eq!(chat(&mut session, "TOP 1 2 3\r\n"), "-ERR Syntax: TOP msg n\r\n");
    assert_eq!(chat(&mut session, "DELE 1 2 3 4 5\r\n"), "-ERR Syntax: DELE msg\r\n");
}

#[test]
fn quit_with_deletions_issues_update_with_exactly_the_marked_uids() {
    let mut session = logged_in();
    chat(&mut session, "DELE 3\r\nDELE 1\r\n");
    let (step, output) = step(&mut session, "QUIT\r\n");
    assert_eq!(output, "");
    assert_eq!(step, Step::Request(Request::Update { uids: vec![101, 103] }));
    let (step, output) = resolve(&mut session, Response::Updated);
    assert_eq!((step, output), (Step::Close, format!("+OK {HOST} POP3 server signing off (1 messages left)\r\n")));
}

#[test]
fn quit_without_deletions_signs_off_without_update() {
    let mut session = logged_in();
    let (step, output) = step(&mut session, "QUIT\r\n");
    assert_eq!((step, output), (Step::Close, format!("+OK {HOST} POP3 server signing off (3 messages left)\r\n")));
}

#[test]
fn failed_update_says_no_deletion_was_applied_and_closes() {
    let mut session = logged_in();
    chat(&mut session, "DELE 1\r\n");
    step(&mut session, "QUIT\r\n");
    let (step, output) = resolve(&mut session, Response::UpdateFailed);
    assert_eq!((step, output.as_str()), (Step::Close, "-ERR [SYS/TEMP] Deletions could not be applied; none were\r\n"));
}

#[test]
fn temporary_failure_of_update_is_a_failed_update() {
    let mut session = logged_in();
    chat(&mut session, "DELE 1\r\n");
    step(&mut session, "QUIT\r\n");
    let (step, output) = resolve(&mut session, Response::TempFail);
    assert_eq!((step, output.as_str()), (Step::Close, "-ERR [SYS/TEMP] Deletions could not be applied; none were\r\n"));
}

#[test]
fn pipelined_retrievals_wait_for_each_reply_to_be_flushed() {
    let mut session = logged_in();
    let big = Bytes::from(vec![b'x'; 400_000]);
    session.feed(b"RETR 1\r\nRETR 1\r\nRETR 1\r\n");
    for round in 0..3 {
        assert_eq!(session.poll(), Step::Request(Request::Retrieve { uid: 101, lines: None }), "round {round}");
        session.resolve(Response::Message(big.clone()));
        let step = session.poll();
        let output = session.take_output();
        assert!(output.len() > 400_000 && output.len() < 400_100, "one message per flush");
        let expected = if round < 2 { Step::Flush } else { Step::NeedInput };
        assert_eq!(step, expected, "round {round}");
    }
}

#[test]
fn a_flush_with_only_a_partial_line_left_turns_into_a_read() {
    let mut session = logged_in();
    session.feed(b"RETR 1\r\nST");
    assert_eq!(session.poll(), Step::Request(Request::Retrieve { uid: 101, lines: None }));
    session.resolve(Response::Message(Bytes::from(vec![b'y'; 300_000])));
    assert_eq!(session.poll(), Step::Flush);
    session.take_output();
    assert_eq!(session.poll(), Step::NeedInput);
    session.feed(b"AT\r\n");
    assert_eq!(session.poll(), Step::NeedInput);
    assert!(text(session.take_output()).starts_with("+OK 3 120"));
}
