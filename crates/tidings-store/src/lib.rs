//! The mail store: the [`Store`] trait every engine implements, the SQLite engine, and the
//! [`Directory`] that turns login names and RCPT addresses into accounts.
//!
//! # The write path
//!
//! State changes only through [`Store::submit`]: a typed [`Op`] goes to the shard that owns the data,
//! where one writer applies it, appends it to the shard's op log in the same transaction, and
//! commits. The writer takes every op waiting in its queue into one transaction, so many concurrent
//! deliveries cost one fsync (group commit). A submit resolves only once its op is durable, with
//! one configurable exception: a batch of flag changes alone commits without fsync unless
//! [`StoreConfig::fsync_flag_changes`] is set, and is durable once a later commit or checkpoint
//! of its shard has synced.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tidings_store::StoreError> {
//! use tidings_core::{Op, INBOX};
//! use tidings_store::{SqliteStore, Store, StoreConfig};
//! let store = SqliteStore::open("/tmp/tidings-data".as_ref(), &StoreConfig::default())?;
//! let ta: tidings_core::Address = "ta@mmsys.upenn.edu".parse().unwrap();
//! let shard = store.shard_map().shard_of(&ta);
//! let pending = store
//!     .submit(shard, Op::Expunge { address: ta, mailbox: INBOX.into(), uids: vec![1] })
//!     .await?;
//! let _outcome = pending.await?; // durable now
//! # Ok(()) }
//! ```

mod config;
mod directory;
mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

pub use config::{DirectoryConfig, StoreConfig};
pub use directory::{AccountError, Directory, LoginError, Resolution};
pub use sqlite::SqliteStore;
use tidings_core::{
    Account, Address, ChatMessage, HistoryQuery, MailboxInfo, MailboxSnapshot, MailboxSync, Op, Outcome, Presence,
    RoomName, RoomRecord, ShardId, ShardMap, StoredMessage,
};

/// A mailbox's state as a session sees it when it opens the mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxListing {
    /// UIDVALIDITY (RFC 9051 §2.3.1.1).
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub uidnext: u32,
    /// Messages in UID order.
    pub messages: Vec<MessageSummary>,
}

/// One message of a [`MailboxListing`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSummary {
    /// UID, unique and strictly increasing within the mailbox.
    pub uid: u32,
    /// Exact octet count of the stored message (what a retrieval returns).
    pub size: u64,
    /// Internal date, Unix seconds.
    pub internal_date: i64,
}

/// One entry of a shard's op log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in the shard's log, from 1, without gaps.
    pub seq: u64,
    /// Epoch of the primary that applied it (0 on a single node).
    pub epoch: u64,
    /// The op as applied, message octets included.
    pub op: Op,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `CreateAccount` for an address that already has an account.
    #[error("account {0} already exists")]
    AccountExists(Address),
    /// The op names an account that does not exist.
    #[error("no account {0}")]
    NoSuchAccount(Address),
    /// The op names a mailbox the account does not have.
    #[error("no mailbox {0:?}")]
    NoSuchMailbox(String),
    /// A mailbox of that name exists already.
    #[error("mailbox {0:?} already exists")]
    MailboxExists(String),
    /// The mailbox has inferior mailboxes, so it cannot be deleted (RFC 9051 §7.1 HASCHILDREN).
    #[error("mailbox {0:?} has inferior mailboxes")]
    HasChildren(String),
    /// The op is not allowed on this mailbox (deleting INBOX).
    #[error("{0}")]
    Forbidden(String),
    /// The mailbox name is not valid ([`tidings_core::canonical_mailbox_name`]).
    #[error("invalid mailbox name: {0}")]
    InvalidMailboxName(String),
    /// `CreateRoom` (exclusive) for a room that exists.
    #[error("room {0} already exists")]
    RoomExists(RoomName),
    /// The op names a room that does not exist.
    #[error("no room {0}")]
    NoSuchRoom(RoomName),
    /// The shard's queue is full: the caller should answer with a temporary failure.
    #[error("the store is overloaded; try again later")]
    Overloaded,
    /// The store is shutting down or its writer stopped.
    #[error("the store is closed")]
    Closed,
    /// The database engine failed (I/O error, disk full, lock timeout…); nothing of the op was applied.
    #[error("database error: {0}")]
    Database(String),
    /// The data directory is unusable (wrong layout, shard count mismatch…).
    #[error("data directory: {0}")]
    Layout(String),
}

impl StoreError {
    /// Whether retrying later may succeed (a protocol answers 4xx / `[SYS/TEMP]`), as opposed to a
    /// permanent refusal.
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Overloaded | StoreError::Closed | StoreError::Database(_))
    }
}

/// An op accepted into a shard's queue; resolves when it is durable (or failed): committed and
/// synced, except an [`Op::SetFlags`] under `fsync_flag_changes = false`, which resolves once
/// committed (see [`StoreConfig::fsync_flag_changes`]).
#[must_use = "an op is only known durable once its Pending resolves"]
pub struct Pending(oneshot::Receiver<Result<Outcome, StoreError>>);

impl Future for Pending {
    type Output = Result<Outcome, StoreError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

/// A storage engine. All state changes go through [`Store::submit`]; the other methods read.
///
/// Reads see every op whose [`Pending`] has resolved.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The shard map this store was created with.
    fn shard_map(&self) -> ShardMap;

    /// Queues `op` on `shard`, waiting while the shard's queue is full. The returned [`Pending`]
    /// resolves once the op is durable (a flag change: committed, see [`Pending`]).
    ///
    /// # Errors
    /// [`StoreError::Closed`] when the store is shutting down.
    async fn submit(&self, shard: ShardId, op: Op) -> Result<Pending, StoreError>;

    /// The account with this canonical address.
    async fn account(&self, address: &Address) -> Result<Option<Account>, StoreError>;

    /// Every account, sorted by address.
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// Addresses of the accounts whose local part is `local_part` (lower case), in any domain.
    async fn accounts_with_local_part(&self, local_part: &str) -> Result<Vec<Address>, StoreError>;

    /// Whether any account exists in `domain`.
    async fn domain_has_accounts(&self, domain: &str) -> Result<bool, StoreError>;

    /// The listing of one mailbox, or `None` if the account or mailbox does not exist.
    async fn mailbox(&self, address: &Address, mailbox: &str) -> Result<Option<MailboxListing>, StoreError>;

    /// Up to `limit` entries of `shard`'s op log with `seq > after`, in order; entries older than
    /// the retention (`[store] log_retain_ops` / `log_retain_bytes`) are gone.
    async fn log_since(&self, shard: ShardId, after: u64, limit: usize) -> Result<Vec<LogEntry>, StoreError>;

    /// Every mailbox of the account with its status, sorted by name (empty for no account).
    async fn mailboxes(&self, address: &Address) -> Result<Vec<MailboxInfo>, StoreError>;

    /// A mailbox's status and every message's metadata, or `None` if it does not exist.
    async fn snapshot(&self, address: &Address, mailbox: &str) -> Result<Option<MailboxSnapshot>, StoreError>;

    /// A mailbox's status, its UIDs, and the messages changed after `since_modseq`, or `None` if
    /// it does not exist.
    async fn sync(
        &self,
        address: &Address,
        mailbox: &str,
        since_modseq: u64,
    ) -> Result<Option<MailboxSync>, StoreError>;

    /// The named messages still present, in the given order, with their octets when `content`;
    /// `None` if the mailbox does not exist.
    async fn messages(
        &self,
        address: &Address,
        mailbox: &str,
        uids: Vec<u32>,
        content: bool,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError>;

    /// Like [`Store::messages`] with content, but each message's content is at most its first
    /// `bytes_max` octets (`meta.size` is still the whole size): for headers, summaries and
    /// bounded scans without reading whole messages into memory.
    async fn message_prefixes(
        &self,
        address: &Address,
        mailbox: &str,
        uids: Vec<u32>,
        bytes_max: usize,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError>;

    /// A receiver whose value changes after every committed op that touched the account's
    /// mailboxes (deliveries, flag changes, expunges, mailbox changes).
    fn watch(&self, address: &Address) -> tokio::sync::watch::Receiver<u64>;

    /// The octets of one message, or `None` if it is gone.
    async fn message(&self, address: &Address, mailbox: &str, uid: u32) -> Result<Option<Bytes>, StoreError>;

    /// A chat room, or `None` if it does not exist.
    async fn room(&self, room: &RoomName) -> Result<Option<RoomRecord>, StoreError>;

    /// Every chat room, sorted by name.
    async fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError>;

    /// A page of a room's history, oldest first (empty for an unknown room or an unknown bound
    /// id). `query.limit` is taken as at most 1,000.
    async fn history(&self, room: &RoomName, query: HistoryQuery) -> Result<Vec<ChatMessage>, StoreError>;

    /// An account's presence, or `None` if there is no such account.
    async fn presence(&self, address: &Address) -> Result<Option<Presence>, StoreError>;

    /// The rooms an account is a member of ([`Op::SetRoomMembership`]), sorted.
    async fn room_memberships(&self, address: &Address) -> Result<Vec<RoomName>, StoreError>;

    /// Submits `op` to the shard owning `room` and waits until it is durable.
    async fn apply_room(&self, room: &RoomName, op: Op) -> Result<Outcome, StoreError> {
        self.submit(self.shard_map().shard_of_room(room), op).await?.await
    }

    /// Submits `op` to the shard owning `address` and waits until it is durable.
    async fn apply(&self, address: &Address, op: Op) -> Result<Outcome, StoreError> {
        self.submit(self.shard_map().shard_of(address), op).await?.await
    }

    /// Delivers one message to `mailbox` of every recipient, one [`Op::Deliver`] per shard, all
    /// queued before any is awaited so they share commits. Resolves when every copy is durable;
    /// returns each recipient's UID (recipients whose account vanished are left out).
    ///
    /// # Errors
    /// The first failure; copies on other shards may then already be durable.
    async fn deliver(
        &self,
        recipients: &[Address],
        mailbox: &str,
        internal_date: i64,
        message: Bytes,
    ) -> Result<Vec<(Address, u32)>, StoreError> {
        let map = self.shard_map();
        let mut by_shard: Vec<(ShardId, Vec<Address>)> = Vec::new();
        for rcpt in recipients {
            let shard = map.shard_of(rcpt);
            match by_shard.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, list)) => list.push(rcpt.clone()),
                None => by_shard.push((shard, vec![rcpt.clone()])),
            }
        }
        let mut pendings = Vec::with_capacity(by_shard.len());
        for (shard, recipients) in by_shard {
            let op = Op::Deliver { recipients, mailbox: mailbox.to_owned(), internal_date, message: message.clone() };
            pendings.push(self.submit(shard, op).await?);
        }
        let mut delivered = Vec::with_capacity(recipients.len());
        for pending in pendings {
            if let Outcome::Delivered(uids) = pending.await? {
                delivered.extend(uids);
            }
        }
        Ok(delivered)
    }
}
