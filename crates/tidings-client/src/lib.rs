//! The mail client library behind `tidings mail`: an IMAP client ([`imap`], on imap-next), a
//! small SMTP submission client ([`smtp`]), MIME building ([`mime`]), and the mbox ([`mbox`]) and
//! Maildir ([`maildir`]) formats people move their mail in and out with.
//!
//! Connections ([`net`]) go to a primary server and fail over to a backup when the primary does
//! not answer in time; they use TLS when the server offers STARTTLS (or from the first octet with
//! implicit TLS), and never send a password in cleartext to a non-loopback address unless told to.
//!
//! ```
//! use tidings_client::{MessageRecord, mbox};
//! use tidings_core::{Flags, SystemFlag};
//!
//! let mut flags = Flags::new();
//! flags.set(SystemFlag::Seen, true);
//! let message = MessageRecord {
//!     octets: b"Subject: hi\r\n\r\nFrom here on\r\n".to_vec(),
//!     flags,
//!     internal_date: Some(0),
//!     envelope_sender: Some("ann@example.org".into()),
//! };
//! let mut writer = mbox::MboxWriter::new(Vec::new());
//! writer.write_message(&message, 0).unwrap();
//! let file = writer.finish().unwrap();
//! let back: Vec<_> = mbox::MboxReader::new(&file[..]).collect::<Result<_, _>>().unwrap();
//! assert_eq!(back, [message]);
//! ```

#![warn(missing_docs)]

pub mod eol;
pub mod imap;
pub mod maildir;
pub mod mbox;
pub mod mime;
pub mod net;
pub mod smtp;
pub mod web;
pub use tidings_core::utf7;

use tidings_core::Flags;

/// A message with what travels with it between mail stores: its octets, flags and internal date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    /// The message, CRLF line ends (the IMAP form).
    pub octets: Vec<u8>,
    /// Its flags (system flags and keywords).
    pub flags: Flags,
    /// When the store received it (IMAP INTERNALDATE), Unix seconds.
    pub internal_date: Option<i64>,
    /// The envelope sender of an mbox `From ` line, when known.
    pub envelope_sender: Option<String>,
}
