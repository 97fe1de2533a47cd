//! What a hostile or broken client may send: huge literals, deep nesting, huge sequence sets,
//! invalid mailbox names, junk. None of it may panic or make the session hold more than its
//! limits.

use super::*;
use crate::proto::Limits;

#[test]
fn a_synchronizing_literal_of_4_gb_is_refused_before_it_is_sent() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "a1 APPEND INBOX {4000000000}\r\n");
    assert_eq!(output, "a1 BAD Literal too large\r\n");
    assert_eq!(chat(&mut session, &mut store, "a2 NOOP\r\n"), "a2 OK NOOP completed\r\n", "the session goes on");
}

#[test]
fn a_non_synchronizing_literal_of_4_gb_ends_the_session() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    session.feed(b"a1 APPEND INBOX {4000000000+}\r\nSubject: x\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::Close);
    assert_eq!(output, "* BYE [TOOBIG] Literal of 4000000000 octets is over the limit of 26279936\r\n");
}

#[test]
fn a_non_synchronizing_literal_beyond_32_bits_ends_the_session_and_its_octets_never_run() {
    // RFC 9051 §9 counts literals with number64: `{4294967296+}` announces a literal too, and
    // the octets after it are the client's literal data, not commands.
    for (count, shown) in [("4294967296", "4294967296"), ("99999999999999999999999", "18446744073709551615")] {
        let mut store = FakeStore::new();
        let mut session = logged_in(&mut store);
        store.log.clear();
        session.feed(format!("a1 APPEND INBOX {{{count}+}}\r\na2 CREATE Smuggled\r\n").as_bytes());
        let (step, output) = drive(&mut session, &mut store);
        assert_eq!(step, Step::Close);
        assert_eq!(output, format!("* BYE [TOOBIG] Literal of {shown} octets is over the limit of 26279936\r\n"));
        assert!(store.log.is_empty(), "{:?}", store.log);
        assert!(!store.mailboxes.contains_key("Smuggled"));
    }
}

#[test]
fn a_literal_count_beyond_32_bits_is_a_syntax_error() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    let output = chat(&mut session, &mut store, "a1 APPEND INBOX {99999999999}\r\n");
    assert_eq!(output, "a1 BAD Syntax error or unknown command\r\n");
}

#[test]
fn a_literal_over_a_small_limit_is_refused_and_one_under_is_taken() {
    let mut config = config();
    config.limits = Limits { literal_bytes_max: 100, command_bytes_max: 2000, ..Limits::default() };
    let mut session = session_with(config);
    let mut store = FakeStore::new();
    chat(&mut session, &mut store, "a LOGIN alice secret\r\n");
    assert_eq!(chat(&mut session, &mut store, "a1 APPEND INBOX {101}\r\n"), "a1 BAD Literal too large\r\n");
    let message = "x".repeat(100);
    let output = chat(&mut session, &mut store, &format!("a2 APPEND INBOX {{100+}}\r\n{message}\r\n"));
    assert_eq!(output, "a2 OK [APPENDUID 1001 1] APPEND completed\r\n");
}

#[test]
fn an_overlong_command_is_read_to_its_end_and_refused() {
    let mut config = config();
    config.limits = Limits { literal_bytes_max: 100, command_bytes_max: 2000, ..Limits::default() };
    let mut session = session_with(config);
    let mut store = FakeStore::new();
    let long = format!("a1 NOOP {}\r\na2 NOOP\r\n", "x".repeat(5000));
    let output = chat(&mut session, &mut store, &long);
    assert_eq!(output, "a1 BAD Command too long\r\na2 OK NOOP completed\r\n");
}

#[test]
fn deeply_nested_parentheses_are_a_syntax_error_not_a_stack_overflow() {
    let mut store = store_with(1);
    let mut session = selected(&mut store);
    let deep = format!("s1 SEARCH {}ALL{}\r\n", "(".repeat(100_000), ")".repeat(100_000));
    let output = chat(&mut session, &mut store, &deep);
    assert_eq!(output, "s1 BAD Syntax error or unknown command\r\n");
    let deep = format!("s2 SEARCH {}ALL\r\n", "NOT ".repeat(100_000));
    assert_eq!(chat(&mut session, &mut store, &deep), "s2 BAD Syntax error or unknown command\r\n");
    let deep = format!("l1 LIST {}\r\n", "(".repeat(100_000));
    assert_eq!(chat(&mut session, &mut store, &deep), "l1 BAD Syntax error or unknown command\r\n");
    let deep = format!("f1 FETCH 1 {}\r\n", "(".repeat(100_000));
    assert_eq!(chat(&mut session, &mut store, &deep), "f1 BAD Syntax error or unknown command\r\n");
}

#[test]
fn a_sequence_set_with_a_million_ranges_resolves_within_the_mailbox() {
    let mut store = store_with(3);
    let mut session = selected(&mut store);
    let ranges: Vec<String> = (0..1_000_000u64).map(|i| format!("{}:{}", i * 4 + 2, i * 4 + 3)).collect();
    let output = chat(&mut session, &mut store, &format!("f1 UID FETCH {} FLAGS\r\n", ranges.join(",")));
    assert_eq!(output, "* 2 FETCH (UID 2 FLAGS ())\r\n* 3 FETCH (UID 3 FLAGS ())\r\nf1 OK FETCH completed\r\n");
    let output = chat(&mut session, &mut store, &format!("s1 UID SEARCH UID {}\r\n", ranges.join(",")));
    assert_eq!(output, "* SEARCH 2 3\r\ns1 OK SEARCH completed\r\n");
    let singles: Vec<String> = (0..1_000_000u32).map(|i| (i % 3 + 1).to_string()).collect();
    let output = chat(&mut session, &mut store, &format!("t1 STORE {} +FLAGS.SILENT (\\Seen)\r\n", singles.join(",")));
    assert_eq!(output, "t1 OK STORE completed\r\n");
    assert!(matches!(store.log.last(), Some(Request::Store { uids, .. }) if uids == &[1, 2, 3]));
}

#[test]
fn invalid_modified_utf7_is_bad() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    store.log.clear();
    for (tag, name) in [("a1", "&AGE-"), ("a2", "&Jjo"), ("a3", "&2D0-"), ("a4", "a&AOl-")] {
        let output = chat(&mut session, &mut store, &format!("{tag} CREATE \"{name}\"\r\n"));
        assert_eq!(output, format!("{tag} BAD Mailbox name is not valid modified UTF-7\r\n"));
    }
    let output = chat(&mut session, &mut store, "a5 SELECT \"&-&\"\r\n");
    assert_eq!(output, "a5 BAD Mailbox name is not valid modified UTF-7\r\n");
    assert!(store.log.is_empty());
}

#[test]
fn invalid_utf8_names_are_bad_after_utf8_accept() {
    let mut store = FakeStore::new();
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "e ENABLE UTF8=ACCEPT\r\n");
    session.feed(b"a1 CREATE {2+}\r\n\xff\xfe\r\n");
    let (_, output) = drive(&mut session, &mut store);
    assert_eq!(output, "a1 BAD Mailbox name is not UTF-8\r\n");
}

#[test]
fn binary_junk_gets_bad_replies_never_a_panic() {
    let mut config = config();
    config.limits.errors_max = 1_000_000;
    let mut store = store_with(2);
    let mut session = session_with(config);
    chat(&mut session, &mut store, "a LOGIN alice secret\r\nb SELECT INBOX\r\n");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut junk = Vec::new();
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        junk.push(match seed % 5 {
            0 => b'\n',
            1 => b' ',
            _ => (seed >> 24) as u8,
        });
    }
    for chunk in junk.chunks(97) {
        session.feed(chunk);
        let (step, _) = drive(&mut session, &mut store);
        if step == Step::Close {
            break;
        }
        assert_eq!(step, Step::NeedInput);
    }
}

#[test]
fn commands_in_the_wrong_state_are_bad_and_counted() {
    let mut config = config();
    config.limits.errors_max = 3;
    let mut session = session_with(config);
    let mut store = FakeStore::new();
    session.feed(b"a1 FETCH 1 FLAGS\r\na2 CLOSE\r\na3 UNSELECT\r\na4 NOOP\r\n");
    let (step, output) = drive(&mut session, &mut store);
    assert_eq!(step, Step::Close);
    assert_eq!(
        output,
        "a1 BAD Not authenticated: log in first\r\na2 BAD Not authenticated: log in first\r\n\
         a3 BAD Not authenticated: log in first\r\n* BYE Too many errors\r\n"
    );
}

#[test]
fn a_literal_split_across_reads_ends_where_it_should() {
    let mut store = FakeStore::new();
    let mut session = session_with(config());
    assert_eq!(chat(&mut session, &mut store, "a1 AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    // A SASL response with a literal (nonsense, but framed like any line): it ends after it.
    chat(&mut session, &mut store, "AGEAYg== {5+}\r\nhe");
    let output = chat(&mut session, &mut store, "llo\r\nc1 NOOP\r\n");
    assert_eq!(output, "a1 BAD Invalid base64 in the SASL response\r\nc1 OK NOOP completed\r\n");
    let mut session = logged_in(&mut store);
    chat(&mut session, &mut store, "a2 APPEND INBOX {10+}\r\n0123");
    chat(&mut session, &mut store, "45");
    let output = chat(&mut session, &mut store, "6789\r\na3 NOOP\r\n");
    assert_eq!(output, "a2 OK [APPENDUID 1001 1] APPEND completed\r\na3 OK NOOP completed\r\n");
    assert_eq!(&store.mailboxes[INBOX].messages[&1].content[..], b"0123456789");
}
