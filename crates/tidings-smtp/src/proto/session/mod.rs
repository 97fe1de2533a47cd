//! One SMTP connection as a state machine: input framing, the command loop, replies, requests and
//! their answers. Each command family lives in its own file beside this one.

mod auth;
mod content;
mod hello;
mod mail;
mod rcpt;
mod simple;
mod starttls;

use std::mem;
use std::ops::Range;

use memchr::memchr;
use tidings_core::{Address, OUTPUT_BYTES_HIGH_WATER, Path, SessionCore};

use super::data::DataDecoder;
use super::reply::format_lines;
use super::{BodyType, Request, Response, SessionConfig, Step};

use auth::AuthStep;

/// Longest command line recorded in a transcript, in characters; the rest is elided.
const TRANSCRIPT_LINE_CHARS_MAX: usize = 200;

/// One SMTP session (RFC 5321), from greeting to close, without I/O.
///
/// The driver loop is: [`poll`](Self::poll); on [`Step::NeedInput`] write
/// [`take_output`](Self::take_output), read, then [`feed`](Self::feed) or [`eof`](Self::eof);
/// on [`Step::Request`] answer with [`resolve`](Self::resolve); on [`Step::StartTls`] write the
/// output, handshake, then [`tls_established`](Self::tls_established); on [`Step::Close`] write the
/// output and close.
///
/// Pipelined commands (RFC 2920) are processed in order; replies accumulate in the output until
/// the session needs input, so they go out in batches. A request blocks later commands until it
/// is resolved.
///
/// Memory is bounded whatever the client sends: a partial command line is never kept beyond
/// [`Limits::command_line_bytes_max`](super::Limits), message content never beyond
/// [`Limits::message_bytes_max`](super::Limits); the input buffer holds at most what the driver
/// fed since the last poll plus one partial line.
pub struct Session {
    config: SessionConfig,
    /// Bytes from the client: `input[input_pos..]` is not processed yet.
    input: Vec<u8>,
    input_pos: usize,
    /// The current command line went over the limit; its octets are dropped up to its LF.
    discarding_line: bool,
    /// Replies not yet taken by the driver.
    output: Vec<u8>,
    /// Transcript lines not yet taken (only with `config.transcript`).
    transcript: Vec<String>,
    phase: Phase,
    /// A request made by the last command, handed to the driver by the next `poll`.
    request: Option<Request>,
    /// The HELO/EHLO greeting received; `None` before it and after STARTTLS (RFC 3207 §4.2).
    helo: Option<Helo>,
    /// The connection is encrypted (implicit TLS, or STARTTLS done).
    tls: bool,
    /// The account this session authenticated as (RFC 4954).
    account: Option<Address>,
    /// The open mail transaction, from an accepted MAIL until its end or a reset.
    transaction: Option<MailTransaction>,
    /// Error replies (4xx, 5xx) sent so far; see `Limits::errors_max`.
    errors: u32,
}

/// What the client said in HELO or EHLO.
struct Helo {
    name: String,
    /// EHLO rather than HELO: extensions and enhanced status codes are in use.
    extended: bool,
}

/// An open mail transaction (RFC 5321 §3.3).
struct MailTransaction {
    reverse_path: Option<Address>,
    body: BodyType,
    smtputf8: bool,
    /// Accepted recipients, canonical, without duplicates, in RCPT order.
    recipients: Vec<Address>,
    /// The BDAT content received so far (RFC 3030), once the first chunk came.
    chunks: Option<DataDecoder>,
}

/// What the session is doing with its input.
enum Phase {
    /// Reading command lines.
    Command,
    /// Reading an AUTH continuation line (RFC 4954 §4).
    AuthContinuation(AuthStep),
    /// A request is out; nothing is processed until `resolve`.
    Waiting(Pending),
    /// Reading DATA content.
    Data(DataDecoder),
    /// Reading the octets of a BDAT chunk.
    Chunk {
        /// Octets of the chunk still to come.
        remaining: u64,
        /// The chunk's size as announced.
        size: u64,
        /// The chunk is the `LAST` one.
        last: bool,
        /// The chunk belongs to a valid transaction; otherwise it is consumed and dropped.
        accepted: bool,
    },
    /// `220` to STARTTLS sent; waiting for `tls_established`.
    TlsHandshake,
    /// The session is over; `poll` returns `Step::Close`.
    Closed,
}

/// What a request out is for, to act on its answer.
enum Pending {
    Auth,
    /// The transaction a MAIL command opens if the sender is allowed.
    Sender(MailTransaction),
    /// The forward-path, to name it in the reply.
    Recipient(Path),
    Delivery,
}

/// The outcome of looking for the next command line.
enum Line {
    /// The line's octets, without CRLF (or bare LF), in `input`.
    Complete(Range<usize>),
    /// A line over `command_line_bytes_max` has ended; it was discarded.
    TooLong,
    /// No complete line yet.
    Incomplete,
}

impl Session {
    /// A new session; the greeting `220 <hostname> ESMTP tidings ready` is queued as output.
    pub fn new(config: SessionConfig) -> Session {
        let tls = config.tls;
        let mut session = Session {
            config,
            input: Vec::new(),
            input_pos: 0,
            discarding_line: false,
            output: Vec::new(),
            transcript: Vec::new(),
            phase: Phase::Command,
            request: None,
            helo: None,
            tls,
            account: None,
            transaction: None,
            errors: 0,
        };
        let greeting = format!("{} ESMTP tidings ready", session.config.hostname);
        session.write_reply(220, None, &[&greeting]);
        session
    }

    /// [`Step::NeedInput`], first giving back the input buffer's memory when all of it has been
    /// processed: an idle session holds no input buffer (it is reallocated at the next feed).
    fn need_input(&mut self) -> Step {
        if self.input_pos == self.input.len() {
            self.input = Vec::new();
            self.input_pos = 0;
        }
        Step::NeedInput
    }

    /// Octets of client input held, processed or not (for tests of the memory bounds).
    #[cfg(test)]
    pub(crate) fn buffered_input_bytes(&self) -> usize {
        self.input.len()
    }

    // ----- input framing -----

    /// Finds the next command line, enforcing `command_line_bytes_max` (octets including CRLF)
    /// without ever buffering more than that of one line.
    fn next_line(&mut self) -> Line {
        let available = &self.input[self.input_pos..];
        let max = self.config.limits.command_line_bytes_max;
        match memchr(b'\n', available) {
            Some(lf) => {
                let start = self.input_pos;
                self.input_pos += lf + 1;
                if mem::take(&mut self.discarding_line) || lf + 1 > max {
                    return Line::TooLong;
                }
                let mut end = start + lf;
                if end > start && self.input[end - 1] == b'\r' {
                    end -= 1;
                }
                Line::Complete(start..end)
            }
            None => {
                if self.discarding_line || available.len() >= max {
                    self.discarding_line = true;
                    self.input_pos = self.input.len();
                }
                Line::Incomplete
            }
        }
    }

    fn line_too_long(&mut self) {
        self.record(|| "C: <line too long, discarded>".to_string());
        // An AUTH exchange cannot go on after a lost continuation line (RFC 4954 §4).
        self.phase = Phase::Command;
        self.reply(500, "5.5.2", "Line too long");
    }

    fn handle_line(&mut self, line: &[u8]) {
        if let Phase::AuthContinuation(step) = mem::replace(&mut self.phase, Phase::Command) {
            self.record(|| "C: <redacted>".to_string());
            self.auth_continuation(step, line);
            return;
        }
        self.record_command(line);
        let Ok(text) = std::str::from_utf8(line) else {
            self.reply(500, "5.5.2", "Command not recognized (not UTF-8)");
            return;
        };
        let (verb, args) = text.split_once(' ').unwrap_or((text, ""));
        let verb = if verb.len() <= 8 { verb.to_ascii_uppercase() } else { String::new() };
        match verb.as_str() {
            "EHLO" => self.hello(args, true),
            "HELO" => self.hello(args, false),
            "MAIL" => self.mail(args),
            "RCPT" => self.rcpt(args),
            "DATA" => self.data(args),
            "BDAT" => self.bdat(args),
            "AUTH" => self.auth(args),
            "STARTTLS" => self.starttls(args),
            "RSET" => self.rset(args),
            "NOOP" => self.noop(),
            "QUIT" => self.quit(),
            "VRFY" => self.vrfy(args),
            "EXPN" => self.expn(),
            "HELP" => self.help(),
            _ => self.reply(500, "5.5.2", "Command not recognized"),
        }
    }

    // ----- replies, requests, transcript -----

    /// Whether EHLO (not HELO) is in force: extensions and enhanced status codes are in use.
    fn extended(&self) -> bool {
        self.helo.as_ref().is_some_and(|helo| helo.extended)
    }

    /// Whether AUTH may be offered and used now.
    fn auth_allowed(&self) -> bool {
        self.tls || self.config.plaintext_auth
    }

    /// Queues a one-line reply to a command; see [`reply_lines`](Self::reply_lines).
    fn reply(&mut self, code: u16, enhanced: &'static str, text: &str) {
        self.reply_lines(code, enhanced, &[text]);
    }

    /// Queues a reply to a command. The enhanced status code is shown only after EHLO (RFC 2034
    /// §3). A 4xx or 5xx reply counts towards `errors_max`.
    fn reply_lines(&mut self, code: u16, enhanced: &'static str, lines: &[&str]) {
        let enhanced = self.extended().then_some(enhanced);
        self.write_reply(code, enhanced, lines);
        if code >= 400 {
            self.errors = self.errors.saturating_add(1);
        }
    }

    /// Queues a reply as given, with no error accounting.
    fn write_reply(&mut self, code: u16, enhanced: Option<&str>, lines: &[&str]) {
        for line in format_lines(code, enhanced, lines) {
            self.output.extend_from_slice(line.as_bytes());
            self.output.extend_from_slice(b"\r\n");
            if self.config.transcript {
                self.transcript.push(format!("S: {line}"));
            }
        }
    }

    /// Hands `request` to the driver at the next `poll` and waits for its answer.
    fn issue(&mut self, request: Request, pending: Pending) {
        debug_assert!(self.request.is_none());
        self.request = Some(request);
        self.phase = Phase::Waiting(pending);
    }

    /// Queues `421 <enhanced> <host> <text>` and ends the session (RFC 5321 §3.8).
    fn close_with(&mut self, enhanced: &'static str, text: &str) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let text = format!("{} {text}", self.config.hostname);
        let enhanced = self.extended().then_some(enhanced);
        self.write_reply(421, enhanced, &[&text]);
        self.enter_closed();
    }

    fn enter_closed(&mut self) {
        self.phase = Phase::Closed;
        self.request = None;
        self.transaction = None;
        self.input = Vec::new();
        self.input_pos = 0;
        self.discarding_line = false;
    }

    /// Adds a transcript line, built only when transcripts are on.
    fn record(&mut self, entry: impl FnOnce() -> String) {
        if self.config.transcript {
            self.transcript.push(entry());
        }
    }

    /// Records a command line, lossily decoded, capped, with AUTH arguments redacted.
    fn record_command(&mut self, line: &[u8]) {
        if !self.config.transcript {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let entry = if words.next().is_some_and(|verb| verb.eq_ignore_ascii_case("AUTH")) {
            // The mechanism name is kept only when it is one we know: a confused client may send
            // its credentials in its place.
            match words.next() {
                Some(mechanism) if ["PLAIN", "LOGIN"].iter().any(|m| mechanism.eq_ignore_ascii_case(m)) => {
                    let mechanism = mechanism.to_ascii_uppercase();
                    match words.next() {
                        Some(_) => format!("C: AUTH {mechanism} <redacted>"),
                        None => format!("C: AUTH {mechanism}"),
                    }
                }
                Some(_) => "C: AUTH <redacted>".to_string(),
                None => "C: AUTH".to_string(),
            }
        } else if looks_like_credentials(&text) {
            // A client that went on after a refused AUTH may send its base64 credentials as if
            // they were commands.
            "C: <redacted>".to_string()
        } else {
            let mut entry = String::from("C: ");
            for (index, c) in text.chars().enumerate() {
                if index == TRANSCRIPT_LINE_CHARS_MAX {
                    entry.push('…');
                    break;
                }
                if c.is_control() {
                    entry.extend(c.escape_default());
                } else {
                    entry.push(c);
                }
            }
            entry
        };
        self.transcript.push(entry);
    }
}

impl SessionCore for Session {
    type Request = Request;
    type Response = Response;
    type Notice = std::convert::Infallible;

    fn notice(&mut self, notice: std::convert::Infallible) {
        match notice {}
    }

    /// Appends bytes read from the client. Ignored once the session is closed, and while a STARTTLS
    /// handshake is pending (RFC 3207 §4.2: nothing sent before TLS may be acted on after it).
    fn feed(&mut self, input: &[u8]) {
        if matches!(self.phase, Phase::Closed | Phase::TlsHandshake) {
            return;
        }
        if self.input_pos > 0 {
            self.input.drain(..self.input_pos);
            self.input_pos = 0;
        }
        self.input.extend_from_slice(input);
    }

    /// The client closed its side: the next [`poll`](Self::poll) returns [`Step::Close`]. A mail
    /// transaction in progress is dropped, and buffered input is not processed.
    fn eof(&mut self) {
        self.enter_closed();
    }

    /// Processes buffered input until the driver must act; see [`Step`].
    fn poll(&mut self) -> Step {
        loop {
            let errors_max = self.config.limits.errors_max;
            if errors_max > 0 && self.errors >= errors_max && !matches!(self.phase, Phase::Closed) {
                self.close_with("4.7.0", "Too many errors");
            }
            if let Some(request) = self.request.take() {
                return Step::Request(request);
            }
            match &mut self.phase {
                Phase::Closed => return Step::Close,
                Phase::TlsHandshake => return Step::StartTls,
                Phase::Waiting(_) => {
                    debug_assert!(false, "poll() while a request is outstanding; call resolve() first");
                    return Step::NeedInput;
                }
                Phase::Data(decoder) => {
                    let (consumed, ended) = decoder.decode(&self.input[self.input_pos..]);
                    self.input_pos += consumed;
                    if !ended {
                        return self.need_input();
                    }
                    if let Phase::Data(decoder) = mem::replace(&mut self.phase, Phase::Command) {
                        self.message_complete(decoder);
                    }
                }
                Phase::Chunk { .. } => {
                    if !self.consume_chunk() {
                        return self.need_input();
                    }
                }
                Phase::Command | Phase::AuthContinuation(_)
                    if self.output.len() >= OUTPUT_BYTES_HIGH_WATER && self.input_pos < self.input.len() =>
                {
                    return Step::Flush;
                }
                Phase::Command | Phase::AuthContinuation(_) => match self.next_line() {
                    Line::Incomplete => return self.need_input(),
                    Line::TooLong => self.line_too_long(),
                    Line::Complete(range) => {
                        let line = self.input[range].to_vec();
                        self.handle_line(&line);
                    }
                },
            }
        }
    }

    /// Answers the request the last [`poll`](Self::poll) returned. Each [`Request`] takes the
    /// [`Response`] variant of its kind; a mismatched answer is a driver bug (it asserts in debug
    /// builds and is taken as a temporary failure otherwise).
    fn resolve(&mut self, response: Response) {
        let pending = match mem::replace(&mut self.phase, Phase::Command) {
            Phase::Waiting(pending) => pending,
            other => {
                debug_assert!(matches!(other, Phase::Closed), "resolve() without an outstanding request");
                self.phase = other;
                return;
            }
        };
        match (pending, response) {
            (Pending::Auth, Response::Auth(verdict)) => self.auth_resolved(verdict),
            (Pending::Sender(opened), Response::Sender(owned)) => self.sender_resolved(opened, owned),
            (Pending::Recipient(path), Response::Recipient(verdict)) => self.recipient_resolved(&path, verdict),
            (Pending::Delivery, Response::Delivery(verdict)) => self.delivery_resolved(verdict),
            (_, response) => {
                debug_assert!(false, "resolve() with a response of the wrong kind: {response:?}");
                self.reply(451, "4.3.0", "Temporary internal error, try again later");
            }
        }
    }

    /// The TLS handshake after STARTTLS succeeded: the session starts over as RFC 3207 §4.2 asks
    /// (no HELO/EHLO yet, not authenticated, no transaction), now encrypted. No new greeting is
    /// sent; the client begins with EHLO.
    fn tls_established(&mut self) {
        if !matches!(self.phase, Phase::TlsHandshake) {
            debug_assert!(matches!(self.phase, Phase::Closed), "tls_established() without STARTTLS");
            return;
        }
        self.tls = true;
        self.helo = None;
        self.account = None;
        self.transaction = None;
        self.input.clear();
        self.input_pos = 0;
        self.discarding_line = false;
        self.phase = Phase::Command;
    }

    /// The driver's idle or data timer fired: queues `421 4.4.2 <host> Timeout, closing connection`
    /// (RFC 5321 §4.5.3.2); the next [`poll`](Self::poll) returns [`Step::Close`].
    fn timeout(&mut self) {
        self.close_with("4.4.2", "Timeout, closing connection");
    }

    /// The server is stopping: queues `421 4.3.2 <host> Service shutting down`; the next
    /// [`poll`](Self::poll) returns [`Step::Close`]. Best called when [`is_idle`](Self::is_idle).
    fn shutdown(&mut self) {
        self.close_with("4.3.2", "Service shutting down");
    }

    /// The bytes to send to the client (possibly none).
    fn take_output(&mut self) -> Vec<u8> {
        mem::take(&mut self.output)
    }

    /// Waiting for a command with no partial line buffered and no DATA, BDAT, AUTH exchange or
    /// request in progress: a [`shutdown`](Self::shutdown) now loses nothing.
    fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Command)
            && self.request.is_none()
            && self.input_pos == self.input.len()
            && !self.discarding_line
    }

    /// Receiving DATA or BDAT content (the driver uses its data timeout, RFC 5321 §4.5.3.2.5).
    fn in_content(&self) -> bool {
        matches!(self.phase, Phase::Data(_) | Phase::Chunk { .. })
    }

    /// The transcript lines since the last call: `C: <command>` and `S: <reply line>`, with
    /// credentials replaced by `<redacted>` and message content summarised as
    /// `C: <message data, N octets>`. Empty unless `config.transcript`.
    fn take_transcript(&mut self) -> Vec<String> {
        mem::take(&mut self.transcript)
    }
}

/// The command verbs this server knows.
const VERBS: [&str; 14] = [
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "AUTH", "STARTTLS", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
];

/// Whether a command line is a lone base64 token other than a verb, as an AUTH response is.
fn looks_like_credentials(line: &str) -> bool {
    !line.is_empty()
        && line.bytes().all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
        && !VERBS.iter().any(|verb| line.eq_ignore_ascii_case(verb))
}

/// `text` without `prefix`, compared without regard to ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// How a path is named in replies: `<local@domain>`, `<postmaster>` or `<>`.
fn path_text(path: &Path) -> String {
    match path {
        Path::Null => "<>".to_string(),
        Path::Postmaster => "<postmaster>".to_string(),
        Path::Mailbox(address) => format!("<{address}>"),
    }
}
