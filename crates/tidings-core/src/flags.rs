//! Message flags: the IMAP system flags and keywords (RFC 9051 §2.3.2).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest keyword accepted, in octets.
pub const KEYWORD_BYTES_MAX: usize = 64;
/// Most keywords one message may carry.
pub const KEYWORDS_PER_MESSAGE_MAX: usize = 64;

/// One system flag. `\Recent` is not stored: it is a session property in IMAP4rev1 and gone from
/// IMAP4rev2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SystemFlag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
}

impl SystemFlag {
    /// Every system flag, in the order tidings lists them.
    pub const ALL: [SystemFlag; 5] =
        [SystemFlag::Seen, SystemFlag::Answered, SystemFlag::Flagged, SystemFlag::Deleted, SystemFlag::Draft];

    /// The bit of this flag in [`Flags::system_bits`].
    pub const fn bit(self) -> u8 {
        match self {
            SystemFlag::Seen => 1,
            SystemFlag::Answered => 2,
            SystemFlag::Flagged => 4,
            SystemFlag::Deleted => 8,
            SystemFlag::Draft => 16,
        }
    }

    /// The IMAP spelling, e.g. `\Seen`.
    pub const fn imap_name(self) -> &'static str {
        match self {
            SystemFlag::Seen => "\\Seen",
            SystemFlag::Answered => "\\Answered",
            SystemFlag::Flagged => "\\Flagged",
            SystemFlag::Deleted => "\\Deleted",
            SystemFlag::Draft => "\\Draft",
        }
    }

    /// The flag an IMAP spelling names, case-insensitively (RFC 9051 §2.3.2).
    pub fn from_imap_name(name: &str) -> Option<SystemFlag> {
        SystemFlag::ALL.into_iter().find(|f| f.imap_name().eq_ignore_ascii_case(name))
    }
}

/// The flags of one message: system flags as a bit set, and keywords (atoms, compared
/// case-insensitively, stored as first given).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    system: u8,
    keywords: BTreeSet<String>,
}

/// Why a keyword is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// Not an IMAP `atom` (RFC 9051 §9 `flag-keyword`), or starts with `\`.
    #[error("{0:?} is not a valid keyword")]
    Invalid(String),
    /// Longer than [`KEYWORD_BYTES_MAX`].
    #[error("keyword longer than {KEYWORD_BYTES_MAX} octets")]
    TooLong,
    /// More than [`KEYWORDS_PER_MESSAGE_MAX`] keywords.
    #[error("more than {KEYWORDS_PER_MESSAGE_MAX} keywords")]
    TooMany,
}

/// How a flag change applies (IMAP STORE `FLAGS`, `+FLAGS`, `-FLAGS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagChange {
    /// Replace the flags.
    Replace,
    /// Add these flags.
    Add,
    /// Remove these flags.
    Remove,
}

impl Flags {
    /// No flags.
    pub fn new() -> Flags {
        Flags::default()
    }

    /// Flags from the stored form: the system bit set and the space-separated keywords.
    pub fn from_stored(system_bits: u8, keywords: &str) -> Flags {
        Flags {
            system: system_bits & 0x1f,
            keywords: keywords.split(' ').filter(|k| !k.is_empty()).map(str::to_owned).collect(),
        }
    }

    /// The system flags as bits ([`SystemFlag::bit`]).
    pub fn system_bits(&self) -> u8 {
        self.system
    }

    /// The keywords, space-separated (the stored form).
    pub fn keywords_text(&self) -> String {
        self.keywords.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: SystemFlag) -> bool {
        self.system & flag.bit() != 0
    }

    /// Sets or clears `flag`.
    pub fn set(&mut self, flag: SystemFlag, on: bool) {
        if on {
            self.system |= flag.bit();
        } else {
            self.system &= !flag.bit();
        }
    }

    /// Adds a keyword (an IMAP atom not starting with `\`); adding one already present, in any
    /// case, changes nothing.
    ///
    /// # Errors
    /// A [`FlagError`] for an invalid or too long keyword, or one too many.
    pub fn add_keyword(&mut self, keyword: &str) -> Result<(), FlagError> {
        validate_keyword(keyword)?;
        if self.has_keyword(keyword) {
            return Ok(());
        }
        if self.keywords.len() >= KEYWORDS_PER_MESSAGE_MAX {
            return Err(FlagError::TooMany);
        }
        self.keywords.insert(keyword.to_owned());
        Ok(())
    }

    /// Whether the keyword is set (case-insensitively).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// The keywords.
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(String::as_str)
    }

    /// Applies a STORE-style change.
    pub fn apply(&mut self, change: FlagChange, with: &Flags) {
        match change {
            FlagChange::Replace => *self = with.clone(),
            FlagChange::Add => {
                self.system |= with.system;
                for k in &with.keywords {
                    if !self.has_keyword(k) && self.keywords.len() < KEYWORDS_PER_MESSAGE_MAX {
                        self.keywords.insert(k.clone());
                    }
                }
            }
            FlagChange::Remove => {
                self.system &= !with.system;
                self.keywords.retain(|k| !with.has_keyword(k));
            }
        }
    }
}

impl fmt::Display for Flags {
    /// The IMAP flag list without parentheses: `\Seen \Flagged $Forwarded`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> =
            SystemFlag::ALL.into_iter().filter(|s| self.has(*s)).map(|s| -> &str { s.imap_name() }).collect();
        names.extend(self.keywords.iter().map(String::as_str));
        f.write_str(&names.join(" "))?;
        Ok(())
    }
}

/// Checks a keyword: 1..=[`KEYWORD_BYTES_MAX`] octets of IMAP `ATOM-CHAR` (RFC 9051 §9), not
/// beginning with `\`.
///
/// # Errors
/// [`FlagError::Invalid`] or [`FlagError::TooLong`].
pub fn validate_keyword(keyword: &str) -> Result<(), FlagError> {
    if keyword.len() > KEYWORD_BYTES_MAX {
        return Err(FlagError::TooLong);
    }
    let atom_char = |c: u8| (0x21..0x7f).contains(&c) && !b"(){%*\"\\]".contains(&c);
    if keyword.is_empty() || !keyword.bytes().all(atom_char) {
        return Err(FlagError::Invalid(keyword.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let mut f = Flags::new();
        f.set(SystemFlag::Seen, true);
        f.set(SystemFlag::Draft, true);
        f.add_keyword("$Forwarded").unwrap();
        f.add_keyword("$forwarded").unwrap();
        let back = Flags::from_stored(f.system_bits(), &f.keywords_text());
        assert_eq!(back, f);
        assert_eq!(f.to_string(), "\\Seen \\Draft $Forwarded");
    }

    #[test]
    fn store_changes() {
        let mut f = Flags::from_stored(SystemFlag::Seen.bit(), "a b");
        f.apply(FlagChange::Add, &Flags::from_stored(SystemFlag::Flagged.bit(), "C"));
        assert_eq!(f.to_string(), "\\Seen \\Flagged C a b");
        f.apply(FlagChange::Remove, &Flags::from_stored(SystemFlag::Seen.bit(), "A c"));
        assert_eq!(f.to_string(), "\\Flagged b");
        f.apply(FlagChange::Replace, &Flags::new());
        assert_eq!(f, Flags::new());
    }

    #[test]
    fn keywords_are_atoms() {
        for bad in ["", "a b", "\\Seen", "a(", "\u{e9}", &"k".repeat(65)] {
            assert!(Flags::new().add_keyword(bad).is_err(), "{bad:?}");
        }
        assert_eq!(SystemFlag::from_imap_name("\\SEEN"), Some(SystemFlag::Seen));
    }
}
