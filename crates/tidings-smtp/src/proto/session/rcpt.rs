//! RCPT TO (RFC 5321 §4.1.1.3): recipients are checked by the driver; never an open relay.

use tidings_core::{AddressError, Path, parse_path};

use super::{Pending, Session, path_text, strip_prefix_ignore_case};
use crate::proto::{RcptVerdict, Request};

impl Session {
    pub(super) fn rcpt(&mut self, args: &str) {
        let Some(transaction) = &self.transaction else {
            self.reply(503, "5.5.1", "Need MAIL command first");
            return;
        };
        if transaction.chunks.is_some() {
            self.reply(503, "5.5.1", "RCPT is not allowed after BDAT");
            return;
        }
        let smtputf8 = transaction.smtputf8;
        let full = transaction.recipients.len() >= self.config.limits.recipients_max;
        let Some(rest) = strip_prefix_ignore_case(args, "TO:") else {
            self.reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
            return;
        };
        let path = match parse_path(rest, smtputf8) {
            Ok((Path::Null, _)) => {
                self.reply(501, "5.1.3", "Bad recipient address syntax");
                return;
            }
            Ok((_, parameters)) if !parameters.is_empty() => {
                self.reply(555, "5.5.4", "RCPT parameters are not recognized");
                return;
            }
            Ok((path, _)) => path,
            Err(AddressError::NeedsUtf8) => {
                self.reply(553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8 in MAIL FROM");
                return;
            }
            Err(_) => {
                self.reply(501, "5.1.3", "Bad recipient address syntax");
                return;
            }
        };
        if full {
            // RFC 5321 §4.5.3.1.10: a temporary failure, so the client sends the rest later.
            self.reply(452, "4.5.3", "Too many recipients");
            return;
        }
        self.issue(Request::CheckRecipient { path: path.clone() }, Pending::Recipient(path));
    }

    pub(super) fn recipient_resolved(&mut self, path: &Path, verdict: RcptVerdict) {
        let shown = path_text(path);
        let Some(transaction) = &mut self.transaction else {
            debug_assert!(false, "the transaction vanished during a recipient check");
            return;
        };
        match verdict {
            RcptVerdict::Local(address) => {
                if !transaction.recipients.contains(&address) {
                    transaction.recipients.push(address);
                }
                self.reply(250, "2.1.5", &format!("Recipient {shown} ok"));
            }
            RcptVerdict::UnknownUser => {
                self.reply(550, "5.1.1", &format!("{shown}: Recipient address rejected: no such user"));
            }
            RcptVerdict::NotLocal if self.account.is_some() => self.reply(
                550,
                "5.7.1",
                &format!(
                    "{shown}: Relaying to other domains is not supported yet by this server \
                     (outbound delivery is not implemented)"
                ),
            ),
            RcptVerdict::NotLocal => self.reply(550, "5.7.1", &format!("{shown}: Relaying denied")),
            RcptVerdict::TempFail => {
                self.reply(451, "4.3.0", &format!("{shown}: Temporary failure checking recipient, try again later"));
            }
        }
    }
}
