//! POP3 for tidings: download and delete INBOX mail (RFC 1939, with the extensions of RFC 2449,
//! SASL PLAIN from RFC 5034, STLS from RFC 2595, and response codes from RFC 3206).
//!
//! [`proto`] is the protocol core, a sans-I/O state machine: bytes and events in, bytes and
//! [`proto::Step`]s out. It knows no socket, store or clock; the driver around it ([`server`])
//! reads and writes, verifies passwords, locks maildrops and applies deletions. That split is what
//! lets unit tests, property tests and fuzzers run the protocol directly.
//!
//! ```
//! use bytes::Bytes;
//! use tidings_pop3::proto::{MessageInfo, Request, Response, Session, SessionConfig, SessionCore, Step};
//!
//! let mut config = SessionConfig::new("mail.example.org");
//! config.plaintext_auth = true; // e.g. a loopback peer
//! let mut session = Session::new(config);
//! assert_eq!(session.poll(), Step::NeedInput);
//! assert_eq!(session.take_output(), b"+OK mail.example.org POP3 server ready\r\n");
//!
//! session.feed(b"USER alice@example.org\r\nPASS secret\r\n");
//! let Step::Request(Request::Authenticate { user, password }) = session.poll() else { panic!() };
//! assert_eq!((user.as_str(), password.as_str()), ("alice@example.org", "secret"));
//! // The driver verifies the password and locks the maildrop, then:
//! let message = MessageInfo { uid: 7, size: 12, unique_id: "7.1700000000".into() };
//! session.resolve(Response::LoggedIn(vec![message]));
//!
//! session.feed(b"RETR 1\r\n");
//! assert_eq!(session.poll(), Step::Request(Request::Retrieve { uid: 7, lines: None }));
//! session.resolve(Response::Message(Bytes::from_static(b".hi\r\nthere\r\n")));
//! assert_eq!(session.poll(), Step::NeedInput);
//! let output = session.take_output();
//! assert!(output.ends_with(b"+OK 12 octets\r\n..hi\r\nthere\r\n.\r\n"));
//! ```

pub mod proto;
pub mod server;
