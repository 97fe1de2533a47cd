//! What SEARCH needs from a message (RFC 9051 §6.4.4): text decoded to UTF-8 (encoded-words,
//! transfer encodings, charsets) and case-insensitive substring matching; the sent date.

use std::borrow::Cow;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{DateTime, HeaderValue};

use crate::decode::TransferEncoding;
use crate::mime::Part;
use crate::structure::MimeFields;

/// A search string, folded once for case-insensitive matching.
pub(crate) struct Needle {
    folded: String,
}

impl Needle {
    pub fn new(needle: &str) -> Needle {
        Needle { folded: needle.to_lowercase() }
    }

    pub fn is_empty(&self) -> bool {
        self.folded.is_empty()
    }

    /// Whether `haystack` contains the needle, ignoring case (Unicode lowercase mapping; an
    /// ASCII needle is matched without copying the haystack).
    pub fn found_in(&self, haystack: &str) -> bool {
        let needle = self.folded.as_bytes();
        let Some(&first) = needle.first() else {
            return true;
        };
        if !self.folded.is_ascii() {
            return haystack.to_lowercase().contains(&self.folded);
        }
        let hay = haystack.as_bytes();
        let mut at = 0;
        while let Some(found) = memchr::memchr2(first, first.to_ascii_uppercase(), &hay[at..]) {
            let start = at + found;
            match hay.get(start..start + needle.len()) {
                Some(candidate) if candidate.eq_ignore_ascii_case(needle) => return true,
                Some(_) => at = start + 1,
                None => return false,
            }
        }
        false
    }
}

/// A header field value decoded for searching: unfolded, RFC 2047 encoded-words decoded and
/// converted to UTF-8 (by mail-parser), other octets read as UTF-8.
pub(crate) fn decode_field(value: &[u8]) -> String {
    // mail-parser's parser reads the value through the line end that is not followed by
    // whitespace, so the value needs one.
    let with_line_end;
    let value = if value.ends_with(b"\n") {
        value
    } else {
        with_line_end = [value, b"\n"].concat();
        &with_line_end
    };
    match MessageStream::new(value).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// Whether any field of a header block contains the needle, searched as `Name: decoded value`.
pub(crate) fn header_block_contains(block: &[u8], needle: &Needle) -> bool {
    crate::header::fields(block).any(|field| {
        let text = format!("{}: {}", String::from_utf8_lossy(field.name), decode_field(field.value));
        needle.found_in(&text)
    })
}

/// The content of a part as text: transfer encoding removed (an unknown one is left as is),
/// converted from its charset to UTF-8.
pub(crate) fn part_text<'r>(part: &Part<'_>, raw: &'r [u8]) -> Cow<'r, str> {
    let fields = MimeFields::of(part.header(raw));
    let content = part.content(raw);
    let decoded =
        TransferEncoding::from_token(fields.transfer_encoding()).decode(content).unwrap_or(Cow::Borrowed(content));
    let charset = crate::params::param(part.params(), b"charset");
    to_utf8(decoded, charset)
}

/// Text in `charset` as UTF-8. Without a charset, or for US-ASCII and UTF-8, valid UTF-8 is
/// taken as is (no copy); anything else goes through mail-parser's charset decoders, or is read
/// as UTF-8 with replacement characters when the charset is unknown.
pub(crate) fn to_utf8<'t>(text: Cow<'t, [u8]>, charset: Option<&[u8]>) -> Cow<'t, str> {
    let unlabelled = charset.is_none_or(|c| {
        [&b"us-ascii"[..], b"ascii", b"utf-8", b"utf8"].iter().any(|name| c.eq_ignore_ascii_case(name))
    });
    if unlabelled {
        match text {
            Cow::Borrowed(bytes) => {
                if let Ok(valid) = std::str::from_utf8(bytes) {
                    return Cow::Borrowed(valid);
                }
            }
            Cow::Owned(bytes) => match String::from_utf8(bytes) {
                Ok(valid) => return Cow::Owned(valid),
                Err(error) => return Cow::Owned(lossy(error.as_bytes(), charset)),
            },
        }
    }
    Cow::Owned(lossy(&text, charset))
}

fn lossy(bytes: &[u8], charset: Option<&[u8]>) -> String {
    match charset.and_then(charset_decoder) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The calendar day of a Date field value, in the field's own zone, as days since 1970-01-01.
pub(crate) fn sent_day(value: &[u8]) -> Option<i64> {
    let with_line_end = [value, b"\n"].concat();
    match MessageStream::new(&with_line_end).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(days_since_epoch(&date)),
        _ => None,
    }
}

/// Days from 1970-01-01 to the date's calendar day (proleptic Gregorian calendar).
fn days_since_epoch(date: &DateTime) -> i64 {
    // Count from 1 March of year 0 so that the leap day is the last day of a year.
    let month = i64::from(date.month);
    let year = i64::from(date.year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_ignores_case_for_ascii_and_unicode() {
        assert!(Needle::new("WORLD").found_in("hello world"));
        assert!(Needle::new("ÉTÉ").found_in("un été chaud"));
        assert!(!Needle::new("worlds").found_in("hello world"));
        assert!(Needle::new("").found_in(""));
        assert!(Needle::new("b").found_in("aB"));
    }

    #[test]
    fn encoded_words_are_decoded_for_searching() {
        assert_eq!(decode_field(b" =?ISO-8859-1?Q?Caf=E9?= =?utf-8?b?w6lsw6k=?=\r\n"), "Caféélé");
    }

    #[test]
    fn days_are_counted_from_the_epoch() {
        let day = |y, m, d| days_since_epoch(&DateTime { year: y, month: m, day: d, ..DateTime::default() });
        assert_eq!(day(1970, 1, 1), 0);
        assert_eq!(day(2000, 3, 1), 11_017);
        assert_eq!(day(1969, 12, 31), -1);
        assert_eq!(day(2024, 2, 29), 19_782);
    }

    #[test]
    fn the_sent_day_is_the_day_in_the_fields_own_zone() {
        assert_eq!(sent_day(b" Thu, 1 Jan 1970 23:30:00 -0800"), Some(0));
        assert_eq!(sent_day(b" Fri, 02 Jan 1970 00:10:00 +1400"), Some(1));
        assert_eq!(sent_day(b" not a date"), None);
    }
}
