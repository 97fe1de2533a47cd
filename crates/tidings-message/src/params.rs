//! Content-Type, Content-Disposition and Content-Language field values: media types, parameter
//! lists (RFC 2045 §5.1, RFC 2183 §2) with RFC 2231 continuations joined, language tags (RFC 3282).
//!
//! Parsing is lenient the way mail needs: comments are skipped, an unquoted value runs to the
//! next `;` (real mail has unquoted values with `=` and spaces in them), an unterminated quoted
//! string runs to the end, and anything unparsable is skipped up to the next `;`.

use std::borrow::Cow;

/// One `attribute=value` parameter: the name as written, the value unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub name: Cow<'a, [u8]>,
    pub value: Cow<'a, [u8]>,
}

/// A parsed Content-Type field.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentType<'a> {
    /// Type and subtype as written; `None` when the field does not start with `type/subtype`.
    pub media: Option<(&'a [u8], &'a [u8])>,
    pub params: Vec<Param<'a>>,
}

/// The value of the first parameter called `name` (compared case-insensitively).
pub(crate) fn param<'p>(params: &'p [Param<'_>], name: &[u8]) -> Option<&'p [u8]> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| &*p.value)
}

/// Parses a Content-Type field value (RFC 2045 §5.1).
pub(crate) fn content_type(value: &[u8]) -> ContentType<'_> {
    let mut lexer = Lexer::new(value);
    let media = lexer.token().and_then(|ty| {
        lexer.skip_cfws();
        if !lexer.eat(b'/') {
            return None;
        }
        lexer.skip_cfws();
        lexer.token().map(|subtype| (ty, subtype))
    });
    ContentType { media, params: lexer.params() }
}

/// Parses a Content-Disposition field value (RFC 2183 §2): the disposition type and parameters.
/// `None` when the value does not start with a token.
pub(crate) fn disposition(value: &[u8]) -> Option<(&[u8], Vec<Param<'_>>)> {
    let mut lexer = Lexer::new(value);
    let kind = lexer.token()?;
    Some((kind, lexer.params()))
}

/// Parses a Content-Language field value (RFC 3282 §2): the comma-separated language tags.
pub(crate) fn languages(value: &[u8]) -> Vec<&[u8]> {
    let mut lexer = Lexer::new(value);
    let mut tags = Vec::new();
    loop {
        lexer.skip_cfws();
        if lexer.at_end() {
            break;
        }
        match lexer.token() {
            Some(tag) => tags.push(tag),
            None => lexer.pos += 1,
        }
        lexer.skip_cfws();
        lexer.eat(b',');
    }
    tags
}

/// Parses the first token of a field value, comments skipped (Content-Transfer-Encoding).
pub(crate) fn first_token(value: &[u8]) -> Option<&[u8]> {
    Lexer::new(value).token()
}

/// Decodes an RFC 2231 extended value (`charset'language'percent-encoded`) to UTF-8 as far as
/// the charset is known; other values are returned as UTF-8 (lossy). (Tests only: IMAP sends
/// extended values encoded.)
#[cfg(test)]
pub(crate) fn decode_extended(value: &[u8]) -> String {
    let mut pieces = value.splitn(3, |&b| b == b'\'');
    let (Some(charset), Some(_language), Some(encoded)) = (pieces.next(), pieces.next(), pieces.next()) else {
        return String::from_utf8_lossy(value).into_owned();
    };
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        match (encoded[i], hex(encoded.get(i + 1)), hex(encoded.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                bytes.push(high << 4 | low);
                i += 3;
            }
            (byte, _, _) => {
                bytes.push(byte);
                i += 1;
            }
        }
    }
    crate::search::to_utf8(bytes.into(), Some(charset)).into_owned()
}

#[cfg(test)]
fn hex(byte: Option<&u8>) -> Option<u8> {
    let byte = *byte?;
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// RFC 2045 `tspecials`.
fn is_tspecial(byte: u8) -> bool {
    matches!(
        byte,
        b'(' | b')' | b'<' | b'>' | b'@' | b',' | b';' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'='
    )
}

fn is_token_byte(byte: u8) -> bool {
    byte > b' ' && byte != 0x7f && !is_tspecial(byte)
}

/// A cursor over a structured field value.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        let mut lexer = Lexer { s, pos: 0 };
        lexer.skip_cfws();
        lexer
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace, line ends and (nested) comments.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(byte) = self.peek() {
            match byte {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.pos += 1,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ if depth > 0 => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    /// A quoted string at the cursor (which is on the opening quote), unquoted: quoted pairs
    /// and folding removed. Borrowed when there is neither.
    fn quoted(&mut self) -> Cow<'a, [u8]> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        while let Some(byte) = self.peek() {
            match byte {
                b'"' => break,
                b'\\' | b'\r' | b'\n' => {
                    let out = owned.get_or_insert_with(|| self.s[start..self.pos].to_vec());
                    if byte == b'\\'
                        && let Some(&escaped) = self.s.get(self.pos + 1)
                    {
                        out.push(escaped);
                        self.pos += 1;
                    }
                }
                _ => {
                    if let Some(out) = owned.as_mut() {
                        out.push(byte);
                    }
                }
            }
            self.pos += 1;
        }
        let end = self.pos;
        self.eat(b'"');
        match owned {
            Some(out) => Cow::Owned(out),
            None => Cow::Borrowed(&self.s[start..end]),
        }
    }

    /// An unquoted value: everything up to the next `;`, comment, or parameter that lacks its
    /// `;` (` name=`), trailing whitespace and folding removed.
    fn bare_value(&mut self) -> Cow<'a, [u8]> {
        let start = self.pos;
        while let Some(byte) = self.peek() {
            if byte == b';' || byte == b'(' {
                break;
            }
            if byte.is_ascii_whitespace() && self.param_follows() {
                break;
            }
            self.pos += 1;
        }
        let value = crate::header::trim_end(&self.s[start..self.pos]);
        if value.contains(&b'\n') { crate::header::unfold(value) } else { Cow::Borrowed(value) }
    }

    /// Whether `name=` comes next (after whitespace and comments).
    fn param_follows(&self) -> bool {
        let mut probe = Lexer { s: self.s, pos: self.pos };
        probe.skip_cfws();
        if probe.token().is_none() {
            return false;
        }
        probe.skip_cfws();
        probe.peek() == Some(b'=')
    }

    /// Skips to the next `;` outside quotes (or the end).
    fn skip_to_semicolon(&mut self) {
        let mut in_quotes = false;
        while let Some(byte) = self.peek() {
            match byte {
                b';' if !in_quotes => return,
                b'"' => in_quotes = !in_quotes,
                b'\\' if in_quotes => self.pos += 1,
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// The `;`-separated parameter list that follows a media or disposition type.
    fn params(&mut self) -> Vec<Param<'a>> {
        let mut params = Vec::new();
        loop {
            self.skip_cfws();
            if self.at_end() {
                break;
            }
            // A parameter whose `;` is missing (`a=1 b=2`) still counts; other junk after a
            // value or a type is skipped up to the next `;`.
            if !self.eat(b';') && !self.param_follows() {
                self.skip_to_semicolon();
                continue;
            }
            self.skip_cfws();
            let Some(name) = self.token() else {
                continue;
            };
            self.skip_cfws();
            if !self.eat(b'=') {
                continue;
            }
            self.skip_cfws();
            let value = match self.peek() {
                Some(b'"') => self.quoted(),
                _ => self.bare_value(),
            };
            params.push(Param { name: Cow::Borrowed(name), value });
        }
        join_continuations(params)
    }
}

/// A parameter name split per RFC 2231 §3–4: `base*section*`.
struct Section<'n> {
    base: &'n [u8],
    number: Option<u32>,
    extended: bool,
}

fn section(name: &[u8]) -> Section<'_> {
    let (name, extended) = match name.strip_suffix(b"*") {
        Some(stripped) => (stripped, true),
        None => (name, false),
    };
    if let Some(star) = name.iter().rposition(|&b| b == b'*') {
        let digits = &name[star + 1..];
        if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            let number = std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok());
            if number.is_some() {
                return Section { base: &name[..star], number, extended };
            }
        }
    }
    Section { base: name, number: None, extended }
}

/// Joins RFC 2231 continuations (`name*0`, `name*1*`, ...) into one parameter at the place of
/// the first, as RFC 2231 §3 asks IMAP servers to do for BODYSTRUCTURE. The joined value stays
/// in its encoded form (`name*` = `charset'language'%XX...`) when any section is extended;
/// unextended sections are percent-encoded where needed so the whole value decodes as one.
fn join_continuations(params: Vec<Param<'_>>) -> Vec<Param<'_>> {
    if !params.iter().any(|p| section(&p.name).number.is_some()) {
        return params;
    }
    let mut out: Vec<Param<'_>> = Vec::with_capacity(params.len());
    let mut joined: Vec<bool> = vec![false; params.len()];
    for i in 0..params.len() {
        if joined[i] {
            continue;
        }
        let first = section(&params[i].name);
        if first.number.is_none() {
            out.push(params[i].clone());
            continue;
        }
        let mut sections: Vec<(u32, usize)> = Vec::new();
        for (j, p) in params.iter().enumerate().skip(i) {
            let s = section(&p.name);
            if let Some(number) = s.number
                && !joined[j]
                && s.base.eq_ignore_ascii_case(first.base)
            {
                joined[j] = true;
                sections.push((number, j));
            }
        }
        sections.sort_by_key(|&(number, _)| number);
        let any_extended = sections.iter().any(|&(_, j)| section(&params[j].name).extended);
        let mut value = Vec::new();
        for (k, &(_, j)) in sections.iter().enumerate() {
            let s = section(&params[j].name);
            let v = &params[j].value;
            if !any_extended || s.extended {
                value.extend_from_slice(v);
            } else {
                if k == 0 {
                    value.extend_from_slice(b"''");
                }
                percent_encode(v, &mut value);
            }
        }
        let name_len = first.base.len() + usize::from(any_extended);
        let name = match &params[i].name {
            // `base*0...` starts with `base*`, so the joined name is a prefix of the first one.
            Cow::Borrowed(n) => Cow::Borrowed(&n[..name_len]),
            Cow::Owned(n) => Cow::Owned(n[..name_len].to_vec()),
        };
        out.push(Param { name, value: Cow::Owned(value) });
    }
    out
}

/// Appends `value` percent-encoded per RFC 2231 §7 (`attribute-char` kept).
fn percent_encode(value: &[u8], out: &mut Vec<u8>) {
    for &byte in value {
        if is_token_byte(byte) && !matches!(byte, b'*' | b'\'' | b'%') {
            out.push(byte);
        } else {
            out.extend_from_slice(format!("%{byte:02X}").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(params: &[Param<'_>]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|p| (String::from_utf8_lossy(&p.name).into_owned(), String::from_utf8_lossy(&p.value).into_owned()))
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn media_type_and_parameters_keep_their_case() {
        let ct = content_type(b" Text/HTML; Charset=\"UTF-8\"; Format=flowed\r\n");
        assert_eq!(ct.media, Some((&b"Text"[..], &b"HTML"[..])));
        assert_eq!(pairs(&ct.params), [pair("Charset", "UTF-8"), pair("Format", "flowed")]);
        assert_eq!(param(&ct.params, b"charset"), Some(&b"UTF-8"[..]));
    }

    #[test]
    fn comments_and_folding_are_skipped() {
        let ct = content_type(b" text/plain;\r\n\tcharset=us-ascii (Plain text)\r\n");
        assert_eq!(pairs(&ct.params), [pair("charset", "us-ascii")]);
        let ct = content_type(b" (c) multipart (x) / mixed; boundary=\"a\r\n b\"");
        assert_eq!(ct.media, Some((&b"multipart"[..], &b"mixed"[..])));
        assert_eq!(pairs(&ct.params), [pair("boundary", "a b")]);
    }

    #[test]
    fn quoted_pairs_are_unescaped() {
        let ct = content_type(br#"application/x; name="a \"b\" \\c""#);
        assert_eq!(pairs(&ct.params), [pair("name", r#"a "b" \c"#)]);
    }

    #[test]
    fn an_unquoted_value_runs_to_the_next_semicolon() {
        let ct = content_type(b"multipart/mixed; boundary=----=_Part_1; name=a b.pdf ;x=y");
        assert_eq!(pairs(&ct.params), [pair("boundary", "----=_Part_1"), pair("name", "a b.pdf"), pair("x", "y")]);
    }

    #[test]
    fn a_type_without_subtype_is_no_media_type_but_keeps_its_parameters() {
        let ct = content_type(b"text; charset=utf-8");
        assert_eq!(ct.media, None);
        assert_eq!(pairs(&ct.params), [pair("charset", "utf-8")]);
    }

    #[test]
    fn junk_between_parameters_is_skipped() {
        let ct = content_type(b"text/plain; ; garbage ; a=1 junk; =2; b=\"2\" c; d=4");
        assert_eq!(pairs(&ct.params), [pair("a", "1 junk"), pair("b", "2"), pair("d", "4")]);
    }

    #[test]
    fn a_parameter_whose_semicolon_is_missing_still_counts() {
        let ct = content_type(b"multipart/mixed\r\n\tboundary=\"b\"");
        assert_eq!(pairs(&ct.params), [pair("boundary", "b")]);
        let ct = content_type(b"message/external-body; access-type=mail-server\r\n  server=\"x@y\"");
        assert_eq!(pairs(&ct.params), [pair("access-type", "mail-server"), pair("server", "x@y")]);
        let ct = content_type(b"text/plain; a=\"\"\r\n  a=\"2\"");
        assert_eq!(pairs(&ct.params), [pair("a", ""), pair("a", "2")]);
    }

    #[test]
    fn rfc2231_continuations_are_joined_in_order() {
        let ct = content_type(b"application/x; name*1=\"b c\"; name*0=a; other=1");
        assert_eq!(pairs(&ct.params), [pair("name", "ab c"), pair("other", "1")]);
    }

    #[test]
    fn rfc2231_extended_continuations_stay_encoded_under_a_starred_name() {
        let ct = content_type(
            b"application/x; title*0*=us-ascii'en'This%20is%20even%20more%20; \
              title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
        );
        assert_eq!(
            pairs(&ct.params),
            [pair("title*", "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!")]
        );
        assert_eq!(decode_extended(&ct.params[0].value), "This is even more ***fun*** isn't it!");
    }

    #[test]
    fn a_single_extended_parameter_is_kept_as_written() {
        let ct = content_type(b"application/x; name*=utf-8''%E2%82%AC.txt");
        assert_eq!(pairs(&ct.params), [pair("name*", "utf-8''%E2%82%AC.txt")]);
        assert_eq!(decode_extended(&ct.params[0].value), "€.txt");
    }

    #[test]
    fn disposition_and_languages() {
        let (kind, params) = disposition(b" Attachment; filename=\"a.txt\"").unwrap();
        assert_eq!(kind, b"Attachment");
        assert_eq!(pairs(&params), [pair("filename", "a.txt")]);
        assert_eq!(languages(b" en-US, (c) fr\r\n"), [&b"en-US"[..], b"fr"]);
        assert_eq!(first_token(b" (c) Base64 \r\n"), Some(&b"Base64"[..]));
    }
}
