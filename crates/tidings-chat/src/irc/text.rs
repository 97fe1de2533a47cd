//! Pure text helpers of the IRC front-end: nicknames (RFC 2812 §2.3.1), names of other
//! front-ends' members made safe for IRC, masks, IRCv3 server-time stamps, base64 and SASL PLAIN.

use std::fmt::Write as _;

/// RFC 2812 §2.3.1 `special`: `[ ] \ ` _ ^ { | }`.
fn is_special(c: char) -> bool {
    matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}')
}

/// Whether `nick` is a valid nickname of at most `len_max` octets: a letter or special first, then
/// letters, digits, specials and `-` (RFC 2812 §2.3.1).
pub fn is_valid_nick(nick: &str, len_max: usize) -> bool {
    let mut chars = nick.chars();
    let Some(first) = chars.next() else { return false };
    nick.len() <= len_max
        && (first.is_ascii_alphabetic() || is_special(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || is_special(c) || c == '-')
}

/// A valid IRC nickname for a member of another front-end: each character that a nickname may not
/// hold becomes `_`, a name that would start with a digit or `-` gets a leading `_`, and the result
/// is cut to `len_max` octets (at least 1). Valid nicknames come back unchanged.
pub fn sanitize_nick(name: &str, len_max: usize) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || is_special(c) || c == '-' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || is_special(c)) {
        out.insert(0, '_');
    }
    out.truncate(len_max.max(1));
    out
}

/// A user name (ident) safe in a prefix and in WHO replies: ASCII letters, digits and `-._~`,
/// anything else as `_`, at most `len_max` octets; empty becomes `user`.
pub fn sanitize_user(user: &str, len_max: usize) -> String {
    let mut out: String =
        user.chars().map(|c| if c.is_ascii_alphanumeric() || "-._~".contains(c) { c } else { '_' }).collect();
    out.truncate(len_max);
    if out.is_empty() { "user".into() } else { out }
}

/// A host safe in a prefix and as a middle parameter: IP literals and host names pass, other
/// characters become `_`; a host starting with `:` (IPv6 `::1`) gets a leading `0` so it cannot be
/// read as a trailing parameter, as IRC servers write it.
pub fn sanitize_host(host: &str) -> String {
    let mut out: String =
        host.chars().map(|c| if c.is_ascii_alphanumeric() || ".:-".contains(c) { c } else { '_' }).collect();
    if out.starts_with(':') {
        out.insert(0, '0');
    }
    if out.is_empty() { "unknown".into() } else { out }
}

/// Case-insensitive (ASCII) mask match: `*` any run of characters, `?` any one character.
pub fn mask_matches(mask: &str, name: &str) -> bool {
    let (mask, name): (Vec<char>, Vec<char>) = (
        mask.chars().map(|c| c.to_ascii_lowercase()).collect(),
        name.chars().map(|c| c.to_ascii_lowercase()).collect(),
    );
    let (mut m, mut n) = (0, 0);
    // The last `*` seen and the name position it was tried at: on a mismatch, let it take one more.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if m < mask.len() && (mask[m] == '?' || mask[m] == name[n]) {
            m += 1;
            n += 1;
        } else if m < mask.len() && mask[m] == '*' {
            star = Some((m, n));
            m += 1;
        } else if let Some((star_m, star_n)) = star {
            m = star_m + 1;
            n = star_n + 1;
            star = Some((star_m, star_n + 1));
        } else {
            return false;
        }
    }
    mask[m..].iter().all(|&c| c == '*')
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Unix milliseconds as IRCv3 server-time: `YYYY-MM-DDThh:mm:ss.sssZ` (UTC). Times before 1970
/// are written as the epoch.
pub fn format_time(ms: i64) -> String {
    let ms = ms.max(0);
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    );
    out
}

/// Parses an IRCv3 timestamp (`YYYY-MM-DDThh:mm:ss[.fraction]Z`, UTC) into Unix milliseconds;
/// `None` for anything else (fractions past milliseconds are dropped).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let number = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let mut date_parts = date.split('-');
    let (year, month, day) =
        (number(date_parts.next()?, 4)?, number(date_parts.next()?, 2)?, number(date_parts.next()?, 2)?);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.split(':');
    let (hour, minute, second) =
        (number(clock_parts.next()?, 2)?, number(clock_parts.next()?, 2)?, number(clock_parts.next()?, 2)?);
    if date_parts.next().is_some() || clock_parts.next().is_some() {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || (time.contains('.') && fraction.is_empty()) {
        return None;
    }
    let millis =
        fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds * 1000 + millis)
}

/// The milliseconds a ULID carries (its first ten characters, Crockford base32); `None` when
/// `id` is not a ULID.
pub fn ulid_time(id: &str) -> Option<i64> {
    if id.len() != 26 {
        return None;
    }
    let mut value: i64 = 0;
    for c in id[..10].bytes() {
        let digit = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".iter().position(|&d| d == c.to_ascii_uppercase())?;
        value = value.checked_mul(32)?.checked_add(digit as i64)?;
    }
    Some(value)
}

/// Decodes standard base64 (RFC 4648 §4) with or without padding; `None` on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // Six bits left over cannot come from a whole number of octets.
    (bits < 6).then_some(out)
}

/// A SASL PLAIN message (RFC 4616 §2): `authzid NUL authcid NUL passwd`, UTF-8. Returns the
/// authentication identity and the password; `None` when malformed, or when an authorization
/// identity other than the authentication identity is asked for (no one may act as another).
pub fn sasl_plain(message: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(message).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    (authzid.is_empty() || authzid == authcid).then(|| (authcid.to_owned(), password.to_owned()))
}

/// Splits `text` into pieces of at most `bytes_max` octets at character boundaries (at least one
/// character each), for bodies longer than an IRC line holds.
pub fn split_at_bytes(text: &str, bytes_max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > bytes_max {
        let mut cut = bytes_max.max(1);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_validity_follows_rfc_2812() {
        for good in ["alice", "A", "[x]", "`b", "a-1", "_", "x{y}|z^"] {
            assert!(is_valid_nick(good, 30), "{good}");
        }
        for bad in ["", "1abc", "-a", "a b", "a!b", "a@b", "#chan", "a,b", "é", "a*"] {
            assert!(!is_valid_nick(bad, 30), "{bad}");
        }
        assert!(!is_valid_nick(&"a".repeat(31), 30));
    }

    #[test]
    fn other_front_ends_names_become_valid_nicks() {
        assert_eq!(sanitize_nick("alice", 30), "alice");
        assert_eq!(sanitize_nick("bob smith", 30), "bob_smith");
        assert_eq!(sanitize_nick("9lives", 30), "_9lives");
        assert_eq!(sanitize_nick("zoë!", 30), "zo__");
        assert_eq!(sanitize_nick("", 30), "_");
        assert_eq!(sanitize_nick(&"x".repeat(40), 30).len(), 30);
        for name in ["a b", "::", "#x", "1", "ü", "a@b!c"] {
            assert!(is_valid_nick(&sanitize_nick(name, 30), 30), "{name}");
        }
    }

    #[test]
    fn users_and_hosts_are_made_safe() {
        assert_eq!(sanitize_user("jo hn", 16), "jo_hn");
        assert_eq!(sanitize_user("", 16), "user");
        assert_eq!(sanitize_host("::1"), "0::1");
        assert_eq!(sanitize_host("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn masks_match_with_stars_and_question_marks() {
        assert!(mask_matches("a*", "alice"));
        assert!(mask_matches("*ic?", "ALICE"));
        assert!(mask_matches("*", ""));
        assert!(mask_matches("a*b*c", "axxbyyc"));
        assert!(!mask_matches("a*b", "axxbc"));
        assert!(!mask_matches("?", ""));
        assert!(mask_matches("bob", "Bob"));
    }

    #[test]
    fn server_time_round_trips() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_795_254_120_123), "2026-11-21T09:42:00.123Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0, 1, 951_782_400_000, 1_795_254_120_123, 4_102_444_799_999] {
            assert_eq!(parse_time(&format_time(ms)), Some(ms));
        }
        assert_eq!(parse_time("2026-11-21T09:42:00Z"), Some(1_795_254_120_000));
        assert_eq!(parse_time("2026-11-21T09:42:00.5Z"), Some(1_795_254_120_500));
        for bad in ["", "2026-11-21", "2026-11-21T09:42:00", "2026-13-01T00:00:00Z", "2026-11-21T09:42:00.Z", "x"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn ulids_give_their_time() {
        let id = crate::message_id(1_795_254_120_123);
        assert_eq!(ulid_time(&id), Some(1_795_254_120_123));
        assert_eq!(ulid_time("short"), None);
    }

    #[test]
    fn base64_and_sasl_plain() {
        assert_eq!(base64_decode("AGFsaWNlAHNlY3JldA==").as_deref(), Some(&b"\0alice\0secret"[..]));
        assert_eq!(base64_decode("AGFsaWNlAHNlY3JldA").as_deref(), Some(&b"\0alice\0secret"[..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("a*=="), None);
        assert_eq!(base64_decode("A"), None);
        assert_eq!(sasl_plain(b"\0alice\0secret"), Some(("alice".into(), "secret".into())));
        assert_eq!(sasl_plain(b"alice\0alice\0secret"), Some(("alice".into(), "secret".into())));
        assert_eq!(sasl_plain(b"mallory\0alice\0secret"), None);
        assert_eq!(sasl_plain(b"\0alice"), None);
        assert_eq!(sasl_plain(b"\0\0secret"), None);
        assert_eq!(sasl_plain(b"\0a\0b\0c"), None);
    }

    #[test]
    fn long_text_splits_at_character_boundaries() {
        assert_eq!(split_at_bytes("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(split_at_bytes("ééé", 3), vec!["é", "é", "é"]);
        assert_eq!(split_at_bytes("", 3), vec![""]);
        assert_eq!(split_at_bytes("é", 1), vec!["é"]);
    }
}
