//! Typed operations: the only way state changes.
//!
//! Every change (create an account, deliver a message, expunge) is an [`Op`] applied by the store of
//! the shard that owns the data. The shard appends the op to its log in the same transaction that
//! applies it, and the log is what a backup replicates. An op therefore carries every value that is
//! not a pure function of the shard's state (times, UIDVALIDITY): applying the same log to the same
//! state gives the same result on every replica.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Address, ChatMessage, FlagChange, Flags, MessageMeta, PresenceStatus, RoomModes, RoomName};

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
        /// UIDVALIDITY base for the new account's mailboxes ([`crate::uidvalidity_at`]); each gets
        /// its own value from there on (RFC 9051 §2.3.1.1).
        uidvalidity: u32,
    },
    /// Replaces an account's password hash. Fails with `NoSuchAccount`.
    SetPassword {
        /// The account.
        address: Address,
        /// PHC string of an argon2id hash.
        password_hash: String,
    },
    /// Sets or clears an account's recovery address: the outside address (verified by an emailed
    /// code) that password-reset codes are sent to. Fails with `NoSuchAccount`.
    SetRecoveryAddress {
        /// The account.
        address: Address,
        /// The recovery address, or `None` to remove it.
        recovery: Option<Address>,
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
    /// Creates a mailbox, and any missing superior names (RFC 9051 §6.3.4), each with a
    /// UIDVALIDITY of its own, above every one the account has had and at least `uidvalidity`.
    /// Fails with `MailboxExists`, `InvalidMailboxName` or `NoSuchAccount`.
    CreateMailbox {
        /// The account.
        address: Address,
        /// Mailbox name: UTF-8, levels separated by `/`.
        name: String,
        /// UIDVALIDITY base ([`crate::uidvalidity_at`]).
        uidvalidity: u32,
    },
    /// Deletes a mailbox and its messages. Fails for INBOX (`Forbidden`), a mailbox with
    /// inferiors (`HasChildren`, RFC 9051 §7.1) and a missing one (`NoSuchMailbox`).
    DeleteMailbox {
        /// The account.
        address: Address,
        /// Mailbox name.
        name: String,
    },
    /// Renames a mailbox and its inferiors, keeping their UIDs and subscriptions; each gets a new
    /// UIDVALIDITY (the names they take may have had greater ones). Renaming INBOX moves its messages (same UIDs) to a new mailbox with
    /// `uidvalidity` and leaves INBOX empty (RFC 9051 §6.3.6). Fails with `NoSuchMailbox`,
    /// `MailboxExists` or `InvalidMailboxName`.
    RenameMailbox {
        /// The account.
        address: Address,
        /// Current name.
        from: String,
        /// New name.
        to: String,
        /// UIDVALIDITY base for mailboxes the rename creates (superiors, an INBOX rename's target).
        uidvalidity: u32,
    },
    /// Adds a name to, or removes it from, the account's subscriptions (RFC 9051 §6.3.7); the
    /// mailbox need not exist.
    SetSubscription {
        /// The account.
        address: Address,
        /// Mailbox name.
        name: String,
        /// Subscribe or unsubscribe.
        subscribed: bool,
    },
    /// Appends one message with flags to one of the account's mailboxes (IMAP APPEND).
    /// Fails with `NoSuchMailbox`.
    Append {
        /// The account.
        address: Address,
        /// Mailbox name.
        mailbox: String,
        /// Initial flags.
        flags: Flags,
        /// Internal date, Unix seconds.
        internal_date: i64,
        /// The message octets.
        message: Bytes,
    },
    /// Changes the flags of messages (IMAP STORE). UIDs not present are ignored; each message
    /// whose flags change gets a new modification sequence (RFC 7162).
    SetFlags {
        /// The account.
        address: Address,
        /// Mailbox name.
        mailbox: String,
        /// UIDs to change.
        uids: Vec<u32>,
        /// Replace, add or remove.
        change: FlagChange,
        /// The flags of the change.
        flags: Flags,
    },
    /// Copies messages to another mailbox of the account, in UID order, with their flags and
    /// internal dates (IMAP COPY, RFC 4315 COPYUID); with `remove`, also expunges them from the
    /// source, atomically (IMAP MOVE, RFC 6851). UIDs not present are ignored.
    Copy {
        /// The account.
        address: Address,
        /// Source mailbox.
        from: String,
        /// Destination mailbox.
        to: String,
        /// UIDs in the source.
        uids: Vec<u32>,
        /// Expunge from the source (MOVE).
        remove: bool,
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
    /// Creates a chat room on the room's shard ([`crate::ShardMap::shard_of_room`]). When the room
    /// exists: fails with `RoomExists` if `exclusive`, else changes nothing.
    CreateRoom {
        /// The room.
        room: RoomName,
        /// Unix milliseconds.
        created_ms: i64,
        /// The modes a new room starts with.
        modes: RoomModes,
        /// Whether an existing room is an error.
        exclusive: bool,
    },
    /// Sets a room's topic (empty text clears it). Fails with `NoSuchRoom`.
    SetTopic {
        /// The room.
        room: RoomName,
        /// The topic, at most [`crate::TOPIC_BYTES_MAX`] octets.
        text: String,
        /// Who set it.
        setter: String,
        /// Unix milliseconds.
        at_ms: i64,
    },
    /// Replaces a room's modes. Fails with `NoSuchRoom`.
    SetRoomModes {
        /// The room.
        room: RoomName,
        /// The new modes.
        modes: RoomModes,
    },
    /// Appends a message to a room's history (creating the room with `+nt` if it has gone); the
    /// store assigns the next sequence number ([`Outcome::Posted`]).
    Post {
        /// The message; its `seq` is ignored.
        message: ChatMessage,
    },
    /// Records an account's presence. Fails with `NoSuchAccount`.
    SetPresence {
        /// The account.
        address: Address,
        /// The status.
        status: PresenceStatus,
        /// Away message.
        message: Option<String>,
        /// Unix milliseconds: the account's last-seen time.
        at_ms: i64,
    },
    /// Adds a room to (or removes it from) an account's rooms, the list a client rejoins on login.
    /// Fails with `NoSuchAccount`.
    SetRoomMembership {
        /// The account.
        address: Address,
        /// The room.
        room: RoomName,
        /// Member or not.
        member: bool,
        /// Unix milliseconds.
        at_ms: i64,
    },
}

impl Op {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateAccount { .. } => "create-account",
            Op::SetPassword { .. } => "set-password",
            Op::SetRecoveryAddress { .. } => "set-recovery-address",
            Op::DeleteAccount { .. } => "delete-account",
            Op::Deliver { .. } => "deliver",
            Op::CreateMailbox { .. } => "create-mailbox",
            Op::DeleteMailbox { .. } => "delete-mailbox",
            Op::RenameMailbox { .. } => "rename-mailbox",
            Op::SetSubscription { .. } => "set-subscription",
            Op::Append { .. } => "append",
            Op::SetFlags { .. } => "set-flags",
            Op::Copy { .. } => "copy",
            Op::Expunge { .. } => "expunge",
            Op::CreateRoom { .. } => "create-room",
            Op::SetTopic { .. } => "set-topic",
            Op::SetRoomModes { .. } => "set-room-modes",
            Op::Post { .. } => "post",
            Op::SetPresence { .. } => "set-presence",
            Op::SetRoomMembership { .. } => "set-room-membership",
        }
    }

    /// The op with its message octets left out, and their length, for an op that carries a
    /// message ([`Op::Deliver`], [`Op::Append`]); `None` for the others. The op log keeps this
    /// form and references the stored octets instead of copying them.
    pub fn without_message(&self) -> Option<(Op, usize)> {
        let mut bare = match self {
            Op::Deliver { .. } | Op::Append { .. } => self.clone(),
            _ => return None,
        };
        match &mut bare {
            Op::Deliver { message, .. } | Op::Append { message, .. } => {
                let len = message.len();
                *message = Bytes::new();
                Some((bare, len))
            }
            _ => None,
        }
    }

    /// Puts message octets back into an op from [`Op::without_message`].
    pub fn with_message(mut self, octets: Bytes) -> Op {
        if let Op::Deliver { message, .. } | Op::Append { message, .. } = &mut self {
            *message = octets;
        }
        self
    }

    /// The accounts whose data this op touches.
    pub fn accounts(&self) -> &[Address] {
        match self {
            Op::Deliver { recipients, .. } => recipients,
            Op::CreateAccount { address, .. }
            | Op::SetPassword { address, .. }
            | Op::SetRecoveryAddress { address, .. }
            | Op::DeleteAccount { address }
            | Op::CreateMailbox { address, .. }
            | Op::DeleteMailbox { address, .. }
            | Op::RenameMailbox { address, .. }
            | Op::SetSubscription { address, .. }
            | Op::Append { address, .. }
            | Op::SetFlags { address, .. }
            | Op::Copy { address, .. }
            | Op::Expunge { address, .. } => std::slice::from_ref(address),
            // Chat ops change no mailbox: watchers of mail are not woken for them.
            Op::CreateRoom { .. }
            | Op::SetTopic { .. }
            | Op::SetRoomModes { .. }
            | Op::Post { .. }
            | Op::SetPresence { .. }
            | Op::SetRoomMembership { .. } => &[],
        }
    }

    /// Octets this op adds to a write batch (used to bound batches).
    pub fn weight_bytes(&self) -> usize {
        match self {
            Op::Deliver { message, .. } | Op::Append { message, .. } => message.len() + 256,
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
    /// An [`Op::Append`]: where the message went.
    Appended {
        /// UIDVALIDITY of the mailbox.
        uidvalidity: u32,
        /// The new message's UID.
        uid: u32,
    },
    /// An [`Op::SetFlags`]: every named message still present, with its flags and modification
    /// sequence after the change, in UID order.
    FlagsSet(Vec<MessageMeta>),
    /// An [`Op::Copy`]: UIDVALIDITY of the destination and (source UID, new UID) pairs.
    Copied {
        /// UIDVALIDITY of the destination.
        uidvalidity: u32,
        /// (source UID, destination UID), in source UID order.
        pairs: Vec<(u32, u32)>,
    },
    /// An [`Op::Expunge`]: the UIDs removed, ascending.
    Expunged(Vec<u32>),
    /// An [`Op::Post`]: the message's sequence number in its room.
    Posted {
        /// From 1, without gaps, in apply order.
        seq: u64,
    },
}
