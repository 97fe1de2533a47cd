//! IMAP for tidings: the sans-I/O session core ([`proto`]), IMAP4rev2 (RFC 9051) and
//! IMAP4rev1 (RFC 3501) on `imap-next` and `imap-codec`.
//!
//! A [`proto::Session`] is driven like every tidings protocol core (see
//! [`tidings_core::SessionCore`]): bytes in, replies and requests out.
//!
//! ```
//! use tidings_imap::proto::{Session, SessionConfig, SessionCore, Step};
//!
//! let mut session = Session::new(SessionConfig::new("imap.example.org"));
//! assert_eq!(session.poll(), Step::NeedInput);
//! let greeting = String::from_utf8(session.take_output()).unwrap();
//! assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "));
//! session.feed(b"a1 NOOP\r\n");
//! assert_eq!(session.poll(), Step::NeedInput);
//! assert_eq!(session.take_output(), b"a1 OK NOOP completed\r\n");
//! ```

pub mod proto;
pub mod server;
