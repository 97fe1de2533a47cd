//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;

use super::{Pending, Phase, Session};
use crate::proto::{AuthVerdict, Request};

/// The LOGIN mechanism's prompts, base64 of `Username:` and `Password:`.
const LOGIN_USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

/// Which client response an AUTH exchange waits for.
pub(super) enum AuthStep {
    /// The PLAIN message `[authzid] NUL authcid NUL passwd`.
    Plain,
    /// The LOGIN user name.
    LoginUser,
    /// The LOGIN password, for the user name already given.
    LoginPassword { authcid: String },
}

impl Session {
    pub(super) fn auth(&mut self, args: &str) {
        if !self.extended() {
            self.reply(503, "5.5.1", "Send EHLO first");
            return;
        }
        if self.account.is_some() {
            self.reply(503, "5.5.1", "Already authenticated");
            return;
        }
        if self.transaction.is_some() {
            self.reply(503, "5.5.1", "AUTH is not allowed during a mail transaction");
            return;
        }
        let mut words = args.split_ascii_whitespace();
        let (Some(mechanism), initial, None) = (words.next(), words.next(), words.next()) else {
            self.reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
            return;
        };
        let plain = mechanism.eq_ignore_ascii_case("PLAIN");
        if !plain && !mechanism.eq_ignore_ascii_case("LOGIN") {
            self.reply(504, "5.5.4", "Unrecognized authentication mechanism");
            return;
        }
        if !self.auth_allowed() {
            self.reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
            return;
        }
        let Some(initial) = initial else {
            let (prompt, step) =
                if plain { ("", AuthStep::Plain) } else { (LOGIN_USERNAME_PROMPT, AuthStep::LoginUser) };
            self.write_reply(334, None, &[prompt]);
            self.phase = Phase::AuthContinuation(step);
            return;
        };
        let Some(response) = self.decode_response(initial) else {
            return;
        };
        if plain {
            self.auth_plain(&response);
        } else {
            self.auth_login_user(response);
        }
    }

    /// A line answering a `334` challenge.
    pub(super) fn auth_continuation(&mut self, step: AuthStep, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text == "*" {
            self.reply(501, "5.0.0", "Authentication cancelled");
            return;
        }
        let Some(response) = self.decode_response(text) else {
            return;
        };
        match step {
            AuthStep::Plain => self.auth_plain(&response),
            AuthStep::LoginUser => self.auth_login_user(response),
            AuthStep::LoginPassword { authcid } => self.auth_login_password(authcid, response),
        }
    }

    pub(super) fn auth_resolved(&mut self, verdict: AuthVerdict) {
        match verdict {
            AuthVerdict::Ok { account } => {
                self.account = Some(account);
                self.reply(235, "2.7.0", "Authentication successful");
            }
            AuthVerdict::Invalid => self.reply(535, "5.7.8", "Authentication credentials invalid"),
            AuthVerdict::TempFail => self.reply(454, "4.7.0", "Temporary authentication failure, try again later"),
        }
    }

    /// Decodes a base64 client response (`=` is the empty response, RFC 4954 §4), replying
    /// `501 5.5.2` and returning `None` when it is not base64.
    fn decode_response(&mut self, text: &str) -> Option<Vec<u8>> {
        if text == "=" {
            return Some(Vec::new());
        }
        match STANDARD_PAD_INDIFFERENT.decode(text) {
            Ok(octets) => Some(octets),
            Err(_) => {
                self.reply(501, "5.5.2", "Invalid base64 data in authentication response");
                None
            }
        }
    }

    /// RFC 4616 §2: `message = [authzid] UTF8NUL authcid UTF8NUL passwd`.
    fn auth_plain(&mut self, message: &[u8]) {
        let mut parts = message.split(|&octet| octet == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            self.reply(501, "5.5.2", "Malformed PLAIN authentication response");
            return;
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) =
            (std::str::from_utf8(authzid), std::str::from_utf8(authcid), std::str::from_utf8(password))
        else {
            self.reply(501, "5.5.2", "Authentication response is not UTF-8");
            return;
        };
        // Acting as another user is not supported: the authorization identity, when given, must
        // be the authentication identity itself.
        if authcid.is_empty() || (!authzid.is_empty() && authzid != authcid) {
            self.reply(535, "5.7.8", "Authentication credentials invalid");
            return;
        }
        let request = Request::Authenticate { authcid: authcid.to_string(), password: password.to_string() };
        self.issue(request, Pending::Auth);
    }

    fn auth_login_user(&mut self, user: Vec<u8>) {
        let Ok(authcid) = String::from_utf8(user) else {
            self.reply(501, "5.5.2", "Authentication response is not UTF-8");
            return;
        };
        self.write_reply(334, None, &[LOGIN_PASSWORD_PROMPT]);
        self.phase = Phase::AuthContinuation(AuthStep::LoginPassword { authcid });
    }

    fn auth_login_password(&mut self, authcid: String, password: Vec<u8>) {
        let Ok(password) = String::from_utf8(password) else {
            self.reply(501, "5.5.2", "Authentication response is not UTF-8");
            return;
        };
        if authcid.is_empty() {
            self.reply(535, "5.7.8", "Authentication credentials invalid");
            return;
        }
        self.issue(Request::Authenticate { authcid, password }, Pending::Auth);
    }
}
