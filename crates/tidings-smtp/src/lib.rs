//! SMTP for tidings: mail exchange (RFC 5321) and message submission (RFC 6409).
//!
//! [`proto`] is the protocol core: a sans-I/O state machine that takes the client's bytes in and
//! gives replies and requests out. It has no socket, no clock and no threads, so unit tests,
//! property tests and fuzzers drive it directly; the network driver around it ([`server`]) is a
//! thin loop that answers its requests from the store.
//!
//! ```
//! use tidings_smtp::proto::{Mode, Request, Response, RcptVerdict, DeliveryVerdict, Session, SessionConfig, SessionCore, Step};
//!
//! let peer = "192.0.2.1".parse().unwrap();
//! let mut session = Session::new(SessionConfig::new("mx.example", Mode::Mx, peer));
//! session.feed(b"EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<ta@mx.example>\r\n");
//! session.feed(b"DATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n");
//! loop {
//!     match session.poll() {
//!         Step::Request(Request::CheckRecipient { .. }) => {
//!             session.resolve(Response::Recipient(RcptVerdict::Local("ta@mx.example".parse().unwrap())))
//!         }
//!         Step::Request(Request::Deliver(transaction)) => {
//!             assert_eq!(transaction.data, b"Subject: hi\r\n\r\nhello\r\n");
//!             session.resolve(Response::Delivery(DeliveryVerdict::Accepted { id: "1".into() }))
//!         }
//!         Step::Request(other) => panic!("unexpected {other:?}"),
//!         Step::NeedInput | Step::Flush | Step::StartTls => unreachable!(),
//!         Step::Close => break,
//!     }
//! }
//! let output = String::from_utf8(session.take_output()).unwrap();
//! assert!(output.starts_with("220 mx.example ESMTP tidings ready\r\n"));
//! assert!(output.contains("250 2.0.0 Ok: queued as 1\r\n"));
//! assert!(output.ends_with("221 2.0.0 mx.example Bye\r\n"));
//! ```

pub mod proto;
pub mod server;
