//! Not-authenticated state: STARTTLS (RFC 9051 §6.2.1), AUTHENTICATE PLAIN with SASL-IR
//! (RFC 9051 §6.2.2, RFC 4616, RFC 4959), LOGIN (§6.2.3).

use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::response::Status as ServerStatus;
use imap_codec::imap_types::secret::Secret;
use imap_next::types::CommandAuthenticate;

use super::{Mode, Pending, Session, State};
use crate::proto::wire::Status;
use crate::proto::{AuthVerdict, Request, Response, Step};

/// A credentials check out, for the reply to its answer.
#[derive(Debug)]
pub(crate) struct Login {
    tag: String,
    /// Through AUTHENTICATE: imap-next waits for the end of that exchange.
    authenticate: bool,
}

impl Session {
    /// Whether a password may be sent now (RFC 9051 §6.2.3: not in the clear unless the driver
    /// allows it).
    fn passwords_allowed(&self) -> bool {
        self.tls || self.config.plaintext_auth
    }

    pub(super) fn starttls(&mut self, tag: &str) {
        if !matches!(self.state, State::NotAuthenticated) {
            self.reply_bad(Some(tag), "Already authenticated");
        } else if self.tls {
            self.reply_bad(Some(tag), "TLS is already active");
        } else if !self.config.starttls {
            self.reply_bad(Some(tag), "STARTTLS is not available");
        } else {
            self.wire.tagged(tag, Status::Ok, None, "Begin TLS negotiation now");
            // RFC 9051 §6.2.1: input received before the handshake is discarded.
            self.clear_input();
            self.reset_server();
            self.mode = Mode::Tls;
            self.step = Some(Step::StartTls);
        }
    }

    pub(super) fn login(&mut self, tag: &str, username: AString<'static>, password: Secret<AString<'static>>) {
        if !matches!(self.state, State::NotAuthenticated) {
            self.reply_bad(Some(tag), "Already authenticated");
            return;
        }
        if !self.passwords_allowed() {
            self.wire.tagged(tag, Status::No, Some("PRIVACYREQUIRED"), "LOGIN is disabled before TLS; use STARTTLS");
            return;
        }
        let user = String::from_utf8_lossy(username.as_ref()).into_owned();
        let password = match std::str::from_utf8(password.declassify().as_ref()) {
            Ok(password) => password.to_owned(),
            Err(_) => {
                self.wire.tagged(tag, Status::No, Some("AUTHENTICATIONFAILED"), "Invalid credentials");
                return;
            }
        };
        self.request(
            Request::Authenticate { user, password },
            Pending::Login(Login { tag: tag.to_owned(), authenticate: false }),
        );
    }

    pub(super) fn authenticate(&mut self, command: CommandAuthenticate) {
        let tag = command.tag.as_ref().to_owned();
        let refusal = if !matches!(self.state, State::NotAuthenticated) {
            Some((Status::Bad, None, "Already authenticated"))
        } else if !self.passwords_allowed() {
            Some((Status::No, Some("PRIVACYREQUIRED"), "Authentication is disabled before TLS; use STARTTLS"))
        } else if command.mechanism != AuthMechanism::Plain {
            Some((Status::No, Some("CANNOT"), "Unsupported mechanism; use PLAIN"))
        } else {
            None
        };
        if let Some((status, code, text)) = refusal {
            self.finish_authenticate_exchange();
            self.wire.tagged(&tag, status, code, text);
            return;
        }
        match command.initial_response {
            Some(response) => self.plain_response(tag, response.declassify()),
            None => {
                if let Ok(continuation) = imap_codec::imap_types::response::CommandContinuationRequest::basic(None, "x")
                {
                    let _ = self.server.authenticate_continue(continuation);
                }
                self.pump_server_output(false);
                self.wire.continuation("");
                self.mode = Mode::Authenticate { tag };
            }
        }
    }

    pub(super) fn authenticate_data(&mut self, data: AuthenticateData<'static>) {
        let Mode::Authenticate { tag } = std::mem::replace(&mut self.mode, Mode::Command) else {
            return;
        };
        match data {
            AuthenticateData::Continue(response) => self.plain_response(tag, response.declassify()),
            AuthenticateData::Cancel => {
                self.finish_authenticate_exchange();
                self.wire.tagged(&tag, Status::Bad, None, "Authentication cancelled");
            }
        }
    }

    /// A SASL response that is not base64 (RFC 9051 §6.2.2: BAD).
    pub(super) fn authenticate_malformed(&mut self) {
        if let Mode::Authenticate { tag } = std::mem::replace(&mut self.mode, Mode::Command) {
            self.finish_authenticate_exchange();
            self.wire.tagged(&tag, Status::Bad, None, "Invalid base64 in the SASL response");
        }
    }

    /// The decoded PLAIN message (RFC 4616 `[authzid] NUL authcid NUL passwd`).
    fn plain_response(&mut self, tag: String, message: &[u8]) {
        match decode_plain(message) {
            Ok((user, password)) => {
                self.request(
                    Request::Authenticate { user, password },
                    Pending::Login(Login { tag, authenticate: true }),
                );
            }
            Err(text) => {
                self.finish_authenticate_exchange();
                self.wire.tagged(&tag, Status::No, Some("AUTHENTICATIONFAILED"), text);
            }
        }
    }

    /// Tells imap-next that the AUTHENTICATE exchange is over (the session writes the tagged
    /// reply itself).
    fn finish_authenticate_exchange(&mut self) {
        if let Ok(status) = ServerStatus::ok(None, None, "x") {
            let _ = self.server.authenticate_finish(status);
        }
        self.pump_server_output(false);
    }

    pub(super) fn login_resolved(&mut self, login: Login, response: Response) {
        if login.authenticate {
            self.finish_authenticate_exchange();
        }
        let verdict = match response {
            Response::Auth(verdict) => verdict,
            other => {
                debug_assert!(false, "Authenticate answered with {other:?}");
                AuthVerdict::TempFail
            }
        };
        match verdict {
            AuthVerdict::Ok { account } => {
                self.account = Some(account);
                self.state = State::Authenticated;
                let capabilities = super::capabilities(self);
                self.wire.tagged(&login.tag, Status::Ok, Some(&format!("CAPABILITY {capabilities}")), "Logged in");
            }
            AuthVerdict::Invalid => {
                self.wire.tagged(&login.tag, Status::No, Some("AUTHENTICATIONFAILED"), "Invalid credentials");
            }
            AuthVerdict::TempFail => {
                self.wire.tagged(
                    &login.tag,
                    Status::No,
                    Some("UNAVAILABLE"),
                    "Authentication is not available now; try again later",
                );
            }
        }
    }
}

/// The user name and password of a PLAIN message; an authorization identity is accepted only
/// when empty or equal to the authentication identity (no proxy logins).
fn decode_plain(message: &[u8]) -> Result<(String, String), &'static str> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("Malformed PLAIN response");
    };
    if authcid.is_empty() || password.is_empty() || password.contains(&0) {
        return Err("Malformed PLAIN response");
    }
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| "Malformed PLAIN response");
    let (authzid, user, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if !authzid.is_empty() && authzid != user {
        return Err("Logging in as another user is not allowed");
    }
    Ok((user, password))
}

#[cfg(test)]
mod tests {
    use super::decode_plain;

    #[test]
    fn plain_messages_give_user_and_password() {
        assert_eq!(decode_plain(b"\0alice\0pass word"), Ok(("alice".into(), "pass word".into())));
        assert_eq!(decode_plain(b"bob\0bob\0pw"), Ok(("bob".into(), "pw".into())));
        assert!(decode_plain(b"admin\0bob\0pw").is_err());
        for bad in [&b""[..], b"bob", b"\0bob", b"\0\0pw", b"\0bob\0", b"\0bob\0p\0w", b"\0\xff\0pw"] {
            assert!(decode_plain(bad).is_err(), "{bad:?}");
        }
    }
}
