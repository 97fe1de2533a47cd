//! What a session writes: status lines, multi-line responses, SASL continuations (RFC 1939 §3,
//! RFC 5034 §4), the count of `-ERR` replies, and the transcript.

use std::fmt;
use std::io::Write as _;

use super::stuff::stuff_message;

/// Output toward the client and the transcript beside it.
#[derive(Debug)]
pub(crate) struct Wire {
    /// Octets to write, in order; taken by the driver.
    output: Vec<u8>,
    /// `C: ` and `S: ` lines, when the transcript is on.
    transcript: Option<Vec<String>>,
    /// `-ERR` replies so far that count toward `errors_max`.
    errors: u32,
    /// `-ERR` replies after which the session is ended.
    errors_max: u32,
    /// The session is over: no command is read any more and `poll` says `Close`.
    pub(crate) closing: bool,
}

impl Wire {
    pub(crate) fn new(transcript: bool, errors_max: u32) -> Wire {
        Wire { output: Vec::new(), transcript: transcript.then(Vec::new), errors: 0, errors_max, closing: false }
    }

    /// One line, CRLF added; also recorded as `S: <line>`.
    pub(crate) fn line(&mut self, text: fmt::Arguments<'_>) {
        let start = self.output.len();
        // Writing to a Vec cannot fail.
        let _ = self.output.write_fmt(text);
        debug_assert!(!self.output[start..].contains(&b'\n'), "a reply line must not contain LF");
        if let Some(transcript) = &mut self.transcript {
            transcript.push(format!("S: {}", String::from_utf8_lossy(&self.output[start..])));
        }
        self.output.extend_from_slice(b"\r\n");
    }

    /// `+OK text`.
    pub(crate) fn ok(&mut self, text: fmt::Arguments<'_>) {
        self.line(format_args!("+OK {text}"));
    }

    /// `-ERR text`, counted toward `errors_max`; the one that reaches it is followed by
    /// `-ERR Too many errors` and the end of the session.
    pub(crate) fn err(&mut self, text: fmt::Arguments<'_>) {
        self.line(format_args!("-ERR {text}"));
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.errors_max {
            self.fatal(format_args!("Too many errors"));
        }
    }

    /// `-ERR text`, then the end of the session (not counted: nothing follows it anyway).
    pub(crate) fn fatal(&mut self, text: fmt::Arguments<'_>) {
        self.line(format_args!("-ERR {text}"));
        self.closing = true;
    }

    /// A `+OK`, then the end of the session.
    pub(crate) fn sign_off(&mut self, text: fmt::Arguments<'_>) {
        self.ok(text);
        self.closing = true;
    }

    /// The end of a multi-line response (RFC 1939 §3).
    pub(crate) fn end_multiline(&mut self) {
        self.line(format_args!("."));
    }

    /// A SASL continuation with an empty challenge (RFC 5034 §4: "+" SP base64).
    pub(crate) fn continuation(&mut self) {
        self.line(format_args!("+ "));
    }

    /// A message as the body of a multi-line response, stuffed and terminated; the transcript
    /// gets one line for it, `S: <message, N octets>` with N the octets written.
    pub(crate) fn message(&mut self, message: &[u8], lines: Option<u32>) {
        let start = self.output.len();
        stuff_message(message, lines, &mut self.output);
        if let Some(transcript) = &mut self.transcript {
            transcript.push(format!("S: <message, {} octets>", self.output.len() - start));
        }
    }

    /// Records a client line, escaped (non-printable octets as `\xNN`) so that it cannot forge
    /// lines of a log.
    pub(crate) fn client(&mut self, line: &[u8]) {
        if let Some(transcript) = &mut self.transcript {
            transcript.push(format!("C: {}", escape(line)));
        }
    }

    /// Records a client line whose secret part is left out: `C: <shown> <redacted>`, or
    /// `C: <redacted>` when nothing is shown.
    pub(crate) fn client_redacted(&mut self, shown: &[u8]) {
        if let Some(transcript) = &mut self.transcript {
            if shown.is_empty() {
                transcript.push("C: <redacted>".to_owned());
            } else {
                transcript.push(format!("C: {} <redacted>", escape(shown)));
            }
        }
    }

    /// Records a note about client input that is not shown.
    pub(crate) fn client_note(&mut self, note: &str) {
        if let Some(transcript) = &mut self.transcript {
            transcript.push(format!("C: <{note}>"));
        }
    }

    pub(crate) fn pending_output_bytes(&self) -> usize {
        self.output.len()
    }

    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub(crate) fn take_transcript(&mut self) -> Vec<String> {
        self.transcript.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// Printable ASCII as is; every other octet, and `\`, as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &byte in bytes {
        if (0x20..0x7f).contains(&byte) && byte != b'\\' {
            text.push(char::from(byte));
        } else {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_lines_are_escaped_for_logs() {
        assert_eq!(escape(b"USER a\\b\x1b[31m\xc3\xa9"), "USER a\\x5cb\\x1b[31m\\xc3\\xa9");
    }

    #[test]
    fn the_error_that_reaches_the_maximum_ends_the_session() {
        let mut wire = Wire::new(false, 2);
        wire.err(format_args!("one"));
        assert!(!wire.closing);
        wire.err(format_args!("two"));
        assert!(wire.closing);
        assert_eq!(wire.take_output(), b"-ERR one\r\n-ERR two\r\n-ERR Too many errors\r\n");
    }
}
