//! Finds where each client message ends, ahead of the `imap-next` server, so that the session
//! hands that server one message at a time (and knows which mode it reads them in), refuses a
//! literal it cannot stop before any of it is taken, and keeps a redacted summary of each
//! message for the transcript.
//!
//! The framing is IMAP's (RFC 9051 §2.2): a message is lines; a line ending in `{n}` or `{n+}`
//! (RFC 7888) is followed by `n` octets of literal and then more of the message. It mirrors the
//! fragmentizer of `imap-codec`, so both always agree on where a message ends: a bare LF ends a
//! line, and a synchronizing literal that the server refuses ends its message at the announcement.
//!
//! RFC 9051 §9 counts literals with `number64`, so a count too large for `u32` (which the
//! fragmentizer does not take as an announcement) still announces a literal, one over any limit:
//! where it cannot be refused (`{n+}`, or outside a tagged command) it is [`Piece::TooLarge`],
//! so that the octets the client sends after it are never read as commands. Counts beyond 64 bits
//! are taken as `u64::MAX`.

use imap_codec::imap_types::core::Tag;

use super::wire::escape;

/// Longest summary of one message kept for the transcript, in characters.
const SUMMARY_CHARS_MAX: usize = 400;
/// Longest tag looked at, in octets; a longer first word is not taken as a tag.
const TAG_BYTES_MAX: usize = 1024;

/// How the messages being framed are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Commands: an oversized synchronizing literal is refused by the server, which drops the
    /// message.
    Command,
    /// AUTHENTICATE responses or IDLE's `DONE`: the server takes any literal as announced.
    Line,
}

/// The next piece of input to hand to the server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// This many octets, which end a message.
    Complete(usize),
    /// This many octets (all the input given); the message goes on.
    Partial(usize),
    /// The input must not be handed over: a literal too large for this session is announced in
    /// a way that cannot be refused. The session must end.
    TooLarge {
        /// The announced length (`u64::MAX` for a count beyond 64 bits).
        length: u64,
    },
}

/// Where in a line the scan is, for spotting a literal announcement at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineEnd {
    /// Nothing that could end an announcement.
    Other,
    /// Just after `{`.
    Open,
    /// Inside `{digits`, with `+` once it came.
    Digits { length: u64, plus: bool },
    /// Just after `}` of a complete announcement.
    Close { length: u64, plus: bool },
    /// Just after a CR that followed `}`.
    CloseCr { length: u64, plus: bool },
}

/// A first word being read, to tell whether the message has a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TagScan {
    Reading(Vec<u8>),
    Valid,
    Invalid,
}

/// Framing state, carried across calls as input arrives in pieces.
#[derive(Debug)]
pub(crate) struct Framer {
    literal_bytes_max: u32,
    /// Octets of literal still to come, while inside one.
    literal_remaining: Option<u32>,
    line_end: LineEnd,
    tag: TagScan,
    /// Keep summaries.
    summarise: bool,
    /// The current message so far, lines escaped and literals as `<n octets>`.
    summary: String,
    /// The current line so far (summaries only).
    line: Vec<u8>,
    /// The summary of the last complete message, until taken.
    completed: Option<String>,
    /// Octets of the message being framed so far.
    message_bytes: u64,
    /// Octets of the last complete message.
    last_message_bytes: u64,
}

impl Framer {
    pub(crate) fn new(literal_bytes_max: u32, summarise: bool) -> Framer {
        Framer {
            literal_bytes_max,
            literal_remaining: None,
            line_end: LineEnd::Other,
            tag: TagScan::Reading(Vec::new()),
            summarise,
            summary: String::new(),
            line: Vec::new(),
            completed: None,
            message_bytes: 0,
            last_message_bytes: 0,
        }
    }

    /// Octets of the message completed last (lines, literals and line ends).
    pub(crate) fn last_message_bytes(&self) -> u64 {
        self.last_message_bytes
    }

    /// Whether part of a message has been framed (a partial command is buffered).
    pub(crate) fn in_message(&self) -> bool {
        self.literal_remaining.is_some()
            || self.line_end != LineEnd::Other
            || self.tag != TagScan::Reading(Vec::new())
            || !self.line.is_empty()
    }

    /// The summary of the message last completed (for the transcript), once.
    pub(crate) fn take_summary(&mut self) -> Option<String> {
        self.completed.take()
    }

    /// Scans `input` from its start and says how much of it to hand over.
    pub(crate) fn advance(&mut self, input: &[u8], mode: Mode) -> Piece {
        let piece = self.scan(input, mode);
        if let Piece::Complete(length) | Piece::Partial(length) = piece {
            self.message_bytes = self.message_bytes.saturating_add(length as u64);
            if matches!(piece, Piece::Complete(_)) {
                self.last_message_bytes = std::mem::take(&mut self.message_bytes);
            }
        }
        piece
    }

    fn scan(&mut self, input: &[u8], mode: Mode) -> Piece {
        let mut at = 0;
        while at < input.len() {
            if let Some(remaining) = self.literal_remaining {
                let take = (input.len() - at).min(remaining as usize);
                at += take;
                // `take` is at most `remaining`, a u32.
                let remaining = remaining - take as u32;
                self.literal_remaining = (remaining > 0).then_some(remaining);
                continue;
            }
            let byte = input[at];
            at += 1;
            self.scan_tag(byte);
            if self.summarise && self.line.len() < SUMMARY_CHARS_MAX {
                self.line.push(byte);
            }
            if byte != b'\n' {
                self.line_end = next_line_end(self.line_end, byte);
                continue;
            }
            let announcement = match std::mem::replace(&mut self.line_end, LineEnd::Other) {
                LineEnd::Close { length, plus } | LineEnd::CloseCr { length, plus } => Some((length, plus)),
                _ => None,
            };
            self.end_line();
            match announcement {
                None => {
                    self.complete();
                    return Piece::Complete(at);
                }
                Some((length, plus)) if length > u64::from(self.literal_bytes_max) => {
                    // Only a synchronizing literal on a tagged command can be refused: the
                    // server answers BAD and drops the message, and the client sends no octets.
                    // (A count beyond `u32` is no literal to the server's parser: the command
                    // is a syntax error, also a tagged BAD before any literal octet.)
                    if plus || mode != Mode::Command || self.tag != TagScan::Valid {
                        return Piece::TooLarge { length };
                    }
                    self.complete();
                    return Piece::Complete(at);
                }
                Some((length, _)) => {
                    // At most `literal_bytes_max`, a u32.
                    let length = length as u32;
                    if self.summarise {
                        self.summary.push_str(&format!(" <{length} octets> "));
                    }
                    if length > 0 {
                        self.literal_remaining = Some(length);
                    }
                }
            }
        }
        Piece::Partial(at)
    }

    fn scan_tag(&mut self, byte: u8) {
        if let TagScan::Reading(word) = &mut self.tag {
            self.tag = match byte {
                b' ' => match Tag::try_from(word.as_slice()) {
                    Ok(_) => TagScan::Valid,
                    Err(_) => TagScan::Invalid,
                },
                b'\n' => TagScan::Invalid,
                _ if word.len() >= TAG_BYTES_MAX => TagScan::Invalid,
                _ => {
                    word.push(byte);
                    return;
                }
            };
        }
    }

    /// Adds the line just ended to the summary.
    fn end_line(&mut self) {
        if !self.summarise {
            return;
        }
        let line = std::mem::take(&mut self.line);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.summary.len() < SUMMARY_CHARS_MAX {
            self.summary.push_str(&escape(line));
        }
    }

    fn complete(&mut self) {
        self.literal_remaining = None;
        self.line_end = LineEnd::Other;
        self.tag = TagScan::Reading(Vec::new());
        self.line.clear();
        if self.summarise {
            let summary = std::mem::take(&mut self.summary);
            self.completed = Some(redact(summary.trim_end()));
        }
    }
}

/// The announcement state after `byte` (anything but LF) in a line.
fn next_line_end(state: LineEnd, byte: u8) -> LineEnd {
    match (state, byte) {
        (_, b'{') => LineEnd::Open,
        (LineEnd::Open, b'0'..=b'9') => LineEnd::Digits { length: u64::from(byte - b'0'), plus: false },
        (LineEnd::Digits { length, plus: false }, b'0'..=b'9') => {
            LineEnd::Digits { length: length.saturating_mul(10).saturating_add(u64::from(byte - b'0')), plus: false }
        }
        (LineEnd::Digits { length, plus: false }, b'+') => LineEnd::Digits { length, plus: true },
        (LineEnd::Digits { length, plus }, b'}') => LineEnd::Close { length, plus },
        (LineEnd::Close { length, plus }, b'\r') => LineEnd::CloseCr { length, plus },
        _ => LineEnd::Other,
    }
}

/// Words of a command that may come before its name: the tag, and one more (`UID`, or junk).
const WORDS_BEFORE_COMMAND_MAX: usize = 2;

/// The summary with secrets left out: the arguments of `LOGIN` and the initial response of
/// `AUTHENTICATE`, whether or not the command parses. Malformed commands are looked at too: the
/// command name is searched among the first words, which may be separated by any run of spaces
/// or (escaped) control characters, so that a missing tag or a doubled space cannot expose a
/// password. A mailbox called `LOGIN` early in a command is redacted as well; a transcript may
/// say less, never a secret.
fn redact(summary: &str) -> String {
    // `escape` writes every control octet (and `\\`) as `\\xNN`, so such an escape separates
    // words as a space does: after a split on `\\x`, each piece but a word's first begins with
    // the two hex digits of the escaped octet.
    let mut words = Vec::new();
    for word in summary.split(' ') {
        let mut pieces = word.split("\\x");
        words.extend(pieces.next());
        words.extend(pieces.map(|piece| piece.get(2..).unwrap_or("")));
    }
    words.retain(|word| !word.is_empty());
    let position =
        |name: &str| words.iter().take(WORDS_BEFORE_COMMAND_MAX + 1).position(|word| word.eq_ignore_ascii_case(name));
    if let Some(at) = position("LOGIN") {
        return format!("{} <redacted>", words[..=at].join(" "));
    }
    if let Some(at) = position("AUTHENTICATE") {
        // The mechanism stays; whatever follows it is the initial response.
        if words.len() > at + 2 {
            return format!("{} <redacted>", words[..=at + 1].join(" "));
        }
    }
    summary.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(framer: &mut Framer, input: &[u8], mode: Mode) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut at = 0;
        loop {
            let piece = framer.advance(&input[at..], mode);
            match piece {
                Piece::Complete(n) => {
                    at += n;
                    pieces.push(piece);
                }
                Piece::Partial(n) => {
                    if n > 0 {
                        pieces.push(piece);
                    }
                    return pieces;
                }
                Piece::TooLarge { .. } => {
                    pieces.push(piece);
                    return pieces;
                }
            }
        }
    }

    #[test]
    fn lines_and_literals_make_messages() {
        let mut framer = Framer::new(100, true);
        let input = b"a NOOP\r\nb LOGIN {5}\r\nalice {3+}\r\npw!\r\nc APPEND x {4}\r\nab\r\n\r\nd";
        let pieces = frame(&mut framer, input, Mode::Command);
        assert_eq!(pieces, [Piece::Complete(8), Piece::Complete(30), Piece::Complete(22), Piece::Partial(1)]);
        assert!(framer.in_message());
    }

    #[test]
    fn a_literal_may_arrive_in_pieces() {
        let mut framer = Framer::new(100, false);
        assert_eq!(frame(&mut framer, b"a APPEND x {10}\r\n0123", Mode::Command), [Piece::Partial(21)]);
        assert_eq!(frame(&mut framer, b"45", Mode::Command), [Piece::Partial(2)]);
        assert_eq!(frame(&mut framer, b"6789\r\nb NOOP\r\n", Mode::Command), [Piece::Complete(6), Piece::Complete(8)]);
    }

    #[test]
    fn summaries_redact_logins_and_summarise_literals() {
        let mut framer = Framer::new(100, true);
        frame(&mut framer, b"b LOGIN {5}\r\nalice secret\r\n", Mode::Command);
        assert_eq!(framer.take_summary().as_deref(), Some("b LOGIN <redacted>"));
        frame(&mut framer, b"c APPEND x {4}\r\nab\r\n\r\n", Mode::Command);
        assert_eq!(framer.take_summary().as_deref(), Some("c APPEND x {4} <4 octets>"));
        frame(&mut framer, b"d AUTHENTICATE PLAIN AGEAYg==\r\n", Mode::Command);
        assert_eq!(framer.take_summary().as_deref(), Some("d AUTHENTICATE PLAIN <redacted>"));
        frame(&mut framer, b"e authenticate plain\r\n", Mode::Command);
        assert_eq!(framer.take_summary().as_deref(), Some("e authenticate plain"));
    }

    #[test]
    fn summaries_redact_malformed_logins_too() {
        // A doubled space, a tab, a missing tag or a word before the command name must not
        // expose the password.
        for (input, summary) in [
            (&b"a1  LOGIN ta Secret\r\n"[..], "a1 LOGIN <redacted>"),
            (b"a2 LOGIN\tta Secret\r\n", "a2 LOGIN <redacted>"),
            (b"a3\tlogin ta Secret\r\n", "a3 login <redacted>"),
            (b"LOGIN ta Secret\r\n", "LOGIN <redacted>"),
            (b"a4 UID LOGIN ta Secret\r\n", "a4 UID LOGIN <redacted>"),
            (b"a5  AUTHENTICATE  PLAIN  AHRhAFNlY3JldA==\r\n", "a5 AUTHENTICATE PLAIN <redacted>"),
            (b"AUTHENTICATE PLAIN AHRhAFNlY3JldA==\r\n", "AUTHENTICATE PLAIN <redacted>"),
            (b"a6 AUTHENTICATE PLAIN\r\n", "a6 AUTHENTICATE PLAIN"),
            // A backslash the client sent is escaped itself: it cannot pass for an escape.
            (b"a7 SELECT \"a\\x09LOGIN\"\r\n", "a7 SELECT \"a\\x5cx09LOGIN\""),
            (b"a8 SEARCH SUBJECT login\r\n", "a8 SEARCH SUBJECT login"),
        ] {
            let mut framer = Framer::new(100, true);
            frame(&mut framer, input, Mode::Command);
            assert_eq!(framer.take_summary().as_deref(), Some(summary), "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn an_oversized_non_synchronizing_literal_cannot_be_refused() {
        let mut framer = Framer::new(100, false);
        let pieces = frame(&mut framer, b"a APPEND x {4000000000+}\r\n", Mode::Command);
        assert_eq!(pieces, [Piece::TooLarge { length: 4_000_000_000 }]);
    }

    #[test]
    fn an_oversized_synchronizing_literal_ends_its_tagged_message() {
        let mut framer = Framer::new(100, false);
        let pieces = frame(&mut framer, b"a APPEND x {4000000000}\r\nb NOOP\r\n", Mode::Command);
        assert_eq!(pieces, [Piece::Complete(25), Piece::Complete(8)]);
        let pieces = frame(&mut framer, b"{4000000000}\r\n", Mode::Command);
        assert_eq!(pieces, [Piece::TooLarge { length: 4_000_000_000 }], "no tag to refuse it with");
        let mut framer = Framer::new(100, false);
        let pieces = frame(&mut framer, b"dGVzdA== {101}\r\n", Mode::Line);
        assert_eq!(pieces, [Piece::TooLarge { length: 101 }], "AUTHENTICATE data cannot refuse");
    }

    #[test]
    fn a_synchronizing_count_beyond_u32_ends_its_tagged_message() {
        let mut framer = Framer::new(100, false);
        let pieces = frame(&mut framer, b"a APPEND x {4294967296}\r\nb NOOP\r\n", Mode::Command);
        assert_eq!(pieces, [Piece::Complete(25), Piece::Complete(8)]);
    }

    #[test]
    fn a_non_synchronizing_count_beyond_u32_is_too_large_not_the_end_of_a_line() {
        // RFC 9051 §9: `literal = "{" number64 ["+"] "}" CRLF *CHAR8`. The octets after it are
        // literal data, never the next command.
        let mut framer = Framer::new(100, false);
        let pieces = frame(&mut framer, b"a APPEND x {4294967296+}\r\nb CREATE y\r\n", Mode::Command);
        assert_eq!(pieces, [Piece::TooLarge { length: 4_294_967_296 }]);
        let mut framer = Framer::new(100, false);
        let pieces = frame(&mut framer, b"a APPEND x {99999999999999999999999+}\r\n", Mode::Command);
        assert_eq!(pieces, [Piece::TooLarge { length: u64::MAX }], "beyond 64 bits");
        let mut framer = Framer::new(100, false);
        let pieces = frame(&mut framer, b"dGVzdA== {4294967296}\r\n", Mode::Line);
        assert_eq!(pieces, [Piece::TooLarge { length: 4_294_967_296 }]);
    }

    #[test]
    fn announcement_forms_match_the_fragmentizer() {
        let mut framer = Framer::new(100, false);
        // `{5}` then a bare LF announces; `{5} ` and `{5}\r\r\n` do not; `{1{2}` announces 2.
        assert_eq!(frame(&mut framer, b"a {5}\nxxxxx\n", Mode::Command), [Piece::Complete(12)]);
        assert_eq!(frame(&mut framer, b"a {5} \r\n", Mode::Command), [Piece::Complete(8)]);
        assert_eq!(frame(&mut framer, b"a {5}\r\r\n", Mode::Command), [Piece::Complete(8)]);
        assert_eq!(frame(&mut framer, b"a {1{2}\r\nxx\r\n", Mode::Command), [Piece::Complete(13)]);
        assert_eq!(frame(&mut framer, b"a {0}\r\n\r\n", Mode::Command), [Piece::Complete(9)]);
    }
}
