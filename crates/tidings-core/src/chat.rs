//! Chat domain: room names, messages, room modes, presence.
//!
//! One room namespace serves every chat front-end: IRC channel `#g`, the line protocol's group `g`
//! and the UDP protocol's room `n` (as `#n`) are the same room. A room lives on the shard
//! [`crate::ShardMap::shard_of_room`] names; its messages get a per-room sequence number there.

use serde::{Deserialize, Serialize};

use crate::Address;

/// Longest room name in octets, `#` included.
pub const ROOM_NAME_BYTES_MAX: usize = 64;
/// Longest topic in octets.
pub const TOPIC_BYTES_MAX: usize = 390;
/// Longest chat message body any front-end may post, in octets (front-ends have lower limits of
/// their own: IRC's 512-octet line, the UDP protocol's 1,000 octets).
pub const CHAT_BODY_BYTES_MAX: usize = 4096;
/// Longest nickname carried in a message, in octets.
pub const NICK_BYTES_MAX: usize = 64;

/// Why a room name is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomNameError {
    /// Not `#` followed by at least one octet.
    #[error("a room name is '#' followed by a name")]
    Syntax,
    /// Longer than [`ROOM_NAME_BYTES_MAX`].
    #[error("a room name has at most {ROOM_NAME_BYTES_MAX} octets")]
    TooLong,
    /// Contains a space, comma, colon, control character or BEL (RFC 2812 §1.3).
    #[error("a room name may not contain spaces, commas, colons or control characters")]
    Character,
}

/// A room's canonical name: `#` and 1 to 63 octets of UTF-8 without space, comma, colon or control
/// characters (RFC 2812 §1.3's channel name, `#` only), ASCII letters folded to lower case (the
/// `ascii` CASEMAPPING), so `#Cooking` and `#cooking` are one room.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomName(String);

impl RoomName {
    /// Parses and folds a room name.
    ///
    /// # Errors
    /// [`RoomNameError`] when the name breaks the rules above.
    pub fn parse(name: &str) -> Result<RoomName, RoomNameError> {
        let rest = name.strip_prefix('#').ok_or(RoomNameError::Syntax)?;
        if rest.is_empty() {
            return Err(RoomNameError::Syntax);
        }
        if name.len() > ROOM_NAME_BYTES_MAX {
            return Err(RoomNameError::TooLong);
        }
        if rest.chars().any(|c| c == ' ' || c == ',' || c == ':' || c.is_control()) {
            return Err(RoomNameError::Character);
        }
        Ok(RoomName(name.to_ascii_lowercase()))
    }

    /// The room of the line protocol's group `group` (`#group`).
    ///
    /// # Errors
    /// As [`RoomName::parse`].
    pub fn of_group(group: &str) -> Result<RoomName, RoomNameError> {
        RoomName::parse(&format!("#{group}"))
    }

    /// The name, `#` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoomName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RoomName {
    type Err = RoomNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RoomName::parse(s)
    }
}

/// The front-end a member or message came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Frontend {
    /// The TCP group-chat line protocol (PROTOCOLS.md §1).
    Line,
    /// The classic UDP chat protocol (PROTOCOLS.md §2).
    Udp,
    /// IRC (RFC 2812, IRCv3).
    Irc,
    /// The WebSocket JSON API.
    Web,
}

impl Frontend {
    /// Lower-case name used in the store and the WebSocket API: `line`, `udp`, `irc`, `web`.
    pub fn as_str(self) -> &'static str {
        match self {
            Frontend::Line => "line",
            Frontend::Udp => "udp",
            Frontend::Irc => "irc",
            Frontend::Web => "web",
        }
    }

    /// The inverse of [`Frontend::as_str`].
    pub fn parse(s: &str) -> Option<Frontend> {
        Some(match s {
            "line" => Frontend::Line,
            "udp" => Frontend::Udp,
            "irc" => Frontend::Irc,
            "web" => Frontend::Web,
            _ => return None,
        })
    }
}

/// What kind of chat message (IRC PRIVMSG, NOTICE, CTCP ACTION).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// An ordinary message.
    Text,
    /// A notice: never answered automatically (RFC 2812 §3.3.2).
    Notice,
    /// An action (`/me waves`).
    Action,
}

impl MessageKind {
    /// `text`, `notice` or `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Notice => "notice",
            MessageKind::Action => "action",
        }
    }

    /// The inverse of [`MessageKind::as_str`].
    pub fn parse(s: &str) -> Option<MessageKind> {
        Some(match s {
            "text" => MessageKind::Text,
            "notice" => MessageKind::Notice,
            "action" => MessageKind::Action,
            _ => return None,
        })
    }
}

/// One chat message of a room, as delivered and as kept in the room's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Server-assigned unique id: 26 characters of Crockford base32 (a ULID: 48 bits of
    /// milliseconds then 80 random bits), so ids sort by time.
    pub id: String,
    /// The room.
    pub room: RoomName,
    /// Position in the room's history, from 1, increasing in delivery order (0 before the store
    /// assigned it).
    pub seq: u64,
    /// Server time of delivery, Unix milliseconds; never decreasing within a room.
    pub at_ms: i64,
    /// Sender's nickname as shown to others (at most [`NICK_BYTES_MAX`] octets).
    pub nick: String,
    /// Sender's account, when logged in.
    pub account: Option<Address>,
    /// Front-end the sender used.
    pub via: Frontend,
    /// Text, notice or action.
    pub kind: MessageKind,
    /// The text: valid UTF-8, no CR, LF or NUL, at most [`CHAT_BODY_BYTES_MAX`] octets.
    pub body: String,
}

/// A room's modes (RFC 2811 §4.2 and §4.3): the ones every front-end must respect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomModes {
    /// `+i`: only invited users may join.
    pub invite_only: bool,
    /// `+k`: the key a join must give.
    pub key: Option<String>,
    /// `+l`: most members at once.
    pub limit: Option<u32>,
    /// `+n`: only members may post.
    pub no_external: bool,
    /// `+t`: only operators may set the topic.
    pub topic_locked: bool,
}

impl RoomModes {
    /// The modes a new room gets: `+nt`, as most IRC servers do.
    pub fn new_room() -> RoomModes {
        RoomModes { no_external: true, topic_locked: true, ..RoomModes::default() }
    }

    /// The mode string as IRC shows it (`+intk key`, key last), with parameters when `params`.
    pub fn to_irc(&self, params: bool) -> String {
        let mut letters = String::from("+");
        let mut args = Vec::new();
        for (on, c) in [(self.invite_only, 'i'), (self.no_external, 'n'), (self.topic_locked, 't')] {
            if on {
                letters.push(c);
            }
        }
        if let Some(key) = &self.key {
            letters.push('k');
            args.push(key.clone());
        }
        if let Some(limit) = self.limit {
            letters.push('l');
            args.push(limit.to_string());
        }
        if params && !args.is_empty() {
            letters.push(' ');
            letters.push_str(&args.join(" "));
        }
        letters
    }
}

/// A room's topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// The text (empty: no topic).
    pub text: String,
    /// Who set it (a nickname).
    pub setter: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
}

/// A room as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    /// The name.
    pub name: RoomName,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// The topic, if one was ever set.
    pub topic: Option<Topic>,
    /// The modes.
    pub modes: RoomModes,
    /// Sequence number of the room's newest message (0 when it has none).
    pub last_seq: u64,
}

/// An account's presence status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PresenceStatus {
    /// Connected and available.
    Online,
    /// Connected, away (IRC AWAY, or set in the web app).
    Away,
    /// Not connected.
    Offline,
}

impl PresenceStatus {
    /// `online`, `away` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }

    /// The inverse of [`PresenceStatus::as_str`].
    pub fn parse(s: &str) -> Option<PresenceStatus> {
        Some(match s {
            "online" => PresenceStatus::Online,
            "away" => PresenceStatus::Away,
            "offline" => PresenceStatus::Offline,
            _ => return None,
        })
    }
}

/// An account's presence as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The status.
    pub status: PresenceStatus,
    /// The away message, when away.
    pub message: Option<String>,
    /// When the account was last connected (Unix milliseconds; 0: never).
    pub last_seen_ms: i64,
}

/// Which end of a room's history a page starts from (IRCv3 CHATHISTORY's selectors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryBound {
    /// A message id ([`ChatMessage::id`]); the message itself is excluded.
    Id(String),
    /// A sequence number; excluded.
    Seq(u64),
    /// A time, Unix milliseconds; messages at exactly that time are excluded.
    Time(i64),
}

/// A page of a room's history. Pages are returned oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only messages after this bound.
    pub after: Option<HistoryBound>,
    /// Only messages before this bound.
    pub before: Option<HistoryBound>,
    /// At most this many; with only `after` given, the oldest after it, otherwise the newest
    /// before `before` (or the latest).
    pub limit: usize,
}
