//! FETCH and UID FETCH: items, sections, partials, BINARY, the implicit `\Seen`, batching and
//! backpressure.

use super::*;
use crate::proto::Limits;
use tidings_core::OUTPUT_BYTES_HIGH_WATER;

const MIME: &str = "From: Ann <ann@example.org>\r\n\
                    To: bob@example.org\r\n\
                    Subject: parts\r\n\
                    Content-Type: multipart/mixed; boundary=b\r\n\
                    \r\n\
                    --b\r\n\
                    \r\n\
                    Hello\r\n\
                    --b\r\n\
                    Content-Transfer-Encoding: base64\r\n\
                    \r\n\
                    d29ybGQ=\r\n\
                    --b--\r\n";

fn mime_store() -> FakeStore {
    let mut store = FakeStore::new();
    store.deliver(INBOX, MIME, flags(&[SystemFlag::Seen]));
    store
}

#[test]
fn metadata_items_come_from_the_session_without_loading_content() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    store.log.clear();
    let output = chat(&mut session, &mut store, "f1 FETCH 1:2 (UID FLAGS RFC822.SIZE INTERNALDATE)\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 51 INTERNALDATE \"14-Nov-2023 22:13:21 +0000\")\r\n\
         * 2 FETCH (UID 2 FLAGS () RFC822.SIZE 51 INTERNALDATE \"14-Nov-2023 22:13:22 +0000\")\r\n\
         f1 OK FETCH completed\r\n"
    );
    assert!(store.log.is_empty(), "{:?}", store.log);
}

#[test]
fn uid_fetch_always_includes_the_uid() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 UID FETCH 2 FLAGS\r\n");
    assert_eq!(output, "* 2 FETCH (UID 2 FLAGS ())\r\nf1 OK FETCH completed\r\n");
}

#[test]
fn body_peek_returns_sections_without_setting_seen() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: message 1\r\n\r\n BODY[TEXT] {8}\r\nbody 1\r\n)\r\n\
         f1 OK FETCH completed\r\n"
    );
    assert!(!store.mailboxes[INBOX].messages[&1].meta.flags.has(SystemFlag::Seen));
}

#[test]
fn a_body_fetch_sets_seen_and_reports_flags() {
    let mut store = store_with(2);
    store.set_flags(INBOX, 2, flags(&[SystemFlag::Seen]));
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1:2 BODY[TEXT]\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n FLAGS (\\Seen))\r\n* 2 FETCH (BODY[TEXT] {8}\r\nbody 2\r\n)\r\nf1 OK FETCH completed\r\n"
    );
    assert!(store.mailboxes[INBOX].messages[&1].meta.flags.has(SystemFlag::Seen));
    let stores: Vec<_> = store.log.iter().filter(|r| matches!(r, Request::Store { .. })).collect();
    assert_eq!(stores.len(), 1, "only the unseen message is changed");
    assert!(matches!(stores[0], Request::Store { uids, change: FlagChange::Add, .. } if uids == &[1]));
}

#[test]
fn rfc822_forms_and_partials() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1 (RFC822.HEADER BODY.PEEK[]<9.7>)\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (RFC822.HEADER {43}\r\nSubject: message 1\r\nFrom: a@example.org\r\n\r\n BODY[]<9> {7}\r\nmessage)\r\n\
         f1 OK FETCH completed\r\n"
    );
    let output = chat(&mut session, &mut store, "f2 FETCH 1 BODY.PEEK[]<500.10>\r\n");
    assert_eq!(output, "* 1 FETCH (BODY[]<500> {0}\r\n)\r\nf2 OK FETCH completed\r\n");
    let output = chat(&mut session, &mut store, "f3 FETCH 1 RFC822\r\n");
    assert!(output.starts_with("* 1 FETCH (RFC822 {51}\r\nSubject: message 1\r\n"), "{output}");
    assert!(output.contains(" FLAGS (\\Seen))\r\n"), "RFC822 sets \\Seen: {output}");
}

#[test]
fn mime_parts_binary_and_structure() {
    let mut store = mime_store();
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1 (BODY[1] BODY[2.MIME] BINARY.PEEK[2] BINARY.SIZE[2])\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (BODY[1] {5}\r\nHello BODY[2.MIME] {37}\r\nContent-Transfer-Encoding: base64\r\n\r\n \
         BINARY[2] {5}\r\nworld BINARY.SIZE[2] 5)\r\nf1 OK FETCH completed\r\n"
    );
    let output = chat(&mut session, &mut store, "f2 FETCH 1 (ENVELOPE BODYSTRUCTURE BODY)\r\n");
    assert!(
        output.starts_with("* 1 FETCH (ENVELOPE (NIL \"parts\" ((\"Ann\" NIL \"ann\" \"example.org\"))"),
        "{output}"
    );
    assert!(output.contains(" BODYSTRUCTURE ((\"TEXT\" \"plain\""), "{output}");
    assert!(output.contains(" BODY ((\"TEXT\" \"plain\""), "{output}");
    let output = chat(&mut session, &mut store, "f3 FETCH 1 BODY.PEEK[7]\r\n");
    assert_eq!(output, "* 1 FETCH (BODY[7] NIL)\r\nf3 OK FETCH completed\r\n");
}

#[test]
fn macros_expand() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1 FAST\r\n");
    assert!(
        output.starts_with("* 1 FETCH (FLAGS () INTERNALDATE \"") && output.contains("RFC822.SIZE 51)"),
        "{output}"
    );
    let output = chat(&mut session, &mut store, "f2 FETCH 1 ALL\r\n");
    assert!(output.contains(" ENVELOPE ("), "{output}");
    let output = chat(&mut session, &mut store, "f3 FETCH 1 FULL\r\n");
    assert!(output.contains(" BODY (\"TEXT\" \"plain\""), "{output}");
}

#[test]
fn modseq_without_condstore_is_bad() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1 (MODSEQ)\r\n");
    assert_eq!(output, "f1 BAD MODSEQ needs CONDSTORE, which is not supported\r\n");
}

#[test]
fn content_is_loaded_in_batches() {
    let mut store = store_with(10);
    let mut config = config();
    config.limits = Limits { fetch_batch_messages: 4, ..Limits::default() };
    let mut session = session_with(config);
    chat(&mut session, &mut store, "a LOGIN alice secret\r\nb SELECT INBOX\r\n");
    store.log.clear();
    let output = chat(&mut session, &mut store, "f1 FETCH 1:* BODY.PEEK[]\r\n");
    assert_eq!(lines_starting(&output, "* ").len(), 10);
    let batches: Vec<Vec<u32>> = store
        .log
        .iter()
        .filter_map(|r| match r {
            Request::Fetch { uids, content: true, .. } => Some(uids.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(batches, [vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]]);
}

#[test]
fn a_huge_fetch_flushes_at_the_high_water_mark_and_holds_one_batch() {
    let mut store = FakeStore::new();
    let body = "x".repeat(60 * 1024);
    for _ in 0..40 {
        store.deliver(INBOX, &format!("Subject: big\r\n\r\n{body}\r\n"), Flags::new());
    }
    let mut config = config();
    config.limits.fetch_batch_messages = 8;
    let mut session = session_with(config);
    chat(&mut session, &mut store, "a LOGIN alice secret\r\nb SELECT INBOX\r\n");
    session.feed(b"f1 FETCH 1:* BODY.PEEK[]\r\n");
    let (mut flushes, mut total, mut largest) = (0, 0, 0);
    loop {
        let step = session.poll();
        let output = session.take_output();
        largest = largest.max(output.len());
        total += output.len();
        match step {
            Step::Request(request) => {
                if let Request::Fetch { uids, .. } = &request {
                    assert!(uids.len() <= 8);
                }
                let response = store.answer(request);
                session.resolve(response);
            }
            Step::Flush => flushes += 1,
            Step::NeedInput => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(flushes >= 4, "{flushes} flushes");
    assert!(total > 40 * 60 * 1024);
    assert!(largest < OUTPUT_BYTES_HIGH_WATER + 70 * 1024, "output piled up to {largest} octets");
}

#[test]
fn pipelined_commands_wait_behind_a_flush() {
    let mut store = FakeStore::new();
    let body = "y".repeat(100 * 1024);
    for _ in 0..4 {
        store.deliver(INBOX, &format!("Subject: big\r\n\r\n{body}\r\n"), Flags::new());
    }
    let mut session = selected(&mut store);
    session.feed(b"f1 FETCH 1:4 BODY.PEEK[]\r\nn1 NOOP\r\n");
    let mut saw_flush_before_noop = false;
    let mut output = String::new();
    loop {
        let step = session.poll();
        let chunk = text(session.take_output());
        if step == Step::Flush && !output.contains("n1 OK") && !chunk.contains("n1 OK") {
            saw_flush_before_noop = true;
        }
        output.push_str(&chunk);
        match step {
            Step::Request(request) => {
                let response = store.answer(request);
                session.resolve(response);
            }
            Step::Flush => {}
            Step::NeedInput => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(saw_flush_before_noop);
    assert!(output.ends_with("f1 OK FETCH completed\r\nn1 OK NOOP completed\r\n"));
}

#[test]
fn a_message_gone_meanwhile_is_left_out_with_expungeissued() {
    let mut store = store_with(2);
    let mut session = selected(&mut store);
    store.remove(INBOX, 2);
    let output = chat(&mut session, &mut store, "f1 FETCH 1:2 BODY.PEEK[TEXT]\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n)\r\nf1 OK [EXPUNGEISSUED] Some messages no longer exist\r\n"
    );
}

#[test]
fn binary_content_with_nul_is_sent_as_literal8() {
    let mut store = FakeStore::new();
    // base64 of "a\0b"
    store.deliver(INBOX, "Content-Transfer-Encoding: base64\r\n\r\nYQBi\r\n", Flags::new());
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])\r\n");
    assert_eq!(output, "* 1 FETCH (BINARY[1] ~{3}\r\na\0b BINARY.SIZE[1] 3)\r\nf1 OK FETCH completed\r\n");
}

#[test]
fn an_unknown_transfer_encoding_makes_binary_fail_with_unknown_cte() {
    let mut store = FakeStore::new();
    store.deliver(INBOX, "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n", Flags::new());
    let mut session = selected(&mut store);
    let output = chat(&mut session, &mut store, "f1 FETCH 1 (UID BINARY.PEEK[1])\r\n");
    assert_eq!(
        output,
        "* 1 FETCH (UID 1)\r\nf1 NO [UNKNOWN-CTE] A part's Content-Transfer-Encoding cannot be decoded; fetch BODY[part] instead\r\n"
    );
}
