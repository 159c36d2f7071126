//! Calendar dates of unix times (UTC), for HTTP dates and per-day accounting.

/// The UTC calendar date (year, month 1–12, day 1–31) of a unix time
/// (Howard Hinnant's days-to-civil algorithm).
pub fn civil(unix_secs: u64) -> (u64, u64, u64) {
    let z = unix_secs / 86_400 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

/// The UTC day of a unix time, `YYYY-MM-DD` (AI usage and check-ins are per day).
pub fn day_of(unix_secs: u64) -> String {
    let (y, m, d) = civil(unix_secs);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(951_782_400), "2000-02-29");
        assert_eq!(day_of(1_795_305_600 + 86_399), "2026-11-22");
        assert_eq!(day_of(4_102_444_800), "2100-01-01");
    }
}
