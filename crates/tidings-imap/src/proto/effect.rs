//! What passes between a session and its driver: the requests the driver carries out, the
//! responses it hands back, and the notices it passes on.

use std::fmt;

use tidings_core::{FlagChange, Flags, MailboxInfo, MailboxSnapshot, MailboxSync, MessageMeta, StoredMessage};

/// What the driver must do next; returned by [`SessionCore::poll`](tidings_core::SessionCore::poll).
/// `Step::StartTls` comes after the tagged `OK` to `STARTTLS`; input the client sent before the
/// handshake has been discarded (RFC 9051 §6.2.1). Every poll after `Step::Close` says `Close`.
pub type Step = tidings_core::Step<Request>;

/// Work a session needs from its driver, which has the directory and the store.
///
/// Mailbox names are canonical UTF-8 (`/` between levels, `INBOX` in capitals): the session has
/// decoded the client's modified UTF-7 or UTF-8 and checked them with
/// [`canonical_mailbox_name`](tidings_core::canonical_mailbox_name). Every request after
/// [`Request::Authenticate`] concerns the account it authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Check a user name and password, from `LOGIN` or `AUTHENTICATE PLAIN` (with or without an
    /// initial response, RFC 4959). Answered with [`Response::Auth`].
    Authenticate {
        /// The user name as the client gave it.
        user: String,
        /// The password; never logged (this type's `Debug` redacts it).
        password: String,
    },
    /// Every mailbox of the account with its status, for `LIST`, `LSUB` and `STATUS`. Answered
    /// with [`Response::Mailboxes`].
    ListMailboxes,
    /// A mailbox's status and every message's metadata, for `SELECT` and `EXAMINE` (and `STATUS
    /// DELETED`, which needs the flags). Answered with [`Response::Selected`].
    Select {
        /// Mailbox name.
        mailbox: String,
    },
    /// What changed in the selected mailbox after `since_modseq`: asked when a [`Notice`] came,
    /// for `NOOP`, `CHECK` and `IDLE`, and before a command once a change is known to be waiting.
    /// Answered with [`Response::Synced`].
    Sync {
        /// Mailbox name.
        mailbox: String,
        /// The highest modification sequence the session has seen.
        since_modseq: u64,
    },
    /// `CREATE`. Answered with [`Response::Done`].
    Create {
        /// Mailbox name.
        mailbox: String,
    },
    /// `DELETE` (never INBOX: the session refuses that itself). Answered with [`Response::Done`].
    Delete {
        /// Mailbox name.
        mailbox: String,
    },
    /// `RENAME` (RFC 9051 §6.3.6; renaming INBOX moves its messages). Answered with
    /// [`Response::Done`].
    Rename {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// `SUBSCRIBE` / `UNSUBSCRIBE`; the mailbox need not exist. Answered with [`Response::Done`].
    Subscribe {
        /// Mailbox name.
        mailbox: String,
        /// Subscribe or unsubscribe.
        subscribed: bool,
    },
    /// `APPEND` one message. Answered with [`Response::Appended`].
    Append {
        /// Mailbox name.
        mailbox: String,
        /// Initial flags.
        flags: Flags,
        /// Internal date, Unix seconds; `None`: now.
        internal_date: Option<i64>,
        /// The message octets as the client sent them, bare CR and bare LF made CRLF; never
        /// holding NUL (refused with `NO [UNKNOWN-CTE]`); at most
        /// [`Limits::literal_bytes_max`](super::Limits::literal_bytes_max) octets, a little more
        /// after line-end repair.
        message: Vec<u8>,
    },
    /// `STORE` (and the implicit `\Seen` of a non-PEEK body FETCH): change the flags of these
    /// messages of `mailbox`; UIDs no longer present are ignored. Answered with
    /// [`Response::Stored`].
    Store {
        /// Mailbox name (the selected one).
        mailbox: String,
        /// UIDs, ascending, never empty.
        uids: Vec<u32>,
        /// Replace, add or remove.
        change: FlagChange,
        /// The flags of the change.
        flags: Flags,
    },
    /// `COPY`, or with `remove` `MOVE` (RFC 6851): atomically, in UID order. UIDs no longer
    /// present are ignored. Answered with [`Response::Copied`].
    Copy {
        /// Source mailbox (the selected one).
        from: String,
        /// Destination mailbox.
        to: String,
        /// UIDs, ascending, never empty.
        uids: Vec<u32>,
        /// Expunge them from the source (MOVE).
        remove: bool,
    },
    /// `EXPUNGE`, `UID EXPUNGE`, `CLOSE`: remove these messages (all flagged `\Deleted` as the
    /// session last knew them). Answered with [`Response::Expunged`].
    Expunge {
        /// Mailbox name (the selected one).
        mailbox: String,
        /// UIDs, ascending, never empty.
        uids: Vec<u32>,
    },
    /// Metadata, and with `content` the octets, of these messages, for `FETCH` and `SEARCH`.
    /// At most [`Limits::fetch_batch_messages`](super::Limits::fetch_batch_messages) UIDs.
    /// Answered with [`Response::Messages`].
    Fetch {
        /// Mailbox name (the selected one).
        mailbox: String,
        /// UIDs, ascending, never empty.
        uids: Vec<u32>,
        /// The octets are needed, not only the metadata.
        content: bool,
    },
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Authenticate { user, .. } => {
                f.debug_struct("Authenticate").field("user", user).field("password", &"<redacted>").finish()
            }
            Request::ListMailboxes => f.write_str("ListMailboxes"),
            Request::Select { mailbox } => f.debug_struct("Select").field("mailbox", mailbox).finish(),
            Request::Sync { mailbox, since_modseq } => {
                f.debug_struct("Sync").field("mailbox", mailbox).field("since_modseq", since_modseq).finish()
            }
            Request::Create { mailbox } => f.debug_struct("Create").field("mailbox", mailbox).finish(),
            Request::Delete { mailbox } => f.debug_struct("Delete").field("mailbox", mailbox).finish(),
            Request::Rename { from, to } => f.debug_struct("Rename").field("from", from).field("to", to).finish(),
            Request::Subscribe { mailbox, subscribed } => {
                f.debug_struct("Subscribe").field("mailbox", mailbox).field("subscribed", subscribed).finish()
            }
            Request::Append { mailbox, flags, internal_date, message } => f
                .debug_struct("Append")
                .field("mailbox", mailbox)
                .field("flags", flags)
                .field("internal_date", internal_date)
                .field("message", &format_args!("<{} octets>", message.len()))
                .finish(),
            Request::Store { mailbox, uids, change, flags } => f
                .debug_struct("Store")
                .field("mailbox", mailbox)
                .field("uids", uids)
                .field("change", change)
                .field("flags", flags)
                .finish(),
            Request::Copy { from, to, uids, remove } => f
                .debug_struct("Copy")
                .field("from", from)
                .field("to", to)
                .field("uids", uids)
                .field("remove", remove)
                .finish(),
            Request::Expunge { mailbox, uids } => {
                f.debug_struct("Expunge").field("mailbox", mailbox).field("uids", uids).finish()
            }
            Request::Fetch { mailbox, uids, content } => {
                f.debug_struct("Fetch").field("mailbox", mailbox).field("uids", uids).field("content", content).finish()
            }
        }
    }
}

/// The outcome of a [`Request`], given to
/// [`SessionCore::resolve`](tidings_core::SessionCore::resolve); each variant answers the
/// request(s) named. A response of the wrong kind (a driver bug) is taken as a temporary failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Answers [`Request::Authenticate`].
    Auth(AuthVerdict),
    /// Answers [`Request::ListMailboxes`]: every mailbox, any order.
    Mailboxes(Result<Vec<MailboxInfo>, MailboxError>),
    /// Answers [`Request::Select`].
    Selected(Result<MailboxSnapshot, MailboxError>),
    /// Answers [`Request::Sync`]. `changed` must hold every message added or changed after
    /// `since_modseq` (new messages included), and `uids` every message present.
    Synced(Result<MailboxSync, MailboxError>),
    /// Answers [`Request::Create`], [`Request::Delete`], [`Request::Rename`] and
    /// [`Request::Subscribe`].
    Done(Result<(), MailboxError>),
    /// Answers [`Request::Append`]: (UIDVALIDITY, UID) of the new message (RFC 4315 APPENDUID).
    Appended(Result<(u32, u32), MailboxError>),
    /// Answers [`Request::Store`]: every named message still present, with its flags and
    /// modification sequence after the change.
    Stored(Result<Vec<MessageMeta>, MailboxError>),
    /// Answers [`Request::Copy`].
    Copied(Result<CopyResult, MailboxError>),
    /// Answers [`Request::Expunge`]: the UIDs actually removed.
    Expunged(Result<Vec<u32>, MailboxError>),
    /// Answers [`Request::Fetch`]: the messages still present, in the requested order, with
    /// content when it was asked for.
    Messages(Result<Vec<StoredMessage>, MailboxError>),
}

/// Outcome of a credentials check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVerdict {
    /// The credentials are good: the session is authenticated as `account` (`OK`).
    Ok {
        /// The canonical account address.
        account: String,
    },
    /// Wrong user name or password: `NO [AUTHENTICATIONFAILED]` (RFC 9051 §7.1).
    Invalid,
    /// The check could not be made now: `NO [UNAVAILABLE]`.
    TempFail,
}

/// What COPY and MOVE did (RFC 4315 COPYUID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyResult {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// (source UID, destination UID), ascending source UID; source UIDs that were gone are left
    /// out.
    pub pairs: Vec<(u32, u32)>,
}

/// Why a mailbox operation failed; each maps to one tagged `NO` with a response code
/// (RFC 9051 §7.1, RFC 5530).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailboxError {
    /// No such mailbox: `NO [NONEXISTENT]`, or `NO [TRYCREATE]` for the target of APPEND, COPY
    /// and MOVE.
    NoSuchMailbox,
    /// A mailbox of that name exists already: `NO [ALREADYEXISTS]`.
    AlreadyExists,
    /// The mailbox has inferior mailboxes and cannot be deleted: `NO [HASCHILDREN]`.
    HasChildren,
    /// Not allowed on this mailbox (deleting INBOX, say): `NO [CANNOT] <reason>`.
    Forbidden(String),
    /// The name or the request is not valid: `NO [CANNOT] <reason>`.
    Invalid(String),
    /// The store could not do it now: `NO [UNAVAILABLE]`.
    TryLater,
}

/// News from outside the connection, passed on by the driver while the session waits for input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Something in the account's mailboxes changed (another session, an SMTP delivery): a
    /// session in IDLE asks for a [`Request::Sync`] at once; another one syncs before its next
    /// command.
    Changed,
}
