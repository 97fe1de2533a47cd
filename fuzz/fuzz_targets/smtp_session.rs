//! Fuzzes a whole SMTP session: arbitrary client bytes fed in a few chunks, with every request
//! the session makes answered by a fake driver whose verdicts are drawn from the input.
//!
//! Checks, besides "never panics": every reply line is `ddd` then SP or `-` and ends in CRLF;
//! `Close` is final; a delivered transaction has recipients and fits the size limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_smtp::proto::{
    AuthVerdict, BareLineEnding, DeliveryVerdict, Limits, Mode, Path, RcptVerdict, Request, Response, Session,
    SessionConfig, SessionCore, Step,
};

/// Bounds the polls of one drive, so a bug that loops is reported rather than hanging.
const POLLS_MAX: usize = 1_000_000;

#[path = "tape.rs"]
mod tape;
use tape::Tape;

fn config(flags: u8) -> SessionConfig {
    let mode = if flags & 1 != 0 { Mode::Submission } else { Mode::Mx };
    let mut config = SessionConfig::new("mx.example", mode, "192.0.2.1".parse().unwrap());
    config.starttls = flags & 2 != 0;
    config.tls = flags & 4 != 0;
    config.plaintext_auth = flags & 8 != 0;
    config.transcript = flags & 16 != 0;
    config.bare_line_ending = if flags & 32 != 0 { BareLineEnding::Normalize } else { BareLineEnding::Reject };
    if flags & 64 != 0 {
        // Small limits, so the fuzzer reaches them.
        config.limits = Limits {
            message_bytes_max: 64,
            recipients_max: 3,
            command_line_bytes_max: 64,
            text_line_bytes_max: 32,
            errors_max: 40,
            received_fields_max: 2,
        };
    }
    config
}

fn answer(request: Request, tape: &mut Tape<'_>, limits: &Limits) -> Response {
    let choice = tape.byte();
    match request {
        Request::Authenticate { .. } => Response::Auth(match choice % 3 {
            0 => AuthVerdict::Ok { account: "user@mx.example".parse().unwrap() },
            1 => AuthVerdict::Invalid,
            _ => AuthVerdict::TempFail,
        }),
        Request::CheckSender { .. } => Response::Sender(choice % 2 == 0),
        Request::CheckRecipient { path } => Response::Recipient(match choice % 4 {
            0 => RcptVerdict::Local(match path {
                Path::Mailbox(address) => address,
                _ => "postmaster@mx.example".parse().unwrap(),
            }),
            1 => RcptVerdict::UnknownUser,
            2 => RcptVerdict::NotLocal,
            _ => RcptVerdict::TempFail,
        }),
        Request::Deliver(transaction) => {
            assert!(!transaction.recipients.is_empty());
            assert!(transaction.data.len() <= limits.message_bytes_max);
            assert!(transaction.data.is_empty() || transaction.data.ends_with(b"\r\n"));
            Response::Delivery(match choice % 3 {
                0 => DeliveryVerdict::Accepted { id: "Q1".into() },
                1 => DeliveryVerdict::TempFail { reason: "try later".into() },
                _ => DeliveryVerdict::PermFail { reason: "no".into() },
            })
        }
    }
}

fn check_output(output: &[u8]) {
    if output.is_empty() {
        return;
    }
    assert!(output.ends_with(b"\r\n"));
    for line in output.split(|&c| c == b'\n').filter(|line| !line.is_empty()) {
        assert!(line.len() >= 5 && line[..3].iter().all(u8::is_ascii_digit), "{line:?}");
        assert!(line[3] == b' ' || line[3] == b'-', "{line:?}");
        assert!(line.ends_with(b"\r") && !line[..line.len() - 1].contains(&b'\r'), "{line:?}");
    }
}

/// Polls until the session needs input or closes; returns whether it closed.
fn drive(session: &mut Session, tape: &mut Tape<'_>, limits: &Limits) -> bool {
    for _ in 0..POLLS_MAX {
        match session.poll() {
            Step::NeedInput => {
                check_output(&session.take_output());
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
