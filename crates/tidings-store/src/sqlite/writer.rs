//! A shard's single writer: applies ops in batches, one transaction and one fsync per batch.
//!
//! The writer is an OS thread (SQLite calls block). It waits for the first op, then takes every op
//! already queued behind it, up to the batch bounds, and commits them together: under load the
//! batch grows by itself, so durable throughput follows concurrency instead of the disk's fsync rate.
//! Each op runs inside a savepoint, so one failing op (an address already taken) does not undo the
//! others of its batch.
//!
//! A batch of flag changes alone commits without fsync unless
//! [`StoreConfig::fsync_flag_changes`](crate::StoreConfig::fsync_flag_changes) is set: the
//! connection is switched to `synchronous=NORMAL` for it (SQLite allows the switch only between
//! transactions) and back to `FULL` for the next batch that holds anything else. Either way the
//! commit goes to the WAL in order, and the fsync of a later `FULL` commit (or of a checkpoint)
//! covers every frame before it; after a power loss the WAL recovers to a prefix of the commits,
//! so a lost flag change never takes a later delivery with it.

use std::sync::Arc;

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, warn};

use tidings_core::{Op, Outcome, ShardId};

use super::Watchers;
use super::apply::{Applied, ApplyError, apply, unref_blob};

use crate::StoreError;

/// One queued op and where its result goes.
pub(crate) struct WriteRequest {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Batch bounds and log retention, from [`crate::StoreConfig`].
pub(crate) struct WriterLimits {
    pub batch_ops_max: usize,
    pub batch_bytes_max: usize,
    pub log_retain_ops: u64,
    pub log_retain_bytes: u64,
    /// Flag-only batches wait for fsync too.
    pub fsync_flag_changes: bool,
}

/// The writer's state between batches.
pub(crate) struct Writer {
    shard: ShardId,
    conn: Connection,
    limits: WriterLimits,
    /// Octets the retained log stands for (its `size` column summed); `None` when unknown, after a
    /// failed commit or at start, and then read from the database.
    log_bytes: Option<u64>,
    /// Told, after each commit, which accounts' mailboxes changed.
    watchers: Arc<Watchers>,
    /// The connection's `synchronous` setting is `FULL` (as [`super::schema::open`] leaves it);
    /// `false`: `NORMAL`.
    synchronous_full: bool,
}

impl Writer {
    pub(crate) fn new(shard: ShardId, conn: Connection, limits: WriterLimits, watchers: Arc<Watchers>) -> Writer {
        Writer { shard, conn, limits, log_bytes: None, watchers, synchronous_full: true }
    }

    /// Runs until every sender of `queue` is dropped, then returns (closing the connection).
    pub(crate) fn run(mut self, mut queue: mpsc::Receiver<WriteRequest>) {
        let mut batch: Vec<WriteRequest> = Vec::with_capacity(self.limits.batch_ops_max);
        while let Some(first) = queue.blocking_recv() {
            let mut bytes = first.op.weight_bytes();
            batch.push(first);
            while batch.len() < self.limits.batch_ops_max && bytes < self.limits.batch_bytes_max {
                match queue.try_recv() {
                    Ok(next) => {
                        bytes += next.op.weight_bytes();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            let results = match self.commit_batch(&batch) {
                Ok(results) => results,
                Err(e) => {
                    error!(shard = %self.shard, error = %e, ops = batch.len(), "shard commit failed");
                    batch.iter().map(|_| Err(StoreError::Database(e.to_string()))).collect()
                }
            };
            debug!(shard = %self.shard, ops = batch.len(), bytes, "committed batch");
            self.watchers.notify(
                batch.iter().zip(&results).filter(|(_, r)| r.is_ok()).flat_map(|(request, _)| request.op.accounts()),
            );
            for (request, result) in batch.drain(..).zip(results) {
                // The submitter may have gone (client disconnected); the op is durable regardless.
                let _ = request.reply.send(result);
            }
        }
    }

    /// Applies `batch` in one transaction and appends the applied ops to the log. On an error
    /// nothing of the batch is committed.
    fn commit_batch(&mut self, batch: &[WriteRequest]) -> rusqlite::Result<Vec<Result<Outcome, StoreError>>> {
        let fsync = self.limits.fsync_flag_changes || batch.iter().any(|request| !is_flag_change(&request.op));
        self.set_synchronous_full(fsync)?;
        let known_log_bytes = self.log_bytes.take();
        run(&self.conn, "BEGIN IMMEDIATE")?;
        let done = self.apply_batch(batch, known_log_bytes).and_then(|done| run(&self.conn, "COMMIT").map(|()| done));
        match done {
            Ok((results, log_bytes)) => {
                self.log_bytes = Some(log_bytes);
                Ok(results)
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = run(&self.conn, "ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// The body of [`Writer::commit_batch`]'s transaction: each op in a savepoint of its own,
    /// then the log pruned; the results and the octets the log then stands for.
    fn apply_batch(
        &self,
        batch: &[WriteRequest],
        known_log_bytes: Option<u64>,
    ) -> rusqlite::Result<(Vec<Result<Outcome, StoreError>>, u64)> {
        let conn = &self.conn;
        // Read inside the write lock: another process (the account CLI) may have appended meanwhile.
        let mut seq: i64 =
            conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM oplog")?.query_row([], |r| r.get(0))?;
        let mut log_bytes = match known_log_bytes {
            Some(bytes) => bytes,
            None => conn
                .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM oplog")?
                .query_row([], |r| r.get::<_, i64>(0))? as u64,
        };
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            run(conn, "SAVEPOINT op")?;
            match apply(conn, &request.op) {
                Ok(Applied { outcome, blob }) => {
                    seq += 1;
                    log_bytes += append_log(conn, seq, &request.op, blob)?;
                    run(conn, "RELEASE op")?;
                    results.push(Ok(outcome));
                }
                Err(ApplyError::Refused(e)) => {
                    run(conn, "ROLLBACK TO op")?;
                    run(conn, "RELEASE op")?;
                    results.push(Err(e));
                }
                Err(ApplyError::Sql(e)) => {
                    // A database error in one op (a value out of range, say) fails that op
                    // alone; if the transaction itself is gone (I/O error, disk full), the
                    // whole batch fails.
                    if run(conn, "ROLLBACK TO op").is_err() || conn.is_autocommit() {
                        return Err(e);
                    }
                    run(conn, "RELEASE op")?;
                    warn!(shard = %self.shard, op = request.op.kind(), error = %e, "op failed; the rest of its batch goes on");
                    results.push(Err(StoreError::Database(e.to_string())));
                }
            }
        }
        prune_log(conn, seq, &self.limits, &mut log_bytes)?;
        Ok((results, log_bytes))
    }

    /// Sets `synchronous` to `FULL` (fsync at commit) or `NORMAL` (none) for the next
    /// transaction, when it is not so already; only between transactions.
    fn set_synchronous_full(&mut self, full: bool) -> rusqlite::Result<()> {
        if self.synchronous_full != full {
            self.conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?;
            self.synchronous_full = full;
        }
        Ok(())
    }
}

/// Runs one statement without results (BEGIN, SAVEPOINT, RELEASE, COMMIT…) from the connection's
/// statement cache: a batch under a steady trickle of ops is often one op, and parsing these again
/// for every batch (as `rusqlite::Transaction` and `Savepoint` do) showed in profiles.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Ops that only change message flags: they may commit without fsync.
fn is_flag_change(op: &Op) -> bool {
    matches!(op, Op::SetFlags { .. })
}

/// Appends `op` as log entry `seq`; returns the octets it stands for. A delivery's or append's
/// message octets are not copied into the log: the entry references the blob the op stored, which
/// keeps it alive (one more reference) for as long as the entry is retained.
fn append_log(conn: &Connection, seq: i64, op: &Op, blob: Option<i64>) -> rusqlite::Result<u64> {
    let (encoded, blob_bytes) = match (op.without_message(), blob) {
        (Some((bare, message_len)), Some(_)) => (encode(&bare)?, message_len),
        _ => (encode(op)?, 0),
    };
    let size = (encoded.len() + blob_bytes) as u64;
    conn.prepare_cached("INSERT INTO oplog (seq, epoch, op, blob_id, size) VALUES (?1, 0, ?2, ?3, ?4)")?
        .execute(params![seq, encoded, blob, size as i64])?;
    if let Some(blob) = blob {
        conn.prepare_cached("UPDATE blobs SET refs = refs + 1 WHERE id = ?1")?.execute(params![blob])?;
    }
    Ok(size)
}

fn encode(op: &Op) -> rusqlite::Result<Vec<u8>> {
    postcard::to_allocvec(op)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e.to_string()))))
}

/// Drops the oldest log entries beyond `log_retain_ops` entries or `log_retain_bytes` octets (the
/// newest entry always stays), releasing the blobs they referenced.
fn prune_log(conn: &Connection, last_seq: i64, limits: &WriterLimits, log_bytes: &mut u64) -> rusqlite::Result<()> {
    let release = |rows: Vec<(Option<i64>, i64)>, log_bytes: &mut u64| -> rusqlite::Result<()> {
        for &(blob, size) in &rows {
            *log_bytes = log_bytes.saturating_sub(size as u64);
            if let Some(blob) = blob {
                unref_blob(conn, blob)?;
            }
        }
        Ok(())
    };
    // At least the newest entry stays: sequence numbers continue from it.
    let keep_from = last_seq - limits.log_retain_ops.clamp(1, i64::MAX as u64) as i64;
    if keep_from > 0 {
        let rows = conn
            .prepare_cached("DELETE FROM oplog WHERE seq <= ?1 RETURNING blob_id, size")?
            .query_map(params![keep_from], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        release(rows, log_bytes)?;
    }
    while *log_bytes > limits.log_retain_bytes {
        // The oldest entries, up to the first at which enough octets would be gone.
        let mut excess = *log_bytes - limits.log_retain_bytes;
        let mut cutoff = None;
        let mut oldest = conn.prepare_cached("SELECT seq, size FROM oplog WHERE seq < ?1 ORDER BY seq LIMIT 256")?;
        let mut rows = oldest.query(params![last_seq])?;
        while let Some(row) = rows.next()? {
            cutoff = Some(row.get::<_, i64>(0)?);
            let size = row.get::<_, i64>(1)? as u64;
            if size >= excess {
                break;
            }
            excess -= size;
        }
        let Some(cutoff) = cutoff else { break };
        let rows = conn
            .prepare_cached("DELETE FROM oplog WHERE seq <= ?1 RETURNING blob_id, size")?
            .query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        release(rows, log_bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tidings_core::{Address, FlagChange, Flags, INBOX, SystemFlag};

    use super::*;

    fn request(op: Op) -> (WriteRequest, oneshot::Receiver<Result<Outcome, StoreError>>) {
        let (reply, rx) = oneshot::channel();
        (WriteRequest { op, reply }, rx)
    }

    /// A writer on a new shard database with one account, `ta@example.org`.
    fn writer(name: &str, fsync_flag_changes: bool) -> Writer {
        let dir = std::env::temp_dir().join(format!("tidings-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = super::super::schema::open(&dir.join("0000.db"), 1000).unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let limits = WriterLimits {
            batch_ops_max: 16,
            batch_bytes_max: 1 << 20,
            log_retain_ops: 100,
            log_retain_bytes: 1 << 20,
            fsync_flag_changes,
        };
        let mut writer = Writer::new(ShardId(0), conn, limits, Arc::new(Watchers::default()));
        let create = Op::CreateAccount { address: ta(), password_hash: String::new(), created_at: 1, uidvalidity: 7 };
        let (create, _) = request(create);
        assert!(writer.commit_batch(&[create]).unwrap()[0].is_ok());
        writer
    }

    fn ta() -> Address {
        "ta@example.org".parse().unwrap()
    }

    fn deliver() -> Op {
        Op::Deliver {
            recipients: vec![ta()],
            mailbox: INBOX.into(),
            internal_date: 1,
            message: Bytes::from_static(b"Subject: x\r\n\r\nx\r\n"),
        }
    }

    fn flag() -> Op {
        let mut flags = Flags::new();
        flags.set(SystemFlag::Flagged, true);
        Op::SetFlags { address: ta(), mailbox: INBOX.into(), uids: vec![1], change: FlagChange::Add, flags }
    }

    /// The writer connection's `synchronous` level: 1 NORMAL, 2 FULL.
    fn synchronous(writer: &Writer) -> i64 {
        writer.conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap()
    }

    #[test]
    fn flag_changes_alone_commit_without_fsync_and_anything_else_with_it() {
        let mut writer = writer("relaxed", false);
        let (deliver1, _) = request(deliver());
        writer.commit_batch(&[deliver1]).unwrap();
        assert_eq!(synchronous(&writer), 2);
        let (flag1, _) = request(flag());
        assert!(writer.commit_batch(&[flag1]).unwrap()[0].is_ok());
        assert_eq!(synchronous(&writer), 1);
        // A batch with a delivery in it waits for fsync, flag changes and all.
        let (flag2, _) = request(flag());
        let (deliver2, _) = request(deliver());
        assert!(writer.commit_batch(&[flag2, deliver2]).unwrap().iter().all(Result::is_ok));
        assert_eq!(synchronous(&writer), 2);
        let flags: u8 = writer.conn.query_row("SELECT flags FROM messages WHERE uid = 1", [], |r| r.get(0)).unwrap();
        assert_ne!(flags & SystemFlag::Flagged.bit(), 0, "\\Flagged is set");
    }

    #[test]
    fn with_fsync_flag_changes_every_commit_waits() {
        let mut writer = writer("strict", true);
        let (deliver1, _) = request(deliver());
        let (flag1, _) = request(flag());
        writer.commit_batch(&[deliver1]).unwrap();
        writer.commit_batch(&[flag1]).unwrap();
        assert_eq!(synchronous(&writer), 2);
    }
}
