//! Store and directory settings: the `[store]` and `[mail]` tables of the configuration file.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[store]`: the embedded SQLite engine.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Number of shards, fixed when the data directory is created (later starts must agree).
    /// Each shard is one SQLite database with its own writer, so more shards commit in parallel.
    /// Default 4, range 1..=1024.
    pub shards: u16,
    /// Most ops one commit takes. Default 1024.
    pub batch_ops_max: usize,
    /// Most op octets (message sizes, mostly) one commit takes; one op larger than this still
    /// commits alone. Default 64 MiB.
    pub batch_bytes_max: usize,
    /// Ops that may wait for a shard's writer; submitters wait beyond it. Default 4096.
    pub queue_depth: usize,
    /// Ops kept in each shard's log after they are applied, for replication catch-up. Default 10,000.
    pub log_retain_ops: u64,
    /// Octets the retained log of a shard may stand for, counting the message octets its delivery
    /// entries keep alive (an expunged message's octets stay until its entry leaves the log).
    /// The newest entry is always kept. Default 256 MiB.
    pub log_retain_bytes: u64,
    /// Reads of one shard that run at once, each on its own connection (kept open for reuse);
    /// more wait their turn. Default 4.
    pub readers_per_shard: usize,
    /// Octets of each shard database that a read connection maps into memory (SQLite
    /// `mmap_size`), for stores that are mostly read: reads of those pages need no system call
    /// and no copy, which is most of the cost of reading message octets (a FETCH of 10 KB
    /// messages took a fifth less server CPU). But SQLite drops and remaps the whole map at
    /// the first read after any commit to the shard, so under frequent writes (flag changes,
    /// deliveries) the remapping and its page faults cost more than they save (a
    /// SELECT+FETCH+STORE mix took a third more). It is address space, not memory; pages
    /// beyond it, and those still in the WAL, are read with `pread`; an I/O error on a mapped
    /// page ends the process (SIGBUS) instead of failing one read. SQLite takes at most 2 GiB.
    /// Default 0: no map.
    pub reader_mmap_bytes: u64,
    /// How long a writer waits for a database lock held by another process (such as
    /// `tidings account add` while the server runs), in milliseconds. Default 5,000.
    pub busy_timeout_ms: u64,
    /// Whether a commit that only changes message flags (IMAP STORE, the `\Seen` a FETCH sets,
    /// webmail's read and flag marks) waits for fsync like every other commit. Default `false`:
    /// such a commit is written to the WAL without fsync (SQLite `synchronous=NORMAL`), and the
    /// next commit that does wait (any delivery, append, expunge, account or chat change) or the
    /// next checkpoint makes it durable along with its own. A power loss or kernel crash (not a
    /// crash of tidings alone) may then lose the flag changes of the last moments; the database
    /// stays consistent, and mail accepted with `250` or an APPEND's OK is never lost. `true`
    /// makes every commit wait.
    pub fsync_flag_changes: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            shards: 4,
            batch_ops_max: 1024,
            batch_bytes_max: 64 << 20,
            queue_depth: 4096,
            log_retain_ops: 10_000,
            log_retain_bytes: 256 << 20,
            readers_per_shard: 4,
            reader_mmap_bytes: 0,
            busy_timeout_ms: 5_000,
            fsync_flag_changes: false,
        }
    }
}

impl StoreConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=tidings_core::SHARD_COUNT_MAX).contains(&self.shards) {
            return Err(format!("[store] shards must be in 1..={}", tidings_core::SHARD_COUNT_MAX));
        }
        let positive = [
            ("batch_ops_max", self.batch_ops_max as u64),
            ("batch_bytes_max", self.batch_bytes_max as u64),
            ("queue_depth", self.queue_depth as u64),
            ("log_retain_ops", self.log_retain_ops),
            ("readers_per_shard", self.readers_per_shard as u64),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((key, _)) => Err(format!("[store] {key} must be at least 1")),
            None => Ok(()),
        }
    }
}

/// `[mail]`: which domains are local, and how logins resolve.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DirectoryConfig {
    /// Local domains besides those that have accounts: mail to an unknown user there gets
    /// `550 5.1.1`, not a relay refusal. Default: none.
    pub domains: Vec<String>,
    /// Alias domains: mail and logins for `user@alias` go to `user@target`. Default: none.
    pub domain_aliases: BTreeMap<String, String>,
    /// Account that receives mail for `postmaster` (RFC 5321 §4.5.1) in every local domain that has
    /// no `postmaster` account of its own. Default: none.
    pub postmaster: Option<String>,
}
