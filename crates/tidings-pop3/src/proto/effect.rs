//! What passes between a session and its driver: the steps a session asks for, the requests the
//! driver carries out, and the responses it hands back.

use std::fmt;

use bytes::Bytes;

/// One message of a maildrop as the session lists it (RFC 1939 §5 `LIST`, §7 `UIDL`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// The message's UID in the store's INBOX; what [`Request::Retrieve`] and
    /// [`Request::Update`] name it by.
    pub uid: u32,
    /// Exact octets `RETR` returns, before byte-stuffing (RFC 1939 §5 "exact size").
    pub size: u64,
    /// Unique-id listing value (RFC 1939 §7): 1 to 70 characters in 0x21..=0x7E, never reused for
    /// another message of the maildrop.
    pub unique_id: String,
}

/// What the driver must do next; returned by [`SessionCore::poll`](tidings_core::SessionCore::poll).
/// `Step::StartTls` comes after `+OK Begin TLS negotiation` (RFC 2595 §4); every poll after
/// `Step::Close` says `Close` again.
pub type Step = tidings_core::Step<Request>;

/// Work a session needs from its driver, which has the store, the clock and the locks.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Verify a user name and password (from `USER`/`PASS`, or `AUTH PLAIN` whose authorization
    /// identity was empty or equal to the authentication identity), lock the maildrop
    /// (RFC 1939 §4: exclusive access), and load its listing. Answered with
    /// [`Response::LoggedIn`], [`Response::AuthFailed`], [`Response::InUse`] or
    /// [`Response::TempFail`]. The driver releases the lock when the connection ends.
    Authenticate {
        /// The user name as the client gave it.
        user: String,
        /// The password; never logged (this type's `Debug` redacts it).
        password: String,
    },
    /// Read one message of the locked maildrop: `RETR` (`lines: None`) or `TOP` (`lines:
    /// Some(m)`, m body lines). Answered with [`Response::Message`] holding the whole stored
    /// message (the session cuts it for `TOP`), [`Response::MessageGone`] or
    /// [`Response::TempFail`].
    Retrieve {
        /// UID of the message, from the session's listing.
        uid: u32,
        /// Body lines for `TOP`, `None` for `RETR`.
        lines: Option<u32>,
    },
    /// The UPDATE state (RFC 1939 §6): `QUIT` after messages were marked deleted. Remove all
    /// of `uids` in one atomic operation, or none. Answered with [`Response::Updated`],
    /// [`Response::UpdateFailed`] or [`Response::TempFail`] (taken as `UpdateFailed`); the
    /// session closes either way.
    Update {
        /// UIDs marked deleted, in message-number order; never empty.
        uids: Vec<u32>,
    },
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Authenticate { user, .. } => {
                f.debug_struct("Authenticate").field("user", user).field("password", &"<redacted>").finish()
            }
            Request::Retrieve { uid, lines } => {
                f.debug_struct("Retrieve").field("uid", uid).field("lines", lines).finish()
            }
            Request::Update { uids } => f.debug_struct("Update").field("uids", uids).finish(),
        }
    }
}

/// The outcome of a [`Request`], given to [`Session::resolve`](super::Session::resolve).
#[derive(Clone, PartialEq, Eq)]
pub enum Response {
    /// Authenticated and the maildrop is locked: its listing in message-number order (message
    /// n is index n-1). Replied as `+OK Logged in, N messages (M octets)`.
    LoggedIn(Vec<MessageInfo>),
    /// Wrong user name or password: `-ERR [AUTH] Invalid credentials` (RFC 3206 §4).
    AuthFailed,
    /// Another session holds the maildrop's lock: `-ERR [IN-USE] ...` (RFC 2449 §8.1.1).
    InUse,
    /// The store could not answer now: `-ERR [SYS/TEMP] ...` (RFC 3206 §4). Valid for every
    /// request; for [`Request::Update`] it means no deletion was applied.
    TempFail,
    /// The whole stored message for [`Request::Retrieve`], CRLF line ends; the session
    /// byte-stuffs it and, for `TOP`, cuts it ([`stuff_message`](super::stuff_message)).
    Message(Bytes),
    /// The message was removed meanwhile (e.g. expunged over IMAP): `-ERR`.
    MessageGone,
    /// Every marked message was removed: `+OK <hostname> POP3 server signing off (N messages
    /// left)`, then close.
    Updated,
    /// No deletion was applied: `-ERR [SYS/TEMP] Deletions could not be applied; none were`,
    /// then close.
    UpdateFailed,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::LoggedIn(listing) => f.debug_tuple("LoggedIn").field(listing).finish(),
            Response::AuthFailed => f.write_str("AuthFailed"),
            Response::InUse => f.write_str("InUse"),
            Response::TempFail => f.write_str("TempFail"),
            Response::Message(message) => write!(f, "Message(<{} octets>)", message.len()),
            Response::MessageGone => f.write_str("MessageGone"),
            Response::Updated => f.write_str("Updated"),
            Response::UpdateFailed => f.write_str("UpdateFailed"),
        }
    }
}
