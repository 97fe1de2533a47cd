//! What a [`Session`](super::Session) is told when it starts: who we are, which port it serves,
//! and the limits it enforces.

use std::net::IpAddr;

/// Which service a session provides; decides who may send mail and to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Mail exchange, port 25 style (RFC 5321): anyone may deliver mail for local recipients;
    /// mail for other domains is refused unless the client authenticated, so the server is never an
    /// open relay.
    Mx,
    /// Message submission (RFC 6409, ports 587/465): AUTH is required before MAIL, and the envelope
    /// sender must belong to the authenticated account (RFC 6409 §4.3).
    Submission,
}

/// What to do with a bare CR or bare LF (one not part of a CRLF pair) inside message content.
///
/// RFC 5321 §2.3.8 allows lines to end only with CRLF. Accepting other line ends is what made the
/// 2023 "SMTP smuggling" attacks possible, so the default is to refuse such messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BareLineEnding {
    /// Refuse the whole message after its end with `550 5.6.0`.
    #[default]
    Reject,
    /// Store each bare CR and each bare LF as CRLF. It still never starts a new line for the
    /// purposes of end-of-data detection and dot-unstuffing, so it cannot smuggle a second message.
    Normalize,
}

/// The bounds a session enforces. Every one is an octet or item count; none is a time (the driver
/// owns the clock and calls [`Session::timeout`](super::Session::timeout)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in octets of content as stored (dot-unstuffed, CRLF line ends).
    /// Advertised in the EHLO `SIZE` keyword (RFC 1870 §4). A `MAIL FROM` with a larger `SIZE=`
    /// is refused with `552 5.3.4`; content past the limit is counted, not kept, and the message is
    /// refused with `552 5.3.4` after its end. Default 25 MiB (26 214 400).
    pub message_bytes_max: usize,
    /// Most distinct recipients in one mail transaction; the next `RCPT` gets `452 4.5.3 Too many
    /// recipients` (RFC 5321 §4.5.3.1.10 sets 100 as the minimum a server must accept). Default 100.
    pub recipients_max: usize,
    /// Longest command line, in octets including CRLF (RFC 5321 §4.5.3.1.4 requires at least 512;
    /// RFC 4954 §4 asks for more for AUTH lines). Longer lines are discarded up to their LF, never
    /// buffered, and get `500 5.5.2 Line too long`. Default 4096.
    pub command_line_bytes_max: usize,
    /// Longest line of message content, in octets as transmitted including CRLF but not counting a
    /// leading dot doubled for transparency (RFC 5321 §4.5.3.1.6). A longer line makes the message
    /// refused with `550 5.6.0`. Default 1000.
    pub text_line_bytes_max: usize,
    /// Error replies (4xx and 5xx to commands) a session may earn; when it reaches this count the
    /// session replies `421 4.7.0 <host> Too many errors` and closes. Default 20 (rejected
    /// recipients count, so a list with some stale addresses must not reach it).
    pub errors_max: u32,
    /// Most `Received:` header fields a message may carry before it is taken for a mail loop and
    /// refused with `554 5.4.6` (RFC 5321 §6.3). Default 100.
    pub received_fields_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            message_bytes_max: 25 * 1024 * 1024,
            recipients_max: 100,
            command_line_bytes_max: 4096,
            text_line_bytes_max: 1000,
            errors_max: 20,
            received_fields_max: 100,
        }
    }
}

/// Everything a session needs to know about its connection and its server.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our host name, used in the greeting, the EHLO reply, `421`/`221` replies and the `by` clause
    /// of the `Received:` field.
    pub hostname: String,
    /// Mail exchange or submission.
    pub mode: Mode,
    /// The bounds this session enforces.
    pub limits: Limits,
    /// Policy for bare CR / bare LF in message content.
    pub bare_line_ending: BareLineEnding,
    /// STARTTLS may be offered: a certificate is configured and the connection is not TLS yet
    /// (RFC 3207).
    pub starttls: bool,
    /// The connection is already TLS (implicit-TLS port, RFC 8314).
    pub tls: bool,
    /// AUTH may be offered and used without TLS (the driver decides, e.g. for a loopback peer).
    /// Otherwise AUTH before TLS gets `538 5.7.11` (RFC 4954 §6).
    pub plaintext_auth: bool,
    /// The client's IP address, for the `Received:` field.
    pub peer: IpAddr,
    /// Record a transcript of the session with credentials redacted (see
    /// [`Session::take_transcript`](super::Session::take_transcript)).
    pub transcript: bool,
}

impl SessionConfig {
    /// A configuration with default limits, `Reject` policy, no TLS, no plaintext AUTH and no
    /// transcript.
    pub fn new(hostname: impl Into<String>, mode: Mode, peer: IpAddr) -> SessionConfig {
        SessionConfig {
            hostname: hostname.into(),
            mode,
            limits: Limits::default(),
            bare_line_ending: BareLineEnding::Reject,
            starttls: false,
            tls: false,
            plaintext_auth: false,
            peer,
            transcript: false,
        }
    }
}
