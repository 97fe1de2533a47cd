//! The sans-I/O POP3 core: a [`Session`] takes client bytes and driver events and gives reply
//! bytes and [`Step`]s, with no socket, clock or thread of its own (RFC 1939, RFC 2449
//! extensions and response codes, RFC 5034 SASL PLAIN, RFC 2595 STLS, RFC 3206 codes).
//!
//! Layout: [`Session`] holds the state machine and the driver-facing API; one file per command
//! family under `cmd/`; framing with a line bound in `line`; the deletion marks in `maildrop`;
//! byte-stuffing in [`stuff_message`]; output and transcript in `wire`.

mod cmd;
mod config;
mod effect;
mod line;
mod maildrop;
mod sasl;
mod session;
mod stuff;
mod wire;

#[cfg(test)]
mod tests;

pub use config::{COMMAND_LINE_BYTES_MIN, Limits, SessionConfig};
pub use effect::{MessageInfo, Request, Response, Step};
pub use session::Session;
pub use stuff::stuff_message;
/// The session trait, re-exported so a driver needs no other import.
pub use tidings_core::SessionCore;

/// The line a listener sends before closing a connection it will not serve (over its
/// connection limits), in place of the greeting: `-ERR [SYS/TEMP] <reason>\r\n` (RFC 3206 §4:
/// `SYS/TEMP` tells the client to try again later). CR and LF in `reason` become spaces.
///
/// ```
/// let line = tidings_pop3::proto::refuse_connection("Too many connections, try again later");
/// assert_eq!(line, b"-ERR [SYS/TEMP] Too many connections, try again later\r\n");
/// ```
pub fn refuse_connection(reason: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(reason.len() + 20);
    line.extend_from_slice(b"-ERR [SYS/TEMP] ");
    line.extend(reason.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    line.extend_from_slice(b"\r\n");
    line
}
