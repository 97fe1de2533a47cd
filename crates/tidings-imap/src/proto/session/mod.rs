//! One IMAP connection as a state machine: handing client input to the `imap-next` server one
//! message at a time, the command loop, requests and their answers. Each command family lives
//! in its own file beside this one.

mod any;
mod auth;
mod fetch;
mod mailboxes;
mod render;
mod search;
mod selected;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::Greeting;
use imap_next::server::{Error as ServerError, Event, Options, Server};
use imap_next::{Interrupt, Io, State as _};
use tidings_core::{OUTPUT_BYTES_HIGH_WATER, SessionCore};

use super::extended::{self, Refusal, SearchReturn};
use super::framer::{self, Framer, Piece};
use super::mailbox::Selected;
use super::wire::{Status, Wire};
use super::{Notice, Request, Response, SessionConfig, Step};

pub(crate) use any::capabilities;

/// Octets of a client message past which the `imap-next` server is replaced after it, so that
/// an idle session does not keep a large message's buffer.
const SERVER_BUFFER_BYTES_KEPT_MAX: u64 = 64 * 1024;

/// The protocol state (RFC 9051 §3). Logout is not a state here: the session is closing.
#[derive(Debug)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Selected),
}

/// How the session reads its input now.
#[derive(Debug)]
enum Mode {
    /// Commands.
    Command,
    /// AUTHENTICATE sent its continuation: the next line is the client's SASL response
    /// (RFC 9051 §6.2.2).
    Authenticate { tag: String },
    /// IDLE accepted: waiting for `DONE` (RFC 9051 §6.3.13), reporting changes meanwhile.
    Idle { tag: String },
    /// STARTTLS answered: waiting for the handshake.
    Tls,
}

/// A request handed to the driver, with what the session needs to act on its answer.
#[derive(Debug)]
pub(crate) enum Pending {
    Login(auth::Login),
    Select(mailboxes::SelectJob),
    Status(mailboxes::StatusJob),
    List(mailboxes::ListJob),
    ListStatus(mailboxes::ListStatusJob),
    Done(mailboxes::DoneJob),
    Append(mailboxes::AppendJob),
    Sync(Then),
    Store(selected::StoreJob),
    Copy(selected::CopyJob),
    Expunge(selected::ExpungeJob),
    Fetch(fetch::FetchJob),
    Search(search::SearchJob),
}

/// What to do once a sync of the selected mailbox is in.
#[derive(Debug)]
pub(crate) enum Then {
    /// Run this command.
    Command(Box<Command<'static>>),
    /// Report the changes to the idling client.
    Idle,
}

/// A command that stopped to let its output be sent, to be continued at the next poll.
#[derive(Debug)]
pub(crate) enum Resume {
    Fetch(fetch::FetchJob),
}

/// What the next message of input turned out to be.
enum Input {
    Event(Event),
    Error(ServerError),
    /// A literal the session cannot take was announced where it cannot be refused.
    TooLarge(u64),
}

/// One IMAP session (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1), from greeting to close,
/// without I/O.
///
/// The driver loop is that of every [`SessionCore`]: [`poll`](Session::poll), then write the
/// output and read on [`Step::NeedInput`], answer a [`Step::Request`] with
/// [`resolve`](Session::resolve), write the output and poll again on [`Step::Flush`], hand over
/// TLS on [`Step::StartTls`], close on [`Step::Close`]. News from other sessions arrives as a
/// [`Notice`] through [`notice`](Session::notice).
///
/// Framing, literals and their continuation requests, and the AUTHENTICATE and IDLE exchanges
/// are `imap-next`'s; parsing is `imap-codec`'s. Commands are run one at a time in the order
/// received (pipelining, RFC 9051 §5.5); a command that needs the store issues one request at a
/// time. Memory stays bounded: one command (at most
/// [`Limits::command_bytes_max`](super::Limits::command_bytes_max)) plus the input of the last
/// feed, and for FETCH and SEARCH one batch of messages plus the output past
/// [`OUTPUT_BYTES_HIGH_WATER`], at which point the session asks for [`Step::Flush`].
pub struct Session {
    pub(crate) config: SessionConfig,
    server: Server,
    framer: Framer,
    /// Client octets: `input[input_pos..]` are not handed to the server yet.
    input: Vec<u8>,
    input_pos: usize,
    pub(crate) wire: Wire,
    pub(crate) state: State,
    mode: Mode,
    /// The connection is TLS (from the start, or since STARTTLS).
    pub(crate) tls: bool,
    /// IMAP4rev2 is enabled (RFC 9051 §6.3.1): ESEARCH answers, no RECENT, UTF-8 names.
    pub(crate) rev2: bool,
    /// UTF8=ACCEPT is enabled (RFC 6855), or IMAP4rev2: mailbox names are UTF-8.
    pub(crate) utf8: bool,
    /// The account, once authenticated (for logs).
    pub(crate) account: Option<String>,
    /// A `Request` or `StartTls` that the next `poll` hands to the driver.
    step: Option<Step>,
    /// What the outstanding request is for; `None` when none is.
    pending: Option<Pending>,
    /// A command to continue at the next poll.
    resume: Option<Resume>,
    /// A notice came: the selected mailbox must be synced before the next command (or at once
    /// in IDLE).
    pub(crate) changed: bool,
    /// `timeout` or `shutdown` came while a request was out: this BYE text ends the session once
    /// it is answered.
    close_after: Option<&'static str>,
    /// The RETURN options of the SEARCH being run (read from the raw command).
    search_return: Option<SearchReturn>,
}

impl Session {
    /// A new session; its greeting `* OK [CAPABILITY ...] <hostname> IMAP4rev2 server ready` is
    /// queued (RFC 9051 §7.1.1).
    pub fn new(config: SessionConfig) -> Session {
        debug_assert!(!config.hostname.contains(['\r', '\n']), "host name must be one line");
        let mut limits = config.limits.clone();
        limits.command_bytes_max = limits.command_bytes_max.max(limits.literal_bytes_max.saturating_add(1024));
        let wire = Wire::new(config.transcript, config.limits.errors_max);
        let mut session = Session {
            server: new_server(&limits),
            framer: Framer::new(limits.literal_bytes_max, config.transcript),
            input: Vec::new(),
            input_pos: 0,
            wire,
            state: State::NotAuthenticated,
            mode: Mode::Command,
            tls: config.tls,
            rev2: false,
            utf8: false,
            account: None,
            step: None,
            pending: None,
            resume: None,
            changed: false,
            close_after: None,
            search_return: None,
            config: SessionConfig { limits, ..config },
        };
        let capabilities = capabilities(&session);
        let host = session.config.hostname.clone();
        session.wire.untagged(format_args!("OK [CAPABILITY {capabilities}] {host} IMAP4rev2 server ready"));
        session
    }

    /// The account this session authenticated as, once it has; for logs.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// Mailbox names are UTF-8 on the wire (IMAP4rev2 or UTF8=ACCEPT).
    pub(crate) fn utf8_names(&self) -> bool {
        self.utf8 || self.rev2
    }

    // ----- input -----

    /// The next event of the server, handing it input one message at a time; `None` when all
    /// input is taken and no message is complete.
    fn next_input(&mut self) -> Option<Input> {
        loop {
            match self.server.next() {
                Ok(Event::GreetingSent { .. } | Event::ResponseSent { .. }) => {}
                Ok(event) => return Some(Input::Event(event)),
                Err(Interrupt::Io(Io::Output(bytes))) => self.wire.raw(&bytes),
                Err(Interrupt::Error(error)) => return Some(Input::Error(error)),
                Err(Interrupt::Io(Io::NeedMoreInput)) => {
                    let available = &self.input[self.input_pos..];
                    if available.is_empty() {
                        return None;
                    }
                    let mode = match self.mode {
                        Mode::Command => framer::Mode::Command,
                        _ => framer::Mode::Line,
                    };
                    let length = match self.framer.advance(available, mode) {
                        Piece::Complete(length) | Piece::Partial(length) => length,
                        Piece::TooLarge { length } => return Some(Input::TooLarge(length)),
                    };
                    self.server.enqueue_input(&available[..length]);
                    self.input_pos += length;
                }
            }
        }
    }

    /// Records the client message just received (redacted by the framer; every line of an
    /// AUTHENTICATE exchange in full).
    fn record_client(&mut self) {
        let Some(summary) = self.framer.take_summary() else {
            return;
        };
        if matches!(self.mode, Mode::Authenticate { .. }) {
            self.wire.client("<redacted>");
        } else {
            self.wire.client(&summary);
        }
    }

    fn handle_input(&mut self, input: Input) {
        match input {
            Input::TooLarge(length) => {
                self.wire.client(&format!("<literal of {length} octets announced>"));
                let max = self.config.limits.literal_bytes_max;
                self.wire.bye(&format!("[TOOBIG] Literal of {length} octets is over the limit of {max}"));
                self.clear_input();
            }
            Input::Event(event) => {
                self.record_client();
                match event {
                    Event::CommandReceived { command } => self.command(command, false),
                    Event::CommandAuthenticateReceived { command_authenticate } => {
                        self.authenticate(command_authenticate);
                    }
                    Event::AuthenticateDataReceived { authenticate_data } => {
                        self.authenticate_data(authenticate_data);
                    }
                    Event::IdleCommandReceived { tag } => self.idle(tag),
                    Event::IdleDoneReceived => self.idle_done(),
                    Event::GreetingSent { .. } | Event::ResponseSent { .. } => {}
                }
            }
            Input::Error(error) => {
                self.record_client();
                self.input_error(error);
            }
        }
        // imap-next keeps the buffer of the last message, at its largest size, until the next
        // one arrives; after a large one (an APPEND) a fresh server lets that memory go. Only
        // between commands: AUTHENTICATE and IDLE keep state in the server.
        if self.framer.last_message_bytes() > SERVER_BUFFER_BYTES_KEPT_MAX && matches!(self.mode, Mode::Command) {
            self.reset_server();
        }
    }

    fn input_error(&mut self, error: ServerError) {
        match (&self.mode, error) {
            (Mode::Authenticate { .. }, _) => self.authenticate_malformed(),
            (Mode::Idle { .. }, _) => self.idle_malformed(),
            (_, ServerError::LiteralTooLong { .. }) => {
                // The server queued its tagged BAD (and dropped the command); send it before
                // anything else, then count it.
                self.pump_server_output(true);
                self.wire.count_external_error();
            }
            (_, ServerError::CommandTooLong { discarded_bytes }) => {
                let tag = tag_of(discarded_bytes.declassify());
                self.reply_bad(tag.as_deref(), "Command too long");
            }
            (
                _,
                ServerError::MalformedMessage { discarded_bytes } | ServerError::ExpectedCrlfGotLf { discarded_bytes },
            ) => {
                self.malformed(discarded_bytes.declassify());
            }
        }
    }

    /// A command `imap-codec` could not parse: one of the extended forms read here, or a syntax
    /// error.
    fn malformed(&mut self, raw: &[u8]) {
        if self.extended_command(raw).is_some() {
            return;
        }
        let tag = tag_of(raw);
        self.reply_bad(tag.as_deref(), "Syntax error or unknown command");
    }

    /// Reads the extended forms `imap-codec` does not parse (SEARCH RETURN, APPEND's UTF8
    /// wrapper, LIST-EXTENDED) and runs them; `None` when `raw` is none of them.
    fn extended_command(&mut self, raw: &[u8]) -> Option<()> {
        let tag = tag_of(raw);
        match extended::search_with_return(raw) {
            Ok(search) => {
                let command = match CommandCodec::default().decode(&search.rest) {
                    Ok(([], command)) => command.into_static(),
                    _ => return None,
                };
                if !matches!(command.body, CommandBody::Search { .. }) {
                    return None;
                }
                self.search_return = Some(search.options);
                self.command(command, false);
                return Some(());
            }
            Err(Refusal::Bad(text)) => {
                self.reply_bad(tag.as_deref(), text);
                return Some(());
            }
            Err(Refusal::NotThis) => {}
        }
        if let Ok(rebuilt) = extended::append_utf8(raw) {
            let command = match CommandCodec::default().decode(&rebuilt) {
                Ok(([], command)) => command.into_static(),
                _ => return None,
            };
            if !matches!(command.body, CommandBody::Append { .. }) {
                return None;
            }
            self.command(command, false);
            return Some(());
        }
        let tag = tag?;
        match extended::list_extended(raw) {
            Ok(list) => {
                if matches!(self.state, State::NotAuthenticated) {
                    self.reply_bad(Some(&tag), "Not authenticated: log in first");
                } else {
                    self.list(&tag, list);
                }
                Some(())
            }
            Err(Refusal::Bad(text)) => {
                self.reply_bad(Some(&tag), text);
                Some(())
            }
            Err(Refusal::NotThis) => None,
        }
    }

    /// `tag BAD text`, or `* BAD text` when the input had no valid tag.
    pub(crate) fn reply_bad(&mut self, tag: Option<&str>, text: &str) {
        match tag {
            Some(tag) => self.wire.tagged(tag, Status::Bad, None, text),
            None => self.wire.untagged_bad(text),
        }
    }

    /// Writes what the server machinery queued (a literal's refusal), or with `keep` false
    /// drops it (the replies to AUTHENTICATE and IDLE that the session writes itself).
    fn pump_server_output(&mut self, keep: bool) {
        loop {
            match self.server.next() {
                Ok(Event::GreetingSent { .. } | Event::ResponseSent { .. }) => {}
                Err(Interrupt::Io(Io::Output(bytes))) => {
                    if keep {
                        self.wire.raw(&bytes);
                    }
                }
                Err(Interrupt::Io(Io::NeedMoreInput)) => return,
                other => {
                    // Only one message is ever handed over before its event is taken, so there
                    // is no other event to find here.
                    debug_assert!(false, "unexpected server event while draining output: {other:?}");
                    return;
                }
            }
        }
    }

    /// Starts a fresh server, dropping whatever it held (STARTTLS, the end of a broken IDLE).
    fn reset_server(&mut self) {
        self.server = new_server(&self.config.limits);
        self.pump_server_output(false);
        self.framer = Framer::new(self.config.limits.literal_bytes_max, self.config.transcript);
    }

    fn clear_input(&mut self) {
        self.input = Vec::new();
        self.input_pos = 0;
    }

    /// [`Step::NeedInput`], first giving back the input buffer when all of it was handed over.
    fn need_input(&mut self) -> Step {
        if self.input_pos == self.input.len() {
            self.clear_input();
        }
        Step::NeedInput
    }

    // ----- commands -----

    /// Runs one command; `synced` says the selected mailbox was just synced for it.
    pub(crate) fn command(&mut self, command: Command<'static>, synced: bool) {
        let tag = command.tag.as_ref().to_owned();
        let selected = matches!(self.state, State::Selected(_));
        // The client learns of others' changes before a command acts on the mailbox; NOOP and
        // CHECK exist to ask for them (RFC 9051 §6.1.2, §6.4.1).
        let polls = matches!(command.body, CommandBody::Noop | CommandBody::Check);
        // Commands that do not look at the selected mailbox, or leave it, need no sync.
        let stateless = matches!(
            command.body,
            CommandBody::Capability
                | CommandBody::Logout
                | CommandBody::Select { .. }
                | CommandBody::Examine { .. }
                | CommandBody::Unselect
        );
        if selected && !synced && !stateless && (self.changed || polls) {
            self.sync(Then::Command(Box::new(command)));
            return;
        }
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        let search_return = self.search_return.take();
        let body = command.body;
        match body {
            CommandBody::Capability => self.capability(&tag),
            CommandBody::Noop => self.noop(&tag),
            CommandBody::Logout => self.logout(&tag),
            #[allow(unused_variables)]
            CommandBody::Id { parameters } => self.id(&tag),
            CommandBody::StartTLS => self.starttls(&tag),
            CommandBody::Login { username, password } => self.login(&tag, username, password),
            CommandBody::Authenticate { .. } | CommandBody::Idle => {
                // imap-next reports these as events of their own.
                self.reply_bad(Some(&tag), "Unexpected command");
            }
            _ if !authenticated => self.reply_bad(Some(&tag), "Not authenticated: log in first"),
            CommandBody::Enable { capabilities } => self.enable(&tag, capabilities.as_ref()),
            CommandBody::Namespace => self.namespace(&tag),
            CommandBody::Select { mailbox, .. } => self.select(&tag, &mailbox, false),
            CommandBody::Examine { mailbox, .. } => self.select(&tag, &mailbox, true),
            CommandBody::Create { mailbox } => self.create(&tag, &mailbox),
            CommandBody::Delete { mailbox } => self.delete(&tag, &mailbox),
            CommandBody::Rename { from, to } => self.rename(&tag, &from, &to),
            CommandBody::Subscribe { mailbox } => self.subscribe(&tag, &mailbox, true),
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&tag, &mailbox, false),
            CommandBody::List { reference, mailbox_wildcard } => {
                self.list_plain(&tag, &reference, &mailbox_wildcard, false)
            }
            CommandBody::Lsub { reference, mailbox_wildcard } => {
                self.list_plain(&tag, &reference, &mailbox_wildcard, true)
            }
            CommandBody::Status { mailbox, item_names } => self.status(&tag, &mailbox, &item_names),
            CommandBody::Append { mailbox, flags, date, message } => self.append(&tag, &mailbox, flags, date, message),
            _ if !selected => self.reply_bad(Some(&tag), "No mailbox selected"),
            CommandBody::Check => self.check(&tag),
            CommandBody::Close => self.close(&tag),
            CommandBody::Unselect => self.unselect(&tag),
            CommandBody::Expunge => self.expunge(&tag, None),
            CommandBody::ExpungeUid { sequence_set } => self.expunge(&tag, Some(sequence_set)),
            CommandBody::Search { charset, criteria, uid } => {
                self.search(&tag, charset.as_ref(), criteria.into_inner(), uid, search_return)
            }
            CommandBody::Fetch { sequence_set, macro_or_item_names, uid, modifiers } => {
                if modifiers.is_empty() {
                    self.fetch(&tag, &sequence_set, macro_or_item_names, uid);
                } else {
                    self.reply_bad(Some(&tag), "FETCH modifiers are not supported");
                }
            }
            CommandBody::Store { sequence_set, kind, response, flags, uid, modifiers } => {
                if modifiers.is_empty() {
                    self.store(&tag, &sequence_set, kind, response, flags, uid);
                } else {
                    self.reply_bad(Some(&tag), "STORE modifiers are not supported");
                }
            }
            CommandBody::Copy { sequence_set, mailbox, uid } => self.copy(&tag, &sequence_set, &mailbox, uid, false),
            CommandBody::Move { sequence_set, mailbox, uid } => self.copy(&tag, &sequence_set, &mailbox, uid, true),
            _ => self.reply_bad(Some(&tag), "Command not supported"),
        }
    }

    /// Asks for what changed in the selected mailbox, then does `then`.
    pub(crate) fn sync(&mut self, then: Then) {
        let State::Selected(selected) = &self.state else {
            debug_assert!(false, "sync without a selected mailbox");
            return;
        };
        self.changed = false;
        let request = Request::Sync { mailbox: selected.name.clone(), since_modseq: selected.highest_modseq };
        self.request(request, Pending::Sync(then));
    }

    /// Hands `request` to the driver at the next `poll` and waits for its answer.
    pub(crate) fn request(&mut self, request: Request, pending: Pending) {
        debug_assert!(self.step.is_none() && self.pending.is_none(), "one request at a time");
        self.step = Some(Step::Request(request));
        self.pending = Some(pending);
    }

    fn run_resume(&mut self, resume: Resume) {
        match resume {
            Resume::Fetch(job) => self.fetch_continue(job),
        }
    }

    /// Ends the session with `* BYE text`, unless a request is out: then after its answer.
    fn end(&mut self, text: &'static str) {
        if self.wire.closing {
            return;
        }
        if self.pending.is_some() {
            self.close_after = Some(text);
            return;
        }
        if matches!(self.mode, Mode::Tls) {
            // Mid-handshake a plaintext reply would only be noise.
            self.wire.closing = true;
        } else {
            self.wire.bye(text);
        }
        self.resume = None;
        self.clear_input();
    }
}

impl SessionCore for Session {
    type Request = Request;
    type Response = Response;
    type Notice = Notice;

    /// Client input, in any chunks. Ignored once the session is closing, and while a STARTTLS
    /// handshake is pending (RFC 9051 §6.2.1: nothing sent before TLS may be acted on after).
    fn feed(&mut self, input: &[u8]) {
        if self.wire.closing || matches!(self.mode, Mode::Tls) {
            return;
        }
        if self.input_pos > 0 {
            self.input.drain(..self.input_pos);
            self.input_pos = 0;
        }
        self.input.extend_from_slice(input);
    }

    /// The client closed its side: the next `poll` says [`Step::Close`]; buffered commands are
    /// dropped.
    fn eof(&mut self) {
        self.clear_input();
        self.step = None;
        self.resume = None;
        self.wire.closing = true;
    }

    /// What the driver must do next. Runs every complete buffered command, in order.
    fn poll(&mut self) -> Step {
        loop {
            if let Some(step) = self.step.take() {
                return step;
            }
            if self.wire.closing {
                return Step::Close;
            }
            if self.pending.is_some() || matches!(self.mode, Mode::Tls) {
                return Step::NeedInput;
            }
            if self.wire.pending_output_bytes() >= OUTPUT_BYTES_HIGH_WATER {
                return Step::Flush;
            }
            if let Some(resume) = self.resume.take() {
                self.run_resume(resume);
                continue;
            }
            if matches!(self.mode, Mode::Idle { .. }) && self.changed && matches!(self.state, State::Selected(_)) {
                self.sync(Then::Idle);
                continue;
            }
            match self.next_input() {
                Some(input) => self.handle_input(input),
                None => return self.need_input(),
            }
        }
    }

    /// The answer to the request the last [`Step::Request`] carried. A response of the wrong
    /// kind (a driver bug) is `debug_assert`ed and taken as a temporary failure.
    fn resolve(&mut self, response: Response) {
        let Some(pending) = self.pending.take() else {
            debug_assert!(self.wire.closing, "resolve({response:?}) with no request outstanding");
            return;
        };
        if self.wire.closing {
            return;
        }
        match pending {
            Pending::Login(login) => self.login_resolved(login, response),
            Pending::Select(job) => self.select_resolved(job, response),
            Pending::Status(job) => self.status_resolved(job, response),
            Pending::List(job) => self.list_resolved(job, response),
            Pending::ListStatus(job) => self.list_status_resolved(job, response),
            Pending::Done(job) => self.done_resolved(job, response),
            Pending::Append(job) => self.append_resolved(job, response),
            Pending::Sync(then) => self.sync_resolved(then, response),
            Pending::Store(job) => self.store_resolved(job, response),
            Pending::Copy(job) => self.copy_resolved(job, response),
            Pending::Expunge(job) => self.expunge_resolved(job, response),
            Pending::Fetch(job) => self.fetch_resolved(job, response),
            Pending::Search(job) => self.search_resolved(job, response),
        }
        if self.pending.is_none()
            && let Some(text) = self.close_after.take()
        {
            self.step = None;
            self.end(text);
        }
    }

    /// The TLS handshake after [`Step::StartTls`] succeeded: the session goes on, not
    /// authenticated, under TLS. A failed handshake needs no call: the driver just closes.
    fn tls_established(&mut self) {
        debug_assert!(matches!(self.mode, Mode::Tls) || self.wire.closing, "tls_established without STARTTLS");
        if matches!(self.mode, Mode::Tls) {
            self.mode = Mode::Command;
            self.tls = true;
        }
    }

    /// The client was idle too long (RFC 9051 §5.4 autologout, at least 30 minutes; the driver
    /// chooses): `* BYE Autologout; idle for too long`, then [`Step::Close`].
    fn timeout(&mut self) {
        self.end("Autologout; idle for too long");
    }

    /// The server is stopping: `* BYE Server shutting down`, then [`Step::Close`]. A request
    /// out is answered first.
    fn shutdown(&mut self) {
        self.end("Server shutting down");
    }

    /// News from elsewhere: in IDLE the next poll asks for a sync and reports the changes; at
    /// other times the next command in the selected state syncs first.
    fn notice(&mut self, notice: Notice) {
        match notice {
            Notice::Changed => self.changed = true,
        }
    }

    fn take_output(&mut self) -> Vec<u8> {
        self.wire.take_output()
    }

    /// Waiting for a command (or idling in IDLE), with nothing half-received and nothing out.
    fn is_idle(&self) -> bool {
        matches!(self.mode, Mode::Command | Mode::Idle { .. })
            && !self.wire.closing
            && self.pending.is_none()
            && self.step.is_none()
            && self.resume.is_none()
            && self.input_pos == self.input.len()
            && !self.framer.in_message()
    }

    /// The transcript lines recorded since the last call (`C: ...` from the client, `S: ...`
    /// from the server); empty unless [`SessionConfig::transcript`] is on. LOGIN arguments and
    /// AUTHENTICATE data show as `<redacted>`, literals as `<n octets>`.
    fn take_transcript(&mut self) -> Vec<String> {
        self.wire.take_transcript()
    }
}

/// An `imap-next` server whose greeting is already taken (the session writes its own).
fn new_server(limits: &super::Limits) -> Server {
    let mut options = Options::default();
    options.crlf_relaxed = true;
    options.max_literal_size = limits.literal_bytes_max;
    options.max_command_size = limits.command_bytes_max;
    // Both texts are plain ASCII, valid for imap-next.
    let _ = options.set_literal_accept_text("Ready for literal data".to_owned());
    let _ = options.set_literal_reject_text("Literal too large".to_owned());
    let greeting = Greeting::ok(None, "ready").unwrap_or_else(|_| unreachable!("a constant valid greeting"));
    let mut server = Server::new(options, greeting);
    // Take the greeting's octets and its event.
    loop {
        match server.next() {
            Err(Interrupt::Io(Io::NeedMoreInput)) => break,
            Ok(_) | Err(Interrupt::Io(Io::Output(_))) => {}
            Err(Interrupt::Error(_)) => break,
        }
    }
    server
}

/// The tag a raw command begins with, if it is a valid one.
pub(crate) fn tag_of(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&b| b == b' ')?;
    let word = raw.get(..end)?;
    if word.contains(&b'\n') {
        return None;
    }
    Tag::try_from(word).ok().map(|tag| tag.as_ref().to_owned())
}
