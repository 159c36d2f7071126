//! The person object's engine over its storage ([`PersonStore`]): what
//! delivering items stores and tells the sockets, what marking them read
//! tells them, and the object's one alarm (the emails that came due, the
//! digest, the retention drop) as a plan the object runs and then reports
//! done. The object holds the sockets and does the pushes, the queue sends
//! and the alarm calls; every decision is here, so the inbox's timing runs
//! natively against an in-memory store and a virtual clock.

use super::email::{DigestRoom, DIGEST_ROOMS_MAX};
use super::inbox::{expired_before, Counts, Item, MeFrame, NewItem};
use super::jobs::Job;
use super::prefs::{decide, Prefs, Reach};
use crate::dates::day_of;
use std::collections::BTreeMap;

/// Items emailed per alarm (the rest at the next one, which comes at once).
pub const EMAILS_PER_ALARM: u32 = 50;
/// When an alarm failed, the next one comes this much later.
pub const RETRY_ALARM_MS: u64 = 60_000;
/// Expired items are dropped at least this often.
pub const CLEANUP_EVERY_MS: u64 = 24 * 3600 * 1000;

/// The person object's delays (settings of the deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long an item may stay unseen before it is emailed.
    pub email_delay_ms: u64,
    /// How often a person who opted in gets the digest of their unread items.
    pub digest_every_ms: u64,
}

/// What the engine needs from the person object's storage.
pub trait PersonStore {
    type Error;
    /// The person's id, once the Worker has named it.
    fn user(&self) -> Result<Option<String>, Self::Error>;
    fn prefs(&self) -> Result<Prefs, Self::Error>;
    /// When the next digest is due (unix ms), if one is set.
    fn digest_at(&self) -> Result<Option<u64>, Self::Error>;
    fn set_digest_at(&mut self, at: Option<u64>) -> Result<(), Self::Error>;
    /// Stores an item received at `at`, to be emailed at `email_at` if still
    /// unread; `None`, storing nothing, when an item of its key is there.
    fn insert_item(
        &mut self,
        item: &NewItem,
        at: u64,
        email_at: Option<u64>,
    ) -> Result<Option<u64>, Self::Error>;
    fn unread_items(&self) -> Result<u64, Self::Error>;
    /// Each room's counts (only `room`'s when given): the room's unread
    /// messages as it last said, and the unread items that count as mentions.
    fn counts(&self, room: Option<&str>) -> Result<BTreeMap<String, Counts>, Self::Error>;
    /// Marks the given unread items (every unread item with `all`) read,
    /// which also cancels their emails; returns the rooms of those marked.
    fn mark_read(&mut self, ids: &[u64], all: bool) -> Result<Vec<String>, Self::Error>;
    /// Unread items whose email is due at `now`, the earliest first.
    fn emails_due(&self, now: u64, limit: u32) -> Result<Vec<(u64, NewItem)>, Self::Error>;
    /// The item's email is queued: it is not sent again.
    fn email_queued(&mut self, id: u64) -> Result<(), Self::Error>;
    /// The earliest email still waiting.
    fn next_email_at(&self) -> Result<Option<u64>, Self::Error>;
    /// Drops the items received before `before`.
    fn drop_before(&mut self, before: u64) -> Result<(), Self::Error>;
    /// Rooms with unread items received since `since`, most unread first.
    fn digest_rooms(&self, since: u64, limit: usize) -> Result<Vec<DigestRoom>, Self::Error>;
}

/// What the object does after a call into the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// To every open `/me` socket of the person.
    Broadcast(MeFrame),
    /// A Web Push message of the item to every subscription.
    Push(Item),
    /// The alarm must ring by then (unix ms); a sooner one stands.
    AlarmBy(u64),
}

/// Stores each item the preferences let in (once per key) and says what
/// goes to the sockets, what is pushed, and when the alarm must ring.
pub fn deliver<S: PersonStore>(
    store: &mut S,
    items: Vec<NewItem>,
    reach: Reach,
    now: u64,
    timing: Timing,
) -> Result<(u64, Vec<Output>), S::Error> {
    let prefs = store.prefs()?;
    let mut out = Vec::new();
    let mut pushes = Vec::new();
    let mut delivered = 0;
    let mut earliest_email: Option<u64> = None;
    for item in items {
        let d = decide(
            &prefs,
            &item.room_id,
            item.kind,
            reach,
            now,
            timing.email_delay_ms,
        );
        if !d.inbox {
            continue;
        }
        let Some(id) = store.insert_item(&item, now, d.email_at)? else {
            continue;
        };
        delivered += 1;
        let stored = Item {
            id,
            link: item.link(),
            item,
            read: false,
        };
        if d.live {
            out.push(Output::Broadcast(MeFrame::Item {
                item: stored.clone(),
                unread_items: store.unread_items()?,
            }));
            if stored.item.kind.counts_as_mention() {
                out.push(Output::Broadcast(counts(store, &stored.item.room_id)?));
            }
        }
        if d.push {
            pushes.push(Output::Push(stored));
        }
        earliest_email = earliest(earliest_email, d.email_at);
    }
    if delivered > 0 {
        let digest = schedule_digest(store, &prefs, now, timing)?;
        out.push(Output::AlarmBy(next_alarm(
            now,
            earliest(earliest_email, digest),
        )));
    }
    out.extend(pushes);
    Ok((delivered, out))
}

/// Marks items read; the frames for the sockets (the read ids, then each
/// touched room's counts).
pub fn mark_read<S: PersonStore>(
    store: &mut S,
    ids: &[u64],
    all: bool,
) -> Result<Vec<MeFrame>, S::Error> {
    let mut rooms = store.mark_read(ids, all)?;
    rooms.sort();
    rooms.dedup();
    let mut frames = vec![MeFrame::Read {
        ids: if all { Vec::new() } else { ids.to_vec() },
        all,
        unread_items: store.unread_items()?,
    }];
    for room in rooms {
        frames.push(counts(store, &room)?);
    }
    Ok(frames)
}

/// The frame of one room's current counts.
pub fn counts<S: PersonStore>(store: &S, room_id: &str) -> Result<MeFrame, S::Error> {
    Ok(MeFrame::Counts {
        room_id: room_id.to_string(),
        counts: store
            .counts(Some(room_id))?
            .remove(room_id)
            .unwrap_or_default(),
    })
}

/// A socket's first frame.
pub fn hello<S: PersonStore>(store: &S) -> Result<MeFrame, S::Error> {
    Ok(MeFrame::Hello {
        unread_items: store.unread_items()?,
        rooms: store.counts(None)?,
    })
}

/// What an alarm sends. The object queues the jobs and only then reports
/// the plan [`done`]: a failure before that leaves everything due for the
/// retry (the mail log makes a repeated email or digest send nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmPlan {
    pub jobs: Vec<Job>,
    emailed: Vec<u64>,
    digest_due: bool,
}

/// The alarm at `now`: the emails that came due and, when due, the digest
/// of the rooms with items still unread since it was set. `None` before the
/// object knows whose it is.
pub fn alarm<S: PersonStore>(
    store: &S,
    now: u64,
    timing: Timing,
) -> Result<Option<AlarmPlan>, S::Error> {
    let Some(user_id) = store.user()? else {
        return Ok(None);
    };
    let mut jobs = Vec::new();
    let mut emailed = Vec::new();
    for (item_id, item) in store.emails_due(now, EMAILS_PER_ALARM)? {
        emailed.push(item_id);
        jobs.push(Job::Email {
            user_id: user_id.clone(),
            item_id,
            item,
        });
    }
    let digest_due = store.digest_at()?.is_some_and(|at| at <= now);
    if digest_due && store.prefs()?.digest_email {
        // The digest covers the period it was set for: from its first item.
        let since = store
            .digest_at()?
            .map_or(0, |at| at.saturating_sub(timing.digest_every_ms));
        let rooms = store.digest_rooms(since, DIGEST_ROOMS_MAX)?;
        if !rooms.is_empty() {
            jobs.push(Job::Digest {
                user_id,
                day: day_of(now / 1000),
                rooms,
            });
        }
    }
    Ok(Some(AlarmPlan {
        jobs,
        emailed,
        digest_due,
    }))
}

/// The plan's jobs are queued: records it, drops expired items, and says
/// when the alarm rings next (set outright: the one running is spent).
pub fn done<S: PersonStore>(store: &mut S, plan: AlarmPlan, now: u64) -> Result<u64, S::Error> {
    for id in plan.emailed {
        store.email_queued(id)?;
    }
    if plan.digest_due {
        // The next digest is set when the next item arrives: a quiet inbox
        // gets none.
        store.set_digest_at(None)?;
    }
    store.drop_before(expired_before(now))?;
    let digest = store.digest_at()?;
    Ok(next_alarm(now, earliest(store.next_email_at()?, digest)))
}

/// When the next digest is due, setting it a period from now if the person
/// wants digests and none is set.
fn schedule_digest<S: PersonStore>(
    store: &mut S,
    prefs: &Prefs,
    now: u64,
    timing: Timing,
) -> Result<Option<u64>, S::Error> {
    if !prefs.digest_email {
        return Ok(None);
    }
    if let Some(at) = store.digest_at()? {
        return Ok(Some(at));
    }
    let at = now + timing.digest_every_ms;
    store.set_digest_at(Some(at))?;
    Ok(Some(at))
}

fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.into_iter().chain(b).min()
}

/// What is due, and at the latest the daily drop of expired items.
fn next_alarm(now: u64, due: Option<u64>) -> u64 {
    due.map_or(now + CLEANUP_EVERY_MS, |at| at.min(now + CLEANUP_EVERY_MS))
}

#[cfg(test)]
mod tests {
    use super::super::inbox::{Kind, RETENTION_MS};
    use super::super::prefs::QuietHours;
    use super::*;
    use std::convert::Infallible;

    const MIN: u64 = 60_000;
    const DAY: u64 = 24 * 60 * MIN;
    const TIMING: Timing = Timing {
        email_delay_ms: 10 * MIN,
        digest_every_ms: DAY,
    };
    const OFFLINE: Reach = Reach {
        sockets_open: false,
        push_subscribed: true,
        has_email: true,
    };
    const ONLINE: Reach = Reach {
        sockets_open: true,
        push_subscribed: true,
        has_email: true,
    };

    struct Stored {
        item: NewItem,
        at: u64,
        read: bool,
        email_at: Option<u64>,
    }

    /// The person object's storage in memory.
    #[derive(Default)]
    struct Mem {
        user: Option<String>,
        prefs: Prefs,
        digest_at: Option<u64>,
        items: BTreeMap<u64, Stored>,
        room_unread: BTreeMap<String, u64>,
    }

    impl PersonStore for Mem {
        type Error = Infallible;
        fn user(&self) -> Result<Option<String>, Infallible> {
            Ok(self.user.clone())
        }
        fn prefs(&self) -> Result<Prefs, Infallible> {
            Ok(self.prefs.clone())
        }
        fn digest_at(&self) -> Result<Option<u64>, Infallible> {
            Ok(self.digest_at)
        }
        fn set_digest_at(&mut self, at: Option<u64>) -> Result<(), Infallible> {
            self.digest_at = at;
            Ok(())
        }
        fn insert_item(
            &mut self,
            item: &NewItem,
            at: u64,
            email_at: Option<u64>,
        ) -> Result<Option<u64>, Infallible> {
            if self.items.values().any(|s| s.item.key() == item.key()) {
                return Ok(None);
            }
            let id = self.items.keys().next_back().map_or(1, |k| k + 1);
            let stored = Stored {
                item: item.clone(),
                at,
                read: false,
                email_at,
            };
            self.items.insert(id, stored);
            Ok(Some(id))
        }
        fn unread_items(&self) -> Result<u64, Infallible> {
            Ok(self.items.values().filter(|s| !s.read).count() as u64)
        }
        fn counts(&self, room: Option<&str>) -> Result<BTreeMap<String, Counts>, Infallible> {
            let wanted = |r: &str| room.is_none_or(|w| w == r);
            let mut out: BTreeMap<String, Counts> = self
                .room_unread
                .iter()
                .filter(|(r, _)| wanted(r))
                .map(|(r, n)| {
                    let c = Counts {
                        unread: *n,
                        mentions: 0,
                    };
                    (r.clone(), c)
                })
                .collect();
            for s in self.items.values() {
                if !s.read && s.item.kind.counts_as_mention() && wanted(&s.item.room_id) {
                    out.entry(s.item.room_id.clone()).or_default().mentions += 1;
                }
            }
            Ok(out)
        }
        fn mark_read(&mut self, ids: &[u64], all: bool) -> Result<Vec<String>, Infallible> {
            let mut rooms = Vec::new();
            for (id, s) in &mut self.items {
                if !s.read && (all || ids.contains(id)) {
                    s.read = true;
                    s.email_at = None;
                    rooms.push(s.item.room_id.clone());
                }
            }
            Ok(rooms)
        }
        fn emails_due(&self, now: u64, limit: u32) -> Result<Vec<(u64, NewItem)>, Infallible> {
            let mut due: Vec<(u64, u64, NewItem)> = self
                .items
                .iter()
                .filter_map(|(id, s)| {
                    let at = s.email_at.filter(|at| *at <= now && !s.read)?;
                    Some((at, *id, s.item.clone()))
                })
                .collect();
            due.sort_by_key(|d| (d.0, d.1));
            Ok(due
                .into_iter()
                .take(limit as usize)
                .map(|(_, id, item)| (id, item))
                .collect())
        }
        fn email_queued(&mut self, id: u64) -> Result<(), Infallible> {
            if let Some(s) = self.items.get_mut(&id) {
                s.email_at = None;
            }
            Ok(())
        }
        fn next_email_at(&self) -> Result<Option<u64>, Infallible> {
            Ok(self.items.values().filter_map(|s| s.email_at).min())
        }
        fn drop_before(&mut self, before: u64) -> Result<(), Infallible> {
            self.items.retain(|_, s| s.at >= before);
            Ok(())
        }
        fn digest_rooms(&self, since: u64, limit: usize) -> Result<Vec<DigestRoom>, Infallible> {
            let mut rooms: BTreeMap<String, DigestRoom> = BTreeMap::new();
            for s in self.items.values().filter(|s| !s.read && s.at >= since) {
                let r = rooms
                    .entry(s.item.room_id.clone())
                    .or_insert_with(|| DigestRoom {
                        room_id: s.item.room_id.clone(),
                        name: String::new(),
                        unread: 0,
                        mentions: 0,
                    });
                r.unread += 1;
                r.mentions += u64::from(s.item.kind.counts_as_mention());
            }
            let mut list: Vec<DigestRoom> = rooms.into_values().collect();
            list.sort_by(|a, b| b.unread.cmp(&a.unread).then(a.room_id.cmp(&b.room_id)));
            list.truncate(limit);
            Ok(list)
        }
    }

    fn person() -> Mem {
        Mem {
            user: Some("u_ann".into()),
            ..Mem::default()
        }
    }

    /// Ann, offline, with one mention delivered at time 0.
    fn offline_with_a_mention() -> Mem {
        let mut s = person();
        ok(deliver(&mut s, vec![mention()], OFFLINE, 0, TIMING));
        s
    }

    fn mention() -> NewItem {
        item(Kind::Mention, "r1", "7")
    }

    fn item(kind: Kind, room: &str, subject: &str) -> NewItem {
        NewItem {
            kind,
            room_id: room.into(),
            subject: subject.into(),
            actor: Some("u_bob".into()),
            actor_name: Some("Bob".into()),
            text: "look at this".into(),
            at: 0,
        }
    }

    fn ok<T>(r: Result<T, Infallible>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => match e {},
        }
    }

    fn alarm_by(out: &[Output]) -> Option<u64> {
        out.iter().find_map(|o| match o {
            Output::AlarmBy(at) => Some(*at),
            _ => None,
        })
    }

    /// Runs the alarm at `now` with every job queued; the jobs and the next alarm.
    fn ring(s: &mut Mem, now: u64) -> (Vec<Job>, u64) {
        let Some(plan) = ok(alarm(s, now, TIMING)) else {
            return (Vec::new(), u64::MAX);
        };
        let jobs = plan.jobs.clone();
        (jobs, ok(done(s, plan, now)))
    }

    fn emailed(jobs: &[Job]) -> Vec<u64> {
        jobs.iter()
            .filter_map(|j| match j {
                Job::Email { item_id, .. } => Some(*item_id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_unseen_mention_is_emailed_once_when_its_delay_is_up() {
        let mut s = person();
        let (n, out) = ok(deliver(
            &mut s,
            vec![item(Kind::Mention, "r1", "7"), item(Kind::Reply, "r1", "8")],
            OFFLINE,
            1_000,
            TIMING,
        ));
        assert_eq!(n, 2);
        // Both pushed (no socket open); the alarm for the mention's email.
        assert_eq!(
            out.iter().filter(|o| matches!(o, Output::Push(_))).count(),
            2
        );
        assert_eq!(alarm_by(&out), Some(1_000 + 10 * MIN));
        let (jobs, next) = ring(&mut s, 1_000 + 10 * MIN - 1);
        assert!(jobs.is_empty(), "nothing is due a moment early");
        assert_eq!(next, 1_000 + 10 * MIN);
        let (jobs, next) = ring(&mut s, 1_000 + 10 * MIN);
        assert_eq!(emailed(&jobs), vec![1], "replies are not emailed");
        assert_eq!(next, 1_000 + 10 * MIN + CLEANUP_EVERY_MS);
        let (jobs, _) = ring(&mut s, 1_000 + 20 * MIN);
        assert!(jobs.is_empty(), "queued once");
    }

    #[test]
    fn an_item_read_in_time_is_not_emailed() {
        let mut s = offline_with_a_mention();
        let frames = ok(mark_read(&mut s, &[1], false));
        assert_eq!(
            frames[0],
            MeFrame::Read {
                ids: vec![1],
                all: false,
                unread_items: 0
            }
        );
        assert_eq!(frames[1], ok(counts(&s, "r1")));
        let (jobs, _) = ring(&mut s, 10 * MIN);
        assert!(jobs.is_empty());
    }

    #[test]
    fn a_failed_alarm_leaves_its_emails_due() {
        let mut s = offline_with_a_mention();
        // The plan's jobs were not queued: `done` is never called.
        assert!(ok(alarm(&s, 10 * MIN, TIMING)).is_some());
        let (jobs, _) = ring(&mut s, 11 * MIN);
        assert_eq!(emailed(&jobs), vec![1]);
    }

    #[test]
    fn emails_go_out_a_batch_per_alarm_and_the_next_comes_at_once() {
        let mut s = person();
        let many: Vec<NewItem> = (0..EMAILS_PER_ALARM + 5)
            .map(|i| item(Kind::Mention, "r1", &i.to_string()))
            .collect();
        ok(deliver(&mut s, many, OFFLINE, 0, TIMING));
        let (jobs, next) = ring(&mut s, 10 * MIN);
        assert_eq!(jobs.len(), EMAILS_PER_ALARM as usize);
        assert_eq!(next, 10 * MIN, "the rest are already due");
        let (jobs, _) = ring(&mut s, next);
        assert_eq!(jobs.len(), 5);
    }

    #[test]
    fn a_repeated_delivery_lands_once() {
        let mut s = person();
        let one = || vec![mention()];
        assert_eq!(ok(deliver(&mut s, one(), ONLINE, 0, TIMING)).0, 1);
        let (n, out) = ok(deliver(&mut s, one(), ONLINE, 5, TIMING));
        assert_eq!(n, 0);
        assert!(out.is_empty(), "no frame, no alarm for a repeat");
    }

    #[test]
    fn an_open_socket_gets_the_item_and_the_rooms_counts_and_no_push() {
        let mut s = person();
        s.room_unread.insert("r1".into(), 4);
        let (_, out) = ok(deliver(&mut s, vec![mention()], ONLINE, 0, TIMING));
        assert!(matches!(
            &out[0],
            Output::Broadcast(MeFrame::Item {
                unread_items: 1,
                ..
            })
        ));
        assert_eq!(
            out[1],
            Output::Broadcast(MeFrame::Counts {
                room_id: "r1".into(),
                counts: Counts {
                    unread: 4,
                    mentions: 1
                }
            })
        );
        assert!(!out.iter().any(|o| matches!(o, Output::Push(_))));
        assert_eq!(
            ok(hello(&s)),
            MeFrame::Hello {
                unread_items: 1,
                rooms: BTreeMap::from([(
                    "r1".to_string(),
                    Counts {
                        unread: 4,
                        mentions: 1
                    }
                )]),
            }
        );
    }

    #[test]
    fn quiet_hours_hold_the_email_until_they_end() {
        let mut s = person();
        // 22:00 to 07:00 UTC; the item arrives at 23:00.
        s.prefs.quiet_hours = Some(QuietHours {
            start_minute: 22 * 60,
            end_minute: 7 * 60,
            utc_offset_minutes: 0,
        });
        let (_, out) = ok(deliver(
            &mut s,
            vec![mention()],
            OFFLINE,
            23 * 60 * MIN,
            TIMING,
        ));
        assert!(!out.iter().any(|o| matches!(o, Output::Push(_))));
        assert_eq!(alarm_by(&out), Some(DAY + 7 * 60 * MIN));
        let (jobs, _) = ring(&mut s, DAY + 6 * 60 * MIN);
        assert!(jobs.is_empty());
        let (jobs, _) = ring(&mut s, DAY + 7 * 60 * MIN);
        assert_eq!(emailed(&jobs), vec![1]);
    }

    #[test]
    fn the_digest_comes_a_period_after_the_first_item_and_only_for_unread_rooms() {
        let mut s = person();
        s.prefs.digest_email = true;
        s.prefs.email = false;
        let (_, out) = ok(deliver(
            &mut s,
            vec![item(Kind::Mention, "r1", "1"), item(Kind::Reply, "r2", "2")],
            OFFLINE,
            1_000,
            TIMING,
        ));
        assert_eq!(alarm_by(&out), Some(1_000 + DAY));
        // A later item does not move the digest.
        let (_, out) = ok(deliver(
            &mut s,
            vec![item(Kind::Reply, "r2", "3")],
            OFFLINE,
            2 * MIN,
            TIMING,
        ));
        assert_eq!(alarm_by(&out), Some(1_000 + DAY));
        ok(mark_read(&mut s, &[1], false));
        let (jobs, next) = ring(&mut s, 1_000 + DAY);
        let Some(Job::Digest { user_id, rooms, .. }) = jobs.first() else {
            panic!("expected the digest, got {jobs:?}");
        };
        assert_eq!(user_id, "u_ann");
        assert_eq!(rooms.len(), 1, "r1 was read: {rooms:?}");
        assert_eq!((rooms[0].room_id.as_str(), rooms[0].unread), ("r2", 2));
        assert_eq!(next, 1_000 + DAY + CLEANUP_EVERY_MS, "none until an item");
        assert_eq!(s.digest_at, None);
    }

    #[test]
    fn a_person_who_turned_the_digest_off_gets_none() {
        let mut s = person();
        s.prefs.digest_email = true;
        ok(deliver(
            &mut s,
            vec![item(Kind::Reply, "r1", "1")],
            OFFLINE,
            0,
            TIMING,
        ));
        s.prefs.digest_email = false;
        let (jobs, _) = ring(&mut s, DAY);
        assert!(jobs.is_empty());
        assert_eq!(s.digest_at, None, "the due digest is cleared");
    }

    #[test]
    fn items_past_retention_are_dropped_by_the_alarm() {
        let mut s = person();
        ok(deliver(
            &mut s,
            vec![item(Kind::Reply, "r1", "1")],
            ONLINE,
            0,
            TIMING,
        ));
        ok(deliver(
            &mut s,
            vec![item(Kind::Reply, "r1", "2")],
            ONLINE,
            RETENTION_MS / 2,
            TIMING,
        ));
        ring(&mut s, RETENTION_MS + 1);
        assert_eq!(s.items.len(), 1);
        assert_eq!(ok(s.unread_items()), 1);
    }

    #[test]
    fn an_object_that_does_not_know_its_person_plans_nothing() {
        let mut s = Mem::default();
        assert_eq!(ok(alarm(&s, 0, TIMING)), None);
        assert_eq!(ring(&mut s, 0).0, Vec::new());
    }
}
