//! The embedded engine: one SQLite database per shard under `<data>/shards/`, each with one writer
//! thread (see [`writer`]) and a small pool of read connections.
//!
//! Layout of a data directory:
//!
//! ```text
//! <data>/layout.toml        format and shard count, written once at creation
//! <data>/shards/0000.db     shard 0 (plus its -wal and -shm files)
//! <data>/shards/0001.db     …
//! ```

mod apply;
mod chat;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use tidings_core::{
    Account, Address, ChatMessage, Flags, HistoryQuery, MailboxInfo, MailboxSnapshot, MailboxStatus, MailboxSync,
    MessageMeta, Op, Presence, RoomName, RoomRecord, SHARD_COUNT_MAX, ShardId, ShardMap, StoredMessage,
};

use crate::{LogEntry, MailboxListing, MessageSummary, Pending, Store, StoreConfig, StoreError};

/// Version of the data directory layout this build reads and writes.
const LAYOUT_FORMAT: u32 = 1;

/// `<data>/layout.toml`.
#[derive(Serialize, Deserialize)]
struct Layout {
    format: u32,
    shards: u16,
}

/// The SQLite [`Store`]. Dropping it lets each writer finish its queue, then joins the writers.
pub struct SqliteStore {
    map: ShardMap,
    shards: Vec<Shard>,
    watchers: Arc<Watchers>,
}

struct Shard {
    queue: Option<mpsc::Sender<writer::WriteRequest>>,
    readers: Arc<ReaderPool>,
    writer: Option<JoinHandle<()>>,
}

impl SqliteStore {
    /// Opens the store in `data_dir`, creating the directory, its layout and the shard databases
    /// if needed, migrating their schema, and starting one writer thread per shard.
    ///
    /// The shard count of an existing directory wins over `config.shards` (a warning is logged
    /// when they differ): changing it would move accounts between shards.
    ///
    /// # Errors
    /// [`StoreError::Layout`] for an unreadable or foreign layout, [`StoreError::Database`] when a
    /// database cannot be opened or migrated.
    pub fn open(data_dir: &Path, config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        config.validate().map_err(StoreError::Layout)?;
        let count = Self::layout(data_dir, config)?;
        let shard_dir = data_dir.join("shards");
        std::fs::create_dir_all(&shard_dir).map_err(|e| layout_error(&shard_dir, e))?;
        let map = ShardMap::new(count);
        let watchers = Arc::new(Watchers::default());
        let mut shards = Vec::with_capacity(count as usize);
        for id in map.shards() {
            let path = shard_dir.join(format!("{id}.db"));
            let mut conn = schema::open(&path, config.busy_timeout_ms).map_err(db_error)?;
            schema::migrate(&mut conn).map_err(db_error)?;
            let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
            let limits = writer::WriterLimits {
                batch_ops_max: config.batch_ops_max.max(1),
                batch_bytes_max: config.batch_bytes_max,
                log_retain_ops: config.log_retain_ops,
                log_retain_bytes: config.log_retain_bytes,
                fsync_flag_changes: config.fsync_flag_changes,
            };
            let handle = std::thread::Builder::new()
                .name(format!("shard-{id}-writer"))
                .spawn({
                    let watchers = Arc::clone(&watchers);
                    move || writer::Writer::new(id, conn, limits, watchers).run(rx)
                })
                .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;
            shards.push(Shard {
                queue: Some(tx),
                readers: Arc::new(ReaderPool {
                    path,
                    idle: Mutex::new(Vec::new()),
                    idle_max: config.readers_per_shard,
                    busy_timeout_ms: config.busy_timeout_ms,
                    mmap_bytes: config.reader_mmap_bytes,
                    permits: tokio::sync::Semaphore::new(config.readers_per_shard),
                }),
                writer: Some(handle),
            });
        }
        Ok(SqliteStore { map, shards, watchers })
    }

    /// Reads `<data>/layout.toml`, or writes it for a new directory; returns the shard count.
    fn layout(data_dir: &Path, config: &StoreConfig) -> Result<u16, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| layout_error(data_dir, e))?;
        let path = data_dir.join("layout.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let layout: Layout =
                    toml::from_str(&text).map_err(|e| StoreError::Layout(format!("{}: {e}", path.display())))?;
                if layout.format != LAYOUT_FORMAT {
                    return Err(StoreError::Layout(format!(
                        "{} has format {}, this build reads format {LAYOUT_FORMAT}",
                        path.display(),
                        layout.format
                    )));
                }
                if !(1..=SHARD_COUNT_MAX).contains(&layout.shards) {
                    return Err(StoreError::Layout(format!(
                        "{}: shard count {} out of range",
                        path.display(),
                        layout.shards
                    )));
                }
                if layout.shards != config.shards {
                    warn!(
                        existing = layout.shards,
                        configured = config.shards,
                        "the data directory keeps its shard count; [store] shards applies to new directories only"
                    );
                }
                Ok(layout.shards)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !(1..=SHARD_COUNT_MAX).contains(&config.shards) {
                    return Err(StoreError::Layout(format!(
                        "[store] shards = {} is out of range 1..={SHARD_COUNT_MAX}",
                        config.shards
                    )));
                }
                let layout = Layout { format: LAYOUT_FORMAT, shards: config.shards };
                let text = toml::to_string(&layout).map_err(|e| StoreError::Layout(e.to_string()))?;
                // Written in full and synced under a private name, then linked into place: the
                // link fails if another process created the layout first, whose layout then wins,
                // and a crash never leaves a partial layout behind.
                let tmp = data_dir.join(format!("layout.toml.{}.tmp", std::process::id()));
                let written = (|| {
                    let mut file = std::fs::File::create(&tmp)?;
                    std::io::Write::write_all(&mut file, text.as_bytes())?;
                    file.sync_all()
                })();
                written.map_err(|e| layout_error(&tmp, e))?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        std::fs::File::open(data_dir)
                            .and_then(|d| d.sync_all())
                            .map_err(|e| layout_error(data_dir, e))?;
                        Ok(config.shards)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::layout(data_dir, config),
                    Err(e) => Err(layout_error(&path, e)),
                }
            }
            Err(e) => Err(layout_error(&path, e)),
        }
    }

    /// Runs `read` on a pooled read connection of `shard`, on a blocking thread, in one read
    /// transaction (one snapshot).
    async fn read<T, F>(&self, shard: ShardId, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shard = self.shards.get(shard.0 as usize).ok_or_else(|| StoreError::Layout(format!("no shard {shard}")))?;
        let pool = Arc::clone(&shard.readers);
        // At most `readers_per_shard` reads of a shard run at once: that bounds the open read
        // connections (each with its page cache) and the blocking threads reads occupy.
        let _permit = shard.readers.permits.acquire().await.map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(move || pool.with(read))
            .await
            .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }

    /// Runs `read` on every shard in turn and concatenates the results.
    async fn read_all<T, F>(&self, read: F) -> Result<Vec<T>, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<Vec<T>> + Send + Sync + Clone + 'static,
    {
        let mut all = Vec::new();
        for shard in self.map.shards() {
            all.extend(self.read(shard, read.clone()).await?);
        }
        Ok(all)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        for shard in &mut self.shards {
            shard.queue.take(); // the writer drains what is queued, then its loop ends
        }
        for shard in &mut self.shards {
            if let Some(handle) = shard.writer.take() {
                let _ = handle.join();
            }
        }
    }
}

/// How much of each message's octets [`SqliteStore::read_messages`] returns.
#[derive(Clone, Copy)]
enum Octets {
    /// None: metadata only.
    None,
    /// All of them.
    Whole,
    /// At most this many leading octets.
    Prefix(usize),
}

impl SqliteStore {
    /// The named messages still present, in the given order, with as much of their octets as
    /// `octets` asks for; `None` if the mailbox does not exist.
    async fn read_messages(
        &self,
        address: &Address,
        mailbox: &str,
        uids: Vec<u32>,
        octets: Octets,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let (key, name) = (address.to_string(), canonical(mailbox));
        self.read(self.map.shard_of(address), move |conn| {
            let Some(id) = mailbox_id(conn, &key, &name)? else { return Ok(None) };
            // One statement per message, metadata and octets together.
            let mut statement = match octets {
                Octets::None | Octets::Prefix(0) => {
                    conn.prepare_cached(&format!("{META_SELECT} WHERE mailbox_id = ?1 AND uid = ?2"))?
                }
                Octets::Whole => conn.prepare_cached(&format!(
                    "{META_COLUMNS_M}, o.data FROM messages m JOIN blobs o ON m.blob_id = o.id
                     WHERE m.mailbox_id = ?1 AND m.uid = ?2"
                ))?,
                // substr() on a BLOB counts octets, from 1.
                Octets::Prefix(_) => conn.prepare_cached(&format!(
                    "{META_COLUMNS_M}, substr(o.data, 1, ?3) FROM messages m JOIN blobs o ON m.blob_id = o.id
                     WHERE m.mailbox_id = ?1 AND m.uid = ?2"
                ))?,
            };
            let content = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Option<Bytes>> {
                Ok(match octets {
                    Octets::None => None,
                    Octets::Prefix(0) => Some(Bytes::new()),
                    Octets::Whole | Octets::Prefix(_) => Some(Bytes::from(r.get::<_, Vec<u8>>(META_COLUMN_COUNT)?)),
                })
            };
            let message = |r: &rusqlite::Row<'_>| Ok(StoredMessage { meta: meta_row(r)?, content: content(r)? });
            let mut found = Vec::with_capacity(uids.len());
            for uid in uids {
                let read = match octets {
                    Octets::Prefix(max) if max > 0 => {
                        let max = i64::try_from(max).unwrap_or(i64::MAX);
                        statement.query_row(params![id, uid, max], message)
                    }
                    _ => statement.query_row(params![id, uid], message),
                };
                if let Some(stored) = read.optional()? {
                    found.push(stored);
                }
            }
            Ok(Some(found))
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn shard_map(&self) -> ShardMap {
        self.map
    }

    async fn submit(&self, shard: ShardId, op: Op) -> Result<Pending, StoreError> {
        let queue = self.shards.get(shard.0 as usize).and_then(|s| s.queue.as_ref()).ok_or(StoreError::Closed)?;
        let (reply, rx) = oneshot::channel();
        queue.send(writer::WriteRequest { op, reply }).await.map_err(|_| StoreError::Closed)?;
        Ok(Pending(rx))
    }

    async fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        let key = address.to_string();
        self.read(self.map.shard_of(address), move |conn| {
            conn.prepare_cached(&format!("{ACCOUNT_SELECT} WHERE address = ?1"))?
                .query_row(params![key], account_row)
                .optional()
        })
        .await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut all = self
            .read_all(|conn| {
                conn.prepare_cached(ACCOUNT_SELECT)?.query_map([], account_row)?.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        all.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(all)
    }

    async fn accounts_with_local_part(&self, local_part: &str) -> Result<Vec<Address>, StoreError> {
        let key = local_part.to_lowercase();
        self.read_all(move |conn| {
            conn.prepare_cached("SELECT local_part, domain FROM accounts WHERE local_part = ?1")?
                .query_map(params![key], |r| Ok(Address::from_parts(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?)))?
                .collect()
        })
        .await
    }

    async fn domain_has_accounts(&self, domain: &str) -> Result<bool, StoreError> {
        let key = domain.to_lowercase();
        let found = self
            .read_all(move |conn| {
                let hit: Option<i64> = conn
                    .prepare_cached("SELECT 1 FROM accounts WHERE domain = ?1 LIMIT 1")?
                    .query_row(params![key], |r| r.get(0))
                    .optional()?;
                Ok(hit.into_iter().collect())
            })
            .await?;
        Ok(!found.is_empty())
    }

    async fn mailbox(&self, address: &Address, mailbox: &str) -> Result<Option<MailboxListing>, StoreError> {
        let (key, name) = (address.to_string(), mailbox.to_owned());
        self.read(self.map.shard_of(address), move |conn| {
            let Some((id, uidvalidity, uidnext)) = conn
                .prepare_cached(
                    "SELECT b.id, b.uidvalidity, b.uidnext FROM mailboxes b JOIN accounts a ON b.account_id = a.id
                     WHERE a.address = ?1 AND b.name = ?2",
                )?
                .query_row(params![key, name], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
                .optional()?
            else {
                return Ok(None);
            };
            let messages = conn
                .prepare_cached("SELECT uid, size, internal_date FROM messages WHERE mailbox_id = ?1 ORDER BY uid")?
                .query_map(params![id], |r| {
                    Ok(MessageSummary { uid: r.get(0)?, size: r.get::<_, i64>(1)? as u64, internal_date: r.get(2)? })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(MailboxListing { uidvalidity, uidnext, messages }))
        })
        .await
    }

    async fn log_since(&self, shard: ShardId, after: u64, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(shard, move |conn| {
            let mut entries = Vec::new();
            let mut rows = conn.prepare_cached(
                "SELECT l.seq, l.epoch, l.op, b.data FROM oplog l LEFT JOIN blobs b ON l.blob_id = b.id
                 WHERE l.seq > ?1 ORDER BY l.seq LIMIT ?2",
            )?;
            let mut rows = rows.query(params![after as i64, limit])?;
            while let Some(row) = rows.next()? {
                let encoded: Vec<u8> = row.get(2)?;
                let mut op: Op = postcard::from_bytes(&encoded).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Blob, Box::new(e))
                })?;
                if let Some(data) = row.get::<_, Option<Vec<u8>>>(3)? {
                    op = op.with_message(Bytes::from(data));
                }
                entries.push(LogEntry { seq: row.get::<_, i64>(0)? as u64, epoch: row.get::<_, i64>(1)? as u64, op });
            }
            Ok(entries)
        })
        .await
    }

    async fn mailboxes(&self, address: &Address) -> Result<Vec<MailboxInfo>, StoreError> {
        let key = address.to_string();
        self.read(self.map.shard_of(address), move |conn| {
            let subscribed: std::collections::HashSet<String> = conn
                .prepare_cached(
                    "SELECT s.name FROM subscriptions s JOIN accounts a ON s.account_id = a.id WHERE a.address = ?1",
                )?
                .query_map(params![key], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            conn.prepare_cached(&format!(
                "SELECT b.name, b.special_use, {STATUS_COLUMNS} FROM mailboxes b JOIN accounts a ON b.account_id = a.id
                 WHERE a.address = ?1 ORDER BY b.name"
            ))?
            .query_map(params![key], |r| {
                let name: String = r.get(0)?;
                Ok(MailboxInfo {
                    subscribed: subscribed.contains(&name),
                    name,
                    special_use: r.get(1)?,
                    status: status_row(r, 2)?,
                })
            })?
            .collect()
        })
        .await
    }

    async fn snapshot(&self, address: &Address, mailbox: &str) -> Result<Option<MailboxSnapshot>, StoreError> {
        let (key, name) = (address.to_string(), canonical(mailbox));
        self.read(self.map.shard_of(address), move |conn| {
            let Some((id, status)) = mailbox_status(conn, &key, &name)? else { return Ok(None) };
            let messages = conn
                .prepare_cached(&format!("{META_SELECT} WHERE mailbox_id = ?1 ORDER BY uid"))?
                .query_map(params![id], meta_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(MailboxSnapshot { status, messages }))
        })
        .await
    }

    async fn sync(
        &self,
        address: &Address,
        mailbox: &str,
        since_modseq: u64,
    ) -> Result<Option<MailboxSync>, StoreError> {
        let (key, name) = (address.to_string(), canonical(mailbox));
        self.read(self.map.shard_of(address), move |conn| {
            let Some((id, uidvalidity, uidnext, highest_modseq)) = conn
                .prepare_cached(
                    "SELECT b.id, b.uidvalidity, b.uidnext, b.highest_modseq FROM mailboxes b
                     JOIN accounts a ON b.account_id = a.id WHERE a.address = ?1 AND b.name = ?2",
                )?
                .query_row(params![key, name], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?)))
                .optional()?
            else {
                return Ok(None);
            };
            let uids = conn
                .prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid")?
                .query_map(params![id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<u32>>>()?;
            let changed = conn
                .prepare_cached(&format!("{META_SELECT} WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid"))?
                .query_map(params![id, since_modseq as i64], meta_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(MailboxSync { uidvalidity, uidnext, highest_modseq: highest_modseq as u64, uids, changed }))
        })
        .await
    }

    async fn messages(
        &self,
        address: &Address,
        mailbox: &str,
        uids: Vec<u32>,
        content: bool,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let octets = if content { Octets::Whole } else { Octets::None };
        self.read_messages(address, mailbox, uids, octets).await
    }

    async fn message_prefixes(
        &self,
        address: &Address,
        mailbox: &str,
        uids: Vec<u32>,
        bytes_max: usize,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        self.read_messages(address, mailbox, uids, Octets::Prefix(bytes_max)).await
    }

    fn watch(&self, address: &Address) -> tokio::sync::watch::Receiver<u64> {
        self.watchers.watch(address)
    }

    async fn message(&self, address: &Address, mailbox: &str, uid: u32) -> Result<Option<Bytes>, StoreError> {
        let (key, name) = (address.to_string(), mailbox.to_owned());
        self.read(self.map.shard_of(address), move |conn| {
            conn.prepare_cached(
                "SELECT o.data FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id JOIN accounts a ON b.account_id = a.id
                 JOIN blobs o ON m.blob_id = o.id WHERE a.address = ?1 AND b.name = ?2 AND m.uid = ?3",
            )?
            .query_row(params![key, name, uid], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map(|data| data.map(Bytes::from))
        })
        .await
    }

    async fn room(&self, room: &RoomName) -> Result<Option<RoomRecord>, StoreError> {
        let name = room.clone();
        self.read(self.map.shard_of_room(room), move |conn| chat::read_room(conn, &name)).await
    }

    async fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        let mut all = self.read_all(chat::read_rooms).await?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn history(&self, room: &RoomName, query: HistoryQuery) -> Result<Vec<ChatMessage>, StoreError> {
        let name = room.clone();
        self.read(self.map.shard_of_room(room), move |conn| chat::read_history(conn, &name, &query)).await
    }

    async fn presence(&self, address: &Address) -> Result<Option<Presence>, StoreError> {
        let address2 = address.clone();
        self.read(self.map.shard_of(address), move |conn| chat::read_presence(conn, &address2)).await
    }

    async fn room_memberships(&self, address: &Address) -> Result<Vec<RoomName>, StoreError> {
        let address2 = address.clone();
        self.read(self.map.shard_of(address), move |conn| chat::read_memberships(conn, &address2)).await
    }
}

/// Status columns of a mailbox `b`, read by [`status_row`].
const STATUS_COLUMNS: &str = "b.uidnext, b.uidvalidity, b.highest_modseq,
    (SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = b.id),
    (SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = b.id AND (m.flags & 1) = 0),
    (SELECT COALESCE(SUM(size), 0) FROM messages m WHERE m.mailbox_id = b.id)";

fn status_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<MailboxStatus> {
    Ok(MailboxStatus {
        uidnext: r.get(first)?,
        uidvalidity: r.get(first + 1)?,
        highest_modseq: r.get::<_, i64>(first + 2)? as u64,
        messages: r.get(first + 3)?,
        unseen: r.get(first + 4)?,
        size: r.get::<_, i64>(first + 5)? as u64,
    })
}

/// A mailbox's id and status.
fn mailbox_status(conn: &Connection, address: &str, name: &str) -> rusqlite::Result<Option<(i64, MailboxStatus)>> {
    conn.prepare_cached(&format!(
        "SELECT b.id, {STATUS_COLUMNS} FROM mailboxes b JOIN accounts a ON b.account_id = a.id
         WHERE a.address = ?1 AND b.name = ?2"
    ))?
    .query_row(params![address, name], |r| Ok((r.get(0)?, status_row(r, 1)?)))
    .optional()
}

fn mailbox_id(conn: &Connection, address: &str, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT b.id FROM mailboxes b JOIN accounts a ON b.account_id = a.id WHERE a.address = ?1 AND b.name = ?2",
    )?
    .query_row(params![address, name], |r| r.get(0))
    .optional()
}

const META_SELECT: &str = "SELECT uid, flags, keywords, modseq, size, internal_date FROM messages";

/// The columns of [`META_SELECT`] from `messages m`, for joins; more columns may follow them.
const META_COLUMNS_M: &str = "SELECT m.uid, m.flags, m.keywords, m.modseq, m.size, m.internal_date";

/// The columns [`meta_row`] reads.
const META_COLUMN_COUNT: usize = 6;

fn meta_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    Ok(MessageMeta {
        uid: r.get(0)?,
        flags: Flags::from_stored(r.get(1)?, &r.get::<_, String>(2)?),
        modseq: r.get::<_, i64>(3)? as u64,
        size: r.get::<_, i64>(4)? as u64,
        internal_date: r.get(5)?,
    })
}

/// The canonical form of a mailbox name for lookups; an invalid name matches nothing.
fn canonical(name: &str) -> String {
    tidings_core::canonical_mailbox_name(name).unwrap_or_default()
}

const ACCOUNT_SELECT: &str = "SELECT local_part, domain, password_hash, created_at, recovery FROM accounts";

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        address: Address::from_parts(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?),
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
        // A value that no longer parses (it was checked when set) reads as no recovery address.
        recovery: r.get::<_, Option<String>>(4)?.and_then(|a| Address::parse(&a, true).ok()),
    })
}

/// Who is watching which account for changes: one counter per watched account, bumped after
/// every commit that touched it. Entries nobody watches any more are dropped as they are seen.
#[derive(Default)]
pub(crate) struct Watchers(Mutex<std::collections::HashMap<Address, tokio::sync::watch::Sender<u64>>>);

impl Watchers {
    fn watch(&self, address: &Address) -> tokio::sync::watch::Receiver<u64> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(address.clone()).or_insert_with(|| tokio::sync::watch::channel(0).0).subscribe()
    }

    /// Tells the watchers of these accounts that something changed.
    pub(crate) fn notify<'a>(&self, addresses: impl IntoIterator<Item = &'a Address>) {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() {
            return;
        }
        for address in addresses {
            if let Some(tx) = map.get(address) {
                tx.send_modify(|version| *version += 1);
            }
        }
    }
}

/// Read connections of one shard, opened on demand and kept for reuse; `permits` lets at most
/// `readers_per_shard` reads run at once, so no more connections than that are ever open.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    idle_max: usize,
    busy_timeout_ms: u64,
    /// `mmap_size` of each connection.
    mmap_bytes: u64,
    permits: tokio::sync::Semaphore,
}

impl ReaderPool {
    fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = schema::open(&self.path, self.busy_timeout_ms).map_err(db_error)?;
                conn.pragma_update(None, "query_only", "ON").map_err(db_error)?;
                let mmap_bytes = i64::try_from(self.mmap_bytes).unwrap_or(i64::MAX);
                conn.pragma_update(None, "mmap_size", mmap_bytes).map_err(db_error)?;
                conn
            }
        };
        let result = in_read_transaction(&conn, read).map_err(db_error);
        // A connection left inside a transaction would keep its old snapshot: not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < self.idle_max {
                idle.push(conn);
            }
        }
        result
    }
}

/// Runs `read` in one read transaction: all its statements see the same state of the shard,
/// and the WAL read lock is taken and released once for them all instead of once per statement
/// (each a pair of `fcntl` calls, which dominated reads of many messages).
fn in_read_transaction<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let result = read(conn);
    if !conn.is_autocommit() {
        let ended = conn.prepare_cached("COMMIT").and_then(|mut end| end.execute([]));
        if let (Ok(_), Err(e)) = (&result, ended) {
            return Err(e);
        }
    }
    result
}

fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn layout_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Layout(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
