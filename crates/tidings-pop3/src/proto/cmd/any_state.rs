//! Commands valid in every state: `CAPA` (RFC 2449 §5) and `QUIT` (RFC 1939 §§4, 6).

use super::super::effect::Request;
use super::super::session::{Outstanding, Session, State};
use super::{Arguments, Keyword};

/// Our implementation's name for `CAPA` (RFC 2449 §6.9).
const IMPLEMENTATION: &str = "tidings";

impl Session {
    /// Plaintext passwords (`USER`/`PASS`, `AUTH PLAIN`) may be sent on this connection: it is
    /// TLS, or the driver allowed them (RFC 2595 §2.1).
    pub(in crate::proto) fn plaintext_allowed(&self) -> bool {
        self.tls || self.config.plaintext_auth
    }

    /// `CAPA` (RFC 2449 §5): the capabilities of this session, as they are now.
    pub(in crate::proto) fn capa(&mut self, arguments: Arguments<'_>) {
        if arguments.len() != 0 {
            return self.syntax_error(Keyword::Capa);
        }
        let authorization = matches!(self.state, State::Authorization { .. });
        let plaintext = self.plaintext_allowed();
        let stls = authorization && self.config.stls && !self.tls;
        self.wire.ok(format_args!("Capability list follows"));
        self.wire.line(format_args!("TOP"));
        self.wire.line(format_args!("UIDL"));
        if plaintext {
            self.wire.line(format_args!("USER"));
            self.wire.line(format_args!("SASL PLAIN"));
        }
        self.wire.line(format_args!("RESP-CODES"));
        self.wire.line(format_args!("AUTH-RESP-CODE"));
        self.wire.line(format_args!("PIPELINING"));
        if stls {
            self.wire.line(format_args!("STLS"));
        }
        self.wire.line(format_args!("IMPLEMENTATION {IMPLEMENTATION}"));
        self.wire.end_multiline();
    }

    /// `QUIT`: in AUTHORIZATION it just signs off (RFC 1939 §4); in TRANSACTION it enters the
    /// UPDATE state when messages are marked deleted (§6), else signs off.
    pub(in crate::proto) fn quit(&mut self, arguments: Arguments<'_>) {
        if arguments.len() != 0 {
            return self.syntax_error(Keyword::Quit);
        }
        let hostname = &self.config.hostname;
        match &self.state {
            State::Authorization { .. } => {
                self.wire.sign_off(format_args!("{hostname} POP3 server signing off"));
            }
            State::Transaction(maildrop) => {
                let uids = maildrop.marked_uids();
                if uids.is_empty() {
                    let left = maildrop.live_count();
                    self.wire.sign_off(format_args!("{hostname} POP3 server signing off ({left} messages left)"));
                } else {
                    self.request(Request::Update { uids }, Outstanding::Update);
                }
            }
        }
    }

    /// `-ERR Syntax: <usage>` for a command with the wrong arguments.
    pub(in crate::proto) fn syntax_error(&mut self, keyword: Keyword) {
        self.wire.err(format_args!("Syntax: {}", keyword.usage()));
    }
}
