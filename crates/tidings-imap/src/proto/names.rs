//! Mailbox names between the wire and the store: modified UTF-7 for IMAP4rev1 clients, UTF-8
//! once IMAP4rev2 or UTF8=ACCEPT is enabled (RFC 9051 §5.1, RFC 3501 §5.1.3, RFC 6855 §3); and
//! LIST patterns with `*` and `%` (RFC 9051 §6.3.9).

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use tidings_core::{INBOX, MAILBOX_DELIMITER, MailboxNameError, canonical_mailbox_name};

use tidings_core::utf7;

/// Longest LIST pattern (reference and pattern together) matched, in characters; longer ones
/// match nothing (no mailbox name is that long).
const PATTERN_CHARS_MAX: usize = 1024;

/// Why a mailbox name from the client was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NameError {
    /// Not modified UTF-7 (IMAP4rev1) or not UTF-8: a syntax error, `BAD`.
    Encoding,
    /// Not a valid name for a mailbox: `NO [CANNOT]`.
    Invalid(MailboxNameError),
}

/// The name the client meant, decoded but not checked: modified UTF-7 unless `utf8`; a name
/// with non-ASCII octets that are UTF-8 is taken as UTF-8 even from an IMAP4rev1 client (as
/// some send it).
pub(crate) fn decode(raw: &[u8], utf8: bool) -> Result<String, NameError> {
    if utf8 || !raw.is_ascii() {
        return String::from_utf8(raw.to_vec()).map_err(|_| NameError::Encoding);
    }
    utf7::decode(raw).map_err(|_| NameError::Encoding)
}

/// The octets of a mailbox argument as the client sent them.
pub(crate) fn raw(mailbox: &Mailbox<'_>) -> Vec<u8> {
    match mailbox {
        Mailbox::Inbox => INBOX.as_bytes().to_vec(),
        Mailbox::Other(other) => other.as_ref().to_vec(),
    }
}

/// A mailbox argument as a canonical store name.
pub(crate) fn mailbox(mailbox: &Mailbox<'_>, utf8: bool) -> Result<String, NameError> {
    let name = decode(&raw(mailbox), utf8)?;
    canonical_mailbox_name(&name).map_err(NameError::Invalid)
}

/// A store name as the client must see it.
pub(crate) fn encode(name: &str, utf8: bool) -> Vec<u8> {
    if utf8 { name.as_bytes().to_vec() } else { utf7::encode(name).into_bytes() }
}

/// The octets of a LIST pattern argument.
pub(crate) fn list_raw(pattern: &ListMailbox<'_>) -> Vec<u8> {
    match pattern {
        ListMailbox::Token(token) => token.as_ref().to_vec(),
        ListMailbox::String(string) => string.as_ref().to_vec(),
    }
}

/// A LIST pattern: reference and mailbox pattern joined, decoded to UTF-8, with a first level
/// of `INBOX` in any case spelt `INBOX` (RFC 9051 §6.3.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    chars: Vec<char>,
}

impl Pattern {
    /// Joins `reference` and `pattern` (RFC 9051 §6.3.9: a reference ending in the delimiter,
    /// or an empty one, is simply prefixed).
    pub(crate) fn new(reference: &str, pattern: &str) -> Pattern {
        let joined = if pattern.starts_with(MAILBOX_DELIMITER) && reference.ends_with(MAILBOX_DELIMITER) {
            format!("{reference}{}", &pattern[1..])
        } else {
            format!("{reference}{pattern}")
        };
        let first_end = joined.find(MAILBOX_DELIMITER).unwrap_or(joined.len());
        let joined = if joined[..first_end].eq_ignore_ascii_case(INBOX) {
            format!("{INBOX}{}", &joined[first_end..])
        } else {
            joined
        };
        Pattern { chars: joined.chars().collect() }
    }

    /// Whether `name` matches: `*` matches any characters, `%` any but the delimiter. Runs in
    /// time proportional to pattern length × name length, whatever the wildcards.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let pattern = &self.chars;
        if pattern.len() > PATTERN_CHARS_MAX {
            return false;
        }
        // The set of pattern positions reachable after the characters read so far.
        let mut states = vec![false; pattern.len() + 1];
        states[0] = true;
        close(pattern, &mut states);
        for c in name.chars() {
            let mut next = vec![false; pattern.len() + 1];
            for (i, &on) in states.iter().enumerate().take(pattern.len()) {
                if !on {
                    continue;
                }
                match pattern[i] {
                    '*' => next[i] = true,
                    '%' if c != MAILBOX_DELIMITER => next[i] = true,
                    '%' => {}
                    p if p == c => next[i + 1] = true,
                    _ => {}
                }
            }
            close(pattern, &mut next);
            if !next.iter().any(|&on| on) {
                return false;
            }
            states = next;
        }
        states[pattern.len()]
    }

    /// Whether the pattern ends in `%` (so that a name with children below the last level
    /// matched is reported through its parent, RFC 9051 §6.3.9).
    pub(crate) fn ends_with_percent(&self) -> bool {
        self.chars.last() == Some(&'%')
    }
}

/// Adds the positions reachable by letting wildcards match nothing.
fn close(pattern: &[char], states: &mut [bool]) {
    for i in 0..pattern.len() {
        if states[i] && matches!(pattern[i], '*' | '%') {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(reference: &str, pattern: &str, name: &str) -> bool {
        Pattern::new(reference, pattern).matches(name)
    }

    #[test]
    fn star_crosses_levels_and_percent_does_not() {
        assert!(matches("", "*", "a/b/c"));
        assert!(matches("", "%", "a"));
        assert!(!matches("", "%", "a/b"));
        assert!(matches("", "a/%", "a/b"));
        assert!(matches("a/", "%", "a/b"));
        assert!(matches("", "a*c", "abc/xc"));
        assert!(!matches("", "a%c", "ab/c"));
        assert!(matches("", "inbox", "INBOX"));
        assert!(matches("", "Inbox/%", "INBOX/x"));
        assert!(!matches("", "inbox", "inboxes"));
    }

    #[test]
    fn many_wildcards_stay_fast() {
        let pattern = "*%".repeat(500);
        let name = "a".repeat(500);
        assert!(matches("", &pattern, &name));
        assert!(!matches("", &format!("{pattern}b"), &name));
    }

    #[test]
    fn rev1_names_are_modified_utf7_and_rev2_names_utf8() {
        assert_eq!(decode(b"Entw&APw-rfe", false).unwrap(), "Entwürfe");
        assert_eq!(decode(b"Entw&APw-rfe", true).unwrap(), "Entw&APw-rfe");
        assert_eq!(decode("Entwürfe".as_bytes(), false).unwrap(), "Entwürfe");
        assert_eq!(decode(b"&Jjo", false), Err(NameError::Encoding));
        assert_eq!(decode(b"\xff", true), Err(NameError::Encoding));
        assert_eq!(encode("Entwürfe", false), b"Entw&APw-rfe");
        assert_eq!(encode("Entwürfe", true), "Entwürfe".as_bytes());
    }
}
