//! SEARCH and UID SEARCH: keys, charsets, ESEARCH, and content searches in batches.

use super::*;
use crate::proto::Limits;

fn search_store() -> FakeStore {
    let mut store = FakeStore::new();
    store.deliver(INBOX, "From: Ann <ann@example.org>\r\nSubject: Lunch\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\nPizza at noon\r\n", flags(&[SystemFlag::Seen]));
    store.deliver(INBOX, "From: bob@example.org\r\nSubject: Report\r\nDate: Tue, 6 Jan 2026 10:00:00 +0000\r\n\r\nSee the attached numbers\r\n", flags(&[SystemFlag::Flagged]));
    store.deliver(INBOX, "From: carol@example.org\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n\r\nCoffee?\r\n", Flags::new());
    store
}

#[test]
fn flag_keys_are_answered_without_loading_content() {
    let mut store = search_store();
    let mut session = selected(&mut store);
    store.log.clear();
    assert_eq!(chat(&mut session, &mut store, "s1 SEARCH UNSEEN\r\n"), "* SEARCH 2 3\r\ns1 OK SEARCH completed\r\n");
    assert_eq!(
        chat(&mut session, &mut store, "s2 SEARCH FLAGGED NOT SEEN\r\n"),
        "* SEARCH 2\r\ns2 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s3 SEARCH OR SEEN FLAGGED\r\n"),
        "* SEARCH 1 2\r\ns3 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s4 SEARCH 2:* LARGER 80\r\n"),
        "* SEARCH 2\r\ns4 OK SEARCH completed\r\n"
    );
    assert_eq!(chat(&mut session, &mut store, "s5 SEARCH RECENT\r\n"), "* SEARCH\r\ns5 OK SEARCH completed\r\n");
    assert_eq!(
        chat(&mut session, &mut store, "s6 SEARCH (OR 1 3) UNSEEN\r\n"),
        "* SEARCH 3\r\ns6 OK SEARCH completed\r\n"
    );
    assert!(store.log.is_empty(), "{:?}", store.log);
}

#[test]
fn header_and_body_keys_load_only_undecided_messages() {
    let mut store = search_store();
    let mut session = selected(&mut store);
    store.log.clear();
    assert_eq!(chat(&mut session, &mut store, "s1 SEARCH FROM ann\r\n"), "* SEARCH 1\r\ns1 OK SEARCH completed\r\n");
    assert_eq!(
        chat(&mut session, &mut store, "s2 SEARCH CHARSET UTF-8 SUBJECT {5+}\r\ncafé\r\n"),
        "* SEARCH 3\r\ns2 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s3 SEARCH BODY NUMBERS\r\n"),
        "* SEARCH 2\r\ns3 OK SEARCH completed\r\n"
    );
    assert_eq!(chat(&mut session, &mut store, "s4 SEARCH TEXT lunch\r\n"), "* SEARCH 1\r\ns4 OK SEARCH completed\r\n");
    assert_eq!(
        chat(&mut session, &mut store, "s5 SEARCH HEADER Subject Rep\r\n"),
        "* SEARCH 2\r\ns5 OK SEARCH completed\r\n"
    );
    store.log.clear();
    assert_eq!(
        chat(&mut session, &mut store, "s6 SEARCH SEEN BODY pizza\r\n"),
        "* SEARCH 1\r\ns6 OK SEARCH completed\r\n"
    );
    assert!(
        matches!(&store.log[..], [Request::Fetch { uids, content: true, .. }] if uids == &[1]),
        "only the seen message needs its body: {:?}",
        store.log
    );
}

#[test]
fn date_keys_use_internal_and_sent_dates() {
    let mut store = search_store();
    let mut session = selected(&mut store);
    assert_eq!(
        chat(&mut session, &mut store, "s1 SEARCH SENTON 6-Jan-2026\r\n"),
        "* SEARCH 2\r\ns1 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s2 SEARCH SENTBEFORE 6-Jan-2026\r\n"),
        "* SEARCH 1\r\ns2 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s3 SEARCH SENTSINCE 1-Jan-2026\r\n"),
        "* SEARCH 1 2\r\ns3 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s4 SEARCH ON 14-Nov-2023\r\n"),
        "* SEARCH 1 2 3\r\ns4 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s5 SEARCH BEFORE 14-Nov-2023\r\n"),
        "* SEARCH\r\ns5 OK SEARCH completed\r\n"
    );
    assert_eq!(
        chat(&mut session, &mut store, "s6 SEARCH SINCE 15-Nov-2023\r\n"),
        "* SEARCH\r\ns6 OK SEARCH completed\r\n"
    );
}

#[test]
fn uid_search_answers_uids() {
    let mut store = search_store();
    let mut session = selected(&mut store);
    chat(&mut session, &mut store, "t1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\nx1 EXPUNGE\r\n");
    assert_eq!(chat(&mut session, &mut store, "s1 UID SEARCH ALL\r\n"), "* SEARCH 2 3\r\ns1 OK SEARCH completed\r\n");
    assert_eq!(chat(&mut session, &mut store, "s2 SEARCH UID 3\r\n"), "* SEARCH 2\r\ns2 OK SEARCH completed\r\n");
}

#[test]
fn unknown_charsets_are_refused_with_badcharset() {
    let mut store = search_store();
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "s1 SEARCH CHARSET KOI8-R TEXT x\r\n");
    assert_eq!(output, "s1 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n");
    let output = chat(&mut session, &mut store, "s2 SEARCH CHARSET utf-8 SUBJECT Lunch\r\n");
    assert_eq!(output, "* SEARCH 1\r\ns2 OK SEARCH completed\r\n");
}

#[test]
fn imap4rev2_clients_get_esearch() {
    let mut store = search_store();
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "e ENABLE IMAP4rev2\r\ns SELECT INBOX\r\n");
    let output = chat(&mut session, &mut store, "s1 SEARCH UNSEEN\r\n");
    assert_eq!(output, "* ESEARCH (TAG \"s1\") ALL 2:3\r\ns1 OK SEARCH completed\r\n");
    let output = chat(&mut session, &mut store, "s2 UID SEARCH RETURN (MIN MAX COUNT) ALL\r\n");
    assert_eq!(output, "* ESEARCH (TAG \"s2\") UID MIN 1 MAX 3 COUNT 3\r\ns2 OK SEARCH completed\r\n");
    let output = chat(&mut session, &mut store, "s3 SEARCH RETURN (COUNT) DRAFT\r\n");
    assert_eq!(output, "* ESEARCH (TAG \"s3\") COUNT 0\r\ns3 OK SEARCH completed\r\n");
}

#[test]
fn search_return_works_for_imap4rev1_clients_too() {
    let mut store = search_store();
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "s1 SEARCH RETURN () FROM example\r\n");
    assert_eq!(output, "* ESEARCH (TAG \"s1\") ALL 1:3\r\ns1 OK SEARCH completed\r\n");
    let output = chat(&mut session, &mut store, "s2 SEARCH RETURN (SAVE) ALL\r\n");
    assert_eq!(output, "s2 BAD SAVE is not supported\r\n");
}

#[test]
fn content_searches_load_in_batches() {
    let mut store = store_with(7);
    let mut config = config();
    config.limits = Limits { fetch_batch_messages: 3, ..Limits::default() };
    let mut session = session_with(config);
    chat(&mut session, &mut store, "a LOGIN alice secret\r\nb SELECT INBOX\r\n");
    store.log.clear();
    let output = chat(&mut session, &mut store, "s1 SEARCH BODY \"body 5\"\r\n");
    assert_eq!(output, "* SEARCH 5\r\ns1 OK SEARCH completed\r\n");
    let batches: Vec<usize> = store
        .log
        .iter()
        .map(|r| match r {
            Request::Fetch { uids, .. } => uids.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(batches, [3, 3, 1]);
}

#[test]
fn too_many_search_keys_are_refused() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let keys = " SEEN".repeat(1500);
    let output = chat(&mut session, &mut store, &format!("s1 SEARCH{keys}\r\n"));
    assert_eq!(output, "s1 BAD Too many search keys\r\n");
}
