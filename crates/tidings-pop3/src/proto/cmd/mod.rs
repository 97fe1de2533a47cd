//! Command lines (RFC 1939 §3): a case-insensitive keyword, then arguments separated by single
//! spaces. One file per command family: [`authorization`] (USER, PASS, AUTH, STLS, APOP),
//! [`transaction`] (STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET), and [`any_state`] (CAPA,
//! QUIT).
//!
//! Parsing is lenient where leniency is harmless (tabs or repeated spaces between words), and
//! exact where it matters: `PASS` takes the rest of its line verbatim, spaces included.

pub(crate) mod any_state;
pub(crate) mod authorization;
pub(crate) mod transaction;

/// The commands this server knows (RFC 1939 §§4-7, RFC 2449 §5, RFC 5034 §4, RFC 2595 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyword {
    User,
    Pass,
    Apop,
    Auth,
    Stls,
    Capa,
    Quit,
    Stat,
    List,
    Retr,
    Dele,
    Noop,
    Rset,
    Top,
    Uidl,
    /// A line with no keyword at all.
    Empty,
    Unknown,
}

impl Keyword {
    fn of(word: &[u8]) -> Keyword {
        const KEYWORDS: [(&[u8], Keyword); 15] = [
            (b"USER", Keyword::User),
            (b"PASS", Keyword::Pass),
            (b"APOP", Keyword::Apop),
            (b"AUTH", Keyword::Auth),
            (b"STLS", Keyword::Stls),
            (b"CAPA", Keyword::Capa),
            (b"QUIT", Keyword::Quit),
            (b"STAT", Keyword::Stat),
            (b"LIST", Keyword::List),
            (b"RETR", Keyword::Retr),
            (b"DELE", Keyword::Dele),
            (b"NOOP", Keyword::Noop),
            (b"RSET", Keyword::Rset),
            (b"TOP", Keyword::Top),
            (b"UIDL", Keyword::Uidl),
        ];
        if word.is_empty() {
            return Keyword::Empty;
        }
        KEYWORDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map_or(Keyword::Unknown, |&(_, keyword)| keyword)
    }

    /// The keyword as RFC 1939 spells it, for replies.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::User => "USER",
            Keyword::Pass => "PASS",
            Keyword::Apop => "APOP",
            Keyword::Auth => "AUTH",
            Keyword::Stls => "STLS",
            Keyword::Capa => "CAPA",
            Keyword::Quit => "QUIT",
            Keyword::Stat => "STAT",
            Keyword::List => "LIST",
            Keyword::Retr => "RETR",
            Keyword::Dele => "DELE",
            Keyword::Noop => "NOOP",
            Keyword::Rset => "RSET",
            Keyword::Top => "TOP",
            Keyword::Uidl => "UIDL",
            Keyword::Empty | Keyword::Unknown => "?",
        }
    }

    /// How the command is written, for `-ERR Syntax: ...` replies.
    pub(crate) fn usage(self) -> &'static str {
        match self {
            Keyword::User => "USER name",
            Keyword::Pass => "PASS password",
            Keyword::Apop => "APOP name digest",
            Keyword::Auth => "AUTH [mechanism [initial-response]]",
            Keyword::Stls => "STLS",
            Keyword::Capa => "CAPA",
            Keyword::Quit => "QUIT",
            Keyword::Stat => "STAT",
            Keyword::List => "LIST [msg]",
            Keyword::Retr => "RETR msg",
            Keyword::Dele => "DELE msg",
            Keyword::Noop => "NOOP",
            Keyword::Rset => "RSET",
            Keyword::Top => "TOP msg n",
            Keyword::Uidl => "UIDL [msg]",
            Keyword::Empty | Keyword::Unknown => "?",
        }
    }
}

/// Most arguments any command takes (`TOP msg n`, `AUTH mechanism initial-response`).
const ARGUMENTS_MAX: usize = 2;

/// A command line split into its keyword and arguments.
#[derive(Debug)]
pub(crate) struct Command<'a> {
    pub(crate) keyword: Keyword,
    /// The keyword as the client wrote it (for transcripts).
    pub(crate) keyword_text: &'a [u8],
    /// Everything after the separator that follows the keyword, verbatim; `None` if the line is
    /// the keyword alone. `PASS` takes this as the password.
    pub(crate) rest: Option<&'a [u8]>,
}

fn is_separator(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

impl<'a> Command<'a> {
    pub(crate) fn parse(line: &'a [u8]) -> Command<'a> {
        let start = line.iter().position(|&b| !is_separator(b)).unwrap_or(line.len());
        let line = &line[start..];
        let (keyword_text, rest) = match line.iter().position(|&b| is_separator(b)) {
            Some(space) => (&line[..space], Some(&line[space + 1..])),
            None => (line, None),
        };
        Command { keyword: Keyword::of(keyword_text), keyword_text, rest }
    }

    /// The arguments as words. Each command checks their number against its syntax.
    pub(crate) fn arguments(&self) -> Arguments<'a> {
        let mut arguments = Arguments { words: [&[]; ARGUMENTS_MAX], count: 0 };
        let words = self.rest.unwrap_or_default().split(|&b| is_separator(b));
        for word in words.filter(|word| !word.is_empty()) {
            if let Some(slot) = arguments.words.get_mut(arguments.count) {
                *slot = word;
            }
            arguments.count += 1;
        }
        arguments
    }
}

/// The arguments of a command: how many there are, and the first [`ARGUMENTS_MAX`] of them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arguments<'a> {
    words: [&'a [u8]; ARGUMENTS_MAX],
    /// All the words, also those beyond `ARGUMENTS_MAX` (which no command accepts).
    count: usize,
}

impl<'a> Arguments<'a> {
    /// How many arguments were given, however many that is.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn get(&self, index: usize) -> Option<&'a [u8]> {
        self.words[..self.count.min(ARGUMENTS_MAX)].get(index).copied()
    }
}

/// Why a message-number argument names no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a decimal number (RFC 1939 §3: digits only, no sign).
    Invalid,
    /// A number, but too large to be any message's (or any count's).
    TooLarge,
}

/// Parses a decimal argument: ASCII digits only, no sign, no overflow.
pub(crate) fn parse_number(word: &[u8]) -> Result<u32, NumberError> {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::Invalid);
    }
    word.iter().try_fold(0u32, |value, &digit| {
        value.checked_mul(10).and_then(|v| v.checked_add(u32::from(digit - b'0'))).ok_or(NumberError::TooLarge)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(Command::parse(b"sTaT").keyword, Keyword::Stat);
        assert_eq!(Command::parse(b"top 1 2").keyword, Keyword::Top);
        assert_eq!(Command::parse(b"STATS").keyword, Keyword::Unknown);
        assert_eq!(Command::parse(b"").keyword, Keyword::Empty);
    }

    #[test]
    fn pass_keeps_the_rest_of_the_line_verbatim() {
        let command = Command::parse(b"PASS  two words ");
        assert_eq!(command.rest, Some(&b" two words "[..]));
    }

    #[test]
    fn arguments_are_counted_beyond_the_most_any_command_takes() {
        let arguments = Command::parse(b"TOP 1 2 3 4").arguments();
        assert_eq!((arguments.len(), arguments.get(1), arguments.get(2)), (4, Some(&b"2"[..]), None));
        let arguments = Command::parse(b"TOP 1  2\t").arguments();
        assert_eq!((arguments.len(), arguments.get(1)), (2, Some(&b"2"[..])));
    }

    #[test]
    fn numbers_are_plain_decimal_without_sign_or_overflow() {
        assert_eq!(parse_number(b"42"), Ok(42));
        assert_eq!(parse_number(b"007"), Ok(7));
        assert_eq!(parse_number(b"+1"), Err(NumberError::Invalid));
        assert_eq!(parse_number(b"-1"), Err(NumberError::Invalid));
        assert_eq!(parse_number(b""), Err(NumberError::Invalid));
        assert_eq!(parse_number(b"4294967295"), Ok(u32::MAX));
        assert_eq!(parse_number(b"4294967296"), Err(NumberError::TooLarge));
        assert_eq!(parse_number(b"99999999999999999999999"), Err(NumberError::TooLarge));
    }
}
