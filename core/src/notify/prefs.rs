//! Notification preferences (per person, and per room: all, mentions only or
//! muted; quiet hours; email) and the one decision they feed: given an item,
//! the time and whether the person has a socket open or a push subscription,
//! where it goes and when an email would be sent.

use super::inbox::Kind;
use crate::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MINUTE_MS: u64 = 60_000;
const DAY_MINUTES: u64 = 24 * 60;
/// Rooms with their own level, per person.
pub const ROOM_LEVELS_MAX: usize = 1000;

/// How much of a room reaches the person.
///
/// * `all`: mentions and replies in the inbox, and the room's unread count
///   is badged and in the daily digest;
/// * `mentions`: mentions and replies only (the unread count is shown but
///   not badged, the room is left out of the digest);
/// * `muted`: nothing from the room's chat. Work addressed to the person
///   (approvals, outcomes, jobs) still arrives: muting a room must not hide
///   a decision someone waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    All,
    Mentions,
    Muted,
}

/// A daily span, in minutes after the person's local midnight, during which
/// nothing buzzes: no push, and emails wait for its end. `end < start` spans
/// midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start_minute: u16,
    pub end_minute: u16,
    /// The person's offset from UTC in minutes (−14 h to +14 h).
    pub utc_offset_minutes: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefs {
    /// Rooms without a level of their own.
    #[serde(default)]
    pub level: Level,
    #[serde(default)]
    pub rooms: BTreeMap<String, Level>,
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// Emails for mentions and approvals not seen in time.
    #[serde(default = "yes")]
    pub email: bool,
    /// The daily digest by email (opt-in).
    #[serde(default)]
    pub digest_email: bool,
}

fn yes() -> bool {
    true
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            level: Level::All,
            rooms: BTreeMap::new(),
            quiet_hours: None,
            email: true,
            digest_email: false,
        }
    }
}

/// A partial update (`PATCH /api/v1/me/preferences`): absent fields are kept;
/// a room set to `null` goes back to the default level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefsPatch {
    #[serde(default)]
    pub level: Option<Level>,
    #[serde(default)]
    pub rooms: BTreeMap<String, Option<Level>>,
    #[serde(default, with = "double_option")]
    pub quiet_hours: Option<Option<QuietHours>>,
    #[serde(default)]
    pub email: Option<bool>,
    #[serde(default)]
    pub digest_email: Option<bool>,
}

impl PrefsPatch {
    /// A request body: `quiet_hours: null` clears them; every other member is
    /// given or left out (serde alone would read `{"level": null}`, or `[]`,
    /// as an empty patch that the API document refuses).
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        crate::api::parse_body_with(body, PATCH_BYTES_MAX, &["quiet_hours"])
    }
}

/// The largest preferences patch.
const PATCH_BYTES_MAX: usize = 64 * 1024;

/// `null` (clear) apart from absent (keep).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

impl QuietHours {
    pub fn validate(&self) -> Result<(), ApiError> {
        if u64::from(self.start_minute) >= DAY_MINUTES || u64::from(self.end_minute) >= DAY_MINUTES
        {
            return Err(ApiError::invalid("quiet hours are minutes 0 to 1439"));
        }
        if self.start_minute == self.end_minute {
            return Err(ApiError::invalid(
                "quiet hours must not start where they end",
            ));
        }
        if !(-840..=840).contains(&self.utc_offset_minutes) {
            return Err(ApiError::invalid("utc_offset_minutes must be −840 to 840"));
        }
        Ok(())
    }

    /// The local minute of the day at `now_ms`.
    fn minute_of_day(&self, now_ms: u64) -> u64 {
        let local = (now_ms / MINUTE_MS) as i64 + i64::from(self.utc_offset_minutes);
        local.rem_euclid(DAY_MINUTES as i64) as u64
    }

    fn contains(&self, minute: u64) -> bool {
        let (s, e) = (u64::from(self.start_minute), u64::from(self.end_minute));
        if s < e {
            (s..e).contains(&minute)
        } else {
            minute >= s || minute < e
        }
    }

    pub fn quiet_at(&self, now_ms: u64) -> bool {
        self.contains(self.minute_of_day(now_ms))
    }

    /// When the quiet span around `now_ms` ends (`now_ms` itself when it is
    /// not quiet), at the start of that minute.
    pub fn quiet_until(&self, now_ms: u64) -> u64 {
        let minute = self.minute_of_day(now_ms);
        if !self.contains(minute) {
            return now_ms;
        }
        let end = u64::from(self.end_minute);
        let ahead = (end + DAY_MINUTES - minute) % DAY_MINUTES;
        (now_ms / MINUTE_MS + ahead) * MINUTE_MS
    }
}

impl Prefs {
    pub fn level_in(&self, room_id: &str) -> Level {
        self.rooms.get(room_id).copied().unwrap_or(self.level)
    }

    /// Applies a partial update; refuses it whole if any part is bad.
    pub fn patched(&self, patch: PrefsPatch) -> Result<Prefs, ApiError> {
        let mut next = self.clone();
        if let Some(l) = patch.level {
            next.level = l;
        }
        for (room, level) in patch.rooms {
            if !crate::ids::is_valid_path_param(&room) {
                return Err(ApiError::invalid("room ids in rooms must be ids"));
            }
            match level {
                Some(l) => next.rooms.insert(room, l),
                None => next.rooms.remove(&room),
            };
        }
        if next.rooms.len() > ROOM_LEVELS_MAX {
            return Err(ApiError::invalid(format!(
                "at most {ROOM_LEVELS_MAX} rooms with their own level"
            )));
        }
        if let Some(q) = patch.quiet_hours {
            if let Some(q) = &q {
                q.validate()?;
            }
            next.quiet_hours = q;
        }
        if let Some(e) = patch.email {
            next.email = e;
        }
        if let Some(d) = patch.digest_email {
            next.digest_email = d;
        }
        Ok(next)
    }

    pub fn quiet_at(&self, now_ms: u64) -> bool {
        self.quiet_hours.is_some_and(|q| q.quiet_at(now_ms))
    }
}

/// Where one item goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    pub inbox: bool,
    /// Sent over the person's open `/me` sockets.
    pub live: bool,
    /// A Web Push message now (no socket open, a subscription, not quiet).
    pub push: bool,
    /// When to email it if still unread then (unix ms).
    pub email_at: Option<u64>,
}

/// The state of the person that the decision needs besides their preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub sockets_open: bool,
    pub push_subscribed: bool,
    /// Whether the person has an email address to write to.
    pub has_email: bool,
}

/// Decides where an item of `kind` from `room_id` goes at `now_ms`;
/// `email_delay_ms` is how long an item may stay unseen before it is emailed.
pub fn decide(
    prefs: &Prefs,
    room_id: &str,
    kind: Kind,
    reach: Reach,
    now_ms: u64,
    email_delay_ms: u64,
) -> Delivery {
    let level = prefs.level_in(room_id);
    let inbox = kind.is_personal()
        || (level != Level::Muted && kind != Kind::Digest)
        || (kind == Kind::Digest && level == Level::All);
    if !inbox {
        return Delivery::default();
    }
    let quiet = prefs.quiet_at(now_ms);
    let email_at = (reach.has_email && prefs.email && kind.emails_when_unseen()).then(|| {
        let due = now_ms + email_delay_ms;
        prefs.quiet_hours.map_or(due, |q| q.quiet_until(due))
    });
    Delivery {
        inbox: true,
        live: reach.sockets_open,
        push: !reach.sockets_open && reach.push_subscribed && !quiet && kind != Kind::Digest,
        email_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: u64 = 3600 * 1000;
    const OFFLINE: Reach = Reach {
        sockets_open: false,
        push_subscribed: true,
        has_email: true,
    };

    fn night() -> QuietHours {
        QuietHours {
            start_minute: 22 * 60,
            end_minute: 7 * 60,
            utc_offset_minutes: 60,
        }
    }

    #[test]
    fn muted_rooms_keep_personal_work_only() {
        let mut p = Prefs::default();
        p.rooms.insert("r1".into(), Level::Muted);
        assert!(!decide(&p, "r1", Kind::Mention, OFFLINE, 0, 600_000).inbox);
        assert!(!decide(&p, "r1", Kind::Reply, OFFLINE, 0, 600_000).inbox);
        assert!(decide(&p, "r1", Kind::ApprovalRequested, OFFLINE, 0, 600_000).inbox);
        assert!(decide(&p, "r2", Kind::Mention, OFFLINE, 0, 600_000).inbox);
    }

    #[test]
    fn digest_only_for_rooms_at_all() {
        let mut p = Prefs::default();
        assert!(decide(&p, "r", Kind::Digest, OFFLINE, 0, 0).inbox);
        p.level = Level::Mentions;
        assert!(!decide(&p, "r", Kind::Digest, OFFLINE, 0, 0).inbox);
        assert!(decide(&p, "r", Kind::Mention, OFFLINE, 0, 0).inbox);
    }

    #[test]
    fn push_only_without_a_socket_and_outside_quiet_hours() {
        let mut p = Prefs::default();
        let d = decide(&p, "r", Kind::Mention, OFFLINE, 0, 600_000);
        assert!(d.push && !d.live);
        assert_eq!(d.email_at, Some(600_000));
        let online = Reach {
            sockets_open: true,
            ..OFFLINE
        };
        let d = decide(&p, "r", Kind::Mention, online, 0, 600_000);
        assert!(d.live && !d.push);
        // 23:00 local (22:00 UTC): quiet; the email waits until 07:00 local.
        p.quiet_hours = Some(night());
        let at = 22 * H;
        let d = decide(&p, "r", Kind::Mention, OFFLINE, at, 600_000);
        assert!(d.inbox && !d.push);
        assert_eq!(d.email_at, Some(30 * H));
    }

    #[test]
    fn email_only_for_kinds_that_wait_and_when_wanted() {
        let mut p = Prefs::default();
        assert_eq!(decide(&p, "r", Kind::Reply, OFFLINE, 0, 10).email_at, None);
        p.email = false;
        assert_eq!(
            decide(&p, "r", Kind::Mention, OFFLINE, 0, 10).email_at,
            None
        );
        let no_address = Reach {
            has_email: false,
            ..OFFLINE
        };
        assert_eq!(
            decide(&Prefs::default(), "r", Kind::Mention, no_address, 0, 10).email_at,
            None
        );
    }

    #[test]
    fn quiet_hours_span_midnight_in_local_time() {
        let q = night();
        // UTC 21:00 is 22:00 local: quiet starts.
        assert!(q.quiet_at(21 * H));
        assert!(!q.quiet_at(21 * H - 60_000));
        // UTC 05:59 is 06:59 local: still quiet; 06:00 UTC is 07:00 local: over.
        assert!(q.quiet_at(5 * H + 59 * 60_000));
        assert!(!q.quiet_at(6 * H));
        assert_eq!(q.quiet_until(23 * H), 30 * H);
        assert_eq!(q.quiet_until(12 * H), 12 * H);
        let bad = QuietHours {
            end_minute: 22 * 60,
            ..q
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn patches_apply_whole_or_not_at_all() {
        let p = Prefs::default();
        let patch: PrefsPatch = serde_json::from_str(
            r#"{"rooms":{"r1":"muted"},"quiet_hours":{"start_minute":1320,"end_minute":420,"utc_offset_minutes":0},"email":false}"#,
        )
        .unwrap();
        let next = p.patched(patch).unwrap();
        assert_eq!(next.level_in("r1"), Level::Muted);
        assert!(!next.email && next.quiet_hours.is_some());
        let clear: PrefsPatch =
            serde_json::from_str(r#"{"rooms":{"r1":null},"quiet_hours":null}"#).unwrap();
        let cleared = next.patched(clear).unwrap();
        assert_eq!(cleared.level_in("r1"), Level::All);
        assert_eq!(cleared.quiet_hours, None);
        assert!(!cleared.email, "absent fields are kept");
        let bad: PrefsPatch = serde_json::from_str(
            r#"{"level":"muted","quiet_hours":{"start_minute":5000,"end_minute":1,"utc_offset_minutes":0}}"#,
        )
        .unwrap();
        assert!(p.patched(bad).is_err());
        assert!(serde_json::from_str::<PrefsPatch>(r#"{"sms":true}"#).is_err());
    }

    #[test]
    fn a_patch_body_is_an_object_whose_only_null_clears_quiet_hours() {
        assert!(PrefsPatch::parse(br#"{"quiet_hours":null}"#).is_ok());
        assert!(PrefsPatch::parse(br#"{"rooms":{"r1":null}}"#).is_ok());
        for bad in [&br#"{"level":null}"#[..], br#"{"email":null}"#, br#"[]"#] {
            assert!(
                serde_json::from_slice::<PrefsPatch>(bad).is_ok(),
                "serde alone takes it"
            );
            assert_eq!(PrefsPatch::parse(bad).unwrap_err().code(), "invalid_input");
        }
    }

    proptest! {
        /// The time a quiet span ends is never quiet and never earlier.
        #[test]
        fn quiet_until_is_the_first_loud_minute(
            start in 0u16..1440, len in 1u16..1439, offset in -840i16..=840, now in 0u64..10_000_000_000_000,
        ) {
            let q = QuietHours { start_minute: start, end_minute: (start + len) % 1440, utc_offset_minutes: offset };
            let until = q.quiet_until(now);
            prop_assert!(until >= now.saturating_sub(60_000));
            prop_assert!(!q.quiet_at(until));
            prop_assert!(until - now.min(until) <= 24 * H);
        }
    }
}
