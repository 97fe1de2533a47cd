//! What a session writes: responses built piece by piece straight into the output buffer (so a
//! message's octets are copied once), IMAP string forms, the count of `BAD`/`NO` replies, and
//! the transcript beside it all.

use std::fmt::Write as _;

/// Longest transcript entry for one client or server line, in characters; the rest is elided.
const TRANSCRIPT_LINE_CHARS_MAX: usize = 300;

/// The kind of a status response (RFC 9051 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    No,
    Bad,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        }
    }
}

/// Output toward the client and the transcript beside it.
#[derive(Debug)]
pub(crate) struct Wire {
    /// Octets to write, in order; taken by the driver.
    output: Vec<u8>,
    /// `C: ` and `S: ` lines, when the transcript is on.
    transcript: Option<Vec<String>>,
    /// The transcript form of the response being built.
    building: String,
    /// Tagged `BAD`/`NO` replies (and untagged `BAD`s) so far.
    errors: u32,
    /// Errors after which the session is ended.
    errors_max: u32,
    /// The session is over: no command is read any more and `poll` says `Close`.
    pub(crate) closing: bool,
}

impl Wire {
    pub(crate) fn new(transcript: bool, errors_max: u32) -> Wire {
        Wire {
            output: Vec::new(),
            transcript: transcript.then(Vec::new),
            building: String::new(),
            errors: 0,
            errors_max,
            closing: false,
        }
    }

    // ----- building one response -----

    /// Appends text (already in wire form) to the response being built.
    pub(crate) fn text(&mut self, text: &str) {
        debug_assert!(!text.contains(['\r', '\n']), "response text must not contain CR or LF: {text:?}");
        self.output.extend_from_slice(text.as_bytes());
        if self.transcript.is_some() {
            self.building.push_str(text);
        }
    }

    /// Appends formatted text to the response being built; formatted straight into the output
    /// unless the transcript (or a debug build's check for line ends) needs the text.
    pub(crate) fn fmt(&mut self, args: std::fmt::Arguments<'_>) {
        match args.as_str() {
            Some(text) => self.text(text),
            None if self.transcript.is_none() && !cfg!(debug_assertions) => {
                // Writing into a Vec cannot fail.
                let _ = std::io::Write::write_fmt(&mut self.output, args);
            }
            None => self.text(&args.to_string()),
        }
    }

    /// Appends a literal (`{n}` CRLF octets), or with `binary` a literal8 (`~{n}`, RFC 3516).
    pub(crate) fn literal(&mut self, data: &[u8], binary: bool) {
        let prefix = if binary { "~" } else { "" };
        if self.transcript.is_some() {
            let _ = write!(self.building, "{prefix}{{{}}} <{} octets>", data.len(), data.len());
        }
        let _ = std::io::Write::write_fmt(&mut self.output, format_args!("{prefix}{{{}}}\r\n", data.len()));
        self.output.extend_from_slice(data);
    }

    /// Makes room for at least `bytes` more octets of output at once, so that a run of large
    /// responses is not copied again at every doubling of the buffer.
    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.output.reserve(bytes);
    }

    /// Octets the output can take before it must grow.
    pub(crate) fn spare_capacity(&self) -> usize {
        self.output.capacity() - self.output.len()
    }

    /// Appends an IMAP `string`: quoted when every octet may be quoted, a literal otherwise.
    /// With `utf8`, non-ASCII UTF-8 may be quoted (RFC 9051 §4.3, RFC 6855 §3).
    pub(crate) fn string(&mut self, data: &[u8], utf8: bool) {
        if quotable(data, utf8) {
            let mut quoted = String::with_capacity(data.len() + 2);
            quoted.push('"');
            // `quotable` checked that these octets are (ASCII or) UTF-8.
            for c in String::from_utf8_lossy(data).chars() {
                if c == '"' || c == '\\' {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            quoted.push('"');
            self.text(&quoted);
        } else {
            self.literal(data, false);
        }
    }

    /// Appends an IMAP `astring`: an atom when it is one, otherwise a `string`.
    pub(crate) fn astring(&mut self, data: &[u8], utf8: bool) {
        if !data.is_empty() && data.iter().all(|&b| is_astring_char(b)) {
            // All ASTRING-CHARs are ASCII.
            self.text(&String::from_utf8_lossy(data));
        } else {
            self.string(data, utf8);
        }
    }

    /// Appends octets encoded elsewhere (`imap-codec`), literals inline; the transcript shows
    /// them with line ends escaped.
    pub(crate) fn encoded(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
        if self.transcript.is_some() {
            self.building.push_str(&escape(bytes));
        }
    }

    /// Ends the response being built with CRLF, and records it as `S: <response>`.
    pub(crate) fn end(&mut self) {
        self.output.extend_from_slice(b"\r\n");
        if let Some(transcript) = &mut self.transcript {
            let entry = std::mem::take(&mut self.building);
            transcript.push(format!("S: {}", cap(&entry)));
        }
    }

    // ----- whole responses -----

    /// An untagged response: `* <text>`.
    pub(crate) fn untagged(&mut self, text: std::fmt::Arguments<'_>) {
        self.text("* ");
        self.fmt(text);
        self.end();
    }

    /// A continuation request: `+ <text>`.
    pub(crate) fn continuation(&mut self, text: &str) {
        self.text("+ ");
        self.text(text);
        self.end();
    }

    /// A tagged status response, `<tag> OK|NO|BAD [<code>] <text>`; `NO` and `BAD` count toward
    /// `errors_max`, and the one that reaches it is followed by `* BYE Too many errors`.
    pub(crate) fn tagged(&mut self, tag: &str, status: Status, code: Option<&str>, text: &str) {
        self.text(tag);
        self.text(" ");
        self.text(status.word());
        self.text(" ");
        if let Some(code) = code {
            self.text("[");
            self.text(code);
            self.text("] ");
        }
        self.text(text);
        self.end();
        if status != Status::Ok {
            self.count_error();
        }
    }

    /// An untagged `* BAD <text>` for input that has no tag to answer (RFC 9051 §7.1.3); counted.
    pub(crate) fn untagged_bad(&mut self, text: &str) {
        self.text("* BAD ");
        self.text(text);
        self.end();
        self.count_error();
    }

    /// Counts an error reply written by the server machinery (a refused literal).
    pub(crate) fn count_external_error(&mut self) {
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.errors_max && !self.closing {
            self.bye("Too many errors");
        }
    }

    /// `* BYE <text>`, then the end of the session.
    pub(crate) fn bye(&mut self, text: &str) {
        self.text("* BYE ");
        self.text(text);
        self.end();
        self.closing = true;
    }

    // ----- transcript of the client's side -----

    /// Records a client line, escaped (non-printable octets as `\xNN`) and capped, so that it
    /// cannot forge lines of a log.
    pub(crate) fn client(&mut self, entry: &str) {
        if let Some(transcript) = &mut self.transcript {
            transcript.push(format!("C: {}", cap(entry)));
        }
    }

    pub(crate) fn pending_output_bytes(&self) -> usize {
        self.output.len()
    }

    /// Octets written by the server machinery (literal continuations, its own `BAD`s), recorded
    /// line by line.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
        if let Some(transcript) = &mut self.transcript {
            for line in bytes.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                transcript.push(format!("S: {}", cap(&escape(line))));
            }
        }
    }

    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub(crate) fn take_transcript(&mut self) -> Vec<String> {
        self.transcript.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// Whether `data` can be sent as a quoted string: no NUL, CR or LF, and ASCII (or UTF-8 when
/// allowed), and not too long to be sensible on one line.
fn quotable(data: &[u8], utf8: bool) -> bool {
    data.len() <= 1024
        && !data.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
        && (data.is_ascii() || (utf8 && std::str::from_utf8(data).is_ok()))
}

/// `ASTRING-CHAR` (RFC 9051 §9): `ATOM-CHAR` or `]`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !b"(){%*\"\\".contains(&b)
}

/// Printable ASCII as is; every other octet, and `\`, as `\xNN`.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &byte in bytes {
        if (0x20..0x7f).contains(&byte) && byte != b'\\' {
            text.push(char::from(byte));
        } else {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    text
}

/// `entry` cut to [`TRANSCRIPT_LINE_CHARS_MAX`] characters, with `…` when cut.
fn cap(entry: &str) -> String {
    match entry.char_indices().nth(TRANSCRIPT_LINE_CHARS_MAX) {
        Some((at, _)) => format!("{}…", &entry[..at]),
        None => entry.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Wire)) -> String {
        let mut wire = Wire::new(true, 10);
        f(&mut wire);
        String::from_utf8(wire.take_output()).unwrap()
    }

    #[test]
    fn strings_are_quoted_with_escapes_or_sent_as_literals() {
        assert_eq!(written(|w| w.string(b"a \"b\" \\c", false)), "\"a \\\"b\\\" \\\\c\"");
        assert_eq!(written(|w| w.string(b"two\r\nlines", false)), "{10}\r\ntwo\r\nlines");
        assert_eq!(written(|w| w.string("Entwürfe".as_bytes(), false)), "{9}\r\nEntwürfe");
        assert_eq!(written(|w| w.string("Entwürfe".as_bytes(), true)), "\"Entwürfe\"");
        assert_eq!(written(|w| w.astring(b"INBOX", false)), "INBOX");
        assert_eq!(written(|w| w.astring(b"", false)), "\"\"");
        assert_eq!(written(|w| w.astring(b"a b", false)), "\"a b\"");
    }

    #[test]
    fn literals_are_summarised_in_the_transcript() {
        let mut wire = Wire::new(true, 10);
        wire.text("* 1 FETCH (BODY[] ");
        wire.literal(b"Subject: x\r\n\r\nsecret body\r\n", false);
        wire.text(")");
        wire.end();
        assert_eq!(wire.take_transcript(), ["S: * 1 FETCH (BODY[] {27} <27 octets>)"]);
    }

    #[test]
    fn the_error_that_reaches_the_maximum_ends_the_session() {
        let mut wire = Wire::new(false, 2);
        wire.tagged("a", Status::No, None, "one");
        assert!(!wire.closing);
        wire.tagged("b", Status::Bad, Some("CANNOT"), "two");
        assert!(wire.closing);
        assert_eq!(wire.take_output(), b"a NO one\r\nb BAD [CANNOT] two\r\n* BYE Too many errors\r\n");
    }

    #[test]
    fn client_lines_are_escaped_and_capped() {
        assert_eq!(escape(b"a\\b\x1b[31m\xc3\xa9"), "a\\x5cb\\x1b[31m\\xc3\\xa9");
        assert_eq!(cap(&"x".repeat(400)).chars().count(), TRANSCRIPT_LINE_CHARS_MAX + 1);
    }
}
