//! The daily check-in. The cron (`0 2 * * *`) picks the rooms active since
//! their last check-in and fans them out through the queue in batches of at
//! most 20, so no invocation does unbounded work. A batch reads each room's
//! digest, asks the chain once for all of them (a room whose answer is
//! refused is asked once more, then gets the built-in check-in), and hands
//! each room its plan: the room object posts the summary, runs the safe
//! actions and turns protected ones into approval requests, once per room per
//! UTC day. `POST /api/v1/rooms/{id}/checkin` lets an owner run it now.

use crate::ai::{account, ask, chain, require_budget, room_call};
use crate::ctx::{arg, now_ms, now_secs, Ctx};
use crate::tokens::authenticate;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tessera_core::ai::checkin::{
    batches, parse, prompt, room_block, room_tokens, Refused, RoomPlan, ROOMS_PER_BATCH,
};
use tessera_core::ai::providers::{ProviderConfig, ProviderKind};
use tessera_core::ai::{builtin, mark_invalid, CallRecord, DigestFile, RoomDigest, Task};
use tessera_core::dates::day_of;
use tessera_core::rooms::Role;
use tessera_core::ApiError;
use tessera_durable_objects::http::{json as respond, HttpResult};
use worker::{Env, Method, Request, Response};

/// Rooms read per query when the cron looks for active ones.
const SCAN_PAGE: u32 = 500;
/// Without an earlier check-in, a check-in covers the last day.
const FIRST_PERIOD_MS: u64 = 24 * 3600 * 1000;

/// The cron's part: queue today's check-ins of the rooms active since their
/// last one. Returns how many rooms were queued.
pub async fn schedule(env: &Env) -> HttpResult<usize> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let day = day_of(now_secs());
    let db = env.d1("DB")?;
    let queue = env.queue("JOBS")?;
    let mut cursor = String::new();
    let mut queued = 0;
    loop {
        let rooms: Vec<Id> = db
            .prepare(
                "SELECT r.id FROM rooms r
                 WHERE r.last_activity_at IS NOT NULL AND r.id > ?1
                   AND NOT EXISTS (SELECT 1 FROM ai_checkins c WHERE c.room_id = r.id
                                   AND (c.day = ?2 OR c.finished_at >= r.last_activity_at))
                 ORDER BY r.id LIMIT ?3",
            )
            .bind(&[arg(&cursor), arg(&day), arg(SCAN_PAGE)])?
            .all()
            .await?
            .results()?;
        let Some(last) = rooms.last() else {
            return Ok(queued);
        };
        cursor = last.id.clone();
        let tasks: Vec<Task> = rooms
            .chunks(ROOMS_PER_BATCH)
            .map(|c| Task::Checkin {
                day: day.clone(),
                room_ids: c.iter().map(|r| r.id.clone()).collect(),
            })
            .collect();
        queued += rooms.len();
        queue.send_batch(tasks).await?;
    }
}

/// One room's part of a batch.
struct Room {
    digest: RoomDigest,
    /// Its part of the prompt, and the tokens that takes (`room_tokens`).
    block: String,
    tokens: u64,
    plan: Option<(RoomPlan, String)>,
    calls: Vec<CallRecord>,
    refused: Vec<Refused>,
}

async fn digest(env: &Env, room_id: &str, day: &str, request_id: &str) -> HttpResult<RoomDigest> {
    let db = env.d1("DB")?;
    let last: Option<u64> = db
        .prepare("SELECT MAX(finished_at) AS last FROM ai_checkins WHERE room_id = ?1")
        .bind(&[arg(room_id)])?
        .first(Some("last"))
        .await?;
    let now = now_ms();
    let since = last.map_or(now.saturating_sub(FIRST_PERIOD_MS), |s| s * 1000);
    let mut digest: RoomDigest = room_call(
        env,
        room_id,
        Method::Get,
        &format!("/ai/digest?since_ms={since}&now_ms={now}&day={day}"),
        None,
        request_id,
    )
    .await?;
    digest.files = db
        .prepare(
            "SELECT id, name, size, sha256, created_at FROM files WHERE room_id = ?1 AND status = 'ready'
             ORDER BY created_at DESC LIMIT 100",
        )
        .bind(&[arg(room_id)])?
        .all()
        .await?
        .results::<DigestFile>()?;
    Ok(digest)
}

/// Runs the day's check-in of `room_ids`. With `strict`, a room over its
/// budget fails the call (an owner asked); otherwise it is skipped until the
/// next day. Returns each room's check-in as its object keeps it.
pub async fn run(
    env: &Env,
    day: &str,
    room_ids: &[String],
    strict: bool,
    request_id: &str,
) -> HttpResult<Vec<Value>> {
    let mut rooms = Vec::new();
    let mut results = Vec::new();
    for id in room_ids {
        let digest = digest(env, id, day, request_id).await?;
        if digest.checked_in {
            // The room answers the check-in it keeps; nothing is asked or counted.
            let body =
                json!({ "day": day, "plan": null, "provider": "", "calls": [], "refused": [] });
            results.push(carry_out(env, id, day, &body, request_id).await?);
            continue;
        }
        let block = room_block(&digest);
        let tokens = room_tokens(&block);
        match require_budget(env, id, tokens).await {
            Ok(()) => rooms.push(Room {
                digest,
                block,
                tokens,
                plan: None,
                calls: Vec::new(),
                refused: Vec::new(),
            }),
            Err(e) if strict => return Err(e),
            Err(e) => worker::console_log!("check-in of room {id} skipped: {}", e.0),
        }
    }
    let chain = chain(env)?;
    if let Some(model) = chain.iter().find(|p| p.kind != ProviderKind::Builtin) {
        let sizes: Vec<u64> = rooms.iter().map(|r| r.tokens).collect();
        for range in batches(&sizes, model.context_tokens) {
            ask_for(env, &chain, &mut rooms[range]).await;
        }
    }
    for mut room in rooms {
        let (plan, provider) = room.plan.take().unwrap_or_else(|| {
            let plan = builtin::checkin(&room.digest);
            room.calls
                .push(CallRecord::builtin(&room.block, &plan.summary));
            (plan, "builtin".into())
        });
        let id = room.digest.room_id.as_str();
        account(env, id, &room.calls).await?;
        let body = json!({ "day": day, "plan": plan, "provider": provider, "calls": room.calls, "refused": room.refused });
        results.push(carry_out(env, id, day, &body, request_id).await?);
    }
    Ok(results)
}

/// Hands a room its check-in (see the object's `/ai/checkin`) and notes the
/// day in D1, where the cron looks.
async fn carry_out(
    env: &Env,
    id: &str,
    day: &str,
    body: &Value,
    request_id: &str,
) -> HttpResult<Value> {
    let stored: Value =
        room_call(env, id, Method::Post, "/ai/checkin", Some(body), request_id).await?;
    env.d1("DB")?
        .prepare(
            "INSERT INTO ai_checkins (room_id, day, finished_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (room_id, day) DO NOTHING",
        )
        .bind(&[arg(id), arg(day), arg(now_secs())])?
        .run()
        .await?;
    Ok(stored)
}

/// Asks the chain for the plans of a batch of rooms: once, and once more for
/// the rooms whose answer was refused. Rooms left without a plan get the
/// built-in check-in.
async fn ask_for(env: &Env, chain: &[ProviderConfig], rooms: &mut [Room]) {
    for _ in 0..2 {
        let pending: Vec<usize> = (0..rooms.len())
            .filter(|&i| rooms[i].plan.is_none())
            .collect();
        if pending.is_empty() {
            return;
        }
        let digests: Vec<RoomDigest> = pending.iter().map(|&i| rooms[i].digest.clone()).collect();
        let (answer, calls) = ask(env, chain, &prompt(&digests)).await;
        for &i in &pending {
            rooms[i]
                .calls
                .extend(calls.iter().map(|c| c.share(pending.len())));
        }
        let Some((completion, provider)) = answer else {
            return;
        };
        let ids: Vec<&str> = digests.iter().map(|d| d.room_id.as_str()).collect();
        let mut answers: BTreeMap<String, Result<RoomPlan, Refused>> =
            parse(&completion.text, &ids);
        for &i in &pending {
            let room = &mut rooms[i];
            match answers.remove(&room.digest.room_id) {
                Some(Ok(plan)) => room.plan = Some((plan, provider.name.clone())),
                Some(Err(refused)) => {
                    mark_invalid(&mut room.calls, &refused.reason);
                    room.refused.push(refused);
                }
                None => {}
            }
        }
    }
}

/// `POST /api/v1/rooms/{id}/checkin` (owners): today's check-in now, or the
/// one the room already has today.
pub async fn run_now(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    if crate::rooms::role_in(ctx, room_id, &user_id).await? != Role::Owner {
        return Err(ApiError::forbidden("only an owner can run the check-in").into());
    }
    let day = day_of(now_secs());
    let mut results = run(
        &ctx.env,
        &day,
        &[room_id.to_string()],
        true,
        &ctx.request_id,
    )
    .await?;
    let result = results
        .pop()
        .ok_or_else(|| ApiError::Internal("the check-in gave no result".into()))?;
    let status = if result["repeated"] == json!(true) {
        200
    } else {
        201
    };
    respond(status, &result)
}
