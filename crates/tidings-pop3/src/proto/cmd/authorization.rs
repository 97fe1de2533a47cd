//! Commands of the AUTHORIZATION state: `USER` and `PASS` (RFC 1939 §7), `AUTH PLAIN`
//! (RFC 5034 §4, RFC 4616), `STLS` (RFC 2595 §4); and the answer to the login they ask for.

use super::super::effect::{Request, Response, Step};
use super::super::maildrop::Maildrop;
use super::super::sasl::{self, PlainError};
use super::super::session::{Blocked, Outstanding, Session, State};
use super::{Arguments, Keyword};

impl Session {
    /// Refuses a plaintext password on a connection that does not allow one (RFC 2595 §2.1);
    /// true if it did.
    ///
    /// The code is `SYS/PERM`, not `AUTH`: the credentials were never looked at, and a client
    /// that reads `[AUTH]` asks its user for a new password, which would not help (RFC 3206 §4).
    fn refuse_plaintext(&mut self) -> bool {
        if self.plaintext_allowed() {
            return false;
        }
        if self.config.stls {
            self.wire.err(format_args!("[SYS/PERM] Plaintext authentication requires TLS; send STLS first"));
        } else {
            self.wire.err(format_args!("[SYS/PERM] Plaintext authentication is not allowed on this connection"));
        }
        true
    }

    /// `USER name`: remembers the name for the `PASS` that must come next. Says nothing about
    /// whether the name exists.
    pub(in crate::proto) fn user(&mut self, arguments: Arguments<'_>) {
        let Some(name) = arguments.get(0).filter(|_| arguments.len() == 1) else {
            return self.syntax_error(Keyword::User);
        };
        if self.refuse_plaintext() {
            return;
        }
        let Ok(name) = String::from_utf8(name.to_vec()) else {
            return self.wire.err(format_args!("User name must be UTF-8"));
        };
        if let State::Authorization { user, .. } = &mut self.state {
            *user = Some(name);
        }
        self.wire.ok(format_args!("User name accepted, send PASS"));
    }

    /// `PASS password`, right after a successful `USER`: the password is the rest of the line,
    /// spaces included (RFC 1939 §7).
    pub(in crate::proto) fn pass(&mut self, user: Option<String>, rest: Option<&[u8]>) {
        let Some(user) = user else {
            return self.wire.err(format_args!("PASS must come right after a successful USER"));
        };
        let Some(password) = rest else {
            return self.syntax_error(Keyword::Pass);
        };
        if self.refuse_plaintext() {
            return;
        }
        let Ok(password) = String::from_utf8(password.to_vec()) else {
            return self.wire.err(format_args!("[AUTH] Password must be UTF-8"));
        };
        self.request(Request::Authenticate { user: user.clone(), password }, Outstanding::Authenticate { user });
    }

    /// `AUTH`: with no argument lists the mechanisms; `AUTH PLAIN` without an initial response
    /// asks for one with a continuation; `AUTH PLAIN <base64>` logs in (RFC 5034 §4).
    pub(in crate::proto) fn auth(&mut self, arguments: Arguments<'_>) {
        if arguments.len() > 2 {
            return self.syntax_error(Keyword::Auth);
        }
        let Some(mechanism) = arguments.get(0) else {
            // Not in RFC 5034, but widely sent by clients to discover mechanisms.
            self.wire.ok(format_args!("Supported mechanisms follow"));
            if self.plaintext_allowed() {
                self.wire.line(format_args!("PLAIN"));
            }
            return self.wire.end_multiline();
        };
        if !mechanism.eq_ignore_ascii_case(b"PLAIN") {
            return self.wire.err(format_args!("Unsupported authentication mechanism; this server offers PLAIN"));
        }
        if self.refuse_plaintext() {
            return;
        }
        match arguments.get(1) {
            Some(initial_response) => self.plain(initial_response, true),
            None => {
                if let State::Authorization { sasl_response_expected, .. } = &mut self.state {
                    *sasl_response_expected = true;
                }
                self.wire.continuation();
            }
        }
    }

    /// The client's line after an `AUTH PLAIN` continuation: "*" cancels (RFC 5034 §4).
    pub(in crate::proto) fn sasl_response(&mut self, line: &[u8]) {
        if line == b"*" {
            return self.wire.err(format_args!("Authentication cancelled"));
        }
        self.plain(line, false);
    }

    fn plain(&mut self, encoded: &[u8], initial: bool) {
        match sasl::decode_plain(encoded, initial) {
            Ok(credentials) => {
                let user = credentials.user;
                self.request(
                    Request::Authenticate { user: user.clone(), password: credentials.password },
                    Outstanding::Authenticate { user },
                );
            }
            Err(PlainError::Base64) => self.wire.err(format_args!("Invalid base64 in SASL response")),
            Err(PlainError::Malformed) => self.wire.err(format_args!(
                "[AUTH] Malformed PLAIN response; expected authzid NUL authcid NUL password in UTF-8"
            )),
            Err(PlainError::AuthorizationIdentity) => self.wire.err(format_args!(
                "[AUTH] Authorization identity must be empty or equal to the authentication identity"
            )),
        }
    }

    /// `STLS` (RFC 2595 §4): `+OK`, then the TLS handshake. Input already buffered after the
    /// command is thrown away, so nothing sent in plaintext is taken as sent under TLS.
    pub(in crate::proto) fn stls(&mut self, arguments: Arguments<'_>) {
        if arguments.len() != 0 {
            return self.syntax_error(Keyword::Stls);
        }
        if self.tls {
            return self.wire.err(format_args!("Already using TLS"));
        }
        if !self.config.stls {
            return self.wire.err(format_args!("STLS is not available on this server"));
        }
        self.wire.ok(format_args!("Begin TLS negotiation"));
        self.reader.clear();
        self.step = Some(Step::StartTls);
        self.blocked = Some(Blocked::Tls);
    }

    /// The driver's answer to [`Request::Authenticate`].
    pub(in crate::proto) fn authenticated(&mut self, user: String, response: Response) {
        match response {
            Response::LoggedIn(listing) => {
                let maildrop = Maildrop::new(listing);
                let (count, octets) = (maildrop.live_count(), maildrop.live_octets());
                self.state = State::Transaction(maildrop);
                self.account = Some(user);
                self.wire.ok(format_args!("Logged in, {count} messages ({octets} octets)"));
            }
            Response::AuthFailed => self.wire.err(format_args!("[AUTH] Invalid credentials")),
            Response::InUse => self.wire.err(format_args!("[IN-USE] Maildrop is locked by another session")),
            other => {
                debug_assert!(other == Response::TempFail, "{other:?} does not answer Authenticate");
                self.wire.err(format_args!("[SYS/TEMP] Login is not possible right now; try again later"));
            }
        }
    }
}
