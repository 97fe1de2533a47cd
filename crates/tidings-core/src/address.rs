//! Mailbox addresses as SMTP carries them (RFC 5321 §4.1.2, RFC 6531 §3.3).
//!
//! An [`Address`] is `local-part@domain` in canonical form: the domain in lower case, the local part
//! in lower case too. RFC 5321 §2.4 lets a server treat local parts case-sensitively; tidings does
//! not, so `Ta@MMSYS.upenn.edu` and `ta@mmsys.upenn.edu` are one account, as users expect.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest local part, in octets (RFC 5321 §4.5.3.1.1).
pub const LOCAL_PART_BYTES_MAX: usize = 64;
/// Longest domain, in octets (RFC 5321 §4.5.3.1.2).
pub const DOMAIN_BYTES_MAX: usize = 255;
/// Longest path including the angle brackets, in octets (RFC 5321 §4.5.3.1.3).
pub const PATH_BYTES_MAX: usize = 256;

/// A canonical mailbox address: `local@domain`, both parts lower case.
///
/// The local part keeps its RFC 5321 textual form: a dot-string as is, a quoted string with its
/// quotes (`"john doe"@example.org`). Address literals (`user@[127.0.0.1]`) are kept with brackets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    local: String,
    domain: String,
}

/// Why a string is not a valid address or path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing was given.
    #[error("empty address")]
    Empty,
    /// There is no `@` separating local part and domain.
    #[error("address has no '@domain'")]
    NoDomain,
    /// The local part breaks RFC 5321 §4.1.2 (`Dot-string / Quoted-string`).
    #[error("invalid local part")]
    LocalPart,
    /// The domain breaks RFC 5321 §4.1.2 (`sub-domain *("." sub-domain)` or an address literal).
    #[error("invalid domain")]
    Domain,
    /// A part is longer than RFC 5321 §4.5.3.1 allows.
    #[error("address too long")]
    TooLong,
    /// Non-ASCII characters without the SMTPUTF8 extension (RFC 6531 §3.3).
    #[error("non-ASCII address needs SMTPUTF8")]
    NeedsUtf8,
    /// The path is not enclosed in `<` `>` or has text after the `>`.
    #[error("path must be enclosed in '<' and '>'")]
    Brackets,
}

impl Address {
    /// Parses `local@domain` (no angle brackets).
    ///
    /// `utf8` allows RFC 6531 non-ASCII local parts and U-label domains.
    ///
    /// # Errors
    /// An [`AddressError`] naming the first rule the text breaks.
    pub fn parse(text: &str, utf8: bool) -> Result<Address, AddressError> {
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if !utf8 && !text.is_ascii() {
            return Err(AddressError::NeedsUtf8);
        }
        let at = local_part_end(text)?;
        let (local, domain) = (&text[..at], &text[at + 1..]);
        if local.len() > LOCAL_PART_BYTES_MAX || domain.len() > DOMAIN_BYTES_MAX {
            return Err(AddressError::TooLong);
        }
        validate_domain(domain)?;
        Ok(Address { local: canonical_local_part(local).to_lowercase(), domain: domain.to_lowercase() })
    }

    /// Builds an address from parts already known to be valid, such as a parsed local part with
    /// another domain (used to apply domain aliases). Both parts are lower-cased.
    pub fn from_parts(local: &str, domain: &str) -> Address {
        Address { local: local.to_lowercase(), domain: domain.to_lowercase() }
    }

    /// The local part, lower case, quotes kept.
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The domain, lower case (an address literal keeps its brackets).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether either part has non-ASCII characters (which needs SMTPUTF8 to be sent on).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{self}>")
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s, true)
    }
}

/// A parsed SMTP path: `<>` (the null reverse-path, RFC 5321 §4.5.5) or `<mailbox>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    /// `<>`: the null reverse-path used by bounces.
    Null,
    /// `<local@domain>` (a source route, if any, has been dropped per RFC 5321 §4.1.2 / C).
    Mailbox(Address),
    /// `<postmaster>` without a domain (RFC 5321 §4.5.1), valid only as a forward-path.
    Postmaster,
}

/// Splits `<path> [parameters]` into the path and the rest (the ESMTP parameters, trimmed).
///
/// Accepts and ignores an RFC 5321 source route (`<@a.example,@b.example:user@c.example>`).
///
/// # Errors
/// An [`AddressError`] when the path is malformed or longer than [`PATH_BYTES_MAX`].
pub fn parse_path(text: &str, utf8: bool) -> Result<(Path, &str), AddressError> {
    let text = text.trim_start();
    if !text.starts_with('<') {
        return Err(AddressError::Brackets);
    }
    let close = path_close(text).ok_or(AddressError::Brackets)?;
    let rest = &text[close + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(AddressError::Brackets);
    }
    if close + 1 > PATH_BYTES_MAX {
        return Err(AddressError::TooLong);
    }
    let mut inner = &text[1..close];
    if inner.is_empty() {
        return Ok((Path::Null, rest.trim()));
    }
    if inner.starts_with('@') {
        // A-d-l ":" Mailbox — the route is obsolete and must be ignored.
        let colon = inner.find(':').ok_or(AddressError::Domain)?;
        for hop in inner[..colon].split(',') {
            let hop = hop.strip_prefix('@').ok_or(AddressError::Domain)?;
            validate_domain(hop)?;
        }
        inner = &inner[colon + 1..];
    }
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok((Path::Postmaster, rest.trim()));
    }
    Ok((Path::Mailbox(Address::parse(inner, utf8)?), rest.trim()))
}

/// Index of the `>` closing a path that starts with `<`, skipping quoted strings.
fn path_close(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 1;
    let mut quoted = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Validates the local part at the start of `text` and returns the index of its `@`.
fn local_part_end(text: &str) -> Result<usize, AddressError> {
    let bytes = text.as_bytes();
    if bytes[0] == b'"' {
        // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
        let mut i = 1;
        loop {
            match bytes.get(i) {
                None => return Err(AddressError::LocalPart),
                Some(b'"') => break,
                Some(b'\\') => match bytes.get(i + 1) {
                    Some(32..=126) => i += 2,
                    _ => return Err(AddressError::LocalPart),
                },
                Some(&c) if c == 32 || c == 33 || (35..=91).contains(&c) || (93..=126).contains(&c) => i += 1,
                Some(&c) if c >= 0x80 => i += 1,
                Some(_) => return Err(AddressError::LocalPart),
            }
        }
        return match bytes.get(i + 1) {
            Some(b'@') => Ok(i + 1),
            _ => Err(AddressError::NoDomain),
        };
    }
    let at = text.rfind('@').ok_or(AddressError::NoDomain)?;
    let local = &text[..at];
    if local.is_empty() || local.split('.').any(|atom| atom.is_empty() || !atom.bytes().all(is_atext)) {
        return Err(AddressError::LocalPart);
    }
    Ok(at)
}

/// The canonical text of a valid local part. A quoted string means its contents (RFC 5322 §3.2.4),
/// so `"ta"` is `ta`: the quotes are dropped when the contents are a dot-string, and otherwise the
/// contents are quoted again with only `"` and `\` escaped, so one mailbox has one spelling.
fn canonical_local_part(local: &str) -> std::borrow::Cow<'_, str> {
    let Some(quoted) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return local.into();
    };
    let mut contents = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        contents.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    if !contents.is_empty() && contents.split('.').all(|atom| !atom.is_empty() && atom.bytes().all(is_atext)) {
        return contents.into();
    }
    let mut requoted = String::with_capacity(contents.len() + 2);
    requoted.push('"');
    for c in contents.chars() {
        if c == '"' || c == '\\' {
            requoted.push('\\');
        }
        requoted.push(c);
    }
    requoted.push('"');
    requoted.into()
}

/// `atext` of RFC 5322 §3.2.3, widened by RFC 6531 §3.3 to any non-ASCII octet.
fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c) || c >= 0x80
}

/// Validates a domain: dot-separated labels of letters, digits and hyphens (U-labels allowed when
/// non-ASCII), or an address literal in brackets.
fn validate_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() {
        return Err(AddressError::Domain);
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let literal = literal.strip_suffix(']').ok_or(AddressError::Domain)?;
        let valid = match literal.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => literal.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if valid { Ok(()) } else { Err(AddressError::Domain) };
    }
    for label in domain.split('.') {
        let bytes = label.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c >= 0x80)
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-';
        if !valid {
            return Err(AddressError::Domain);
        }
    }
    Ok(())
}

/// Whether `name` is a syntactically valid domain name (no address literal).
pub fn is_valid_domain(name: &str) -> bool {
    !name.starts_with('[') && name.len() <= DOMAIN_BYTES_MAX && validate_domain(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lowercases_both_parts() {
        let a = Address::parse("Ta@MMSYS.Upenn.EDU", false).unwrap();
        assert_eq!(a.to_string(), "ta@mmsys.upenn.edu");
    }

    #[test]
    fn quoted_local_part_keeps_quotes_only_when_needed() {
        let a = Address::parse("\"john doe\"@example.org", false).unwrap();
        assert_eq!(a.local_part(), "\"john doe\"");
        assert_eq!(
            Address::parse("\"TA\"@example.org", false).unwrap(),
            Address::parse("ta@example.org", false).unwrap()
        );
        assert_eq!(Address::parse("\"t\\a.b\"@example.org", false).unwrap().local_part(), "ta.b");
        assert_eq!(Address::parse("\"a\\\"b\"@example.org", false).unwrap().local_part(), "\"a\\\"b\"");
        assert_eq!(Address::parse("\"a..b\"@example.org", false).unwrap().local_part(), "\"a..b\"");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in ["", "nodomain", "@example.org", "a..b@example.org", "a@", "a@-x.org", "a b@example.org"] {
            assert!(Address::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_ascii_needs_utf8() {
        assert_eq!(Address::parse("jörg@example.org", false), Err(AddressError::NeedsUtf8));
        assert!(Address::parse("jörg@bücher.example", true).is_ok());
    }

    #[test]
    fn address_literals() {
        assert!(Address::parse("a@[127.0.0.1]", false).is_ok());
        assert!(Address::parse("a@[IPv6:::1]", false).is_ok());
        assert!(Address::parse("a@[300.1.1.1]", false).is_err());
    }

    #[test]
    fn local_part_over_64_octets_is_too_long() {
        let text = format!("{}@example.org", "a".repeat(65));
        assert_eq!(Address::parse(&text, false), Err(AddressError::TooLong));
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("<>", false).unwrap(), (Path::Null, ""));
        assert_eq!(parse_path("<Postmaster>", false).unwrap().0, Path::Postmaster);
        let (p, rest) = parse_path("<a@b.org> SIZE=10 BODY=8BITMIME", false).unwrap();
        assert_eq!(p, Path::Mailbox(Address::parse("a@b.org", false).unwrap()));
        assert_eq!(rest, "SIZE=10 BODY=8BITMIME");
        let (p, _) = parse_path("<@relay.example,@r2.example:a@b.org>", false).unwrap();
        assert_eq!(p, Path::Mailbox(Address::parse("a@b.org", false).unwrap()));
        assert!(parse_path("a@b.org", false).is_err());
        assert!(parse_path("<a@b.org", false).is_err());
        assert!(parse_path("<a@b.org>x", false).is_err());
        assert_eq!(
            parse_path("<\"a>b\"@c.org>", false).unwrap().0,
            Path::Mailbox(Address::parse("\"a>b\"@c.org", false).unwrap())
        );
    }
}
