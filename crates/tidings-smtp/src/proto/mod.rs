//! The sans-I/O SMTP protocol core.
//!
//! A [`Session`] is one SMTP connection seen as a state machine. The driver feeds it the client's
//! bytes, calls [`Session::poll`] and does what the returned [`Step`] says: write the output and
//! read more, answer a [`Request`] (check credentials, a sender, a recipient; deliver a message),
//! perform the STARTTLS handshake, or close. Timers belong to the driver, which calls
//! [`Session::timeout`] when one fires.
//!
//! Standards: RFC 5321 (SMTP), RFC 6409 (submission), RFC 1870 (SIZE), RFC 2920 (PIPELINING),
//! RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 2034 and RFC 3463 (enhanced status codes),
//! RFC 4954 (AUTH), RFC 3207 (STARTTLS), RFC 3030 (CHUNKING).

mod config;
pub mod data;
mod reply;
mod request;
mod session;
mod transaction;

#[cfg(test)]
mod tests;

pub use config::{BareLineEnding, Limits, Mode, SessionConfig};
pub use data::{DataDecoder, DataError};
pub use reply::refuse_connection;
pub use request::{AuthVerdict, DeliveryVerdict, RcptVerdict, Request, Response, Step};
pub use session::Session;
/// The address types of the envelope and the session trait, re-exported so a driver needs no other import.
pub use tidings_core::{Address, Path, SessionCore};
pub use transaction::{BodyType, Trace, Transaction};
