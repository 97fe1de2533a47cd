//! Changes made elsewhere (other sessions, deliveries): reported at NOOP, before commands, and
//! during IDLE; EXPUNGE never during FETCH, STORE or SEARCH (RFC 9051 §7.5.1).

use super::*;
use crate::proto::Notice;

#[test]
fn noop_reports_new_messages_flag_changes_and_expunges() {
    let mut store = store_with(3);
    let mut session = selected(&mut store);
    store.deliver(INBOX, "new\r\n", Flags::new());
    store.set_flags(INBOX, 1, flags(&[SystemFlag::Seen]));
    store.remove(INBOX, 2);
    let output = chat(&mut session, &mut store, "n1 NOOP\r\n");
    assert_eq!(output, "* 4 EXISTS\r\n* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 2 EXPUNGE\r\nn1 OK NOOP completed\r\n");
    let output = chat(&mut session, &mut store, "n2 NOOP\r\n");
    assert_eq!(output, "n2 OK NOOP completed\r\n", "nothing is reported twice");
}

#[test]
fn two_sessions_see_each_others_changes_through_sync() {
    let mut store = store_with(2);
    let mut first = selected(&mut store);
    let mut second = selected(&mut store);
    chat(&mut first, &mut store, "a1 STORE 1 +FLAGS (\\Deleted)\r\na2 EXPUNGE\r\n");
    second.notice(Notice::Changed);
    let output = chat(&mut second, &mut store, "b1 FETCH 1:* UID\r\n");
    assert_eq!(
        output, "* 2 FETCH (UID 2)\r\nb1 OK [EXPUNGEISSUED] Some messages no longer exist\r\n",
        "no EXPUNGE during FETCH, and message 2 keeps its number"
    );
    let output = chat(&mut second, &mut store, "b2 NOOP\r\n");
    assert_eq!(output, "* 1 EXPUNGE\r\nb2 OK NOOP completed\r\n");
    let output = chat(&mut second, &mut store, "b3 FETCH 1 UID\r\n");
    assert_eq!(output, "* 1 FETCH (UID 2)\r\nb3 OK FETCH completed\r\n");
}

#[test]
fn a_notice_makes_the_next_command_sync_first() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    store.deliver(INBOX, "new\r\n", Flags::new());
    session.notice(Notice::Changed);
    store.log.clear();
    let output = chat(&mut session, &mut store, "f1 FETCH 2 UID\r\n");
    assert_eq!(output, "* 2 EXISTS\r\n* 2 FETCH (UID 2)\r\nf1 OK FETCH completed\r\n");
    assert!(matches!(store.log[0], Request::Sync { since_modseq: 2, .. }), "{:?}", store.log);
}

#[test]
fn without_a_notice_commands_other_than_noop_do_not_sync() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    store.log.clear();
    chat(&mut session, &mut store, "f1 FETCH 1 FLAGS\r\n");
    assert!(store.log.is_empty());
}

#[test]
fn idle_reports_changes_when_a_notice_arrives() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    assert_eq!(chat(&mut session, &mut store, "i1 IDLE\r\n"), "+ idling\r\n");
    assert!(session.is_idle());
    store.deliver(INBOX, "new\r\n", Flags::new());
    store.remove(INBOX, 1);
    session.notice(Notice::Changed);
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::NeedInput);
    assert_eq!(output, "* 1 EXPUNGE\r\n* 1 EXISTS\r\n");
    assert_eq!(chat(&mut session, &mut store, "DONE\r\n"), "i1 OK IDLE terminated\r\n");
    assert_eq!(chat(&mut session, &mut store, "f1 FETCH 1 UID\r\n"), "* 1 FETCH (UID 2)\r\nf1 OK FETCH completed\r\n");
}

#[test]
fn idle_ended_by_something_other_than_done_is_bad() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    chat(&mut session, &mut store, "i1 IDLE\r\n");
    assert_eq!(chat(&mut session, &mut store, "i2 NOOP\r\n"), "i1 BAD Expected DONE; IDLE terminated\r\n");
    assert_eq!(chat(&mut session, &mut store, "i3 NOOP\r\n"), "i3 OK NOOP completed\r\n");
}

#[test]
fn idle_before_login_is_refused() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "i1 IDLE\r\n"), "i1 BAD Not authenticated: log in first\r\n");
    assert_eq!(chat(&mut session, &mut store, "i2 NOOP\r\n"), "i2 OK NOOP completed\r\n");
}

#[test]
fn shutdown_during_idle_says_bye() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    chat(&mut session, &mut store, "i1 IDLE\r\n");
    session.shutdown();
    assert_eq!(session.poll(), Step::Close);
    assert_eq!(text(session.take_output()), "* BYE Server shutting down\r\n");
}

#[test]
fn expunges_wait_while_store_and_search_run() {
    let mut store = store_with(3);
    let mut session = selected(&mut store);
    store.remove(INBOX, 1);
    session.notice(Notice::Changed);
    let output = chat(&mut session, &mut store, "t1 STORE 2 +FLAGS (\\Seen)\r\n");
    assert_eq!(output, "* 2 FETCH (FLAGS (\\Seen))\r\nt1 OK STORE completed\r\n", "message 2 keeps its number");
    let output = chat(&mut session, &mut store, "s1 SEARCH ALL\r\n");
    assert_eq!(output, "* SEARCH 2 3\r\ns1 OK SEARCH completed\r\n");
    let output = chat(&mut session, &mut store, "c1 CHECK\r\n");
    assert_eq!(output, "* 1 EXPUNGE\r\nc1 OK CHECK completed\r\n");
}

#[test]
fn a_selected_mailbox_created_again_elsewhere_ends_the_session() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    store.mailboxes.get_mut(INBOX).unwrap().uidvalidity = 4242;
    session.feed(b"n1 NOOP\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!((step, output.as_str()), (Step::Close, "* BYE The selected mailbox was replaced; select it again\r\n"));
}

#[test]
fn a_selected_mailbox_deleted_elsewhere_ends_the_session() {
    let mut store = FakeStore::new();
    store.mailboxes.insert("Gone".into(), FakeMailbox::new(7, None));
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "s1 SELECT Gone\r\n");
    store.mailboxes.remove("Gone");
    session.feed(b"n1 NOOP\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!((step, output.as_str()), (Step::Close, "* BYE The selected mailbox no longer exists\r\n"));
}
