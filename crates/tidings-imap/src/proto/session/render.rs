//! Pieces of FETCH responses: dates (RFC 9051 §9 `date-time`), section specifiers as echoed
//! back (RFC 9051 §7.5.2), and the items `imap-codec` encodes for us (ENVELOPE, BODY,
//! BODYSTRUCTURE).

use std::num::NonZeroU32;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
use imap_codec::imap_types::response::{Data, Response};

use crate::proto::wire::is_astring_char;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The civil date (year, month 1..=12, day 1..=31) of a day count since 1970-01-01, in the
/// proleptic Gregorian calendar (the well-known era-based conversion).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day count since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// INTERNALDATE's form, in UTC: `"17-Jul-1996 02:44:25 +0000"` (with the quotes).
pub(crate) fn internal_date(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let month = MONTHS[(month - 1) as usize];
    format!("\"{day:02}-{month}-{year:04} {:02}:{:02}:{:02} +0000\"", rest / 3600, rest / 60 % 60, rest % 60)
}

/// The UTC day of a Unix time, as days since 1970-01-01.
pub(crate) fn day_of(secs: i64) -> i64 {
    secs.div_euclid(86_400)
}

/// A part number as written: `1.2.3`.
pub(crate) fn part_text(part: &[NonZeroU32]) -> String {
    part.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(".")
}

/// The section specifier between the brackets of `BODY[...]`, as the response echoes it.
pub(crate) fn section_text(section: Option<&Section<'_>>) -> String {
    let prefixed = |part: &Option<Part>, text: &str| match part {
        Some(part) => format!("{}.{text}", part_text(part.0.as_ref())),
        None => text.to_owned(),
    };
    let fields = |names: &Vec1<AString<'_>>| {
        names.as_ref().iter().map(|name| astring_text(name.as_ref())).collect::<Vec<_>>().join(" ")
    };
    match section {
        None => String::new(),
        Some(Section::Part(part)) => part_text(part.0.as_ref()),
        Some(Section::Header(part)) => prefixed(part, "HEADER"),
        Some(Section::HeaderFields(part, names)) => prefixed(part, &format!("HEADER.FIELDS ({})", fields(names))),
        Some(Section::HeaderFieldsNot(part, names)) => {
            prefixed(part, &format!("HEADER.FIELDS.NOT ({})", fields(names)))
        }
        Some(Section::Text(part)) => prefixed(part, "TEXT"),
        Some(Section::Mime(part)) => format!("{}.MIME", part_text(part.0.as_ref())),
    }
}

/// A header field name as an atom, or quoted when it is not one (names are ASCII: the parser
/// takes `header-fld-name` as an astring, and non-ASCII ones are written escaped).
fn astring_text(name: &[u8]) -> String {
    if !name.is_empty() && name.iter().all(|&b| is_astring_char(b)) {
        return String::from_utf8_lossy(name).into_owned();
    }
    let mut quoted = String::from("\"");
    for &b in name {
        match b {
            b'"' | b'\\' => {
                quoted.push('\\');
                quoted.push(char::from(b));
            }
            0x20..=0x7e => quoted.push(char::from(b)),
            _ => quoted.push('?'),
        }
    }
    quoted.push('"');
    quoted
}

/// The wire form of one FETCH data item, encoded by `imap-codec` (e.g. `ENVELOPE (...)`),
/// literals inline.
pub(crate) fn encoded_item(item: MessageDataItem<'_>) -> Vec<u8> {
    const PREFIX: &[u8] = b"* 1 FETCH (";
    const SUFFIX: &[u8] = b")\r\n";
    let data = Data::Fetch { seq: NonZeroU32::MIN, items: Vec1::from(item) };
    let bytes = ResponseCodec::default().encode(&Response::Data(data)).dump();
    match bytes.strip_prefix(PREFIX).and_then(|b| b.strip_suffix(SUFFIX)) {
        Some(item) => item.to_vec(),
        None => {
            debug_assert!(false, "unexpected FETCH encoding {:?}", String::from_utf8_lossy(&bytes));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        for days in [-800_000, -1, 0, 59, 60, 10_000, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(internal_date(837_571_465), "\"17-Jul-1996 02:44:25 +0000\"");
    }

    #[test]
    fn sections_echo_as_written() {
        let one = NonZeroU32::MIN;
        let part = Part(Vec1::from(one));
        assert_eq!(section_text(None), "");
        assert_eq!(section_text(Some(&Section::Text(Some(part.clone())))), "1.TEXT");
        let names =
            Vec1::try_from(vec![AString::try_from("From").unwrap(), AString::try_from("x y").unwrap()]).unwrap();
        assert_eq!(section_text(Some(&Section::HeaderFields(None, names))), "HEADER.FIELDS (From \"x y\")");
        assert_eq!(section_text(Some(&Section::Mime(part))), "1.MIME");
    }
}
