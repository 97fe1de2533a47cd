//! What a session is told when it starts: its host name, its limits, and what the connection
//! allows (TLS, plaintext authentication, transcripts).

/// Smallest command line a session accepts, in octets including CRLF: RFC 2449 §4 lets a client
/// send commands of up to 255 octets, so a lower configured limit is raised to this.
pub const COMMAND_LINE_BYTES_MIN: usize = 255;

/// Bounds on what one POP3 session accepts from its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line accepted, in octets including its CRLF. Default 2048.
    ///
    /// RFC 2449 §4 caps commands at 255 octets, but an `AUTH PLAIN` initial response or SASL
    /// continuation (RFC 5034 §4) carries base64 of a user name and password and needs more. A
    /// longer line is discarded up to its LF without being buffered, and answered with
    /// `-ERR Line too long`. Values below [`COMMAND_LINE_BYTES_MIN`] are raised to it.
    pub command_line_bytes_max: usize,
    /// `-ERR` replies after which the session ends with `-ERR Too many errors`. Default 10.
    ///
    /// Every `-ERR` counts (unknown commands, wrong state, failed logins, overlong lines), so a
    /// client that guesses passwords or sends junk is cut off. 0 ends the session at the first
    /// error.
    pub errors_max: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { command_line_bytes_max: 2048, errors_max: 10 }
    }
}

/// How one POP3 session behaves; the driver builds one per accepted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// This server's host name, shown in the greeting and the sign-off. Must not contain CR or LF.
    pub hostname: String,
    /// Bounds on client input.
    pub limits: Limits,
    /// `STLS` may be offered (RFC 2595 §4): a certificate is configured and the connection is not
    /// TLS yet.
    pub stls: bool,
    /// The connection is TLS from its first byte (implicit TLS, port 995).
    pub tls: bool,
    /// `USER`/`PASS` and `AUTH PLAIN` are allowed without TLS. The driver decides, e.g. for a
    /// loopback peer; RFC 2595 §2.1 says a server should refuse plaintext passwords otherwise.
    pub plaintext_auth: bool,
    /// Record a transcript of the dialogue ([`Session::take_transcript`](super::Session::take_transcript)),
    /// with passwords redacted.
    pub transcript: bool,
}

impl SessionConfig {
    /// A configuration with default limits, no TLS, plaintext authentication refused, and no
    /// transcript.
    pub fn new(hostname: impl Into<String>) -> SessionConfig {
        SessionConfig {
            hostname: hostname.into(),
            limits: Limits::default(),
            stls: false,
            tls: false,
            plaintext_auth: false,
            transcript: false,
        }
    }
}
