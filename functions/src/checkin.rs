//! The daily check-in. The cron (`0 2 * * *`) picks the rooms active since
//! their last check-in and fans them out through the queue in tasks of at
//! most 20 rooms, so no invocation does unbounded work. A task takes its
//! rooms one by one: it reads the room's digest, asks the chain with that
//! room's material alone (an answer that is refused is asked for once more,
//! then the built-in check-in stands in), and hands the room its plan: the
//! room object posts the summary, runs the safe actions and turns protected
//! ones into approval requests, once per room per UTC day.
//! `POST /api/v1/rooms/{id}/checkin` lets an owner run it now.

use crate::ai::{account, ask_checked, chain, require_budget, room_call};
use crate::ctx::{arg, now_ms, now_secs, Ctx};
use crate::tokens::authenticate;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_core::ai::checkin::{parse, prompt, Refused, RoomPlan, ROOMS_PER_TASK};
use tessera_core::ai::providers::{ProviderConfig, ProviderKind};
use tessera_core::ai::{builtin, CallRecord, DigestFile, Prompt, RoomDigest, Task};
use tessera_core::dates::day_of;
use tessera_core::files::FileStatus;
use tessera_core::rooms::Role;
use tessera_core::ApiError;
use tessera_durable_objects::http::{json as respond, HttpResult};
use worker::{Env, Method, Request, Response};

/// Rooms read per query when the cron looks for active ones.
const SCAN_PAGE: u32 = 500;
/// Without an earlier check-in, a check-in covers the last day.
const FIRST_PERIOD_MS: u64 = 24 * 3600 * 1000;
/// The context a prompt is fitted to when only the built-in provider answers.
const BUILTIN_CONTEXT_TOKENS: u32 = 32_000;

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
            .chunks(ROOMS_PER_TASK)
            .map(|c| Task::Checkin {
                day: day.clone(),
                room_ids: c.iter().map(|r| r.id.clone()).collect(),
            })
            .collect();
        queued += rooms.len();
        queue.send_batch(tasks).await?;
    }
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
            "SELECT id, name, size, sha256, created_at FROM files WHERE room_id = ?1 AND status = ?2
             ORDER BY created_at DESC LIMIT 100",
        )
        .bind(&[arg(room_id), arg(FileStatus::Ready.as_str())])?
        .all()
        .await?
        .results::<DigestFile>()?;
    Ok(digest)
}

/// Runs the day's check-in of `room_ids`, room by room. With `strict`, a
/// room over its budget fails the call (an owner asked); otherwise it is
/// skipped until the next day. Returns each room's check-in as its object
/// keeps it.
pub async fn run(
    env: &Env,
    day: &str,
    room_ids: &[String],
    strict: bool,
    request_id: &str,
) -> HttpResult<Vec<Value>> {
    let chain = chain(env)?;
    let context = chain
        .iter()
        .find(|p| p.kind != ProviderKind::Builtin)
        .map_or(BUILTIN_CONTEXT_TOKENS, |p| p.context_tokens);
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
        let prompt = prompt(&digest, context);
        match require_budget(env, id, None, prompt.tokens_needed()).await {
            Ok(()) => {}
            Err(e) if strict => return Err(e),
            Err(e) => {
                worker::console_log!("check-in of room {id} skipped: {}", e.0);
                continue;
            }
        }
        let (plan, provider, calls, refused) = plan_for(env, &chain, &digest, &prompt).await;
        account(env, id, None, &calls).await?;
        let body = json!({ "day": day, "plan": plan, "provider": provider, "calls": calls, "refused": refused });
        results.push(carry_out(env, id, day, &body, request_id).await?);
    }
    Ok(results)
}

/// The plan of one room: the chain's answer to the room's own prompt (asked
/// once more when refused), or the built-in check-in. Returns the plan, who
/// made it, every call and every refusal.
async fn plan_for(
    env: &Env,
    chain: &[ProviderConfig],
    digest: &RoomDigest,
    prompt: &Prompt,
) -> (RoomPlan, String, Vec<CallRecord>, Vec<Refused>) {
    let mut calls = Vec::new();
    let mut refused = Vec::new();
    let check = |text: &str| {
        parse(text, &digest.room_id).map_err(|r| {
            let why = r.reason.clone();
            refused.push(r);
            why
        })
    };
    if let Some(plan) = ask_checked(env, chain, prompt, check, &mut calls).await {
        // The answer that passed is the last one a provider gave.
        let provider = calls
            .iter()
            .rev()
            .find(|c| c.answered())
            .map_or_else(String::new, |c| c.provider.clone());
        return (plan, provider, calls, refused);
    }
    let plan = builtin::checkin(digest);
    calls.push(CallRecord::builtin(&prompt.user, &plan.summary));
    (plan, "builtin".into(), calls, refused)
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

/// `GET /api/v1/rooms/{id}/checkin?date=YYYY-MM-DD` (any member; today,
/// UTC, by default): the day's check-in as the room keeps it, with its
/// proposals' approvals (see the object's `/ai/checkin`); 404 for a day
/// without one.
pub async fn read(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    crate::access::role_in(ctx, room_id, &user_id).await?;
    let day = crate::ctx::query_day(&req)?;
    tessera_durable_objects::room_client::call(
        &ctx.env,
        room_id,
        Method::Get,
        &format!("/ai/checkin?day={day}"),
        worker::Headers::new(),
        None,
    )
    .await
}

/// `POST /api/v1/rooms/{id}/checkin` (owners): today's check-in now, or the
/// one the room already has today.
pub async fn run_now(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    if crate::access::role_in(ctx, room_id, &user_id).await? != Role::Owner {
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
