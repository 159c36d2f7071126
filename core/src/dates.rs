//! Calendar dates of unix times (UTC), for HTTP dates and per-day accounting,
//! and the dates and times the API reads in query strings (`?date=`,
//! `?from=`, `?to=`).

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

/// The unix time of 00:00 UTC on a calendar date, if it is one (the inverse
/// of [`civil`], Howard Hinnant's days-from-civil).
pub fn from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&y) || d == 0 || d > days_in_month {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` (a real calendar date) → the unix time it starts at, UTC.
pub fn parse_day(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    from_civil(digits(&s[..4])?, digits(&s[5..7])?, digits(&s[8..])?)
}

/// A time as a query string gives it: unix seconds, a date (`2026-05-01`,
/// its start) or an RFC 3339 time (`2026-05-01T12:30:00Z`, fractions of a
/// second ignored, `Z` or an offset like `+02:00`).
pub fn parse_time(s: &str) -> Option<u64> {
    if let Some(secs) = digits(s).filter(|_| s.len() <= 12) {
        return Some(secs);
    }
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let day = parse_day(date)?;
    if rest.is_empty() {
        return Some(day);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, zone) = rest.split_at(rest.find(['Z', 'z', '+', '-'])?);
    let clock = clock.split('.').next()?;
    let hms: Vec<u64> = clock.split(':').map(digits).collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    if h > 23 || m > 59 || sec > 60 || clock.len() != 8 {
        return None;
    }
    let offset: i64 = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (oh, om) = zone.get(1..)?.split_once(':')?;
            let (oh, om) = (digits(oh)?, digits(om)?);
            if oh > 23 || om > 59 || zone.len() != 6 {
                return None;
            }
            sign * (oh * 3600 + om * 60) as i64
        }
    };
    let local = (day + h * 3600 + m * 60 + sec) as i64;
    u64::try_from(local - offset).ok()
}

/// `?date=YYYY-MM-DD` of a per-day read (check-ins, AI usage): that UTC day,
/// or the day of `now` when it is left out.
pub fn day_param(value: Option<&str>, now: u64) -> Result<String, crate::ApiError> {
    match value {
        None => Ok(day_of(now)),
        Some(v) if parse_day(v).is_some() => Ok(v.to_string()),
        Some(_) => Err(crate::ApiError::invalid_at(
            "date",
            "`date` must be a calendar date, YYYY-MM-DD (UTC)",
        )),
    }
}

/// `2026-05-01T12:30:00Z`: a unix time as people read it in messages.
pub fn rfc3339(unix_secs: u64) -> String {
    let rest = unix_secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        day_of(unix_secs),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_and_times_in_queries() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-02-29"), Some(951_782_400));
        for bad in [
            "2001-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-01-01",
            "2026-01-32",
            "x",
            "2026-01-01T",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert_eq!(parse_time("1795305600"), Some(1_795_305_600));
        assert_eq!(parse_time("2026-11-22"), parse_day("2026-11-22"));
        let noon = parse_day("2026-11-22").unwrap() + 12 * 3600 + 30 * 60;
        assert_eq!(parse_time("2026-11-22T12:30:00Z"), Some(noon));
        assert_eq!(parse_time("2026-11-22T12:30:00.123Z"), Some(noon));
        assert_eq!(parse_time("2026-11-22T14:30:00+02:00"), Some(noon));
        assert_eq!(parse_time("2026-11-22T10:30:00-02:00"), Some(noon));
        for bad in [
            "",
            "-5",
            "2026-11-22T12:30Z",
            "2026-11-22T25:00:00Z",
            "2026-11-22T12:30:00",
            "2026-11-22T12:30:00+2",
            "1e9",
            "99999999999999",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(rfc3339(noon), "2026-11-22T12:30:00Z");
        assert_eq!(day_param(None, noon).unwrap(), "2026-11-22");
        assert_eq!(day_param(Some("2026-02-28"), noon).unwrap(), "2026-02-28");
        for bad in ["2026-02-29", "today", "2026-2-28", "2026-02-28T00:00:00Z"] {
            assert_eq!(
                day_param(Some(bad), noon).unwrap_err().field(),
                Some("date"),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn a_day_and_its_start_agree(secs in 0u64..253_402_300_799) {
            let start = secs - secs % 86_400;
            prop_assert_eq!(parse_day(&day_of(secs)), Some(start));
            prop_assert_eq!(parse_time(&rfc3339(secs)), Some(secs));
        }
    }

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
