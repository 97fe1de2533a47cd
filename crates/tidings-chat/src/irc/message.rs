//! IRC messages: `[@tags] [:source] COMMAND params…` (RFC 1459 §2.3.1, RFC 2812 §2.3.1, and
//! IRCv3 message-tags), parsed from and written to lines without their CRLF.
//!
//! Bounds (modern.ircdocs.horse, "Message format", and IRCv3 message-tags "Size limit"): the part
//! after the tags is at most [`BODY_BYTES_MAX`] octets (512 with the CRLF), the tag section at
//! most [`CLIENT_TAGS_BYTES_MAX`] octets from a client (the `@` and the space after included).
//! A line over either limit is answered with 417 ERR_INPUTTOOLONG.

use std::fmt::Write as _;

/// Longest message without its tags and without the CRLF, octets (RFC 2812 §2.3: 512 with CRLF).
pub const BODY_BYTES_MAX: usize = 510;
/// Longest tag section a client may send, octets, the leading `@` and the trailing space included
/// (IRCv3 message-tags: 4094 octets of tag data).
pub const CLIENT_TAGS_BYTES_MAX: usize = 4096;
/// Longest input line the framer must accept before the IRC limits are checked: tags and body.
pub const LINE_BYTES_MAX: usize = CLIENT_TAGS_BYTES_MAX + BODY_BYTES_MAX;
/// Most parameters a message may carry (RFC 2812 §2.3.1: 14 middle parameters and a trailing one).
pub const PARAMS_MAX: usize = 15;

/// One IRC message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Tags in the order given: key and unescaped value (`None`: no `=`; empty values are the
    /// same as none, IRCv3 message-tags "Escaping values").
    pub tags: Vec<(String, Option<String>)>,
    /// The source (prefix) without its `:`; a client's is ignored (RFC 2812 §2.3).
    pub source: Option<String>,
    /// The command as sent (a word or a three-digit numeric); compare it case-insensitively.
    pub command: String,
    /// Parameters, the trailing one (after ` :`) last, without its colon.
    pub params: Vec<String>,
}

/// Why an input line is not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but tags, a source, or spaces: no command (ignored silently, as servers do).
    #[error("no command")]
    NoCommand,
    /// The command is neither letters nor three digits.
    #[error("malformed command")]
    BadCommand,
    /// A NUL or CR inside the line: never part of a message (RFC 2812 §2.3.1).
    #[error("NUL or CR in a message")]
    ForbiddenOctet,
}

/// Checks an input line against the size limits before it is decoded: `true` when it fits.
/// `line` has no line end. The tag section is measured with its `@` and the space after it.
pub fn fits(line: &[u8]) -> bool {
    if line.first() == Some(&b'@') {
        let tags_end = line.iter().position(|&b| b == b' ').map_or(line.len(), |i| i + 1);
        let rest = &line[tags_end..];
        let rest_start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
        tags_end <= CLIENT_TAGS_BYTES_MAX && rest.len() - rest_start <= BODY_BYTES_MAX
    } else {
        line.len() <= BODY_BYTES_MAX
    }
}

/// Undoes IRCv3 tag value escaping: `\:` `;`, `\s` space, `\\` `\`, `\r` CR, `\n` LF; any other
/// escaped character stands for itself and a trailing lone `\` is dropped.
pub fn unescape_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// IRCv3 tag value escaping, the inverse of [`unescape_tag_value`].
pub fn escape_tag_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a middle parameter. One that could not be read back as itself (empty, with a space,
/// or starting with `:`; only an echo of a client's malformed input can be) is written with `*`
/// for empty and `_` for each space and a leading `:`, so the line stays well-formed.
fn push_middle(line: &mut String, param: &str) {
    if param.is_empty() {
        line.push('*');
        return;
    }
    for (i, c) in param.chars().enumerate() {
        line.push(if c == ' ' || (i == 0 && c == ':') { '_' } else { c });
    }
}

impl Message {
    /// A message with a command and parameters, no tags and no source.
    pub fn new<S: Into<String>>(command: &str, params: impl IntoIterator<Item = S>) -> Message {
        Message {
            command: command.to_owned(),
            params: params.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Parses one line (without its line end). Spaces between parts may repeat; parameters past
    /// [`PARAMS_MAX`] are joined into the last one, as RFC 2812's grammar reads them.
    ///
    /// # Errors
    /// [`ParseError`].
    pub fn parse(line: &str) -> Result<Message, ParseError> {
        if line.contains(['\0', '\r', '\n']) {
            return Err(ParseError::ForbiddenOctet);
        }
        let mut rest = line;
        let mut message = Message::default();
        if let Some(after) = rest.strip_prefix('@') {
            let (tags, tail) = after.split_once(' ').unwrap_or((after, ""));
            for tag in tags.split(';').filter(|t| !t.is_empty()) {
                let (key, value) = match tag.split_once('=') {
                    Some((key, value)) => (key, Some(unescape_tag_value(value)).filter(|v| !v.is_empty())),
                    None => (tag, None),
                };
                message.tags.push((key.to_owned(), value));
            }
            rest = tail;
        }
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(':') {
            let (source, tail) = after.split_once(' ').unwrap_or((after, ""));
            message.source = Some(source.to_owned());
            rest = tail.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        let numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
        if !numeric && !command.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ParseError::BadCommand);
        }
        message.command = command.to_owned();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                message.params.push(trailing.to_owned());
                break;
            }
            if message.params.len() == PARAMS_MAX - 1 {
                message.params.push(rest.to_owned());
                break;
            }
            let (param, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            message.params.push(param.to_owned());
            rest = tail;
        }
        Ok(message)
    }

    /// The command in upper case (commands are case-insensitive, RFC 2812 §2.3).
    pub fn verb(&self) -> String {
        self.command.to_ascii_uppercase()
    }

    /// The value of tag `key`, if the message has it (`Some("")` for a tag without a value).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Whether the last parameter is free text, written as trailing (`:`) even when one word
    /// would do, as servers write it: numerics, and PRIVMSG, NOTICE, PART, QUIT, KICK, TOPIC,
    /// AWAY, ERROR, PONG, CAP and FAIL.
    fn text_last(&self) -> bool {
        self.command.len() == 3 && self.command.bytes().all(|b| b.is_ascii_digit())
            || matches!(
                self.command.as_str(),
                "PRIVMSG" | "NOTICE" | "PART" | "QUIT" | "KICK" | "TOPIC" | "AWAY" | "ERROR" | "PONG" | "CAP" | "FAIL"
            )
    }

    /// Appends the message and its CRLF to `out`. The part after the tags is cut to
    /// [`BODY_BYTES_MAX`] octets at a character boundary of the last parameter, so no line we
    /// write is longer than a client must accept. The last parameter is written as trailing
    /// (`:`) when it is empty, has a space, starts with `:` or is free text; earlier ones are made
    /// well-formed (see `push_middle`).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut line = String::new();
        if !self.tags.is_empty() {
            line.push('@');
            for (i, (key, value)) in self.tags.iter().enumerate() {
                if i > 0 {
                    line.push(';');
                }
                line.push_str(key);
                if let Some(value) = value {
                    line.push('=');
                    escape_tag_value(value, &mut line);
                }
            }
            line.push(' ');
        }
        let body_start = line.len();
        if let Some(source) = &self.source {
            let _ = write!(line, ":{source} ");
        }
        line.push_str(&self.command);
        let last = self.params.len().saturating_sub(1);
        for (i, param) in self.params.iter().enumerate() {
            line.push(' ');
            if i == last {
                if param.is_empty() || param.contains(' ') || param.starts_with(':') || self.text_last() {
                    line.push(':');
                }
                line.push_str(param);
            } else {
                push_middle(&mut line, param);
            }
        }
        if line.len() - body_start > BODY_BYTES_MAX {
            let mut cut = body_start + BODY_BYTES_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// The message as one line with its CRLF.
    pub fn to_line(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn parses_tags_source_command_and_params() {
        let m = Message::parse("@label=a\\sb\\:c;+draft/typing;x= :nick!u@h PRIVMSG #chan :hello there").unwrap();
        assert_eq!(
            m.tags,
            vec![("label".into(), Some("a b;c".into())), ("+draft/typing".into(), None), ("x".into(), None)]
        );
        assert_eq!(m.tag("label"), Some("a b;c"));
        assert_eq!(m.source.as_deref(), Some("nick!u@h"));
        assert_eq!(m.verb(), "PRIVMSG");
        assert_eq!(m.params, vec!["#chan", "hello there"]);
    }

    #[test]
    fn repeated_spaces_and_empty_trailing_are_handled() {
        let m = Message::parse("topic   #a   :").unwrap();
        assert_eq!((m.verb().as_str(), m.params.clone()), ("TOPIC", vec!["#a".to_owned(), String::new()]));
        let m = Message::parse("USER guest 0 * :Real Name").unwrap();
        assert_eq!(m.params, vec!["guest", "0", "*", "Real Name"]);
        assert_eq!(Message::parse("PING").unwrap().params, Vec::<String>::new());
        assert_eq!(Message::parse("NICK a  ").unwrap().params, vec!["a"]);
    }

    #[test]
    fn bad_lines_are_errors() {
        assert_eq!(Message::parse(""), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("@a=b"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse(":src"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("PRIV-MSG x"), Err(ParseError::BadCommand));
        assert_eq!(Message::parse("12 x"), Err(ParseError::BadCommand));
        assert_eq!(Message::parse("PRIVMSG #a :a\0b"), Err(ParseError::ForbiddenOctet));
        assert_eq!(Message::parse("PRIVMSG #a :a\rb"), Err(ParseError::ForbiddenOctet));
    }

    #[test]
    fn params_past_fifteen_join_the_last() {
        let line = format!("CMD {}", (1..=17).map(|i| i.to_string()).collect::<Vec<_>>().join(" "));
        let m = Message::parse(&line).unwrap();
        assert_eq!(m.params.len(), PARAMS_MAX);
        assert_eq!(m.params[14], "15 16 17");
    }

    #[test]
    fn writes_with_trailing_only_when_needed_and_escapes_tags() {
        let mut m = Message::new("PRIVMSG", ["#a", "hi there"]);
        m.source = Some("n!u@h".into());
        m.tags = vec![("time".into(), Some("2020-01-01T00:00:00.000Z".into())), ("k".into(), Some("a;b c\\".into()))];
        assert_eq!(m.to_line(), "@time=2020-01-01T00:00:00.000Z;k=a\\:b\\sc\\\\ :n!u@h PRIVMSG #a :hi there\r\n");
        assert_eq!(Message::new("NICK", ["bob"]).to_line(), "NICK bob\r\n");
        assert_eq!(Message::new("PRIVMSG", ["#a", "hi"]).to_line(), "PRIVMSG #a :hi\r\n");
        assert_eq!(Message::new("001", ["nick", "Welcome"]).to_line(), "001 nick :Welcome\r\n");
        assert_eq!(Message::new("TOPIC", ["#a", ""]).to_line(), "TOPIC #a :\r\n");
        assert_eq!(Message::new("PRIVMSG", ["#a", ":)"]).to_line(), "PRIVMSG #a ::)\r\n");
    }

    #[test]
    fn malformed_middle_parameters_are_made_well_formed() {
        let m = Message::new("403", ["nick", "#a b", "", ":x", "No such channel"]);
        assert_eq!(m.to_line(), "403 nick #a_b * _x :No such channel\r\n");
        let parsed = Message::parse(m.to_line().trim_end()).unwrap();
        assert_eq!(parsed.params.len(), 5);
    }

    #[test]
    fn round_trip_of_tag_values() {
        for value in ["plain", "a;b", "sp ace", "back\\slash", "cr\rlf\n", "é;\\s"] {
            let mut escaped = String::new();
            escape_tag_value(value, &mut escaped);
            assert_eq!(unescape_tag_value(&escaped), value);
        }
        assert_eq!(unescape_tag_value("trailing\\"), "trailing");
        assert_eq!(unescape_tag_value("\\b"), "b");
    }

    #[test]
    fn written_lines_are_cut_to_512_octets_at_a_character_boundary() {
        let body = "é".repeat(400);
        let mut m = Message::new("PRIVMSG", ["#a".to_owned(), body]);
        m.tags = vec![("msgid".into(), Some("X".repeat(100)))];
        let line = m.to_line();
        let after_tags = &line[line.find(' ').unwrap() + 1..];
        assert!(after_tags.len() <= 512, "{}", after_tags.len());
        assert!(after_tags.ends_with("é\r\n"));
    }

    /// A fixed-seed generator of lines from IRC's awkward characters (no dependency, same cases
    /// every run).
    pub(crate) fn random_lines(seed: u64, count: usize) -> Vec<String> {
        const ALPHABET: &[&str] =
            &[" ", " ", ":", "@", ";", "=", "\\", "#", ",", "!", "*", "a", "B", "7", "é", "\u{1}", "+", "-", "PRIVMSG"];
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        (0..count)
            .map(|_| {
                let len = next() % 40;
                (0..len).map(|_| ALPHABET[next() % ALPHABET.len()]).collect()
            })
            .collect()
    }

    #[test]
    fn what_parses_is_written_back_to_an_equal_message() {
        for line in random_lines(7, 20_000) {
            let Ok(parsed) = Message::parse(&line) else { continue };
            let written = parsed.to_line();
            assert!(written.ends_with("\r\n") && !written[..written.len() - 2].contains(['\r', '\n']));
            let middle_ok = parsed.params.iter().rev().skip(1).all(|p| !p.is_empty() && !p.starts_with(':'));
            if middle_ok {
                let again = Message::parse(written.trim_end_matches("\r\n")).expect("re-parse");
                assert_eq!(again.params, parsed.params, "{line:?} -> {written:?}");
                assert_eq!(again.tags, parsed.tags, "{line:?} -> {written:?}");
                assert_eq!(again.command, parsed.command);
            }
        }
    }

    #[test]
    fn size_limits_separate_tags_from_the_rest() {
        assert!(fits(&[b'a'; 510]));
        assert!(!fits(&[b'a'; 511]));
        let mut tagged = b"@".to_vec();
        tagged.extend([b'x'; 4094]);
        tagged.push(b' ');
        tagged.extend([b'a'; 510]);
        assert!(fits(&tagged));
        tagged.push(b'a');
        assert!(!fits(&tagged));
        let mut big_tags = b"@".to_vec();
        big_tags.extend([b'x'; 4095]);
        big_tags.extend(b" PING x");
        assert!(!fits(&big_tags));
    }
}
