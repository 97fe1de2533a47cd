//! STORE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT, CHECK, COPY and MOVE, and sequence sets.

use super::*;

#[test]
fn store_changes_flags_and_reports_them() {
    let mut store = store_with(3);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "t1 STORE 1:2 +FLAGS (\\Seen \\Flagged)\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\n* 2 FETCH (FLAGS (\\Seen \\Flagged))\r\nt1 OK STORE completed\r\n"
    );
    let output = chat(&mut session, &mut store, "t2 STORE 2 -FLAGS (\\Seen)\r\n");
    assert_eq!(output, "* 2 FETCH (FLAGS (\\Flagged))\r\nt2 OK STORE completed\r\n");
    let output = chat(&mut session, &mut store, "t3 STORE 3 FLAGS (Work)\r\n");
    assert_eq!(
        output,
        "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft Work)\r\n\
         * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft Work \\*)] Flags permitted\r\n\
         * 3 FETCH (FLAGS (Work))\r\nt3 OK STORE completed\r\n"
    );
    assert!(store.mailboxes[INBOX].messages[&3].meta.flags.has_keyword("work"));
}

#[test]
fn store_silent_reports_nothing_and_uid_store_includes_uid() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    assert_eq!(chat(&mut session, &mut store, "t1 STORE 1 +FLAGS.SILENT (\\Seen)\r\n"), "t1 OK STORE completed\r\n");
    assert!(store.mailboxes[INBOX].messages[&1].meta.flags.has(SystemFlag::Seen));
    let output = chat(&mut session, &mut store, "t2 UID STORE 2 +FLAGS (\\Answered)\r\n");
    assert_eq!(output, "* 2 FETCH (FLAGS (\\Answered) UID 2)\r\nt2 OK STORE completed\r\n");
    assert_eq!(chat(&mut session, &mut store, "t3 UID STORE 99 +FLAGS (\\Seen)\r\n"), "t3 OK STORE completed\r\n");
}

#[test]
fn store_of_an_invalid_flag_is_bad() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "t1 STORE 1 +FLAGS (\\Bogus)\r\n");
    assert_eq!(output, "t1 BAD Unknown system flag \\Bogus\r\n");
}

#[test]
fn a_new_keyword_is_announced_in_flags() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "t1 STORE 1 +FLAGS ($Junk)\r\nt2 NOOP\r\n");
    assert!(output.contains("* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk)\r\n"), "{output}");
}

#[test]
fn expunge_removes_deleted_messages_and_renumbers() {
    let mut store = store_with(4);
    let mut session = selected(&mut store);
    chat(&mut session, &mut store, "t1 STORE 2,3 +FLAGS.SILENT (\\Deleted)\r\n");
    let output = chat(&mut session, &mut store, "e1 EXPUNGE\r\n");
    assert_eq!(output, "* 3 EXPUNGE\r\n* 2 EXPUNGE\r\ne1 OK EXPUNGE completed\r\n");
    assert_eq!(store.mailboxes[INBOX].messages.keys().copied().collect::<Vec<_>>(), [1, 4]);
    let output = chat(&mut session, &mut store, "f1 FETCH 2 UID\r\n");
    assert_eq!(output, "* 2 FETCH (UID 4)\r\nf1 OK FETCH completed\r\n");
}

#[test]
fn uid_expunge_removes_only_the_named_deleted_messages() {
    let mut store = store_with(3);
    let mut session = selected(&mut store);
    chat(&mut session, &mut store, "t1 STORE 1:3 +FLAGS.SILENT (\\Deleted)\r\n");
    let output = chat(&mut session, &mut store, "e1 UID EXPUNGE 2:3\r\n");
    assert_eq!(output, "* 3 EXPUNGE\r\n* 2 EXPUNGE\r\ne1 OK EXPUNGE completed\r\n");
    assert!(store.mailboxes[INBOX].messages.contains_key(&1));
}

#[test]
fn expunge_without_deleted_messages_asks_nothing() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    assert_eq!(chat(&mut session, &mut store, "e1 EXPUNGE\r\n"), "e1 OK EXPUNGE completed\r\n");
    assert!(store.log.iter().all(|r| !matches!(r, Request::Expunge { .. })));
}

#[test]
fn close_expunges_silently_and_unselects() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    chat(&mut session, &mut store, "t1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    assert_eq!(chat(&mut session, &mut store, "c1 CLOSE\r\n"), "c1 OK CLOSE completed\r\n");
    assert_eq!(store.mailboxes[INBOX].messages.len(), 1);
    assert_eq!(chat(&mut session, &mut store, "c2 FETCH 1 UID\r\n"), "c2 BAD No mailbox selected\r\n");
}

#[test]
fn unselect_leaves_deleted_messages() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    chat(&mut session, &mut store, "t1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    assert_eq!(chat(&mut session, &mut store, "u1 UNSELECT\r\n"), "u1 OK UNSELECT completed\r\n");
    assert_eq!(store.mailboxes[INBOX].messages.len(), 2);
}

#[test]
fn close_of_an_examined_mailbox_expunges_nothing() {
    let mut store = store_with(1);
    store.set_flags(INBOX, 1, flags(&[SystemFlag::Deleted]));
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "x1 EXAMINE INBOX\r\n");
    assert_eq!(chat(&mut session, &mut store, "c1 CLOSE\r\n"), "c1 OK CLOSE completed\r\n");
    assert_eq!(store.mailboxes[INBOX].messages.len(), 1);
}

#[test]
fn copy_reports_copyuid() {
    let mut store = store_with(3);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "c1 COPY 1:2 Trash\r\n");
    assert_eq!(output, "c1 OK [COPYUID 1003 1:2 1:2] COPY completed\r\n");
    assert_eq!(store.mailboxes["Trash"].messages.len(), 2);
    let output = chat(&mut session, &mut store, "c2 UID COPY 3 Nowhere\r\n");
    assert_eq!(output, "c2 NO [TRYCREATE] Mailbox does not exist\r\n");
}

#[test]
fn move_reports_copyuid_then_expunges() {
    let mut store = store_with(3);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "m1 MOVE 2:3 Trash\r\n");
    assert_eq!(output, "* OK [COPYUID 1003 2:3 1:2] Moved\r\n* 3 EXPUNGE\r\n* 2 EXPUNGE\r\nm1 OK MOVE completed\r\n");
    assert_eq!(store.mailboxes[INBOX].messages.len(), 1);
    let output = chat(&mut session, &mut store, "m2 UID MOVE 1 Trash\r\n");
    assert_eq!(output, "* OK [COPYUID 1003 1 3] Moved\r\n* 1 EXPUNGE\r\nm2 OK MOVE completed\r\n");
}

#[test]
fn copy_into_the_selected_mailbox_reports_the_new_messages_next() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    assert_eq!(chat(&mut session, &mut store, "c1 COPY 1 INBOX\r\n"), "c1 OK [COPYUID 1001 1 2] COPY completed\r\n");
    assert_eq!(chat(&mut session, &mut store, "c2 CHECK\r\n"), "* 2 EXISTS\r\nc2 OK CHECK completed\r\n");
}

#[test]
fn sequence_numbers_beyond_the_mailbox_are_bad_but_uids_are_ignored() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    assert_eq!(chat(&mut session, &mut store, "f1 FETCH 3 FLAGS\r\n"), "f1 BAD Invalid message sequence number\r\n");
    assert_eq!(chat(&mut session, &mut store, "f2 UID FETCH 3:9 FLAGS\r\n"), "f2 OK FETCH completed\r\n");
    let output = chat(&mut session, &mut store, "f3 UID FETCH 9:* FLAGS\r\n");
    assert_eq!(output, "* 2 FETCH (UID 2 FLAGS ())\r\nf3 OK FETCH completed\r\n", "n:* includes the highest UID");
    let mut store = FakeStore::new();
    let mut session = selected(&mut store);
    assert_eq!(chat(&mut session, &mut store, "f4 FETCH 1:* FLAGS\r\n"), "f4 BAD No messages\r\n");
    assert_eq!(chat(&mut session, &mut store, "f5 UID FETCH 1:* FLAGS\r\n"), "f5 OK FETCH completed\r\n");
}
