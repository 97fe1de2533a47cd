//! Commands of the TRANSACTION state (RFC 1939 §5, §7): `STAT`, `LIST`, `UIDL`, `RETR`, `TOP`,
//! `DELE`, `NOOP`, `RSET`; and the answers to the retrievals and the UPDATE they ask for.

use std::fmt;

use super::super::effect::{MessageInfo, Request, Response};
use super::super::maildrop::{Maildrop, MessageError};
use super::super::session::{Outstanding, Session, State};
use super::super::wire::Wire;
use super::{Arguments, Keyword, NumberError, parse_number};

/// Which listing `LIST` or `UIDL` gives.
#[derive(Clone, Copy)]
enum Listing {
    /// `msg size` (RFC 1939 §5 scan listing).
    Scan,
    /// `msg unique-id` (RFC 1939 §7 unique-id listing).
    UniqueId,
}

impl Listing {
    fn keyword(self) -> Keyword {
        match self {
            Listing::Scan => Keyword::List,
            Listing::UniqueId => Keyword::Uidl,
        }
    }
}

/// One entry of a listing.
struct Entry<'a> {
    listing: Listing,
    number: u64,
    message: &'a MessageInfo,
}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.listing {
            Listing::Scan => write!(f, "{} {}", self.number, self.message.size),
            Listing::UniqueId => write!(f, "{} {}", self.number, self.message.unique_id),
        }
    }
}

/// A message number that names no message: the `-ERR` text for it.
fn message_error(wire: &mut Wire, number: u32, error: MessageError) {
    match error {
        MessageError::NoSuchMessage => wire.err(format_args!("no such message")),
        MessageError::AlreadyDeleted => wire.err(format_args!("message {number} already deleted")),
    }
}

/// Parses a message-number argument, answering `-ERR` if it is not one; a number too large to
/// be any message's is just no such message.
fn message_number(wire: &mut Wire, word: &[u8]) -> Option<u32> {
    match parse_number(word) {
        Ok(number) => Some(number),
        Err(NumberError::TooLarge) => {
            wire.err(format_args!("no such message"));
            None
        }
        Err(NumberError::Invalid) => {
            wire.err(format_args!("Invalid message number; expected a decimal number such as 1"));
            None
        }
    }
}

impl Session {
    /// The maildrop and the wire, for a TRANSACTION command (dispatch checked the state).
    fn transaction(&mut self) -> Option<(&mut Maildrop, &mut Wire)> {
        match &mut self.state {
            State::Transaction(maildrop) => Some((maildrop, &mut self.wire)),
            State::Authorization { .. } => {
                debug_assert!(false, "TRANSACTION command dispatched before login");
                None
            }
        }
    }

    /// `STAT`: `+OK count octets` of the messages not marked deleted.
    pub(in crate::proto) fn stat(&mut self, arguments: Arguments<'_>) {
        if arguments.len() != 0 {
            return self.syntax_error(Keyword::Stat);
        }
        let Some((maildrop, wire)) = self.transaction() else { return };
        wire.ok(format_args!("{} {}", maildrop.live_count(), maildrop.live_octets()));
    }

    /// `LIST [msg]`: the scan listing (`msg size`) of one message, or of every message not
    /// marked deleted as a multi-line response.
    pub(in crate::proto) fn list(&mut self, arguments: Arguments<'_>) {
        self.listing(Listing::Scan, arguments);
    }

    /// `UIDL [msg]`: the unique-id listing (`msg unique-id`), like `LIST` (RFC 1939 §7).
    pub(in crate::proto) fn uidl(&mut self, arguments: Arguments<'_>) {
        self.listing(Listing::UniqueId, arguments);
    }

    fn listing(&mut self, listing: Listing, arguments: Arguments<'_>) {
        if arguments.len() > 1 {
            return self.syntax_error(listing.keyword());
        }
        let Some((maildrop, wire)) = self.transaction() else { return };
        match arguments.get(0) {
            None => {
                let (count, octets) = (maildrop.live_count(), maildrop.live_octets());
                wire.ok(format_args!("{count} messages ({octets} octets)"));
                for (number, message) in maildrop.live() {
                    wire.line(format_args!("{}", Entry { listing, number: number as u64, message }));
                }
                wire.end_multiline();
            }
            Some(word) => {
                let Some(number) = message_number(wire, word) else { return };
                match maildrop.get(number) {
                    // A single entry goes on the +OK line itself (RFC 1939 §5).
                    Ok(message) => wire.ok(format_args!("{}", Entry { listing, number: u64::from(number), message })),
                    Err(error) => message_error(wire, number, error),
                }
            }
        }
    }

    /// `RETR msg`: asks the driver for the message; [`Session::retrieved`] sends it.
    pub(in crate::proto) fn retr(&mut self, arguments: Arguments<'_>) {
        let Some(word) = arguments.get(0).filter(|_| arguments.len() == 1) else {
            return self.syntax_error(Keyword::Retr);
        };
        self.retrieve(word, None);
    }

    /// `TOP msg n`: like `RETR`, cut to the header section and `n` body lines (RFC 1939 §7). A
    /// line count too large for 32 bits is the whole body.
    pub(in crate::proto) fn top(&mut self, arguments: Arguments<'_>) {
        let (Some(word), Some(lines), 2) = (arguments.get(0), arguments.get(1), arguments.len()) else {
            return self.syntax_error(Keyword::Top);
        };
        let lines = match parse_number(lines) {
            Ok(lines) => lines,
            Err(NumberError::TooLarge) => u32::MAX,
            Err(NumberError::Invalid) => {
                return self.wire.err(format_args!("Invalid line count; expected a decimal number such as 10"));
            }
        };
        self.retrieve(word, Some(lines));
    }

    fn retrieve(&mut self, word: &[u8], lines: Option<u32>) {
        let Some((maildrop, wire)) = self.transaction() else { return };
        let Some(number) = message_number(wire, word) else { return };
        match maildrop.get(number) {
            Ok(message) => {
                let uid = message.uid;
                self.request(Request::Retrieve { uid, lines }, Outstanding::Retrieve { number, lines });
            }
            Err(error) => message_error(wire, number, error),
        }
    }

    /// The driver's answer to [`Request::Retrieve`].
    pub(in crate::proto) fn retrieved(&mut self, number: u32, lines: Option<u32>, response: Response) {
        match response {
            Response::Message(message) => {
                match lines {
                    None => self.wire.ok(format_args!("{} octets", message.len())),
                    Some(_) => self.wire.ok(format_args!("Top of message follows")),
                }
                self.wire.message(&message, lines);
            }
            Response::MessageGone => {
                self.wire.err(format_args!("Message {number} was removed by another session"));
            }
            other => {
                debug_assert!(other == Response::TempFail, "{other:?} does not answer Retrieve");
                self.wire.err(format_args!("[SYS/TEMP] Message {number} cannot be read now; try again later"));
            }
        }
    }

    /// `DELE msg`: marks the message deleted; it is removed only in the UPDATE state.
    pub(in crate::proto) fn dele(&mut self, arguments: Arguments<'_>) {
        let Some(word) = arguments.get(0).filter(|_| arguments.len() == 1) else {
            return self.syntax_error(Keyword::Dele);
        };
        let Some((maildrop, wire)) = self.transaction() else { return };
        let Some(number) = message_number(wire, word) else { return };
        match maildrop.delete(number) {
            Ok(()) => wire.ok(format_args!("message {number} deleted")),
            Err(error) => message_error(wire, number, error),
        }
    }

    /// `NOOP`: `+OK`.
    pub(in crate::proto) fn noop(&mut self, arguments: Arguments<'_>) {
        if arguments.len() != 0 {
            return self.syntax_error(Keyword::Noop);
        }
        self.wire.line(format_args!("+OK"));
    }

    /// `RSET`: unmarks every message marked deleted.
    pub(in crate::proto) fn rset(&mut self, arguments: Arguments<'_>) {
        if arguments.len() != 0 {
            return self.syntax_error(Keyword::Rset);
        }
        let Some((maildrop, wire)) = self.transaction() else { return };
        maildrop.reset();
        wire.ok(format_args!("maildrop has {} messages ({} octets)", maildrop.live_count(), maildrop.live_octets()));
    }

    /// The driver's answer to [`Request::Update`]: sign off, or say that nothing was deleted;
    /// the session ends either way (RFC 1939 §6).
    pub(in crate::proto) fn updated(&mut self, response: Response) {
        let hostname = &self.config.hostname;
        match response {
            Response::Updated => {
                let left = match &self.state {
                    State::Transaction(maildrop) => maildrop.live_count(),
                    State::Authorization { .. } => 0,
                };
                self.wire.sign_off(format_args!("{hostname} POP3 server signing off ({left} messages left)"));
            }
            other => {
                debug_assert!(
                    matches!(other, Response::UpdateFailed | Response::TempFail),
                    "{other:?} does not answer Update"
                );
                self.wire.fatal(format_args!("[SYS/TEMP] Deletions could not be applied; none were"));
            }
        }
    }
}
