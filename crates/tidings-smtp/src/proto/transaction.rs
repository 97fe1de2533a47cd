//! A completed mail transaction as handed to the driver for delivery, and its trace information.

use std::fmt::Write as _;
use std::net::IpAddr;

use tidings_core::Address;

/// The body type the client declared with `MAIL FROM ... BODY=` (RFC 6152 §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyType {
    /// `BODY=7BIT` or no `BODY` parameter.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

/// One mail transaction ready for delivery (RFC 5321 §3.3): envelope plus message octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The `MAIL FROM` address; `None` for the null reverse-path `<>` (bounces).
    pub reverse_path: Option<Address>,
    /// Accepted recipients in canonical form (from [`RcptVerdict::Local`](super::RcptVerdict)),
    /// duplicates removed, in `RCPT` order. Never empty.
    pub recipients: Vec<Address>,
    /// The message as received: dot-unstuffed, every line ending in CRLF, without the terminating
    /// `.` line. At most [`Limits::message_bytes_max`](super::Limits) octets.
    pub data: Vec<u8>,
    /// The declared body type.
    pub body: BodyType,
    /// The client asked for SMTPUTF8 (RFC 6531 §3.4): addresses or headers may be UTF-8.
    pub smtputf8: bool,
    /// What the `Received:` field needs.
    pub trace: Trace,
}

/// The facts an RFC 5321 §4.4 `Received:` trace field records about a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The name the client gave in HELO/EHLO.
    pub helo: String,
    /// The client's IP address.
    pub peer: IpAddr,
    /// Our host name.
    pub hostname: String,
    /// The `with` protocol (RFC 3848, RFC 6531 §3.7.3): `SMTP`, `ESMTP`, `ESMTPA`, `ESMTPS`,
    /// `ESMTPSA`, `UTF8SMTP`, `UTF8SMTPA`, `UTF8SMTPS` or `UTF8SMTPSA`.
    pub protocol: &'static str,
    /// The recipient for the `for` clause, given only when there is exactly one (RFC 5321 §7.2:
    /// naming one of several recipients would disclose the others' existence to each).
    pub recipient: Option<Address>,
}

/// Longest HELO name written into a `Received:` field, in characters (a domain is at most 255
/// octets, RFC 5321 §4.5.3.1.2).
const HELO_CHARS_MAX: usize = 255;

impl Trace {
    /// The RFC 5321 §4.4 `Received:` header field for this transaction, folded over three lines
    /// (each continuation starts with a tab), ending in CRLF, e.g.
    ///
    /// ```
    /// use tidings_smtp::proto::Trace;
    /// let trace = Trace {
    ///     helo: "client.example".into(),
    ///     peer: "127.0.0.1".parse().unwrap(),
    ///     hostname: "mx.example".into(),
    ///     protocol: "ESMTPS",
    ///     recipient: Some("ta@mmsys.upenn.edu".parse().unwrap()),
    /// };
    /// assert_eq!(
    ///     trace.received_field("18C3F2", "Sat, 21 Nov 2026 09:42:00 +0000"),
    ///     "Received: from client.example ([127.0.0.1])\r\n\
    ///      \tby mx.example (tidings) with ESMTPS id 18C3F2\r\n\
    ///      \tfor <ta@mmsys.upenn.edu>; Sat, 21 Nov 2026 09:42:00 +0000\r\n"
    /// );
    /// ```
    ///
    /// `id` is the driver's queue id and `date` an RFC 5322 §3.3 date-time (see
    /// `tidings_core::date::rfc5322`). The client-chosen HELO name is sanitized so it cannot break
    /// the header: control characters, white space, parentheses and semicolons become `?`.
    pub fn received_field(&self, id: &str, date: &str) -> String {
        let helo: String = self
            .helo
            .chars()
            .take(HELO_CHARS_MAX)
            .map(|c| if c.is_control() || c.is_whitespace() || "();".contains(c) { '?' } else { c })
            .collect();
        let mut field = String::with_capacity(160);
        let _ = write!(field, "Received: from {helo} (");
        match self.peer {
            IpAddr::V4(v4) => {
                let _ = write!(field, "[{v4}]");
            }
            IpAddr::V6(v6) => {
                let _ = write!(field, "[IPv6:{v6}]");
            }
        }
        let _ = write!(field, ")\r\n\tby {} (tidings) with {} id {}", self.hostname, self.protocol, id);
        match &self.recipient {
            Some(rcpt) => {
                let _ = write!(field, "\r\n\tfor <{rcpt}>; {date}\r\n");
            }
            None => {
                let _ = write!(field, ";\r\n\t{date}\r\n");
            }
        }
        field
    }
}

/// The RFC 3848 / RFC 6531 §3.7.3 `with` keyword for a session's state.
pub(crate) fn protocol_name(extended: bool, smtputf8: bool, tls: bool, authenticated: bool) -> &'static str {
    match (extended, smtputf8, tls, authenticated) {
        (false, ..) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, false) => "ESMTPS",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(recipient: Option<&str>) -> Trace {
        Trace {
            helo: "client.example".into(),
            peer: "127.0.0.1".parse().unwrap(),
            hostname: "mx.example".into(),
            protocol: "ESMTPS",
            recipient: recipient.map(|r| r.parse().unwrap()),
        }
    }

    #[test]
    fn received_field_with_one_recipient_has_a_for_clause() {
        assert_eq!(
            trace(Some("ta@mmsys.upenn.edu")).received_field("18C3F2", "Sat, 21 Nov 2026 09:42:00 +0000"),
            "Received: from client.example ([127.0.0.1])\r\n\tby mx.example (tidings) with ESMTPS id 18C3F2\r\n\t\
             for <ta@mmsys.upenn.edu>; Sat, 21 Nov 2026 09:42:00 +0000\r\n"
        );
    }

    #[test]
    fn received_field_without_single_recipient_has_no_for_clause() {
        assert_eq!(
            trace(None).received_field("1", "Thu, 1 Jan 1970 00:00:00 +0000"),
            "Received: from client.example ([127.0.0.1])\r\n\tby mx.example (tidings) with ESMTPS id 1;\r\n\t\
             Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }

    #[test]
    fn received_field_writes_ipv6_peers_as_address_literals() {
        let mut t = trace(None);
        t.peer = "::1".parse().unwrap();
        assert!(t.received_field("1", "d").starts_with("Received: from client.example ([IPv6:::1])\r\n"));
    }

    #[test]
    fn received_field_sanitizes_the_helo_name() {
        let mut t = trace(None);
        t.helo = "evil\r\nX-Injected: yes (x)".into();
        let field = t.received_field("1", "d");
        assert!(field.starts_with("Received: from evil??X-Injected:?yes??x? ("), "{field}");
    }

    #[test]
    fn protocol_names_follow_rfc_3848_and_6531() {
        assert_eq!(protocol_name(false, false, true, true), "SMTP");
        assert_eq!(protocol_name(true, false, false, false), "ESMTP");
        assert_eq!(protocol_name(true, false, true, true), "ESMTPSA");
        assert_eq!(protocol_name(true, true, true, false), "UTF8SMTPS");
        assert_eq!(protocol_name(true, true, false, true), "UTF8SMTPA");
    }
}
