//! The shard database schema and its migrations (tracked by `PRAGMA user_version`).

use rusqlite::Connection;

/// Migrations in order; migration `i` brings `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    address       TEXT NOT NULL UNIQUE,
    local_part    TEXT NOT NULL,
    domain        TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX accounts_local_part ON accounts(local_part);
CREATE INDEX accounts_domain ON accounts(domain);

CREATE TABLE mailboxes (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext     INTEGER NOT NULL,
    special_use TEXT,
    subscribed  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
);

-- Message octets, stored once and shared by every copy (one delivery to several recipients of a
-- shard, later IMAP COPY); `refs` counts the messages rows and oplog entries that point here.
CREATE TABLE blobs (
    id   INTEGER PRIMARY KEY,
    refs INTEGER NOT NULL,
    data BLOB NOT NULL
);

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id),
    uid           INTEGER NOT NULL,
    blob_id       INTEGER NOT NULL REFERENCES blobs(id),
    size          INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    flags         INTEGER NOT NULL DEFAULT 0,
    keywords      TEXT NOT NULL DEFAULT '',
    UNIQUE (mailbox_id, uid)
);

-- The shard's op log: every applied op, in order, as a backup replays it. A delivery's entry holds
-- the op without its message octets and references the blob instead (`blob_id`, counted in the
-- blob's `refs`); `size` is the octets the entry stands for, op and blob, for retention by size.
CREATE TABLE oplog (
    seq     INTEGER PRIMARY KEY,
    epoch   INTEGER NOT NULL,
    op      BLOB NOT NULL,
    blob_id INTEGER REFERENCES blobs(id),
    size    INTEGER NOT NULL
);
"#,
    r#"
-- Modification sequences (RFC 7162): every mailbox counts its changes; every message records the
-- count at its last change, so a session can ask for what changed since it last looked.
ALTER TABLE mailboxes ADD COLUMN highest_modseq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN modseq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);

-- Subscriptions are names, not mailboxes: one may be subscribed to a name that does not exist
-- (RFC 9051 §6.3.7).
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);
INSERT INTO subscriptions (account_id, name) SELECT account_id, name FROM mailboxes WHERE subscribed = 1;
ALTER TABLE mailboxes DROP COLUMN subscribed;
"#,
    r#"
-- The highest UIDVALIDITY an account's mailboxes have had: every new mailbox gets a value above
-- it, so a name reused for other contents never shows an old UIDVALIDITY (RFC 9051 §2.3.1.1).
ALTER TABLE accounts ADD COLUMN last_uidvalidity INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET last_uidvalidity =
    (SELECT COALESCE(MAX(uidvalidity), 0) FROM mailboxes WHERE account_id = accounts.id);
"#,
    r#"
-- Chat. A room lives on the shard its name hashes to; its messages are numbered from 1 in
-- delivery order (last_seq is the newest). Modes are the RoomModes of tidings-core, as JSON.
CREATE TABLE rooms (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    topic       TEXT,
    topic_setter TEXT,
    topic_ms    INTEGER,
    modes       TEXT NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE chat_messages (
    room_id  INTEGER NOT NULL REFERENCES rooms(id),
    seq      INTEGER NOT NULL,
    msgid    TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    nick     TEXT NOT NULL,
    account  TEXT,
    via      TEXT NOT NULL,
    kind     TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX chat_messages_msgid ON chat_messages(msgid);
CREATE INDEX chat_messages_time ON chat_messages(room_id, at_ms);

-- An account's rooms (on the account's shard) and its presence.
CREATE TABLE room_members (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    room       TEXT NOT NULL,
    since_ms   INTEGER NOT NULL,
    PRIMARY KEY (account_id, room)
) WITHOUT ROWID;
ALTER TABLE accounts ADD COLUMN presence TEXT NOT NULL DEFAULT 'offline';
ALTER TABLE accounts ADD COLUMN presence_message TEXT;
ALTER TABLE accounts ADD COLUMN last_seen_ms INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- An account's recovery address: where password-reset codes are sent (NULL: none).
ALTER TABLE accounts ADD COLUMN recovery TEXT;
"#,
];

/// Prepared statements each connection keeps.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// Opens the shard database at `path` with the settings every connection uses: WAL journal,
/// `synchronous=FULL` (a commit is on disk when it returns), foreign keys, a busy timeout, and
/// the query planner stability guarantee.
pub(crate) fn open(path: &std::path::Path, busy_timeout_ms: u64) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_millis(busy_timeout_ms))?;
    // Without it, SQLite (built with STAT4) marks parameters compared with indexed columns so
    // that binding a new value prepares the statement again: every cached statement that looks
    // up an account or mailbox by name was parsed and planned anew whenever the name changed,
    // which was most calls. Plans here do not depend on the values.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // Room for every statement the store prepares (rusqlite keeps 16 by default, fewer than the
    // writer alone uses, so a mix of op kinds kept parsing statements again).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Brings the schema up to date, each migration in its own immediate transaction so that two
/// processes opening a new shard at once cannot both run it.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(migration) = usize::try_from(version).ok().and_then(|v| MIGRATIONS.get(v)) else {
            return Ok(());
        };
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
