//! The POP3 session state machine: client bytes and driver events in, reply bytes and
//! [`Step`]s out (RFC 1939 §3: AUTHORIZATION, TRANSACTION, UPDATE).

use super::cmd::{Command, Keyword};
use super::config::{COMMAND_LINE_BYTES_MIN, SessionConfig};
use super::effect::{Request, Response, Step};
use super::line::{Line, LineReader};
use super::maildrop::Maildrop;
use super::wire::Wire;
use tidings_core::{OUTPUT_BYTES_HIGH_WATER, SessionCore};

/// The protocol state of a session (RFC 1939 §3). UPDATE is not a state here: it is the
/// [`Request::Update`] that `QUIT` issues, after which the session closes.
#[derive(Debug)]
pub(crate) enum State {
    /// Before login.
    Authorization {
        /// The name of a `USER` just accepted; only the very next command may be its `PASS`
        /// (RFC 1939 §7).
        user: Option<String>,
        /// `AUTH PLAIN` sent its continuation and the next line is the client's response
        /// (RFC 5034 §4).
        sasl_response_expected: bool,
    },
    /// Logged in with the maildrop locked.
    Transaction(Maildrop),
}

/// What the session waits on from its driver; while it waits it reads no command.
#[derive(Debug)]
pub(crate) enum Blocked {
    /// The answer to a [`Request`], for [`Session::resolve`].
    Request(Outstanding),
    /// The TLS handshake after `STLS`, for [`Session::tls_established`].
    Tls,
}

/// A [`Request`] handed to the driver, with what the session needs to answer it.
#[derive(Debug)]
pub(crate) enum Outstanding {
    /// [`Request::Authenticate`] for this user name.
    Authenticate { user: String },
    /// [`Request::Retrieve`] for message `number`: `RETR` (`lines: None`) or `TOP`.
    Retrieve { number: u32, lines: Option<u32> },
    /// [`Request::Update`].
    Update,
}

/// One POP3 connection's protocol state, without I/O.
///
/// The driver loops on [`poll`](Session::poll) and does what each [`Step`] says: it writes
/// [`take_output`](Session::take_output) and reads input on [`Step::NeedInput`], carries out
/// [`Step::Request`]s and hands back their [`Response`] with [`resolve`](Session::resolve), does
/// the TLS handshake on [`Step::StartTls`], and closes on [`Step::Close`]. Commands the client
/// pipelines (RFC 2449 §6.6) are answered in order; a request blocks the commands after it until
/// it is resolved.
///
/// Nothing a client sends can make a session panic or hold more than one command line (plus the
/// octets of the last `feed`) in memory.
#[derive(Debug)]
pub struct Session {
    pub(in crate::proto) config: SessionConfig,
    pub(in crate::proto) reader: LineReader,
    pub(in crate::proto) wire: Wire,
    pub(in crate::proto) state: State,
    /// The connection is TLS (from the start, or since `STLS`).
    pub(in crate::proto) tls: bool,
    /// The user name of the login, once logged in (for logs).
    pub(in crate::proto) account: Option<String>,
    /// A `Request` or `StartTls` that the next `poll` hands to the driver.
    pub(in crate::proto) step: Option<Step>,
    /// What the session waits on; `None` while it reads commands.
    pub(in crate::proto) blocked: Option<Blocked>,
    /// `timeout` or `shutdown` came while a request was outstanding: this `-ERR` text ends the
    /// session once the request is resolved, so an operation in flight finishes and is answered.
    pub(in crate::proto) close_after_request: Option<&'static str>,
}

impl Session {
    /// A new session; its greeting `+OK <hostname> POP3 server ready` is queued (RFC 1939 §4).
    pub fn new(config: SessionConfig) -> Session {
        debug_assert!(!config.hostname.contains(['\r', '\n']), "host name must be one line");
        let line_bytes_max = config.limits.command_line_bytes_max.max(COMMAND_LINE_BYTES_MIN);
        let mut wire = Wire::new(config.transcript, config.limits.errors_max);
        wire.ok(format_args!("{} POP3 server ready", config.hostname));
        Session {
            reader: LineReader::new(line_bytes_max),
            wire,
            state: State::Authorization { user: None, sasl_response_expected: false },
            tls: config.tls,
            account: None,
            step: None,
            blocked: None,
            close_after_request: None,
            config,
        }
    }

    /// The user name as given to [`Request::Authenticate`], once logged in; for logs.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    fn end(&mut self, text: &'static str) {
        if self.wire.closing {
            return;
        }
        match self.blocked {
            Some(Blocked::Tls) => {
                // Mid-handshake a plaintext reply would only be noise to the client.
                self.reader.clear();
                self.wire.closing = true;
            }
            Some(_) => self.close_after_request = Some(text),
            None => {
                self.reader.clear();
                self.wire.fatal(format_args!("{text}"));
            }
        }
    }

    fn line_too_long(&mut self) {
        self.wire.client_note("line too long, discarded");
        // The line was a command (or a SASL response), just not one we read: what needed to be
        // next is over, as after any other command.
        if let State::Authorization { user, sasl_response_expected } = &mut self.state {
            *user = None;
            *sasl_response_expected = false;
        }
        self.wire.err(format_args!("Line too long"));
    }

    fn command_line(&mut self, line: &[u8]) {
        let pending_user = match &mut self.state {
            State::Authorization { sasl_response_expected: sasl @ true, .. } => {
                *sasl = false;
                self.wire.client_redacted(b"");
                self.sasl_response(line);
                return;
            }
            State::Authorization { user, .. } => user.take(),
            State::Transaction(_) => None,
        };
        let command = Command::parse(line);
        self.record(line, &command);
        let arguments = command.arguments();
        let logged_in = matches!(self.state, State::Transaction(_));
        match command.keyword {
            Keyword::Capa => self.capa(arguments),
            Keyword::Quit => self.quit(arguments),
            Keyword::User | Keyword::Pass | Keyword::Auth | Keyword::Stls | Keyword::Apop if logged_in => {
                self.wire.err(format_args!(
                    "Already logged in: {} is valid only before authentication",
                    command.keyword.name()
                ));
            }
            Keyword::User => self.user(arguments),
            Keyword::Pass => self.pass(pending_user, command.rest),
            Keyword::Auth => self.auth(arguments),
            Keyword::Stls => self.stls(arguments),
            Keyword::Apop => {
                self.wire.err(format_args!("APOP is not supported; use USER and PASS, or AUTH PLAIN"));
            }
            Keyword::Stat
            | Keyword::List
            | Keyword::Retr
            | Keyword::Dele
            | Keyword::Noop
            | Keyword::Rset
            | Keyword::Top
            | Keyword::Uidl
                if !logged_in =>
            {
                self.wire
                    .err(format_args!("Not logged in: {} is valid only after authentication", command.keyword.name()));
            }
            Keyword::Stat => self.stat(arguments),
            Keyword::List => self.list(arguments),
            Keyword::Retr => self.retr(arguments),
            Keyword::Dele => self.dele(arguments),
            Keyword::Noop => self.noop(arguments),
            Keyword::Rset => self.rset(arguments),
            Keyword::Top => self.top(arguments),
            Keyword::Uidl => self.uidl(arguments),
            Keyword::Empty => self.wire.err(format_args!("Empty command line")),
            Keyword::Unknown => self.wire.err(format_args!("Unknown command")),
        }
    }

    /// Adds the client's line to the transcript, secrets redacted whatever the state: the
    /// password of `PASS`, the initial response of `AUTH`.
    fn record(&mut self, line: &[u8], command: &Command<'_>) {
        match (command.keyword, command.rest) {
            (Keyword::Pass, Some(_)) => self.wire.client_redacted(command.keyword_text),
            (Keyword::Auth, Some(rest)) => {
                let rest = rest.trim_ascii_start();
                match rest.iter().position(|&b| b == b' ' || b == b'\t') {
                    Some(space) if !rest[space..].trim_ascii().is_empty() => {
                        let shown_len = line.len() - rest.len() + space;
                        self.wire.client_redacted(line[..shown_len].trim_ascii_start());
                    }
                    _ => self.wire.client(line),
                }
            }
            _ => self.wire.client(line),
        }
    }

    /// Sets what the next `poll` hands to the driver and what the session then waits on.
    pub(in crate::proto) fn request(&mut self, request: Request, outstanding: Outstanding) {
        debug_assert!(self.step.is_none() && self.blocked.is_none(), "one request at a time");
        self.step = Some(Step::Request(request));
        self.blocked = Some(Blocked::Request(outstanding));
    }
}

impl SessionCore for Session {
    type Request = Request;
    type Response = Response;
    type Notice = std::convert::Infallible;

    fn notice(&mut self, notice: std::convert::Infallible) {
        match notice {}
    }

    /// Client input, in any chunks; a line may span calls. Ignored once the session is closing,
    /// and while a `STLS` handshake is pending (RFC 2595 §4: plaintext sent after `STLS` must
    /// not be taken as sent under TLS).
    fn feed(&mut self, input: &[u8]) {
        if self.wire.closing || matches!(self.blocked, Some(Blocked::Tls)) {
            return;
        }
        self.reader.push(input);
    }

    /// The client closed its side. The next `poll` says [`Step::Close`]; buffered commands are
    /// dropped and no deletion is applied (RFC 1939 §6: only `QUIT` enters UPDATE).
    fn eof(&mut self) {
        self.reader.clear();
        self.step = None;
        self.wire.closing = true;
    }

    /// What the driver must do next. Runs every complete buffered command first. While a
    /// [`Step::Request`] awaits its [`resolve`](Session::resolve), or [`Step::StartTls`] its
    /// [`tls_established`](Session::tls_established), says [`Step::NeedInput`].
    fn poll(&mut self) -> Step {
        loop {
            if let Some(step) = self.step.take() {
                return step;
            }
            if self.wire.closing {
                return Step::Close;
            }
            if self.blocked.is_some() {
                return Step::NeedInput;
            }
            if self.wire.pending_output_bytes() >= OUTPUT_BYTES_HIGH_WATER && !self.reader.is_empty() {
                return Step::Flush;
            }
            match self.reader.next_line() {
                None => return Step::NeedInput,
                Some(Line::TooLong) => self.line_too_long(),
                Some(Line::Complete(line)) => self.command_line(&line),
            }
        }
    }

    /// The outcome of the [`Request`] that the last [`Step::Request`] asked for.
    ///
    /// A response that does not fit the request (a driver bug) is taken as
    /// [`Response::TempFail`]; one with no request outstanding is ignored. Both are
    /// `debug_assert`ed, except after `eof`, when an answer to a request may still come.
    fn resolve(&mut self, response: Response) {
        let outstanding = match self.blocked.take() {
            Some(Blocked::Request(outstanding)) => outstanding,
            other => {
                debug_assert!(self.wire.closing, "resolve({response:?}) with no request outstanding");
                self.blocked = other;
                return;
            }
        };
        if self.wire.closing {
            return;
        }
        match outstanding {
            Outstanding::Authenticate { user } => self.authenticated(user, response),
            Outstanding::Retrieve { number, lines } => self.retrieved(number, lines, response),
            Outstanding::Update => self.updated(response),
        }
        if let Some(text) = self.close_after_request.take()
            && !self.wire.closing
        {
            self.wire.fatal(format_args!("{text}"));
        }
    }

    /// The TLS handshake after [`Step::StartTls`] succeeded: the session goes on in the
    /// AUTHORIZATION state, under TLS (RFC 2595 §4), and `CAPA` no longer lists `STLS`. A failed
    /// handshake needs no call: the driver just closes.
    fn tls_established(&mut self) {
        debug_assert!(matches!(self.blocked, Some(Blocked::Tls)) || self.wire.closing, "tls_established without STLS");
        if matches!(self.blocked, Some(Blocked::Tls)) {
            self.blocked = None;
            self.tls = true;
            self.state = State::Authorization { user: None, sasl_response_expected: false };
        }
    }

    /// The client was idle too long (RFC 1939 §3 autologout timer, at least 10 minutes):
    /// `-ERR [SYS/TEMP] Autologout; idle for too long`, then [`Step::Close`]. No deletion is
    /// applied. A request still outstanding is answered first.
    fn timeout(&mut self) {
        self.end("[SYS/TEMP] Autologout; idle for too long");
    }

    /// The server is shutting down: `-ERR Server shutting down`, then [`Step::Close`]. No
    /// deletion is applied; a request still outstanding (e.g. an UPDATE) is finished and
    /// answered first.
    fn shutdown(&mut self) {
        self.end("Server shutting down");
    }

    /// Octets to send to the client, in order; empties the session's output buffer.
    fn take_output(&mut self) -> Vec<u8> {
        self.wire.take_output()
    }

    /// Waiting for a command: nothing outstanding, no partial line buffered, no SASL exchange
    /// in progress. A driver shutting down may end an idle session at once.
    fn is_idle(&self) -> bool {
        let sasl = matches!(self.state, State::Authorization { sasl_response_expected: true, .. });
        !self.wire.closing && self.blocked.is_none() && self.step.is_none() && self.reader.is_empty() && !sasl
    }

    /// The transcript lines recorded since the last call (`C: ...` from the client, `S: ...`
    /// from the server); empty unless [`SessionConfig::transcript`] is on. Passwords and SASL
    /// responses are shown as `<redacted>`, message contents as `<message, N octets>`.
    fn take_transcript(&mut self) -> Vec<String> {
        self.wire.take_transcript()
    }
}
