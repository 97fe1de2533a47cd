//! Session tests: byte scripts driven through a [`Session`] with a tiny in-test resolver.

mod auth;
mod bdat;
mod commands;
mod content;
mod lifecycle;
mod starttls;
mod transaction;

use tidings_core::{Address, Path};

use super::*;

pub(super) const HOST: &str = "mx.example";
pub(super) const EHLO_REPLY_PLAIN: &str = "250-mx.example Hello client.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
    250-SIZE 26214400\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250 HELP\r\n";

pub(super) fn address(text: &str) -> Address {
    text.parse().unwrap()
}

/// A configuration for `mode` with a transcript and default limits.
pub(super) fn config(mode: Mode) -> SessionConfig {
    let mut config = SessionConfig::new(HOST, mode, "192.0.2.7".parse().unwrap());
    config.transcript = true;
    config
}

/// What the last `poll` said when the client stopped driving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    NeedInput,
    StartTls,
    Close,
}

/// A client that drives a session and answers its requests like a small server would:
/// local domain `mx.example` with users `ta` and `bob`, alias `alias` -> `ta`, user `tempfail`
/// whose check fails temporarily; account `ta@mx.example` with password `secret` (user name
/// `tempfail` makes the check fail temporarily); `ta` owns only its own address.
pub(super) struct Client {
    pub session: Session,
    pub delivered: Vec<Transaction>,
    pub requests: Vec<String>,
    pub delivery: DeliveryVerdict,
    pub stop: Stop,
    /// How many times the session asked for a flush, and the most output it held at one.
    pub flushes: usize,
    pub largest_flush: usize,
}

impl Client {
    /// Connects; the greeting is taken and checked.
    pub fn connect(config: SessionConfig) -> Client {
        let mut client = Client {
            session: Session::new(config),
            delivered: Vec::new(),
            requests: Vec::new(),
            delivery: DeliveryVerdict::Accepted { id: "Q1".into() },
            stop: Stop::NeedInput,
            flushes: 0,
            largest_flush: 0,
        };
        assert_eq!(client.run(), "220 mx.example ESMTP tidings ready\r\n");
        client
    }

    /// Connects and says EHLO.
    pub fn ehlo(config: SessionConfig) -> Client {
        let mut client = Client::connect(config);
        assert!(client.send(b"EHLO client.example\r\n").starts_with("250-mx.example Hello client.example\r\n"));
        client
    }

    /// An MX session after EHLO.
    pub fn mx() -> Client {
        Client::ehlo(config(Mode::Mx))
    }

    /// Feeds `input` and drives the session; returns everything it said.
    pub fn send(&mut self, input: &[u8]) -> String {
        self.session.feed(input);
        self.run()
    }

    /// Polls until the session needs input, STARTTLS or close, answering requests on the way.
    pub fn run(&mut self) -> String {
        let mut said = Vec::new();
        loop {
            match self.session.poll() {
                Step::Flush => {
                    let out = self.session.take_output();
                    self.flushes += 1;
                    self.largest_flush = self.largest_flush.max(out.len());
                    said.extend(out);
                }
                Step::NeedInput => {
                    self.stop = Stop::NeedInput;
                    break;
                }
                Step::StartTls => {
                    self.stop = Stop::StartTls;
                    break;
                }
                Step::Close => {
                    self.stop = Stop::Close;
                    break;
                }
                Step::Request(request) => {
                    let response = self.answer(request);
                    self.session.resolve(response);
                }
            }
        }
        said.extend(self.session.take_output());
        String::from_utf8_lossy(&said).into_owned()
    }

    fn answer(&mut self, request: Request) -> Response {
        self.requests.push(format!("{request:?}"));
        match request {
            Request::Authenticate { authcid, password } => {
                Response::Auth(match (authcid.as_str(), password.as_str()) {
                    ("ta@mx.example", "secret") => AuthVerdict::Ok { account: address("ta@mx.example") },
                    ("tempfail", _) => AuthVerdict::TempFail,
                    _ => AuthVerdict::Invalid,
                })
            }
            Request::CheckSender { address: sender } => Response::Sender(sender == address("ta@mx.example")),
            Request::CheckRecipient { path } => Response::Recipient(match path {
                Path::Null => panic!("CheckRecipient with the null path"),
                Path::Postmaster => RcptVerdict::Local(address("postmaster@mx.example")),
                Path::Mailbox(rcpt) if rcpt.domain() != HOST => RcptVerdict::NotLocal,
                Path::Mailbox(rcpt) => match rcpt.local_part() {
                    "ta" | "bob" => RcptVerdict::Local(rcpt),
                    "alias" => RcptVerdict::Local(address("ta@mx.example")),
                    "tempfail" => RcptVerdict::TempFail,
                    _ => RcptVerdict::UnknownUser,
                },
            }),
            Request::Deliver(transaction) => {
                self.delivered.push(transaction);
                Response::Delivery(self.delivery.clone())
            }
        }
    }

    /// Runs MAIL FROM and one RCPT TO for `ta@mx.example`, checking both succeed.
    pub fn begin(&mut self) {
        assert_eq!(
            self.send(b"MAIL FROM:<sender@client.example>\r\nRCPT TO:<ta@mx.example>\r\n"),
            "250 2.1.0 Sender <sender@client.example> ok\r\n250 2.1.5 Recipient <ta@mx.example> ok\r\n"
        );
    }

    /// The only delivered message's content.
    pub fn delivered_data(&self) -> &[u8] {
        assert_eq!(self.delivered.len(), 1, "expected exactly one delivery");
        &self.delivered[0].data
    }
}
