//! What one client datagram says (PROTOCOLS.md §2, "Client to server"). Commands are case
//! sensitive: `/join`, `/part`, `/nick`, `/quit`; anything else starting with `/` is an unknown
//! command; the rest is chat text.

use tidings_core::NICK_BYTES_MAX;

/// Longest datagram a client may send, octets (the protocol's text limit; commands are held to
/// it too).
pub const DATAGRAM_BYTES_MAX: usize = 1000;

/// A parsed client datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `/join <n>`: the argument as given (`None` when missing).
    Join(Option<&'a str>),
    /// `/part` (`extra`: something followed it).
    Part {
        /// Whether an argument followed (refused: `/part` takes none).
        extra: bool,
    },
    /// `/nick <name>`: the argument as given (`None` when missing).
    Nick(Option<&'a str>),
    /// `/quit`, with or without a farewell after a space.
    Quit,
    /// Some other `/word`: the word, `/` included.
    Unknown(&'a str),
    /// Chat text (possibly empty).
    Text(&'a str),
}

/// Parses a datagram's text, once any trailing CR and LF are removed (see [`strip_line_end`]).
/// The command word ends at the first space; its argument is everything after that space.
pub fn parse(text: &str) -> Command<'_> {
    if !text.starts_with('/') {
        return Command::Text(text);
    }
    let (word, argument) = match text.split_once(' ') {
        Some((word, rest)) => (word, Some(rest)),
        None => (text, None),
    };
    match word {
        "/join" => Command::Join(argument),
        "/part" => Command::Part { extra: argument.is_some() },
        "/nick" => Command::Nick(argument),
        "/quit" => Command::Quit,
        _ => Command::Unknown(word),
    }
}

/// The datagram without trailing CR and LF octets: the protocol sends none, but a client such as
/// `nc -u` does, and they would otherwise end up in nicknames and messages.
pub fn strip_line_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Why a `/join` argument names no room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomArgError {
    /// Missing, or not a decimal number.
    NotANumber,
    /// A number outside 1..=rooms.
    NoSuchRoom,
}

/// The room number in a `/join` argument: ASCII digits only, 1..=`rooms`.
///
/// # Errors
/// [`RoomArgError`].
pub fn parse_room(argument: Option<&str>, rooms: u32) -> Result<u32, RoomArgError> {
    let arg = argument.ok_or(RoomArgError::NotANumber)?;
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RoomArgError::NotANumber);
    }
    match arg.parse::<u32>() {
        Ok(n) if (1..=rooms).contains(&n) => Ok(n),
        _ => Err(RoomArgError::NoSuchRoom),
    }
}

/// Whether `name` may be a nickname: 1 to [`NICK_BYTES_MAX`] octets, no white space, no control
/// characters (so it prints on one line in every front-end).
pub fn valid_nick(name: &str) -> bool {
    !name.is_empty() && name.len() <= NICK_BYTES_MAX && name.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_case_sensitive_words() {
        assert_eq!(parse("/join 3"), Command::Join(Some("3")));
        assert_eq!(parse("/join"), Command::Join(None));
        assert_eq!(parse("/part"), Command::Part { extra: false });
        assert_eq!(parse("/part 3"), Command::Part { extra: true });
        assert_eq!(parse("/nick Linh"), Command::Nick(Some("Linh")));
        assert_eq!(parse("/quit"), Command::Quit);
        assert_eq!(parse("/quit bye"), Command::Quit);
        assert_eq!(parse("/JOIN 3"), Command::Unknown("/JOIN"));
        assert_eq!(parse("/join3"), Command::Unknown("/join3"));
        assert_eq!(parse("/"), Command::Unknown("/"));
        assert_eq!(parse("hello /join 3"), Command::Text("hello /join 3"));
        assert_eq!(parse(" /join 3"), Command::Text(" /join 3"));
        assert_eq!(parse(""), Command::Text(""));
    }

    #[test]
    fn trailing_line_ends_are_stripped_and_nothing_else() {
        assert_eq!(strip_line_end(b"hi\r\n"), b"hi");
        assert_eq!(strip_line_end(b"hi\n\n"), b"hi");
        assert_eq!(strip_line_end(b"h\ni"), b"h\ni");
        assert_eq!(strip_line_end(b" hi "), b" hi ");
        assert_eq!(strip_line_end(b"\r\n"), b"");
    }

    #[test]
    fn rooms_are_decimal_numbers_in_range() {
        assert_eq!(parse_room(Some("1"), 10), Ok(1));
        assert_eq!(parse_room(Some("10"), 10), Ok(10));
        assert_eq!(parse_room(Some("03"), 10), Ok(3));
        assert_eq!(parse_room(Some("0"), 10), Err(RoomArgError::NoSuchRoom));
        assert_eq!(parse_room(Some("11"), 10), Err(RoomArgError::NoSuchRoom));
        assert_eq!(parse_room(Some("99999999999999"), 10), Err(RoomArgError::NoSuchRoom));
        for bad in ["", "x", "-1", "+1", "1 2", " 1", "1.0"] {
            assert_eq!(parse_room(Some(bad), 10), Err(RoomArgError::NotANumber), "{bad:?}");
        }
        assert_eq!(parse_room(None, 10), Err(RoomArgError::NotANumber));
    }

    #[test]
    fn nicknames_are_one_printable_word() {
        assert!(valid_nick("Linh"));
        assert!(valid_nick("Zoë"));
        assert!(valid_nick(&"x".repeat(NICK_BYTES_MAX)));
        for bad in ["", "two words", "tab\there", "bell\x07", &"x".repeat(NICK_BYTES_MAX + 1)] {
            assert!(!valid_nick(bad), "{bad:?}");
        }
    }
}
