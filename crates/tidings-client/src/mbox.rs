//! mbox files: reading mboxo and mboxrd, writing mboxrd, with the flags of each message.
//!
//! # Format
//!
//! Each message starts with a `From ` line (`From SENDER DATE`, DATE in `asctime` form, UTC when
//! written here) and ends with an empty line. Lines are LF-terminated in the file and CRLF in the
//! messages this module returns and takes (the IMAP form).
//!
//! *Quoting.* The writer is mboxrd: a message line that matches `>*From ` gets one more `>`. The
//! reader undoes exactly that: a line that matches `>+From ` loses one `>`. That is exact for
//! mboxrd files and right for mboxo files (Postfix, mutt, Dovecot) except for message lines that
//! began with `>From ` before they were stored, which mboxo cannot tell apart.
//!
//! *Message boundaries.* A `From ` line starts a new message when it follows an empty line (the
//! separator, which is not part of either message) or when it is a well-formed `From SENDER DATE`
//! line (files whose writer left out the empty line).
//!
//! # How flags travel
//!
//! The writer puts flags where mutt, Dovecot and Thunderbird look for them, in header fields
//! (the common mbox convention): `Status:` (`R` \Seen; `O` always: the message is not new),
//! `X-Status:` (`A` \Answered, `F` \Flagged, `T` \Draft, `D` \Deleted; only when one is set) and
//! `X-Keywords:` (keywords separated by spaces; only when there are some). They are written at the
//! top of the header, right after a field that says which fields the exporter added:
//!
//! ```text
//! From ann@example.org Sat Nov 21 09:42:00 2026
//! X-Tidings-Added: Status X-Status X-Keywords
//! Status: RO
//! X-Status: AF
//! X-Keywords: $Forwarded project-x
//! Return-Path: <ann@example.org>
//! ...the message as it was stored...
//! ```
//!
//! The reader takes the flags from those fields and removes the marker and exactly the fields it
//! names, so the message comes back octet for octet. A message without the marker (a file from
//! another program) keeps every octet: its flags are read from its own `Status:`, `X-Status:` and
//! `X-Keywords:` fields, which stay in the message.
//!
//! The internal date travels in the `From ` line, to the second (UTC).
//!
//! # Exactness
//!
//! A round trip (write, then read) gives back every message octet for octet when its lines all
//! end in CRLF and its last line has one, which is how IMAP serves messages. A message without a
//! final line end gets one (mbox lines end in LF), and a bare LF comes back as CRLF.

use std::io::{self, BufRead, Write};

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use tidings_core::{Flags, SystemFlag};

use crate::MessageRecord;
use crate::eol;

/// Largest message the reader takes, in octets; a larger one is an error, not a truncation.
pub const MESSAGE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// The header field that marks the fields an exporter added (see the module documentation).
pub const ADDED_MARKER: &str = "X-Tidings-Added";
/// The fields that carry flags, in the order the writer adds them.
const FLAG_FIELDS: [&str; 3] = ["Status", "X-Status", "X-Keywords"];

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Reads the messages of an mbox file one at a time.
pub struct MboxReader<R> {
    input: R,
    /// The `From ` line of the next message, already read.
    next_from_line: Option<Vec<u8>>,
    /// Whether the first line has been read.
    started: bool,
    /// 1-based number of the line last read, for error messages.
    line_number: u64,
}

impl<R: BufRead> MboxReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> MboxReader<R> {
        MboxReader { input, next_from_line: None, started: false, line_number: 0 }
    }

    fn read_line(&mut self, line: &mut Vec<u8>) -> io::Result<bool> {
        line.clear();
        let n = self.input.read_until(b'\n', line)?;
        if n > 0 {
            self.line_number += 1;
        }
        Ok(n > 0)
    }

    /// The next message, or `None` at the end of the file.
    ///
    /// # Errors
    /// On a read error, when the file does not start with a `From ` line (not an mbox file), or a
    /// message exceeds [`MESSAGE_BYTES_MAX`].
    pub fn next_message(&mut self) -> io::Result<Option<MessageRecord>> {
        let mut line = Vec::new();
        let from_line = match self.next_from_line.take() {
            Some(from_line) => from_line,
            None if self.started => return Ok(None),
            None => {
                self.started = true;
                // Empty lines before the first message are tolerated.
                loop {
                    if !self.read_line(&mut line)? {
                        return Ok(None);
                    }
                    if !is_empty_line(&line) {
                        break;
                    }
                }
                if !line.starts_with(b"From ") {
                    return Err(invalid(format!(
                        "not an mbox file: line {} does not start with \"From \"",
                        self.line_number
                    )));
                }
                std::mem::take(&mut line)
            }
        };
        let from_line_number = self.line_number;
        let (sender, internal_date) = parse_from_line(&from_line);
        let mut octets = Vec::new();
        // An empty line is held back until the next line shows whether it was the separator.
        let mut held_empty: Option<Vec<u8>> = None;
        while self.read_line(&mut line)? {
            if line.starts_with(b"From ")
                && (held_empty.is_some() || parse_from_line(&line).1.is_some() && !octets.is_empty())
            {
                // A held empty line was the separator: it belongs to neither message.
                self.next_from_line = Some(std::mem::take(&mut line));
                break;
            }
            if let Some(empty) = held_empty.take() {
                push_line(&mut octets, &empty);
            }
            if is_empty_line(&line) {
                held_empty = Some(line.clone());
                continue;
            }
            let unquoted = if quoted_from(&line) { &line[1..] } else { &line[..] };
            push_line(&mut octets, unquoted);
            if octets.len() > MESSAGE_BYTES_MAX {
                return Err(invalid(format!(
                    "the message starting at line {from_line_number} is larger than {MESSAGE_BYTES_MAX} octets"
                )));
            }
        }
        // At the end of the file a held empty line was the last message's separator.
        let (octets, flags) = take_flags(octets);
        Ok(Some(MessageRecord { octets, flags, internal_date, envelope_sender: sender }))
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = io::Result<MessageRecord>;

    fn next(&mut self) -> Option<io::Result<MessageRecord>> {
        self.next_message().transpose()
    }
}

/// Writes messages to an mbox file in mboxrd form with their flags (see the module documentation).
pub struct MboxWriter<W> {
    output: W,
}

impl<W: Write> MboxWriter<W> {
    /// A writer appending to `output`.
    pub fn new(output: W) -> MboxWriter<W> {
        MboxWriter { output }
    }

    /// Writes one message: the `From ` line (sender `MAILER-DAEMON` when unknown, date the
    /// internal date or else `now_secs`), the flag fields, the message with LF line ends and
    /// `From ` quoting, and the separating empty line.
    ///
    /// # Errors
    /// On a write error.
    pub fn write_message(&mut self, message: &MessageRecord, now_secs: i64) -> io::Result<()> {
        let sender = message
            .envelope_sender
            .as_deref()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("MAILER-DAEMON");
        let date = asctime(message.internal_date.unwrap_or(now_secs));
        let mut out = format!("From {sender} {date}\n").into_bytes();
        out.extend_from_slice(flag_fields(&message.flags).as_bytes());
        let lf = eol::crlf_to_lf(&message.octets);
        let mut rest = &lf[..];
        while !rest.is_empty() {
            let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
            let line = &rest[..end];
            if line.starts_with(b"From ") || quoted_from(line) {
                out.push(b'>');
            }
            out.extend_from_slice(line);
            rest = &rest[end..];
        }
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.push(b'\n');
        self.output.write_all(&out)
    }

    /// Flushes and returns the output.
    ///
    /// # Errors
    /// On a write error.
    pub fn finish(mut self) -> io::Result<W> {
        self.output.flush()?;
        Ok(self.output)
    }
}

/// The marker and flag fields for `flags`, LF-terminated.
fn flag_fields(flags: &Flags) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    fields.push(("Status", if flags.has(SystemFlag::Seen) { "RO".into() } else { "O".into() }));
    let x_status: String =
        [(SystemFlag::Answered, 'A'), (SystemFlag::Flagged, 'F'), (SystemFlag::Draft, 'T'), (SystemFlag::Deleted, 'D')]
            .into_iter()
            .filter(|(f, _)| flags.has(*f))
            .map(|(_, c)| c)
            .collect();
    if !x_status.is_empty() {
        fields.push(("X-Status", x_status));
    }
    let keywords: Vec<&str> = flags.keywords().collect();
    if !keywords.is_empty() {
        fields.push(("X-Keywords", fold(&keywords, "X-Keywords: ".len())));
    }
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let mut out = format!("{ADDED_MARKER}: {}\n", names.join(" "));
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\n"));
    }
    out
}

/// Words joined by spaces, folded before a word that would take a line past 78 characters.
fn fold(words: &[&str], first_line_used: usize) -> String {
    let mut out = String::new();
    let mut width = first_line_used;
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            if width + 1 + word.len() > 78 {
                out.push_str("\n ");
                width = 1;
            } else {
                out.push(' ');
                width += 1;
            }
        }
        out.push_str(word);
        width += word.len();
    }
    out
}

/// The envelope sender recorded in a message's first `Return-Path:` field (RFC 5321 §4.4), for
/// the `From ` line; `MAILER-DAEMON` for the null path `<>`; `None` without the field.
pub fn envelope_sender(octets: &[u8]) -> Option<String> {
    let fields = header_fields(octets);
    let field = fields.iter().find(|f| f.name.eq_ignore_ascii_case("Return-Path"))?;
    let path = field.value.trim().trim_start_matches('<').trim_end_matches('>').trim();
    if path.is_empty() {
        return Some("MAILER-DAEMON".to_owned());
    }
    path.bytes().all(|b| b.is_ascii_graphic()).then(|| path.to_owned())
}

/// Removes the exporter's flag fields (when the marker is there) and returns the message and the
/// flags its fields give.
fn take_flags(octets: Vec<u8>) -> (Vec<u8>, Flags) {
    let fields = header_fields(&octets);
    if let Some(first) = fields.first()
        && first.start == 0
        && first.name.eq_ignore_ascii_case(ADDED_MARKER)
    {
        let named: Vec<&str> = first.value.split_ascii_whitespace().collect();
        let following = &fields[1..];
        let matches = named.len() <= following.len()
            && named.iter().all(|n| FLAG_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(n)))
            && named.iter().zip(following).all(|(n, f)| f.name.eq_ignore_ascii_case(n));
        // The added fields are contiguous from the top: each starts where the previous ended.
        let contiguous =
            following.iter().take(named.len()).try_fold(first.end, |at, f| (f.start == at).then_some(f.end));
        if let (true, Some(end)) = (matches, contiguous) {
            let flags = flags_from_fields(&following[..named.len()]);
            return (octets[end..].to_vec(), flags);
        }
    }
    let flags = flags_from_fields(&fields);
    (octets, flags)
}

/// Flags from the first `Status:`, `X-Status:` and `X-Keywords:` among `fields`.
fn flags_from_fields(fields: &[HeaderField]) -> Flags {
    let mut flags = Flags::new();
    let first = |name: &str| fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)).map(|f| f.value.as_str());
    if let Some(status) = first("Status") {
        flags.set(SystemFlag::Seen, status.contains('R'));
    }
    if let Some(x_status) = first("X-Status") {
        for (c, flag) in [
            ('A', SystemFlag::Answered),
            ('F', SystemFlag::Flagged),
            ('T', SystemFlag::Draft),
            ('D', SystemFlag::Deleted),
        ] {
            if x_status.contains(c) {
                flags.set(flag, true);
            }
        }
    }
    if let Some(keywords) = first("X-Keywords") {
        for keyword in keywords.split(|c: char| c.is_ascii_whitespace() || c == ',').filter(|k| !k.is_empty()) {
            // A keyword IMAP cannot carry is dropped rather than failing the whole import.
            let _ = flags.add_keyword(keyword);
        }
    }
    flags
}

/// One header field: its name, unfolded value and octet span (through its last CRLF).
#[derive(Debug)]
pub(crate) struct HeaderField {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The header fields of a CRLF (or LF) message, up to the empty line; lines that are not fields
/// are skipped.
pub(crate) fn header_fields(octets: &[u8]) -> Vec<HeaderField> {
    let mut fields: Vec<HeaderField> = Vec::new();
    let mut at = 0;
    while at < octets.len() {
        let end = octets[at..].iter().position(|&b| b == b'\n').map_or(octets.len(), |i| at + i + 1);
        let line = &octets[at..end];
        let content = line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(line);
        if content.is_empty() {
            break;
        }
        if content[0] == b' ' || content[0] == b'\t' {
            if let Some(last) = fields.last_mut()
                && last.end == at
            {
                last.value.push_str(&String::from_utf8_lossy(content));
                last.end = end;
            }
        } else if let Some(colon) = content.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&content[..colon]).trim().to_owned();
            let value = String::from_utf8_lossy(&content[colon + 1..]).trim_start().to_owned();
            fields.push(HeaderField { name, value, start: at, end });
        }
        at = end;
    }
    fields
}

fn is_empty_line(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// Whether the line is `>+From ` (a quoted `From ` line).
fn quoted_from(line: &[u8]) -> bool {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    quotes > 0 && line[quotes..].starts_with(b"From ")
}

/// Appends a file line to a message, its LF (if any) as CRLF.
fn push_line(octets: &mut Vec<u8>, line: &[u8]) {
    match line.strip_suffix(b"\n") {
        Some(content) => {
            octets.extend_from_slice(content.strip_suffix(b"\r").unwrap_or(content));
            octets.extend_from_slice(b"\r\n");
        }
        None => octets.extend_from_slice(line),
    }
}

/// The sender and the date (Unix seconds) of a `From SENDER DATE` line; the date is `None` when it
/// does not parse.
fn parse_from_line(line: &[u8]) -> (Option<String>, Option<i64>) {
    let text = String::from_utf8_lossy(line);
    let rest = text.trim_end().strip_prefix("From ").unwrap_or("").trim_start();
    let (sender, date) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let sender = (!sender.is_empty()).then(|| sender.to_owned());
    (sender, parse_asctime(date))
}

/// Parses the date of a `From ` line: `asctime` form (`Thu Jan  1 00:00:00 1970`), the time
/// possibly without seconds, optionally with a numeric zone before or after the year, and
/// trailing words (`remote from …`) ignored. Without a zone the time is taken as UTC.
pub fn parse_asctime(text: &str) -> Option<i64> {
    let (mut month, mut day, mut time, mut year, mut zone) = (None, None, None, None, 0i64);
    for token in text.split_ascii_whitespace() {
        if let Some(m) = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(token)) {
            month.get_or_insert(m as u32 + 1);
        } else if token.contains(':') && time.is_none() {
            let mut parts = token.split(':').map(|p| p.parse::<u32>().ok());
            let (h, m, s) = (parts.next()??, parts.next()??, parts.next().unwrap_or(Some(0))?);
            time = Some((h, m, s));
        } else if (token.starts_with('+') || token.starts_with('-')) && token.len() == 5 {
            let sign = if token.starts_with('-') { -1 } else { 1 };
            let digits: i64 = token[1..].parse().ok()?;
            zone = sign * ((digits / 100) * 3600 + (digits % 100) * 60);
        } else if token.len() == 4 && token.bytes().all(|b| b.is_ascii_digit()) && time.is_some() {
            year.get_or_insert(token.parse::<i32>().ok()?);
        } else if token.len() <= 2 && token.bytes().all(|b| b.is_ascii_digit()) && month.is_some() && day.is_none() {
            day = Some(token.parse::<u32>().ok()?);
        }
    }
    let (h, m, s) = time?;
    let date = NaiveDate::from_ymd_opt(year?, month?, day?)?.and_hms_opt(h, m, s)?;
    Some(date.and_utc().timestamp() - zone)
}

/// `secs` (Unix time) in the `asctime` form of `From ` lines, UTC: `Sat Nov 21 09:42:00 2026`.
pub fn asctime(secs: i64) -> String {
    let t = DateTime::from_timestamp(secs, 0).unwrap_or_default();
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[t.weekday().num_days_from_monday() as usize],
        MONTHS[t.month0() as usize],
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(octets: &[u8], flags: Flags, date: i64) -> MessageRecord {
        MessageRecord { octets: octets.to_vec(), flags, internal_date: Some(date), envelope_sender: None }
    }

    fn write_all(messages: &[MessageRecord]) -> Vec<u8> {
        let mut writer = MboxWriter::new(Vec::new());
        for m in messages {
            writer.write_message(m, 0).unwrap();
        }
        writer.finish().unwrap()
    }

    fn read_all(file: &[u8]) -> Vec<MessageRecord> {
        MboxReader::new(file).collect::<io::Result<Vec<_>>>().unwrap()
    }

    fn flags(system: &[SystemFlag], keywords: &[&str]) -> Flags {
        let mut f = Flags::new();
        for s in system {
            f.set(*s, true);
        }
        for k in keywords {
            f.add_keyword(k).unwrap();
        }
        f
    }

    #[test]
    fn from_lines_in_the_body_are_quoted_one_level_deeper_mboxrd() {
        let m =
            record(b"Subject: q\r\n\r\nFrom here\r\n>From there\r\n>>From far\r\nFrom\r\n From x\r\n", Flags::new(), 0);
        let file = write_all(std::slice::from_ref(&m));
        let text = String::from_utf8(file.clone()).unwrap();
        assert!(text.contains("\n>From here\n>>From there\n>>>From far\nFrom\n From x\n\n"), "{text}");
        assert_eq!(read_all(&file)[0].octets, m.octets);
    }

    #[test]
    fn the_written_file_has_the_from_line_flag_fields_and_lf_line_ends() {
        let m = MessageRecord {
            octets: b"Subject: s\r\n\r\nbody\r\n".to_vec(),
            flags: flags(&[SystemFlag::Seen, SystemFlag::Answered, SystemFlag::Flagged], &["$Forwarded"]),
            internal_date: Some(1_795_254_120),
            envelope_sender: Some("ann@example.org".into()),
        };
        let file = String::from_utf8(write_all(&[m])).unwrap();
        assert_eq!(
            file,
            "From ann@example.org Sat Nov 21 09:42:00 2026\nX-Tidings-Added: Status X-Status X-Keywords\n\
             Status: RO\nX-Status: AF\nX-Keywords: $Forwarded\nSubject: s\n\nbody\n\n"
        );
    }

    #[test]
    fn messages_and_flags_round_trip_exactly() {
        let messages = vec![
            record(b"Subject: one\r\n\r\nfirst\r\n", flags(&[SystemFlag::Seen], &[]), 1_000_000_000),
            record(b"Subject: two\r\n\r\n\r\n\r\nends with empty lines\r\n\r\n\r\n", Flags::new(), 1_000_000_060),
            record(
                b"Status: RO\r\nX-Status: F\r\nSubject: has its own status fields\r\n\r\nx\r\n",
                flags(&[SystemFlag::Draft, SystemFlag::Deleted], &["a", "b"]),
                1_000_000_120,
            ),
            record(b"Subject: no body", flags(&[SystemFlag::Flagged], &[]), 1_000_000_180),
        ];
        let back = read_all(&write_all(&messages));
        assert_eq!(back.len(), messages.len());
        for (m, b) in messages.iter().zip(&back).take(3) {
            assert_eq!(String::from_utf8_lossy(&b.octets), String::from_utf8_lossy(&m.octets));
            assert_eq!(b.flags, m.flags);
            assert_eq!(b.internal_date, m.internal_date);
        }
        // A message without a final line end gets one: mbox lines end in LF.
        assert_eq!(back[3].octets, b"Subject: no body\r\n");
        assert_eq!(back[3].flags, messages[3].flags);
    }

    #[test]
    fn many_keywords_are_folded_and_read_back() {
        let keywords: Vec<String> = (0..30).map(|i| format!("keyword-number-{i}")).collect();
        let refs: Vec<&str> = keywords.iter().map(String::as_str).collect();
        let m = record(b"Subject: k\r\n\r\n", flags(&[], &refs), 0);
        let file = write_all(std::slice::from_ref(&m));
        assert!(String::from_utf8_lossy(&file).lines().all(|l| l.len() <= 78));
        let back = read_all(&file);
        assert_eq!(back[0].flags, m.flags);
        assert_eq!(back[0].octets, m.octets);
    }

    #[test]
    fn a_foreign_mboxo_file_keeps_its_status_fields_and_gives_their_flags() {
        let file = b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: a\nStatus: RO\nX-Status: A\nX-Keywords: work, home\n\n>From the start\n\nFrom bob@example.org Fri Jan  2 10:00:00 1970\nSubject: b\n\nbody\n";
        let back = read_all(file);
        assert_eq!(back.len(), 2);
        assert_eq!(
            back[0].octets,
            b"Subject: a\r\nStatus: RO\r\nX-Status: A\r\nX-Keywords: work, home\r\n\r\nFrom the start\r\n"
        );
        assert_eq!(back[0].flags, flags(&[SystemFlag::Seen, SystemFlag::Answered], &["work", "home"]));
        assert_eq!(back[0].internal_date, Some(0));
        assert_eq!(back[1].octets, b"Subject: b\r\n\r\nbody\r\n");
        assert_eq!(back[1].envelope_sender.as_deref(), Some("bob@example.org"));
        assert_eq!(back[1].internal_date, Some(86_400 + 36_000));
        assert_eq!(back[1].flags, Flags::new());
    }

    #[test]
    fn a_from_line_without_an_empty_line_before_it_starts_a_message_only_when_well_formed() {
        let file = b"From a@x Thu Jan  1 00:00:00 1970\nSubject: a\n\nbody\nFrom the body, not a date\nFrom b@x Thu Jan  1 00:00:01 1970\nSubject: b\n\n";
        let back = read_all(file);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].octets, b"Subject: a\r\n\r\nbody\r\nFrom the body, not a date\r\n");
        assert_eq!(back[1].octets, b"Subject: b\r\n", "the last empty line is the separator");
    }

    #[test]
    fn a_marker_that_does_not_match_the_fields_after_it_is_left_in_the_message() {
        let file =
            b"From a@x Thu Jan  1 00:00:00 1970\nX-Tidings-Added: Status X-Status\nStatus: RO\nSubject: a\n\nbody\n\n";
        let back = read_all(file);
        assert_eq!(back[0].octets, b"X-Tidings-Added: Status X-Status\r\nStatus: RO\r\nSubject: a\r\n\r\nbody\r\n");
        assert!(back[0].flags.has(SystemFlag::Seen));
    }

    #[test]
    fn crlf_files_read_the_same_as_lf_files() {
        let file = b"From a@x Thu Jan  1 00:00:00 1970\r\nSubject: a\r\n\r\nbody\r\n\r\nFrom b@x Thu Jan  1 00:00:00 1970\r\nSubject: b\r\n\r\n";
        let back = read_all(file);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].octets, b"Subject: a\r\n\r\nbody\r\n");
    }

    #[test]
    fn a_file_that_does_not_start_with_from_is_not_an_mbox() {
        let err = MboxReader::new(&b"Subject: x\n\nbody\n"[..]).next().unwrap().unwrap_err();
        assert!(err.to_string().contains("not an mbox file"), "{err}");
        assert!(MboxReader::new(&b""[..]).next().is_none());
        assert!(MboxReader::new(&b"\n\n"[..]).next().is_none());
    }

    #[test]
    fn the_envelope_sender_comes_from_return_path() {
        assert_eq!(
            envelope_sender(b"Return-Path: <ann@example.org>\r\nSubject: x\r\n\r\n").as_deref(),
            Some("ann@example.org")
        );
        assert_eq!(envelope_sender(b"Return-Path: <>\r\n\r\n").as_deref(), Some("MAILER-DAEMON"));
        assert_eq!(envelope_sender(b"Subject: x\r\n\r\nReturn-Path: <late@example.org>\r\n"), None);
    }

    #[test]
    fn asctime_dates_parse_in_their_variants() {
        assert_eq!(parse_asctime("Thu Jan  1 00:00:00 1970"), Some(0));
        assert_eq!(parse_asctime("Sat Nov 21 09:42:00 2026"), Some(1_795_254_120));
        assert_eq!(parse_asctime("Sat Nov 21 09:42 2026"), Some(1_795_254_120));
        assert_eq!(parse_asctime("Sat Nov 21 10:42:00 +0100 2026"), Some(1_795_254_120));
        assert_eq!(parse_asctime("Sat Nov 21 09:42:00 2026 remote from x"), Some(1_795_254_120));
        assert_eq!(parse_asctime("yesterday"), None);
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_795_254_120), "Sat Nov 21 09:42:00 2026");
    }

    proptest! {
        #[test]
        fn any_crlf_message_round_trips_octet_for_octet(
            lines in prop::collection::vec(
                prop::sample::select(vec!["", "From x", ">From y", ">>From z", "From", ">", "text", " From q", "Status: RO", "X-Tidings-Added: Status", "."]),
                0..12),
            seen: bool,
            flagged: bool,
        ) {
            let mut octets = b"Subject: p\r\n\r\n".to_vec();
            for l in &lines {
                octets.extend_from_slice(l.as_bytes());
                octets.extend_from_slice(b"\r\n");
            }
            let mut f = Flags::new();
            f.set(SystemFlag::Seen, seen);
            f.set(SystemFlag::Flagged, flagged);
            let messages = vec![record(&octets, f.clone(), 5), record(&octets, Flags::new(), 6)];
            let back = read_all(&write_all(&messages));
            prop_assert_eq!(back.len(), 2);
            prop_assert_eq!(&back[0].octets, &octets);
            prop_assert_eq!(&back[1].octets, &octets);
            prop_assert_eq!(&back[0].flags, &f);
        }
    }
}
