//! The room object's side of the AI teammate. It gives the Worker what the
//! AI reads (a digest of the period, the context of a question), carries out
//! what the AI produced as the single writer of the room — the check-in's
//! summary message and proposed actions (through the audited `attempt` path,
//! as the AI: protected actions become approval requests), replies, job
//! results — and records every model call in the audit log. A message that
//! mentions `@ai` is handed to the queue here, within a per-room rate.
//!
//! A check-in is kept per UTC day in the object's storage with its progress,
//! so a repeated or retried run adds nothing; members read it with the
//! approvals its proposals became (`GET /ai/checkin?day=`).

use super::workflows::{Actor, Attempt};
use super::RoomDO;
use crate::http::{json, HttpResult};
use crate::sql::{select_json, upsert_json};
use serde::Deserialize;
use serde_json::{json as j, Value};
use std::collections::BTreeMap;
use tessera_core::actions::{ActorKind, Approval, ApprovalStatus};
use tessera_core::ai::checkin::{CheckinRecord, Outcome, Refused, RoomPlan};
use tessera_core::ai::{
    ai_identity, message_body, CallRecord, DigestMessage, PendingApproval, RoomDigest, Task,
    AI_USER_ID, DIGEST_MESSAGES_MAX,
};
use tessera_core::chat::{ChatStore, StoredMessage};
use tessera_core::ratelimit::{Rate, TokenBucket};
use tessera_core::ApiError;
use worker::{Request, Response, SqlStorageValue as V};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ai_checkins (day TEXT PRIMARY KEY, record TEXT NOT NULL);
";

/// `@ai` answers per room per minute, unless `AI_REPLIES_PER_MIN` says otherwise.
pub const DEFAULT_REPLIES_PER_MIN: f64 = 5.0;

/// What the Worker asks a room to do with a check-in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckinRequest {
    day: String,
    /// None only for a day the room already holds (the stored one answers).
    plan: Option<RoomPlan>,
    provider: String,
    calls: Vec<CallRecord>,
    refused: Vec<Refused>,
}

/// Model calls to audit, and what they produced for the room: a message by
/// the AI and/or an event in the replayable stream.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordRequest {
    purpose: String,
    subject: Value,
    calls: Vec<CallRecord>,
    #[serde(default)]
    message: Option<AiMessage>,
    #[serde(default)]
    event: Option<RecordedEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AiMessage {
    key: String,
    body: String,
    reply_to: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedEvent {
    event: String,
    data: Value,
}

fn ai_actor() -> Actor {
    Actor {
        who: ai_identity(),
        kind: ActorKind::Ai,
    }
}

impl RoomDO {
    /// `GET /ai/digest?since_ms=&now_ms=&day=`: the period's messages, the
    /// activities, what waits for an owner, and whether `day` is done.
    pub(crate) fn digest(&self, query: &BTreeMap<String, String>) -> HttpResult<Response> {
        let num = |k: &str| {
            query
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let store = self.store();
        let (messages, message_count) = store.since(num("since_ms"), DIGEST_MESSAGES_MAX as u32)?;
        let pending_approvals = self
            .approvals()?
            .into_iter()
            .filter(|a| a.status == ApprovalStatus::Pending)
            .map(|a| PendingApproval {
                id: a.id,
                action: a.action,
                requested_by: a.requested_by,
            })
            .collect();
        let day = query.get("day").cloned().unwrap_or_default();
        let digest = RoomDigest {
            room_id: self.room_id()?,
            now_ms: num("now_ms"),
            since_ms: num("since_ms"),
            messages: self.digest_messages(&messages)?,
            message_count,
            activities: self.workflow_state()?.activities.into_values().collect(),
            pending_approvals,
            files: Vec::new(),
            checked_in: self.stored_checkin(&day)?.is_some_and(|r| r.finished),
        };
        json(200, &digest)
    }

    fn digest_messages(&self, messages: &[StoredMessage]) -> HttpResult<Vec<DigestMessage>> {
        let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
        let reactions = self.store().reactions_of(&ids)?;
        Ok(messages
            .iter()
            .map(|m| {
                let n = reactions
                    .get(&m.id)
                    .map_or(0, |r| r.values().map(Vec::len).sum::<usize>());
                DigestMessage::of(m, n as u32)
            })
            .collect())
    }

    /// `GET /ai/context?message=`: a question to the AI and the conversation
    /// before it (deleted messages are not part of it).
    pub(crate) fn question_context(
        &self,
        query: &BTreeMap<String, String>,
    ) -> HttpResult<Response> {
        let id: u64 = query
            .get("message")
            .and_then(|v| v.parse().ok())
            .ok_or(ApiError::NotFound("message"))?;
        let store = self.store();
        let question = store
            .message(id)?
            .filter(|m| !m.deleted)
            .ok_or(ApiError::NotFound("message"))?;
        let earlier = store.page(
            Some(id),
            None,
            tessera_core::ai::reply::CONTEXT_MESSAGES as u32,
            false,
        )?;
        json(
            200,
            &j!({
                "question": self.digest_messages(std::slice::from_ref(&question))?.pop(),
                "recent": self.digest_messages(&earlier)?,
            }),
        )
    }

    fn stored_checkin(&self, day: &str) -> HttpResult<Option<CheckinRecord>> {
        Ok(select_json(
            &self.state.storage().sql(),
            "SELECT record AS data FROM ai_checkins WHERE day = ?",
            Some(vec![V::from(day)]),
        )?
        .pop())
    }

    /// `GET /ai/checkin?day=`: the day's check-in as members read it, with
    /// the summary as its message says it now and each proposal's approval
    /// as it is now.
    pub(crate) fn checkin_view(&self, query: &BTreeMap<String, String>) -> HttpResult<Response> {
        let day = query.get("day").map(String::as_str).unwrap_or_default();
        let record = self
            .stored_checkin(day)?
            .ok_or(ApiError::NotFound("check-in"))?;
        let summary = match record.message_id {
            Some(id) => self
                .store()
                .message(id)?
                .filter(|m| !m.deleted)
                .map(|m| m.body),
            None => None,
        };
        let sql = self.state.storage().sql();
        let now = crate::clock::now_secs();
        let mut approvals = BTreeMap::new();
        for id in record.actions.iter().filter_map(Outcome::approval_id) {
            let found = select_json::<Approval>(
                &sql,
                "SELECT data FROM approvals WHERE id = ?",
                Some(vec![V::from(id)]),
            )?;
            for mut a in found {
                a.expire(now);
                approvals.insert(a.id.clone(), a);
            }
        }
        json(200, &record.view(summary, |id| approvals.get(id).cloned()))
    }

    fn save_checkin(&self, r: &CheckinRecord) -> HttpResult<()> {
        upsert_json(
            &self.state.storage().sql(),
            "INSERT INTO ai_checkins (day, record) VALUES (?, ?)
             ON CONFLICT (day) DO UPDATE SET record = excluded.record",
            &r.day,
            r,
        )
    }

    /// `POST /ai/checkin`: posts the summary as the AI and runs each proposed
    /// action as an AI attempt (safe ones run, protected ones wait for an
    /// owner, anything beyond the AI's rights is refused and audited). Kept
    /// per day with its progress: a repeat answers the stored check-in, a run
    /// cut short resumes after the last action done.
    pub(crate) async fn checkin(&self, req: &mut Request) -> HttpResult<Response> {
        let body: CheckinRequest = tessera_core::api::parse_json(&req.bytes().await?, 256 * 1024)?;
        let at = self.attempt_of(req)?;
        let stored = self.stored_checkin(&body.day)?;
        if let Some(r) = stored.as_ref().filter(|r| r.finished) {
            return json(200, &j!({ "checkin": r, "repeated": true }));
        }
        let plan = body
            .plan
            .ok_or_else(|| ApiError::Internal("a check-in to run needs a plan".into()))?;
        // A plan is carried out only in the room it was made for.
        let room_id = self.room_id()?;
        if plan.room_id != room_id {
            return Err(ApiError::Internal(format!(
                "the check-in plan of room {} reached room {room_id}",
                plan.room_id
            ))
            .into());
        }
        let mut record = match stored {
            Some(r) => r,
            None => {
                let record = CheckinRecord {
                    day: body.day.clone(),
                    provider: body.provider.clone(),
                    message_id: None,
                    planned: plan.actions,
                    actions: Vec::new(),
                    finished: false,
                };
                self.save_checkin(&record)?;
                let subject = j!({ "checkin": body.day });
                self.audit_calls("checkin", &subject, &body.calls, &at)?;
                for r in &body.refused {
                    let e =
                        ApiError::invalid(format!("the model's answer was refused: {}", r.reason));
                    let args = j!({ "answer_bytes": r.answer_bytes });
                    self.audit(
                        &ai_actor(),
                        "ai_answer_refused",
                        &args,
                        e.status(),
                        e.body(),
                        &at,
                    )?;
                }
                record
            }
        };
        let at = at
            .with("checkin", j!(record.day))
            .with("provider", j!(record.provider));
        if record.message_id.is_none() {
            let key = format!("checkin-{}", record.day);
            record.message_id = Some(self.post_as_ai(&key, &plan.summary, None)?);
            self.save_checkin(&record)?;
            let proposed: Vec<String> = record
                .planned
                .iter()
                .map(|p| format!("{}: {}", p.name, p.reason))
                .collect();
            self.search_put(tessera_core::search::index::Entry::checkin(
                &record.day,
                &plan.summary,
                &proposed,
                record.message_id,
                crate::clock::now_ms(),
            ))?;
        }
        let planned = record.planned.clone();
        for (i, p) in planned.iter().enumerate().skip(record.actions.len()) {
            let mut at = at.with("reason", j!(p.reason));
            at.idempotency_key = Some(format!("checkin-{}-{i}", record.day));
            let result = self.attempt(&ai_actor(), &p.name, &p.args, &at).await;
            let (status, outcome) = super::workflows::answer(&result);
            record.actions.push(Outcome {
                name: p.name.clone(),
                args: p.args.clone(),
                reason: p.reason.clone(),
                status,
                outcome,
            });
            self.save_checkin(&record)?;
            if let Ok(done) = result {
                self.react(done.events, &at).await;
            }
        }
        record.finished = true;
        self.save_checkin(&record)?;
        self.notify_checkin(&record.day, &j!({ "checkin": record }));
        self.flush_audit().await;
        json(201, &j!({ "checkin": record, "repeated": false }))
    }

    /// `POST /ai/record`: audits model calls and posts what they produced.
    pub(crate) async fn ai_record(&self, req: &mut Request) -> HttpResult<Response> {
        let body: RecordRequest = tessera_core::api::parse_json(&req.bytes().await?, 64 * 1024)?;
        let at = self.attempt_of(req)?;
        self.audit_calls(&body.purpose, &body.subject, &body.calls, &at)?;
        let mut message_id = None;
        if let Some(m) = body.message {
            message_id = Some(self.post_as_ai(&m.key, &m.body, m.reply_to)?);
        }
        if let Some(e) = body.event {
            self.record(&e.event, e.data)?;
        }
        self.flush_audit().await;
        json(200, &j!({ "message_id": message_id }))
    }

    /// Posts `body` as the AI (cut to fit a message), once per `key`.
    fn post_as_ai(&self, key: &str, body: &str, reply_to: Option<u64>) -> HttpResult<u64> {
        Ok(self
            .post_text(&ai_identity(), key, message_body(body), reply_to)?
            .0)
    }

    /// One audit entry per model call: provider, tokens, cost, outcome.
    fn audit_calls(
        &self,
        purpose: &str,
        subject: &Value,
        calls: &[CallRecord],
        at: &Attempt,
    ) -> HttpResult<()> {
        for c in calls {
            let status = if c.outcome == "ok" { 200 } else { 502 };
            let args = j!({ "purpose": purpose, "subject": subject, "provider": c.provider, "model": c.model });
            self.audit(&ai_actor(), "ai_call", &args, status, j!(c), at)?;
        }
        Ok(())
    }

    /// A new message that mentions `@ai` (not by the AI itself) is queued for
    /// an answer, at most `AI_REPLIES_PER_MIN` per room per minute.
    pub(crate) async fn ask_ai_if_mentioned(&self, m: &StoredMessage) -> Result<(), ApiError> {
        if m.author == AI_USER_ID || !m.mentions.iter().any(|id| id == AI_USER_ID) {
            return Ok(());
        }
        let now = crate::clock::now_ms();
        let rate = self.ai_rate;
        let allowed = self
            .ai_bucket
            .borrow_mut()
            .get_or_insert_with(|| TokenBucket::full(rate, now))
            .try_take(rate, now);
        if let Err(wait_ms) = allowed {
            return Err(ApiError::RateLimited {
                retry_after_secs: wait_ms.div_ceil(1000),
            });
        }
        let task = Task::Reply {
            room_id: self.room_id().map_err(|f| f.0)?,
            message_id: m.id,
        };
        let queue = self
            .env
            .queue("JOBS")
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        queue
            .send(task)
            .await
            .map_err(|e| ApiError::Internal(format!("queueing an @ai reply: {e}")))
    }
}

/// The `@ai` rate of a room.
pub(crate) fn replies_rate(per_min: f64) -> Rate {
    Rate {
        capacity: per_min,
        per_sec: per_min / 60.0,
    }
}
