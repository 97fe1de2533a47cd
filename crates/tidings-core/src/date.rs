//! Dates in the RFC 5322 §3.3 form used by trace fields: `Sat, 21 Nov 2026 09:42:00 +0000`.

use time::OffsetDateTime;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Formats Unix time `secs` (UTC) as an RFC 5322 `date-time`. Out-of-range values are clamped to
/// the Unix epoch.
pub fn rfc5322(secs: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[t.weekday().number_days_from_monday() as usize],
        t.day(),
        MONTHS[u8::from(t.month()) as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The current Unix time in seconds.
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The current Unix time in milliseconds.
pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc5322() {
        assert_eq!(super::rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(super::rfc5322(1_795_254_120), "Sat, 21 Nov 2026 09:42:00 +0000");
    }
}
