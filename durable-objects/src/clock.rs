//! The time, from the platform's clock (which, in Workers, advances with I/O).

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// An object's alarm time for `at_ms` (milliseconds since the epoch): a date,
/// since an integer or a duration would be read as an offset from now.
pub fn alarm_at(at_ms: u64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&(at_ms as f64).into()))
}
