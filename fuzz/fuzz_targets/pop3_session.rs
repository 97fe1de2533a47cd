//! Fuzzes a whole POP3 session: arbitrary client bytes in a few chunks, with every request the
//! session makes answered by a fake driver whose answers are also drawn from the input.
//!
//! Checks, besides "never panics": output always ends on a line boundary; `Close` is final; a
//! retrieval names a UID of the listing; an UPDATE names marked UIDs of the listing, each once,
//! in listing order.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_pop3::proto::{Limits, MessageInfo, Request, Response, Session, SessionConfig, SessionCore, Step};

#[path = "tape.rs"]
mod tape;
use tape::Tape;

struct Driver<'a> {
    tape: Tape<'a>,
    listing: Vec<MessageInfo>,
    closed: bool,
}

impl Driver<'_> {
    fn listing(&mut self) -> Vec<MessageInfo> {
        let count = self.tape.byte() % 8;
        (0..u32::from(count))
            .map(|i| MessageInfo {
                uid: 100 + i * 3,
                size: u64::from(self.tape.byte()) * 17,
                unique_id: format!("uid.{i}.{}", self.tape.byte()),
            })
            .collect()
    }

    fn message(&mut self) -> Vec<u8> {
        let length = usize::from(self.tape.byte());
        let pieces: [&[u8]; 6] = [b".", b"\r\n", b"\n", b"a", b"Subject: x", b".."];
        let mut message = Vec::new();
        for _ in 0..length {
            message.extend_from_slice(pieces[usize::from(self.tape.byte()) % pieces.len()]);
        }
        message
    }

    fn answer(&mut self, request: Request) -> Response {
        match request {
            Request::Authenticate { .. } => match self.tape.byte() % 4 {
                0 | 1 => {
                    let listing = self.listing();
                    self.listing = listing.clone();
                    Response::LoggedIn(listing)
                }
                2 => Response::AuthFailed,
                _ => Response::InUse,
            },
            Request::Retrieve { uid, .. } => {
                assert!(self.listing.iter().any(|m| m.uid == uid), "retrieve of unlisted uid {uid}");
                match self.tape.byte() % 6 {
                    0 => Response::MessageGone,
                    1 => Response::TempFail,
                    _ => Response::Message(self.message().into()),
                }
            }
            Request::Update { uids } => {
                assert!(!uids.is_empty(), "update with nothing to delete");
                let positions: Vec<usize> = uids
                    .iter()
                    .map(|uid| self.listing.iter().position(|m| m.uid == *uid).expect("update of unlisted uid"))
                    .collect();
                assert!(positions.windows(2).all(|w| w[0] < w[1]), "update uids out of order or repeated");
                match self.tape.byte() % 3 {
                    0 => Response::UpdateFailed,
                    1 => Response::TempFail,
                    _ => Response::Updated,
                }
            }
        }
    }

    /// Runs the session until it needs input or closes.
    fn drive(&mut self, session: &mut Session) {
        for _ in 0..100_000 {
            let step = session.poll();
            let output = session.take_output();
            assert!(output.is_empty() || output.ends_with(b"\r\n"), "output ends mid-line");
            let _ = session.take_transcript();
            if self.closed {
                assert_eq!(step, Step::Close, "Close is final");
            }
            match step {
                Step::NeedInput => return,
                Step::Flush => {}
                Step::Request(request) => {
                    let response = self.answer(request);
                    session.resolve(response);
                }
                Step::StartTls => session.tls_established(),
                Step::Close => {
                    self.closed = true;
                    return;
                }
            }
        }
        panic!("session never asked for input");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Some((&split, input)) = rest.split_first() else { return };
    let config = SessionConfig {
        hostname: "fuzz.example.org".to_owned(),
        limits: Limits { command_line_bytes_max: 255 + usize::from(flags >> 5) * 100, errors_max: 50 },
        stls: flags & 1 != 0,
        tls: flags & 2 != 0,
        plaintext_auth: flags & 4 != 0,
        transcript: flags & 8 != 0,
    };
    let mut session = Session::new(config);
    let mut driver = Driver { tape: Tape { data, position: 0 }, listing: Vec::new(), closed: false };
    driver.drive(&mut session);

    // One to four chunks, so that lines span feeds; the high bit of `split` times the session
    // out after the first.
    let chunk_count = 1 + usize::from(split % 4);
    let chunk_len = input.len().div_ceil(chunk_count).max(1);
    for (index, chunk) in input.chunks(chunk_len).enumerate() {
        session.feed(chunk);
        driver.drive(&mut session);
        if index == 0 && split & 0x80 != 0 {
            session.timeout();
            driver.drive(&mut session);
        }
    }
    if flags & 16 != 0 {
        session.shutdown();
    } else {
        session.eof();
    }
    driver.drive(&mut session);
    assert_eq!(session.poll(), Step::Close);
});
