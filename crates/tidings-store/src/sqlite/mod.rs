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

use tidings_core::{Account, Address, Op, SHARD_COUNT_MAX, ShardId, ShardMap};

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
            };
            let handle = std::thread::Builder::new()
                .name(format!("shard-{id}-writer"))
                .spawn(move || writer::Writer::new(id, conn, limits).run(rx))
                .map_err(|e| StoreError::Database(format!("cannot start writer thread: {e}")))?;
            shards.push(Shard {
                queue: Some(tx),
                readers: Arc::new(ReaderPool {
                    path,
                    idle: Mutex::new(Vec::new()),
                    idle_max: config.readers_per_shard,
                    busy_timeout_ms: config.busy_timeout_ms,
                }),
                writer: Some(handle),
            });
        }
        Ok(SqliteStore { map, shards })
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

    /// Runs `read` on a pooled read connection of `shard`, on a blocking thread.
    async fn read<T, F>(&self, shard: ShardId, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shard = self.shards.get(shard.0 as usize).ok_or_else(|| StoreError::Layout(format!("no shard {shard}")))?;
        let pool = Arc::clone(&shard.readers);
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
                if let (Op::Deliver { message, .. }, Some(data)) = (&mut op, row.get::<_, Option<Vec<u8>>>(3)?) {
                    *message = Bytes::from(data);
                }
                entries.push(LogEntry { seq: row.get::<_, i64>(0)? as u64, epoch: row.get::<_, i64>(1)? as u64, op });
            }
            Ok(entries)
        })
        .await
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
}

const ACCOUNT_SELECT: &str = "SELECT local_part, domain, password_hash, created_at FROM accounts";

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        address: Address::from_parts(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?),
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
    })
}

/// Read connections of one shard, opened on demand; up to `idle_max` are kept for reuse.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    idle_max: usize,
    busy_timeout_ms: u64,
}

impl ReaderPool {
    fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = schema::open(&self.path, self.busy_timeout_ms).map_err(db_error)?;
                conn.pragma_update(None, "query_only", "ON").map_err(db_error)?;
                conn
            }
        };
        let result = read(&conn).map_err(db_error);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.idle_max {
            idle.push(conn);
        }
        result
    }
}

fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn layout_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Layout(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
