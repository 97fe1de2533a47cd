//! HELO and EHLO (RFC 5321 §4.1.1.1): the client names itself; EHLO lists our extensions.

use super::{Helo, Session};

/// Longest HELO/EHLO argument accepted, in octets (a domain is at most 255, RFC 5321 §4.5.3.1.2;
/// an IPv6 address literal is shorter).
const HELO_BYTES_MAX: usize = 255;

impl Session {
    /// HELO (`extended` false) or EHLO. Either resets any mail transaction (RFC 5321 §4.1.4);
    /// authentication is kept.
    pub(super) fn hello(&mut self, args: &str, extended: bool) {
        let verb = if extended { "EHLO" } else { "HELO" };
        let Some(name) = args.split_ascii_whitespace().next() else {
            self.reply(501, "5.5.4", &format!("Syntax: {verb} hostname"));
            return;
        };
        if name.len() > HELO_BYTES_MAX || name.chars().any(char::is_control) {
            self.reply(501, "5.5.4", &format!("Invalid {verb} name"));
            return;
        }
        self.transaction = None;
        self.helo = Some(Helo { name: name.to_string(), extended });
        let first = format!("{} Hello {name}", self.config.hostname);
        if !extended {
            self.write_reply(250, None, &[&first]);
            return;
        }
        let size = format!("SIZE {}", self.config.limits.message_bytes_max);
        let mut lines: Vec<&str> =
            vec![&first, "PIPELINING", "8BITMIME", &size, "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"];
        if self.config.starttls && !self.tls {
            lines.push("STARTTLS");
        }
        if self.auth_allowed() {
            lines.push("AUTH PLAIN LOGIN");
        }
        lines.push("HELP");
        // The EHLO reply carries no enhanced status code: its lines are keywords (RFC 2034 §3).
        self.write_reply(250, None, &lines);
    }
}
