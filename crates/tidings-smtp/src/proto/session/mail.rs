//! MAIL FROM (RFC 5321 §4.1.1.2) with the SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531)
//! and AUTH (RFC 4954 §5) parameters.

use tidings_core::{Path, parse_path};

use super::{BodyType, MailTransaction, Pending, Session, strip_prefix_ignore_case};
use crate::proto::{Mode, Request};

/// Longest parameter name quoted back in a reply, in characters.
const PARAMETER_NAME_CHARS_MAX: usize = 32;

/// The ESMTP parameters of a MAIL command.
#[derive(Default)]
struct MailParameters {
    /// Declared message size in octets (RFC 1870 §3); saturates at `u64::MAX`.
    size: Option<u64>,
    body: BodyType,
    smtputf8: bool,
}

impl Session {
    pub(super) fn mail(&mut self, args: &str) {
        if self.helo.is_none() {
            self.reply(503, "5.5.1", "Send HELO/EHLO first");
            return;
        }
        if self.transaction.is_some() {
            self.reply(503, "5.5.1", "Nested MAIL command");
            return;
        }
        let Some(rest) = strip_prefix_ignore_case(args, "FROM:") else {
            self.reply(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]");
            return;
        };
        if self.config.mode == Mode::Submission && self.account.is_none() {
            self.reply(530, "5.7.0", "Authentication required");
            return;
        }
        // UTF-8 is allowed while parsing, then refused below unless SMTPUTF8 is among the
        // parameters, which come after the path.
        let (reverse_path, parameters) = match parse_path(rest, true) {
            Ok((Path::Null, parameters)) => (None, parameters),
            Ok((Path::Mailbox(address), parameters)) => (Some(address), parameters),
            Ok((Path::Postmaster, _)) | Err(_) => {
                self.reply(501, "5.1.7", "Bad sender address syntax");
                return;
            }
        };
        let Some(parameters) = self.mail_parameters(parameters) else {
            return;
        };
        if !parameters.smtputf8 && reverse_path.as_ref().is_some_and(|address| address.is_utf8()) {
            self.reply(553, "5.6.7", "Non-ASCII sender address needs the SMTPUTF8 parameter");
            return;
        }
        let message_bytes_max = self.config.limits.message_bytes_max;
        if parameters.size.is_some_and(|size| size > message_bytes_max as u64) {
            self.reply(
                552,
                "5.3.4",
                &format!("Message size exceeds fixed maximum message size of {message_bytes_max} octets"),
            );
            return;
        }
        let opened = MailTransaction {
            reverse_path,
            body: parameters.body,
            smtputf8: parameters.smtputf8,
            recipients: Vec::new(),
            chunks: None,
        };
        match (self.config.mode, opened.reverse_path.clone()) {
            (Mode::Mx, _) => self.sender_accepted(opened),
            (Mode::Submission, None) => {
                self.reply(553, "5.7.1", "The null sender <> is not allowed for submission");
            }
            (Mode::Submission, Some(address)) => {
                self.issue(Request::CheckSender { address }, Pending::Sender(opened));
            }
        }
    }

    pub(super) fn sender_resolved(&mut self, opened: MailTransaction, owned: bool) {
        if owned {
            self.sender_accepted(opened);
            return;
        }
        let sender = opened.reverse_path.map(|address| address.to_string()).unwrap_or_default();
        let account = self.account.as_ref().map(|account| account.to_string()).unwrap_or_default();
        self.reply(553, "5.7.1", &format!("Sender address <{sender}> is not owned by <{account}>"));
    }

    fn sender_accepted(&mut self, opened: MailTransaction) {
        let sender = opened.reverse_path.as_ref().map(|address| address.to_string()).unwrap_or_default();
        self.transaction = Some(opened);
        self.reply(250, "2.1.0", &format!("Sender <{sender}> ok"));
    }

    /// Parses `esmtp-param *(SP esmtp-param)` (RFC 5321 §4.1.2), replying and returning `None`
    /// on the first error.
    fn mail_parameters(&mut self, text: &str) -> Option<MailParameters> {
        let mut parameters = MailParameters::default();
        if text.is_empty() {
            return Some(parameters);
        }
        if !self.extended() {
            // After HELO no service extension is in force (RFC 5321 §4.1.1.1).
            self.reply(555, "5.5.4", "MAIL parameters are not recognized after HELO");
            return None;
        }
        for parameter in text.split_ascii_whitespace() {
            let (name, value) = match parameter.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (parameter, None),
            };
            let upper = if name.len() <= PARAMETER_NAME_CHARS_MAX { name.to_ascii_uppercase() } else { String::new() };
            let valid = match upper.as_str() {
                "SIZE" => match value {
                    Some(digits) if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) => {
                        parameters.size = Some(digits.parse().unwrap_or(u64::MAX));
                        true
                    }
                    _ => false,
                },
                "BODY" => match value {
                    Some(body) if body.eq_ignore_ascii_case("7BIT") => {
                        parameters.body = BodyType::SevenBit;
                        true
                    }
                    Some(body) if body.eq_ignore_ascii_case("8BITMIME") => {
                        parameters.body = BodyType::EightBitMime;
                        true
                    }
                    _ => false,
                },
                "SMTPUTF8" => {
                    parameters.smtputf8 = true;
                    value.is_none()
                }
                // RFC 4954 §5: the AUTH parameter may be ignored by a server that does not relay
                // on the strength of it.
                "AUTH" => value.is_some_and(|value| !value.is_empty()),
                _ => {
                    let shown: String = name.chars().take(PARAMETER_NAME_CHARS_MAX).collect();
                    self.reply(555, "5.5.4", &format!("MAIL parameter {shown} is not recognized"));
                    return None;
                }
            };
            if !valid {
                self.reply(501, "5.5.4", &format!("Bad value for MAIL parameter {upper}"));
                return None;
            }
        }
        Some(parameters)
    }
}
