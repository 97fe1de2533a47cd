//! Typed operations: the only way state changes.
//!
//! Every change (create an account, deliver a message, expunge) is an [`Op`] applied by the store of
//! the shard that owns the data. The shard appends the op to its log in the same transaction that
//! applies it, and the log is what a backup replicates. An op therefore carries every value that is
//! not a pure function of the shard's state (times, UIDVALIDITY): applying the same log to the same
//! state gives the same result on every replica.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Address;

/// One state change on one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Creates an account with the standard mailboxes ([`crate::STANDARD_MAILBOXES`]).
    /// Fails with `AccountExists` when the address is taken.
    CreateAccount {
        /// Canonical address of the new account.
        address: Address,
        /// PHC string of an argon2id hash ([`crate::password`]).
        password_hash: String,
        /// Unix time in seconds.
        created_at: i64,
        /// UIDVALIDITY given to the new account's mailboxes (RFC 9051 §2.3.1.1).
        uidvalidity: u32,
    },
    /// Replaces an account's password hash. Fails with `NoSuchAccount`.
    SetPassword {
        /// The account.
        address: Address,
        /// PHC string of an argon2id hash.
        password_hash: String,
    },
    /// Removes an account with all its mailboxes and messages. Fails with `NoSuchAccount`.
    DeleteAccount {
        /// The account.
        address: Address,
    },
    /// Appends one message to a mailbox of each recipient (all on this shard); the message's
    /// octets are stored once and shared. A recipient whose account no longer exists is skipped.
    Deliver {
        /// Canonical recipient addresses, each an account on this shard.
        recipients: Vec<Address>,
        /// Mailbox name, e.g. [`crate::INBOX`].
        mailbox: String,
        /// Internal date (RFC 9051 §2.3.3), Unix seconds.
        internal_date: i64,
        /// The message octets exactly as they will be retrieved (trace fields included).
        message: Bytes,
    },
    /// Removes messages by UID from one mailbox, all at once (POP3 UPDATE, IMAP EXPUNGE). UIDs no
    /// longer present are ignored. Fails with `NoSuchAccount` or `NoSuchMailbox`.
    Expunge {
        /// The account.
        address: Address,
        /// Mailbox name.
        mailbox: String,
        /// UIDs to remove.
        uids: Vec<u32>,
    },
}

impl Op {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateAccount { .. } => "create-account",
            Op::SetPassword { .. } => "set-password",
            Op::DeleteAccount { .. } => "delete-account",
            Op::Deliver { .. } => "deliver",
            Op::Expunge { .. } => "expunge",
        }
    }

    /// Octets this op adds to a write batch (used to bound batches).
    pub fn weight_bytes(&self) -> usize {
        match self {
            Op::Deliver { message, .. } => message.len() + 256,
            _ => 256,
        }
    }
}

/// What an applied op did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The op had no result beyond success.
    Done,
    /// A [`Op::Deliver`]: the UID each recipient's copy got, in recipient order; recipients whose
    /// account had gone are left out.
    Delivered(Vec<(Address, u32)>),
    /// A [`Op::Expunge`]: how many messages were removed.
    Expunged(u32),
}
