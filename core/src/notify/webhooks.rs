//! Outgoing webhooks as the Standard Webhooks specification has them: the
//! events a room's admins may choose, the payload, the signature headers
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 of
//! `id.timestamp.body` under the `whsec_` secret, several signatures while a
//! secret is being rotated), verification, the target URL's rules, and the
//! retry schedule with the automatic disabling of a hook that keeps failing.

use crate::hmac::{constant_time_eq, hmac_sha256};
use crate::ApiError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Hooks per room.
pub const HOOKS_PER_ROOM_MAX: usize = 20;
pub const URL_MAX: usize = 2048;
/// How long a delivery may take before it counts as failed.
pub const TIMEOUT_MS: u64 = 10_000;
/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP_SECS: u64 = 24 * 3600;
/// How far a receiver accepts a timestamp from its clock (the spec's five minutes).
pub const TOLERANCE_SECS: u64 = 5 * 60;
const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a delivery's response body kept in the log.
pub const LOG_BODY_MAX: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "message.posted")]
    MessagePosted,
    #[serde(rename = "file.added")]
    FileAdded,
    #[serde(rename = "activity.changed")]
    ActivityChanged,
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    #[serde(rename = "approval.decided")]
    ApprovalDecided,
    /// Sent by the room when a day's check-in finished.
    #[serde(rename = "checkin.done")]
    CheckinDone,
    /// The "send test event" button; always delivered.
    #[serde(rename = "webhook.test")]
    Test,
}

impl EventType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MessagePosted => "message.posted",
            Self::FileAdded => "file.added",
            Self::ActivityChanged => "activity.changed",
            Self::ApprovalRequested => "approval.requested",
            Self::ApprovalDecided => "approval.decided",
            Self::CheckinDone => "checkin.done",
            Self::Test => "webhook.test",
        }
    }

    /// The webhook event of an event a room records (see `RoomDO::record`).
    pub fn of_room_event(event: &str) -> Option<Self> {
        Some(match event {
            "file_added" => Self::FileAdded,
            "collaboration_updated" => Self::ActivityChanged,
            "approval_requested" => Self::ApprovalRequested,
            "approval_resolved" => Self::ApprovalDecided,
            _ => return None,
        })
    }
}

/// The body of a delivery: `{"type", "timestamp", "data"}` (the spec's shape).
pub fn payload(event: EventType, room_id: &str, at_ms: u64, data: &Value) -> String {
    serde_json::json!({
        "type": event.as_str(),
        "timestamp": rfc3339(at_ms),
        "data": { "room_id": room_id, "event": data },
    })
    .to_string()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, mo, d) = crate::dates::civil(secs);
    let t = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60,
        ms % 1000
    )
}

/// A signing secret, `whsec_` and the base64 of its key bytes.
pub fn secret_from_bytes(bytes: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

fn secret_key(secret: &str) -> Result<Vec<u8>, ApiError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(b64)
        .ok()
        .filter(|k| (24..=64).contains(&k.len()))
        .ok_or_else(|| ApiError::invalid("a webhook secret is whsec_ and 24 to 64 bytes of base64"))
}

/// One `v1,<base64>` signature.
pub fn sign(secret: &str, msg_id: &str, timestamp: u64, body: &str) -> Result<String, ApiError> {
    let key = secret_key(secret)?;
    let ts = timestamp.to_string();
    let mac = hmac_sha256(
        &key,
        &[
            msg_id.as_bytes(),
            b".",
            ts.as_bytes(),
            b".",
            body.as_bytes(),
        ],
    );
    Ok(format!("v1,{}", STANDARD.encode(mac)))
}

/// The three headers of a delivery, signed with every secret given (the
/// current one first; the previous one too while a rotation overlaps).
pub fn headers(
    secrets: &[&str],
    msg_id: &str,
    timestamp: u64,
    body: &str,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let sigs = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![
        ("webhook-id", msg_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", sigs.join(" ")),
        ("content-type", "application/json".to_string()),
    ])
}

/// What a receiver does: any `v1` signature of the header matching, the
/// timestamp within [`TOLERANCE_SECS`] of `now_secs`.
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &str,
    now_secs: u64,
) -> Result<(), ApiError> {
    let ts: u64 = timestamp
        .parse()
        .map_err(|_| ApiError::invalid("bad webhook-timestamp"))?;
    if ts.abs_diff(now_secs) > TOLERANCE_SECS {
        return Err(ApiError::invalid("webhook-timestamp outside the tolerance"));
    }
    let expected = sign(secret, msg_id, ts, body)?;
    let ok = signature_header
        .split(' ')
        .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("no matching signature"))
    }
}

/// A target URL: `https` with a host, no credentials; `http` and local or
/// private hosts only when the deployment allows them (local development,
/// the tests' receivers on loopback).
pub fn validate_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::invalid(format!("url: {m}")));
    if url.len() > URL_MAX {
        return bad("too long");
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://").filter(|_| allow_private) {
        r
    } else {
        return bad("must start with https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.chars().any(char::is_whitespace) {
        return bad("must name a host and no credentials");
    }
    let host = host_of(authority).to_ascii_lowercase();
    if !allow_private && is_private_host(&host) {
        return bad("private and local addresses are not allowed");
    }
    Ok(())
}

fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

/// Names and literal addresses that lead inside (a best effort: a public
/// name may still resolve inside, which the platform's egress stops).
fn is_private_host(host: &str) -> bool {
    if host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || !host.contains('.') && !host.contains(':')
    {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.octets()[0] == 100 && (64..128).contains(&ip.octets()[1]);
    }
    if let Ok(ip) = host.parse::<std::net::Ipv6Addr>() {
        let seg = ip.segments()[0];
        return ip.is_loopback()
            || ip.is_unspecified()
            || (seg & 0xfe00) == 0xfc00
            || (seg & 0xffc0) == 0xfe80;
    }
    false
}

/// When to try again and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Seconds before each retry after a failed attempt.
    pub delays_secs: Vec<u32>,
    /// Failed attempts in a row (across deliveries) that disable the hook.
    pub disable_after: u32,
}

/// Retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 6 h: eight attempts
/// over 23.6 hours (each delay under the queue's 12-hour maximum).
pub const DEFAULT_DELAYS_SECS: [u32; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 21_600];
/// The longest delay a queue message takes.
const QUEUE_DELAY_MAX: u32 = 12 * 3600;

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays_secs: DEFAULT_DELAYS_SECS.to_vec(),
            disable_after: DEFAULT_DELAYS_SECS.len() as u32 + 1,
        }
    }
}

impl RetryPolicy {
    /// From `WEBHOOK_RETRY_SECS` (comma-separated delays); the hook is then
    /// disabled after as many failures in a row as one delivery's attempts.
    pub fn parse(spec: Option<&str>) -> Self {
        let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
            return Self::default();
        };
        let delays: Option<Vec<u32>> = spec
            .split(',')
            .map(|d| {
                d.trim()
                    .parse()
                    .ok()
                    .filter(|d| (1..=QUEUE_DELAY_MAX).contains(d))
            })
            .collect();
        match delays.filter(|d| !d.is_empty() && d.len() <= 20) {
            Some(d) => Self {
                disable_after: d.len() as u32 + 1,
                delays_secs: d,
            },
            None => Self::default(),
        }
    }

    /// After attempt number `attempt` (1 = the first) of a delivery failed,
    /// with `failures_in_row` failures of the hook counting this one.
    pub fn after_failure(&self, attempt: u32, failures_in_row: u32) -> Next {
        if failures_in_row >= self.disable_after {
            return Next::Disable;
        }
        match self.delays_secs.get(attempt as usize - 1) {
            Some(d) if attempt >= 1 => Next::RetryIn(*d),
            _ => Next::GiveUp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryIn(u32),
    /// This delivery is over; the hook stays on.
    GiveUp,
    /// The hook failed too often in a row: turned off, its admins told.
    Disable,
}

/// A delivery succeeded when the receiver answered 2xx.
pub const fn succeeded(status: u16) -> bool {
    status >= 200 && status < 300
}

/// What an admin sends to create a hook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateHook {
    pub url: String,
    pub events: Vec<EventType>,
    #[serde(default)]
    pub description: String,
}

/// What an admin may change (all optional); `rotate_secret` makes a new
/// secret while the previous one signs for [`ROTATION_OVERLAP_SECS`] more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateHook {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<EventType>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub rotate_secret: bool,
}

/// The event list of a hook: at least one, no repeats, no test events (those
/// are sent by the button, whatever the list).
pub fn validate_events(events: &[EventType]) -> Result<Vec<EventType>, ApiError> {
    let mut e: Vec<EventType> = events
        .iter()
        .copied()
        .filter(|e| *e != EventType::Test)
        .collect();
    e.sort();
    e.dedup();
    if e.is_empty() {
        return Err(ApiError::invalid("events must name at least one event"));
    }
    Ok(e)
}

pub fn validate_description(d: &str) -> Result<(), ApiError> {
    if d.chars().count() > 200 {
        return Err(ApiError::invalid("description is at most 200 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries: this secret, id, timestamp and body sign to this value.
    #[test]
    fn standard_webhooks_reference_signature() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &sig,
            body,
            1614265331,
        )
        .unwrap();
    }

    #[test]
    fn rotation_signs_with_both_and_either_verifies() {
        let old = secret_from_bytes(&[1; 32]);
        let new = secret_from_bytes(&[2; 32]);
        let h = headers(&[&new, &old], "msg_1", 100, "{}").unwrap();
        let sig = &h[2].1;
        assert_eq!(sig.split(' ').count(), 2);
        verify(&old, "msg_1", "100", sig, "{}", 100).unwrap();
        verify(&new, "msg_1", "100", sig, "{}", 100).unwrap();
        let other = secret_from_bytes(&[3; 32]);
        assert!(verify(&other, "msg_1", "100", sig, "{}", 100).is_err());
        assert!(
            verify(&new, "msg_1", "100", sig, "{ }", 100).is_err(),
            "body changed"
        );
        assert!(
            verify(&new, "msg_2", "100", sig, "{}", 100).is_err(),
            "id changed"
        );
        assert!(verify(&new, "msg_1", "100", sig, "{}", 100 + TOLERANCE_SECS + 1).is_err());
        assert!(sign("whsec_short", "m", 1, "").is_err());
    }

    #[test]
    fn payloads_have_the_spec_shape() {
        let p: Value = serde_json::from_str(&payload(
            EventType::FileAdded,
            "r1",
            1_614_265_330_123,
            &serde_json::json!({"file": {"id": "f"}}),
        ))
        .unwrap();
        assert_eq!(p["type"], "file.added");
        assert_eq!(p["timestamp"], "2021-02-25T15:02:10.123Z");
        assert_eq!(p["data"]["room_id"], "r1");
        assert_eq!(
            EventType::of_room_event("approval_resolved"),
            Some(EventType::ApprovalDecided)
        );
        assert_eq!(EventType::of_room_event("file_deleted"), None);
    }

    #[test]
    fn urls_must_be_public_https() {
        assert!(validate_url("https://hooks.example.com/x?y=1", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://user:pw@example.com/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://192.168.0.1:8443/",
            "https://169.254.169.254/latest",
            "https://[::1]/",
            "https://localhost/",
            "https://intranet/",
            "ftp://example.com/",
            "https:///path",
        ] {
            assert!(validate_url(bad, false).is_err(), "{bad}");
        }
        assert!(validate_url("http://127.0.0.1:9999/hook", true).is_ok());
    }

    #[test]
    fn retries_back_off_for_a_day_then_disable() {
        let p = RetryPolicy::default();
        let total: u32 = p.delays_secs.iter().sum();
        assert!((23 * 3600..=24 * 3600).contains(&total), "{total}");
        assert!(
            p.delays_secs.windows(2).take(5).all(|w| w[0] < w[1]),
            "backoff grows"
        );
        assert_eq!(p.after_failure(1, 1), Next::RetryIn(5));
        assert_eq!(p.after_failure(7, 7), Next::RetryIn(21_600));
        assert_eq!(p.after_failure(8, 8), Next::Disable);
        // A hook that succeeds now and then only gives up on single deliveries.
        assert_eq!(p.after_failure(8, 3), Next::GiveUp);
        let short = RetryPolicy::parse(Some("1, 2"));
        assert_eq!(short.delays_secs, vec![1, 2]);
        assert_eq!(short.after_failure(3, 3), Next::Disable);
        assert_eq!(RetryPolicy::parse(Some("0,x")), RetryPolicy::default());
        assert_eq!(RetryPolicy::parse(Some("99999")), RetryPolicy::default());
        assert!(succeeded(204) && !succeeded(301) && !succeeded(500));
    }

    #[test]
    fn event_lists() {
        assert_eq!(
            validate_events(&[EventType::FileAdded, EventType::Test, EventType::FileAdded])
                .unwrap(),
            vec![EventType::FileAdded]
        );
        assert!(validate_events(&[EventType::Test]).is_err());
        let c: CreateHook =
            serde_json::from_str(r#"{"url":"https://x.example/","events":["message.posted"]}"#)
                .unwrap();
        assert_eq!(c.events, vec![EventType::MessagePosted]);
        assert!(serde_json::from_str::<CreateHook>(r#"{"url":"u","events":["nope"]}"#).is_err());
    }
}
