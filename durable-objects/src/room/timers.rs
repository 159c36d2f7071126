//! The room's side of `tessera_core::room::timers`: each timer's deadline is
//! a row (read once per object lifetime), the platform alarm is set when core
//! says so, and the alarm runs what is due, then rings again for the next.

use super::RoomDO;
use crate::clock::{alarm_at, now_ms};
use crate::sql::int;
use std::time::Duration;
use tessera_core::room::timers::{Schedule, Timer, Timers};
use worker::SqlStorageValue as V;

pub const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS timers (timer TEXT PRIMARY KEY, due INTEGER NOT NULL);";

impl RoomDO {
    fn with_timers<R>(&self, f: impl FnOnce(&mut Timers) -> R) -> worker::Result<R> {
        let mut cached = self.timers.borrow_mut();
        let timers = match &mut *cached {
            Some(timers) => timers,
            None => {
                // Read raw (names and integers), not through serde: the rows
                // are two columns and the bundle is over budget.
                let rows = self
                    .state
                    .storage()
                    .sql()
                    .exec("SELECT timer, due FROM timers", None)?
                    .raw()
                    .map(|row| match row?.as_slice() {
                        [V::String(name), V::Integer(due)] => {
                            Ok(Timer::parse(name).map(|timer| (timer, (*due).max(0) as u64)))
                        }
                        _ => Err(worker::Error::RustError("a malformed timer row".into())),
                    })
                    .collect::<worker::Result<Vec<_>>>()?;
                cached.insert(Timers::from_rows(rows.into_iter().flatten()))
            }
        };
        Ok(f(timers))
    }

    /// Asks for `timer` within `after` from now (sooner if it is already set
    /// sooner). A failure to store it is logged: the work it stands for is
    /// retried by the next request that needs it.
    pub(crate) async fn schedule(&self, timer: Timer, after: Duration) {
        let at = now_ms() + after.as_millis() as u64;
        let stored = async {
            let schedule = self.with_timers(|t| t.set(timer, at))?;
            if schedule != Schedule::Unchanged {
                self.state.storage().sql().exec(
                    "INSERT INTO timers (timer, due) VALUES (?, ?)
                     ON CONFLICT (timer) DO UPDATE SET due = excluded.due",
                    vec![V::from(timer.as_str()), int(at)],
                )?;
            }
            if schedule == Schedule::StoreAndAlarm {
                self.state.storage().set_alarm(alarm_at(at)).await?;
            }
            Ok::<(), worker::Error>(())
        };
        if let Err(e) = stored.await {
            worker::console_error!("setting the {} timer failed: {e}", timer.as_str());
        }
    }

    /// The timers due now, whose rows are gone (work that fails asks again).
    pub(crate) fn expired_timers(&self) -> worker::Result<Vec<Timer>> {
        let due = self.with_timers(|t| t.expired(now_ms()))?;
        for timer in &due {
            self.state.storage().sql().exec(
                "DELETE FROM timers WHERE timer = ?",
                vec![V::from(timer.as_str())],
            )?;
        }
        Ok(due)
    }

    /// After the alarm's work: it rings again when the next timer is due.
    pub(crate) async fn alarm_for_next(&self) -> worker::Result<()> {
        if let Some(at) = self.with_timers(|t| t.poll_timeout())? {
            self.state.storage().set_alarm(alarm_at(at)).await?;
        }
        Ok(())
    }

    /// The room's storage was erased: no timer is set.
    pub(crate) fn forget_timers(&self) {
        *self.timers.borrow_mut() = Some(Timers::default());
    }
}
