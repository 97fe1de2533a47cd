//! Mailbox names: UTF-8, hierarchy levels separated by `/`, INBOX case-insensitive
//! (RFC 9051 §5.1). Protocols convert their wire forms (modified UTF-7 for IMAP4rev1 clients)
//! to and from this form.

use bytes::Bytes;

use crate::Flags;

/// What a mailbox holds, as STATUS and SELECT report it (RFC 9051 §6.3.11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Messages in the mailbox.
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// The UID the next message will get.
    pub uidnext: u32,
    /// UIDVALIDITY (RFC 9051 §2.3.1.1).
    pub uidvalidity: u32,
    /// The mailbox's highest modification sequence (RFC 7162); 0 for an untouched mailbox.
    pub highest_modseq: u64,
    /// Octets of all its messages (RFC 8438 STATUS=SIZE).
    pub size: u64,
}

/// One mailbox of an account, for LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Canonical name ([`canonical_mailbox_name`]).
    pub name: String,
    /// SPECIAL-USE attribute (RFC 6154), e.g. `\Sent`.
    pub special_use: Option<String>,
    /// Whether the name is subscribed.
    pub subscribed: bool,
    /// Its status.
    pub status: MailboxStatus,
}

/// One message's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID.
    pub uid: u32,
    /// Flags.
    pub flags: Flags,
    /// Modification sequence of its last change (RFC 7162).
    pub modseq: u64,
    /// Octets.
    pub size: u64,
    /// Internal date, Unix seconds.
    pub internal_date: i64,
}

/// A mailbox as a session finds it when it selects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxSnapshot {
    /// Its status.
    pub status: MailboxStatus,
    /// Every message, ascending UID.
    pub messages: Vec<MessageMeta>,
}

/// What changed in a mailbox since a modification sequence. It leaves out the counts of
/// [`MailboxStatus`] (unseen messages, octets), which take a pass over every message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxSync {
    /// UIDVALIDITY now (RFC 9051 §2.3.1.1).
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub uidnext: u32,
    /// The mailbox's highest modification sequence now (RFC 7162).
    pub highest_modseq: u64,
    /// Every UID present now, ascending (expunged ones are those missing).
    pub uids: Vec<u32>,
    /// Messages changed or added after the given modification sequence, ascending UID.
    pub changed: Vec<MessageMeta>,
}

/// A message with, when asked for, its octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its metadata.
    pub meta: MessageMeta,
    /// Its octets, if requested.
    pub content: Option<Bytes>,
}

/// The hierarchy delimiter.
pub const MAILBOX_DELIMITER: char = '/';
/// Longest mailbox name, in octets.
pub const MAILBOX_NAME_BYTES_MAX: usize = 512;
/// Most hierarchy levels in a name.
pub const MAILBOX_LEVELS_MAX: usize = 32;

/// Why a mailbox name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxNameError {
    /// Empty, an empty level (`a//b`, `/a`), a control character, or `*`/`%` (list wildcards).
    #[error("{0:?} is not a valid mailbox name")]
    Invalid(String),
    /// Longer than [`MAILBOX_NAME_BYTES_MAX`] or deeper than [`MAILBOX_LEVELS_MAX`].
    #[error("mailbox name too long")]
    TooLong,
}

/// The canonical form of a mailbox name: a first level of `inbox` in any case becomes `INBOX`,
/// and one trailing delimiter is dropped (`CREATE foo/` declares that `foo` will have children,
/// RFC 9051 §6.3.4).
///
/// # Errors
/// A [`MailboxNameError`] naming what is wrong.
pub fn canonical_mailbox_name(name: &str) -> Result<String, MailboxNameError> {
    let trimmed = name.strip_suffix(MAILBOX_DELIMITER).unwrap_or(name);
    if trimmed.len() > MAILBOX_NAME_BYTES_MAX || trimmed.split(MAILBOX_DELIMITER).count() > MAILBOX_LEVELS_MAX {
        return Err(MailboxNameError::TooLong);
    }
    let valid_level = |level: &str| !level.is_empty() && !level.chars().any(|c| c.is_control() || c == '*' || c == '%');
    if !trimmed.split(MAILBOX_DELIMITER).all(valid_level) {
        return Err(MailboxNameError::Invalid(name.to_owned()));
    }
    Ok(match trimmed.split_once(MAILBOX_DELIMITER) {
        Some((first, rest)) if first.eq_ignore_ascii_case(crate::INBOX) => format!("{}/{rest}", crate::INBOX),
        None if trimmed.eq_ignore_ascii_case(crate::INBOX) => crate::INBOX.to_owned(),
        _ => trimmed.to_owned(),
    })
}

/// The names superior to `name`, outermost first: `a/b/c` gives `a`, `a/b`.
pub fn superior_names(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(MAILBOX_DELIMITER).map(move |(i, _)| &name[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_mailbox_name("inbox").unwrap(), "INBOX");
        assert_eq!(canonical_mailbox_name("Inbox/Lists").unwrap(), "INBOX/Lists");
        assert_eq!(canonical_mailbox_name("Archive/2026/").unwrap(), "Archive/2026");
        assert_eq!(canonical_mailbox_name("Entwürfe").unwrap(), "Entwürfe");
        assert_eq!(canonical_mailbox_name("inboxes").unwrap(), "inboxes");
        for bad in ["", "/", "/a", "a//b", "a\u{7}", "a*", "b%", "a\nb"] {
            assert!(canonical_mailbox_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(canonical_mailbox_name(&"a/".repeat(40)), Err(MailboxNameError::TooLong));
    }

    #[test]
    fn superiors() {
        assert_eq!(superior_names("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(superior_names("a").count(), 0);
    }
}
