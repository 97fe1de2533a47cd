//! Session-level tests: a scripted client, and a small in-memory store that answers the
//! session's requests with the semantics the real store promises.

mod auth;
mod bad_input;
mod fetch;
mod mailboxes;
mod search;
mod selected;
mod session;
mod updates;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use tidings_core::{
    FlagChange, Flags, INBOX, MailboxInfo, MailboxSnapshot, MailboxStatus, MailboxSync, MessageMeta, StoredMessage,
    SystemFlag, superior_names,
};

use super::{AuthVerdict, CopyResult, MailboxError, Request, Response, Session, SessionConfig, SessionCore, Step};

const HOST: &str = "imap.example.org";

/// A message of the fake store.
#[derive(Clone, Debug)]
struct StoredMail {
    meta: MessageMeta,
    content: Bytes,
}

#[derive(Clone, Debug)]
struct FakeMailbox {
    uidvalidity: u32,
    uidnext: u32,
    special_use: Option<String>,
    messages: BTreeMap<u32, StoredMail>,
}

impl FakeMailbox {
    fn new(uidvalidity: u32, special_use: Option<&str>) -> FakeMailbox {
        FakeMailbox { uidvalidity, uidnext: 1, special_use: special_use.map(str::to_owned), messages: BTreeMap::new() }
    }
}

/// The store, in memory: one account (`alice` / `secret`) with its mailboxes. Modification
/// sequences are one counter for the whole account.
#[derive(Debug)]
struct FakeStore {
    mailboxes: BTreeMap<String, FakeMailbox>,
    subscribed: BTreeSet<String>,
    modseq: u64,
    next_uidvalidity: u32,
    /// Every request answered, in order.
    log: Vec<Request>,
}

impl FakeStore {
    /// INBOX, Sent (`\Sent`) and Trash (`\Trash`), all empty, INBOX and Sent subscribed.
    fn new() -> FakeStore {
        let mut mailboxes = BTreeMap::new();
        mailboxes.insert(INBOX.to_owned(), FakeMailbox::new(1001, None));
        mailboxes.insert("Sent".to_owned(), FakeMailbox::new(1002, Some("\\Sent")));
        mailboxes.insert("Trash".to_owned(), FakeMailbox::new(1003, Some("\\Trash")));
        let subscribed = [INBOX, "Sent"].iter().map(|s| s.to_string()).collect();
        FakeStore { mailboxes, subscribed, modseq: 1, next_uidvalidity: 2000, log: Vec::new() }
    }

    /// Adds a message as a delivery would; returns its UID.
    fn deliver(&mut self, mailbox: &str, content: &str, flags: Flags) -> u32 {
        self.modseq += 1;
        let modseq = self.modseq;
        let mailbox = self.mailboxes.get_mut(mailbox).expect("mailbox exists");
        let uid = mailbox.uidnext;
        mailbox.uidnext += 1;
        let meta = MessageMeta {
            uid,
            flags,
            modseq,
            size: content.len() as u64,
            internal_date: 1_700_000_000 + i64::from(uid),
        };
        mailbox.messages.insert(uid, StoredMail { meta, content: Bytes::from(content.to_owned()) });
        uid
    }

    /// Changes flags as another session would.
    fn set_flags(&mut self, mailbox: &str, uid: u32, flags: Flags) {
        self.modseq += 1;
        let modseq = self.modseq;
        let message = self.mailboxes.get_mut(mailbox).unwrap().messages.get_mut(&uid).unwrap();
        message.meta.flags = flags;
        message.meta.modseq = modseq;
    }

    /// Removes a message as another session's EXPUNGE would.
    fn remove(&mut self, mailbox: &str, uid: u32) {
        self.modseq += 1;
        self.mailboxes.get_mut(mailbox).unwrap().messages.remove(&uid);
    }

    fn status(&self, mailbox: &FakeMailbox) -> MailboxStatus {
        MailboxStatus {
            messages: mailbox.messages.len() as u32,
            unseen: mailbox.messages.values().filter(|m| !m.meta.flags.has(SystemFlag::Seen)).count() as u32,
            uidnext: mailbox.uidnext,
            uidvalidity: mailbox.uidvalidity,
            highest_modseq: self.modseq,
            size: mailbox.messages.values().map(|m| m.meta.size).sum(),
        }
    }

    fn answer(&mut self, request: Request) -> Response {
        self.log.push(request.clone());
        match request {
            Request::Authenticate { user, password } => Response::Auth(if user == "alice" && password == "secret" {
                AuthVerdict::Ok { account: "alice@example.org".into() }
            } else if user == "later" {
                AuthVerdict::TempFail
            } else {
                AuthVerdict::Invalid
            }),
            Request::ListMailboxes => Response::Mailboxes(Ok(self
                .mailboxes
                .iter()
                .map(|(name, mailbox)| MailboxInfo {
                    name: name.clone(),
                    special_use: mailbox.special_use.clone(),
                    subscribed: self.subscribed.contains(name),
                    status: self.status(mailbox),
                })
                .collect())),
            Request::Select { mailbox } => Response::Selected(match self.mailboxes.get(&mailbox) {
                Some(m) => Ok(MailboxSnapshot {
                    status: self.status(m),
                    messages: m.messages.values().map(|s| s.meta.clone()).collect(),
                }),
                None => Err(MailboxError::NoSuchMailbox),
            }),
            Request::Sync { mailbox, since_modseq } => Response::Synced(match self.mailboxes.get(&mailbox) {
                Some(m) => Ok(MailboxSync {
                    uidvalidity: m.uidvalidity,
                    uidnext: m.uidnext,
                    highest_modseq: self.modseq,
                    uids: m.messages.keys().copied().collect(),
                    changed: m
                        .messages
                        .values()
                        .filter(|s| s.meta.modseq > since_modseq)
                        .map(|s| s.meta.clone())
                        .collect(),
                }),
                None => Err(MailboxError::NoSuchMailbox),
            }),
            Request::Create { mailbox } => Response::Done(if self.mailboxes.contains_key(&mailbox) {
                Err(MailboxError::AlreadyExists)
            } else {
                for name in superior_names(&mailbox).map(str::to_owned).collect::<Vec<_>>() {
                    self.next_uidvalidity += 1;
                    let uidvalidity = self.next_uidvalidity;
                    self.mailboxes.entry(name).or_insert_with(|| FakeMailbox::new(uidvalidity, None));
                }
                self.next_uidvalidity += 1;
                self.mailboxes.insert(mailbox, FakeMailbox::new(self.next_uidvalidity, None));
                Ok(())
            }),
            Request::Delete { mailbox } => Response::Done(if mailbox == INBOX {
                Err(MailboxError::Forbidden("INBOX cannot be deleted".into()))
            } else if !self.mailboxes.contains_key(&mailbox) {
                Err(MailboxError::NoSuchMailbox)
            } else if self.mailboxes.keys().any(|k| k.starts_with(&format!("{mailbox}/"))) {
                Err(MailboxError::HasChildren)
            } else {
                self.mailboxes.remove(&mailbox);
                Ok(())
            }),
            Request::Rename { from, to } => Response::Done(if !self.mailboxes.contains_key(&from) {
                Err(MailboxError::NoSuchMailbox)
            } else if self.mailboxes.contains_key(&to) {
                Err(MailboxError::AlreadyExists)
            } else {
                let moved: Vec<String> = self
                    .mailboxes
                    .keys()
                    .filter(|k| **k == from || k.starts_with(&format!("{from}/")))
                    .cloned()
                    .collect();
                for name in moved {
                    let mailbox = self.mailboxes.remove(&name).unwrap();
                    self.mailboxes.insert(format!("{to}{}", &name[from.len()..]), mailbox);
                }
                if from == INBOX {
                    self.next_uidvalidity += 1;
                    self.mailboxes.insert(INBOX.into(), FakeMailbox::new(self.next_uidvalidity, None));
                }
                Ok(())
            }),
            Request::Subscribe { mailbox, subscribed } => {
                if subscribed {
                    self.subscribed.insert(mailbox);
                } else {
                    self.subscribed.remove(&mailbox);
                }
                Response::Done(Ok(()))
            }
            Request::Append { mailbox, flags, internal_date, message } => {
                if !self.mailboxes.contains_key(&mailbox) {
                    return Response::Appended(Err(MailboxError::NoSuchMailbox));
                }
                let text = String::from_utf8_lossy(&message).into_owned();
                let uid = self.deliver(&mailbox, &text, flags);
                let m = self.mailboxes.get_mut(&mailbox).unwrap();
                if let Some(date) = internal_date {
                    m.messages.get_mut(&uid).unwrap().meta.internal_date = date;
                }
                Response::Appended(Ok((m.uidvalidity, uid)))
            }
            Request::Store { mailbox, uids, change, flags } => {
                let Some(m) = self.mailboxes.get_mut(&mailbox) else {
                    return Response::Stored(Err(MailboxError::NoSuchMailbox));
                };
                let mut metas = Vec::new();
                for uid in uids {
                    if let Some(message) = m.messages.get_mut(&uid) {
                        let before = message.meta.flags.clone();
                        message.meta.flags.apply(change, &flags);
                        if message.meta.flags != before {
                            self.modseq += 1;
                            message.meta.modseq = self.modseq;
                        }
                        metas.push(message.meta.clone());
                    }
                }
                Response::Stored(Ok(metas))
            }
            Request::Copy { from, to, uids, remove } => {
                if !self.mailboxes.contains_key(&to) {
                    return Response::Copied(Err(MailboxError::NoSuchMailbox));
                }
                let sources: Vec<StoredMail> =
                    uids.iter().filter_map(|uid| self.mailboxes[&from].messages.get(uid).cloned()).collect();
                let mut pairs = Vec::new();
                for source in sources {
                    let text = String::from_utf8_lossy(&source.content).into_owned();
                    let new_uid = self.deliver(&to, &text, source.meta.flags.clone());
                    pairs.push((source.meta.uid, new_uid));
                    if remove {
                        self.remove(&from, source.meta.uid);
                    }
                }
                Response::Copied(Ok(CopyResult { uidvalidity: self.mailboxes[&to].uidvalidity, pairs }))
            }
            Request::Expunge { mailbox, uids } => {
                let mut removed = Vec::new();
                for uid in uids {
                    if self.mailboxes[&mailbox].messages.contains_key(&uid) {
                        self.remove(&mailbox, uid);
                        removed.push(uid);
                    }
                }
                Response::Expunged(Ok(removed))
            }
            Request::Fetch { mailbox, uids, content } => Response::Messages(match self.mailboxes.get(&mailbox) {
                Some(m) => Ok(uids
                    .iter()
                    .filter_map(|uid| m.messages.get(uid))
                    .map(|s| StoredMessage { meta: s.meta.clone(), content: content.then(|| s.content.clone()) })
                    .collect()),
                None => Err(MailboxError::NoSuchMailbox),
            }),
        }
    }
}

fn flags(list: &[SystemFlag]) -> Flags {
    let mut flags = Flags::new();
    for flag in list {
        flags.set(*flag, true);
    }
    flags
}

/// A configuration with plaintext logins allowed and the transcript on.
fn config() -> SessionConfig {
    let mut config = SessionConfig::new(HOST);
    config.plaintext_auth = true;
    config.transcript = true;
    config
}

fn text(output: Vec<u8>) -> String {
    String::from_utf8_lossy(&output).into_owned()
}

/// A session whose greeting has been read.
fn session_with(config: SessionConfig) -> Session {
    let mut session = Session::new(config);
    assert_eq!(session.poll(), Step::NeedInput);
    let greeting = text(session.take_output());
    assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2"), "{greeting}");
    session
}

/// Runs the session until it needs input or closes, answering every request from `store`.
/// Returns the step it stopped at and everything it wrote.
fn drive(session: &mut Session, store: &mut FakeStore) -> (Step, String) {
    let mut output = Vec::new();
    for _ in 0..100_000 {
        let step = session.poll();
        output.extend(session.take_output());
        match step {
            Step::Request(request) => {
                let response = store.answer(request);
                session.resolve(response);
            }
            Step::Flush => {}
            other => return (other, text(output)),
        }
    }
    panic!("the session did not settle");
}

/// Feeds `input`, runs the session to its next wait, and returns what it wrote. Panics unless
/// it waits for input.
fn chat(session: &mut Session, store: &mut FakeStore, input: &str) -> String {
    session.feed(input.as_bytes());
    let (step, output) = drive(session, store);
    assert_eq!(step, Step::NeedInput, "after {input:?}: {output}");
    output
}

/// A logged-in session (LOGIN alice secret), output and transcript taken.
fn logged_in(store: &mut FakeStore) -> Session {
    let mut session = session_with(config());
    let output = chat(&mut session, store, "a0 LOGIN alice secret\r\n");
    assert!(output.starts_with("a0 OK [CAPABILITY IMAP4rev1 IMAP4rev2 "), "{output}");
    session.take_transcript();
    session
}

/// A session with INBOX selected.
fn selected(store: &mut FakeStore) -> Session {
    let mut session = logged_in(store);
    let output = chat(&mut session, store, "s0 SELECT INBOX\r\n");
    assert!(output.ends_with("s0 OK [READ-WRITE] SELECT completed\r\n"), "{output}");
    session.take_transcript();
    session
}

/// A store whose INBOX holds `count` small messages, uids 1..=count, unseen.
fn store_with(count: u32) -> FakeStore {
    let mut store = FakeStore::new();
    for n in 1..=count {
        store.deliver(INBOX, &format!("Subject: message {n}\r\nFrom: a@example.org\r\n\r\nbody {n}\r\n"), Flags::new());
    }
    store
}

/// The lines of `output` that start with `prefix`.
fn lines_starting<'a>(output: &'a str, prefix: &str) -> Vec<&'a str> {
    output.split("\r\n").filter(|line| line.starts_with(prefix)).collect()
}
