//! Applying one op to a shard's state tables.
//!
//! Deterministic: the same op on the same state gives the same result on every replica, so an op
//! carries every value that is not a function of the state (times, UIDVALIDITY). Each op runs in
//! its own savepoint ([`super::writer`]); a refused op changes nothing.

use rusqlite::{Connection, OptionalExtension, params};

use tidings_core::{
    Address, Flags, INBOX, MessageMeta, Op, Outcome, STANDARD_MAILBOXES, canonical_mailbox_name, superior_names,
};

use crate::StoreError;

/// What applying an op did: its outcome, and the blob it stored (a delivery or append), which
/// the op's log entry references.
pub(super) struct Applied {
    pub outcome: Outcome,
    pub blob: Option<i64>,
}

impl From<Outcome> for Applied {
    fn from(outcome: Outcome) -> Self {
        Applied { outcome, blob: None }
    }
}

/// An op either is refused (the state does not allow it; nothing changes) or hits a database error.
pub(super) enum ApplyError {
    Refused(StoreError),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Sql(e)
    }
}

pub(super) fn refused<T>(e: StoreError) -> Result<T, ApplyError> {
    Err(ApplyError::Refused(e))
}

/// Applies one op.
pub(super) fn apply(tx: &Connection, op: &Op) -> Result<Applied, ApplyError> {
    match op {
        Op::CreateAccount { address, password_hash, created_at, uidvalidity } => {
            if account_id(tx, address)?.is_some() {
                return refused(StoreError::AccountExists(address.clone()));
            }
            tx.prepare_cached(
                "INSERT INTO accounts (address, local_part, domain, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![address.to_string(), address.local_part(), address.domain(), password_hash, created_at])?;
            let account = tx.last_insert_rowid();
            for (name, special_use) in STANDARD_MAILBOXES {
                insert_mailbox(tx, account, name, *uidvalidity, special_use)?;
                subscribe(tx, account, name, true)?;
            }
            Ok(Outcome::Done.into())
        }
        Op::SetPassword { address, password_hash } => {
            let changed = tx
                .prepare_cached("UPDATE accounts SET password_hash = ?1 WHERE address = ?2")?
                .execute(params![password_hash, address.to_string()])?;
            if changed == 0 {
                return refused(StoreError::NoSuchAccount(address.clone()));
            }
            Ok(Outcome::Done.into())
        }
        Op::SetRecoveryAddress { address, recovery } => {
            let changed = tx
                .prepare_cached("UPDATE accounts SET recovery = ?1 WHERE address = ?2")?
                .execute(params![recovery.as_ref().map(Address::to_string), address.to_string()])?;
            if changed == 0 {
                return refused(StoreError::NoSuchAccount(address.clone()));
            }
            Ok(Outcome::Done.into())
        }
        Op::DeleteAccount { address } => {
            let account = require_account(tx, address)?;
            tx.prepare_cached(
                "UPDATE blobs SET refs = refs - (SELECT COUNT(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id
                 WHERE m.blob_id = blobs.id AND b.account_id = ?1)
                 WHERE id IN (SELECT m.blob_id FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = ?1)",
            )?
            .execute(params![account])?;
            tx.prepare_cached(
                "DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
            )?
            .execute(params![account])?;
            tx.prepare_cached("DELETE FROM blobs WHERE refs <= 0")?.execute([])?;
            tx.prepare_cached("DELETE FROM mailboxes WHERE account_id = ?1")?.execute(params![account])?;
            tx.prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1")?.execute(params![account])?;
            tx.prepare_cached("DELETE FROM room_members WHERE account_id = ?1")?.execute(params![account])?;
            tx.prepare_cached("DELETE FROM accounts WHERE id = ?1")?.execute(params![account])?;
            Ok(Outcome::Done.into())
        }
        Op::Deliver { recipients, mailbox, internal_date, message } => {
            let mut targets = Vec::with_capacity(recipients.len());
            for rcpt in recipients {
                let target = match account_id(tx, rcpt)? {
                    Some(account) => mailbox_row(tx, account, mailbox)?,
                    None => None,
                };
                if let Some(target) = target {
                    targets.push((rcpt, target));
                }
            }
            if targets.is_empty() {
                return Ok(Outcome::Delivered(Vec::new()).into());
            }
            let blob = insert_blob(tx, targets.len(), message)?;
            let mut delivered = Vec::with_capacity(targets.len());
            for (rcpt, target) in targets {
                let modseq = bump_modseq(tx, target.id)?;
                let row = NewMessage { blob, size: message.len(), internal_date: *internal_date, modseq };
                let uid = insert_message(tx, &target, &row, &Flags::new())?;
                delivered.push((rcpt.clone(), uid));
            }
            Ok(Applied { outcome: Outcome::Delivered(delivered), blob: Some(blob) })
        }
        Op::CreateMailbox { address, name, uidvalidity } => {
            let account = require_account(tx, address)?;
            let name = valid_name(name)?;
            if mailbox_row(tx, account, &name)?.is_some() {
                return refused(StoreError::MailboxExists(name));
            }
            create_with_superiors(tx, account, &name, *uidvalidity)?;
            Ok(Outcome::Done.into())
        }
        Op::DeleteMailbox { address, name } => {
            let account = require_account(tx, address)?;
            let name = valid_name(name)?;
            if name == INBOX {
                return refused(StoreError::Forbidden("INBOX cannot be deleted".into()));
            }
            let target = require_mailbox(tx, account, &name)?;
            if has_inferiors(tx, account, &name)? {
                return refused(StoreError::HasChildren(name));
            }
            let blobs = tx
                .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 RETURNING blob_id")?
                .query_map(params![target.id], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for blob in blobs {
                unref_blob(tx, blob)?;
            }
            tx.prepare_cached("DELETE FROM mailboxes WHERE id = ?1")?.execute(params![target.id])?;
            Ok(Outcome::Done.into())
        }
        Op::RenameMailbox { address, from, to, uidvalidity } => {
            let account = require_account(tx, address)?;
            let (from, to) = (valid_name(from)?, valid_name(to)?);
            let source = require_mailbox(tx, account, &from)?;
            if mailbox_row(tx, account, &to)?.is_some() {
                return refused(StoreError::MailboxExists(to));
            }
            if to.starts_with(&format!("{from}/")) {
                return refused(StoreError::InvalidMailboxName(format!("{to:?} is inside {from:?}")));
            }
            for superior in superior_names(&to) {
                if mailbox_row(tx, account, superior)?.is_none() {
                    insert_mailbox(tx, account, superior, *uidvalidity, None)?;
                }
            }
            if from == INBOX {
                // RFC 9051 §6.3.6: INBOX's messages move to the new mailbox, INBOX stays (empty,
                // its UIDs never reused) and its inferiors stay where they are.
                let new = insert_mailbox(tx, account, &to, *uidvalidity, None)?;
                tx.prepare_cached("UPDATE mailboxes SET uidnext = ?1, highest_modseq = ?2 WHERE id = ?3")?
                    .execute(params![source.uidnext, source.highest_modseq, new])?;
                tx.prepare_cached("UPDATE messages SET mailbox_id = ?1 WHERE mailbox_id = ?2")?
                    .execute(params![new, source.id])?;
                bump_modseq(tx, source.id)?;
            } else {
                // The moved mailboxes keep their UIDs but take new UIDVALIDITY values: a name
                // must never show a smaller one than it had, nor an old one with other contents
                // (RFC 9051 §2.3.1.1), and the names they move to may have had greater ones.
                let moved = tx
                    .prepare_cached(
                        "SELECT id FROM mailboxes WHERE account_id = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')
                         ORDER BY name",
                    )?
                    .query_map(params![account, from], |r| r.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for id in moved {
                    let uidvalidity = next_uidvalidity(tx, account, *uidvalidity)?;
                    tx.prepare_cached("UPDATE mailboxes SET uidvalidity = ?1 WHERE id = ?2")?
                        .execute(params![uidvalidity, id])?;
                }
                tx.prepare_cached(
                    "UPDATE mailboxes SET name = ?1 || substr(name, length(?2) + 1)
                     WHERE account_id = ?3 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
                )?
                .execute(params![to, from, account])?;
                tx.prepare_cached(
                    "UPDATE OR REPLACE subscriptions SET name = ?1 || substr(name, length(?2) + 1)
                     WHERE account_id = ?3 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
                )?
                .execute(params![to, from, account])?;
            }
            Ok(Outcome::Done.into())
        }
        Op::SetSubscription { address, name, subscribed } => {
            let account = require_account(tx, address)?;
            subscribe(tx, account, &valid_name(name)?, *subscribed)?;
            Ok(Outcome::Done.into())
        }
        Op::Append { address, mailbox, flags, internal_date, message } => {
            let account = require_account(tx, address)?;
            let target = require_mailbox(tx, account, mailbox)?;
            let blob = insert_blob(tx, 1, message)?;
            let modseq = bump_modseq(tx, target.id)?;
            let row = NewMessage { blob, size: message.len(), internal_date: *internal_date, modseq };
            let uid = insert_message(tx, &target, &row, flags)?;
            Ok(Applied { outcome: Outcome::Appended { uidvalidity: target.uidvalidity, uid }, blob: Some(blob) })
        }
        Op::SetFlags { address, mailbox, uids, change, flags } => {
            let account = require_account(tx, address)?;
            let target = require_mailbox(tx, account, mailbox)?;
            let mut read = tx.prepare_cached(
                "SELECT flags, keywords, modseq, size, internal_date FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
            )?;
            let mut write = tx.prepare_cached(
                "UPDATE messages SET flags = ?1, keywords = ?2, modseq = ?3 WHERE mailbox_id = ?4 AND uid = ?5",
            )?;
            let mut modseq = None;
            let mut result = Vec::new();
            for uid in sorted_unique(uids) {
                let Some((bits, keywords, old_modseq, size, internal_date)) = read
                    .query_row(params![target.id, uid], |r| {
                        Ok((
                            r.get::<_, u8>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get(4)?,
                        ))
                    })
                    .optional()?
                else {
                    continue;
                };
                let before = Flags::from_stored(bits, &keywords);
                let mut after = before.clone();
                after.apply(*change, flags);
                let message_modseq = if after == before {
                    old_modseq as u64
                } else {
                    let m = match modseq {
                        Some(m) => m,
                        None => *modseq.insert(bump_modseq(tx, target.id)?),
                    };
                    write.execute(params![after.system_bits(), after.keywords_text(), m as i64, target.id, uid])?;
                    m
                };
                result.push(MessageMeta {
                    uid,
                    flags: after,
                    modseq: message_modseq,
                    size: size as u64,
                    internal_date,
                });
            }
            Ok(Outcome::FlagsSet(result).into())
        }
        Op::Copy { address, from, to, uids, remove } => {
            let account = require_account(tx, address)?;
            let source = require_mailbox(tx, account, from)?;
            let target = require_mailbox(tx, account, to)?;
            let mut read = tx.prepare_cached(
                "SELECT blob_id, size, internal_date, flags, keywords FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
            )?;
            let mut pairs = Vec::new();
            let mut target_modseq = None;
            for uid in sorted_unique(uids) {
                let Some((blob, size, internal_date, bits, keywords)) = read
                    .query_row(params![source.id, uid], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get(2)?,
                            r.get::<_, u8>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    })
                    .optional()?
                else {
                    continue;
                };
                let modseq = match target_modseq {
                    Some(m) => m,
                    None => *target_modseq.insert(bump_modseq(tx, target.id)?),
                };
                let row = NewMessage { blob, size: size as usize, internal_date, modseq };
                // The target's UID counter moves on with every insert, so re-read it.
                let target = require_mailbox(tx, account, to)?;
                let new_uid = insert_message(tx, &target, &row, &Flags::from_stored(bits, &keywords))?;
                if *remove {
                    tx.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?
                        .execute(params![source.id, uid])?;
                } else {
                    tx.prepare_cached("UPDATE blobs SET refs = refs + 1 WHERE id = ?1")?.execute(params![blob])?;
                }
                pairs.push((uid, new_uid));
            }
            if *remove && !pairs.is_empty() {
                bump_modseq(tx, source.id)?;
            }
            Ok(Outcome::Copied { uidvalidity: target.uidvalidity, pairs }.into())
        }
        Op::Expunge { address, mailbox, uids } => {
            let account = require_account(tx, address)?;
            let target = require_mailbox(tx, account, mailbox)?;
            let mut remove =
                tx.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING blob_id")?;
            let mut removed = Vec::new();
            for uid in sorted_unique(uids) {
                let blob: Option<i64> = remove.query_row(params![target.id, uid], |r| r.get(0)).optional()?;
                if let Some(blob) = blob {
                    removed.push(uid);
                    unref_blob(tx, blob)?;
                }
            }
            if !removed.is_empty() {
                bump_modseq(tx, target.id)?;
            }
            Ok(Outcome::Expunged(removed).into())
        }
        Op::CreateRoom { .. }
        | Op::SetTopic { .. }
        | Op::SetRoomModes { .. }
        | Op::Post { .. }
        | Op::SetPresence { .. }
        | Op::SetRoomMembership { .. } => super::chat::apply(tx, op),
    }
}

/// A mailbox row.
struct MailboxRow {
    id: i64,
    uidvalidity: u32,
    uidnext: u32,
    highest_modseq: i64,
}

/// A message row about to be inserted.
struct NewMessage {
    blob: i64,
    size: usize,
    internal_date: i64,
    modseq: u64,
}

fn sorted_unique(uids: &[u32]) -> Vec<u32> {
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    uids
}

fn valid_name(name: &str) -> Result<String, ApplyError> {
    canonical_mailbox_name(name).or_else(|e| refused(StoreError::InvalidMailboxName(e.to_string())))
}

pub(super) fn account_id(tx: &Connection, address: &Address) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM accounts WHERE address = ?1")?
        .query_row(params![address.to_string()], |r| r.get(0))
        .optional()
}

pub(super) fn require_account(tx: &Connection, address: &Address) -> Result<i64, ApplyError> {
    account_id(tx, address)?.map_or_else(|| refused(StoreError::NoSuchAccount(address.clone())), Ok)
}

fn mailbox_row(tx: &Connection, account: i64, name: &str) -> rusqlite::Result<Option<MailboxRow>> {
    tx.prepare_cached(
        "SELECT id, uidvalidity, uidnext, highest_modseq FROM mailboxes WHERE account_id = ?1 AND name = ?2",
    )?
    .query_row(params![account, name], |r| {
        Ok(MailboxRow { id: r.get(0)?, uidvalidity: r.get(1)?, uidnext: r.get(2)?, highest_modseq: r.get(3)? })
    })
    .optional()
}

fn require_mailbox(tx: &Connection, account: i64, name: &str) -> Result<MailboxRow, ApplyError> {
    let name = valid_name(name)?;
    mailbox_row(tx, account, &name)?.map_or_else(|| refused(StoreError::NoSuchMailbox(name)), Ok)
}

/// A UIDVALIDITY above every one the account has had and at least `base`.
fn next_uidvalidity(tx: &Connection, account: i64, base: u32) -> rusqlite::Result<u32> {
    tx.prepare_cached(
        "UPDATE accounts SET last_uidvalidity = MAX(last_uidvalidity + 1, ?2) WHERE id = ?1 RETURNING last_uidvalidity",
    )?
    .query_row(params![account, base], |r| r.get(0))
}

/// Inserts a mailbox with a UIDVALIDITY above every one the account has had and at least
/// `uidvalidity_base`.
fn insert_mailbox(
    tx: &Connection,
    account: i64,
    name: &str,
    uidvalidity_base: u32,
    special_use: Option<&str>,
) -> rusqlite::Result<i64> {
    let uidvalidity = next_uidvalidity(tx, account, uidvalidity_base)?;
    tx.prepare_cached(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, special_use) VALUES (?1, ?2, ?3, 1, ?4)",
    )?
    .execute(params![account, name, uidvalidity, special_use])?;
    Ok(tx.last_insert_rowid())
}

fn create_with_superiors(tx: &Connection, account: i64, name: &str, uidvalidity: u32) -> rusqlite::Result<()> {
    for superior in superior_names(name) {
        if mailbox_row(tx, account, superior)?.is_none() {
            insert_mailbox(tx, account, superior, uidvalidity, None)?;
        }
    }
    insert_mailbox(tx, account, name, uidvalidity, None)?;
    Ok(())
}

fn has_inferiors(tx: &Connection, account: i64, name: &str) -> rusqlite::Result<bool> {
    let found: Option<i64> = tx
        .prepare_cached(
            "SELECT 1 FROM mailboxes WHERE account_id = ?1 AND substr(name, 1, length(?2) + 1) = ?2 || '/' LIMIT 1",
        )?
        .query_row(params![account, name], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

fn subscribe(tx: &Connection, account: i64, name: &str, on: bool) -> rusqlite::Result<()> {
    let sql = if on {
        "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)"
    } else {
        "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2"
    };
    tx.prepare_cached(sql)?.execute(params![account, name])?;
    Ok(())
}

/// Advances the mailbox's modification sequence; returns the new value.
fn bump_modseq(tx: &Connection, mailbox: i64) -> rusqlite::Result<u64> {
    tx.prepare_cached(
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?1 RETURNING highest_modseq",
    )?
    .query_row(params![mailbox], |r| r.get::<_, i64>(0))
    .map(|m| m as u64)
}

fn insert_blob(tx: &Connection, refs: usize, data: &[u8]) -> rusqlite::Result<i64> {
    tx.prepare_cached("INSERT INTO blobs (refs, data) VALUES (?1, ?2)")?.execute(params![refs as i64, data])?;
    Ok(tx.last_insert_rowid())
}

/// Inserts a message with the mailbox's next UID and advances it; returns the UID.
fn insert_message(tx: &Connection, mailbox: &MailboxRow, row: &NewMessage, flags: &Flags) -> rusqlite::Result<u32> {
    let uid: u32 = tx
        .prepare_cached("UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ?1 RETURNING uidnext - 1")?
        .query_row(params![mailbox.id], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO messages (mailbox_id, uid, blob_id, size, internal_date, flags, keywords, modseq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        mailbox.id,
        uid,
        row.blob,
        row.size as i64,
        row.internal_date,
        flags.system_bits(),
        flags.keywords_text(),
        row.modseq as i64
    ])?;
    Ok(uid)
}

/// Drops one reference to a blob, deleting it with the last.
pub(super) fn unref_blob(conn: &Connection, blob: i64) -> rusqlite::Result<()> {
    let refs: i64 = conn
        .prepare_cached("UPDATE blobs SET refs = refs - 1 WHERE id = ?1 RETURNING refs")?
        .query_row(params![blob], |r| r.get(0))?;
    if refs <= 0 {
        conn.prepare_cached("DELETE FROM blobs WHERE id = ?1")?.execute(params![blob])?;
    }
    Ok(())
}
