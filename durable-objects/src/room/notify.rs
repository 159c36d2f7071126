//! The room's side of notifications: after a message or a recorded event,
//! the people it names get an inbox item (the bounded plan of
//! `tessera_core::notify::fanout`, checked against current membership), and
//! the room's outgoing webhooks that chose the event get a delivery queued.
//! Both run after the sender was answered (`wait_until`), so the send path
//! pays only for building the plan.
//!
//! Live unread counts go to the people watching the room (those with a `/me`
//! socket open register when it opens): exact when they start watching and
//! after each read of theirs, counted up in between by ticks that carry the
//! number of new messages by others, at most one tick per room per second
//! whatever the message rate, to at most [`WATCHERS_MAX`] watchers.

use super::RoomDO;
use crate::http::{json, HttpResult};
use crate::sql::select;
use serde::Deserialize;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use tessera_core::chat::StoredMessage;
use tessera_core::notify::fanout::{self, Delivery};
use tessera_core::notify::jobs::{message_id, Job};
use tessera_core::notify::webhooks::{payload, EventType, HOOKS_PER_ROOM_MAX};
use tessera_core::protocol::ServerFrame;
use worker::{Env, Request, Response, SqlStorageValue as V};

/// The room's outgoing webhooks and the events each chose (the Worker keeps
/// the list current; D1 has the rest of each hook).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, events TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS watchers (user_id TEXT PRIMARY KEY, until_ms INTEGER NOT NULL);
";

/// People told of a room's counts per tick.
pub const WATCHERS_MAX: u32 = 500;
/// At most one count tick per room in this time.
const TICK_MS: u64 = 1000;
/// A watcher not renewed in this time is dropped (a person's object that
/// went away without saying so).
const WATCH_LEASE_MS: u64 = 3600 * 1000;

thread_local! {
    /// Per room (objects of one isolate share it): the authors of the
    /// messages since the last tick, and whether a tick is scheduled.
    static TICKS: std::cell::RefCell<std::collections::HashMap<String, (Vec<String>, bool)>> =
        Default::default();
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Watch {
    user_id: String,
    on: bool,
}

/// What a person's object hears of a room's counts.
#[derive(serde::Serialize)]
struct Tick<'a> {
    room_id: &'a str,
    /// The exact count, or …
    #[serde(skip_serializing_if = "Option::is_none")]
    unread: Option<u64>,
    /// … how many more there are since the last tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hooks {
    hooks: Vec<Hook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hook {
    id: String,
    events: Vec<EventType>,
}

#[derive(Deserialize)]
struct HookRow {
    id: String,
    events: String,
}

/// What the room keeps in memory for notifications: its webhooks, read from
/// storage once per object lifetime and replaced when the Worker sets them,
/// so that a message does not read them (every message asks for its hooks).
#[derive(Default)]
pub struct NotifyState {
    hooks: RefCell<Option<Rc<[Hook]>>>,
}

impl RoomDO {
    /// `POST /webhooks`: the enabled hooks of the room, replacing the list.
    pub(crate) async fn set_webhooks(&self, req: &mut Request) -> HttpResult<Response> {
        let body: Hooks = tessera_core::api::parse_json(&req.bytes().await?, 64 * 1024)?;
        if body.hooks.len() > HOOKS_PER_ROOM_MAX {
            return Err(tessera_core::ApiError::invalid("too many hooks").into());
        }
        let sql = self.state.storage().sql();
        // Forgotten first: if a write below fails, the next message reads storage.
        self.notify.hooks.replace(None);
        sql.exec("DELETE FROM webhooks", None)?;
        for h in &body.hooks {
            sql.exec(
                "INSERT INTO webhooks (id, events) VALUES (?, ?)",
                vec![
                    V::from(h.id.as_str()),
                    V::from(serde_json::to_string(&h.events)?),
                ],
            )?;
        }
        let count = body.hooks.len();
        self.notify.hooks.replace(Some(body.hooks.into()));
        json(200, &serde_json::json!({ "hooks": count }))
    }

    /// `POST /watch`: a person's `/me` socket opened (`on`) or its last one
    /// closed; answers their unread count.
    pub(crate) async fn watch(&self, req: &mut Request) -> HttpResult<Response> {
        let body: Watch = tessera_core::api::parse_json(&req.bytes().await?, 4096)?;
        let sql = self.state.storage().sql();
        if body.on {
            sql.exec(
                "INSERT INTO watchers (user_id, until_ms) VALUES (?, ?)
                 ON CONFLICT (user_id) DO UPDATE SET until_ms = excluded.until_ms",
                vec![
                    V::from(body.user_id.as_str()),
                    V::from((crate::clock::now_ms() + WATCH_LEASE_MS) as f64),
                ],
            )?;
        } else {
            self.unwatch(&body.user_id);
        }
        let unread = self.unread_of(&body.user_id)?;
        json(200, &serde_json::json!({ "unread": unread }))
    }

    /// Unread messages of `user` in this room (as the rooms list counts them).
    fn unread_of(&self, user: &str) -> worker::Result<u64> {
        use tessera_core::chat::ChatStore;
        let store = self.store();
        let read = store.read_marker(user)?;
        Ok(store.unread(user, read)?.0)
    }

    pub(crate) fn unwatch(&self, user_id: &str) {
        let _ = self.state.storage().sql().exec(
            "DELETE FROM watchers WHERE user_id = ?",
            vec![V::from(user_id)],
        );
    }

    fn watchers(&self) -> Vec<String> {
        #[derive(Deserialize)]
        struct Row {
            user_id: String,
        }
        let sql = self.state.storage().sql();
        let now = crate::clock::now_ms() as f64;
        let _ = sql.exec(
            "DELETE FROM watchers WHERE until_ms < ?",
            vec![V::from(now)],
        );
        select::<Row>(
            &sql,
            "SELECT user_id FROM watchers ORDER BY user_id LIMIT ?",
            vec![V::from(f64::from(WATCHERS_MAX))],
        )
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.user_id)
        .collect()
    }

    /// After chat frames went out: a new message notifies whom it names and
    /// counts up the watchers; a read tells its reader the exact count.
    pub(crate) fn notify_frames(&self, frames: &[ServerFrame]) {
        match frames.first() {
            Some(ServerFrame::Message { message, .. }) => {
                self.notify_message(&message.message);
                self.count_up(&message.message.author);
            }
            Some(ServerFrame::Read { user_id, .. }) => self.tell_exact(user_id),
            _ => {}
        }
    }

    fn tell_exact(&self, user_id: &str) {
        let (Ok(room_id), Ok(unread)) = (self.room_id(), self.unread_of(user_id)) else {
            return;
        };
        if !self.watchers().iter().any(|w| w == user_id) {
            return;
        }
        let (env, user) = (self.env.clone(), user_id.to_string());
        self.state.wait_until(async move {
            let tick = Tick {
                room_id: &room_id,
                unread: Some(unread),
                added: None,
            };
            send_ticks(&env, vec![(user, tick_body(&tick))]).await;
        });
    }

    /// Counts a message for the next tick, scheduling one if none is.
    fn count_up(&self, author: &str) {
        let Ok(room_id) = self.room_id() else {
            return;
        };
        let schedule = TICKS.with(|t| {
            let mut t = t.borrow_mut();
            let entry = t.entry(room_id.clone()).or_default();
            entry.0.push(author.to_string());
            !std::mem::replace(&mut entry.1, true)
        });
        if !schedule {
            return;
        }
        let watchers = self.watchers();
        let env = self.env.clone();
        self.state.wait_until(async move {
            worker::Delay::from(std::time::Duration::from_millis(TICK_MS)).await;
            let authors = TICKS
                .with(|t| t.borrow_mut().remove(&room_id))
                .map(|e| e.0)
                .unwrap_or_default();
            let ticks = watchers
                .into_iter()
                .filter_map(|w| {
                    let added = authors.iter().filter(|a| **a != w).count() as u64;
                    (added > 0).then(|| {
                        let body = tick_body(&Tick {
                            room_id: &room_id,
                            unread: None,
                            added: Some(added),
                        });
                        (w, body)
                    })
                })
                .collect();
            send_ticks(&env, ticks).await;
        });
    }

    /// The hooks that chose `event`.
    fn hooks_for(&self, event: EventType) -> Vec<String> {
        let cached = self.notify.hooks.borrow().clone();
        let hooks = cached.unwrap_or_else(|| {
            let rows: Vec<HookRow> = select(
                &self.state.storage().sql(),
                "SELECT id, events FROM webhooks",
                None,
            )
            .unwrap_or_default();
            let hooks: Rc<[Hook]> = rows
                .into_iter()
                .map(|r| Hook {
                    events: serde_json::from_str(&r.events).unwrap_or_default(),
                    id: r.id,
                })
                .collect();
            self.notify.hooks.replace(Some(hooks.clone()));
            hooks
        });
        hooks
            .iter()
            .filter(|h| h.events.contains(&event))
            .map(|h| h.id.clone())
            .collect()
    }

    /// A new message: its mentions and the replied-to author, and the hooks
    /// that want `message.posted`.
    pub(crate) fn notify_message(&self, m: &StoredMessage) {
        let Ok(room_id) = self.room_id() else {
            return;
        };
        let replied = m
            .reply_to
            .and_then(|id| self.store_message(id))
            .map(|parent| parent.author);
        let deliveries = fanout::for_message(&room_id, m, replied.as_deref());
        self.queue_webhooks(
            &room_id,
            EventType::MessagePosted,
            &m.id.to_string(),
            || serde_json::json!({ "message": m }),
            m.created_at,
        );
        if deliveries.is_empty() {
            return;
        }
        let env = self.env.clone();
        self.state.wait_until(async move {
            if let Err(e) = deliver_to_members(&env, &room_id, deliveries).await {
                worker::console_error!("inbox fan-out failed: {}", e.0);
            }
        });
    }

    /// A recorded room event (see `RoomDO::record`): approvals, outcomes and
    /// finished jobs to whom they concern; webhooks that chose it.
    pub(crate) fn notify_event(&self, event: &str, seq: u64, data: &Value) {
        let Ok(room_id) = self.room_id() else {
            return;
        };
        let now = crate::clock::now_ms();
        if let Some(kind) = EventType::of_room_event(event) {
            self.queue_webhooks(&room_id, kind, &format!("e{seq}"), || data.clone(), now);
        }
        if !matches!(
            event,
            "approval_requested" | "approval_resolved" | "job_done"
        ) {
            return;
        }
        let (env, event, data) = (self.env.clone(), event.to_string(), data.clone());
        self.state.wait_until(async move {
            let result = async {
                let owners = if event == "approval_requested" {
                    owners(&env, &room_id).await?
                } else {
                    Vec::new()
                };
                let deliveries = fanout::for_event(&room_id, &event, &data, now, move || owners);
                deliver_to_members(&env, &room_id, deliveries).await
            }
            .await;
            if let Err(e) = result {
                worker::console_error!("inbox fan-out of {event} failed: {}", e.0);
            }
        });
    }

    /// A finished check-in: the hooks that chose `checkin.done` (one message
    /// id per day).
    pub(crate) fn notify_checkin(&self, day: &str, data: &Value) {
        if let Ok(room_id) = self.room_id() {
            let what = format!("checkin-{day}");
            self.queue_webhooks(
                &room_id,
                EventType::CheckinDone,
                &what,
                || data.clone(),
                crate::clock::now_ms(),
            );
        }
    }

    fn store_message(&self, id: u64) -> Option<StoredMessage> {
        use tessera_core::chat::ChatStore;
        self.store().message(id).ok().flatten()
    }

    /// One queued delivery per hook that chose the event; the same message id
    /// for every hook and attempt. `data` is built only if a hook wants it.
    fn queue_webhooks(
        &self,
        room_id: &str,
        event: EventType,
        what: &str,
        data: impl FnOnce() -> Value,
        at: u64,
    ) {
        let hooks = self.hooks_for(event);
        if hooks.is_empty() {
            return;
        }
        let body = payload(event, room_id, at, &data());
        let msg_id = message_id(room_id, what);
        let jobs: Vec<Job> = hooks
            .into_iter()
            .map(|hook_id| Job::Deliver {
                hook_id,
                room_id: room_id.to_string(),
                msg_id: msg_id.clone(),
                event,
                body: body.clone(),
                attempt: 1,
            })
            .collect();
        let env = self.env.clone();
        self.state.wait_until(async move {
            let sent = async {
                let queue = env.queue("NOTIFY")?;
                for job in &jobs {
                    queue.send(job).await?;
                }
                Ok::<_, worker::Error>(())
            }
            .await;
            if let Err(e) = sent {
                worker::console_error!("queueing webhook deliveries failed: {e}");
            }
        });
    }
}

fn tick_body(t: &Tick) -> Vec<u8> {
    serde_json::to_vec(t).unwrap_or_default()
}

/// Sends count ticks to people's objects in parallel (one with no socket
/// open any more stops watching the room itself).
async fn send_ticks(env: &Env, ticks: Vec<(String, Vec<u8>)>) {
    let calls = ticks.into_iter().map(|(user, body)| async move {
        let r = crate::person::call(env, &user, worker::Method::Post, "/counts", Some(body)).await;
        if let Err(e) = r {
            worker::console_error!("count tick to a person failed: {}", e.0);
        }
    });
    futures_util::future::join_all(calls).await;
}

/// The room's owners (who decide approvals), at most the fan-out bound.
async fn owners(env: &Env, room_id: &str) -> HttpResult<Vec<String>> {
    #[derive(Deserialize)]
    struct Row {
        user_id: String,
    }
    let rows: Vec<Row> = env
        .d1("DB")?
        .prepare("SELECT user_id FROM memberships WHERE room_id = ?1 AND role = 'owner' LIMIT ?2")
        .bind(&[
            crate::d1::arg(room_id),
            crate::d1::arg(fanout::FANOUT_MAX as u32),
        ])?
        .all()
        .await?
        .results()?;
    Ok(rows.into_iter().map(|r| r.user_id).collect())
}

/// Hands each delivery to its person's inbox, only for current members of
/// the room (a mention of someone who left notifies no one), in parallel.
pub async fn deliver_to_members(
    env: &Env,
    room_id: &str,
    deliveries: Vec<Delivery>,
) -> HttpResult<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Row {
        user_id: String,
    }
    let ids: Vec<&str> = deliveries.iter().map(|d| d.user_id.as_str()).collect();
    let members: Vec<Row> = env
        .d1("DB")?
        .prepare(
            "SELECT user_id FROM memberships
             WHERE room_id = ?1 AND user_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[
            crate::d1::arg(room_id),
            crate::d1::arg(serde_json::to_string(&ids)?.as_str()),
        ])?
        .all()
        .await?
        .results()?;
    let calls = deliveries
        .iter()
        .filter(|d| members.iter().any(|m| m.user_id == d.user_id))
        .map(|d| crate::person::deliver(env, &d.user_id, std::slice::from_ref(&d.item)));
    for result in futures_util::future::join_all(calls).await {
        if let Err(e) = result {
            worker::console_error!("an inbox refused an item: {}", e.0);
        }
    }
    Ok(())
}
