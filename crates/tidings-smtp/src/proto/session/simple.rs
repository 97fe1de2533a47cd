//! The commands without state of their own: RSET, NOOP, QUIT, VRFY, EXPN and HELP
//! (RFC 5321 §4.1.1.5 to §4.1.1.10).

use super::Session;

impl Session {
    pub(super) fn rset(&mut self, args: &str) {
        if !args.trim().is_empty() {
            self.reply(501, "5.5.4", "Syntax: RSET");
            return;
        }
        self.transaction = None;
        self.reply(250, "2.0.0", "Ok");
    }

    /// NOOP; any argument is ignored (RFC 5321 §4.1.1.9).
    pub(super) fn noop(&mut self) {
        self.reply(250, "2.0.0", "Ok");
    }

    pub(super) fn quit(&mut self) {
        let text = format!("{} Bye", self.config.hostname);
        self.reply(221, "2.0.0", &text);
        self.enter_closed();
    }

    /// VRFY: answered with `252` so as not to reveal which users exist (RFC 5321 §3.5.3, §7.3).
    pub(super) fn vrfy(&mut self, args: &str) {
        if args.trim().is_empty() {
            self.reply(501, "5.5.4", "Syntax: VRFY address");
            return;
        }
        self.reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
    }

    /// EXPN: mailing lists are not disclosed (RFC 5321 §7.3).
    pub(super) fn expn(&mut self) {
        self.reply(502, "5.5.1", "EXPN is not supported");
    }

    pub(super) fn help(&mut self) {
        self.reply_lines(
            214,
            "2.0.0",
            &[
                "tidings SMTP server (RFC 5321)",
                "Commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT",
                "Commands: RSET NOOP QUIT VRFY HELP",
                "End of HELP info",
            ],
        );
    }
}
