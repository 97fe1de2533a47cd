//! The sans-I/O IMAP core: a [`Session`] takes client bytes and driver events and gives reply
//! bytes and [`Step`]s, with no socket, clock or thread of its own.
//!
//! Standards: RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1) with RFC 7888 (LITERAL+), RFC 4959
//! (SASL-IR), RFC 4616 (PLAIN), RFC 2971 (ID), RFC 5161 (ENABLE), RFC 2177 (IDLE), RFC 2342
//! (NAMESPACE), RFC 4315 (UIDPLUS), RFC 6851 (MOVE), RFC 3691 (UNSELECT), RFC 3348
//! (CHILDREN), RFC 6154 (SPECIAL-USE), RFC 5258 (LIST-EXTENDED), RFC 5819 (LIST-STATUS),
//! RFC 4731 (ESEARCH), RFC 3516 (BINARY), RFC 8438 (STATUS=SIZE), RFC 6855 (UTF8=ACCEPT).
//!
//! Layout: [`Session`] (`session/mod.rs`: input, dispatch, the driver-facing API) with one file
//! per command family under `session/`; `framer` finds message boundaries ahead of `imap-next`;
//! `mailbox` is the selected mailbox with its sequence numbers and pending updates; `names`
//! converts mailbox names (modified UTF-7 in `utf7`) and matches LIST patterns; `extended`
//! reads the command syntax `imap-codec` does not; `wire` writes responses and the transcript.

mod config;
mod effect;
mod extended;
mod framer;
mod mailbox;
mod names;
mod session;
mod wire;

#[cfg(test)]
mod tests;

pub use config::{Limits, SessionConfig};
pub use effect::{AuthVerdict, CopyResult, MailboxError, Notice, Request, Response, Step};
pub use session::Session;
/// The mailbox types the store answers with, and the session trait, re-exported so a driver
/// needs no other import.
pub use tidings_core::{
    FlagChange, Flags, MailboxInfo, MailboxSnapshot, MailboxStatus, MailboxSync, MessageMeta, SessionCore,
    StoredMessage, SystemFlag,
};

/// The line a listener sends before closing a connection it will not serve (over its
/// connection limits), in place of the greeting: `* BYE <reason>\r\n` (RFC 9051 §7.1.5). CR and
/// LF in `reason` become spaces.
///
/// ```
/// let line = tidings_imap::proto::refuse_connection("Too many connections, try again later");
/// assert_eq!(line, b"* BYE Too many connections, try again later\r\n");
/// ```
pub fn refuse_connection(reason: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(reason.len() + 8);
    line.extend_from_slice(b"* BYE ");
    line.extend(reason.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    line.extend_from_slice(b"\r\n");
    line
}
