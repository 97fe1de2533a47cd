//! STARTTLS (RFC 3207).

use super::{Phase, Session};

impl Session {
    pub(super) fn starttls(&mut self, args: &str) {
        if !args.trim().is_empty() {
            self.reply(501, "5.5.4", "Syntax: STARTTLS (no parameters allowed)");
        } else if self.tls {
            self.reply(503, "5.5.1", "TLS is already active");
        } else if !self.config.starttls {
            self.reply(454, "4.7.0", "TLS not available");
        } else {
            self.reply(220, "2.0.0", "Ready to start TLS");
            // RFC 3207 §4.2 and the 2011 STARTTLS command-injection bugs: anything the client sent
            // after the STARTTLS line arrived in plaintext and must not be acted on after TLS.
            self.input.clear();
            self.input_pos = 0;
            self.discarding_line = false;
            self.transaction = None;
            self.phase = Phase::TlsHandshake;
        }
    }
}
