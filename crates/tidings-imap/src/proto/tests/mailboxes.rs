//! SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, LIST, LSUB, STATUS, APPEND, ENABLE,
//! NAMESPACE, and mailbox name encodings.

use super::*;

#[test]
fn select_reports_the_mailbox_for_an_imap4rev1_client() {
    let mut store = store_with(3);
    store.set_flags(INBOX, 1, flags(&[SystemFlag::Seen]));
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "s1 SELECT INBOX\r\n");
    assert_eq!(
        output,
        "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n\
         * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] Flags permitted\r\n\
         * 3 EXISTS\r\n\
         * 0 RECENT\r\n\
         * OK [UNSEEN 2] First unseen\r\n\
         * OK [UIDVALIDITY 1001] UIDs valid\r\n\
         * OK [UIDNEXT 4] Predicted next UID\r\n\
         s1 OK [READ-WRITE] SELECT completed\r\n"
    );
}

#[test]
fn select_for_an_imap4rev2_client_has_no_recent_and_names_the_canonical_mailbox() {
    let mut store = store_with(1);
    let mut session = logged_in(&mut store);
    assert_eq!(
        chat(&mut session, &mut store, "e1 ENABLE IMAP4rev2\r\n"),
        "* ENABLED IMAP4rev2\r\ne1 OK ENABLE completed\r\n"
    );
    let output = chat(&mut session, &mut store, "s1 SELECT inbox\r\n");
    assert!(!output.contains("RECENT") && !output.contains("UNSEEN"), "{output}");
    assert!(output.contains("* LIST () \"/\" INBOX\r\n"), "{output}");
    let output = chat(&mut session, &mut store, "s2 SELECT Sent\r\n");
    assert!(output.starts_with("* OK [CLOSED] Previous mailbox closed\r\n"), "{output}");
    assert!(output.contains("* LIST () \"/\" Sent\r\n"), "{output}");
}

#[test]
fn keywords_in_use_appear_in_flags() {
    let mut store = FakeStore::new();
    let mut keyword = Flags::new();
    keyword.add_keyword("$Forwarded").unwrap();
    store.deliver(INBOX, "x\r\n", keyword);
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "s1 SELECT INBOX\r\n");
    assert!(output.starts_with("* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded)\r\n"), "{output}");
}

#[test]
fn examine_is_read_only() {
    let mut store = store_with(1);
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "x1 EXAMINE INBOX\r\n");
    assert!(output.contains("* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n"), "{output}");
    assert!(output.ends_with("x1 OK [READ-ONLY] EXAMINE completed\r\n"));
    let output = chat(&mut session, &mut store, "x2 STORE 1 +FLAGS (\\Seen)\r\n");
    assert_eq!(output, "x2 NO [READ-ONLY] Mailbox is read-only\r\n");
    let output = chat(&mut session, &mut store, "x3 FETCH 1 BODY[]\r\n");
    assert!(!output.contains("FLAGS"), "EXAMINE does not set \\Seen: {output}");
    assert!(!store.log.iter().any(|r| matches!(r, Request::Store { .. })));
}

#[test]
fn selecting_a_missing_mailbox_leaves_the_session_authenticated() {
    let mut store = FakeStore::new();
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "s1 SELECT Nowhere\r\n");
    assert_eq!(output, "s1 NO [NONEXISTENT] Mailbox does not exist\r\n");
    assert_eq!(chat(&mut session, &mut store, "s2 FETCH 1 FLAGS\r\n"), "s2 BAD No mailbox selected\r\n");
}

#[test]
fn create_delete_rename_and_subscribe() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    assert_eq!(chat(&mut session, &mut store, "c1 CREATE Projects/2026\r\n"), "c1 OK CREATE completed\r\n");
    assert!(store.mailboxes.contains_key("Projects") && store.mailboxes.contains_key("Projects/2026"));
    assert_eq!(
        chat(&mut session, &mut store, "c2 CREATE Projects\r\n"),
        "c2 NO [ALREADYEXISTS] Mailbox already exists\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "c3 DELETE Projects\r\n"),
        "c3 NO [HASCHILDREN] Mailbox has inferior mailboxes\r\n"
    );
    assert_eq!(chat(&mut session, &mut store, "c4 RENAME Projects Work\r\n"), "c4 OK RENAME completed\r\n");
    assert!(store.mailboxes.contains_key("Work/2026"));
    assert_eq!(chat(&mut session, &mut store, "c5 DELETE Work/2026\r\n"), "c5 OK DELETE completed\r\n");
    assert_eq!(chat(&mut session, &mut store, "c6 SUBSCRIBE Work\r\n"), "c6 OK SUBSCRIBE completed\r\n");
    assert!(store.subscribed.contains("Work"));
    assert_eq!(chat(&mut session, &mut store, "c7 UNSUBSCRIBE Work\r\n"), "c7 OK UNSUBSCRIBE completed\r\n");
    assert!(!store.subscribed.contains("Work"));
    assert_eq!(
        chat(&mut session, &mut store, "c8 DELETE Nowhere\r\n"),
        "c8 NO [NONEXISTENT] Mailbox does not exist\r\n"
    );
}

#[test]
fn inbox_cannot_be_deleted() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    assert_eq!(chat(&mut session, &mut store, "d1 DELETE inbox\r\n"), "d1 NO [CANNOT] INBOX cannot be deleted\r\n");
    assert!(store.log.iter().all(|r| !matches!(r, Request::Delete { .. })));
}

#[test]
fn invalid_names_are_refused_before_the_store() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "c1 CREATE a//b\r\n");
    assert!(output.starts_with("c1 NO [CANNOT] "), "{output}");
    assert!(store.log.iter().all(|r| !matches!(r, Request::Create { .. })));
}

#[test]
fn names_are_modified_utf7_for_imap4rev1_clients() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    assert_eq!(chat(&mut session, &mut store, "c1 CREATE Entw&APw-rfe\r\n"), "c1 OK CREATE completed\r\n");
    assert!(store.mailboxes.contains_key("Entwürfe"));
    let output = chat(&mut session, &mut store, "l1 LIST \"\" Entw*\r\n");
    assert_eq!(output, "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\nl1 OK LIST completed\r\n");
}

#[test]
fn names_are_utf8_once_utf8_accept_is_enabled() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    assert_eq!(
        chat(&mut session, &mut store, "e1 ENABLE UTF8=ACCEPT\r\n"),
        "* ENABLED UTF8=ACCEPT\r\ne1 OK ENABLE completed\r\n"
    );
    assert_eq!(chat(&mut session, &mut store, "c1 CREATE \"Entwürfe\"\r\n"), "c1 OK CREATE completed\r\n");
    assert!(store.mailboxes.contains_key("Entwürfe"));
    let output = chat(&mut session, &mut store, "l1 LIST \"\" Entw*\r\n");
    assert_eq!(output, "* LIST (\\HasNoChildren) \"/\" \"Entwürfe\"\r\nl1 OK LIST completed\r\n");
    assert_eq!(chat(&mut session, &mut store, "c2 CREATE Entw&APw-rfe\r\n"), "c2 OK CREATE completed\r\n");
    assert!(store.mailboxes.contains_key("Entw&APw-rfe"), "no UTF-7 decoding after UTF8=ACCEPT");
}

#[test]
fn enable_is_refused_once_a_mailbox_is_selected() {
    let mut store = FakeStore::new();
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "e1 ENABLE IMAP4rev2\r\n");
    assert_eq!(output, "e1 BAD ENABLE is valid only before a mailbox is selected\r\n");
}

#[test]
fn list_shows_hierarchy_special_use_and_wildcards() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "c1 CREATE Work/Reports\r\n");
    let output = chat(&mut session, &mut store, "l1 LIST \"\" *\r\n");
    assert_eq!(
        output,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n\
         * LIST (\\HasChildren) \"/\" Work\r\n\
         * LIST (\\HasNoChildren) \"/\" Work/Reports\r\n\
         l1 OK LIST completed\r\n"
    );
    let output = chat(&mut session, &mut store, "l2 LIST \"\" %\r\n");
    assert!(!output.contains("Work/Reports") && output.contains("\"/\" Work\r\n"), "{output}");
    let output = chat(&mut session, &mut store, "l3 LIST Work/ %\r\n");
    assert_eq!(output, "* LIST (\\HasNoChildren) \"/\" Work/Reports\r\nl3 OK LIST completed\r\n");
    let output = chat(&mut session, &mut store, "l4 LIST \"\" \"\"\r\n");
    assert_eq!(output, "* LIST (\\Noselect) \"/\" \"\"\r\nl4 OK LIST completed\r\n");
}

#[test]
fn list_reports_missing_parents_as_noselect_to_imap4rev1_clients() {
    let mut store = FakeStore::new();
    store.mailboxes.insert("a/b".into(), FakeMailbox::new(5, None));
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "l1 LIST \"\" %\r\n");
    assert!(output.contains("* LIST (\\Noselect \\HasChildren) \"/\" a\r\n"), "{output}");
}

#[test]
fn list_extended_selects_subscribed_and_returns_status() {
    let mut store = store_with(2);
    store.mailboxes.insert("Lists".into(), FakeMailbox::new(9, None));
    store.mailboxes.insert("Lists/rust".into(), FakeMailbox::new(10, None));
    store.subscribed.insert("Lists/rust".into());
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "l1 LIST (SUBSCRIBED) \"\" *\r\n");
    assert_eq!(
        output,
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Subscribed) \"/\" Lists/rust\r\n\
         * LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" Sent\r\n\
         l1 OK LIST completed\r\n"
    );
    let output = chat(&mut session, &mut store, "l2 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n");
    assert!(output.contains("* LIST (\\HasChildren) \"/\" Lists (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"), "{output}");
    let output = chat(&mut session, &mut store, "l3 LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN SIZE))\r\n");
    assert!(output.contains("* STATUS INBOX (MESSAGES 2 UNSEEN 2 SIZE "), "{output}");
    let output = chat(&mut session, &mut store, "l4 LIST (SPECIAL-USE) \"\" *\r\n");
    assert_eq!(
        output,
        "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\nl4 OK LIST completed\r\n"
    );
    let output = chat(&mut session, &mut store, "l5 LIST \"\" (INBOX Sent) RETURN (SUBSCRIBED)\r\n");
    assert_eq!(lines_starting(&output, "* LIST").len(), 2, "{output}");
    let output = chat(&mut session, &mut store, "l6 LIST (RECURSIVEMATCH) \"\" *\r\n");
    assert_eq!(output, "l6 BAD RECURSIVEMATCH needs another selection option\r\n");
}

#[test]
fn list_status_counts_deleted_messages_as_status_does() {
    // RFC 5819 §2: LIST-STATUS gives what STATUS would, DELETED included.
    let mut store = store_with(3);
    store.set_flags(INBOX, 1, flags(&[SystemFlag::Deleted]));
    store.set_flags(INBOX, 3, flags(&[SystemFlag::Seen, SystemFlag::Deleted]));
    store.mailboxes.insert("Lists".into(), FakeMailbox::new(9, None));
    store.mailboxes.insert("Lists/rust".into(), FakeMailbox::new(10, None));
    store.mailboxes.remove("Lists");
    let mut session = logged_in(&mut store);
    let status = chat(&mut session, &mut store, "s1 STATUS INBOX (DELETED MESSAGES)\r\n");
    assert_eq!(status, "* STATUS INBOX (DELETED 2 MESSAGES 3)\r\ns1 OK STATUS completed\r\n");
    let output = chat(&mut session, &mut store, "l1 LIST \"\" * RETURN (STATUS (DELETED MESSAGES UNSEEN))\r\n");
    assert_eq!(
        output,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * STATUS INBOX (DELETED 2 MESSAGES 3 UNSEEN 2)\r\n\
         * LIST (\\NonExistent \\HasChildren) \"/\" Lists\r\n\
         * LIST (\\HasNoChildren) \"/\" Lists/rust\r\n\
         * STATUS Lists/rust (DELETED 0 MESSAGES 0 UNSEEN 0)\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * STATUS Sent (DELETED 0 MESSAGES 0 UNSEEN 0)\r\n\
         * LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n\
         * STATUS Trash (DELETED 0 MESSAGES 0 UNSEEN 0)\r\n\
         l1 OK LIST completed\r\n"
    );
}

#[test]
fn lsub_lists_subscriptions_with_unsubscribed_parents_as_noselect() {
    let mut store = FakeStore::new();
    store.mailboxes.insert("Lists".into(), FakeMailbox::new(9, None));
    store.mailboxes.insert("Lists/rust".into(), FakeMailbox::new(10, None));
    store.subscribed.insert("Lists/rust".into());
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "l1 LSUB \"\" *\r\n");
    assert_eq!(
        output,
        "* LSUB () \"/\" INBOX\r\n* LSUB () \"/\" Lists/rust\r\n* LSUB () \"/\" Sent\r\nl1 OK LSUB completed\r\n"
    );
    let output = chat(&mut session, &mut store, "l2 LSUB \"\" %\r\n");
    assert!(output.contains("* LSUB (\\Noselect) \"/\" Lists\r\n"), "{output}");
}

#[test]
fn status_reports_the_items_asked_in_order() {
    let mut store = store_with(3);
    store.set_flags(INBOX, 2, flags(&[SystemFlag::Seen, SystemFlag::Deleted]));
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "t1 STATUS INBOX (UIDNEXT MESSAGES UNSEEN UIDVALIDITY RECENT)\r\n");
    assert_eq!(
        output,
        "* STATUS INBOX (UIDNEXT 4 MESSAGES 3 UNSEEN 2 UIDVALIDITY 1001 RECENT 0)\r\nt1 OK STATUS completed\r\n"
    );
    let output = chat(&mut session, &mut store, "t2 STATUS INBOX (DELETED SIZE)\r\n");
    assert!(output.starts_with("* STATUS INBOX (DELETED 1 SIZE "), "{output}");
    let output = chat(&mut session, &mut store, "t3 STATUS Nowhere (MESSAGES)\r\n");
    assert_eq!(output, "t3 NO [NONEXISTENT] Mailbox does not exist\r\n");
}

#[test]
fn append_stores_flags_and_date_and_reports_appenduid() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output =
        chat(&mut session, &mut store, "a1 APPEND Sent (\\Seen $Sent) \"05-Jan-2026 10:00:00 +0100\" {12}\r\n");
    assert_eq!(output, "+ Ready for literal data\r\n");
    let output = chat(&mut session, &mut store, "Subject: x\r\n\r\n");
    assert_eq!(output, "a1 OK [APPENDUID 1002 1] APPEND completed\r\n");
    let message = &store.mailboxes["Sent"].messages[&1];
    assert!(message.meta.flags.has(SystemFlag::Seen) && message.meta.flags.has_keyword("$Sent"));
    assert_eq!(message.meta.internal_date, 1_767_603_600);
    assert_eq!(&message.content[..], b"Subject: x\r\n");
}

#[test]
fn append_to_a_missing_mailbox_says_trycreate() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "a1 APPEND Nowhere {3+}\r\nabc\r\n");
    assert_eq!(output, "a1 NO [TRYCREATE] Mailbox does not exist\r\n");
}

#[test]
fn append_to_the_selected_mailbox_reports_exists_at_the_next_command() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "a1 APPEND INBOX {3+}\r\nabc\r\n");
    assert_eq!(output, "a1 OK [APPENDUID 1001 2] APPEND completed\r\n");
    let output = chat(&mut session, &mut store, "a2 NOOP\r\n");
    assert_eq!(output, "* 2 EXISTS\r\na2 OK NOOP completed\r\n");
}

#[test]
fn namespace_is_one_personal_namespace() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "n1 NAMESPACE\r\n");
    assert_eq!(output, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nn1 OK NAMESPACE completed\r\n");
}

#[test]
fn renaming_the_selected_mailbox_keeps_it_selected_under_its_new_name() {
    let mut store = FakeStore::new();
    store.mailboxes.insert("Old".into(), FakeMailbox::new(7, None));
    store.deliver("Old", "x\r\n", Flags::new());
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "s1 SELECT Old\r\n");
    assert_eq!(chat(&mut session, &mut store, "r1 RENAME Old New\r\n"), "r1 OK RENAME completed\r\n");
    let output = chat(&mut session, &mut store, "f1 FETCH 1 BODY.PEEK[]\r\n");
    assert!(output.starts_with("* 1 FETCH (BODY[] {3}\r\nx\r\n)"), "{output}");
}

#[test]
fn append_takes_a_literal8_after_utf8_accept() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "e ENABLE UTF8=ACCEPT\r\n");
    let output = chat(&mut session, &mut store, "a1 APPEND INBOX UTF8 (~{10+}\r\nSubj: é\r\n)\r\n");
    assert_eq!(output, "a1 OK [APPENDUID 1001 1] APPEND completed\r\n");
    assert_eq!(&store.mailboxes[INBOX].messages[&1].content[..], "Subj: é\r\n".as_bytes());
}

#[test]
fn enable_of_unknown_capabilities_enables_nothing() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    assert_eq!(
        chat(&mut session, &mut store, "e1 ENABLE CONDSTORE X-FOO\r\n"),
        "* ENABLED\r\ne1 OK ENABLE completed\r\n"
    );
}

#[test]
fn appended_messages_get_crlf_line_ends_and_nul_is_refused() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "a1 APPEND INBOX {12+}\r\nA: b\nc\rd\r\ne\n\r\n");
    assert_eq!(output, "a1 OK [APPENDUID 1001 1] APPEND completed\r\n");
    assert_eq!(&store.mailboxes[INBOX].messages[&1].content[..], b"A: b\r\nc\r\nd\r\ne\r\n");
    let output = chat(&mut session, &mut store, "a2 APPEND INBOX ~{3+}\r\na\0b\r\n");
    assert_eq!(output, "a2 NO [UNKNOWN-CTE] Messages with NUL octets cannot be stored\r\n");
}

#[test]
fn imap4rev2_clients_see_nonexistent_parents_and_closed_on_deleting_the_selected_mailbox() {
    let mut store = FakeStore::new();
    store.mailboxes.insert("a/b".into(), FakeMailbox::new(5, None));
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "e ENABLE IMAP4rev2\r\n");
    let output = chat(&mut session, &mut store, "l1 LIST \"\" %\r\n");
    assert!(output.contains("* LIST (\\NonExistent \\HasChildren) \"/\" a\r\n"), "{output}");
    chat(&mut session, &mut store, "s1 SELECT a/b\r\n");
    let output = chat(&mut session, &mut store, "d1 DELETE a/b\r\n");
    assert_eq!(output, "* OK [CLOSED] The selected mailbox is deleted\r\nd1 OK DELETE completed\r\n");
    assert_eq!(chat(&mut session, &mut store, "f1 FETCH 1 UID\r\n"), "f1 BAD No mailbox selected\r\n");
}
