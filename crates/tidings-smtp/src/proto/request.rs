//! What a session asks of its driver ([`Step`], [`Request`]) and what the driver answers
//! ([`Response`]).

use std::fmt;

use tidings_core::{Address, Path};

use super::Transaction;

/// What the driver must do next; returned by [`SessionCore::poll`](tidings_core::SessionCore::poll).
/// `Step::StartTls` comes after the `220` reply to STARTTLS; anything the client sent before the
/// handshake has already been discarded (RFC 3207 §4.2).
pub type Step = tidings_core::Step<Request>;

/// A question only the server around the session can answer.
#[derive(PartialEq, Eq)]
pub enum Request {
    /// Check a user name and password, from AUTH PLAIN (RFC 4616; an authorization identity is
    /// allowed only when empty or equal to `authcid`) or AUTH LOGIN. Answer with
    /// [`Response::Auth`].
    Authenticate {
        /// Authentication identity (user name) as the client sent it.
        authcid: String,
        /// The password. Never logged: the `Debug` form hides it.
        password: String,
    },
    /// Submission only, after AUTH: may the authenticated account use this envelope sender
    /// (RFC 6409 §4.3)? Answer with [`Response::Sender`].
    CheckSender {
        /// The `MAIL FROM` address.
        address: Address,
    },
    /// Is this forward-path one of ours? Answer with [`Response::Recipient`].
    CheckRecipient {
        /// [`Path::Mailbox`] or [`Path::Postmaster`], never [`Path::Null`].
        path: Path,
    },
    /// Deliver this message durably, then answer with [`Response::Delivery`]. A `250` goes out
    /// only after this answer (RFC 5321 §6.1: accepting a message is taking responsibility for it).
    Deliver(Transaction),
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Authenticate { authcid, .. } => {
                f.debug_struct("Authenticate").field("authcid", authcid).field("password", &"<redacted>").finish()
            }
            Request::CheckSender { address } => f.debug_struct("CheckSender").field("address", address).finish(),
            Request::CheckRecipient { path } => f.debug_struct("CheckRecipient").field("path", path).finish(),
            Request::Deliver(transaction) => f.debug_tuple("Deliver").field(transaction).finish(),
        }
    }
}

/// The driver's answer to a [`Request`]; each variant answers the request of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Answers [`Request::Authenticate`].
    Auth(AuthVerdict),
    /// Answers [`Request::CheckSender`]: `true` when the account owns the address.
    Sender(bool),
    /// Answers [`Request::CheckRecipient`].
    Recipient(RcptVerdict),
    /// Answers [`Request::Deliver`].
    Delivery(DeliveryVerdict),
}

/// Outcome of a credentials check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVerdict {
    /// The credentials are good; the session is now authenticated as `account` (`235 2.7.0`).
    Ok {
        /// The canonical account address.
        account: Address,
    },
    /// Wrong user name or password (`535 5.7.8`).
    Invalid,
    /// The check could not be made now (`454 4.7.0`).
    TempFail,
}

/// Outcome of a recipient check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptVerdict {
    /// A local mailbox; the address is its canonical form (aliases resolved), which is what the
    /// transaction records (`250 2.1.5`).
    Local(Address),
    /// The domain is ours but no such user exists (`550 5.1.1`).
    UnknownUser,
    /// The domain is not ours (`550 5.7.1`: relaying is refused, or not supported yet when
    /// authenticated).
    NotLocal,
    /// The check could not be made now (`451 4.3.0`).
    TempFail,
}

/// Outcome of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryVerdict {
    /// Stored durably under queue id `id` (`250 2.0.0 Ok: queued as <id>`).
    Accepted {
        /// The queue id, shown to the client and written in the `Received:` field.
        id: String,
    },
    /// Not stored; the client should try again later (`451 4.3.0 <reason>`).
    TempFail {
        /// One line for the client.
        reason: String,
    },
    /// Refused for good (`554 5.3.0 <reason>`).
    PermFail {
        /// One line for the client.
        reason: String,
    },
}
