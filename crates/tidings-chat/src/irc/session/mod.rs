//! One IRC connection: registration, capabilities and logins (`register`), channels (`channel`),
//! messages and the rendering of hub events (`talk`), queries about users and the server
//! (`query`), and history (`history`).
//!
//! The session takes decoded lines and hub events and writes reply lines into its output; the
//! line driver ([`crate::session::run`]) moves the octets, keeps the clock for idle and PING, and
//! delivers the outbox. Time comes in as an argument ([`Session::handle`]), so tests drive a
//! session without sockets.

mod channel;
mod history;
mod query;
mod register;
mod talk;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tidings_core::{Address, Frontend};

use super::Shared;
use super::message::{self, Message, ParseError};
use super::numeric::*;
use super::text::{sanitize_host, sanitize_nick, sanitize_user};
use crate::hub::{Conn, ConnId, Identity};
use crate::session::{Flow, LineSession};
use crate::{EXCESS_FLOOD, Event, Hub, TokenBucket, decode_text};

/// Capabilities (IRCv3 capability negotiation), one bit each.
pub(super) mod cap {
    pub const MESSAGE_TAGS: u32 = 1;
    pub const SERVER_TIME: u32 = 1 << 1;
    pub const ECHO_MESSAGE: u32 = 1 << 2;
    pub const ACCOUNT_TAG: u32 = 1 << 3;
    pub const BATCH: u32 = 1 << 4;
    pub const CHATHISTORY: u32 = 1 << 5;
    pub const SASL: u32 = 1 << 6;
    pub const CAP_NOTIFY: u32 = 1 << 7;
    pub const MULTI_PREFIX: u32 = 1 << 8;
    pub const AWAY_NOTIFY: u32 = 1 << 9;
    pub const USERHOST_IN_NAMES: u32 = 1 << 10;

    /// Every capability by name, in the order CAP LS lists them.
    pub const ALL: [(&str, u32); 11] = [
        ("account-tag", ACCOUNT_TAG),
        ("away-notify", AWAY_NOTIFY),
        ("batch", BATCH),
        ("cap-notify", CAP_NOTIFY),
        ("draft/chathistory", CHATHISTORY),
        ("echo-message", ECHO_MESSAGE),
        ("message-tags", MESSAGE_TAGS),
        ("multi-prefix", MULTI_PREFIX),
        ("sasl", SASL),
        ("server-time", SERVER_TIME),
        ("userhost-in-names", USERHOST_IN_NAMES),
    ];
}

/// Longest user name (ident) kept, octets (ISUPPORT `USERLEN`).
pub(super) const USER_BYTES_MAX: usize = 16;
/// Longest topic, kick reason and away message, octets (ISUPPORT `TOPICLEN`, `KICKLEN`, `AWAYLEN`).
pub(super) const TEXT_BYTES_MAX: usize = tidings_core::TOPIC_BYTES_MAX;
/// Targets one PRIVMSG, NOTICE or KICK may name (ISUPPORT `TARGMAX`).
pub(super) const TARGETS_MAX: usize = 4;
/// Mode changes with a parameter one MODE may carry (ISUPPORT `MODES`).
pub(super) const MODES_MAX: usize = 4;
/// Own posts remembered until their echo from the hub is seen (bounded; older ones are forgotten).
const OWN_POSTS_MAX: usize = 256;
/// Connections whose QUIT was shown, so one quit seen in several shared rooms is shown once.
const RECENT_QUITS_MAX: usize = 256;
/// Sender prefixes cached for rendering room messages.
const PREFIX_CACHE_MAX: usize = 16;
/// Failed logins after which the connection is closed.
const LOGIN_FAILURES_MAX: u32 = 3;

/// One IRC connection's state.
pub(crate) struct Session {
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    /// Host shown in the client's prefix (its IP address, made safe for IRC).
    host: String,
    peer: SocketAddr,
    tls: bool,
    /// This connection's token in the nickname registry.
    token: u64,
    nick: Option<String>,
    user: Option<String>,
    realname: String,
    /// PASS, kept until registration completes (then checked and dropped).
    password: Option<String>,
    /// Negotiated capabilities ([`cap`] bits).
    caps: u32,
    /// `CAP LS 302` (or later) was sent: values in LS, cap-notify implied.
    cap_302: bool,
    /// Between CAP LS/REQ and CAP END before registration: registration waits.
    negotiating: bool,
    /// SASL PLAIN in progress: the base64 received so far.
    sasl: Option<String>,
    login_failures: u32,
    account: Option<Address>,
    /// The hub connection, once registered.
    conn: Option<Arc<Conn>>,
    invisible: bool,
    connected_at: Instant,
    flood: TokenBucket,
    awaiting_pong: bool,
    /// Ids of our posts whose hub echo has not come yet (see [`OWN_POSTS_MAX`]).
    own_posts: VecDeque<String>,
    recent_quits: VecDeque<ConnId>,
    /// (nick, front-end, prefix) of recent senders.
    prefixes: VecDeque<(String, Frontend, String)>,
    next_batch: u64,
    output: Vec<u8>,
}

impl Session {
    /// A new, unregistered connection from `peer`.
    pub fn new(shared: Arc<Shared>, peer: SocketAddr, tls: bool, now: Instant) -> Session {
        shared.registry.unregistered.fetch_add(1, Ordering::Relaxed);
        let config = &shared.config;
        Session {
            hub: Arc::clone(&shared.hub),
            host: sanitize_host(&peer.ip().to_canonical().to_string()),
            peer,
            tls,
            token: shared.registry.token(),
            nick: None,
            user: None,
            realname: String::new(),
            password: None,
            caps: 0,
            cap_302: false,
            negotiating: false,
            sasl: None,
            login_failures: 0,
            account: None,
            conn: None,
            invisible: false,
            connected_at: now,
            flood: TokenBucket::new(config.flood_lines_per_sec, config.flood_burst, now),
            awaiting_pong: false,
            own_posts: VecDeque::new(),
            recent_quits: VecDeque::new(),
            prefixes: VecDeque::new(),
            next_batch: 0,
            output: Vec::new(),
            shared,
        }
    }

    /// Handles one input line (without its line end) at `now`.
    pub async fn handle(&mut self, line: &[u8], now: Instant) -> Flow {
        if !self.flood.take(now) {
            return self.close(EXCESS_FLOOD);
        }
        self.awaiting_pong = false;
        if self.conn.is_none()
            && now.saturating_duration_since(self.connected_at)
                > Duration::from_secs(self.shared.config.registration_timeout_secs)
        {
            return self.close("Registration timed out");
        }
        if !message::fits(line) {
            self.input_too_long();
            return Flow::Continue;
        }
        let text = decode_text(line);
        let msg = match Message::parse(&text) {
            Ok(msg) => msg,
            Err(ParseError::NoCommand | ParseError::ForbiddenOctet) => return Flow::Continue,
            Err(ParseError::BadCommand) => {
                let command = text.trim_start_matches(' ').split(' ').next().unwrap_or_default().to_owned();
                self.numeric(ERR_UNKNOWNCOMMAND, &[&command, "Unknown command"]);
                return Flow::Continue;
            }
        };
        self.dispatch(msg).await
    }

    async fn dispatch(&mut self, msg: Message) -> Flow {
        let verb = msg.verb();
        match verb.as_str() {
            "CAP" => return self.cap(&msg).await,
            "AUTHENTICATE" => return self.authenticate(&msg).await,
            "PASS" => return self.pass(&msg),
            "NICK" => return self.nick_command(&msg).await,
            "USER" => return self.user_command(&msg).await,
            "PING" => {
                match msg.params.first() {
                    Some(token) => {
                        let server = self.shared.server_name.clone();
                        self.server_message("PONG", vec![server, token.clone()]);
                    }
                    None => self.numeric(ERR_NOORIGIN, &["No origin specified"]),
                }
                return Flow::Continue;
            }
            "PONG" => return Flow::Continue,
            "QUIT" => {
                let reason = match msg.params.first().filter(|r| !r.is_empty()) {
                    Some(text) => format!("Quit: {}", truncate(text, TEXT_BYTES_MAX)),
                    None => "Client Quit".to_owned(),
                };
                return self.close(&reason);
            }
            _ => {}
        }
        let Some(conn) = self.conn.clone() else {
            self.numeric(ERR_NOTREGISTERED, &["You have not registered"]);
            return Flow::Continue;
        };
        match verb.as_str() {
            "JOIN" => self.join(&conn, &msg).await,
            "PART" => self.part(&conn, &msg),
            "TOPIC" => self.topic(&conn, &msg).await,
            "NAMES" => self.names(&conn, &msg),
            "LIST" => self.list(&msg).await,
            "MODE" => self.mode(&conn, &msg).await,
            "KICK" => self.kick(&conn, &msg),
            "INVITE" => self.invite(&conn, &msg),
            "PRIVMSG" | "NOTICE" => self.privmsg(&conn, &msg, verb == "NOTICE").await,
            "TAGMSG" => {}
            "CHATHISTORY" => self.chathistory(&conn, &msg).await,
            "WHO" => self.who(&conn, &msg),
            "WHOIS" => self.whois(&msg),
            "WHOWAS" => self.whowas(&msg),
            "USERHOST" => self.userhost(&msg),
            "ISON" => self.ison(&msg),
            "AWAY" => self.away(&conn, &msg),
            "LUSERS" => self.lusers(),
            "MOTD" => self.motd(),
            "VERSION" => self.version(),
            "TIME" => self.time(),
            _ => self.numeric(ERR_UNKNOWNCOMMAND, &[&msg.command, "Unknown command"]),
        }
        Flow::Continue
    }

    /// The nickname replies are addressed to: the client's, or `*` before it has one.
    fn me(&self) -> String {
        self.nick.clone().unwrap_or_else(|| "*".into())
    }

    /// The client's own prefix, `nick!user@host`.
    fn prefix(&self) -> String {
        format!("{}!{}@{}", self.me(), self.user.as_deref().unwrap_or("*"), self.host)
    }

    fn has(&self, capability: u32) -> bool {
        self.caps & capability != 0
    }

    /// Appends a reply from the server: `:server <numeric> <client> params…`.
    fn numeric(&mut self, numeric: &str, params: &[&str]) {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(self.me());
        all.extend(params.iter().map(|p| (*p).to_owned()));
        self.server_message(numeric, all);
    }

    /// Appends `:server COMMAND params…`.
    fn server_message(&mut self, command: &str, params: Vec<String>) {
        let mut msg = Message::new(command, params);
        msg.source = Some(self.shared.server_name.clone());
        msg.write_to(&mut self.output);
    }

    /// Writes `ERROR :Closing Link` and ends the connection with `reason` (others see it as the
    /// quit message).
    fn close(&mut self, reason: &str) -> Flow {
        let text = format!("Closing Link: {} ({reason})", self.host);
        Message::new("ERROR", [text]).write_to(&mut self.output);
        Flow::Close(reason.to_owned())
    }

    fn input_too_long(&mut self) {
        self.numeric(ERR_INPUTTOOLONG, &["Input line was too long"]);
    }

    /// 461 for `command` when `msg` has fewer than `count` parameters; `true` when it has enough.
    fn enough(&mut self, msg: &Message, count: usize) -> bool {
        if msg.params.len() >= count && msg.params.iter().take(count).all(|p| !p.is_empty()) {
            return true;
        }
        self.numeric(ERR_NEEDMOREPARAMS, &[&msg.verb(), "Not enough parameters"]);
        false
    }

    /// How a member of any front-end appears in a prefix: `nick!user@host`, each part made valid.
    fn identity_prefix(&self, identity: &Identity) -> String {
        format!(
            "{}!{}@{}",
            self.shown_nick(&identity.nick),
            sanitize_user(&identity.user, USER_BYTES_MAX),
            sanitize_host(&identity.host)
        )
    }

    /// A hub nickname as IRC shows it.
    fn shown_nick(&self, nick: &str) -> String {
        sanitize_nick(nick, self.shared.config.nick_bytes_max)
    }

    /// The prefix of the sender of a room message, from its live connection when there is one
    /// (cached briefly), else `nick!<front-end>@<server>`.
    fn sender_prefix(&mut self, nick: &str, via: Frontend) -> String {
        if let Some((_, _, prefix)) = self.prefixes.iter().find(|(n, v, _)| n == nick && *v == via) {
            return prefix.clone();
        }
        let identity = self.hub.find_nick(nick).into_iter().map(|c| c.identity()).find(|i| i.via == via);
        let prefix = match identity {
            Some(identity) => self.identity_prefix(&identity),
            None => format!("{}!{}@{}", self.shown_nick(nick), via.as_str(), self.shared.server_name),
        };
        if self.prefixes.len() == PREFIX_CACHE_MAX {
            self.prefixes.pop_front();
        }
        self.prefixes.push_back((nick.to_owned(), via, prefix.clone()));
        prefix
    }

    /// The prefix of someone named only by nick (a topic setter, a kicker): their live identity,
    /// else the bare nick.
    fn nick_prefix(&self, nick: &str) -> String {
        match self.hub.find_nick(nick).first() {
            Some(conn) => self.identity_prefix(&conn.identity()),
            None => self.shown_nick(nick),
        }
    }

    /// Tags for a message to this client, as far as its capabilities ask for them.
    fn tags(
        &self,
        at_ms: Option<i64>,
        msgid: Option<&str>,
        account: Option<&Address>,
        batch: Option<&str>,
    ) -> Vec<(String, Option<String>)> {
        let mut tags = Vec::new();
        if let Some(batch) = batch.filter(|_| self.has(cap::BATCH)) {
            tags.push(("batch".to_owned(), Some(batch.to_owned())));
        }
        if let Some(at_ms) = at_ms.filter(|_| self.has(cap::SERVER_TIME)) {
            tags.push(("time".to_owned(), Some(super::text::format_time(at_ms))));
        }
        if let Some(msgid) = msgid.filter(|_| self.has(cap::MESSAGE_TAGS)) {
            tags.push(("msgid".to_owned(), Some(msgid.to_owned())));
        }
        if let Some(account) = account.filter(|_| self.has(cap::ACCOUNT_TAG)) {
            tags.push(("account".to_owned(), Some(account.to_string())));
        }
        tags
    }
}

/// `text` cut to at most `max` octets at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(nick) = &self.nick {
            self.shared.registry.release(self.token, nick);
        }
        if self.conn.is_none() {
            self.shared.registry.unregistered.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl LineSession for Session {
    async fn line(&mut self, line: &[u8]) -> Flow {
        self.handle(line, Instant::now()).await
    }

    fn event(&mut self, event: &Event, out: &mut Vec<u8>) -> Flow {
        self.render_event(event, out);
        Flow::Continue
    }

    fn line_too_long(&mut self) -> Flow {
        self.input_too_long();
        Flow::Continue
    }

    fn idle(&mut self) -> Flow {
        if self.conn.is_none() {
            return self.close("Registration timed out");
        }
        if self.awaiting_pong {
            let reason = format!("Ping timeout: {} seconds", self.shared.config.ping_timeout_secs);
            return self.close(&reason);
        }
        self.awaiting_pong = true;
        let server = self.shared.server_name.clone();
        Message::new("PING", [server]).write_to(&mut self.output);
        Flow::Continue
    }

    fn idle_timeout(&self) -> Option<Duration> {
        let config = &self.shared.config;
        if self.conn.is_none() {
            let elapsed = self.connected_at.elapsed();
            return Some(Duration::from_secs(config.registration_timeout_secs).saturating_sub(elapsed));
        }
        self.awaiting_pong.then(|| Duration::from_secs(config.ping_timeout_secs))
    }

    fn closing(&mut self, reason: &str) {
        let _ = self.close(reason);
    }

    fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    fn conn(&self) -> Option<&Arc<Conn>> {
        self.conn.as_ref()
    }
}
