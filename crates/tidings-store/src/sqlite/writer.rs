//! A shard's single writer: applies ops in batches, one transaction and one fsync per batch.
//!
//! The writer is an OS thread (SQLite calls block). It waits for the first op, then takes every op
//! already queued behind it, up to the batch bounds, and commits them together: under load the
//! batch grows by itself, so durable throughput follows concurrency instead of the disk's fsync rate.
//! Each op runs inside a savepoint, so one failing op (an address already taken) does not undo the
//! others of its batch.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, warn};

use tidings_core::{Address, Op, Outcome, STANDARD_MAILBOXES, ShardId};

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
}

/// The writer's state between batches.
pub(crate) struct Writer {
    shard: ShardId,
    conn: Connection,
    limits: WriterLimits,
    /// Octets the retained log stands for (its `size` column summed); `None` when unknown, after a
    /// failed commit or at start, and then read from the database.
    log_bytes: Option<u64>,
}

impl Writer {
    pub(crate) fn new(shard: ShardId, conn: Connection, limits: WriterLimits) -> Writer {
        Writer { shard, conn, limits, log_bytes: None }
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
            for (request, result) in batch.drain(..).zip(results) {
                // The submitter may have gone (client disconnected); the op is durable regardless.
                let _ = request.reply.send(result);
            }
        }
    }

    /// Applies `batch` in one transaction and appends the applied ops to the log. On an error
    /// nothing of the batch is committed.
    fn commit_batch(&mut self, batch: &[WriteRequest]) -> rusqlite::Result<Vec<Result<Outcome, StoreError>>> {
        let known_log_bytes = self.log_bytes.take();
        let mut tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write lock: another process (the account CLI) may have appended meanwhile.
        let mut seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM oplog", [], |r| r.get(0))?;
        let mut log_bytes = match known_log_bytes {
            Some(bytes) => bytes,
            None => tx.query_row("SELECT COALESCE(SUM(size), 0) FROM oplog", [], |r| r.get::<_, i64>(0))? as u64,
        };
        let mut results = Vec::with_capacity(batch.len());
        for request in batch {
            let sp = tx.savepoint()?;
            match apply(&sp, &request.op) {
                Ok(Applied { outcome, blob }) => {
                    seq += 1;
                    log_bytes += append_log(&sp, seq, &request.op, blob)?;
                    sp.commit()?;
                    results.push(Ok(outcome));
                }
                Err(ApplyError::Refused(e)) => {
                    drop(sp); // rolls the savepoint back
                    results.push(Err(e));
                }
                Err(ApplyError::Sql(e)) => {
                    // A database error in one op (a value out of range, say) fails that op
                    // alone; if the transaction itself is gone (I/O error, disk full), the
                    // whole batch fails.
                    let mut sp = sp;
                    if sp.rollback().is_err() || sp.is_autocommit() {
                        return Err(e);
                    }
                    warn!(shard = %self.shard, op = request.op.kind(), error = %e, "op failed; the rest of its batch goes on");
                    results.push(Err(StoreError::Database(e.to_string())));
                }
            }
        }
        prune_log(&tx, seq, &self.limits, &mut log_bytes)?;
        tx.commit()?;
        self.log_bytes = Some(log_bytes);
        Ok(results)
    }
}

/// Appends `op` as log entry `seq`; returns the octets it stands for. A delivery's message octets
/// are not copied into the log: the entry references the blob the delivery stored, which keeps it
/// alive (one more reference) for as long as the entry is retained.
fn append_log(conn: &Connection, seq: i64, op: &Op, blob: Option<i64>) -> rusqlite::Result<u64> {
    let (encoded, blob_bytes) = match op {
        Op::Deliver { recipients, mailbox, internal_date, message } => {
            let bare = Op::Deliver {
                recipients: recipients.clone(),
                mailbox: mailbox.clone(),
                internal_date: *internal_date,
                message: bytes::Bytes::new(),
            };
            (encode(&bare)?, if blob.is_some() { message.len() } else { 0 })
        }
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

/// Drops one reference to a blob, deleting it with the last.
fn unref_blob(conn: &Connection, blob: i64) -> rusqlite::Result<()> {
    let refs: i64 = conn
        .prepare_cached("UPDATE blobs SET refs = refs - 1 WHERE id = ?1 RETURNING refs")?
        .query_row(params![blob], |r| r.get(0))?;
    if refs <= 0 {
        conn.prepare_cached("DELETE FROM blobs WHERE id = ?1")?.execute(params![blob])?;
    }
    Ok(())
}

/// What applying an op did: its outcome, and the blob it stored (a delivery), for the log entry.
struct Applied {
    outcome: Outcome,
    blob: Option<i64>,
}

impl From<Outcome> for Applied {
    fn from(outcome: Outcome) -> Self {
        Applied { outcome, blob: None }
    }
}

/// An op either is refused (the state does not allow it; nothing changes) or hits a database error
/// (which fails the whole batch).
enum ApplyError {
    Refused(StoreError),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Sql(e)
    }
}

/// Applies one op to the state tables. Deterministic: the same op on the same state gives the same
/// result on every replica.
fn apply(tx: &Connection, op: &Op) -> Result<Applied, ApplyError> {
    match op {
        Op::CreateAccount { address, password_hash, created_at, uidvalidity } => {
            if account_id(tx, address)?.is_some() {
                return Err(ApplyError::Refused(StoreError::AccountExists(address.clone())));
            }
            tx.prepare_cached(
                "INSERT INTO accounts (address, local_part, domain, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![address.to_string(), address.local_part(), address.domain(), password_hash, created_at])?;
            let id = tx.last_insert_rowid();
            let mut insert = tx.prepare_cached(
                "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, special_use) VALUES (?1, ?2, ?3, 1, ?4)",
            )?;
            for (name, special_use) in STANDARD_MAILBOXES {
                insert.execute(params![id, name, uidvalidity, special_use])?;
            }
            Ok(Outcome::Done.into())
        }
        Op::SetPassword { address, password_hash } => {
            let changed = tx
                .prepare_cached("UPDATE accounts SET password_hash = ?1 WHERE address = ?2")?
                .execute(params![password_hash, address.to_string()])?;
            if changed == 0 {
                return Err(ApplyError::Refused(StoreError::NoSuchAccount(address.clone())));
            }
            Ok(Outcome::Done.into())
        }
        Op::DeleteAccount { address } => {
            let id = account_id(tx, address)?
                .ok_or_else(|| ApplyError::Refused(StoreError::NoSuchAccount(address.clone())))?;
            tx.prepare_cached(
                "UPDATE blobs SET refs = refs - (SELECT COUNT(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id
                 WHERE m.blob_id = blobs.id AND b.account_id = ?1)
                 WHERE id IN (SELECT m.blob_id FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = ?1)",
            )?
            .execute(params![id])?;
            tx.prepare_cached(
                "DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
            )?
            .execute(params![id])?;
            tx.prepare_cached("DELETE FROM blobs WHERE refs <= 0")?.execute([])?;
            tx.prepare_cached("DELETE FROM mailboxes WHERE account_id = ?1")?.execute(params![id])?;
            tx.prepare_cached("DELETE FROM accounts WHERE id = ?1")?.execute(params![id])?;
            Ok(Outcome::Done.into())
        }
        Op::Deliver { recipients, mailbox, internal_date, message } => {
            let mut targets = Vec::with_capacity(recipients.len());
            for rcpt in recipients {
                if let Some(found) = mailbox_of(tx, rcpt, mailbox)? {
                    targets.push((rcpt, found));
                }
            }
            if targets.is_empty() {
                return Ok(Outcome::Delivered(Vec::new()).into());
            }
            tx.prepare_cached("INSERT INTO blobs (refs, data) VALUES (?1, ?2)")?
                .execute(params![targets.len() as i64, &message[..]])?;
            let blob_id = tx.last_insert_rowid();
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (mailbox_id, uid, blob_id, size, internal_date) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut bump = tx.prepare_cached("UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ?1")?;
            let mut delivered = Vec::with_capacity(targets.len());
            for (rcpt, (mailbox_id, uid)) in targets {
                insert.execute(params![mailbox_id, uid, blob_id, message.len() as i64, internal_date])?;
                bump.execute(params![mailbox_id])?;
                delivered.push((rcpt.clone(), uid));
            }
            Ok(Applied { outcome: Outcome::Delivered(delivered), blob: Some(blob_id) })
        }
        Op::Expunge { address, mailbox, uids } => {
            let (mailbox_id, _) = mailbox_of(tx, address, mailbox)?.ok_or_else(|| {
                ApplyError::Refused(if account_id(tx, address).ok().flatten().is_none() {
                    StoreError::NoSuchAccount(address.clone())
                } else {
                    StoreError::NoSuchMailbox(mailbox.clone())
                })
            })?;
            let mut remove =
                tx.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING blob_id")?;
            let mut count = 0u32;
            for uid in uids {
                let blob: Option<i64> = remove.query_row(params![mailbox_id, uid], |r| r.get(0)).optional()?;
                if let Some(blob) = blob {
                    count += 1;
                    unref_blob(tx, blob)?;
                }
            }
            Ok(Outcome::Expunged(count).into())
        }
    }
}

fn account_id(tx: &Connection, address: &Address) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM accounts WHERE address = ?1")?
        .query_row(params![address.to_string()], |r| r.get(0))
        .optional()
}

/// The mailbox id and its next UID, for `address`'s mailbox `name`.
fn mailbox_of(tx: &Connection, address: &Address, name: &str) -> rusqlite::Result<Option<(i64, u32)>> {
    tx.prepare_cached(
        "SELECT b.id, b.uidnext FROM mailboxes b JOIN accounts a ON b.account_id = a.id WHERE a.address = ?1 AND b.name = ?2",
    )?
    .query_row(params![address.to_string(), name], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}
