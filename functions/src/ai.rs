//! The Worker's adapters for the AI teammate: it sends the provider requests
//! that `tessera_core::ai::providers` builds (HTTP with a timeout, or the
//! Workers AI binding), walks the fallback chain with retries and backoff,
//! keeps each provider's circuit breaker and each room's daily token usage in
//! D1, and talks to room objects as the AI. Also the `@ai` answer task.

use crate::ctx::Ctx;
use crate::ctx::{arg, env_var, now_secs};
use crate::tokens::authenticate;
use futures_util::future::{select, Either};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tessera_core::ai::providers::{
    backoff_ms, http_call, parse_chain, parse_http_reply, parse_workers_ai, workers_ai_input,
    Breaker, Completion, HttpCall, ProviderConfig, ProviderError, ProviderKind,
    ATTEMPTS_PER_PROVIDER,
};
use tessera_core::ai::{
    ai_identity, builtin, check_budget, check_member_budget, mark_invalid, reply, CallRecord,
    DigestMessage, Prompt, ProviderUsage, UsageReport,
};
use tessera_core::dates::day_of;
use tessera_core::rooms::Role;
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, HttpResult};
use tessera_durable_objects::room_client;
use worker::{
    AbortController, D1Database, D1PreparedStatement, Delay, Env, Fetch, Headers, Method, Request,
    Response,
};

/// Tokens a room may use per UTC day, unless `AI_ROOM_DAILY_TOKENS` says otherwise.
const DEFAULT_DAILY_TOKENS: u64 = 200_000;
/// Tokens one member's requests may use per room per UTC day, unless
/// `AI_MEMBER_DAILY_TOKENS` says otherwise: a quarter of the room's default.
const DEFAULT_MEMBER_DAILY_TOKENS: u64 = 50_000;

/// The configured chain (`AI_PROVIDERS`), ending with the built-in provider.
pub fn chain(env: &Env) -> HttpResult<Vec<ProviderConfig>> {
    Ok(parse_chain(
        &env_var(env, "AI_PROVIDERS").unwrap_or_default(),
    )?)
}

/// `GET /api/v1/rooms/{id}/ai/usage[?date=YYYY-MM-DD]` (owners): the room's
/// AI use of the day (today, UTC, by default) per provider, and its budget.
pub async fn usage(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    if crate::access::role_in(ctx, room_id, &user_id).await? != Role::Owner {
        return Err(ApiError::forbidden("only an owner reads the room's AI usage").into());
    }
    let day = crate::ctx::query_day(&req)?;
    let rows: Vec<ProviderUsage> = ctx
        .db()?
        .prepare(
            "SELECT provider, calls, tokens_in, tokens_out, cost_micros FROM ai_usage
             WHERE room_id = ?1 AND day = ?2",
        )
        .bind(&[arg(room_id), arg(&day)])?
        .all()
        .await?
        .results()?;
    json(
        200,
        &UsageReport::of(
            &day,
            rows,
            tokens_var(&ctx.env, "AI_ROOM_DAILY_TOKENS", DEFAULT_DAILY_TOKENS),
        ),
    )
}

fn tokens_var(env: &Env, name: &str, default: u64) -> u64 {
    env_var(env, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Refuses work of about `needed` tokens that would exceed the room's budget
/// today, or the share of it of the member who asked (`None`: work nobody in
/// particular asked for, such as the daily check-in).
pub async fn require_budget(
    env: &Env,
    room_id: &str,
    member: Option<&str>,
    needed: u64,
) -> HttpResult<()> {
    #[derive(Deserialize)]
    struct Used {
        room: u64,
        member: u64,
    }
    let used: Option<Used> = env
        .d1("DB")?
        .prepare(
            "SELECT (SELECT COALESCE(SUM(tokens_in + tokens_out), 0) FROM ai_usage
                     WHERE room_id = ?1 AND day = ?2) AS room,
                    (SELECT COALESCE(SUM(tokens), 0) FROM ai_member_usage
                     WHERE room_id = ?1 AND day = ?2 AND user_id = ?3) AS member",
        )
        .bind(&[arg(room_id), arg(&day_of(now_secs())), arg(member)])?
        .first(None)
        .await?;
    let used = used.unwrap_or(Used { room: 0, member: 0 });
    let room_limit = tokens_var(env, "AI_ROOM_DAILY_TOKENS", DEFAULT_DAILY_TOKENS);
    check_budget(used.room, needed, room_limit)?;
    if member.is_some() {
        let share = tokens_var(env, "AI_MEMBER_DAILY_TOKENS", DEFAULT_MEMBER_DAILY_TOKENS);
        check_member_budget(used.member, needed, share)?;
    }
    Ok(())
}

/// Adds calls to the room's usage of today (per provider) and to the share of
/// the member who asked for them.
pub async fn account(
    env: &Env,
    room_id: &str,
    member: Option<&str>,
    calls: &[CallRecord],
) -> HttpResult<()> {
    let db = env.d1("DB")?;
    let statements = usage_statements(&db, room_id, member, calls)?;
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}

/// The writes that add `calls` to a room's usage of today and to the share
/// of `member` (what [`account`] runs; several rooms' go in one batch).
pub fn usage_statements(
    db: &D1Database,
    room_id: &str,
    member: Option<&str>,
    calls: &[CallRecord],
) -> HttpResult<Vec<D1PreparedStatement>> {
    let day = day_of(now_secs());
    let mut statements = Vec::new();
    let mut tokens = 0;
    for c in calls.iter().filter(|c| !c.outcome.starts_with("skipped")) {
        tokens += c.tokens_in + c.tokens_out;
        statements.push(
            db.prepare(
                "INSERT INTO ai_usage (room_id, day, provider, calls, tokens_in, tokens_out, cost_micros)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6)
                 ON CONFLICT (room_id, day, provider) DO UPDATE SET calls = calls + 1,
                   tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out,
                   cost_micros = cost_micros + excluded.cost_micros",
            )
            .bind(&[
                arg(room_id),
                arg(&day),
                arg(&c.provider),
                arg(c.tokens_in),
                arg(c.tokens_out),
                arg(c.cost_micros),
            ])?,
        );
    }
    if let Some(member) = member.filter(|_| !statements.is_empty()) {
        statements.push(
            db.prepare(
                "INSERT INTO ai_member_usage (room_id, user_id, day, tokens) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (room_id, user_id, day) DO UPDATE SET tokens = tokens + excluded.tokens",
            )
            .bind(&[arg(room_id), arg(member), arg(&day), arg(tokens)])?,
        );
    }
    Ok(statements)
}

pub(crate) async fn breakers(env: &Env) -> HttpResult<HashMap<String, Breaker>> {
    #[derive(Deserialize)]
    struct Row {
        provider: String,
        failures: u32,
        open_until: u64,
    }
    let rows: Vec<Row> = env
        .d1("DB")?
        .prepare("SELECT provider, failures, open_until FROM ai_breakers")
        .all()
        .await?
        .results()?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let b = Breaker {
                failures: r.failures,
                open_until_ms: r.open_until,
            };
            (r.provider, b)
        })
        .collect())
}

async fn save_breaker(env: &Env, provider: &str, b: &Breaker) -> HttpResult<()> {
    env.d1("DB")?
        .prepare(
            "INSERT INTO ai_breakers (provider, failures, open_until) VALUES (?1, ?2, ?3)
             ON CONFLICT (provider) DO UPDATE SET failures = excluded.failures, open_until = excluded.open_until",
        )
        .bind(&[arg(provider), arg(b.failures), arg(b.open_until_ms)])?
        .run()
        .await?;
    Ok(())
}

/// Asks the chain's external providers in order (see [`attempt`]). Returns
/// the first answer (with its provider) or none, and a record of every call.
/// The built-in provider is the caller's, since its answer depends on the task.
pub async fn ask(
    env: &Env,
    chain: &[ProviderConfig],
    prompt: &Prompt,
) -> (Option<(Completion, ProviderConfig)>, Vec<CallRecord>) {
    let mut calls = Vec::new();
    if chain.iter().all(|p| p.kind == ProviderKind::Builtin) {
        return (None, calls);
    }
    let mut states = breakers(env).await.unwrap_or_default();
    for p in chain.iter().filter(|p| p.kind != ProviderKind::Builtin) {
        let breaker = states.remove(&p.name).unwrap_or_default();
        let answer = attempt(
            env,
            p,
            breaker,
            &mut calls,
            || send(env, p, prompt),
            |c, ms| CallRecord::of(p, Some(c), "ok", ms),
        )
        .await;
        if let Some(c) = answer {
            return (Some((c, p.clone())), calls);
        }
    }
    (None, calls)
}

/// One provider's call: up to `ATTEMPTS_PER_PROVIDER` tries with backoff on
/// retryable failures, none while its circuit is open, the breaker kept in
/// D1. Every try is recorded in `calls` (`ok` describes an answer).
pub(crate) async fn attempt<T, Fut>(
    env: &Env,
    p: &ProviderConfig,
    mut breaker: Breaker,
    calls: &mut Vec<CallRecord>,
    send: impl Fn() -> Fut,
    ok: impl Fn(&T, u64) -> CallRecord,
) -> Option<T>
where
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    if !breaker.allows(crate::ctx::now_ms()) {
        calls.push(CallRecord::of(p, None, "skipped: circuit open", 0));
        return None;
    }
    let mut answer = None;
    let mut retry_after = None;
    for n in 0..ATTEMPTS_PER_PROVIDER {
        if n > 0 {
            let wait = backoff_ms(n, js_sys::Math::random(), retry_after);
            Delay::from(Duration::from_millis(wait)).await;
        }
        let started = crate::ctx::now_ms();
        let result = send().await;
        let ms = crate::ctx::now_ms().saturating_sub(started);
        match result {
            Ok(v) => {
                calls.push(ok(&v, ms));
                answer = Some(v);
                break;
            }
            Err(e) => {
                calls.push(CallRecord::of(p, None, format!("error: {}", e.message), ms));
                retry_after = e.retry_after_ms;
                if !e.retryable {
                    break;
                }
            }
        }
    }
    let was = breaker;
    breaker.record(answer.is_some(), crate::ctx::now_ms());
    if breaker != was {
        if let Err(e) = save_breaker(env, &p.name, &breaker).await {
            worker::console_error!("saving the circuit breaker of {} failed: {}", p.name, e.0);
        }
    }
    answer
}

/// Asks the chain for an answer that passes `check`, once more when the
/// answer was refused (marked so in `calls`); `None` when no model gave a
/// usable one, for the caller's built-in answer.
pub async fn ask_checked<T>(
    env: &Env,
    chain: &[ProviderConfig],
    prompt: &Prompt,
    mut check: impl FnMut(&str) -> Result<T, String>,
    calls: &mut Vec<CallRecord>,
) -> Option<T> {
    for _ in 0..2 {
        let (answer, tried) = ask(env, chain, prompt).await;
        calls.extend(tried);
        let (c, _) = answer?;
        match check(&c.text) {
            Ok(v) => return Some(v),
            Err(why) => mark_invalid(calls, &why),
        }
    }
    None
}

/// Runs `fut` for at most `ms`.
pub(crate) async fn within<T>(ms: u64, fut: impl std::future::Future<Output = T>) -> Option<T> {
    let fut = std::pin::pin!(fut);
    let timer = std::pin::pin!(Delay::from(Duration::from_millis(ms)));
    match select(fut, timer).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

async fn send(env: &Env, p: &ProviderConfig, prompt: &Prompt) -> Result<Completion, ProviderError> {
    if p.kind == ProviderKind::WorkersAi {
        let model = p.model.clone().unwrap_or_default();
        let out = run_workers_ai(env, model, workers_ai_input(prompt), p.timeout_ms).await?;
        return parse_workers_ai(&out, prompt);
    }
    let key = api_key(env, p)?;
    let call = http_call(p, key.as_deref(), prompt);
    let (status, retry_after, text) = post(&call, p.timeout_ms).await?;
    parse_http_reply(p.kind, status, retry_after.as_deref(), &text, prompt)
}

/// Runs a Workers AI model through the `AI` binding within `timeout_ms`.
pub(crate) async fn run_workers_ai(
    env: &Env,
    model: String,
    input: Value,
    timeout_ms: u64,
) -> Result<Value, ProviderError> {
    let ai = env
        .ai("AI")
        .map_err(|_| ProviderError::fatal("the Workers AI binding `AI` is not configured"))?;
    within(timeout_ms, ai.run(model, input))
        .await
        .ok_or_else(|| ProviderError::retryable(format!("no answer within {timeout_ms} ms")))?
        .map_err(|e| ProviderError::retryable(e.to_string()))
}

/// The API key a provider names, read from its secret.
pub(crate) fn api_key(env: &Env, p: &ProviderConfig) -> Result<Option<String>, ProviderError> {
    match &p.key {
        Some(name) => Ok(Some(env_var(env, name).ok_or_else(|| {
            ProviderError::fatal(format!("the secret `{name}` is not set"))
        })?)),
        None => Ok(None),
    }
}

/// Sends a provider request, answering (status, `Retry-After`, body) within
/// `timeout_ms`.
pub(crate) async fn post(
    call: &HttpCall,
    timeout_ms: u64,
) -> Result<(u16, Option<String>, String), ProviderError> {
    let build = || -> worker::Result<Request> {
        let headers = Headers::new();
        for (k, v) in &call.headers {
            headers.set(k, v)?;
        }
        let body = call.body.to_string().into();
        tessera_durable_objects::http::request(&call.url, Method::Post, &headers, Some(&body))
    };
    let req = build().map_err(|e| ProviderError::fatal(format!("bad request: {e}")))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let mut resp = Fetch::Request(req).send_with_signal(&signal).await?;
        let retry_after = resp.headers().get("retry-after")?;
        let text = resp.text().await?;
        Ok::<_, worker::Error>((resp.status_code(), retry_after, text))
    };
    match within(timeout_ms, exchange).await {
        None => {
            controller.abort();
            Err(ProviderError::retryable(format!(
                "no answer within {timeout_ms} ms"
            )))
        }
        Some(Err(e)) => Err(ProviderError::retryable(format!("unreachable: {e}"))),
        Some(Ok(answer)) => Ok(answer),
    }
}

/// Calls a room's object as the AI (internal routes under `/ai`).
pub async fn room_call<T: DeserializeOwned>(
    env: &Env,
    room_id: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    request_id: &str,
) -> HttpResult<T> {
    let headers = Headers::new();
    headers.set("x-tessera-identity", &ai_identity().to_header())?;
    headers.set("x-request-id", request_id)?;
    room_client::call_json(env, room_id, method, path, headers, body).await
}

/// Audits calls in the room and posts what they produced (see the object's
/// `/ai/record`).
pub async fn record_in_room(
    env: &Env,
    room_id: &str,
    body: &Value,
    request_id: &str,
) -> HttpResult<()> {
    let _: Value = room_call(
        env,
        room_id,
        Method::Post,
        "/ai/record",
        Some(body),
        request_id,
    )
    .await?;
    Ok(())
}

/// The queue task for `@ai`: reads the question and the conversation before
/// it, asks the chain (an invalid answer once more), falls back to the
/// built-in answer, posts the reply as the AI (once, whatever the retries)
/// and audits every call. A spent budget is answered in the room.
pub async fn answer_mention(env: &Env, room_id: &str, message_id: u64) -> HttpResult<()> {
    #[derive(Deserialize)]
    struct Context {
        question: DigestMessage,
        recent: Vec<DigestMessage>,
    }
    let request_id = format!("ai-reply-{message_id}");
    let ctx: Context = room_call(
        env,
        room_id,
        Method::Get,
        &format!("/ai/context?message={message_id}"),
        None,
        &request_id,
    )
    .await?;
    let prompt = reply::prompt(&ctx.question, &ctx.recent);
    let asker = Some(ctx.question.author.as_str());
    let (text, calls) = match require_budget(env, room_id, asker, prompt.tokens_needed()).await {
        Err(e) => (format!("I cannot answer now: {}", e.0), Vec::new()),
        Ok(()) => {
            let mut calls = Vec::new();
            let text = match ask_checked(env, &chain(env)?, &prompt, reply::parse, &mut calls).await
            {
                Some(text) => text,
                None => {
                    let text = builtin::reply(&ctx.question, &ctx.recent);
                    calls.push(CallRecord::builtin(&prompt.user, &text));
                    text
                }
            };
            (text, calls)
        }
    };
    account(env, room_id, asker, &calls).await?;
    let body = json!({
        "purpose": "reply",
        "subject": { "message": message_id },
        "calls": calls,
        "message": { "key": request_id, "body": text, "reply_to": message_id },
    });
    record_in_room(env, room_id, &body, &request_id).await
}
