//! The time, from the platform's clock (which, in Workers, advances with I/O).

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}
