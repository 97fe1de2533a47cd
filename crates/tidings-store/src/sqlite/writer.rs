//! A shard's single writer: applies ops in batches, one transaction and one fsync per batch.
//!
//! The writer is an OS thread (SQLite calls block). It waits for the first op, then takes every op
//! already queued behind it, up to the batch bounds, and commits them together: under load the
//! batch grows by itself, so durable throughput follows concurrency instead of the disk's fsync rate.
//! Each op runs inside a savepoint, so one failing op (an address already taken) does not undo the
//! others of its batch.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

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
}

/// Runs until every sender of `queue` is dropped, then returns (closing the connection).
pub(crate) fn run(shard: ShardId, mut conn: Connection, mut queue: mpsc::Receiver<WriteRequest>, limits: WriterLimits) {
    let mut batch: Vec<WriteRequest> = Vec::with_capacity(limits.batch_ops_max);
    while let Some(first) = queue.blocking_recv() {
        let mut bytes = first.op.weight_bytes();
        batch.push(first);
        while batch.len() < limits.batch_ops_max && bytes < limits.batch_bytes_max {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += next.op.weight_bytes();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let results = commit_batch(&mut conn, &batch, limits.log_retain_ops);
        debug!(%shard, ops = batch.len(), bytes, "committed batch");
        for (request, result) in batch.drain(..).zip(results) {
            // The submitter may have gone (client disconnected); the op is durable regardless.
            let _ = request.reply.send(result);
        }
    }
}

/// Applies `batch` in one transaction. On a commit failure every op of the batch fails.
fn commit_batch(
    conn: &mut Connection,
    batch: &[WriteRequest],
    log_retain_ops: u64,
) -> Vec<Result<Outcome, StoreError>> {
    match try_commit_batch(conn, batch, log_retain_ops) {
        Ok(results) => results,
        Err(e) => {
            error!(error = %e, ops = batch.len(), "shard commit failed");
            batch.iter().map(|_| Err(StoreError::Database(e.to_string()))).collect()
        }
    }
}

fn try_commit_batch(
    conn: &mut Connection,
    batch: &[WriteRequest],
    log_retain_ops: u64,
) -> rusqlite::Result<Vec<Result<Outcome, StoreError>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read inside the write lock: another process (the account CLI) may have appended meanwhile.
    let mut seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM oplog", [], |r| r.get(0))?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        let sp = tx.savepoint()?;
        match apply(&sp, &request.op) {
            Ok(outcome) => {
                seq += 1;
                let encoded = postcard::to_allocvec(&request.op).map_err(|e| {
                    rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e.to_string())))
                })?;
                sp.prepare_cached("INSERT INTO oplog (seq, epoch, op) VALUES (?1, 0, ?2)")?
                    .execute(params![seq, encoded])?;
                sp.commit()?;
                results.push(Ok(outcome));
            }
            Err(ApplyError::Refused(e)) => {
                drop(sp); // rolls the savepoint back
                results.push(Err(e));
            }
            Err(ApplyError::Sql(e)) => return Err(e),
        }
    }
    if seq as u64 > log_retain_ops {
        tx.prepare_cached("DELETE FROM oplog WHERE seq <= ?1")?.execute(params![seq - log_retain_ops as i64])?;
    }
    tx.set_drop_behavior(rusqlite::DropBehavior::Rollback);
    tx.commit()?;
    Ok(results)
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
fn apply(tx: &Connection, op: &Op) -> Result<Outcome, ApplyError> {
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
            Ok(Outcome::Done)
        }
        Op::SetPassword { address, password_hash } => {
            let changed = tx
                .prepare_cached("UPDATE accounts SET password_hash = ?1 WHERE address = ?2")?
                .execute(params![password_hash, address.to_string()])?;
            if changed == 0 {
                return Err(ApplyError::Refused(StoreError::NoSuchAccount(address.clone())));
            }
            Ok(Outcome::Done)
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
            Ok(Outcome::Done)
        }
        Op::Deliver { recipients, mailbox, internal_date, message } => {
            let mut targets = Vec::with_capacity(recipients.len());
            for rcpt in recipients {
                if let Some(found) = mailbox_of(tx, rcpt, mailbox)? {
                    targets.push((rcpt, found));
                }
            }
            if targets.is_empty() {
                return Ok(Outcome::Delivered(Vec::new()));
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
            Ok(Outcome::Delivered(delivered))
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
            let mut unref = tx.prepare_cached("UPDATE blobs SET refs = refs - 1 WHERE id = ?1 RETURNING refs")?;
            let mut drop_blob = tx.prepare_cached("DELETE FROM blobs WHERE id = ?1")?;
            let mut count = 0u32;
            for uid in uids {
                let blob: Option<i64> = remove.query_row(params![mailbox_id, uid], |r| r.get(0)).optional()?;
                if let Some(blob) = blob {
                    count += 1;
                    let refs: i64 = unref.query_row(params![blob], |r| r.get(0))?;
                    if refs <= 0 {
                        drop_blob.execute(params![blob])?;
                    }
                }
            }
            Ok(Outcome::Expunged(count))
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
