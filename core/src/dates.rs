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

/// The unix time of the start of a UTC day `YYYY-MM-DD` (the inverse of
/// [`civil`]); `None` for anything else or a day that does not exist.
pub fn parse_day(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2 / 400;
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let secs = days * 86_400;
    // 31 February and the like land on another day: refused.
    (civil(secs) == (y, m, d)).then_some(secs)
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

    #[test]
    fn days_parse_back_to_their_start() {
        for secs in [0, 951_782_400, 1_795_305_600, 4_102_444_800] {
            assert_eq!(parse_day(&day_of(secs)), Some(secs));
        }
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "1969-12-31",
            "+026-01-01",
            "soon",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
