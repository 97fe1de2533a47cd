//! Header blocks: fields as stored, and their values unfolded (RFC 5322 §2.2).

use std::borrow::Cow;

/// One header field as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// The field name as written, without the whitespace some writers put before the colon.
    /// Empty for a line that has no colon (not a field, but kept so that nothing is lost).
    pub name: &'a [u8],
    /// The field body: the octets after the colon through the line end of the field's last line
    /// (folded lines included).
    pub value: &'a [u8],
    /// The whole field, first octet of the name through the line end of its last line.
    pub raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// Whether this field's name is `name`, compared as RFC 5322 says (case-insensitively).
    pub fn is(&self, name: &[u8]) -> bool {
        !self.name.is_empty() && self.name.eq_ignore_ascii_case(name)
    }

    /// The value unfolded (line ends followed by whitespace removed) and trimmed of surrounding
    /// whitespace: the "field value" the ENVELOPE and BODYSTRUCTURE strings carry.
    pub fn unfolded(&self) -> Cow<'a, [u8]> {
        unfold(self.value)
    }
}

/// The fields of a header block, in order. Stops at the blank line that ends the block, if any.
pub(crate) fn fields(block: &[u8]) -> Fields<'_> {
    Fields { block, pos: 0 }
}

/// Iterator over the fields of a header block (see [`fields`]).
pub(crate) struct Fields<'a> {
    block: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let rest = self.block.get(self.pos..)?;
        if rest.is_empty() || rest[0] == b'\n' || rest.starts_with(b"\r\n") {
            self.pos = self.block.len();
            return None;
        }
        // A field runs through every following line that begins with whitespace (folding).
        let mut end = line_end(rest, 0);
        while end < rest.len() && matches!(rest[end], b' ' | b'\t') {
            end = line_end(rest, end);
        }
        self.pos += end;
        let raw = &rest[..end];
        let first_line = &raw[..line_end(raw, 0)];
        let starts_folded = matches!(raw[0], b' ' | b'\t');
        let (name, value) = match memchr::memchr(b':', first_line) {
            Some(colon) if !starts_folded => (trim_end(&raw[..colon]), &raw[colon + 1..]),
            _ => (&raw[..0], raw),
        };
        Some(Field { name, value, raw })
    }
}

/// The first field named `name` in a header block.
pub(crate) fn find<'a>(block: &'a [u8], name: &[u8]) -> Option<Field<'a>> {
    fields(block).find(|field| field.is(name))
}

/// The offset just past the line that contains `at` (past its LF), or the end of `bytes`.
pub(crate) fn line_end(bytes: &[u8], at: usize) -> usize {
    match memchr::memchr(b'\n', &bytes[at..]) {
        Some(i) => at + i + 1,
        None => bytes.len(),
    }
}

/// The blank line that ends a header block (CRLF or a bare LF), or `None` when the block has
/// none (a message that is all header, or a MIME header cut short by a boundary).
pub(crate) fn blank_line(block: &[u8]) -> Option<&[u8]> {
    if block == b"\r\n" || block == b"\n" {
        Some(block)
    } else if block.ends_with(b"\n\r\n") {
        Some(&block[block.len() - 2..])
    } else if block.ends_with(b"\n\n") {
        Some(&block[block.len() - 1..])
    } else {
        None
    }
}

/// Unfolds a field value (RFC 5322 §2.2.3: removes each line end that is followed by
/// whitespace) and trims the whitespace and line ends around it. Borrows when nothing is folded.
pub(crate) fn unfold(value: &[u8]) -> Cow<'_, [u8]> {
    let value = trim(value);
    if memchr::memchr(b'\n', value).is_none() {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\r' if value.get(i + 1) == Some(&b'\n') => i += 2,
            b'\n' => i += 1,
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// `bytes` without leading and trailing whitespace (SP, HT, CR, LF).
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    trim_end(&bytes[start..])
}

/// `bytes` without trailing whitespace (SP, HT, CR, LF).
pub(crate) fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &bytes[..end]
}

/// `bytes` without trailing spaces and tabs.
pub(crate) fn trim_end_blanks(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(block: &[u8]) -> Vec<String> {
        fields(block).map(|f| String::from_utf8_lossy(f.name).into_owned()).collect()
    }

    #[test]
    fn fields_include_their_folded_lines_and_stop_at_the_blank_line() {
        let block = b"Subject: a\r\n b\r\nTo: x\r\n\r\nBody: no\r\n";
        let all: Vec<_> = fields(block).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(all[0].value, b" a\r\n b\r\n");
        assert_eq!(all[1].raw, b"To: x\r\n");
    }

    #[test]
    fn whitespace_before_the_colon_is_not_part_of_the_name() {
        assert_eq!(names(b"Subject : x\r\n"), ["Subject"]);
    }

    #[test]
    fn a_line_without_a_colon_is_kept_as_a_nameless_field() {
        assert_eq!(names(b"garbage\r\nTo: x\r\n"), ["", "To"]);
    }

    #[test]
    fn a_last_field_without_a_line_end_is_still_a_field() {
        let all: Vec<_> = fields(b"To: x").collect();
        assert_eq!(all[0].value, b" x");
    }

    #[test]
    fn unfolding_removes_line_ends_before_whitespace_and_trims() {
        assert_eq!(&*unfold(b" a\r\n b\r\n\tc \r\n"), b"a b\tc");
        assert!(matches!(unfold(b" plain\r\n"), Cow::Borrowed(b"plain")));
    }

    #[test]
    fn the_blank_line_is_found_with_either_line_end() {
        assert_eq!(blank_line(b"A: b\r\n\r\n"), Some(&b"\r\n"[..]));
        assert_eq!(blank_line(b"A: b\n\n"), Some(&b"\n"[..]));
        assert_eq!(blank_line(b"\r\n"), Some(&b"\r\n"[..]));
        assert_eq!(blank_line(b"A: b\r\n"), None);
        assert_eq!(blank_line(b""), None);
    }
}
