//! One WebSocket's API session: login, then requests carried out on the hub, and hub events
//! rendered for the client. The socket loop ([`super::socket`]) feeds it text frames and outbox
//! events and sends what it produces.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tidings_chat::hub::Conn;
use tidings_chat::{EXCESS_FLOOD, Event, Identity, JoinError, Leave, ModeChange, RoomError, TokenBucket};
use tidings_core::password::PASSWORD_BYTES_MAX;
use tidings_core::{
    Address, Frontend, HistoryBound, HistoryQuery, INBOX, NICK_BYTES_MAX, Op, PresenceStatus, RoomName, TOPIC_BYTES_MAX,
};
use tidings_store::{LoginError, Store, StoreError};
use tracing::{debug, warn};

use super::api::{
    self, ErrorCode, Hello, MemberJson, MessageJson, ModeJson, Outgoing, Reply, Request, RequestId, RoomJson, SetStatus,
};
use crate::Web;
use crate::api::auth::{USER_BYTES_MAX, login_key};
use crate::api::mail::render::MailAddress;

/// RFC 6455 §7.4.1 close status codes the session ends with.
pub mod close {
    /// 1001: the server is going down, or the client went quiet.
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: the client broke the framing rules.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1007: a text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// 1008: flooding, a slow consumer, no login in time, too many failed logins.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// 1009: a message over `[web] ws_message_bytes_max`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Longest away message, octets.
pub const AWAY_BYTES_MAX: usize = TOPIC_BYTES_MAX;
/// Longest reason for a leave or a kick, octets.
pub const REASON_BYTES_MAX: usize = TOPIC_BYTES_MAX;
/// Longest room key, octets.
pub const KEY_BYTES_MAX: usize = 64;

/// The reason a connection that failed to log in too often is closed with.
pub const TOO_MANY_FAILED_LOGINS: &str = "too many failed logins";

/// What the socket loop does after a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Send what is pending, then close with this status code and reason.
    Close(u16, String),
}

/// A request's failure: an `error` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    code: ErrorCode,
    message: String,
}

fn fail(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

fn unavailable(e: StoreError) -> Failure {
    warn!(error = %e, "chat request failed in the store");
    fail(ErrorCode::Unavailable, format!("try again later: {e}"))
}

impl From<JoinError> for Failure {
    fn from(e: JoinError) -> Failure {
        let code = match &e {
            JoinError::AlreadyMember(_) => ErrorCode::AlreadyMember,
            JoinError::InviteOnly(_) => ErrorCode::InviteOnly,
            JoinError::BadKey(_) => ErrorCode::BadKey,
            JoinError::Full(_) => ErrorCode::RoomFull,
            JoinError::TooManyRooms(_) => ErrorCode::TooManyRooms,
            JoinError::Exists(_) => ErrorCode::RoomExists,
            JoinError::Store(e) => return unavailable(e.clone()),
        };
        fail(code, e.to_string())
    }
}

impl From<RoomError> for Failure {
    fn from(e: RoomError) -> Failure {
        let code = match &e {
            RoomError::NoSuchRoom(_) => ErrorCode::NoSuchRoom,
            RoomError::NotMember(_) => ErrorCode::NotMember,
            RoomError::NotOperator(_) => ErrorCode::NotOperator,
            RoomError::TargetNotMember(..) => ErrorCode::NoSuchNick,
            RoomError::TargetAlreadyMember(..) => ErrorCode::AlreadyMember,
            RoomError::Invalid(_) => ErrorCode::BadRequest,
            RoomError::Store(e) => return unavailable(e.clone()),
        };
        fail(code, e.to_string())
    }
}

fn room_name(name: &str) -> Result<RoomName, Failure> {
    RoomName::parse(name).map_err(|e| fail(ErrorCode::BadRequest, format!("room {name:?}: {e}")))
}

/// Checks one line of text against a limit: `too_large` over it, `bad_request` for CR, LF or NUL
/// (or, unless `empty_ok`, for empty text).
fn one_line(text: &str, bytes_max: usize, what: &str, empty_ok: bool) -> Result<(), Failure> {
    if text.len() > bytes_max {
        return Err(fail(ErrorCode::TooLarge, format!("{what} is longer than {bytes_max} octets")));
    }
    if text.contains(['\r', '\n', '\0']) {
        return Err(fail(ErrorCode::BadRequest, format!("{what} must be one line: no CR, LF or NUL")));
    }
    if text.is_empty() && !empty_ok {
        return Err(fail(ErrorCode::BadRequest, format!("{what} is empty")));
    }
    Ok(())
}

/// A nick: 1 to [`NICK_BYTES_MAX`] octets, no spaces, controls or `,:@!*?`, not starting with
/// a digit, `-` or a room or prefix sign (`#&$~%+`), so it reads the same on IRC.
pub fn valid_nick(nick: &str) -> bool {
    let Some(first) = nick.chars().next() else { return false };
    nick.len() <= NICK_BYTES_MAX
        && !first.is_ascii_digit()
        && !"-#&$~%+".contains(first)
        && nick.chars().all(|c| !c.is_whitespace() && !c.is_control() && !",:@!*?".contains(c))
}

/// A message id as the hub makes them: 26 characters of Crockford base32.
pub fn valid_message_id(id: &str) -> bool {
    id.len() == 26 && id.bytes().all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
}

/// The session of one WebSocket.
pub struct Session {
    settings: Arc<Web>,
    peer: SocketAddr,
    tls: bool,
    /// The hub connection, from login on.
    conn: Option<Arc<Conn>>,
    flood: TokenBucket,
    /// Requests refused in a row for flooding.
    strikes: u32,
    login_failures: u32,
    /// The nick and rooms of a socket that started logged in, for its `hello`.
    preauth: Option<(String, Vec<String>)>,
    /// What of INBOX has been told, once mail is watched.
    inbox: Option<InboxMark>,
    /// What the login rests on, checked again from time to time ([`Session::authorized`]).
    held: Option<Held>,
}

/// What a logged-in socket's login rests on.
enum Held {
    /// An HTTP API session (its cookie or bearer token): the socket lives while the session does.
    Session(String),
    /// A password: the socket lives until the account's sessions are ended (a password reset).
    Password { account: Address, generation: u64 },
}

/// Most `mail` events one change of the account's mailboxes gives (the newest messages);
/// `mailboxes` follows them, so a client that missed some reads the list again.
pub const MAIL_EVENTS_MAX: usize = 20;

/// Octets of a new message read for its `mail` event: its first 64 KiB, where its header is
/// (a longer header gives what its first 64 KiB say).
pub const MAIL_EVENT_BYTES_MAX: usize = 64 * 1024;

/// INBOX as last seen by a session that pushes mail: new messages are those from `uidnext` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InboxMark {
    uidvalidity: u32,
    uidnext: u32,
    highest_modseq: u64,
}

async fn inbox_mark(store: &Arc<dyn Store>, account: &Address) -> Option<InboxMark> {
    match store.mailboxes(account).await {
        Ok(all) => all.into_iter().find(|m| m.name == INBOX).map(|m| InboxMark {
            uidvalidity: m.status.uidvalidity,
            uidnext: m.status.uidnext,
            highest_modseq: m.status.highest_modseq,
        }),
        Err(e) => {
            warn!(%account, error = %e, "cannot read the account's mailboxes");
            None
        }
    }
}

/// The `mail` event of a new INBOX message (its header only is parsed).
fn mail_event(uid: u32, raw: &[u8]) -> Outgoing {
    let message = mail_parser::MessageParser::default().parse_headers(raw);
    let from = message.as_ref().and_then(|m| m.from()).and_then(|a| a.first()).map(|a| MailAddress {
        name: a.name().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        address: a.address().unwrap_or_default().to_owned(),
    });
    let subject = message.as_ref().and_then(|m| m.subject()).unwrap_or_default().to_owned();
    Outgoing::Mail { folder: INBOX.to_owned(), uid, from, subject }
}

impl Session {
    /// A session for a client at `peer` (over TLS or not), not logged in.
    pub fn new(settings: Arc<Web>, peer: SocketAddr, tls: bool) -> Session {
        let flood =
            TokenBucket::new(settings.config.flood_requests_per_sec, settings.config.flood_burst, Instant::now());
        Session {
            settings,
            peer,
            tls,
            conn: None,
            flood,
            strikes: 0,
            login_failures: 0,
            preauth: None,
            inbox: None,
            held: None,
        }
    }

    /// The first frame.
    pub fn hello(&self) -> Outgoing {
        let config = &self.settings.config;
        Outgoing::Hello(Hello {
            server: "tidings",
            version: env!("CARGO_PKG_VERSION"),
            message_bytes_max: config.ws_message_bytes_max,
            text_bytes_max: self.settings.hub.limits().body_bytes_max,
            history_page_max: config.history_page_max,
            login_timeout_secs: config.login_timeout_secs,
            ping_interval_secs: config.ws_ping_interval_secs,
            account: self.preauth.as_ref().and(self.logged_in_as()).map(|a| a.to_string()),
            nick: self.preauth.as_ref().map(|(nick, _)| nick.clone()),
            rooms: self.preauth.as_ref().map(|(_, rooms)| rooms.clone()),
        })
    }

    /// Starts the session logged in as `account` (a valid session cookie of this origin came
    /// with the upgrade; `token` is the cookie's session); the `hello` then names the account,
    /// the nick and the rooms.
    pub async fn preauth(&mut self, account: Address, token: String) {
        let (nick, rooms) = self.start(account).await;
        self.preauth = Some((nick, rooms));
        self.held = Some(Held::Session(token));
    }

    /// Whether the login still stands: the API session it came with is live (not logged out,
    /// expired or ended by a password reset), or, for a password login, the account's sessions
    /// have not been ended since. `true` before login.
    pub fn authorized(&self) -> bool {
        match &self.held {
            None => true,
            Some(Held::Session(token)) => self.settings.sessions.find(token).is_some(),
            Some(Held::Password { account, generation }) => self.settings.sessions.generation(account) == *generation,
        }
    }

    /// The account, once logged in.
    pub fn logged_in_as(&self) -> Option<Address> {
        self.conn.as_ref().and_then(|c| Self::account(c))
    }

    /// Starts pushing mail: the account's change watcher (to pass to [`Session::mail_changed`]
    /// when it fires) and INBOX as it is now. `None` before login.
    pub async fn watch_mail(&mut self) -> Option<tokio::sync::watch::Receiver<u64>> {
        let account = self.logged_in_as()?;
        let store = Arc::clone(self.settings.directory.store());
        // Watch first, then read: a change in between fires the watcher.
        let watcher = store.watch(&account);
        self.inbox = inbox_mark(&store, &account).await;
        Some(watcher)
    }

    /// The account's mailboxes changed: a `mail` event for each new INBOX message (at most
    /// [`MAIL_EVENTS_MAX`], the newest), then `mailboxes`.
    pub async fn mail_changed(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if let Some(account) = self.logged_in_as() {
            let store = Arc::clone(self.settings.directory.store());
            let now = inbox_mark(&store, &account).await;
            if let (Some(before), Some(now)) = (self.inbox, now)
                && before.uidvalidity == now.uidvalidity
                && now.uidnext > before.uidnext
            {
                out.extend(self.new_mail(&store, &account, before, now).await);
            }
            if now.is_some() {
                self.inbox = now;
            }
        }
        out.push(Outgoing::Mailboxes {});
        out
    }

    async fn new_mail(
        &self,
        store: &Arc<dyn Store>,
        account: &Address,
        before: InboxMark,
        now: InboxMark,
    ) -> Vec<Outgoing> {
        let sync = match store.sync(account, INBOX, before.highest_modseq).await {
            Ok(Some(sync)) => sync,
            Ok(None) => return Vec::new(),
            Err(e) => {
                warn!(%account, error = %e, "cannot read new mail");
                return Vec::new();
            }
        };
        let mut uids: Vec<u32> =
            sync.changed.iter().map(|m| m.uid).filter(|uid| (before.uidnext..now.uidnext).contains(uid)).collect();
        uids.drain(..uids.len().saturating_sub(MAIL_EVENTS_MAX));
        match store.message_prefixes(account, INBOX, uids, MAIL_EVENT_BYTES_MAX).await {
            Ok(Some(messages)) => {
                messages.iter().filter_map(|m| m.content.as_deref().map(|raw| mail_event(m.meta.uid, raw))).collect()
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                warn!(%account, error = %e, "cannot read new mail");
                Vec::new()
            }
        }
    }

    /// The hub connection, once logged in.
    pub fn conn(&self) -> Option<&Arc<Conn>> {
        self.conn.as_ref()
    }

    /// Takes one request's worth from the flood bucket; `Some` is the flow after a refusal.
    fn flooded(&mut self, id: Option<RequestId>, out: &mut Vec<Outgoing>) -> Option<Flow> {
        if self.flood.take(Instant::now()) {
            self.strikes = 0;
            return None;
        }
        self.strikes += 1;
        if self.strikes >= self.settings.config.flood_strikes_max {
            out.push(Outgoing::error(None, ErrorCode::Flood, "too many requests: closing"));
            return Some(Flow::Close(close::POLICY_VIOLATION, EXCESS_FLOOD.into()));
        }
        let message = format!(
            "too many requests: at most {} a second on average; this one was not carried out",
            self.settings.config.flood_requests_per_sec
        );
        out.push(Outgoing::error(id, ErrorCode::Flood, message));
        Some(Flow::Continue)
    }

    /// A binary frame: not part of the API (it still counts against the flood limit).
    pub fn binary(&mut self, out: &mut Vec<Outgoing>) -> Flow {
        if let Some(flow) = self.flooded(None, out) {
            return flow;
        }
        out.push(Outgoing::error(None, ErrorCode::BadRequest, "send requests as text frames of JSON"));
        Flow::Continue
    }

    /// One text frame: a request. Its reply (and anything else to send) goes to `out`.
    pub async fn text(&mut self, text: &str, out: &mut Vec<Outgoing>) -> Flow {
        let parsed = api::parse(text);
        let id = match &parsed {
            Ok(envelope) => envelope.id.clone(),
            Err(rejected) => rejected.id.clone(),
        };
        if let Some(flow) = self.flooded(id.clone(), out) {
            return flow;
        }
        let request = match parsed {
            Ok(envelope) => envelope.request,
            Err(rejected) => {
                out.push(rejected.reply());
                return Flow::Continue;
            }
        };
        debug!(peer = %self.peer, request = request.name(), "ws request");
        if let Request::Login { user, password, token } = request {
            return match (user, password, token) {
                (Some(user), Some(password), None) => self.login(id, &user, &password.0, out).await,
                (None, None, Some(token)) => self.login_with_token(id, &token.0, out).await,
                _ => {
                    let message = "give \"user\" and \"password\", or \"token\"";
                    out.push(Outgoing::error(id, ErrorCode::BadRequest, message));
                    Flow::Continue
                }
            };
        }
        let result = match self.conn.clone() {
            None if matches!(request, Request::Ping {}) => Ok(Reply::Pong { at_ms: tidings_core::date::now_millis() }),
            None => Err(fail(ErrorCode::Unauthorized, "log in first")),
            Some(conn) => self.request(&conn, request).await,
        };
        out.push(match result {
            Ok(reply) => Outgoing::ok(id, reply),
            Err(Failure { code, message }) => Outgoing::error(id, code, message),
        });
        Flow::Continue
    }

    async fn login(&mut self, id: Option<RequestId>, user: &str, password: &str, out: &mut Vec<Outgoing>) -> Flow {
        if self.conn.is_some() {
            out.push(Outgoing::error(id, ErrorCode::BadRequest, "already logged in"));
            return Flow::Continue;
        }
        if !self.settings.password_allowed(self.peer.ip(), self.tls) {
            out.push(Outgoing::error(
                id,
                ErrorCode::EncryptionRequired,
                "passwords are accepted only over TLS here: connect with wss://",
            ));
            return Flow::Continue;
        }
        if user.len() > USER_BYTES_MAX || password.len() > PASSWORD_BYTES_MAX {
            let message =
                format!("a user has at most {USER_BYTES_MAX} octets, a password at most {PASSWORD_BYTES_MAX}");
            out.push(Outgoing::error(id, ErrorCode::BadRequest, message));
            return Flow::Continue;
        }
        // The HTTP API's throttle: the same budget whichever way the password comes.
        let key = login_key(&self.settings, user).await;
        if let Err(secs) = self.settings.sessions.begin_login(&key, self.peer.ip()) {
            let message = format!("too many failed logins: try again in {secs} seconds");
            out.push(Outgoing::error(id, ErrorCode::Unauthorized, message));
            return Flow::Close(close::POLICY_VIOLATION, TOO_MANY_FAILED_LOGINS.into());
        }
        let generation = Address::parse(&key, false).map_or(0, |account| self.settings.sessions.generation(&account));
        let account = match self.settings.directory.authenticate(user, password).await {
            Ok(account) => account,
            Err(LoginError::Invalid) => {
                tokio::time::sleep(self.settings.auth_failure_delay).await;
                self.login_failures += 1;
                out.push(Outgoing::error(id, ErrorCode::Unauthorized, "invalid credentials"));
                if self.login_failures >= self.settings.config.login_failures_max {
                    return Flow::Close(close::POLICY_VIOLATION, TOO_MANY_FAILED_LOGINS.into());
                }
                return Flow::Continue;
            }
            Err(LoginError::Unavailable(e)) => {
                out.push(Outgoing::error(id, ErrorCode::Unavailable, format!("try again later: {e}")));
                return Flow::Continue;
            }
        };
        self.settings.sessions.login_ok(&key, self.peer.ip());
        self.held = Some(Held::Password { account: account.address.clone(), generation });
        let (nick, rooms) = self.start(account.address.clone()).await;
        debug!(peer = %self.peer, address = %account.address, "ws login");
        out.push(Outgoing::ok(id, Reply::Login { account: account.address.to_string(), nick, rooms }));
        Flow::Continue
    }

    /// `login` with the bearer token of an HTTP API session.
    async fn login_with_token(&mut self, id: Option<RequestId>, token: &str, out: &mut Vec<Outgoing>) -> Flow {
        if self.conn.is_some() {
            out.push(Outgoing::error(id, ErrorCode::BadRequest, "already logged in"));
            return Flow::Continue;
        }
        let Some(session) = self.settings.sessions.find(token) else {
            tokio::time::sleep(self.settings.auth_failure_delay).await;
            self.login_failures += 1;
            out.push(Outgoing::error(id, ErrorCode::Unauthorized, "invalid or expired token"));
            if self.login_failures >= self.settings.config.login_failures_max {
                return Flow::Close(close::POLICY_VIOLATION, TOO_MANY_FAILED_LOGINS.into());
            }
            return Flow::Continue;
        };
        self.held = Some(Held::Session(token.to_owned()));
        let (nick, rooms) = self.start(session.account.clone()).await;
        debug!(peer = %self.peer, address = %session.account, "ws login with a token");
        out.push(Outgoing::ok(id, Reply::Login { account: session.account.to_string(), nick, rooms }));
        Flow::Continue
    }

    /// Connects to the hub as `address`: the nick (the local part) and the account's rooms.
    async fn start(&mut self, address: Address) -> (String, Vec<String>) {
        let nick: String = address.local_part().chars().take(NICK_BYTES_MAX).collect();
        let identity = Identity {
            nick: nick.clone(),
            user: "web".into(),
            host: self.peer.ip().to_string(),
            account: Some(address.clone()),
            via: Frontend::Web,
        };
        let rooms = match self.settings.hub.store().room_memberships(&address).await {
            Ok(rooms) => rooms.iter().map(ToString::to_string).collect(),
            Err(e) => {
                warn!(%address, error = %e, "cannot read the account's rooms");
                Vec::new()
            }
        };
        self.conn = Some(self.settings.hub.connect(identity));
        (nick, rooms)
    }

    fn account(conn: &Conn) -> Option<Address> {
        conn.identity().account
    }

    /// Adds the room to (or removes it from) the account's rooms, durably.
    async fn save_membership(&self, conn: &Conn, room: &RoomName, member: bool) {
        let Some(address) = Self::account(conn) else { return };
        let op = Op::SetRoomMembership {
            address: address.clone(),
            room: room.clone(),
            member,
            at_ms: tidings_core::date::now_millis(),
        };
        if let Err(e) = self.settings.hub.store().apply(&address, op).await {
            warn!(%address, %room, member, error = %e, "room membership not saved");
        }
    }

    async fn request(&mut self, conn: &Arc<Conn>, request: Request) -> Result<Reply, Failure> {
        let hub = Arc::clone(&self.settings.hub);
        match request {
            // `text` takes logins before they get here; a second one on a session is refused.
            Request::Login { .. } => Err(fail(ErrorCode::BadRequest, "already logged in")),
            Request::Ping {} => Ok(Reply::Pong { at_ms: tidings_core::date::now_millis() }),
            Request::Rooms {} => {
                let list = hub.list().await.map_err(unavailable)?;
                let saved: HashSet<RoomName> = match Self::account(conn) {
                    Some(address) => {
                        hub.store().room_memberships(&address).await.map_err(unavailable)?.into_iter().collect()
                    }
                    None => HashSet::new(),
                };
                let here: HashSet<RoomName> = conn.rooms().into_iter().collect();
                let rooms = list
                    .into_iter()
                    .map(|r| RoomJson {
                        member: saved.contains(&r.name),
                        joined: here.contains(&r.name),
                        room: r.name.to_string(),
                        members: r.members,
                        topic: r.topic,
                    })
                    .collect();
                Ok(Reply::Rooms { rooms })
            }
            Request::Join { room, key } => self.join(conn, &room, key.as_deref(), false).await,
            Request::Create { room } => self.join(conn, &room, None, true).await,
            Request::Leave { room, reason } => {
                let room = room_name(&room)?;
                if let Some(reason) = &reason {
                    one_line(reason, REASON_BYTES_MAX, "the reason", true)?;
                }
                let parted = hub.part(conn, &room, reason);
                let saved = match Self::account(conn) {
                    Some(address) => hub.store().room_memberships(&address).await.map_err(unavailable)?.contains(&room),
                    None => false,
                };
                if saved {
                    self.save_membership(conn, &room, false).await;
                }
                match parted {
                    Err(e) if !saved => Err(e.into()),
                    _ => Ok(Reply::Done {}),
                }
            }
            Request::Send { room, to, text, kind } => {
                let body_bytes_max = hub.limits().body_bytes_max;
                one_line(&text, body_bytes_max, "the text", false)?;
                match (room, to) {
                    (Some(room), None) => {
                        let room = room_name(&room)?;
                        let message = hub.post(conn, &room, kind.into(), &text).await?;
                        Ok(Reply::Sent { message: MessageJson::from(message.as_ref()) })
                    }
                    (None, Some(nick)) => match hub.direct(conn, &nick, kind.into(), &text) {
                        0 => Err(fail(ErrorCode::NoSuchNick, format!("nobody has the nick {nick:?}"))),
                        delivered => Ok(Reply::Delivered { delivered }),
                    },
                    _ => Err(fail(ErrorCode::BadRequest, "give either \"room\" or \"to\"")),
                }
            }
            Request::History { room, before, after, limit } => {
                let room = room_name(&room)?;
                self.require_member(conn, &room).await?;
                let page_max = self.settings.config.history_page_max;
                let limit = match limit {
                    Some(0) => return Err(fail(ErrorCode::BadRequest, "\"limit\" must be at least 1")),
                    Some(n) => n.min(page_max),
                    None => page_max,
                };
                for id in before.iter().chain(after.iter()) {
                    if !valid_message_id(id) {
                        return Err(fail(ErrorCode::BadRequest, format!("{id:?} is not a message id")));
                    }
                }
                let oldest_first = after.is_some() && before.is_none();
                // One more than asked for tells whether the page is the last one.
                let query = HistoryQuery {
                    after: after.map(HistoryBound::Id),
                    before: before.map(HistoryBound::Id),
                    limit: limit + 1,
                };
                let mut page = hub.history(&room, query).await.map_err(unavailable)?;
                let more = page.len() > limit;
                if more {
                    if oldest_first {
                        page.truncate(limit);
                    } else {
                        page.drain(..page.len() - limit);
                    }
                }
                let messages = page.iter().map(MessageJson::from).collect();
                Ok(Reply::History { room: room.to_string(), messages, more })
            }
            Request::Members { room } => {
                let room = room_name(&room)?;
                if hub.room(&room).await.map_err(unavailable)?.is_none() {
                    return Err(fail(ErrorCode::NoSuchRoom, format!("no such room {room}")));
                }
                let mut members: Vec<MemberJson> = hub.members(&room).iter().map(MemberJson::from).collect();
                members.sort_by_key(|m| m.nick.to_lowercase());
                Ok(Reply::Members { room: room.to_string(), members })
            }
            Request::Topic { room, text } => {
                let room = room_name(&room)?;
                one_line(&text, TOPIC_BYTES_MAX, "the topic", true)?;
                let topic = hub.set_topic(conn, &room, &text).await?;
                Ok(Reply::Topic { room: room.to_string(), topic: (&topic).into() })
            }
            Request::Presence { status, message, account } => match (status, account) {
                (Some(status), None) => {
                    let message = match status {
                        SetStatus::Away => Some(message.unwrap_or_else(|| "away".into())),
                        SetStatus::Online if message.is_some() => {
                            return Err(fail(ErrorCode::BadRequest, "a message goes with \"away\" only"));
                        }
                        SetStatus::Online => None,
                    };
                    if let Some(message) = &message {
                        one_line(message, AWAY_BYTES_MAX, "the away message", false)?;
                    }
                    hub.set_away(conn, message);
                    Ok(Reply::Done {})
                }
                (None, Some(account)) => self.presence_of(&account).await,
                _ => Err(fail(ErrorCode::BadRequest, "give either \"status\" (to set) or \"account\" (to ask)")),
            },
            Request::Nick { nick } => {
                if !valid_nick(&nick) {
                    return Err(fail(
                        ErrorCode::BadRequest,
                        format!(
                            "a nick is 1 to {NICK_BYTES_MAX} octets without spaces or ,:@!*? and starts with no digit, - or #&$~%+"
                        ),
                    ));
                }
                let account = Self::account(conn);
                let taken = hub
                    .find_nick(&nick)
                    .iter()
                    .any(|other| other.id() != conn.id() && (account.is_none() || other.identity().account != account));
                if taken {
                    return Err(fail(ErrorCode::NickInUse, format!("{nick} is in use")));
                }
                if conn.identity().nick != nick {
                    hub.set_nick(conn, &nick);
                }
                Ok(Reply::Nick { nick })
            }
            Request::Modes { room, changes } => {
                let room = room_name(&room)?;
                let changes: Vec<ModeChange> = changes
                    .into_iter()
                    .map(check_mode)
                    .collect::<Result<Vec<ModeJson>, Failure>>()?
                    .into_iter()
                    .map(ModeChange::from)
                    .collect();
                let changed = if changes.is_empty() { Vec::new() } else { hub.set_modes(conn, &room, changes).await? };
                let Some(record) = hub.room(&room).await.map_err(unavailable)? else {
                    return Err(fail(ErrorCode::NoSuchRoom, format!("no such room {room}")));
                };
                Ok(Reply::Modes {
                    room: room.to_string(),
                    modes: (&record.modes).into(),
                    changed: changed.iter().map(ModeJson::from).collect(),
                })
            }
            Request::Kick { room, nick, reason } => {
                let room = room_name(&room)?;
                let reason = reason.unwrap_or_else(|| conn.identity().nick);
                one_line(&reason, REASON_BYTES_MAX, "the reason", true)?;
                hub.kick(conn, &room, &nick, &reason)?;
                Ok(Reply::Done {})
            }
            Request::Invite { room, nick } => {
                let room = room_name(&room)?;
                // Invites are remembered by the room; one for a nick nobody has would only pile up.
                if hub.find_nick(&nick).is_empty() {
                    return Err(fail(ErrorCode::NoSuchNick, format!("nobody has the nick {nick:?}")));
                }
                let told = hub.invite(conn, &room, &nick)?;
                Ok(Reply::Invited { told })
            }
        }
    }

    async fn join(&self, conn: &Arc<Conn>, room: &str, key: Option<&str>, exclusive: bool) -> Result<Reply, Failure> {
        let room = room_name(room)?;
        let joined = self.settings.hub.join(conn, &room, key, exclusive).await?;
        self.save_membership(conn, &room, true).await;
        Ok(Reply::Joined {
            room: room.to_string(),
            topic: joined.topic.as_ref().map(Into::into),
            modes: (&joined.modes).into(),
            created_ms: joined.created_ms,
            members: joined.members.iter().map(MemberJson::from).collect(),
        })
    }

    /// `not_member` when this connection is not in the room (`no_such_room` when it does not exist).
    async fn require_member(&self, conn: &Conn, room: &RoomName) -> Result<(), Failure> {
        if conn.rooms().contains(room) {
            return Ok(());
        }
        if self.settings.hub.room(room).await.map_err(unavailable)?.is_none() {
            return Err(fail(ErrorCode::NoSuchRoom, format!("no such room {room}")));
        }
        Err(fail(ErrorCode::NotMember, format!("you are not in {room}")))
    }

    async fn presence_of(&self, who: &str) -> Result<Reply, Failure> {
        let hub = &self.settings.hub;
        let Some(account) = self.settings.directory.find_login(who).await.map_err(unavailable)? else {
            return Err(fail(ErrorCode::NoSuchAccount, format!("no account {who:?}")));
        };
        let address = account.address;
        let Some(stored) = hub.store().presence(&address).await.map_err(unavailable)? else {
            return Err(fail(ErrorCode::NoSuchAccount, format!("no account {who:?}")));
        };
        // The hub knows who is connected now; the stored status may lag behind it.
        let (status, message, last_seen_ms) = if hub.is_online(&address) {
            let away = stored.status == PresenceStatus::Away;
            let status = if away { PresenceStatus::Away } else { PresenceStatus::Online };
            (status, stored.message.filter(|_| away), tidings_core::date::now_millis())
        } else {
            (PresenceStatus::Offline, None, stored.last_seen_ms)
        };
        Ok(Reply::Presence { account: address.to_string(), status: status.as_str(), message, last_seen_ms })
    }

    /// Renders a hub event for the client. Being kicked also takes the room off the account's
    /// rooms.
    pub fn event(&self, event: &Event) -> Option<Outgoing> {
        let conn = self.conn.as_ref()?;
        if let Event::Left { room, member, how: Leave::Kick { .. }, .. } = event
            && member.conn == conn.id()
            && let Some(address) = Self::account(conn)
        {
            let (store, room) = (Arc::clone(self.settings.hub.store()), room.clone());
            tokio::spawn(async move {
                let at_ms = tidings_core::date::now_millis();
                let op = Op::SetRoomMembership { address: address.clone(), room, member: false, at_ms };
                if let Err(e) = store.apply(&address, op).await {
                    warn!(%address, error = %e, "room membership not removed after a kick");
                }
            });
        }
        api::event(event, conn.id())
    }

    /// Ends the session: the hub forgets the connection (the others see it quit with `reason`).
    pub fn end(&mut self, reason: &str) {
        if let Some(conn) = self.conn.take() {
            self.settings.hub.disconnect(&conn, reason);
        }
    }
}

/// Checks a requested mode change's parameter.
fn check_mode(mode: ModeJson) -> Result<ModeJson, Failure> {
    match &mode {
        ModeJson::Key { value: Some(key) }
            if key.is_empty()
                || key.len() > KEY_BYTES_MAX
                || key.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',') =>
        {
            Err(fail(ErrorCode::BadRequest, format!("a key is 1 to {KEY_BYTES_MAX} octets without spaces or commas")))
        }
        ModeJson::Limit { value: Some(0) } => Err(fail(ErrorCode::BadRequest, "a member limit is at least 1")),
        _ => Ok(mode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks_read_the_same_on_irc() {
        for good in ["ta", "Tim_2", "[bot]", "émile"] {
            assert!(valid_nick(good), "{good}");
        }
        for bad in ["", "2pac", "-x", "#room", "a b", "a,b", "a:b", "nick!user", &"n".repeat(NICK_BYTES_MAX + 1)] {
            assert!(!valid_nick(bad), "{bad}");
        }
    }

    #[test]
    fn message_ids_are_26_crockford_characters() {
        assert!(valid_message_id("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(!valid_message_id("01ARZ3NDEKTSV4RRFFQ69G5FA"));
        assert!(!valid_message_id("01ARZ3NDEKTSV4RRFFQ69G5FAI"));
        assert!(!valid_message_id("01arz3ndektsv4rrffq69g5fav"));
    }

    #[test]
    fn text_limits_give_too_large_or_bad_request() {
        assert_eq!(one_line("abc", 3, "t", false), Ok(()));
        assert_eq!(one_line("abcd", 3, "t", false).unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(one_line("a\nb", 3, "t", false).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(one_line("", 3, "t", false).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(one_line("", 3, "t", true), Ok(()));
    }

    #[test]
    fn mode_parameters_are_checked() {
        assert!(check_mode(ModeJson::Limit { value: Some(0) }).is_err());
        assert!(check_mode(ModeJson::Key { value: Some("a b".into()) }).is_err());
        assert!(check_mode(ModeJson::Key { value: Some("ok".into()) }).is_ok());
        assert!(check_mode(ModeJson::Key { value: None }).is_ok());
    }
}
