//! Command-line framing with a bound: lines end with CRLF (RFC 1939 §3), a bare LF is accepted
//! too, and a line longer than the limit is thrown away up to its LF without being kept.

use bytes::{Buf, BytesMut};
use memchr::memchr;

/// One framed line of client input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, without its CRLF (or LF).
    Complete(BytesMut),
    /// A line over the limit: it has been (or is being) discarded up to its LF.
    TooLong,
}

/// Buffers client input and hands out complete lines.
///
/// A partial line is kept only while it fits the limit: once it is longer, its octets are
/// dropped, and so is everything up to the next LF as it arrives.
#[derive(Debug)]
pub(crate) struct LineReader {
    /// Input not yet framed: complete lines followed by at most one partial line.
    buffer: BytesMut,
    /// Discarding the rest of an overlong line: drop input up to and including the next LF.
    discarding: bool,
    /// Longest line accepted, in octets including its terminator.
    line_bytes_max: usize,
}

impl LineReader {
    pub(crate) fn new(line_bytes_max: usize) -> LineReader {
        debug_assert!(line_bytes_max > 2, "a line must at least hold its CRLF");
        LineReader { buffer: BytesMut::new(), discarding: false, line_bytes_max }
    }

    /// Adds client input.
    pub(crate) fn push(&mut self, mut input: &[u8]) {
        if self.discarding {
            match memchr(b'\n', input) {
                Some(lf) => {
                    self.discarding = false;
                    input = &input[lf + 1..];
                }
                None => return,
            }
        }
        self.buffer.extend_from_slice(input);
    }

    /// The next line, or `None` until more input completes one.
    pub(crate) fn next_line(&mut self) -> Option<Line> {
        let window = &self.buffer[..self.buffer.len().min(self.line_bytes_max)];
        if let Some(lf) = memchr(b'\n', window) {
            let mut line = self.buffer.split_to(lf + 1);
            line.truncate(lf);
            if line.last() == Some(&b'\r') {
                line.truncate(lf - 1);
            }
            return Some(Line::Complete(line));
        }
        if self.buffer.len() < self.line_bytes_max {
            if self.buffer.is_empty() {
                // Give the memory of past input back: an idle session should hold none.
                self.buffer = BytesMut::new();
            }
            return None;
        }
        // Over the limit with no LF in sight within it: drop it all, up to the LF if present.
        match memchr(b'\n', &self.buffer[self.line_bytes_max..]) {
            Some(lf) => self.buffer.advance(self.line_bytes_max + lf + 1),
            None => {
                self.buffer.clear();
                self.discarding = true;
            }
        }
        Some(Line::TooLong)
    }

    /// Throws away all buffered input (after `STLS`, RFC 2595 §4: nothing sent in plaintext may
    /// be taken as sent under TLS).
    pub(crate) fn clear(&mut self) {
        self.buffer.clear();
        self.discarding = false;
    }

    /// No input is buffered and no overlong line is being discarded.
    pub(crate) fn is_empty(&self) -> bool {
        self.buffer.is_empty() && !self.discarding
    }

    /// Octets buffered (bounded by the limit plus what the driver last fed).
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(text: &str) -> Option<Line> {
        Some(Line::Complete(BytesMut::from(text)))
    }

    #[test]
    fn crlf_and_bare_lf_both_end_a_line() {
        let mut reader = LineReader::new(64);
        reader.push(b"STAT\r\nNOOP\nQU");
        assert_eq!(reader.next_line(), complete("STAT"));
        assert_eq!(reader.next_line(), complete("NOOP"));
        assert_eq!(reader.next_line(), None);
        reader.push(b"IT\r\n");
        assert_eq!(reader.next_line(), complete("QUIT"));
        assert!(reader.is_empty());
    }

    #[test]
    fn line_exactly_at_the_limit_including_crlf_is_accepted() {
        let mut reader = LineReader::new(8);
        reader.push(b"ABCDEF\r\n");
        assert_eq!(reader.next_line(), complete("ABCDEF"));
    }

    #[test]
    fn line_one_octet_over_the_limit_is_too_long() {
        let mut reader = LineReader::new(8);
        reader.push(b"ABCDEFG\r\nNOOP\r\n");
        assert_eq!(reader.next_line(), Some(Line::TooLong));
        assert_eq!(reader.next_line(), complete("NOOP"));
    }

    #[test]
    fn overlong_line_is_never_buffered_beyond_the_limit() {
        let mut reader = LineReader::new(16);
        reader.push(&[b'x'; 40]);
        assert_eq!(reader.next_line(), Some(Line::TooLong));
        assert_eq!(reader.buffered_bytes(), 0);
        reader.push(&[b'y'; 4000]);
        assert_eq!(reader.buffered_bytes(), 0);
        assert_eq!(reader.next_line(), None);
        reader.push(b"tail\r\nNOOP\r\n");
        assert_eq!(reader.next_line(), complete("NOOP"));
        assert!(reader.is_empty());
    }

    #[test]
    fn clear_forgets_partial_lines_and_discarding() {
        let mut reader = LineReader::new(16);
        reader.push(&[b'x'; 40]);
        assert_eq!(reader.next_line(), Some(Line::TooLong));
        reader.clear();
        reader.push(b"NOOP\r\n");
        assert_eq!(reader.next_line(), complete("NOOP"));
    }
}
