//! Command syntax `imap-codec` does not parse, read from the raw command when its parse failed:
//! LIST-EXTENDED selection and return options and multiple patterns (RFC 5258, RFC 5819 LIST
//! STATUS, RFC 6154 SPECIAL-USE), and SEARCH return options (RFC 4731 ESEARCH, RFC 9051 §6.4.4).

use std::borrow::Cow;

use imap_codec::imap_types::status::StatusDataItemName;

/// One STATUS data item (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    Recent,
    HighestModSeq,
}

impl StatusItem {
    pub(crate) fn from_codec(item: &StatusDataItemName) -> Option<StatusItem> {
        Some(match item {
            StatusDataItemName::Messages => StatusItem::Messages,
            StatusDataItemName::UidNext => StatusItem::UidNext,
            StatusDataItemName::UidValidity => StatusItem::UidValidity,
            StatusDataItemName::Unseen => StatusItem::Unseen,
            StatusDataItemName::Deleted => StatusItem::Deleted,
            StatusDataItemName::Size => StatusItem::Size,
            StatusDataItemName::Recent => StatusItem::Recent,
            StatusDataItemName::HighestModSeq => StatusItem::HighestModSeq,
            StatusDataItemName::DeletedStorage => return None,
        })
    }

    fn from_atom(atom: &[u8]) -> Option<StatusItem> {
        let items = [
            ("MESSAGES", StatusItem::Messages),
            ("UIDNEXT", StatusItem::UidNext),
            ("UIDVALIDITY", StatusItem::UidValidity),
            ("UNSEEN", StatusItem::Unseen),
            ("DELETED", StatusItem::Deleted),
            ("SIZE", StatusItem::Size),
            ("RECENT", StatusItem::Recent),
            ("HIGHESTMODSEQ", StatusItem::HighestModSeq),
        ];
        items.iter().find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(atom)).map(|&(_, item)| item)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::Recent => "RECENT",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        }
    }
}

/// A LIST or LSUB command with everything LIST-EXTENDED may add.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ListCommand {
    pub(crate) lsub: bool,
    pub(crate) reference: Vec<u8>,
    /// One or more mailbox patterns.
    pub(crate) patterns: Vec<Vec<u8>>,
    /// Selection option SUBSCRIBED.
    pub(crate) select_subscribed: bool,
    /// Selection option SPECIAL-USE (RFC 6154 §3).
    pub(crate) select_special_use: bool,
    /// Selection option RECURSIVEMATCH.
    pub(crate) recursive_match: bool,
    /// Return option SUBSCRIBED (or implied by the selection option).
    pub(crate) return_subscribed: bool,
    /// Return option SPECIAL-USE.
    pub(crate) return_special_use: bool,
    /// Return option STATUS and its items (RFC 5819).
    pub(crate) return_status: Option<Vec<StatusItem>>,
    /// Any LIST-EXTENDED syntax was used: CHILDINFO may be returned.
    pub(crate) extended: bool,
}

/// ESEARCH result options (RFC 4731 §3.1, RFC 9051 §6.4.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SearchReturn {
    pub(crate) min: bool,
    pub(crate) max: bool,
    pub(crate) all: bool,
    pub(crate) count: bool,
}

/// A SEARCH command with `RETURN (...)`: the return options, and the command without them, to
/// be parsed by `imap-codec`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SearchWithReturn {
    pub(crate) options: SearchReturn,
    pub(crate) rest: Vec<u8>,
}

/// Why an extended command was refused: not one we read at all, or one we read that is wrong.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not this syntax: fall back to a plain syntax error.
    NotThis,
    /// This syntax, with this error (for a tagged `BAD`).
    Bad(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token<'a> {
    Atom(&'a [u8]),
    String(Cow<'a, [u8]>),
    Open,
    Close,
}

/// A cursor over the raw octets of one command (literals inline, as received).
struct Tokens<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn new(input: &'a [u8]) -> Tokens<'a> {
        Tokens { input, pos: 0 }
    }

    /// The next token and where it starts; `None` at the end of the command.
    fn next(&mut self) -> Result<Option<(usize, Token<'a>)>, Refusal> {
        while self.input.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        let start = self.pos;
        let rest = &self.input[self.pos..];
        let Some(&first) = rest.first() else {
            return Ok(None);
        };
        let token = match first {
            b'\r' | b'\n' => return Ok(None),
            b'(' => {
                self.pos += 1;
                Token::Open
            }
            b')' => {
                self.pos += 1;
                Token::Close
            }
            b'"' => {
                let mut value = Vec::new();
                let mut i = 1;
                loop {
                    match rest.get(i) {
                        Some(b'\\') => {
                            value.push(*rest.get(i + 1).ok_or(Refusal::NotThis)?);
                            i += 2;
                        }
                        Some(b'"') => break,
                        Some(b'\r' | b'\n') | None => return Err(Refusal::NotThis),
                        Some(&b) => {
                            value.push(b);
                            i += 1;
                        }
                    }
                }
                self.pos += i + 1;
                Token::String(Cow::Owned(value))
            }
            b'{' | b'~' => {
                let open = usize::from(first == b'~');
                if rest.get(open) != Some(&b'{') {
                    return Err(Refusal::NotThis);
                }
                let close = rest.iter().position(|&b| b == b'}').ok_or(Refusal::NotThis)?;
                let digits = &rest[open + 1..close];
                let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                let length: usize =
                    std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).ok_or(Refusal::NotThis)?;
                let mut data_start = close + 1;
                if rest.get(data_start) == Some(&b'\r') {
                    data_start += 1;
                }
                if rest.get(data_start) != Some(&b'\n') {
                    return Err(Refusal::NotThis);
                }
                data_start += 1;
                let data_end = data_start.checked_add(length).ok_or(Refusal::NotThis)?;
                let data = rest.get(data_start..data_end).ok_or(Refusal::NotThis)?;
                self.pos += data_end;
                Token::String(Cow::Borrowed(data))
            }
            _ => {
                let end = rest
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'(' | b')' | b'"' | b'\r' | b'\n') || b < 0x20 || b == 0x7f)
                    .unwrap_or(rest.len());
                if end == 0 {
                    return Err(Refusal::NotThis);
                }
                self.pos += end;
                Token::Atom(&rest[..end])
            }
        };
        Ok(Some((start, token)))
    }

    fn expect_next(&mut self) -> Result<(usize, Token<'a>), Refusal> {
        self.next()?.ok_or(Refusal::NotThis)
    }

    /// The atoms up to the `)` that closes an already read `(`.
    fn atoms_until_close(&mut self) -> Result<Vec<&'a [u8]>, Refusal> {
        let mut atoms = Vec::new();
        loop {
            match self.expect_next()?.1 {
                Token::Atom(atom) => atoms.push(atom),
                Token::Close => return Ok(atoms),
                _ => return Err(Refusal::NotThis),
            }
        }
    }
}

fn is(atom: &[u8], word: &str) -> bool {
    atom.eq_ignore_ascii_case(word.as_bytes())
}

/// Reads `tag [UID] SEARCH RETURN (options) <criteria>`.
pub(crate) fn search_with_return(raw: &[u8]) -> Result<SearchWithReturn, Refusal> {
    let mut tokens = Tokens::new(raw);
    let Token::Atom(_) = tokens.expect_next()?.1 else {
        return Err(Refusal::NotThis);
    };
    let mut command = tokens.expect_next()?.1;
    if matches!(command, Token::Atom(word) if is(word, "UID")) {
        command = tokens.expect_next()?.1;
    }
    if !matches!(command, Token::Atom(word) if is(word, "SEARCH")) {
        return Err(Refusal::NotThis);
    }
    let (return_start, word) = tokens.expect_next()?;
    if !matches!(word, Token::Atom(word) if is(word, "RETURN")) {
        return Err(Refusal::NotThis);
    }
    if tokens.expect_next()?.1 != Token::Open {
        return Err(Refusal::Bad("RETURN needs a parenthesized list"));
    }
    let mut options = SearchReturn::default();
    for atom in tokens.atoms_until_close()? {
        match atom {
            _ if is(atom, "MIN") => options.min = true,
            _ if is(atom, "MAX") => options.max = true,
            _ if is(atom, "ALL") => options.all = true,
            _ if is(atom, "COUNT") => options.count = true,
            _ if is(atom, "SAVE") => return Err(Refusal::Bad("SAVE is not supported")),
            _ => return Err(Refusal::Bad("Unknown SEARCH return option")),
        }
    }
    // RFC 4731 §3.1: RETURN () means ALL.
    if options == SearchReturn::default() {
        options.all = true;
    }
    let after = tokens.pos;
    let criteria = raw[after..].strip_prefix(b" ").ok_or(Refusal::NotThis)?;
    let mut rest = raw[..return_start].to_vec();
    rest.extend_from_slice(criteria);
    Ok(SearchWithReturn { options, rest })
}

/// Reads `tag APPEND mailbox [flags] [date] UTF8 (literal8)` (RFC 6855 §4) and gives the
/// command with the literal8 in place of the `UTF8 (...)` wrapper, for `imap-codec`.
pub(crate) fn append_utf8(raw: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut tokens = Tokens::new(raw);
    let Token::Atom(_) = tokens.expect_next()?.1 else {
        return Err(Refusal::NotThis);
    };
    if !matches!(tokens.expect_next()?.1, Token::Atom(word) if is(word, "APPEND")) {
        return Err(Refusal::NotThis);
    }
    // The mailbox, then optional flags and date.
    tokens.expect_next()?;
    let wrapper_start = loop {
        match tokens.expect_next()? {
            (_, Token::Open) => {
                tokens.atoms_until_close()?;
            }
            (_, Token::String(_)) => {}
            (start, Token::Atom(word)) if is(word, "UTF8") => break start,
            _ => return Err(Refusal::NotThis),
        }
    };
    if tokens.expect_next()?.1 != Token::Open {
        return Err(Refusal::NotThis);
    }
    let (literal_start, Token::String(_)) = tokens.expect_next()? else {
        return Err(Refusal::NotThis);
    };
    let literal_end = tokens.pos;
    if tokens.expect_next()?.1 != Token::Close || tokens.next()?.is_some() {
        return Err(Refusal::NotThis);
    }
    let mut rebuilt = raw[..wrapper_start].to_vec();
    rebuilt.extend_from_slice(&raw[literal_start..literal_end]);
    rebuilt.extend_from_slice(b"\r\n");
    Ok(rebuilt)
}

/// Reads a LIST command in its LIST-EXTENDED form (RFC 5258 §6 `list`).
pub(crate) fn list_extended(raw: &[u8]) -> Result<ListCommand, Refusal> {
    let mut tokens = Tokens::new(raw);
    let Token::Atom(_) = tokens.expect_next()?.1 else {
        return Err(Refusal::NotThis);
    };
    if !matches!(tokens.expect_next()?.1, Token::Atom(word) if is(word, "LIST")) {
        return Err(Refusal::NotThis);
    }
    let mut list = ListCommand { extended: true, ..ListCommand::default() };
    let mut next = tokens.expect_next()?.1;
    if next == Token::Open {
        for option in tokens.atoms_until_close()? {
            match option {
                _ if is(option, "SUBSCRIBED") => {
                    list.select_subscribed = true;
                    list.return_subscribed = true;
                }
                _ if is(option, "SPECIAL-USE") => {
                    list.select_special_use = true;
                    list.return_special_use = true;
                }
                _ if is(option, "RECURSIVEMATCH") => list.recursive_match = true,
                _ if is(option, "REMOTE") => {}
                _ => return Err(Refusal::Bad("Unknown LIST selection option")),
            }
        }
        // RFC 5258 §3: RECURSIVEMATCH alone is an error.
        if list.recursive_match && !list.select_subscribed && !list.select_special_use {
            return Err(Refusal::Bad("RECURSIVEMATCH needs another selection option"));
        }
        next = tokens.expect_next()?.1;
    }
    list.reference = match next {
        Token::Atom(atom) => atom.to_vec(),
        Token::String(string) => string.into_owned(),
        _ => return Err(Refusal::NotThis),
    };
    match tokens.expect_next()?.1 {
        Token::Atom(atom) => list.patterns.push(atom.to_vec()),
        Token::String(string) => list.patterns.push(string.into_owned()),
        Token::Open => loop {
            match tokens.expect_next()?.1 {
                Token::Atom(atom) => list.patterns.push(atom.to_vec()),
                Token::String(string) => list.patterns.push(string.into_owned()),
                Token::Close if !list.patterns.is_empty() => break,
                _ => return Err(Refusal::NotThis),
            }
        },
        Token::Close => return Err(Refusal::NotThis),
    }
    match tokens.next()? {
        None => return Ok(list),
        Some((_, Token::Atom(word))) if is(word, "RETURN") => {}
        Some(_) => return Err(Refusal::NotThis),
    }
    if tokens.expect_next()?.1 != Token::Open {
        return Err(Refusal::Bad("RETURN needs a parenthesized list"));
    }
    loop {
        match tokens.expect_next()?.1 {
            Token::Close => break,
            Token::Atom(option) if is(option, "SUBSCRIBED") => list.return_subscribed = true,
            Token::Atom(option) if is(option, "CHILDREN") => {}
            Token::Atom(option) if is(option, "SPECIAL-USE") => list.return_special_use = true,
            Token::Atom(option) if is(option, "STATUS") => {
                if tokens.expect_next()?.1 != Token::Open {
                    return Err(Refusal::Bad("STATUS needs a parenthesized list"));
                }
                let mut items = Vec::new();
                for atom in tokens.atoms_until_close()? {
                    items.push(StatusItem::from_atom(atom).ok_or(Refusal::Bad("Unknown STATUS item"))?);
                }
                if items.is_empty() {
                    return Err(Refusal::Bad("STATUS needs at least one item"));
                }
                list.return_status = Some(items);
            }
            _ => return Err(Refusal::Bad("Unknown LIST return option")),
        }
    }
    match tokens.next()? {
        None => Ok(list),
        Some(_) => Err(Refusal::NotThis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_return_options_are_taken_out_of_the_command() {
        let parsed = search_with_return(b"A1 UID SEARCH RETURN (MIN count) UNSEEN SUBJECT {3}\r\nabc\r\n").unwrap();
        assert_eq!(parsed.options, SearchReturn { min: true, count: true, ..SearchReturn::default() });
        assert_eq!(parsed.rest, b"A1 UID SEARCH UNSEEN SUBJECT {3}\r\nabc\r\n");
        let parsed = search_with_return(b"A2 SEARCH RETURN () ALL\r\n").unwrap();
        assert_eq!(parsed.options, SearchReturn { all: true, ..SearchReturn::default() });
        assert_eq!(search_with_return(b"A3 SEARCH RETURN (SAVE) ALL\r\n"), Err(Refusal::Bad("SAVE is not supported")));
        assert_eq!(search_with_return(b"A4 SEARCH ALL\r\n"), Err(Refusal::NotThis));
    }

    #[test]
    fn append_utf8_is_unwrapped() {
        let raw = b"A1 APPEND INBOX (\\Seen) \"05-Jan-2026 10:00:00 +0000\" UTF8 (~{3+}\r\n\xc3\xa9!)\r\n";
        assert_eq!(
            append_utf8(raw).unwrap(),
            b"A1 APPEND INBOX (\\Seen) \"05-Jan-2026 10:00:00 +0000\" ~{3+}\r\n\xc3\xa9!\r\n"
        );
        assert_eq!(append_utf8(b"A1 APPEND INBOX {3}\r\nabc\r\n"), Err(Refusal::NotThis));
    }

    #[test]
    fn list_extended_options_and_patterns_are_read() {
        let list =
            list_extended(b"A1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX\" {4}\r\nWork %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n")
                .unwrap();
        assert!(list.select_subscribed && list.recursive_match && list.return_subscribed);
        assert_eq!(list.patterns, [&b"INBOX"[..], b"Work", b"%"]);
        assert_eq!(list.return_status, Some(vec![StatusItem::Messages, StatusItem::Unseen]));
        let list = list_extended(b"A2 LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\n").unwrap();
        assert!(list.return_special_use && !list.select_special_use);
        assert_eq!(
            list_extended(b"A3 LIST (RECURSIVEMATCH) \"\" *\r\n"),
            Err(Refusal::Bad("RECURSIVEMATCH needs another selection option"))
        );
        assert_eq!(list_extended(b"A4 LIST (BOGUS) \"\" *\r\n"), Err(Refusal::Bad("Unknown LIST selection option")));
        assert_eq!(list_extended(b"A5 LIST \"\" * trailing\r\n"), Err(Refusal::NotThis));
        assert_eq!(list_extended(b"A6 LIST \"\" {18446744073709551615}\r\n"), Err(Refusal::NotThis));
    }
}
