use std::sync::Arc;

use bytes::Bytes;
use tidings_core::{Address, INBOX, Op, Outcome, Path};

use super::*;
use crate::{Directory, DirectoryConfig, LoginError, Resolution};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tidings-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

fn create(address: &str) -> Op {
    Op::CreateAccount {
        address: addr(address),
        password_hash: tidings_core::password::hash("secret").unwrap(),
        created_at: 1,
        uidvalidity: 7,
    }
}

fn deliver(to: &[&str], body: &'static [u8]) -> Op {
    Op::Deliver {
        recipients: to.iter().map(|a| addr(a)).collect(),
        mailbox: INBOX.into(),
        internal_date: 1_700_000_000,
        message: Bytes::from_static(body),
    }
}

#[tokio::test]
async fn create_account_makes_standard_mailboxes_and_refuses_duplicates() {
    let dir = temp_dir("create");
    let store = SqliteStore::open(&dir, &StoreConfig::default()).unwrap();
    let ta = addr("ta@example.org");
    assert_eq!(store.apply(&ta, create("ta@example.org")).await, Ok(Outcome::Done));
    assert_eq!(store.apply(&ta, create("TA@example.org")).await, Err(StoreError::AccountExists(ta.clone())));
    // Each mailbox has its own UIDVALIDITY, counting up from the op's base (7).
    for (i, (name, _)) in tidings_core::STANDARD_MAILBOXES.iter().enumerate() {
        let listing = store.mailbox(&ta, name).await.unwrap().unwrap();
        assert_eq!((listing.uidvalidity, listing.uidnext, listing.messages.len()), (7 + i as u32, 1, 0), "{name}");
    }
    assert!(store.mailbox(&ta, "Nope").await.unwrap().is_none());
}

#[tokio::test]
async fn a_recovery_address_is_set_read_back_and_cleared() {
    let dir = temp_dir("recovery");
    let store = SqliteStore::open(&dir, &StoreConfig::default()).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    assert_eq!(store.account(&ta).await.unwrap().unwrap().recovery, None);
    let home = addr("ta@home.example");
    let set = Op::SetRecoveryAddress { address: ta.clone(), recovery: Some(home.clone()) };
    assert_eq!(store.apply(&ta, set).await, Ok(Outcome::Done));
    assert_eq!(store.account(&ta).await.unwrap().unwrap().recovery, Some(home));
    let clear = Op::SetRecoveryAddress { address: ta.clone(), recovery: None };
    store.apply(&ta, clear).await.unwrap();
    assert_eq!(store.account(&ta).await.unwrap().unwrap().recovery, None);
    let nobody = addr("nobody@example.org");
    let set = Op::SetRecoveryAddress { address: nobody.clone(), recovery: None };
    assert_eq!(store.apply(&nobody, set).await, Err(StoreError::NoSuchAccount(nobody)));
}

#[tokio::test]
async fn delivered_octets_come_back_exactly_with_increasing_uids() {
    let dir = temp_dir("deliver");
    let store = SqliteStore::open(&dir, &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let first = b"Subject: one\r\n\r\n.leading dot\r\n\0binary\xff\r\n";
    assert_eq!(
        store.apply(&ta, deliver(&["ta@example.org"], first)).await,
        Ok(Outcome::Delivered(vec![(ta.clone(), 1)]))
    );
    store.apply(&ta, deliver(&["ta@example.org"], b"two\r\n")).await.unwrap();
    let listing = store.mailbox(&ta, INBOX).await.unwrap().unwrap();
    let sizes: Vec<_> = listing.messages.iter().map(|m| (m.uid, m.size)).collect();
    assert_eq!(sizes, vec![(1, first.len() as u64), (2, 5)]);
    assert_eq!(listing.uidnext, 3);
    assert_eq!(store.message(&ta, INBOX, 1).await.unwrap().unwrap(), &first[..]);
}

#[tokio::test]
async fn mapped_reads_see_what_is_in_the_database_file_and_in_the_wal() {
    let dir = temp_dir("mmap");
    let config = StoreConfig { shards: 1, reader_mmap_bytes: 1 << 20, ..StoreConfig::default() };
    let ta = addr("ta@example.org");
    {
        let store = SqliteStore::open(&dir, &config).unwrap();
        store.apply(&ta, create("ta@example.org")).await.unwrap();
        store.apply(&ta, deliver(&["ta@example.org"], b"one\r\n")).await.unwrap();
    } // closed: checkpointed into the database file
    let store = SqliteStore::open(&dir, &config).unwrap();
    store.apply(&ta, deliver(&["ta@example.org"], b"two\r\n")).await.unwrap();
    let read = store.messages(&ta, INBOX, vec![1, 2], true).await.unwrap().unwrap();
    let octets: Vec<_> = read.iter().map(|m| m.content.clone().unwrap()).collect();
    assert_eq!(octets, [&b"one\r\n"[..], &b"two\r\n"[..]]);
}

/// (blobs, sum of their references) in shard 0.
fn blobs(store: &SqliteStore) -> (i64, i64) {
    let conn = schema::open(&store.shards[0].readers.path, 1000).unwrap();
    conn.query_row("SELECT COUNT(*), COALESCE(SUM(refs), 0) FROM blobs", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
}

#[tokio::test]
async fn one_delivery_to_two_recipients_shares_one_blob_until_both_copies_and_its_log_entry_are_gone() {
    let dir = temp_dir("share");
    let config = StoreConfig { shards: 1, log_retain_ops: 6, ..StoreConfig::default() };
    let store = SqliteStore::open(&dir, &config).unwrap();
    let (a, b) = (addr("a@example.org"), addr("b@example.org"));
    store.apply(&a, create("a@example.org")).await.unwrap();
    store.apply(&b, create("b@example.org")).await.unwrap();
    store.apply(&a, deliver(&["a@example.org", "b@example.org", "gone@example.org"], b"hi\r\n")).await.unwrap();
    assert_eq!(blobs(&store), (1, 3), "two copies and the log entry");
    let expunge = |who: &Address| Op::Expunge { address: who.clone(), mailbox: INBOX.into(), uids: vec![1, 99] };
    assert_eq!(store.apply(&a, expunge(&a)).await, Ok(Outcome::Expunged(vec![1])));
    assert_eq!(blobs(&store), (1, 2));
    assert_eq!(store.message(&b, INBOX, 1).await.unwrap().unwrap(), &b"hi\r\n"[..]);
    store.apply(&b, expunge(&b)).await.unwrap();
    assert_eq!(blobs(&store), (1, 1), "the log entry still references the octets");
    for _ in 0..4 {
        store.apply(&a, Op::Expunge { address: a.clone(), mailbox: INBOX.into(), uids: vec![] }).await.unwrap();
    }
    assert_eq!(blobs(&store), (0, 0), "pruning the entry freed the blob");
}

#[tokio::test]
async fn a_delivery_log_entry_gives_back_the_whole_op_without_copying_the_message() {
    let dir = temp_dir("logentry");
    let store = SqliteStore::open(&dir, &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let body = vec![b'x'; 100_000];
    let op = Op::Deliver {
        recipients: vec![ta.clone()],
        mailbox: INBOX.into(),
        internal_date: 5,
        message: Bytes::from(body.clone()),
    };
    store.apply(&ta, op.clone()).await.unwrap();
    store.apply(&ta, Op::Expunge { address: ta.clone(), mailbox: INBOX.into(), uids: vec![1] }).await.unwrap();
    let log = store.log_since(ShardId(0), 1, 10).await.unwrap();
    let seqs: Vec<_> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![2, 3]);
    assert_eq!(log[0].op, op, "the expunged message's octets come back from the log");
    let conn = schema::open(&store.shards[0].readers.path, 1000).unwrap();
    let stored: i64 = conn.query_row("SELECT length(op) FROM oplog WHERE seq = 2", [], |r| r.get(0)).unwrap();
    assert!(stored < 200, "the entry holds the op without the message ({stored} octets)");
    let size: i64 = conn.query_row("SELECT size FROM oplog WHERE seq = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(size, stored + body.len() as i64);
}

#[tokio::test]
async fn the_log_is_bounded_by_octets_too_and_keeps_its_newest_entry() {
    let dir = temp_dir("logbytes");
    let config = StoreConfig { shards: 1, log_retain_bytes: 25_000, ..StoreConfig::default() };
    let store = SqliteStore::open(&dir, &config).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let big = |n: usize| Op::Deliver {
        recipients: vec![ta.clone()],
        mailbox: INBOX.into(),
        internal_date: 0,
        message: Bytes::from(vec![b'y'; n]),
    };
    for _ in 0..5 {
        store.apply(&ta, big(10_000)).await.unwrap();
    }
    let seqs: Vec<_> = store.log_since(ShardId(0), 0, 100).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![5, 6], "two 10 kB entries fit in 25 kB");
    store.apply(&ta, big(40_000)).await.unwrap();
    let seqs: Vec<_> = store.log_since(ShardId(0), 0, 100).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![7], "an entry larger than the bound still stays while it is the newest");
    // The retained octets are known again after a restart.
    drop(store);
    let store = SqliteStore::open(&dir, &config).unwrap();
    store.apply(&ta, big(10_000)).await.unwrap();
    let seqs: Vec<_> = store.log_since(ShardId(0), 0, 100).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![8]);
}

#[tokio::test]
async fn refused_op_in_a_batch_does_not_undo_the_others() {
    let dir = temp_dir("batch");
    let store = Arc::new(SqliteStore::open(&dir, &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap());
    let ta = addr("ta@example.org");
    // Queue all three before awaiting any, so they land in one batch.
    let p1 = store.submit(ShardId(0), create("ta@example.org")).await.unwrap();
    let p2 = store.submit(ShardId(0), create("ta@example.org")).await.unwrap();
    let p3 = store.submit(ShardId(0), deliver(&["ta@example.org"], b"x\r\n")).await.unwrap();
    assert_eq!(p1.await, Ok(Outcome::Done));
    assert_eq!(p2.await, Err(StoreError::AccountExists(ta.clone())));
    assert_eq!(p3.await, Ok(Outcome::Delivered(vec![(ta.clone(), 1)])));
    let conn = schema::open(&store.shards[0].readers.path, 1000).unwrap();
    let logged: i64 = conn.query_row("SELECT COUNT(*) FROM oplog", [], |r| r.get(0)).unwrap();
    assert_eq!(logged, 2, "only applied ops are logged");
}

#[tokio::test]
async fn a_database_error_in_one_op_fails_that_op_alone() {
    let dir = temp_dir("oneop");
    let store = SqliteStore::open(&dir, &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let (a, b) = (addr("a@example.org"), addr("b@example.org"));
    store.apply(&a, create("a@example.org")).await.unwrap();
    store.apply(&b, create("b@example.org")).await.unwrap();
    // a's INBOX has used up its 32-bit UIDs: reading its next UID fails inside the writer.
    let conn = schema::open(&store.shards[0].readers.path, 1000).unwrap();
    conn.execute(
        "UPDATE mailboxes SET uidnext = 4294967296 WHERE name = 'INBOX'
         AND account_id = (SELECT id FROM accounts WHERE address = 'a@example.org')",
        [],
    )
    .unwrap();
    let to_a = store.submit(ShardId(0), deliver(&["a@example.org"], b"x\r\n")).await.unwrap();
    let to_b = store.submit(ShardId(0), deliver(&["b@example.org"], b"y\r\n")).await.unwrap();
    assert!(matches!(to_a.await, Err(StoreError::Database(_))));
    assert_eq!(to_b.await, Ok(Outcome::Delivered(vec![(b.clone(), 1)])));
    assert_eq!(store.message(&a, INBOX, 4294967295).await.unwrap(), None);
    let kept: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 1, "only b's copy was stored");
}

#[tokio::test]
async fn invalid_store_settings_are_refused_at_open() {
    let config = StoreConfig { log_retain_ops: 0, ..StoreConfig::default() };
    assert!(matches!(SqliteStore::open(&temp_dir("invalid"), &config), Err(StoreError::Layout(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_are_all_stored_once_with_unique_uids() {
    let dir = temp_dir("concurrent");
    let store = Arc::new(SqliteStore::open(&dir, &StoreConfig::default()).unwrap());
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..400u32 {
        let store = Arc::clone(&store);
        let ta = ta.clone();
        tasks.push(tokio::spawn(async move {
            let body = Bytes::from(format!("message {i}\r\n"));
            store.deliver(&[ta], INBOX, 0, body).await.unwrap()[0].1
        }));
    }
    let mut uids = Vec::new();
    for t in tasks {
        uids.push(t.await.unwrap());
    }
    uids.sort();
    assert_eq!(uids, (1..=400).collect::<Vec<_>>());
    let listing = store.mailbox(&ta, INBOX).await.unwrap().unwrap();
    let mut bodies = Vec::new();
    for m in &listing.messages {
        bodies.push(String::from_utf8(store.message(&ta, INBOX, m.uid).await.unwrap().unwrap().to_vec()).unwrap());
    }
    bodies.sort();
    let mut expected: Vec<_> = (0..400).map(|i| format!("message {i}\r\n")).collect();
    expected.sort();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn state_survives_reopen_and_layout_keeps_its_shard_count() {
    let dir = temp_dir("reopen");
    let ta = addr("ta@example.org");
    {
        let store = SqliteStore::open(&dir, &StoreConfig { shards: 3, ..StoreConfig::default() }).unwrap();
        store.apply(&ta, create("ta@example.org")).await.unwrap();
        store.apply(&ta, deliver(&["ta@example.org"], b"kept\r\n")).await.unwrap();
    }
    let store = SqliteStore::open(&dir, &StoreConfig { shards: 8, ..StoreConfig::default() }).unwrap();
    assert_eq!(store.shard_map().count(), 3);
    assert_eq!(store.message(&ta, INBOX, 1).await.unwrap().unwrap(), &b"kept\r\n"[..]);
}

#[tokio::test]
async fn delete_account_removes_its_mail_and_frees_the_address() {
    let dir = temp_dir("delete");
    let store = SqliteStore::open(&dir, &StoreConfig::default()).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    store.apply(&ta, deliver(&["ta@example.org"], b"x\r\n")).await.unwrap();
    assert_eq!(store.apply(&ta, Op::DeleteAccount { address: ta.clone() }).await, Ok(Outcome::Done));
    assert!(store.account(&ta).await.unwrap().is_none());
    assert_eq!(
        store.apply(&ta, Op::DeleteAccount { address: ta.clone() }).await,
        Err(StoreError::NoSuchAccount(ta.clone()))
    );
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    assert!(store.mailbox(&ta, INBOX).await.unwrap().unwrap().messages.is_empty());
}

#[tokio::test]
async fn oplog_keeps_only_the_retained_tail() {
    let dir = temp_dir("retain");
    let config = StoreConfig { shards: 1, log_retain_ops: 5, ..StoreConfig::default() };
    let store = SqliteStore::open(&dir, &config).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    for _ in 0..20 {
        store.apply(&ta, deliver(&["ta@example.org"], b"x\r\n")).await.unwrap();
    }
    let log = store.log_since(ShardId(0), 0, 100).await.unwrap();
    let seqs: Vec<_> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![17, 18, 19, 20, 21]);
    assert_eq!(log[4].op, deliver(&["ta@example.org"], b"x\r\n"));
    assert_eq!(blobs(&store), (20, 25), "20 messages, 5 of them also referenced by the log");
}

async fn directory(name: &str, config: DirectoryConfig) -> (Directory, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(&temp_dir(name), &StoreConfig::default()).unwrap());
    for a in ["ta@mmsys.upenn.edu", "cis505@mmsys.upenn.edu", "ta@other.example", "postmaster@other.example"] {
        store.apply(&addr(a), create(a)).await.unwrap();
    }
    (Directory::new(store.clone(), &config).unwrap(), store)
}

#[tokio::test]
async fn directory_resolves_recipients_with_aliases_and_postmaster() {
    let config = DirectoryConfig {
        domains: vec!["empty.example".into()],
        domain_aliases: [("localhost".to_string(), "mmsys.upenn.edu".to_string())].into(),
        postmaster: Some("cis505@mmsys.upenn.edu".into()),
    };
    let (dir, _store) = directory("resolve", config).await;
    let path = |s: &str| Path::Mailbox(addr(s));
    assert_eq!(dir.resolve(&path("TA@localhost")).await.unwrap(), Resolution::Local(addr("ta@mmsys.upenn.edu")));
    assert_eq!(dir.resolve(&path("nobody@mmsys.upenn.edu")).await.unwrap(), Resolution::UnknownUser);
    assert_eq!(dir.resolve(&path("nobody@empty.example")).await.unwrap(), Resolution::UnknownUser);
    assert_eq!(dir.resolve(&path("x@elsewhere.example")).await.unwrap(), Resolution::NotLocal);
    assert_eq!(dir.resolve(&Path::Postmaster).await.unwrap(), Resolution::Local(addr("cis505@mmsys.upenn.edu")));
    assert_eq!(
        dir.resolve(&path("postmaster@mmsys.upenn.edu")).await.unwrap(),
        Resolution::Local(addr("cis505@mmsys.upenn.edu"))
    );
    assert_eq!(
        dir.resolve(&path("postmaster@other.example")).await.unwrap(),
        Resolution::Local(addr("postmaster@other.example"))
    );
}

#[tokio::test]
async fn login_by_full_address_or_unambiguous_local_part() {
    let (dir, _store) = directory("login", DirectoryConfig::default()).await;
    assert_eq!(dir.authenticate("cis505", "secret").await.unwrap().address, addr("cis505@mmsys.upenn.edu"));
    assert_eq!(dir.authenticate("TA@mmsys.upenn.edu", "secret").await.unwrap().address, addr("ta@mmsys.upenn.edu"));
    assert_eq!(dir.authenticate("ta", "secret").await, Err(LoginError::Invalid), "ta is in two domains");
    assert_eq!(dir.authenticate("cis505", "wrong").await, Err(LoginError::Invalid));
    assert_eq!(dir.authenticate("nobody", "secret").await, Err(LoginError::Invalid));
    assert_eq!(dir.authenticate("bad@@x", "secret").await, Err(LoginError::Invalid));
}

fn mailbox_names(infos: &[tidings_core::MailboxInfo]) -> Vec<&str> {
    infos.iter().map(|m| m.name.as_str()).collect()
}

#[tokio::test]
async fn mailboxes_are_created_with_superiors_renamed_with_inferiors_and_deleted_without_children() {
    let store =
        SqliteStore::open(&temp_dir("mailboxes"), &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let mk = |name: &str| Op::CreateMailbox { address: ta.clone(), name: name.into(), uidvalidity: 99 };
    store.apply(&ta, mk("Lists/rust/announce/")).await.unwrap();
    assert_eq!(store.apply(&ta, mk("lists/rust")).await, Ok(Outcome::Done), "names are case-sensitive");
    assert_eq!(store.apply(&ta, mk("Lists/rust")).await, Err(StoreError::MailboxExists("Lists/rust".into())));
    assert!(matches!(store.apply(&ta, mk("a//b")).await, Err(StoreError::InvalidMailboxName(_))));
    let names = store.mailboxes(&ta).await.unwrap();
    assert!(mailbox_names(&names).contains(&"Lists/rust/announce"));
    assert!(mailbox_names(&names).contains(&"Lists"));

    let rename = |from: &str, to: &str| Op::RenameMailbox {
        address: ta.clone(),
        from: from.into(),
        to: to.into(),
        uidvalidity: 5,
    };
    store.apply(&ta, rename("Lists", "Archive/Lists")).await.unwrap();
    let names = store.mailboxes(&ta).await.unwrap();
    assert!(mailbox_names(&names).contains(&"Archive/Lists/rust/announce"));
    assert!(!mailbox_names(&names).iter().any(|n| n.starts_with("Lists")));
    assert!(matches!(store.apply(&ta, rename("Archive", "Archive/x")).await, Err(StoreError::InvalidMailboxName(_))));

    let delete = |name: &str| Op::DeleteMailbox { address: ta.clone(), name: name.into() };
    assert_eq!(store.apply(&ta, delete("Archive/Lists")).await, Err(StoreError::HasChildren("Archive/Lists".into())));
    assert!(matches!(store.apply(&ta, delete("inbox")).await, Err(StoreError::Forbidden(_))));
    assert_eq!(store.apply(&ta, delete("Nope")).await, Err(StoreError::NoSuchMailbox("Nope".into())));
    store.apply(&ta, delete("Archive/Lists/rust/announce")).await.unwrap();
}

#[tokio::test]
async fn renaming_inbox_moves_its_messages_and_leaves_it_empty_with_its_uids_unused() {
    let store =
        SqliteStore::open(&temp_dir("inboxrename"), &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    store.apply(&ta, deliver(&["ta@example.org"], b"one\r\n")).await.unwrap();
    store.apply(&ta, deliver(&["ta@example.org"], b"two\r\n")).await.unwrap();
    store
        .apply(&ta, Op::RenameMailbox { address: ta.clone(), from: "INBOX".into(), to: "Old".into(), uidvalidity: 77 })
        .await
        .unwrap();
    let old = store.snapshot(&ta, "Old").await.unwrap().unwrap();
    assert_eq!((old.status.uidvalidity, old.messages.len()), (77, 2));
    let inbox = store.snapshot(&ta, "INBOX").await.unwrap().unwrap();
    assert_eq!((inbox.messages.len(), inbox.status.uidnext), (0, 3));
    assert_eq!(store.message(&ta, "Old", 2).await.unwrap().unwrap(), &b"two\r\n"[..]);
}

#[tokio::test]
async fn append_store_copy_move_and_expunge_keep_uids_flags_and_modseqs_straight() {
    use tidings_core::{FlagChange, Flags, SystemFlag};
    let store = SqliteStore::open(&temp_dir("imapops"), &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let mut seen = Flags::new();
    seen.set(SystemFlag::Seen, true);
    seen.add_keyword("$Important").unwrap();
    let append = |body: &'static [u8], flags: Flags| Op::Append {
        address: ta.clone(),
        mailbox: "Drafts".into(),
        flags,
        internal_date: 1_000,
        message: Bytes::from_static(body),
    };
    assert!(matches!(store.apply(&ta, append(b"a\r\n", seen.clone())).await, Ok(Outcome::Appended { uid: 1, .. })));
    store.apply(&ta, append(b"b\r\n", Flags::new())).await.unwrap();
    let before = store.snapshot(&ta, "Drafts").await.unwrap().unwrap();
    assert_eq!(before.messages[0].flags, seen);
    assert_eq!((before.status.unseen, before.status.size, before.status.highest_modseq), (1, 6, 2));

    let mut flagged = Flags::new();
    flagged.set(SystemFlag::Flagged, true);
    let set = Op::SetFlags {
        address: ta.clone(),
        mailbox: "Drafts".into(),
        uids: vec![2, 1, 9],
        change: FlagChange::Add,
        flags: flagged,
    };
    let Ok(Outcome::FlagsSet(changed)) = store.apply(&ta, set).await else { panic!() };
    assert_eq!(changed.iter().map(|m| (m.uid, m.modseq, m.size)).collect::<Vec<_>>(), vec![(1, 3, 3), (2, 3, 3)]);
    let sync = store.sync(&ta, "Drafts", 2).await.unwrap().unwrap();
    assert_eq!((sync.uids, sync.changed.len(), sync.highest_modseq), (vec![1, 2], 2, 3));

    let copy = |remove| Op::Copy {
        address: ta.clone(),
        from: "Drafts".into(),
        to: "Archive".into(),
        uids: vec![2, 1],
        remove,
    };
    let Ok(Outcome::Copied { pairs, .. }) = store.apply(&ta, copy(false)).await else { panic!() };
    assert_eq!(pairs, vec![(1, 1), (2, 2)]);
    let Ok(Outcome::Copied { pairs, .. }) = store.apply(&ta, copy(true)).await else { panic!() };
    assert_eq!(pairs, vec![(1, 3), (2, 4)]);
    assert!(store.snapshot(&ta, "Drafts").await.unwrap().unwrap().messages.is_empty());
    let archive = store.snapshot(&ta, "Archive").await.unwrap().unwrap();
    assert_eq!(archive.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(archive.messages[2].flags.has(SystemFlag::Seen) && archive.messages[2].flags.has_keyword("$important"));
    let fetched = store.messages(&ta, "Archive", vec![4, 3, 8], true).await.unwrap().unwrap();
    let contents: Vec<_> = fetched.iter().map(|m| (m.meta.uid, m.content.clone().unwrap())).collect();
    assert_eq!(contents, vec![(4, Bytes::from_static(b"b\r\n")), (3, Bytes::from_static(b"a\r\n"))]);
    let prefixes = store.message_prefixes(&ta, "Archive", vec![4, 3, 8], 2).await.unwrap().unwrap();
    let prefixes: Vec<_> = prefixes.iter().map(|m| (m.meta.uid, m.meta.size, m.content.clone().unwrap())).collect();
    assert_eq!(prefixes, vec![(4, 3, Bytes::from_static(b"b\r")), (3, 3, Bytes::from_static(b"a\r"))]);
    let longer = store.message_prefixes(&ta, "Archive", vec![4], 1 << 20).await.unwrap().unwrap();
    assert_eq!(longer[0].content.as_deref(), Some(&b"b\r\n"[..]), "a prefix longer than the message is all of it");
    assert!(store.message_prefixes(&ta, "Nope", vec![4], 2).await.unwrap().is_none());

    let expunge = Op::Expunge { address: ta.clone(), mailbox: "Archive".into(), uids: vec![3, 1, 3] };
    assert_eq!(store.apply(&ta, expunge).await, Ok(Outcome::Expunged(vec![1, 3])));
    assert_eq!(blobs(&store).0, 2, "two octet blobs, still shared by the remaining copies and the log");
}

#[tokio::test]
async fn every_mailbox_of_an_account_gets_its_own_increasing_uidvalidity() {
    let store =
        SqliteStore::open(&temp_dir("uidvalidity"), &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let validity = |name: &'static str| {
        let store = &store;
        let ta = ta.clone();
        async move { store.snapshot(&ta, name).await.unwrap().unwrap().status.uidvalidity }
    };
    let mut seen: Vec<u32> = Vec::new();
    for (name, _) in tidings_core::STANDARD_MAILBOXES {
        seen.push(store.snapshot(&ta, name).await.unwrap().unwrap().status.uidvalidity);
    }
    // CREATE P/Q makes P too: they must not share a value, or renaming P onto P/Q's old name
    // would bring P/Q's UIDVALIDITY back with other messages.
    store.apply(&ta, Op::CreateMailbox { address: ta.clone(), name: "P/Q".into(), uidvalidity: 7 }).await.unwrap();
    seen.push(validity("P").await);
    seen.push(validity("P/Q").await);
    let rename = |from: &str, to: &str| Op::RenameMailbox {
        address: ta.clone(),
        from: from.into(),
        to: to.into(),
        uidvalidity: 7,
    };
    store.apply(&ta, rename("P/Q", "Z")).await.unwrap();
    store.apply(&ta, rename("P", "T")).await.unwrap();
    store.apply(&ta, rename("T", "P/Q")).await.unwrap();
    assert_ne!(validity("P/Q").await, validity("Z").await);
    // Re-creating a deleted name gives a greater value, even with a smaller base.
    store.apply(&ta, Op::DeleteMailbox { address: ta.clone(), name: "Z".into() }).await.unwrap();
    store.apply(&ta, Op::CreateMailbox { address: ta.clone(), name: "Z".into(), uidvalidity: 1 }).await.unwrap();
    seen.push(validity("Z").await);
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, seen, "distinct and increasing in creation order: {seen:?}");
}

#[tokio::test]
async fn subscriptions_are_names_and_follow_renames() {
    let store = SqliteStore::open(&temp_dir("subs"), &StoreConfig { shards: 1, ..StoreConfig::default() }).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let sub = |name: &str, on| Op::SetSubscription { address: ta.clone(), name: name.into(), subscribed: on };
    store.apply(&ta, sub("Work", true)).await.unwrap();
    store.apply(&ta, Op::CreateMailbox { address: ta.clone(), name: "Work".into(), uidvalidity: 1 }).await.unwrap();
    store.apply(&ta, sub("Junk", false)).await.unwrap();
    store
        .apply(&ta, Op::RenameMailbox { address: ta.clone(), from: "Work".into(), to: "Job".into(), uidvalidity: 1 })
        .await
        .unwrap();
    let subscribed: Vec<_> =
        store.mailboxes(&ta).await.unwrap().into_iter().filter(|m| m.subscribed).map(|m| m.name).collect();
    assert_eq!(subscribed, vec!["Archive", "Drafts", "INBOX", "Job", "Sent", "Trash"]);
}

#[tokio::test]
async fn watchers_of_an_account_hear_of_its_changes_only() {
    let store = SqliteStore::open(&temp_dir("watch"), &StoreConfig::default()).unwrap();
    let (ta, bob) = (addr("ta@example.org"), addr("bob@example.org"));
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    store.apply(&bob, create("bob@example.org")).await.unwrap();
    let mut watch_ta = store.watch(&ta);
    let mut watch_bob = store.watch(&bob);
    store.apply(&ta, deliver(&["ta@example.org"], b"x\r\n")).await.unwrap();
    assert!(watch_ta.has_changed().unwrap());
    assert!(!watch_bob.has_changed().unwrap());
    watch_ta.borrow_and_update();
    store.apply(&ta, Op::Expunge { address: ta.clone(), mailbox: INBOX.into(), uids: vec![1] }).await.unwrap();
    assert!(watch_ta.has_changed().unwrap());
    drop(watch_bob.borrow_and_update());
}

fn post(room: &str, id: &str, at_ms: i64, body: &str) -> Op {
    Op::Post {
        message: tidings_core::ChatMessage {
            id: id.into(),
            room: room.parse().unwrap(),
            seq: 0,
            at_ms,
            nick: "tim".into(),
            account: None,
            via: tidings_core::Frontend::Line,
            kind: tidings_core::MessageKind::Text,
            body: body.into(),
        },
    }
}

#[tokio::test]
async fn chat_history_pages_in_delivery_order_and_survives_reopening() {
    use tidings_core::{HistoryBound, HistoryQuery, RoomModes, RoomName};
    let dir = temp_dir("chat");
    let room: RoomName = "#Cooking".parse().unwrap();
    assert_eq!(room.as_str(), "#cooking");
    {
        let store = SqliteStore::open(&dir, &StoreConfig::default()).unwrap();
        // Queued together, applied in queue order: sequence numbers follow it.
        let shard = store.shard_map().shard_of_room(&room);
        let mut pendings = Vec::new();
        for i in 1..=10 {
            pendings.push(
                store.submit(shard, post("#cooking", &format!("id{i:02}"), 1000 + i, &format!("m{i}"))).await.unwrap(),
            );
        }
        for (i, pending) in pendings.into_iter().enumerate() {
            assert_eq!(pending.await, Ok(Outcome::Posted { seq: i as u64 + 1 }));
        }
        let create =
            |exclusive| Op::CreateRoom { room: room.clone(), created_ms: 1, modes: RoomModes::new_room(), exclusive };
        assert_eq!(store.apply_room(&room, create(false)).await, Ok(Outcome::Done));
        assert_eq!(store.apply_room(&room, create(true)).await, Err(StoreError::RoomExists(room.clone())));
        let topic = Op::SetTopic { room: room.clone(), text: "soup".into(), setter: "tim".into(), at_ms: 5 };
        assert_eq!(store.apply_room(&room, topic).await, Ok(Outcome::Done));
    }
    let store = SqliteStore::open(&dir, &StoreConfig::default()).unwrap();
    let record = store.room(&room).await.unwrap().unwrap();
    assert_eq!((record.last_seq, record.topic.unwrap().text, record.modes), (10, "soup".into(), RoomModes::new_room()));
    let bodies = |page: Vec<tidings_core::ChatMessage>| page.into_iter().map(|m| m.body).collect::<Vec<_>>();
    let q = |after, before, limit| HistoryQuery { after, before, limit };
    assert_eq!(bodies(store.history(&room, q(None, None, 3)).await.unwrap()), ["m8", "m9", "m10"]);
    let before = Some(HistoryBound::Id("id08".into()));
    assert_eq!(bodies(store.history(&room, q(None, before, 2)).await.unwrap()), ["m6", "m7"]);
    let after = Some(HistoryBound::Seq(2));
    assert_eq!(bodies(store.history(&room, q(after, None, 2)).await.unwrap()), ["m3", "m4"]);
    let (after, before) = (Some(HistoryBound::Time(1002)), Some(HistoryBound::Time(1005)));
    assert_eq!(bodies(store.history(&room, q(after, before, 10)).await.unwrap()), ["m3", "m4"]);
    let unknown = Some(HistoryBound::Id("nope".into()));
    assert!(store.history(&room, q(None, unknown, 10)).await.unwrap().is_empty());
    assert_eq!(store.rooms().await.unwrap().len(), 1);
}

#[test]
fn statements_are_not_prepared_again_for_new_parameter_values() {
    let dir = temp_dir("reprepare");
    std::fs::create_dir_all(&dir).unwrap();
    let mut conn = schema::open(&dir.join("0000.db"), 1000).unwrap();
    schema::migrate(&mut conn).unwrap();
    for (id, address) in [(1, "a@example.org"), (2, "b@example.org")] {
        conn.execute(
            "INSERT INTO accounts (id, address, local_part, domain, password_hash, created_at) VALUES (?1, ?2, '', '', '', 0)",
            params![id, address],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext) VALUES (?1, 'INBOX', 1, 1)",
            params![id],
        )
        .unwrap();
    }
    for (address, name) in [("a@example.org", "INBOX"), ("b@example.org", "INBOX"), ("a@example.org", "Sent")] {
        mailbox_id(&conn, address, name).unwrap();
        mailbox_status(&conn, address, name).unwrap();
    }
    let sql =
        "SELECT b.id FROM mailboxes b JOIN accounts a ON b.account_id = a.id WHERE a.address = ?1 AND b.name = ?2";
    let statement = conn.prepare_cached(sql).unwrap();
    assert_eq!(statement.get_status(rusqlite::StatementStatus::RePrepare), 0);
}

#[tokio::test]
async fn a_read_that_fails_halfway_leaves_no_snapshot_behind() {
    let config = StoreConfig { shards: 1, readers_per_shard: 1, ..StoreConfig::default() };
    let store = SqliteStore::open(&temp_dir("snapshot"), &config).unwrap();
    let ta = addr("ta@example.org");
    store.apply(&ta, create("ta@example.org")).await.unwrap();
    let count = |conn: &Connection| conn.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get::<_, i64>(0));
    let failed = store
        .read(ShardId(0), move |conn| {
            count(conn)?;
            conn.query_row("SELECT no_such_column FROM accounts", [], |r| r.get::<_, i64>(0))
        })
        .await;
    assert!(failed.is_err());
    // The one pooled connection sees what was committed since.
    store.apply(&addr("tb@example.org"), create("tb@example.org")).await.unwrap();
    assert_eq!(store.read(ShardId(0), count).await, Ok(2));
}
