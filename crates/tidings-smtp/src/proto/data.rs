//! The message-content decoder for DATA (RFC 5321 §4.1.1.4, §4.5.2) and BDAT (RFC 3030 §2).
//!
//! [`DataDecoder`] is a byte-level state machine: it accepts input in chunks of any size, never
//! buffers a partial line, and keeps at most `message_bytes_max` octets of content whatever the
//! input. Long runs of ordinary octets are found with `memchr` and copied in one piece, because
//! this is the hot path of mail reception.
//!
//! End of data is recognised **only** as CRLF `.` CRLF (or `.` CRLF as the very first line). A bare
//! CR or bare LF never starts a line, so sequences like `\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\r` or
//! `\r\n.\n` are content; treating any of them as an end is what the 2023 "SMTP smuggling" attacks
//! exploit.
//!
//! ```
//! use tidings_smtp::proto::{BareLineEnding, data::DataDecoder};
//! let mut decoder = DataDecoder::new(1 << 20, 1000, BareLineEnding::Reject);
//! let input = b"Subject: hi\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
//! let (consumed, ended) = decoder.decode(input);
//! assert!(ended);
//! assert_eq!(&input[consumed..], b"QUIT\r\n");
//! assert_eq!(decoder.finish().unwrap(), b"Subject: hi\r\n\r\n.leading dot\r\n");
//! ```

use std::fmt;

use memchr::{memchr, memchr3};

use super::BareLineEnding;

/// Why decoded content is refused; reported by [`DataDecoder::finish`]. When several apply, the
/// first in this order is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataError {
    /// The content is larger than `message_bytes_max` (RFC 1870 §6: `552 5.3.4`).
    TooBig {
        /// Octets of content seen (as they would have been stored).
        size: u64,
    },
    /// A NUL octet, which RFC 5321 §4.1.1.4 and RFC 5322 §3.5 do not allow in message text.
    Nul,
    /// A bare CR or LF under [`BareLineEnding::Reject`] (RFC 5321 §2.3.8: lines end with CRLF).
    BareLineEnding,
    /// A line longer than `text_line_bytes_max` octets including CRLF, not counting a leading dot
    /// doubled for transparency (RFC 5321 §4.5.3.1.6).
    LineTooLong,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::TooBig { size } => write!(f, "message of {size} octets exceeds the size limit"),
            DataError::Nul => f.write_str("message contains a NUL octet"),
            DataError::BareLineEnding => f.write_str("message contains a bare CR or LF; lines must end with CRLF"),
            DataError::LineTooLong => f.write_str("message contains a line over the line length limit"),
        }
    }
}

impl std::error::Error for DataError {}

/// Where the decoder stands between two octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line: the very first octet, or right after a CRLF.
    LineStart,
    /// Inside a line.
    Mid,
    /// A CR ended the previous input; not yet known whether an LF follows. Not yet stored.
    Cr,
    /// A `.` started this line (DATA only). It is never stored: it is either dot-stuffing or the
    /// start of the end-of-data line.
    Dot,
    /// `.` CR started this line and the input ended there; an LF ends the data.
    DotCr,
}

/// Streaming decoder of message content; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct DataDecoder {
    state: State,
    /// DATA (dot-stuffed, ends with `.` line) rather than BDAT (raw octets, the caller counts).
    dot_stuffed: bool,
    policy: BareLineEnding,
    /// Bound on `content.len()` and `content.capacity()`, in octets.
    message_bytes_max: usize,
    /// Bound on a line, in octets including CRLF.
    text_line_bytes_max: usize,
    /// The content, while it fits; released once the content is known to be too big.
    content: Vec<u8>,
    /// Octets of content seen as they would be stored, kept or not. `u64` because a client may
    /// send any amount before being cut off.
    size: u64,
    /// Octets of the current line so far as transmitted, CRLF excluded and a leading dot removed
    /// by dot-unstuffing not counted (RFC 5321 §4.5.3.1.6 does not count it).
    line_bytes: usize,
    ended: bool,
    too_big: bool,
    nul: bool,
    bare_line_ending: bool,
    line_too_long: bool,
}

impl DataDecoder {
    /// A decoder for DATA content: dot-stuffed (RFC 5321 §4.5.2), ended by a line holding only `.`.
    ///
    /// `message_bytes_max` bounds the content kept (and so the memory used), in octets;
    /// `text_line_bytes_max` bounds each line, in octets including CRLF but not counting the
    /// leading dot doubled for transparency (RFC 5321 §4.5.3.1.6).
    pub fn new(message_bytes_max: usize, text_line_bytes_max: usize, policy: BareLineEnding) -> Self {
        DataDecoder::with_framing(true, message_bytes_max, text_line_bytes_max, policy)
    }

    /// A decoder for BDAT content (RFC 3030): octets are taken as they are, no dot-unstuffing, and
    /// [`decode`](Self::decode) never reports an end: the caller counts the chunk octets and calls
    /// [`finish`](Self::finish) after the `LAST` chunk. The same checks as for DATA apply.
    pub fn new_chunked(message_bytes_max: usize, text_line_bytes_max: usize, policy: BareLineEnding) -> Self {
        DataDecoder::with_framing(false, message_bytes_max, text_line_bytes_max, policy)
    }

    fn with_framing(
        dot_stuffed: bool,
        message_bytes_max: usize,
        text_line_bytes_max: usize,
        policy: BareLineEnding,
    ) -> Self {
        DataDecoder {
            state: State::LineStart,
            dot_stuffed,
            policy,
            message_bytes_max,
            text_line_bytes_max,
            content: Vec::new(),
            size: 0,
            line_bytes: 0,
            ended: false,
            too_big: false,
            nul: false,
            bare_line_ending: false,
            line_too_long: false,
        }
    }

    /// Consumes `input` up to and including the end-of-data line; returns how many octets were
    /// consumed and whether the end was reached. Octets after the end (the next pipelined
    /// commands) are left to the caller. Once the end was reached, consumes nothing.
    ///
    /// Content is kept only while its length stays within `message_bytes_max`; after that it is
    /// counted, not kept.
    pub fn decode(&mut self, input: &[u8]) -> (usize, bool) {
        if self.ended {
            return (0, true);
        }
        let len = input.len();
        let mut i = 0;
        // Start of the content run not yet stored: ordinary octets and proper CRLFs are copied in
        // one piece when the run is broken (a removed dot, a bare line end, the end of the input).
        let mut run = 0;
        while i < len {
            match self.state {
                State::LineStart => {
                    if self.dot_stuffed && input[i] == b'.' {
                        // Not counted towards the line length: RFC 5321 §4.5.3.1.6 excludes the
                        // dot doubled for transparency (and the end-of-data line is no text line).
                        self.store(&input[run..i]);
                        i += 1;
                        run = i;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Mid;
                    }
                }
                State::Dot => {
                    if input[i] == b'\r' {
                        match input.get(i + 1) {
                            Some(b'\n') => {
                                debug_assert_eq!(run, i);
                                self.end();
                                return (i + 2, true);
                            }
                            Some(_) => {
                                self.bare_line_end();
                                i += 1;
                                run = i;
                                self.state = State::Mid;
                            }
                            None => {
                                i += 1;
                                run = i;
                                self.state = State::DotCr;
                            }
                        }
                    } else {
                        // Dot-stuffing: the dot is gone, the rest of the line is content.
                        self.state = State::Mid;
                    }
                }
                State::Mid => match memchr3(b'\r', b'\n', 0, &input[i..]) {
                    None => {
                        self.add_line_bytes(len - i);
                        i = len;
                    }
                    Some(offset) => {
                        self.add_line_bytes(offset);
                        i += offset;
                        match input[i] {
                            0 => {
                                self.nul = true;
                                self.add_line_bytes(1);
                                i += 1;
                            }
                            b'\n' => {
                                self.store(&input[run..i]);
                                self.bare_line_end();
                                i += 1;
                                run = i;
                            }
                            _ => match input.get(i + 1) {
                                Some(b'\n') => {
                                    i += 2;
                                    self.line_bytes = 0;
                                    self.state = State::LineStart;
                                }
                                Some(_) => {
                                    self.store(&input[run..i]);
                                    self.bare_line_end();
                                    i += 1;
                                    run = i;
                                }
                                None => {
                                    self.store(&input[run..i]);
                                    i += 1;
                                    run = i;
                                    self.state = State::Cr;
                                }
                            },
                        }
                    }
                },
                State::Cr | State::DotCr => {
                    // Only ever at the start of an input: the CR was its predecessor's last octet.
                    debug_assert_eq!((i, run), (0, 0));
                    if input[i] == b'\n' {
                        if self.state == State::DotCr {
                            self.end();
                            return (i + 1, true);
                        }
                        self.store(b"\r\n");
                        i += 1;
                        run = i;
                        self.line_bytes = 0;
                        self.state = State::LineStart;
                    } else {
                        self.bare_line_end();
                        self.state = State::Mid;
                    }
                }
            }
        }
        self.store(&input[run..len]);
        (len, false)
    }

    /// Whether the end-of-data line has been consumed (never, for a BDAT decoder).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Octets of content seen so far, as they would be stored (dot-unstuffed, normalized), kept or
    /// not.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the content already exceeds `message_bytes_max` (the message will be refused).
    pub fn is_too_big(&self) -> bool {
        self.too_big
    }

    /// Octets of memory the decoder holds for content; never more than `message_bytes_max`.
    pub fn retained_bytes(&self) -> usize {
        self.content.capacity()
    }

    /// The decoded message, or why it is refused.
    ///
    /// Meant to be called once [`decode`](Self::decode) reported the end (DATA) or after the last
    /// chunk (BDAT). A CR still pending counts as a bare CR, and content that does not end with
    /// CRLF gets one appended (RFC 3030 §2: a BDAT message must end with CRLF).
    ///
    /// # Errors
    /// [`DataError::TooBig`], [`DataError::Nul`], [`DataError::BareLineEnding`] or
    /// [`DataError::LineTooLong`], the first that applies in that order.
    pub fn finish(mut self) -> Result<Vec<u8>, DataError> {
        if matches!(self.state, State::Cr | State::DotCr) {
            self.bare_line_end();
            self.state = State::Mid;
        }
        if !self.content.is_empty() && !self.content.ends_with(b"\r\n") {
            self.store(b"\r\n");
        }
        if self.too_big {
            return Err(DataError::TooBig { size: self.size });
        }
        if self.nul {
            return Err(DataError::Nul);
        }
        if self.bare_line_ending && self.policy == BareLineEnding::Reject {
            return Err(DataError::BareLineEnding);
        }
        if self.line_too_long {
            return Err(DataError::LineTooLong);
        }
        Ok(self.content)
    }

    /// The end-of-data line has been consumed; nothing is pending.
    fn end(&mut self) {
        self.ended = true;
        self.state = State::LineStart;
    }

    /// A bare CR or bare LF was seen (and has not been stored): note it, and store CRLF in its place
    /// under [`BareLineEnding::Normalize`]. The line count restarts as the stored line ended.
    fn bare_line_end(&mut self) {
        self.bare_line_ending = true;
        self.line_bytes = 0;
        if self.policy == BareLineEnding::Normalize {
            self.store(b"\r\n");
        }
    }

    fn add_line_bytes(&mut self, count: usize) {
        self.line_bytes = self.line_bytes.saturating_add(count);
        if self.line_bytes.saturating_add(2) > self.text_line_bytes_max {
            self.line_too_long = true;
        }
    }

    /// Appends content while it fits in `message_bytes_max`; past that, only counts it and
    /// releases what was kept (the message is refused anyway).
    fn store(&mut self, octets: &[u8]) {
        if octets.is_empty() {
            return;
        }
        self.size = self.size.saturating_add(octets.len() as u64);
        if self.too_big {
            return;
        }
        let needed = self.content.len() + octets.len();
        if needed > self.message_bytes_max {
            self.too_big = true;
            self.content = Vec::new();
            return;
        }
        if needed > self.content.capacity() {
            // Grow geometrically, but never past the limit, so capacity stays within it.
            let target = needed.max(self.content.capacity().saturating_mul(2)).max(4096).min(self.message_bytes_max);
            self.content.reserve_exact(target - self.content.len());
        }
        self.content.extend_from_slice(octets);
        debug_assert!(self.content.capacity() <= self.message_bytes_max.max(needed));
    }
}

/// How many `Received:` fields the header section of `message` holds, counting no further than
/// `stop_after + 1` (enough to tell whether a limit is exceeded).
///
/// The header section ends at the first empty line (RFC 5322 §2.1). Field names are matched
/// without regard to case, with optional white space before the colon (RFC 5322 §4.5 obsolete
/// syntax); continuation lines are skipped. Used for loop detection (RFC 5321 §6.3).
pub fn received_field_count(message: &[u8], stop_after: usize) -> usize {
    let mut count = 0;
    let mut rest = message;
    while !rest.is_empty() && count <= stop_after {
        let line_end = memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..line_end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if is_received_field(line) {
            count += 1;
        }
        rest = &rest[line_end..];
    }
    count
}

fn is_received_field(line: &[u8]) -> bool {
    const NAME: &[u8] = b"received";
    if line.len() <= NAME.len() || !line[..NAME.len()].eq_ignore_ascii_case(NAME) {
        return false;
    }
    line[NAME.len()..].iter().find(|&&c| c != b' ' && c != b'\t') == Some(&b':')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAX: usize = 1 << 20;

    fn decode_all(input: &[u8], policy: BareLineEnding) -> (usize, bool, Result<Vec<u8>, DataError>) {
        let mut decoder = DataDecoder::new(MAX, 1000, policy);
        let (consumed, ended) = decoder.decode(input);
        (consumed, ended, decoder.finish())
    }

    /// Feeds `input` one octet at a time, the most hostile chunking.
    fn decode_bytewise(input: &[u8], policy: BareLineEnding) -> (usize, bool, Result<Vec<u8>, DataError>) {
        let mut decoder = DataDecoder::new(MAX, 1000, policy);
        let mut consumed = 0;
        let mut ended = false;
        for octet in input.chunks(1) {
            let (n, end) = decoder.decode(octet);
            consumed += n;
            if end {
                ended = true;
                break;
            }
        }
        (consumed, ended, decoder.finish())
    }

    fn dot_stuff(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 8);
        let mut line_start = true;
        for &c in message {
            if line_start && c == b'.' {
                out.push(b'.');
            }
            out.push(c);
            line_start = c == b'\n';
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    #[test]
    fn data_ends_at_crlf_dot_crlf_and_leaves_the_rest() {
        let input = b"Hello\r\n.\r\nQUIT\r\n";
        for result in [decode_all(input, BareLineEnding::Reject), decode_bytewise(input, BareLineEnding::Reject)] {
            assert_eq!(result, (10, true, Ok(b"Hello\r\n".to_vec())));
        }
    }

    #[test]
    fn a_dot_first_line_is_an_empty_message() {
        assert_eq!(decode_all(b".\r\n", BareLineEnding::Reject), (3, true, Ok(Vec::new())));
    }

    #[test]
    fn leading_dots_are_unstuffed() {
        let input = b"..hidden\r\n...\r\n.x\r\n.\r\n";
        let expected = b".hidden\r\n..\r\nx\r\n".to_vec();
        assert_eq!(decode_all(input, BareLineEnding::Reject).2, Ok(expected.clone()));
        assert_eq!(decode_bytewise(input, BareLineEnding::Reject).2, Ok(expected));
    }

    #[test]
    fn smuggling_sequences_never_end_data() {
        for sequence in [&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n"] {
            let mut input = b"a".to_vec();
            input.extend_from_slice(sequence);
            input.extend_from_slice(b"MAIL FROM:<x@y.example>\r\n");
            for policy in [BareLineEnding::Reject, BareLineEnding::Normalize] {
                let mut decoder = DataDecoder::new(MAX, 1000, policy);
                assert_eq!(decoder.decode(&input), (input.len(), false), "{sequence:?} {policy:?}");
                let mut bytewise = DataDecoder::new(MAX, 1000, policy);
                for octet in input.chunks(1) {
                    assert_eq!(bytewise.decode(octet), (1, false), "{sequence:?} {policy:?}");
                }
            }
        }
    }

    #[test]
    fn bare_line_ends_are_rejected_under_the_reject_policy() {
        for input in [&b"a\nb\r\n.\r\n"[..], b"a\rb\r\n.\r\n", b"a\r\r\n.\r\n", b"a\r\n.\rb\r\n.\r\n"] {
            assert_eq!(decode_all(input, BareLineEnding::Reject).2, Err(DataError::BareLineEnding), "{input:?}");
            assert_eq!(decode_bytewise(input, BareLineEnding::Reject).2, Err(DataError::BareLineEnding), "{input:?}");
        }
    }

    #[test]
    fn bare_line_ends_become_crlf_under_the_normalize_policy() {
        // After a bare LF, ".\r\n" is content: a bare line end never starts a line.
        let input = b"a\nb\rc\r\r\n.\rd\r\n\n.\n.\r\n.\r\n";
        let expected = b"a\r\nb\r\nc\r\n\r\n\r\nd\r\n\r\n.\r\n.\r\n".to_vec();
        assert_eq!(decode_all(input, BareLineEnding::Normalize).2, Ok(expected.clone()));
        assert_eq!(decode_bytewise(input, BareLineEnding::Normalize).2, Ok(expected));
    }

    #[test]
    fn nul_octets_are_refused() {
        assert_eq!(decode_all(b"a\0b\r\n.\r\n", BareLineEnding::Normalize).2, Err(DataError::Nul));
    }

    #[test]
    fn a_line_over_the_limit_is_refused_and_one_at_the_limit_is_not() {
        let mut at_limit = vec![b'x'; 998];
        at_limit.extend_from_slice(b"\r\n.\r\n");
        assert!(decode_all(&at_limit, BareLineEnding::Reject).2.is_ok());
        let mut over = vec![b'x'; 999];
        over.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(decode_all(&over, BareLineEnding::Reject).2, Err(DataError::LineTooLong));
        assert_eq!(decode_bytewise(&over, BareLineEnding::Reject).2, Err(DataError::LineTooLong));
    }

    #[test]
    fn the_dot_doubled_for_transparency_does_not_count_towards_the_line_limit() {
        // RFC 5321 §4.5.3.1.6: 1000 octets including CRLF, "not counting the leading dot
        // duplicated for transparency". A 998-octet line starting with a dot goes out as 999.
        let mut at_limit = b"..".to_vec();
        at_limit.extend_from_slice(&[b'x'; 997]);
        at_limit.extend_from_slice(b"\r\n.\r\n");
        let mut expected = b".".to_vec();
        expected.extend_from_slice(&[b'x'; 997]);
        expected.extend_from_slice(b"\r\n");
        assert_eq!(decode_all(&at_limit, BareLineEnding::Reject).2, Ok(expected.clone()));
        assert_eq!(decode_bytewise(&at_limit, BareLineEnding::Reject).2, Ok(expected));
        let mut over = b"..".to_vec();
        over.extend_from_slice(&[b'x'; 998]);
        over.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(decode_all(&over, BareLineEnding::Reject).2, Err(DataError::LineTooLong));
        assert_eq!(decode_bytewise(&over, BareLineEnding::Reject).2, Err(DataError::LineTooLong));
    }

    #[test]
    fn content_over_the_size_limit_is_counted_not_kept() {
        let mut decoder = DataDecoder::new(10, 1000, BareLineEnding::Reject);
        assert_eq!(decoder.decode(b"0123456789\r\nabc\r\n.\r\n"), (20, true));
        assert!(decoder.retained_bytes() <= 10);
        assert_eq!(decoder.finish(), Err(DataError::TooBig { size: 17 }));
    }

    #[test]
    fn content_exactly_at_the_size_limit_is_accepted() {
        let mut decoder = DataDecoder::new(10, 1000, BareLineEnding::Reject);
        assert_eq!(decoder.decode(b"01234567\r\n.\r\n"), (13, true));
        assert_eq!(decoder.finish(), Ok(b"01234567\r\n".to_vec()));
    }

    #[test]
    fn chunked_decoder_keeps_dots_and_appends_a_final_crlf() {
        let mut decoder = DataDecoder::new_chunked(MAX, 1000, BareLineEnding::Reject);
        assert_eq!(decoder.decode(b".\r\n..x\r\nlast"), (12, false));
        assert_eq!(decoder.finish(), Ok(b".\r\n..x\r\nlast\r\n".to_vec()));
    }

    #[test]
    fn chunked_decoder_counts_a_trailing_cr_as_bare() {
        let mut decoder = DataDecoder::new_chunked(MAX, 1000, BareLineEnding::Reject);
        decoder.decode(b"x\r");
        assert_eq!(decoder.finish(), Err(DataError::BareLineEnding));
    }

    #[test]
    fn received_fields_are_counted_in_the_header_section_only() {
        let message =
            b"Received: a\r\n\tcontinued\r\nRECEIVED : b\r\nSubject: x\r\nReceived-SPF: pass\r\n\r\nReceived: c\r\n";
        assert_eq!(received_field_count(message, 100), 2);
        assert_eq!(received_field_count(message, 0), 1);
    }

    proptest! {
        #[test]
        fn dot_stuffed_messages_decode_to_themselves_under_any_chunking(
            lines in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'a'), Just(b' '), any::<u8>()
                    .prop_filter("no line ends or NUL", |c| *c != b'\r' && *c != b'\n' && *c != 0)], 0..40),
                0..20),
            cuts in proptest::collection::vec(1usize..64, 1..20),
            trailer in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut message = Vec::new();
            for line in &lines {
                message.extend_from_slice(line);
                message.extend_from_slice(b"\r\n");
            }
            let mut input = dot_stuff(&message);
            let wire_len = input.len();
            input.extend_from_slice(&trailer);
            let mut decoder = DataDecoder::new(MAX, 1000, BareLineEnding::Reject);
            let mut offset = 0;
            let mut cut = cuts.iter().cycle();
            let mut ended = false;
            while offset < input.len() && !ended {
                let step = (*cut.next().unwrap_or(&1)).min(input.len() - offset);
                let (consumed, end) = decoder.decode(&input[offset..offset + step]);
                prop_assert!(consumed == step || end);
                offset += consumed;
                ended = end;
            }
            prop_assert!(ended);
            prop_assert_eq!(offset, wire_len);
            prop_assert_eq!(decoder.finish(), Ok(message));
        }

        #[test]
        fn arbitrary_input_never_makes_the_decoder_keep_more_than_the_limit(
            input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), any::<u8>()], 0..4096),
            limit in 0usize..512,
            chunk in 1usize..100,
            normalize in any::<bool>(),
            chunked in any::<bool>(),
        ) {
            let policy = if normalize { BareLineEnding::Normalize } else { BareLineEnding::Reject };
            let mut decoder = if chunked {
                DataDecoder::new_chunked(limit, 1000, policy)
            } else {
                DataDecoder::new(limit, 1000, policy)
            };
            for piece in input.chunks(chunk) {
                let (consumed, _) = decoder.decode(piece);
                prop_assert!(consumed <= piece.len());
                prop_assert!(decoder.retained_bytes() <= limit);
            }
            if let Ok(content) = decoder.finish() {
                prop_assert!(content.len() <= limit);
            }
        }
    }
}
