//! The room's side of notifications: after a message or a recorded event,
//! the people it names get an inbox item (the bounded plan of
//! `tessera_core::notify::fanout`, checked against current membership), and
//! the room's outgoing webhooks that chose the event get a delivery queued.
//! Both run after the sender was answered (`wait_until`), so the send path
//! pays only for building the plan.

use crate::http::{json, HttpResult};
use crate::room::RoomDO;
use crate::store::select;
use serde::Deserialize;
use serde_json::Value;
use tessera_core::chat::StoredMessage;
use tessera_core::notify::fanout::{self, Delivery};
use tessera_core::notify::jobs::{message_id, Job};
use tessera_core::notify::webhooks::{payload, EventType, HOOKS_PER_ROOM_MAX};
use worker::{Env, Request, Response, SqlStorageValue as V};

/// The room's outgoing webhooks and the events each chose (the Worker keeps
/// the list current; D1 has the rest of each hook).
pub const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, events TEXT NOT NULL);";

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

impl RoomDO {
    /// `POST /webhooks`: the enabled hooks of the room, replacing the list.
    pub(crate) async fn set_webhooks(&self, req: &mut Request) -> HttpResult<Response> {
        let body: Hooks = tessera_core::api::parse_json(&req.bytes().await?, 64 * 1024)?;
        if body.hooks.len() > HOOKS_PER_ROOM_MAX {
            return Err(tessera_core::ApiError::invalid("too many hooks").into());
        }
        let sql = self.state.storage().sql();
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
        json(200, &serde_json::json!({ "hooks": body.hooks.len() }))
    }

    /// The hooks that chose `event`.
    fn hooks_for(&self, event: EventType) -> Vec<String> {
        let rows: Vec<HookRow> = select(
            &self.state.storage().sql(),
            "SELECT id, events FROM webhooks",
            None,
        )
        .unwrap_or_default();
        rows.into_iter()
            .filter(|r| {
                serde_json::from_str::<Vec<EventType>>(&r.events).is_ok_and(|e| e.contains(&event))
            })
            .map(|r| r.id)
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
        let data = serde_json::json!({ "message": m });
        self.queue_webhooks(
            &room_id,
            EventType::MessagePosted,
            &m.id.to_string(),
            &data,
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
            self.queue_webhooks(&room_id, kind, &format!("e{seq}"), data, now);
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

    fn store_message(&self, id: u64) -> Option<StoredMessage> {
        use tessera_core::chat::ChatStore;
        self.store().message(id).ok().flatten()
    }

    /// One queued delivery per hook that chose the event; the same message id
    /// for every hook and attempt.
    fn queue_webhooks(&self, room_id: &str, event: EventType, what: &str, data: &Value, at: u64) {
        let hooks = self.hooks_for(event);
        if hooks.is_empty() {
            return;
        }
        let body = payload(event, room_id, at, data);
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
