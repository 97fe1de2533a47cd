//! The WebSocket chat API's JSON (docs/chat-api.md): what clients send ([`Request`]), what the
//! server sends ([`Outgoing`]: replies and events), and the stable error codes ([`ErrorCode`]).
//!
//! Pure: no I/O. Every frame is one JSON object with a `type`. A request may carry an `id` (a
//! string of at most [`REQUEST_ID_BYTES_MAX`] octets, or an integer) that its reply echoes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use tidings_chat::{Event, Leave, MemberView, ModeChange};
use tidings_core::{ChatMessage, MessageKind, PresenceStatus, RoomModes, Topic};

/// Longest string request id, octets.
pub const REQUEST_ID_BYTES_MAX: usize = 64;

/// A request's id as the client chose it, echoed in the reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id.
    Number(i64),
    /// A string id, at most [`REQUEST_ID_BYTES_MAX`] octets.
    Text(String),
}

/// A password, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The kind of a message a client sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An ordinary message.
    #[default]
    Text,
    /// An action (`/me waves`).
    Action,
    /// A notice (never answered automatically).
    Notice,
}

impl From<Kind> for MessageKind {
    fn from(kind: Kind) -> MessageKind {
        match kind {
            Kind::Text => MessageKind::Text,
            Kind::Action => MessageKind::Action,
            Kind::Notice => MessageKind::Notice,
        }
    }
}

impl From<MessageKind> for Kind {
    fn from(kind: MessageKind) -> Kind {
        match kind {
            MessageKind::Text => Kind::Text,
            MessageKind::Action => Kind::Action,
            MessageKind::Notice => Kind::Notice,
        }
    }
}

/// A status a client may set for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetStatus {
    /// Available.
    Online,
    /// Away, with a message.
    Away,
}

/// One mode change, in requests and in `modes` events (RFC 2811 §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModeJson {
    /// `i`: only invited users may join.
    InviteOnly {
        /// Set or cleared.
        on: bool,
    },
    /// `k`: the key a join must give (`null` removes it).
    Key {
        /// The key.
        value: Option<String>,
    },
    /// `l`: most members at once (`null` removes it).
    Limit {
        /// The limit, at least 1.
        value: Option<u32>,
    },
    /// `n`: only members may send.
    NoExternal {
        /// Set or cleared.
        on: bool,
    },
    /// `t`: only operators may set the topic.
    TopicLocked {
        /// Set or cleared.
        on: bool,
    },
    /// `o`: a member's operator status.
    Operator {
        /// The member's nick.
        nick: String,
        /// Given or taken.
        on: bool,
    },
    /// `v`: a member's voice.
    Voice {
        /// The member's nick.
        nick: String,
        /// Given or taken.
        on: bool,
    },
}

impl From<ModeJson> for ModeChange {
    fn from(mode: ModeJson) -> ModeChange {
        match mode {
            ModeJson::InviteOnly { on } => ModeChange::InviteOnly(on),
            ModeJson::Key { value } => ModeChange::Key(value),
            ModeJson::Limit { value } => ModeChange::Limit(value),
            ModeJson::NoExternal { on } => ModeChange::NoExternal(on),
            ModeJson::TopicLocked { on } => ModeChange::TopicLocked(on),
            ModeJson::Operator { nick, on } => ModeChange::Operator(nick, on),
            ModeJson::Voice { nick, on } => ModeChange::Voice(nick, on),
        }
    }
}

impl From<&ModeChange> for ModeJson {
    fn from(change: &ModeChange) -> ModeJson {
        match change.clone() {
            ModeChange::InviteOnly(on) => ModeJson::InviteOnly { on },
            ModeChange::Key(value) => ModeJson::Key { value },
            ModeChange::Limit(value) => ModeJson::Limit { value },
            ModeChange::NoExternal(on) => ModeJson::NoExternal { on },
            ModeChange::TopicLocked(on) => ModeJson::TopicLocked { on },
            ModeChange::Operator(nick, on) => ModeJson::Operator { nick, on },
            ModeChange::Voice(nick, on) => ModeJson::Voice { nick, on },
        }
    }
}

/// A request, as the client sends it (the `id` is taken out first, see [`parse`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Logs in with an account (full address, or a local part that names one account) and its
    /// password, or with the bearer token of an HTTP API session (`token`).
    Login {
        /// `user@domain`, or a bare local part (with `password`).
        user: Option<String>,
        /// The password (with `user`).
        password: Option<Secret>,
        /// A bearer token from `POST /api/v1/session` (instead of `user` and `password`).
        token: Option<Secret>,
    },
    /// Lists every room, with member counts, topics and the account's own rooms.
    Rooms {},
    /// Joins a room, creating it if it does not exist.
    Join {
        /// `#name`.
        room: String,
        /// The room's key, when it has one (`+k`).
        key: Option<String>,
    },
    /// Creates a room and joins it; fails if it exists.
    Create {
        /// `#name`.
        room: String,
    },
    /// Leaves a room (and removes it from the account's rooms).
    Leave {
        /// `#name`.
        room: String,
        /// Shown to the others.
        reason: Option<String>,
    },
    /// Sends a message to a room (`room`) or to every connection of a nick (`to`).
    Send {
        /// `#name`.
        room: Option<String>,
        /// A nick, for a private message (not kept).
        to: Option<String>,
        /// The text: one line.
        text: String,
        /// `text` (default), `action` or `notice`.
        #[serde(default)]
        kind: Kind,
    },
    /// A page of a room's history, oldest first.
    History {
        /// `#name`.
        room: String,
        /// Only messages older than this message id.
        before: Option<String>,
        /// Only messages newer than this message id.
        after: Option<String>,
        /// At most this many (default and cap: `[web] history_page_max`).
        limit: Option<usize>,
    },
    /// The members of a room.
    Members {
        /// `#name`.
        room: String,
    },
    /// Sets a room's topic.
    Topic {
        /// `#name`.
        room: String,
        /// The topic; empty clears it.
        text: String,
    },
    /// Sets this connection's presence (`status`), or asks for an account's (`account`).
    Presence {
        /// `online` or `away`.
        status: Option<SetStatus>,
        /// The away message.
        message: Option<String>,
        /// The account asked about.
        account: Option<String>,
    },
    /// Changes this connection's nick.
    Nick {
        /// The new nick.
        nick: String,
    },
    /// Reads a room's modes, or changes them (operators only).
    Modes {
        /// `#name`.
        room: String,
        /// The changes, in order (none: just read).
        #[serde(default)]
        changes: Vec<ModeJson>,
    },
    /// Removes a member from a room (operators only).
    Kick {
        /// `#name`.
        room: String,
        /// The member's nick.
        nick: String,
        /// Shown to everyone.
        reason: Option<String>,
    },
    /// Invites a nick to a room.
    Invite {
        /// `#name`.
        room: String,
        /// The nick.
        nick: String,
    },
    /// Asks for a reply, to measure the round trip or keep the connection in use.
    Ping {},
}

impl Request {
    /// The request's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Login { .. } => "login",
            Request::Rooms {} => "rooms",
            Request::Join { .. } => "join",
            Request::Create { .. } => "create",
            Request::Leave { .. } => "leave",
            Request::Send { .. } => "send",
            Request::History { .. } => "history",
            Request::Members { .. } => "members",
            Request::Topic { .. } => "topic",
            Request::Presence { .. } => "presence",
            Request::Nick { .. } => "nick",
            Request::Modes { .. } => "modes",
            Request::Kick { .. } => "kick",
            Request::Invite { .. } => "invite",
            Request::Ping {} => "ping",
        }
    }
}

/// A stable error code: clients branch on it; the message is for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, an unknown `type`, or a missing, unknown or invalid field.
    BadRequest,
    /// Not logged in, or wrong credentials.
    Unauthorized,
    /// A password may not be sent on this connection without TLS (`[auth] plaintext`).
    EncryptionRequired,
    /// The room does not exist.
    NoSuchRoom,
    /// This connection is not in the room.
    NotMember,
    /// Already in the room (or the invited nick is).
    AlreadyMember,
    /// `create` of a room that exists.
    RoomExists,
    /// The room is invite-only (`+i`).
    InviteOnly,
    /// The room's key (`+k`) was not given or is wrong.
    BadKey,
    /// The room is at its member limit (`+l`).
    RoomFull,
    /// In as many rooms as `[chat] rooms_per_connection_max` allows.
    TooManyRooms,
    /// Needs operator status in the room.
    NotOperator,
    /// No connection has that nick (or it is not in the room).
    NoSuchNick,
    /// Another account's connection has that nick.
    NickInUse,
    /// No such account.
    NoSuchAccount,
    /// Text over its limit.
    TooLarge,
    /// Requests sent faster than `[web] flood_requests_per_sec`; the request was not carried out.
    Flood,
    /// The server could not do it now (storage busy or failing); retrying later may work.
    Unavailable,
}

/// A room as `rooms` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoomJson {
    /// `#name`.
    pub room: String,
    /// Connections in the room now.
    pub members: usize,
    /// The topic text (empty: none).
    pub topic: String,
    /// Whether the room is one of the account's rooms (joined and not left, across connections).
    pub member: bool,
    /// Whether this connection is in the room now.
    pub joined: bool,
}

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WhoJson {
    /// Nick as shown.
    pub nick: String,
    /// The account, when logged in (line-protocol users have none).
    pub account: Option<String>,
    /// The front-end: `web`, `irc`, `line` or `udp`.
    pub via: &'static str,
}

impl From<&tidings_chat::Identity> for WhoJson {
    fn from(identity: &tidings_chat::Identity) -> WhoJson {
        WhoJson {
            nick: identity.nick.clone(),
            account: identity.account.as_ref().map(ToString::to_string),
            via: identity.via.as_str(),
        }
    }
}

/// A member of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberJson {
    /// Nick as shown.
    pub nick: String,
    /// The account, when logged in.
    pub account: Option<String>,
    /// The front-end.
    pub via: &'static str,
    /// Room operator.
    pub operator: bool,
    /// Voiced.
    pub voiced: bool,
    /// Away message, when away.
    pub away: Option<String>,
}

impl From<&MemberView> for MemberJson {
    fn from(view: &MemberView) -> MemberJson {
        let who = WhoJson::from(&view.identity);
        MemberJson {
            nick: who.nick,
            account: who.account,
            via: who.via,
            operator: view.operator,
            voiced: view.voiced,
            away: view.away.clone(),
        }
    }
}

/// A room's topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicJson {
    /// The text (empty: cleared).
    pub text: String,
    /// Who set it (a nick).
    pub setter: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
}

impl From<&Topic> for TopicJson {
    fn from(topic: &Topic) -> TopicJson {
        TopicJson { text: topic.text.clone(), setter: topic.setter.clone(), at_ms: topic.at_ms }
    }
}

/// A room's modes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModesJson {
    /// `+i`.
    pub invite_only: bool,
    /// `+k`.
    pub key: Option<String>,
    /// `+l`.
    pub limit: Option<u32>,
    /// `+n`.
    pub no_external: bool,
    /// `+t`.
    pub topic_locked: bool,
}

impl From<&RoomModes> for ModesJson {
    fn from(modes: &RoomModes) -> ModesJson {
        ModesJson {
            invite_only: modes.invite_only,
            key: modes.key.clone(),
            limit: modes.limit,
            no_external: modes.no_external,
            topic_locked: modes.topic_locked,
        }
    }
}

/// A room message, as events, `send` replies and history pages carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageJson {
    /// Unique id: 26 characters (a ULID), sorting by time.
    pub id: String,
    /// `#name`.
    pub room: String,
    /// Position in the room's history, from 1.
    pub seq: u64,
    /// Server time, Unix milliseconds; never decreasing within a room.
    pub at_ms: i64,
    /// The sender.
    pub from: WhoJson,
    /// `text`, `action` or `notice`.
    pub kind: Kind,
    /// The text.
    pub text: String,
}

impl From<&ChatMessage> for MessageJson {
    fn from(m: &ChatMessage) -> MessageJson {
        MessageJson {
            id: m.id.clone(),
            room: m.room.to_string(),
            seq: m.seq,
            at_ms: m.at_ms,
            from: WhoJson {
                nick: m.nick.clone(),
                account: m.account.as_ref().map(ToString::to_string),
                via: m.via.as_str(),
            },
            kind: m.kind.into(),
            text: m.body.clone(),
        }
    }
}

/// How a member left a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveHow {
    /// `leave` (or IRC PART).
    Part,
    /// The connection ended.
    Quit,
    /// An operator removed them.
    Kick,
}

/// The first frame on every WebSocket: the server and its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hello {
    /// `tidings`.
    pub server: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// Longest message a client may send, octets (longer: close 1009).
    pub message_bytes_max: usize,
    /// Longest chat text, octets.
    pub text_bytes_max: usize,
    /// Most messages per `history` page.
    pub history_page_max: usize,
    /// Seconds left to log in.
    pub login_timeout_secs: u64,
    /// Seconds between the server's pings.
    pub ping_interval_secs: u64,
    /// The account, when the socket starts logged in (the session cookie of this origin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The nick, when logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// The account's rooms, when logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
}

/// What an `ok` reply carries besides its `id`, by request.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `login`.
    Login {
        /// The account, canonical.
        account: String,
        /// The nick this connection shows.
        nick: String,
        /// The account's rooms (joined and not left), to rejoin.
        rooms: Vec<String>,
    },
    /// `rooms`.
    Rooms {
        /// Every room, sorted by name.
        rooms: Vec<RoomJson>,
    },
    /// `join`, `create`.
    Joined {
        /// `#name`.
        room: String,
        /// The topic, if set.
        topic: Option<TopicJson>,
        /// The modes.
        modes: ModesJson,
        /// Creation time, Unix milliseconds.
        created_ms: i64,
        /// Every member, this connection included.
        members: Vec<MemberJson>,
    },
    /// `send` to a room: the stored message.
    Sent {
        /// The message.
        message: MessageJson,
    },
    /// `send` to a nick.
    Delivered {
        /// Connections that received it.
        delivered: usize,
    },
    /// `history`.
    History {
        /// `#name`.
        room: String,
        /// Oldest first.
        messages: Vec<MessageJson>,
        /// Whether more messages lie beyond this page in the direction paged (older, or newer
        /// with `after` alone).
        more: bool,
    },
    /// `members`.
    Members {
        /// `#name`.
        room: String,
        /// Sorted by nick.
        members: Vec<MemberJson>,
    },
    /// `topic`.
    Topic {
        /// `#name`.
        room: String,
        /// The topic as set.
        topic: TopicJson,
    },
    /// `presence` asking about an account.
    Presence {
        /// The account.
        account: String,
        /// `online`, `away` or `offline`.
        status: &'static str,
        /// The away message.
        message: Option<String>,
        /// When it was last connected, Unix milliseconds (0: never; now when online).
        last_seen_ms: i64,
    },
    /// `nick`.
    Nick {
        /// The nick now.
        nick: String,
    },
    /// `modes`.
    Modes {
        /// `#name`.
        room: String,
        /// The modes now.
        modes: ModesJson,
        /// The changes applied (those that changed nothing are left out).
        changed: Vec<ModeJson>,
    },
    /// `invite`.
    Invited {
        /// Connections of the nick that were told.
        told: usize,
    },
    /// `ping`.
    Pong {
        /// Server time, Unix milliseconds.
        at_ms: i64,
    },
    /// `leave`, `kick`, `presence` setting a status.
    Done {},
}

/// A frame the server sends: a reply or an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outgoing {
    /// The first frame.
    Hello(Hello),
    /// A request succeeded.
    Ok {
        /// The request's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// What it returns.
        #[serde(flatten)]
        reply: Reply,
    },
    /// A request failed (with its `id`), or, without one, a problem not tied to a request.
    Error {
        /// The request's id, when the failure answers one that carried it.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Stable code.
        code: ErrorCode,
        /// For people.
        message: String,
    },
    /// A room message.
    Message {
        /// The message.
        message: MessageJson,
    },
    /// A private message to this connection's nick (not kept).
    Direct {
        /// Unique id.
        id: String,
        /// The sender.
        from: WhoJson,
        /// The nick it was sent to.
        to: String,
        /// Kind.
        kind: Kind,
        /// Text.
        text: String,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// Someone (this connection too) joined a room.
    Joined {
        /// `#name`.
        room: String,
        /// Who.
        member: MemberJson,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// Someone left a room.
    Left {
        /// `#name`.
        room: String,
        /// Who.
        member: MemberJson,
        /// How.
        how: LeaveHow,
        /// The kicker's nick, for `kick`.
        by: Option<String>,
        /// The reason given, if any.
        reason: Option<String>,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// This connection was removed from a room by an operator.
    Kicked {
        /// `#name`.
        room: String,
        /// The operator's nick.
        by: String,
        /// The reason.
        reason: String,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// This connection was invited to a room.
    Invited {
        /// `#name`.
        room: String,
        /// Who invited.
        by: WhoJson,
    },
    /// A room's topic changed.
    Topic {
        /// `#name`.
        room: String,
        /// The topic.
        topic: TopicJson,
    },
    /// A room's modes changed.
    Modes {
        /// `#name`.
        room: String,
        /// Who changed them.
        by: WhoJson,
        /// What changed, in order.
        changes: Vec<ModeJson>,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// A member changed nick.
    Nick {
        /// The nick before.
        old: String,
        /// The nick now.
        new: String,
        /// The account, when logged in.
        account: Option<String>,
        /// The front-end.
        via: &'static str,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// New mail in INBOX.
    Mail {
        /// `INBOX`.
        folder: String,
        /// Its UID there.
        uid: u32,
        /// The first author.
        from: Option<crate::api::mail::render::MailAddress>,
        /// The subject, decoded.
        subject: String,
    },
    /// Something changed in the account's folders (new mail, flags, moves, folders): read them again.
    Mailboxes {},
    /// A member's presence changed.
    Presence {
        /// Nick.
        nick: String,
        /// The account, when logged in.
        account: Option<String>,
        /// The front-end.
        via: &'static str,
        /// `online`, `away` or `offline`.
        status: &'static str,
        /// The away message.
        message: Option<String>,
        /// Unix milliseconds.
        at_ms: i64,
        /// For `offline`: when the account was last connected, Unix milliseconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        last_seen_ms: Option<i64>,
    },
}

impl Outgoing {
    /// An `ok` reply.
    pub fn ok(id: Option<RequestId>, reply: Reply) -> Outgoing {
        Outgoing::Ok { id, reply }
    }

    /// An `error` reply (or event, without an id).
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Outgoing {
        Outgoing::Error { id, code, message: message.into() }
    }

    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("API frames serialize")
    }
}

/// Renders a hub event for the connection `me`. `None`: nothing to show.
pub fn event(event: &Event, me: tidings_chat::ConnId) -> Option<Outgoing> {
    Some(match event {
        Event::Message(m, _) => Outgoing::Message { message: MessageJson::from(m.as_ref()) },
        Event::Direct { from, to, kind, body, at_ms, id } => Outgoing::Direct {
            id: id.clone(),
            from: from.into(),
            to: to.clone(),
            kind: (*kind).into(),
            text: body.clone(),
            at_ms: *at_ms,
        },
        Event::Joined { room, member, at_ms } => {
            Outgoing::Joined { room: room.to_string(), member: member.into(), at_ms: *at_ms }
        }
        Event::Left { room, member, how: Leave::Kick { by, reason }, at_ms } if member.conn == me => {
            Outgoing::Kicked { room: room.to_string(), by: by.clone(), reason: reason.clone(), at_ms: *at_ms }
        }
        Event::Left { room, member, how, at_ms } => {
            let (how, by, reason) = match how {
                Leave::Part(reason) => (LeaveHow::Part, None, reason.clone()),
                Leave::Quit(reason) => (LeaveHow::Quit, None, Some(reason.clone())),
                Leave::Kick { by, reason } => (LeaveHow::Kick, Some(by.clone()), Some(reason.clone())),
            };
            Outgoing::Left { room: room.to_string(), member: member.into(), how, by, reason, at_ms: *at_ms }
        }
        Event::Nick { old, new, at_ms } => Outgoing::Nick {
            old: old.nick.clone(),
            new: new.clone(),
            account: old.account.as_ref().map(ToString::to_string),
            via: old.via.as_str(),
            at_ms: *at_ms,
        },
        Event::Topic { room, topic } => Outgoing::Topic { room: room.to_string(), topic: topic.into() },
        Event::Modes { room, by, changes, at_ms } => Outgoing::Modes {
            room: room.to_string(),
            by: by.into(),
            changes: changes.iter().map(ModeJson::from).collect(),
            at_ms: *at_ms,
        },
        Event::Invited { room, by } => Outgoing::Invited { room: room.to_string(), by: by.into() },
        Event::Presence { identity, status, message, at_ms } => Outgoing::Presence {
            nick: identity.nick.clone(),
            account: identity.account.as_ref().map(ToString::to_string),
            via: identity.via.as_str(),
            status: status.as_str(),
            message: message.clone(),
            at_ms: *at_ms,
            last_seen_ms: (*status == PresenceStatus::Offline).then_some(*at_ms),
        },
    })
}

/// A request with its id.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The client's id, if it gave one.
    pub id: Option<RequestId>,
    /// The request.
    pub request: Request,
}

/// A frame that is not a valid request: answered with a `bad_request` error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The request's id, when the frame was an object with a valid one.
    pub id: Option<RequestId>,
    /// What is wrong (serde's words for a schema mismatch, which name the field).
    pub message: String,
}

impl Rejected {
    /// The `error` reply.
    pub fn reply(self) -> Outgoing {
        Outgoing::error(self.id, ErrorCode::BadRequest, self.message)
    }
}

/// Parses one text frame.
///
/// # Errors
/// [`Rejected`]: not JSON, not an object, an invalid `id`, or a request that does not match the
/// schema.
pub fn parse(text: &str) -> Result<Envelope, Rejected> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| Rejected { id: None, message: format!("not valid JSON: {e}") })?;
    let Value::Object(mut object) = value else {
        return Err(Rejected { id: None, message: "a request is a JSON object with a \"type\"".into() });
    };
    let id = match object.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= REQUEST_ID_BYTES_MAX => Some(RequestId::Text(s)),
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().map(RequestId::Number),
        Some(_) => {
            let message = format!("\"id\" must be a string of at most {REQUEST_ID_BYTES_MAX} octets or an integer");
            return Err(Rejected { id: None, message });
        }
    };
    match Request::deserialize(Value::Object(object)) {
        Ok(request) => Ok(Envelope { id, request }),
        Err(e) => Err(Rejected { id, message: format!("invalid request: {e}") }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tidings_chat::Identity;
    use tidings_core::{Frontend, RoomName};

    use super::*;

    fn to_value(out: &Outgoing) -> Value {
        serde_json::from_str(&out.to_json()).unwrap()
    }

    fn identity(nick: &str, account: Option<&str>) -> Identity {
        Identity {
            nick: nick.into(),
            user: "web".into(),
            host: "127.0.0.1".into(),
            account: account.map(|a| a.parse().unwrap()),
            via: Frontend::Web,
        }
    }

    fn member(conn: u64, nick: &str) -> MemberView {
        MemberView { conn, identity: identity(nick, None), operator: true, voiced: false, away: None }
    }

    #[test]
    fn requests_parse_with_their_id_echoable() {
        let env = parse(r##"{"type":"join","id":"3","room":"#x"}"##).unwrap();
        assert_eq!(env.id, Some(RequestId::Text("3".into())));
        assert_eq!(env.request, Request::Join { room: "#x".into(), key: None });
        let env = parse(r#"{"type":"ping","id":42}"#).unwrap();
        assert_eq!(env.id, Some(RequestId::Number(42)));
        assert_eq!(env.request, Request::Ping {});
        let env = parse(r##"{"type":"send","room":"#x","text":"hi","kind":"action"}"##).unwrap();
        assert_eq!(env.id, None);
        assert_eq!(
            env.request,
            Request::Send { room: Some("#x".into()), to: None, text: "hi".into(), kind: Kind::Action }
        );
        let env = parse(r##"{"type":"history","room":"#x","before":"01ARZ3NDEKTSV4RRFFQ69G5FAV","limit":5}"##).unwrap();
        assert_eq!(
            env.request,
            Request::History {
                room: "#x".into(),
                before: Some("01ARZ3NDEKTSV4RRFFQ69G5FAV".into()),
                after: None,
                limit: Some(5)
            }
        );
        let env = parse(r##"{"type":"modes","room":"#x","changes":[{"mode":"limit","value":5},{"mode":"operator","nick":"ta","on":true}]}"##).unwrap();
        assert_eq!(
            env.request,
            Request::Modes {
                room: "#x".into(),
                changes: vec![ModeJson::Limit { value: Some(5) }, ModeJson::Operator { nick: "ta".into(), on: true }]
            }
        );
        let env = parse(r#"{"type":"presence","status":"away","message":"lunch"}"#).unwrap();
        assert_eq!(
            env.request,
            Request::Presence { status: Some(SetStatus::Away), message: Some("lunch".into()), account: None }
        );
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let env = parse(r#"{"type":"login","id":"1","user":"ta","password":"CIS505"}"#).unwrap();
        let shown = format!("{env:?}");
        assert!(!shown.contains("CIS505") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn bad_requests_get_a_bad_request_error_with_the_id_when_known() {
        let cases = [
            ("not json", None, "not valid JSON"),
            ("[1,2]", None, "JSON object"),
            (r#"{"type":"ping","id":{"x":1}}"#, None, "\"id\""),
            (r#"{"type":"ping","id":1.5}"#, None, "\"id\""),
            (r#"{"type":"fly","id":"7"}"#, Some(RequestId::Text("7".into())), "unknown variant"),
            (r#"{"id":"8"}"#, Some(RequestId::Text("8".into())), "missing field `type`"),
            (r#"{"type":"join","id":9}"#, Some(RequestId::Number(9)), "missing field `room`"),
            (r##"{"type":"join","id":9,"room":"#a","colour":"red"}"##, Some(RequestId::Number(9)), "unknown field"),
            (r#"{"type":"rooms","id":9,"extra":1}"#, Some(RequestId::Number(9)), "unknown field"),
            (r##"{"type":"send","id":"s","room":"#a","text":5}"##, Some(RequestId::Text("s".into())), "invalid type"),
        ];
        for (text, id, needle) in cases {
            let Err(rejected) = parse(text) else { panic!("{text} parsed") };
            let Outgoing::Error { id: got, code, message } = rejected.reply() else { panic!("not an error") };
            assert_eq!(code, ErrorCode::BadRequest, "{text}");
            assert_eq!(got, id, "{text}");
            assert!(message.contains(needle), "{text}: {message}");
        }
        let long = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(REQUEST_ID_BYTES_MAX + 1));
        assert!(matches!(parse(&long), Err(Rejected { id: None, .. })));
    }

    #[test]
    fn replies_carry_type_id_and_flattened_fields() {
        let out = Outgoing::ok(Some(RequestId::Text("3".into())), Reply::Pong { at_ms: 5 });
        assert_eq!(to_value(&out), json!({"type": "ok", "id": "3", "at_ms": 5}));
        let out = Outgoing::ok(Some(RequestId::Number(4)), Reply::Done {});
        assert_eq!(to_value(&out), json!({"type": "ok", "id": 4}));
        let out = Outgoing::error(None, ErrorCode::NotMember, "you are not in #x");
        assert_eq!(to_value(&out), json!({"type": "error", "code": "not_member", "message": "you are not in #x"}));
        let out = Outgoing::ok(
            None,
            Reply::Rooms {
                rooms: vec![RoomJson { room: "#a".into(), members: 2, topic: "t".into(), member: true, joined: false }],
            },
        );
        assert_eq!(
            to_value(&out),
            json!({"type": "ok", "rooms": [{"room": "#a", "members": 2, "topic": "t", "member": true, "joined": false}]})
        );
    }

    #[test]
    fn every_error_code_has_its_snake_case_name() {
        let names = [
            (ErrorCode::BadRequest, "bad_request"),
            (ErrorCode::Unauthorized, "unauthorized"),
            (ErrorCode::EncryptionRequired, "encryption_required"),
            (ErrorCode::NoSuchRoom, "no_such_room"),
            (ErrorCode::NotMember, "not_member"),
            (ErrorCode::AlreadyMember, "already_member"),
            (ErrorCode::RoomExists, "room_exists"),
            (ErrorCode::InviteOnly, "invite_only"),
            (ErrorCode::BadKey, "bad_key"),
            (ErrorCode::RoomFull, "room_full"),
            (ErrorCode::TooManyRooms, "too_many_rooms"),
            (ErrorCode::NotOperator, "not_operator"),
            (ErrorCode::NoSuchNick, "no_such_nick"),
            (ErrorCode::NickInUse, "nick_in_use"),
            (ErrorCode::NoSuchAccount, "no_such_account"),
            (ErrorCode::TooLarge, "too_large"),
            (ErrorCode::Flood, "flood"),
            (ErrorCode::Unavailable, "unavailable"),
        ];
        for (code, name) in names {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(name));
        }
    }

    #[test]
    fn hub_events_render_as_documented() {
        let room = RoomName::parse("#g").unwrap();
        let message = ChatMessage {
            id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            room: room.clone(),
            seq: 7,
            at_ms: 1000,
            nick: "tim".into(),
            account: None,
            via: Frontend::Line,
            kind: MessageKind::Text,
            body: "hello".into(),
        };
        let rendered = to_value(&event(&Event::Message(Arc::new(message), Default::default()), 1).unwrap());
        assert_eq!(
            rendered,
            json!({"type": "message", "message": {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "room": "#g", "seq": 7,
                "at_ms": 1000, "from": {"nick": "tim", "account": null, "via": "line"}, "kind": "text", "text": "hello"}})
        );

        let joined = Event::Joined { room: room.clone(), member: member(2, "ta"), at_ms: 5 };
        assert_eq!(
            to_value(&event(&joined, 1).unwrap()),
            json!({"type": "joined", "room": "#g", "at_ms": 5, "member": {"nick": "ta", "account": null,
                "via": "web", "operator": true, "voiced": false, "away": null}})
        );

        let kick = Event::Left {
            room: room.clone(),
            member: member(2, "ta"),
            how: Leave::Kick { by: "op".into(), reason: "bye".into() },
            at_ms: 6,
        };
        assert_eq!(
            to_value(&event(&kick, 2).unwrap()),
            json!({"type": "kicked", "room": "#g", "by": "op", "reason": "bye", "at_ms": 6})
        );
        let seen_by_others = to_value(&event(&kick, 1).unwrap());
        assert_eq!(seen_by_others["type"], "left");
        assert_eq!(seen_by_others["how"], "kick");
        assert_eq!(seen_by_others["by"], "op");

        let quit =
            Event::Left { room: room.clone(), member: member(2, "ta"), how: Leave::Quit("gone".into()), at_ms: 7 };
        let quit = to_value(&event(&quit, 1).unwrap());
        assert_eq!(
            (quit["how"].as_str(), quit["reason"].as_str(), quit["by"].is_null()),
            (Some("quit"), Some("gone"), true)
        );

        let offline = Event::Presence {
            identity: identity("ta", Some("ta@mmsys.upenn.edu")),
            status: PresenceStatus::Offline,
            message: None,
            at_ms: 9,
        };
        assert_eq!(
            to_value(&event(&offline, 1).unwrap()),
            json!({"type": "presence", "nick": "ta", "account": "ta@mmsys.upenn.edu", "via": "web",
                "status": "offline", "message": null, "at_ms": 9, "last_seen_ms": 9})
        );
        let away = Event::Presence {
            identity: identity("ta", None),
            status: PresenceStatus::Away,
            message: Some("lunch".into()),
            at_ms: 9,
        };
        let away = to_value(&event(&away, 1).unwrap());
        assert_eq!((away["status"].as_str(), away.get("last_seen_ms")), (Some("away"), None));

        let modes = Event::Modes {
            room: room.clone(),
            by: identity("op", None),
            changes: vec![ModeChange::Key(Some("k".into())), ModeChange::Voice("ta".into(), true)],
            at_ms: 3,
        };
        assert_eq!(
            to_value(&event(&modes, 1).unwrap())["changes"],
            json!([{"mode": "key", "value": "k"}, {"mode": "voice", "nick": "ta", "on": true}])
        );

        let nick = Event::Nick { old: identity("ta", None), new: "tabby".into(), at_ms: 4 };
        assert_eq!(
            to_value(&event(&nick, 1).unwrap()),
            json!({"type": "nick", "old": "ta", "new": "tabby", "account": null, "via": "web", "at_ms": 4})
        );
        let topic =
            Event::Topic { room: room.clone(), topic: Topic { text: "t".into(), setter: "op".into(), at_ms: 2 } };
        assert_eq!(
            to_value(&event(&topic, 1).unwrap()),
            json!({"type": "topic", "room": "#g", "topic": {"text": "t", "setter": "op", "at_ms": 2}})
        );
        let invited = Event::Invited { room, by: identity("op", None) };
        assert_eq!(
            to_value(&event(&invited, 1).unwrap()),
            json!({"type": "invited", "room": "#g", "by": {"nick": "op", "account": null, "via": "web"}})
        );
    }

    #[test]
    fn mode_changes_round_trip_between_json_and_the_hub() {
        for change in [
            ModeChange::InviteOnly(true),
            ModeChange::Key(None),
            ModeChange::Limit(Some(3)),
            ModeChange::NoExternal(false),
            ModeChange::TopicLocked(true),
            ModeChange::Operator("a".into(), false),
            ModeChange::Voice("b".into(), true),
        ] {
            let json = serde_json::to_string(&ModeJson::from(&change)).unwrap();
            let back: ModeJson = serde_json::from_str(&json).unwrap();
            assert_eq!(ModeChange::from(back), change, "{json}");
        }
    }
}
