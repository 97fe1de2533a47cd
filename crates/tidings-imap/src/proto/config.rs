//! What a session is told when it starts: its host name, its limits, and what the connection
//! allows (TLS, plaintext authentication, transcripts).

/// Bounds on what one IMAP session accepts from its client and holds in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest literal accepted, in octets. Default 25 MiB + 64 KiB (26 279 936): an `APPEND` of
    /// a message of the largest size SMTP accepts, with room for trace fields.
    ///
    /// A larger synchronizing literal (`{n}`) is refused with a tagged `BAD` before the client
    /// sends it; a larger non-synchronizing one (`{n+}`, RFC 7888 LITERAL+) cannot be stopped, so
    /// the session says `* BYE` and closes (RFC 7888 §4).
    pub literal_bytes_max: u32,
    /// Largest command, in octets including its literals and line ends. Default
    /// [`literal_bytes_max`](Self::literal_bytes_max) + 64 KiB. Longer commands are read to their
    /// end without being kept and answered with `BAD`. Raised to `literal_bytes_max + 1024` if set
    /// lower, since a command holding the largest literal must fit.
    pub command_bytes_max: u32,
    /// `BAD` and `NO` replies after which the session ends with `* BYE Too many errors`.
    /// Default 20. Failed logins count, so a password guesser is cut off.
    pub errors_max: u32,
    /// Most messages whose content one [`Request::Fetch`](super::Request::Fetch) asks for.
    /// Default 64. A FETCH or SEARCH over message content loads the messages in batches of at
    /// most this many, and sends each batch's replies before loading the next.
    pub fetch_batch_messages: usize,
    /// Most octets of content (by the sizes the store reported) one
    /// [`Request::Fetch`](super::Request::Fetch) asks for; a batch stops growing once it reaches
    /// this, but always holds at least one message. Default 16 MiB.
    pub fetch_batch_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        let literal_bytes_max = 25 * 1024 * 1024 + 64 * 1024;
        Limits {
            literal_bytes_max,
            command_bytes_max: literal_bytes_max + 64 * 1024,
            errors_max: 20,
            fetch_batch_messages: 64,
            fetch_batch_bytes: 16 * 1024 * 1024,
        }
    }
}

/// How one IMAP session behaves; the driver builds one per accepted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// This server's host name, shown in the greeting and the sign-off. Must not contain CR or LF.
    pub hostname: String,
    /// Bounds on client input and on what the session holds.
    pub limits: Limits,
    /// `STARTTLS` may be offered (RFC 9051 §6.2.1): a certificate is configured and the connection
    /// is not TLS yet.
    pub starttls: bool,
    /// The connection is TLS from its first octet (implicit TLS, port 993, RFC 8314).
    pub tls: bool,
    /// `LOGIN` and `AUTHENTICATE PLAIN` are allowed without TLS. The driver decides, e.g. for a
    /// loopback peer. Otherwise the capabilities say `LOGINDISABLED` and no `AUTH=` before TLS
    /// (RFC 9051 §6.2.3).
    pub plaintext_auth: bool,
    /// Record a transcript of the dialogue
    /// ([`take_transcript`](tidings_core::SessionCore::take_transcript)), with passwords and
    /// SASL data redacted and literals summarised.
    pub transcript: bool,
}

impl SessionConfig {
    /// A configuration with default limits, no TLS, plaintext authentication refused, and no
    /// transcript.
    pub fn new(hostname: impl Into<String>) -> SessionConfig {
        SessionConfig {
            hostname: hostname.into(),
            limits: Limits::default(),
            starttls: false,
            tls: false,
            plaintext_auth: false,
            transcript: false,
        }
    }
}
