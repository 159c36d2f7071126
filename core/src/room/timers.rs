//! The one owner of a room object's deadlines: the work it must do without
//! traffic (document backups, and retrying the audit copy or interrupted
//! approvals after a failure) shares the object's single platform alarm.
//! The object asks for a timer with [`Timers::set`], keeps each deadline as
//! a row (so they outlive eviction), sets its alarm when [`Schedule`] says
//! so, and when the alarm rings runs what [`Timers::expired`] hands back and
//! sets the alarm again for [`Timers::poll_timeout`].

/// Work a room object does when its time comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Documents changed since their last backup go to R2 (and the backups
    /// of deleted ones are removed).
    Backup,
    /// The audit and approval outboxes are copied to D1 again.
    AuditRetry,
    /// Approved actions that a restart or a failure interrupted are finished.
    Resume,
}

impl Timer {
    pub const ALL: [Timer; 3] = [Timer::Backup, Timer::AuditRetry, Timer::Resume];

    /// The timer's name as its row stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::AuditRetry => "audit_retry",
            Self::Resume => "resume",
        }
    }

    pub fn parse(name: &str) -> Option<Timer> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// What a [`Timers::set`] asks of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// The timer is already due as soon: nothing to write.
    Unchanged,
    /// Store the timer's new time; the alarm already rings sooner.
    Store,
    /// Store the timer's new time and set the alarm to it: nothing is due sooner.
    StoreAndAlarm,
}

/// Each timer's deadline (milliseconds since the epoch), by `Timer::ALL`'s
/// order (an array, not a map: the Worker's bundle pays for every map type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timers {
    due: [Option<u64>; 3],
}

impl Timers {
    /// The timers as the object stored them.
    pub fn from_rows(rows: impl IntoIterator<Item = (Timer, u64)>) -> Self {
        let mut timers = Self::default();
        for (timer, at) in rows {
            timers.set(timer, at);
        }
        timers
    }

    /// Asks for `timer` at `at`; a request for sooner stands.
    pub fn set(&mut self, timer: Timer, at: u64) -> Schedule {
        if self.due[timer as usize].is_some_and(|set| set <= at) {
            return Schedule::Unchanged;
        }
        let sooner_than_all = self.poll_timeout().is_none_or(|soonest| at < soonest);
        self.due[timer as usize] = Some(at);
        if sooner_than_all {
            Schedule::StoreAndAlarm
        } else {
            Schedule::Store
        }
    }

    /// When the alarm must ring next, if anything is waiting.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.due.iter().flatten().min().copied()
    }

    /// The timers due at `now`, which are no longer set (the object deletes
    /// their rows and runs them; work that fails asks again).
    pub fn expired(&mut self, now: u64) -> Vec<Timer> {
        let due: Vec<Timer> = Timer::ALL
            .into_iter()
            .filter(|&t| self.due[t as usize].is_some_and(|at| at <= now))
            .collect();
        for timer in &due {
            self.due[*timer as usize] = None;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_soonest_request_stands_and_moves_the_alarm() {
        let mut t = Timers::default();
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.set(Timer::Backup, 1_000), Schedule::StoreAndAlarm);
        assert_eq!(t.set(Timer::Backup, 2_000), Schedule::Unchanged);
        assert_eq!(t.set(Timer::AuditRetry, 1_500), Schedule::Store);
        assert_eq!(t.set(Timer::Resume, 500), Schedule::StoreAndAlarm);
        assert_eq!(t.poll_timeout(), Some(500));
        assert_eq!(t.expired(499), []);
        assert_eq!(t.expired(1_200), [Timer::Backup, Timer::Resume]);
        assert_eq!(t.poll_timeout(), Some(1_500));
        // Asked again after it ran: set anew.
        assert_eq!(t.set(Timer::Backup, 9_000), Schedule::Store);
        assert_eq!(t.expired(u64::MAX), [Timer::Backup, Timer::AuditRetry]);
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn names_parse_back() {
        for timer in Timer::ALL {
            assert_eq!(Timer::parse(timer.as_str()), Some(timer));
        }
        assert_eq!(Timer::parse("flush"), None);
    }

    fn timer() -> impl Strategy<Value = Timer> {
        prop_oneof![
            Just(Timer::Backup),
            Just(Timer::AuditRetry),
            Just(Timer::Resume)
        ]
    }

    proptest! {
        /// Whatever is asked, in whatever order: each timer rings once, at its
        /// soonest request, and the alarm is set whenever (and only when) a
        /// request is sooner than everything waiting.
        #[test]
        fn each_timer_rings_at_its_soonest_request(
            asks in proptest::collection::vec((timer(), 0u64..1_000), 0..20),
            now in 0u64..1_000,
        ) {
            let mut t = Timers::default();
            let mut alarm: Option<u64> = None;
            for &(timer, at) in &asks {
                if t.set(timer, at) == Schedule::StoreAndAlarm {
                    prop_assert!(alarm.is_none_or(|a| at < a));
                    alarm = Some(at);
                }
                prop_assert_eq!(t.poll_timeout(), alarm);
            }
            let stored = Timers::from_rows(
                Timer::ALL.into_iter().filter_map(|k| t.due[k as usize].map(|v| (k, v))),
            );
            prop_assert_eq!(&stored, &t);
            let due = t.expired(now);
            for timer in Timer::ALL {
                let soonest = asks.iter().filter(|(k, _)| *k == timer).map(|(_, at)| *at).min();
                prop_assert_eq!(due.contains(&timer), soonest.is_some_and(|s| s <= now));
                prop_assert_eq!(t.due[timer as usize], soonest.filter(|&s| s > now));
            }
        }
    }
}
