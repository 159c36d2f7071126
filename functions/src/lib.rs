//! The Worker entry point: routing, the cross-cutting concerns every request gets
//! (request id, CORS, rate limits, one JSON log line) and the daily `scheduled`
//! housekeeping. Handlers live in one module per concept and stay thin: the rules
//! are in `tessera-core`.

mod access;
mod accounts;
mod ai;
mod apikeys;
mod checkin;
mod crypto;
mod ctx;
mod files;
mod jobs;
mod notify;
mod oidc;
mod room_object;
mod rooms;
mod search;
mod sessions;
mod tokens;
mod users;
mod vectorize;
mod webhooks;
mod workflows;

use ctx::{arg, now_secs, Ctx};
use tessera_core::ai::Task;
use tessera_core::api::{allowed_methods, route, Endpoint, Route};
use tessera_core::ApiError;
use tessera_durable_objects::http::{error_response, json, HttpResult};
use worker::{
    event, Context, Env, Headers, MessageBatch, MessageExt, Method, Request, Response,
    ScheduleContext, ScheduledEvent,
};

/// Requests per client IP per minute on the API (the binding's period).
const API_LIMIT_PERIOD_SECS: u64 = 60;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = js_sys::Date::now();
    let method = req.method();
    // `Method` reads any method it does not know as GET: routing and the log
    // go by the method the request names (found by schema fuzzing: QUERY
    // was answered as a GET).
    let named = req.inner().method();
    let path = req.path();
    let origin = req.headers().get("origin").ok().flatten();
    let request_id = req
        .headers()
        .get("x-request-id")
        .ok()
        .flatten()
        .filter(|id| tessera_core::ids::is_valid_path_param(id))
        .map_or_else(crypto::new_id, Ok)
        .unwrap_or_else(|_| "unknown".into());
    let ip = req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .unwrap_or_else(|| "unknown".into());
    let ctx = Ctx::new(env, request_id, ip);
    let resp = match serve(&ctx, req, &named, &path).await {
        Ok(resp) => resp,
        Err(failure) => error_response(&failure.0),
    };
    let resp = decorate(&ctx, resp, &method, &path, origin.as_deref());
    log(&ctx, &named, &path, resp.status_code(), started);
    Ok(resp)
}

async fn serve(ctx: &Ctx, req: Request, method: &str, path: &str) -> HttpResult<Response> {
    if method == "OPTIONS" {
        return Ok(Response::empty()?.with_status(204));
    }
    if !path.starts_with("/api/") {
        return Err(ApiError::NoRoute.into());
    }
    let route = route(method, path)?;
    ctx.routed(&route);
    if route.endpoint.counts_against_api_limit() {
        ctx.limit("API_LIMITER", ctx.ip.clone(), API_LIMIT_PERIOD_SECS)
            .await?;
    }
    dispatch(ctx, req, route).await
}

/// `GET /api/v1/openapi.json`: the document from the app's assets, where
/// `scripts/build-web.mjs` writes it (minified) from `core/openapi.json`, so
/// that the Worker's bundle does not carry it (about 20 KB gzipped).
async fn openapi(ctx: &Ctx) -> HttpResult<Response> {
    let resp = ctx
        .env
        .assets("ASSETS")?
        .fetch_request(tessera_durable_objects::http::request(
            "https://assets.local/openapi.json",
            Method::Get,
            &Headers::new(),
            None,
        )?)
        .await?;
    if resp.status_code() != 200 {
        return Err(ApiError::Unavailable(
            "the OpenAPI document is not among the assets: run scripts/build-web.mjs".into(),
        )
        .into());
    }
    Ok(resp)
}

async fn dispatch(ctx: &Ctx, req: Request, route: Route) -> HttpResult<Response> {
    let (a, b) = (route.param(0), route.param(1));
    match route.endpoint {
        Endpoint::Health => health(ctx).await,
        Endpoint::OpenApi => openapi(ctx).await,
        Endpoint::Register => accounts::register(ctx, req).await,
        Endpoint::Login => accounts::login(ctx, req).await,
        Endpoint::Refresh => accounts::refresh(ctx, req).await,
        Endpoint::Logout => accounts::logout(ctx, req).await,
        Endpoint::AuthConfig => accounts::config(ctx).await,
        Endpoint::OidcSignIn => accounts::oidc_sign_in(ctx, req).await,
        Endpoint::GetMe => accounts::me(ctx, req).await,
        Endpoint::UpdateMe => accounts::update_me(ctx, req).await,
        Endpoint::SearchUsers => users::search(ctx, req).await,
        Endpoint::ListRooms => rooms::list(ctx, req).await,
        Endpoint::CreateRoom => rooms::create(ctx, req).await,
        Endpoint::GetRoom => rooms::get(ctx, req, a).await,
        Endpoint::UpdateRoom => rooms::update(ctx, req, a).await,
        Endpoint::DeleteRoom => rooms::delete(ctx, req, a).await,
        Endpoint::ListMembers => rooms::members(ctx, req, a).await,
        Endpoint::AddMember => rooms::add_member(ctx, req, a).await,
        Endpoint::UpdateMember => rooms::update_member(ctx, req, a, b).await,
        Endpoint::RemoveMember => rooms::remove_member(ctx, req, a, b).await,
        Endpoint::CreateInvite => rooms::create_invite(ctx, req, a).await,
        Endpoint::ListInvites => rooms::list_invites(ctx, req, a).await,
        Endpoint::RevokeInvite => rooms::revoke_invite(ctx, req, a).await,
        Endpoint::AcceptInvite => rooms::accept_invite(ctx, req, a).await,
        Endpoint::RoomSocket => room_object::socket(ctx, req, a).await,
        Endpoint::ListMessages => room_object::list_messages(ctx, req, a).await,
        Endpoint::PostMessage => room_object::post_message(ctx, req, a).await,
        Endpoint::GetMessage => room_object::get_message(ctx, req, a, b).await,
        Endpoint::ListDocs | Endpoint::CreateDoc => room_object::docs(ctx, req, a, &[]).await,
        Endpoint::GetDoc | Endpoint::DeleteDoc => room_object::docs(ctx, req, a, &[b]).await,
        Endpoint::PostDocUpdate => room_object::docs(ctx, req, a, &[b, "updates"]).await,
        Endpoint::CreateDocVersion | Endpoint::ListDocVersions => {
            room_object::docs(ctx, req, a, &[b, "versions"]).await
        }
        Endpoint::GetDocVersion | Endpoint::DeleteDocVersion => {
            room_object::docs(ctx, req, a, &[b, "versions", route.param(2)]).await
        }
        Endpoint::RestoreDocVersion => {
            room_object::docs(ctx, req, a, &[b, "versions", route.param(2), "restore"]).await
        }
        Endpoint::CreateUpload => files::create(ctx, req).await,
        Endpoint::UploadStatus => files::status(ctx, req, a).await,
        Endpoint::PatchUpload => files::patch(ctx, req, a).await,
        Endpoint::TerminateUpload => files::terminate(ctx, req, a).await,
        Endpoint::ListFiles => files::list(ctx, req, a).await,
        Endpoint::GetFile => files::get(ctx, req, a).await,
        Endpoint::FileContent | Endpoint::FileContentHead => files::content(ctx, req, a).await,
        Endpoint::DeleteFile => files::delete(ctx, req, a).await,
        Endpoint::CreateFileLink => files::link(ctx, req, a).await,
        Endpoint::ListActions => workflows::list(ctx, req, a).await,
        Endpoint::GetState
        | Endpoint::RunAction
        | Endpoint::ListRules
        | Endpoint::CreateRule
        | Endpoint::UpdateRule
        | Endpoint::DeleteRule
        | Endpoint::DryRunRule
        | Endpoint::ListApprovals
        | Endpoint::ApproveApproval
        | Endpoint::RejectApproval => workflows::forward(ctx, req, route.endpoint, a).await,
        Endpoint::ListAudit => workflows::audit(ctx, req, a).await,
        Endpoint::ExportAudit => workflows::export(ctx, req, a).await,
        Endpoint::AnalyzeFile => jobs::analyze(ctx, req, a).await,
        Endpoint::AnalyzeBatch => jobs::batch(ctx, req).await,
        Endpoint::GetJob => jobs::get(ctx, req, a).await,
        Endpoint::RunCheckin => checkin::run_now(ctx, req, a).await,
        Endpoint::MeSocket => notify::socket(ctx, req).await,
        Endpoint::ListInbox => notify::forward(ctx, req, "/inbox").await,
        Endpoint::ReadInbox => notify::forward(ctx, req, "/read").await,
        Endpoint::GetPreferences | Endpoint::UpdatePreferences => {
            notify::forward(ctx, req, "/prefs").await
        }
        Endpoint::GetPush => notify::push_config(ctx, req).await,
        Endpoint::CreatePushSubscription => notify::forward(ctx, req, "/push").await,
        Endpoint::DeletePushSubscription => notify::forward(ctx, req, &format!("/push/{a}")).await,
        Endpoint::ListApiKeys => apikeys::list(ctx, req).await,
        Endpoint::CreateApiKey => apikeys::create(ctx, req).await,
        Endpoint::DeleteApiKey => apikeys::revoke(ctx, req, a).await,
        Endpoint::UnsubscribePage => notify::unsubscribe_page(ctx, a).await,
        Endpoint::Unsubscribe => notify::unsubscribe(ctx, req, a).await,
        Endpoint::ListWebhooks => webhooks::list(ctx, req, a).await,
        Endpoint::CreateWebhook => webhooks::create(ctx, req, a).await,
        Endpoint::UpdateWebhook => webhooks::update(ctx, req, a, b).await,
        Endpoint::DeleteWebhook => webhooks::delete(ctx, req, a, b).await,
        Endpoint::TestWebhook => webhooks::test(ctx, req, a, b).await,
        Endpoint::ListWebhookDeliveries => webhooks::deliveries(ctx, req, a, b).await,
        Endpoint::ListIncomingWebhooks => webhooks::list_incoming(ctx, req, a).await,
        Endpoint::CreateIncomingWebhook => webhooks::create_incoming(ctx, req, a).await,
        Endpoint::DeleteIncomingWebhook => webhooks::delete_incoming(ctx, req, a, b).await,
        Endpoint::PostIncomingWebhook => webhooks::post_incoming(ctx, req, a).await,
        Endpoint::GetCheckin => checkin::read(ctx, req, a).await,
        Endpoint::GetAiUsage => ai::usage(ctx, req, a).await,
        Endpoint::ListApprovalInbox => workflows::inbox(ctx, req).await,
        Endpoint::Search => search::search(ctx, req).await,
    }
}

/// D1 and R2 reachability; 503 when either is down.
async fn health(ctx: &Ctx) -> HttpResult<Response> {
    let d1 = match ctx
        .db()?
        .prepare("SELECT 1 AS ok")
        .first::<u32>(Some("ok"))
        .await
    {
        Ok(Some(1)) => "ok".to_string(),
        Ok(_) => "unexpected answer".to_string(),
        Err(e) => e.to_string(),
    };
    let r2 = match ctx.env.bucket("FILES")?.head("health-check").await {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let healthy = d1 == "ok" && r2 == "ok";
    json(
        if healthy { 200 } else { 503 },
        &serde_json::json!({ "status": if healthy { "ok" } else { "degraded" }, "d1": d1, "r2": r2 }),
    )
}

/// Headers every response carries: request id, CORS for configured origins, and
/// no caching of API answers unless the handler said otherwise.
fn decorate(
    ctx: &Ctx,
    resp: Response,
    method: &Method,
    path: &str,
    origin: Option<&str>,
) -> Response {
    // Answers passed through from an object have immutable headers: decorate a copy.
    let headers = resp.headers().clone();
    // Constant, well-formed header names and values: `set` cannot fail on them.
    let _ = headers.set("x-request-id", &ctx.request_id);
    // RFC 9110: a 405 names the methods the path does answer to.
    if resp.status_code() == 405 {
        let _ = headers.set("allow", &allowed_methods(path).join(", "));
    }
    if path.starts_with("/api/v1/uploads") {
        files::tus_headers(ctx, &headers, method);
    }
    if path.starts_with("/api/") && !headers.has("cache-control").unwrap_or(false) {
        let _ = headers.set("cache-control", "no-store");
    }
    let configured = ctx.var("CORS_ORIGINS").unwrap_or_default();
    if let Some(origin) = origin.filter(|o| tessera_core::api::cors_allows(&configured, o)) {
        let methods = allowed_methods(path).join(", ");
        for (name, value) in [
            ("access-control-allow-origin", origin),
            ("vary", "Origin"),
            ("access-control-allow-methods", &methods),
            (
                "access-control-allow-headers",
                "authorization, content-type, idempotency-key, if-match, if-none-match, range, x-request-id, x-tessera-session, \
                 tus-resumable, upload-length, upload-metadata, upload-offset, upload-checksum, \
                 upload-defer-length, upload-concat",
            ),
            (
                "access-control-expose-headers",
                "x-request-id, retry-after, etag, content-range, content-disposition, location, x-next-cursor, \
                 tus-resumable, tus-version, tus-extension, tus-max-size, tus-checksum-algorithm, \
                 upload-offset, upload-length, upload-metadata, upload-expires",
            ),
            ("access-control-max-age", "600"),
        ] {
            let _ = headers.set(name, value);
        }
    }
    resp.with_headers(headers)
}

fn log(ctx: &Ctx, method: &str, path: &str, status: u16, started: f64) {
    let line = serde_json::json!({
        "method": method,
        "path": path,
        "status": status,
        "ms": (js_sys::Date::now() - started).round(),
        "user": *ctx.user.borrow(),
        "request_id": ctx.request_id,
    });
    worker::console_log!("{line}");
}

/// Daily (cron `0 2 * * *`): housekeeping — drop refresh tokens, invites,
/// expired uploads and sign-in failures that can never matter again, the
/// inbox's copies of long-settled approval requests, finish erasing deleted
/// rooms — and the AI check-in of the
/// rooms active since their last one (queued, see `checkin`).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let result = async {
        let db = env.d1("DB")?;
        let now = now_secs();
        db.batch(vec![
            db.prepare("DELETE FROM refresh_tokens WHERE expires_at < ?1 OR revoked_at < ?1")
                .bind(&[arg(now.saturating_sub(24 * 3600))])?,
            db.prepare("DELETE FROM invites WHERE expires_at < ?1 OR uses >= max_uses")
                .bind(&[arg(now)])?,
            // Expired uploads answer 410 for a week (their objects say so), then go.
            db.prepare("DELETE FROM files WHERE status = ?2 AND expires_at < ?1")
                .bind(&[
                    arg(now.saturating_sub(7 * 24 * 3600)),
                    arg(tessera_core::files::FileStatus::Expired.as_str()),
                ])?,
            // The inbox lists settled requests for 30 days (each room keeps its own).
            db.prepare("DELETE FROM approvals WHERE settled_at < ?1")
                .bind(&[arg(now.saturating_sub(
                    tessera_core::approval_inbox::RESOLVED_WINDOW_SECS,
                ))])?,
            db.prepare("DELETE FROM sign_in_failures WHERE window_start < ?1")
                .bind(&[arg(
                    now.saturating_sub(tessera_core::auth::SIGN_IN_WINDOW_SECS)
                )])?,
        ])
        .await
    }
    .await;
    if let Err(e) = result {
        worker::console_error!("scheduled housekeeping failed: {e}");
    }
    match rooms::finish_purges(&env).await {
        Ok(0) => {}
        Ok(n) => worker::console_log!("finished purging {n} deleted rooms"),
        Err(e) => worker::console_error!("purging deleted rooms failed: {}", e.0),
    }
    match checkin::schedule(&env).await {
        Ok(n) => worker::console_log!("check-in queued for {n} rooms"),
        Err(e) => worker::console_error!("scheduling the check-in failed: {}", e.0),
    }
}

/// The AI queue: file analysis, `@ai` answers, check-in batches. A task that
/// fails is retried by the queue (`max_retries`); each is safe to repeat.
#[event(queue)]
async fn queue(batch: MessageBatch<Task>, env: Env, _ctx: Context) -> worker::Result<()> {
    if batch.queue() == tessera_core::notify::jobs::QUEUE {
        return notify_queue(&batch, &env).await;
    }
    for message in batch.iter() {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                worker::console_error!("unreadable queue message: {e}");
                continue;
            }
        };
        let result = match message.body() {
            Task::Analyze { job_id } => jobs::process(&env, job_id).await,
            Task::Reply {
                room_id,
                message_id,
            } => ai::answer_mention(&env, room_id, *message_id).await,
            Task::Index { room_id } => search::upkeep(&env, room_id).await,
            Task::Checkin { day, room_ids } => {
                let request_id = format!("checkin-{day}");
                checkin::run(&env, day, room_ids, false, &request_id)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => message.ack(),
            Err(e) => {
                worker::console_error!("queue task {:?} failed, retrying: {}", message.body(), e.0);
                message.retry();
            }
        }
    }
    Ok(())
}

/// The notification queue: webhook delivery attempts (each schedules its
/// own retry) and emails (retried by the queue until sent).
async fn notify_queue(batch: &MessageBatch<Task>, env: &Env) -> worker::Result<()> {
    use tessera_core::notify::jobs::Job;
    for message in batch.raw_iter() {
        let job: Job = match js_sys::JSON::stringify(&message.body())
            .ok()
            .and_then(|s| s.as_string())
            .and_then(|s| serde_json::from_str(&s).ok())
        {
            Some(j) => j,
            None => {
                worker::console_error!("a notification message is not a job; dropped");
                message.ack();
                continue;
            }
        };
        let result = match &job {
            Job::Deliver { .. } => webhooks::deliver(env, &job).await,
            Job::Email { user_id, item, .. } => notify::send_item_email(env, user_id, item).await,
            Job::Digest {
                user_id,
                day,
                rooms,
            } => notify::send_digest(env, user_id, day, rooms).await,
        };
        match result {
            Ok(()) => message.ack(),
            Err(e) => {
                worker::console_error!("notification job failed, retrying: {}", e.0);
                message.retry();
            }
        }
    }
    Ok(())
}
