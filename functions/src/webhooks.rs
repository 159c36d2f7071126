//! A room's integrations: outgoing webhooks (admins choose events; each
//! delivery is signed as Standard Webhooks says, queued, retried with backoff
//! for a day, logged, and the hook disabled with a notice to the admins after
//! repeated failure) and incoming webhooks (a secret URL that posts into the
//! room as a named bot). The rules are in `tessera_core::notify`.

use crate::ctx::{arg, now_ms, now_secs, read_json, Ctx};
use crate::tokens::authenticate;
use serde::{Deserialize, Serialize};
use tessera_core::hmac::constant_time_eq;
use tessera_core::notify::apikeys::hash as sha256_hex;
use tessera_core::notify::fanout::Delivery;
use tessera_core::notify::inbox::{Kind, NewItem};
use tessera_core::notify::incoming;
use tessera_core::notify::jobs::{message_id, Job};
use tessera_core::notify::webhooks::{
    self, validate_description, validate_events, validate_url, CreateHook, EventType, Next,
    RetryPolicy, UpdateHook, HOOKS_PER_ROOM_MAX, LOG_BODY_MAX, ROTATION_OVERLAP_SECS,
};
use tessera_core::protocol::Identity;
use tessera_core::rooms::{require, Permission, Role};
use tessera_core::ApiError;
use tessera_durable_objects::config::allow_private_urls;
use tessera_durable_objects::http::{json, no_content, request, HttpResult};
use tessera_durable_objects::{members, room_client};
use worker::{Env, Fetch, Headers, Method, Request, Response};

/// Delivery log rows kept per hook (older ones are dropped as new ones come).
const LOG_KEEP: u32 = 200;

/// The caller, who must administer the room (404 for non-members).
async fn admin(ctx: &Ctx, req: &Request, room_id: &str) -> HttpResult<String> {
    let user_id = authenticate(ctx, req).await?;
    let role = members::role(&ctx.db()?, room_id, &user_id)
        .await?
        .ok_or(ApiError::NotFound("room"))?;
    require(role, Permission::UpdateRoom)?;
    Ok(user_id)
}

#[derive(Deserialize, Serialize)]
struct HookRow {
    id: String,
    room_id: String,
    url: String,
    events: String,
    description: String,
    secret: String,
    previous_secret: Option<String>,
    previous_until: Option<u64>,
    enabled: u32,
    disabled_reason: Option<String>,
    failures_in_row: u32,
    created_by: String,
    created_at: u64,
    updated_at: u64,
}

impl HookRow {
    /// The hook as admins see it (the secret only when it was just made).
    fn view(&self, with_secret: bool) -> serde_json::Value {
        let events: Vec<EventType> = serde_json::from_str(&self.events).unwrap_or_default();
        let mut v = serde_json::json!({
            "id": self.id,
            "room_id": self.room_id,
            "url": self.url,
            "events": events,
            "description": self.description,
            "enabled": self.enabled != 0,
            "disabled_reason": self.disabled_reason,
            "failures_in_row": self.failures_in_row,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        });
        if with_secret {
            v["secret"] = self.secret.clone().into();
        }
        v
    }

    /// The secrets that sign now: the current one, and the previous one
    /// while a rotation overlaps.
    fn signing_secrets(&self, now: u64) -> Vec<&str> {
        let mut s = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_until) {
            if until > now {
                s.push(prev);
            }
        }
        s
    }
}

const HOOK_COLUMNS: &str = "id, room_id, url, events, description, secret, previous_secret, previous_until, enabled, disabled_reason, failures_in_row, created_by, created_at, updated_at";

async fn load_hook(env: &Env, room_id: Option<&str>, id: &str) -> HttpResult<Option<HookRow>> {
    Ok(env
        .d1("DB")?
        .prepare(format!(
            "SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND (?2 IS NULL OR room_id = ?2)"
        ))
        .bind(&[arg(id), arg(room_id)])?
        .first(None)
        .await?)
}

/// Tells the room which enabled hooks chose which events.
async fn sync_room(env: &Env, room_id: &str) -> HttpResult<()> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        events: String,
    }
    let rows: Vec<Row> = env
        .d1("DB")?
        .prepare("SELECT id, events FROM webhooks WHERE room_id = ?1 AND enabled = 1")
        .bind(&[arg(room_id)])?
        .all()
        .await?
        .results()?;
    let hooks: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let events: Vec<EventType> = serde_json::from_str(&r.events).unwrap_or_default();
            serde_json::json!({ "id": r.id, "events": events })
        })
        .collect();
    room_client::tell(
        env,
        room_id,
        "/webhooks",
        &serde_json::json!({ "hooks": hooks }),
    )
    .await
}

fn new_secret() -> HttpResult<String> {
    Ok(webhooks::secret_from_bytes(&crate::crypto::random_bytes::<
        32,
    >()?))
}

/// Deletes one of a room's integrations; 404 when there is none.
async fn delete_one(
    ctx: &Ctx,
    sql: &str,
    id: &str,
    room_id: &str,
    what: &'static str,
) -> HttpResult<()> {
    let result = ctx
        .db()?
        .prepare(sql)
        .bind(&[arg(id), arg(room_id)])?
        .run()
        .await?;
    if crate::ctx::changes(&result)? == 0 {
        return Err(ApiError::NotFound(what).into());
    }
    Ok(())
}

/// Refuses one more integration of a room past `max` (`sql` counts them as `n`).
async fn refuse_past(
    ctx: &Ctx,
    sql: &str,
    room_id: &str,
    max: usize,
    what: &str,
) -> HttpResult<()> {
    let count: Option<u32> = ctx
        .db()?
        .prepare(sql)
        .bind(&[arg(room_id)])?
        .first(Some("n"))
        .await?;
    if count.unwrap_or(0) as usize >= max {
        return Err(ApiError::Conflict {
            code: tessera_core::error::code::TOO_MANY_WEBHOOKS,
            message: format!("a room has at most {max} {what}"),
        }
        .into());
    }
    Ok(())
}

/// `GET /api/v1/rooms/{room_id}/webhooks`.
pub async fn list(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    admin(ctx, &req, room_id).await?;
    let rows: Vec<HookRow> = ctx
        .db()?
        .prepare(format!(
            "SELECT {HOOK_COLUMNS} FROM webhooks WHERE room_id = ?1 ORDER BY created_at, id"
        ))
        .bind(&[arg(room_id)])?
        .all()
        .await?
        .results()?;
    let hooks: Vec<_> = rows.iter().map(|h| h.view(false)).collect();
    json(200, &serde_json::json!({ "webhooks": hooks }))
}

/// `POST /api/v1/rooms/{room_id}/webhooks`: the secret is shown once.
pub async fn create(ctx: &Ctx, mut req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = admin(ctx, &req, room_id).await?;
    let body: CreateHook = read_json(&mut req).await?;
    validate_url(&body.url, allow_private_urls(&ctx.env))?;
    validate_description(&body.description)?;
    let events = validate_events(&body.events)?;
    let db = ctx.db()?;
    let sql = "SELECT COUNT(*) AS n FROM webhooks WHERE room_id = ?1";
    refuse_past(ctx, sql, room_id, HOOKS_PER_ROOM_MAX, "webhooks").await?;
    let now = now_secs();
    let hook = HookRow {
        id: crate::crypto::new_id()?,
        room_id: room_id.to_string(),
        url: body.url,
        events: serde_json::to_string(&events)?,
        description: body.description,
        secret: new_secret()?,
        previous_secret: None,
        previous_until: None,
        enabled: 1,
        disabled_reason: None,
        failures_in_row: 0,
        created_by: user_id,
        created_at: now,
        updated_at: now,
    };
    db.prepare(
        "INSERT INTO webhooks (id, room_id, url, events, description, secret, enabled, failures_in_row, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 0, ?7, ?8, ?8)",
    )
    .bind(&[
        arg(&hook.id),
        arg(&hook.room_id),
        arg(&hook.url),
        arg(&hook.events),
        arg(&hook.description),
        arg(&hook.secret),
        arg(&hook.created_by),
        arg(now),
    ])?
    .run()
    .await?;
    sync_room(&ctx.env, room_id).await?;
    json(201, &hook.view(true))
}

/// `PATCH /api/v1/rooms/{room_id}/webhooks/{hook_id}`.
pub async fn update(ctx: &Ctx, mut req: Request, room_id: &str, id: &str) -> HttpResult<Response> {
    admin(ctx, &req, room_id).await?;
    let body: UpdateHook = read_json(&mut req).await?;
    let mut hook = load_hook(&ctx.env, Some(room_id), id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    if let Some(url) = body.url {
        validate_url(&url, allow_private_urls(&ctx.env))?;
        hook.url = url;
    }
    if let Some(events) = body.events {
        hook.events = serde_json::to_string(&validate_events(&events)?)?;
    }
    if let Some(d) = body.description {
        validate_description(&d)?;
        hook.description = d;
    }
    if let Some(enabled) = body.enabled {
        hook.enabled = u32::from(enabled);
        if enabled {
            hook.disabled_reason = None;
            hook.failures_in_row = 0;
        } else {
            hook.disabled_reason = Some("disabled by an admin".into());
        }
    }
    let now = now_secs();
    if body.rotate_secret {
        hook.previous_secret = Some(std::mem::replace(&mut hook.secret, new_secret()?));
        hook.previous_until = Some(now + ROTATION_OVERLAP_SECS);
    }
    ctx.db()?
        .prepare(
            "UPDATE webhooks SET url = ?2, events = ?3, description = ?4, enabled = ?5, disabled_reason = ?6,
               failures_in_row = ?7, secret = ?8, previous_secret = ?9, previous_until = ?10, updated_at = ?11
             WHERE id = ?1",
        )
        .bind(&[
            arg(&hook.id),
            arg(&hook.url),
            arg(&hook.events),
            arg(&hook.description),
            arg(hook.enabled),
            arg(hook.disabled_reason.as_ref()),
            arg(hook.failures_in_row),
            arg(&hook.secret),
            arg(hook.previous_secret.as_ref()),
            arg(hook.previous_until),
            arg(now),
        ])?
        .run()
        .await?;
    hook.updated_at = now;
    sync_room(&ctx.env, room_id).await?;
    json(200, &hook.view(body.rotate_secret))
}

/// `DELETE /api/v1/rooms/{room_id}/webhooks/{hook_id}`.
pub async fn delete(ctx: &Ctx, req: Request, room_id: &str, id: &str) -> HttpResult<Response> {
    admin(ctx, &req, room_id).await?;
    delete_one(
        ctx,
        "DELETE FROM webhooks WHERE id = ?1 AND room_id = ?2",
        id,
        room_id,
        "webhook",
    )
    .await?;
    sync_room(&ctx.env, room_id).await?;
    no_content()
}

/// `POST /api/v1/rooms/{room_id}/webhooks/{hook_id}/test`: a `webhook.test`
/// delivery through the queue like any other (it shows in the log).
pub async fn test(ctx: &Ctx, req: Request, room_id: &str, id: &str) -> HttpResult<Response> {
    let user_id = admin(ctx, &req, room_id).await?;
    load_hook(&ctx.env, Some(room_id), id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let now = now_ms();
    let data = serde_json::json!({ "requested_by": user_id });
    let msg_id = message_id(room_id, &format!("test{now}"));
    let job = Job::Deliver {
        hook_id: id.to_string(),
        room_id: room_id.to_string(),
        msg_id: msg_id.clone(),
        event: EventType::Test,
        body: webhooks::payload(EventType::Test, room_id, now, &data),
        attempt: 1,
    };
    ctx.env.queue("NOTIFY")?.send(&job).await?;
    json(202, &serde_json::json!({ "msg_id": msg_id }))
}

/// `GET /api/v1/rooms/{room_id}/webhooks/{hook_id}/deliveries`: newest first.
pub async fn deliveries(ctx: &Ctx, req: Request, room_id: &str, id: &str) -> HttpResult<Response> {
    admin(ctx, &req, room_id).await?;
    load_hook(&ctx.env, Some(room_id), id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    #[derive(Deserialize, Serialize)]
    struct Row {
        id: u64,
        msg_id: String,
        event: String,
        attempt: u32,
        status: Option<u32>,
        ok: u32,
        error: Option<String>,
        response: Option<String>,
        duration_ms: u64,
        at: u64,
    }
    let rows: Vec<Row> = ctx
        .db()?
        .prepare(
            "SELECT id, msg_id, event, attempt, status, ok, error, response, duration_ms, at
             FROM webhook_deliveries WHERE hook_id = ?1 ORDER BY id DESC LIMIT 100",
        )
        .bind(&[arg(id)])?
        .all()
        .await?
        .results()?;
    let list: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "msg_id": r.msg_id, "event": r.event, "attempt": r.attempt,
                "status": r.status, "ok": r.ok != 0, "error": r.error, "response": r.response,
                "duration_ms": r.duration_ms, "at": r.at,
            })
        })
        .collect();
    json(200, &serde_json::json!({ "deliveries": list }))
}

/// The delivery task: one attempt, logged; on failure the next attempt is
/// queued after its delay, or the hook is disabled and its admins told.
pub async fn deliver(env: &Env, job: &Job) -> HttpResult<()> {
    let Job::Deliver {
        hook_id,
        room_id,
        msg_id,
        event,
        body,
        attempt,
    } = job
    else {
        return Ok(());
    };
    let Some(hook) = load_hook(env, Some(room_id), hook_id).await? else {
        return Ok(());
    };
    if hook.enabled == 0 {
        return Ok(());
    }
    let now = now_secs();
    let headers = webhooks::headers(&hook.signing_secrets(now), msg_id, now, body)?;
    let h = Headers::new();
    for (k, v) in &headers {
        h.set(k, v)?;
    }
    h.set("user-agent", "Tessera-Webhooks/1")?;
    let body = body.as_str().into();
    let started = now_ms();
    let (status, response, error) = match request(&hook.url, Method::Post, &h, Some(&body)) {
        Ok(r) => match Fetch::Request(r).send().await {
            Ok(mut resp) => {
                let text = resp.text().await.unwrap_or_default();
                (
                    Some(resp.status_code()),
                    Some(text.chars().take(LOG_BODY_MAX).collect::<String>()),
                    None,
                )
            }
            Err(e) => (None, None, Some(e.to_string())),
        },
        Err(e) => (None, None, Some(e.to_string())),
    };
    let ok = status.is_some_and(webhooks::succeeded);
    let db = env.d1("DB")?;
    db.batch(vec![
        db.prepare(
            "INSERT INTO webhook_deliveries (hook_id, msg_id, event, attempt, status, ok, error, response, duration_ms, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(&[
            arg(hook_id),
            arg(msg_id),
            arg(event.as_str()),
            arg(*attempt),
            arg(status.map(u32::from)),
            arg(u32::from(ok)),
            arg(error.as_ref()),
            arg(response.as_ref()),
            arg(now_ms().saturating_sub(started)),
            arg(now),
        ])?,
        db.prepare(
            "DELETE FROM webhook_deliveries WHERE hook_id = ?1 AND id <= (
               SELECT id FROM webhook_deliveries WHERE hook_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(&[arg(hook_id), arg(LOG_KEEP)])?,
    ])
    .await?;
    if ok {
        db.prepare("UPDATE webhooks SET failures_in_row = 0 WHERE id = ?1")
            .bind(&[arg(hook_id)])?
            .run()
            .await?;
        return Ok(());
    }
    let failures: Option<u32> = db
        .prepare("UPDATE webhooks SET failures_in_row = failures_in_row + 1 WHERE id = ?1 RETURNING failures_in_row")
        .bind(&[arg(hook_id)])?
        .first(Some("failures_in_row"))
        .await?;
    let policy = RetryPolicy::parse(crate::ctx::env_var(env, "WEBHOOK_RETRY_SECS").as_deref());
    match policy.after_failure(*attempt, failures.unwrap_or(1)) {
        Next::RetryIn(delay) => {
            let mut next = job.clone();
            if let Job::Deliver { attempt, .. } = &mut next {
                *attempt += 1;
            }
            env.queue("NOTIFY")?
                .send(
                    worker::MessageBuilder::new(next)
                        .delay_seconds(delay)
                        .build(),
                )
                .await?;
        }
        Next::GiveUp => {}
        Next::Disable => disable(env, &hook, status).await?,
    }
    Ok(())
}

/// Turns a failing hook off and tells the room's admins.
async fn disable(env: &Env, hook: &HookRow, last_status: Option<u16>) -> HttpResult<()> {
    let reason = match last_status {
        Some(s) => format!("disabled after repeated failures (last answer {s})"),
        None => "disabled after repeated failures (no answer)".to_string(),
    };
    let db = env.d1("DB")?;
    db.prepare(
        "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
    )
    .bind(&[arg(&hook.id), arg(reason.as_str()), arg(now_secs())])?
    .run()
    .await?;
    sync_room(env, &hook.room_id).await?;
    #[derive(Deserialize)]
    struct Admin {
        user_id: String,
    }
    let admins: Vec<Admin> = db
        .prepare(
            "SELECT user_id FROM memberships WHERE room_id = ?1 AND role IN ('owner', 'admin') LIMIT ?2",
        )
        .bind(&[arg(&hook.room_id), arg(tessera_core::notify::fanout::FANOUT_MAX as u32)])?
        .all()
        .await?
        .results()?;
    let item = NewItem {
        kind: Kind::WebhookDisabled,
        room_id: hook.room_id.clone(),
        subject: hook.id.clone(),
        actor: None,
        actor_name: None,
        text: format!(
            "{}: {reason}",
            hook.url.chars().take(200).collect::<String>()
        ),
        at: now_ms(),
    };
    let deliveries = admins
        .into_iter()
        .map(|a| Delivery {
            user_id: a.user_id,
            item: item.clone(),
        })
        .collect();
    tessera_durable_objects::room::notify::deliver_to_members(env, &hook.room_id, deliveries).await
}

#[derive(Deserialize)]
struct IncomingRow {
    id: String,
    room_id: String,
    name: String,
    secret_hash: String,
    created_by: String,
    created_at: u64,
    last_used_at: Option<u64>,
}

impl IncomingRow {
    fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "room_id": self.room_id, "name": self.name,
            "created_by": self.created_by, "created_at": self.created_at, "last_used_at": self.last_used_at,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIncoming {
    name: String,
}

/// `GET /api/v1/rooms/{room_id}/incoming-webhooks` (revoked ones are gone).
pub async fn list_incoming(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    admin(ctx, &req, room_id).await?;
    let rows: Vec<IncomingRow> = ctx
        .db()?
        .prepare(
            "SELECT id, room_id, name, secret_hash, created_by, created_at, last_used_at
             FROM incoming_hooks WHERE room_id = ?1 ORDER BY created_at, id",
        )
        .bind(&[arg(room_id)])?
        .all()
        .await?
        .results()?;
    let hooks: Vec<_> = rows.iter().map(IncomingRow::view).collect();
    json(200, &serde_json::json!({ "incoming_webhooks": hooks }))
}

/// `POST /api/v1/rooms/{room_id}/incoming-webhooks`: the URL is shown once
/// (only a hash of its secret is kept).
pub async fn create_incoming(ctx: &Ctx, mut req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = admin(ctx, &req, room_id).await?;
    let body: CreateIncoming = read_json(&mut req).await?;
    incoming::validate_name(&body.name)?;
    let db = ctx.db()?;
    let sql = "SELECT COUNT(*) AS n FROM incoming_hooks WHERE room_id = ?1";
    refuse_past(
        ctx,
        sql,
        room_id,
        incoming::HOOKS_PER_ROOM_MAX,
        "incoming webhooks",
    )
    .await?;
    let id = crate::crypto::new_id()?;
    let secret = crate::crypto::new_secret()?;
    let now = now_secs();
    let row = IncomingRow {
        id: id.clone(),
        room_id: room_id.to_string(),
        name: body.name.trim().to_string(),
        secret_hash: sha256_hex(&secret),
        created_by: user_id,
        created_at: now,
        last_used_at: None,
    };
    db.prepare(
        "INSERT INTO incoming_hooks (id, room_id, name, secret_hash, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&[arg(&row.id), arg(room_id), arg(&row.name), arg(&row.secret_hash), arg(&row.created_by), arg(now)])?
    .run()
    .await?;
    let mut view = row.view();
    view["path"] = format!("/api/v1/hooks/{}", incoming::token(&id, &secret)).into();
    json(201, &view)
}

/// `DELETE /api/v1/rooms/{room_id}/incoming-webhooks/{hook_id}`: the URL
/// stops working at once.
pub async fn delete_incoming(
    ctx: &Ctx,
    req: Request,
    room_id: &str,
    id: &str,
) -> HttpResult<Response> {
    admin(ctx, &req, room_id).await?;
    let sql = "DELETE FROM incoming_hooks WHERE id = ?1 AND room_id = ?2";
    delete_one(ctx, sql, id, room_id, "incoming webhook").await?;
    no_content()
}

/// Messages per minute per incoming hook (the `HOOK_LIMITER` binding's period).
const HOOK_LIMIT_PERIOD_SECS: u64 = 60;

/// `POST /api/v1/hooks/{token}`: Slack-compatible; answers `ok` as Slack does.
pub async fn post_incoming(ctx: &Ctx, mut req: Request, token: &str) -> HttpResult<Response> {
    let not_found = || ApiError::NotFound("webhook");
    let (id, secret) = incoming::split_token(token).ok_or_else(not_found)?;
    let row: IncomingRow = ctx
        .db()?
        .prepare(
            "SELECT id, room_id, name, secret_hash, created_by, created_at, last_used_at
             FROM incoming_hooks WHERE id = ?1",
        )
        .bind(&[arg(id)])?
        .first(None)
        .await?
        .ok_or_else(not_found)?;
    if !constant_time_eq(sha256_hex(secret).as_bytes(), row.secret_hash.as_bytes()) {
        return Err(not_found().into());
    }
    ctx.limit("HOOK_LIMITER", row.id.clone(), HOOK_LIMIT_PERIOD_SECS)
        .await?;
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let limit = crate::ctx::env_var(&ctx.env, "CHAT_BODY_LIMIT")
        .and_then(|v| v.parse().ok())
        .unwrap_or(8192);
    let raw = crate::ctx::read_body_as(&mut req, "", 64 * 1024).await?;
    let msg = incoming::parse(&content_type, &raw, limit)?;
    let who = Identity {
        user_id: incoming::bot_user_id(&row.id),
        display_name: incoming::display_name(&row.name, msg.username.as_deref()),
        role: Role::Member,
    };
    let headers = Headers::new();
    headers.set("x-tessera-identity", &who.to_header())?;
    headers.set("x-request-id", &ctx.request_id)?;
    let key = match req.headers().get("idempotency-key")? {
        Some(k) if tessera_core::ids::is_valid_path_param(&k) => k,
        _ => crate::crypto::new_id()?,
    };
    headers.set("idempotency-key", &key)?;
    let body = serde_json::to_vec(&serde_json::json!({ "body": msg.text }))?;
    let resp = room_client::call(
        &ctx.env,
        &row.room_id,
        Method::Post,
        "/messages",
        headers,
        Some(body),
    )
    .await?;
    if resp.status_code() >= 300 {
        return Ok(resp);
    }
    ctx.db()?
        .prepare("UPDATE incoming_hooks SET last_used_at = ?2 WHERE id = ?1")
        .bind(&[arg(&row.id), arg(now_secs())])?
        .run()
        .await?;
    Ok(Response::ok("ok")?)
}
