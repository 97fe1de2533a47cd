//! Domain types shared by every part of tidings: addresses, shards, the typed operations that are
//! the only way state changes, the shape of a sans-I/O protocol session, passwords and dates.
//!
//! This crate does no I/O: it is pure data and functions, usable from protocol cores, stores,
//! simulations and fuzzers alike.
//!
//! ```
//! use tidings_core::{Address, ShardMap};
//! let ta: Address = "TA@mmsys.upenn.edu".parse().unwrap();
//! assert_eq!(ta.to_string(), "ta@mmsys.upenn.edu");
//! let shard = ShardMap::new(4).shard_of(&ta);
//! assert!(shard.0 < 4);
//! ```

mod address;
mod chat;
pub mod date;
mod flags;
mod mailbox;
mod op;
pub mod password;
mod session;
mod shard;
pub mod utf7;

pub use address::{
    Address, AddressError, DOMAIN_BYTES_MAX, LOCAL_PART_BYTES_MAX, PATH_BYTES_MAX, Path, is_valid_domain, parse_path,
};
pub use chat::{
    CHAT_BODY_BYTES_MAX, ChatMessage, Frontend, HistoryBound, HistoryQuery, MessageKind, NICK_BYTES_MAX, Presence,
    PresenceStatus, ROOM_NAME_BYTES_MAX, RoomModes, RoomName, RoomNameError, RoomRecord, TOPIC_BYTES_MAX, Topic,
};
pub use flags::{
    FlagChange, FlagError, Flags, KEYWORD_BYTES_MAX, KEYWORDS_PER_MESSAGE_MAX, SystemFlag, validate_keyword,
};
pub use mailbox::{
    MAILBOX_DELIMITER, MAILBOX_LEVELS_MAX, MAILBOX_NAME_BYTES_MAX, MailboxInfo, MailboxNameError, MailboxSnapshot,
    MailboxStatus, MailboxSync, MessageMeta, StoredMessage, canonical_mailbox_name, superior_names,
};
pub use op::{Op, Outcome};
pub use session::{OUTPUT_BYTES_HIGH_WATER, SessionCore, Step};
pub use shard::{SHARD_COUNT_MAX, ShardId, ShardMap, address_hash};

/// The mailbox every account has and POP3 serves (RFC 9051 §5.1, RFC 1939 "maildrop").
pub const INBOX: &str = "INBOX";

/// The mailboxes every account is created with, and their SPECIAL-USE attribute (RFC 6154 §2).
pub const STANDARD_MAILBOXES: [(&str, Option<&str>); 6] = [
    (INBOX, None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// The UIDVALIDITY base for mailboxes created at Unix time `now_ms` (milliseconds): the time in
/// seconds, at least 1 (it fits in 32 bits until 2106). The store gives each new mailbox of an
/// account a value above every one that account has had and at least this base, so values never
/// repeat and never go down (RFC 9051 §2.3.1.1), on every replica alike.
pub fn uidvalidity_at(now_ms: i64) -> u32 {
    u32::try_from(now_ms.div_euclid(1000)).unwrap_or(u32::MAX).max(1)
}

/// An account as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Canonical address, the account's name.
    pub address: Address,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Where password-reset codes go ([`Op::SetRecoveryAddress`]), if the account has one.
    pub recovery: Option<Address>,
}
