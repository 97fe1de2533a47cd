//! Fuzzes a whole IMAP session: arbitrary client bytes fed in a few chunks, with every request
//! the session makes answered by a fake store whose answers are drawn from the input, and
//! notices of changes arriving between reads.
//!
//! Checks, besides "never panics": every response line starts with `*`, `+` or a tag and a
//! status, literals are as long as announced, and lines end in CRLF; `Close` is final;
//! requests respect the contract (non-empty ascending UID lists, Fetch batches within the
//! limit).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_imap::proto::{
    AuthVerdict, CopyResult, Flags, Limits, MailboxError, MailboxInfo, MailboxSnapshot, MailboxStatus, MailboxSync,
    MessageMeta, Notice, Request, Response, Session, SessionConfig, SessionCore, Step, StoredMessage, SystemFlag,
};

/// Bounds the polls of one drive, so a bug that loops is reported rather than hanging.
const POLLS_MAX: usize = 1_000_000;

#[path = "tape.rs"]
mod tape;
use tape::Tape;

/// Message contents the fake store serves.
const MESSAGES: [&str; 3] = [
    "From: Ann <ann@example.org>\r\nSubject: hi\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\nHello\r\n",
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nd29ybGQ=\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n--b--\r\n",
    "no header at all",
];

fn config(flags: u8) -> SessionConfig {
    let mut config = SessionConfig::new("imap.example");
    config.starttls = flags & 1 != 0;
    config.tls = flags & 2 != 0;
    config.plaintext_auth = flags & 4 != 0 || flags & 2 == 0;
    config.transcript = flags & 8 != 0;
    if flags & 16 != 0 {
        // Small limits, so the fuzzer reaches them.
        config.limits = Limits {
            literal_bytes_max: 64,
            command_bytes_max: 256,
            errors_max: 30,
            fetch_batch_messages: 2,
            fetch_batch_bytes: 100,
        };
    }
    config
}

fn meta(uid: u32, tape: &mut Tape<'_>) -> MessageMeta {
    let mut flags = Flags::new();
    let bits = tape.byte();
    for flag in SystemFlag::ALL {
        flags.set(flag, bits & flag.bit() != 0);
    }
    if bits & 0x80 != 0 {
        let _ = flags.add_keyword("$Label1");
    }
    let content = MESSAGES[uid as usize % MESSAGES.len()];
    MessageMeta { uid, flags, modseq: u64::from(tape.byte()), size: content.len() as u64, internal_date: 1_700_000_000 }
}

fn status(tape: &mut Tape<'_>) -> MailboxStatus {
    MailboxStatus {
        messages: u32::from(tape.byte() % 8),
        unseen: u32::from(tape.byte() % 8),
        uidnext: u32::from(tape.byte()) + 1,
        uidvalidity: 7,
        highest_modseq: u64::from(tape.byte()),
        size: 1000,
    }
}

/// Some UIDs, ascending.
fn uids(tape: &mut Tape<'_>) -> Vec<u32> {
    let mut uids: Vec<u32> = (0..tape.byte() % 6).map(|_| u32::from(tape.byte() % 12) + 1).collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

fn error(tape: &mut Tape<'_>) -> MailboxError {
    match tape.byte() % 6 {
        0 => MailboxError::NoSuchMailbox,
        1 => MailboxError::AlreadyExists,
        2 => MailboxError::HasChildren,
        3 => MailboxError::Forbidden("no\r\nway".into()),
        4 => MailboxError::Invalid("bad".into()),
        _ => MailboxError::TryLater,
    }
}

fn check_ascending(uids: &[u32]) {
    assert!(!uids.is_empty());
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "{uids:?}");
}

fn answer(request: Request, tape: &mut Tape<'_>, limits: &Limits) -> Response {
    let fail = tape.byte() % 8 == 0;
    match request {
        Request::Authenticate { .. } => Response::Auth(match tape.byte() % 4 {
            0 | 1 => AuthVerdict::Ok { account: "user@imap.example".into() },
            2 => AuthVerdict::Invalid,
            _ => AuthVerdict::TempFail,
        }),
        Request::ListMailboxes => Response::Mailboxes(if fail {
            Err(error(tape))
        } else {
            let mut list = Vec::new();
            for name in ["INBOX", "Sent", "a/b", "a", "Entwürfe", "x/y/z"] {
                if tape.byte() % 3 != 0 {
                    list.push(MailboxInfo {
                        name: name.into(),
                        special_use: (tape.byte() % 4 == 0).then(|| "\\Sent".into()),
                        subscribed: tape.byte() % 2 == 0,
                        status: status(tape),
                    });
                }
            }
            Ok(list)
        }),
        Request::Select { .. } => Response::Selected(if fail {
            Err(error(tape))
        } else {
            let uids = uids(tape);
            Ok(MailboxSnapshot { status: status(tape), messages: uids.iter().map(|&u| meta(u, tape)).collect() })
        }),
        Request::Sync { .. } => Response::Synced(if fail {
            Err(error(tape))
        } else {
            let uids = uids(tape);
            let mut changed = Vec::new();
            for &uid in &uids {
                if tape.byte() % 2 == 0 {
                    changed.push(meta(uid, tape));
                }
            }
            Ok(MailboxSync { status: status(tape), uids, changed })
        }),
        Request::Create { .. } | Request::Delete { .. } | Request::Rename { .. } | Request::Subscribe { .. } => {
            Response::Done(if fail { Err(error(tape)) } else { Ok(()) })
        }
        Request::Append { message, .. } => {
            assert!(message.len() <= limits.literal_bytes_max as usize);
            Response::Appended(if fail { Err(error(tape)) } else { Ok((7, u32::from(tape.byte()) + 1)) })
        }
        Request::Store { uids, .. } => {
            check_ascending(&uids);
            Response::Stored(if fail {
                Err(error(tape))
            } else {
                let mut metas = Vec::new();
                for &uid in &uids {
                    if tape.byte() % 4 != 0 {
                        metas.push(meta(uid, tape));
                    }
                }
                Ok(metas)
            })
        }
        Request::Copy { uids, .. } => {
            check_ascending(&uids);
            Response::Copied(if fail {
                Err(error(tape))
            } else {
                let pairs = uids.iter().filter(|_| tape.byte() % 4 != 0).map(|&u| (u, u + 100)).collect();
                Ok(CopyResult { uidvalidity: 9, pairs })
            })
        }
        Request::Expunge { uids, .. } => {
            check_ascending(&uids);
            Response::Expunged(if fail {
                Err(error(tape))
            } else {
                Ok(uids.into_iter().filter(|_| tape.byte() % 4 != 0).collect())
            })
        }
        Request::Fetch { uids, content, .. } => {
            check_ascending(&uids);
            assert!(uids.len() <= limits.fetch_batch_messages.max(1));
            Response::Messages(if fail {
                Err(error(tape))
            } else {
                let mut messages = Vec::new();
                for &uid in &uids {
                    if tape.byte() % 5 != 0 {
                        messages.push(StoredMessage {
                            meta: meta(uid, tape),
                            content: content.then(|| MESSAGES[uid as usize % MESSAGES.len()].as_bytes().into()),
                        });
                    }
                }
                Ok(messages)
            })
        }
    }
}

/// Checks that `output` is a sequence of IMAP responses.
fn check_output(output: &[u8]) {
    let mut rest = output;
    while !rest.is_empty() {
        let end = rest.windows(2).position(|w| w == b"\r\n").expect("every line ends in CRLF");
        let line = &rest[..end];
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r'), "{:?}", String::from_utf8_lossy(line));
        rest = &rest[end + 2..];
        let first = line.split(|&b| b == b' ').next().unwrap_or_default();
        assert!(!first.is_empty(), "{:?}", String::from_utf8_lossy(line));
        // A line ending in a literal announcement continues after the literal's octets.
        let mut line = line;
        while let Some(open) = line.iter().rposition(|&b| b == b'{') {
            if !line.ends_with(b"}") {
                break;
            }
            let Ok(length) = std::str::from_utf8(&line[open + 1..line.len() - 1]).unwrap_or("x").parse::<usize>()
            else {
                break;
            };
            assert!(rest.len() >= length, "literal of {length} with {} octets left", rest.len());
            rest = &rest[length..];
            let end = rest.windows(2).position(|w| w == b"\r\n").expect("a line after a literal");
            line = &rest[..end];
            rest = &rest[end + 2..];
        }
    }
}

/// Polls until the session needs input or closes; returns whether it closed.
fn drive(session: &mut Session, tape: &mut Tape<'_>, limits: &Limits) -> bool {
    let mut notices = 0;
    for _ in 0..POLLS_MAX {
        match session.poll() {
            Step::NeedInput => {
                check_output(&session.take_output());
                if notices < 2 && tape.byte() % 16 == 1 {
                    notices += 1;
                    session.notice(Notice::Changed);
                    continue;
                }
                return false;
            }
            Step::Flush => check_output(&session.take_output()),
            Step::StartTls => {
                check_output(&session.take_output());
                session.tls_established();
            }
            Step::Close => {
                check_output(&session.take_output());
                assert_eq!(session.poll(), Step::Close, "Close is final");
                return true;
            }
            Step::Request(request) => {
                let response = answer(request, tape, limits);
                session.resolve(response);
            }
        }
    }
    panic!("the session did not settle after {POLLS_MAX} polls");
}

fuzz_target!(|input: &[u8]| {
    let [flags, split, client @ ..] = input else {
        return;
    };
    let config = config(*flags);
    let limits = config.limits.clone();
    let mut session = Session::new(config);
    let mut tape = Tape { data: client, position: 0 };
    let chunk = (client.len() / (usize::from(*split % 4) + 1)).max(1);
    let mut closed = drive(&mut session, &mut tape, &limits);
    for piece in client.chunks(chunk) {
        if closed {
            break;
        }
        session.feed(piece);
        closed = drive(&mut session, &mut tape, &limits);
    }
    if !closed {
        match split >> 6 {
            0 => session.eof(),
            1 => session.timeout(),
            _ => session.shutdown(),
        }
        assert!(drive(&mut session, &mut tape, &limits));
    }
    let _ = session.take_transcript();
});
