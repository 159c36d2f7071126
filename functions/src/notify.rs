//! The person's notification routes (`/api/v1/me/ws`, inbox, preferences,
//! push subscriptions), the RFC 8058 unsubscribe link, and the email task of
//! the notification queue. The inbox itself is the person's object
//! (`PersonDO`); this authenticates and forwards.

use crate::ctx::{arg, env_var, now_secs, read_body, read_body_as, Ctx};
use crate::room_object::{is_upgrade, socket_token, SUBPROTOCOL};
use crate::tokens::{authenticate, caller_for_token};
use serde::Deserialize;
use tessera_core::notify::email::{
    self, check_unsubscribe, unsubscribe_key, DigestRoom, EmailStatus, Provider, Unsubscribe,
};
use tessera_core::notify::inbox::NewItem;
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, request, HttpResult};
use tessera_durable_objects::person;
use worker::{Env, Fetch, Headers, Method, Request, Response};

/// Where links in emails point when `APP_URL` is not set.
const DEFAULT_APP_URL: &str = "http://localhost:8787";
/// The form of an unsubscribe request (RFC 8058).
const FORM: &str = "application/x-www-form-urlencoded";

/// `GET /api/v1/me/ws`: the person's live socket (token as for rooms).
pub async fn socket(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    if !is_upgrade(&req)? {
        return Err(ApiError::invalid("this endpoint expects a WebSocket upgrade").into());
    }
    let (token, echo) = socket_token(&req)?;
    let caller = caller_for_token(ctx, &token).await?;
    person::socket(
        &ctx.env,
        &caller.user_id,
        caller.session.as_deref(),
        echo.then_some(SUBPROTOCOL),
    )
    .await
}

/// The inbox, preferences and push routes: forwarded to the person's object.
pub async fn forward(ctx: &Ctx, mut req: Request, path: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let url = req.url()?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let body = match req.method() {
        Method::Post | Method::Patch => Some(read_body(&mut req).await?),
        _ => None,
    };
    person::call(
        &ctx.env,
        &user_id,
        req.method(),
        &format!("{path}{query}"),
        body,
    )
    .await
}

/// `GET /api/v1/me/push`: the VAPID public key the browser subscribes with
/// (null when web push is not configured) and the person's subscriptions.
pub async fn push_config(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let mut resp = person::call(&ctx.env, &user_id, Method::Get, "/push", None).await?;
    let mut body: serde_json::Value = resp.json().await?;
    let configured = ctx.var("VAPID_PRIVATE_KEY").is_some();
    body["public_key"] = match ctx.var("VAPID_PUBLIC_KEY").filter(|_| configured) {
        Some(k) => k.into(),
        None => serde_json::Value::Null,
    };
    json(200, &body)
}

fn unsubscribe_signing_key(env: &Env) -> HttpResult<[u8; 32]> {
    let secret = env_var(env, "JWT_SECRET")
        .ok_or_else(|| ApiError::Internal("JWT_SECRET is not set".into()))?;
    Ok(unsubscribe_key(secret.as_bytes()))
}

/// `POST /api/v1/unsubscribe/{token}`: RFC 8058 one-click (the form body
/// `List-Unsubscribe=One-Click`) or the button of the page below.
pub async fn unsubscribe(ctx: &Ctx, mut req: Request, token: &str) -> HttpResult<Response> {
    let (user_id, what) = check_unsubscribe(&unsubscribe_signing_key(&ctx.env)?, token)?;
    let body = read_body_as(&mut req, FORM, 1024).await?;
    if !email::is_one_click(&body) {
        return Err(ApiError::invalid("the body must be List-Unsubscribe=One-Click").into());
    }
    let which = match what {
        Unsubscribe::Email => "email",
        Unsubscribe::Digest => "digest",
    };
    let path = format!("/unsubscribe/{which}");
    let resp = person::call(&ctx.env, &user_id, Method::Post, &path, None).await?;
    if resp.status_code() != 200 {
        return Err(ApiError::Internal("the inbox did not take the unsubscribe".into()).into());
    }
    json(200, &serde_json::json!({ "unsubscribed": which }))
}

/// `GET /api/v1/unsubscribe/{token}`: a page with one button; a GET never
/// unsubscribes (mail scanners follow links).
pub async fn unsubscribe_page(ctx: &Ctx, token: &str) -> HttpResult<Response> {
    check_unsubscribe(&unsubscribe_signing_key(&ctx.env)?, token)?;
    let action = email::escape_html(&format!("/api/v1/unsubscribe/{token}"));
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head><body>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe from Tessera emails</button></form></body></html>"
    );
    Ok(Response::from_html(html)?)
}

#[derive(Deserialize)]
struct Recipient {
    email: Option<String>,
}

/// The email task: sends the email of an unseen item once.
pub async fn send_item_email(env: &Env, user_id: &str, item: &NewItem) -> HttpResult<()> {
    let Some(out) = claim(env, user_id, &item.key(), Unsubscribe::Email).await? else {
        return Ok(());
    };
    let room_name: Option<String> = env
        .d1("DB")?
        .prepare("SELECT name FROM rooms WHERE id = ?1")
        .bind(&[arg(item.room_id.as_str())])?
        .first(Some("name"))
        .await?;
    let message = email::for_item(
        &out.to,
        room_name.as_deref().unwrap_or("a room"),
        item,
        &out.app_url,
        &out.unsubscribe_url,
    );
    send(env, &out, &message).await
}

/// The digest task: one email a day listing the rooms with unread items,
/// under the rooms' current names (a room deleted or left since is left out).
pub async fn send_digest(
    env: &Env,
    user_id: &str,
    day: &str,
    rooms: &[DigestRoom],
) -> HttpResult<()> {
    let rooms = &rooms[..rooms.len().min(email::DIGEST_ROOMS_MAX)];
    let key = email::digest_key(user_id, day);
    let Some(out) = claim(env, user_id, &key, Unsubscribe::Digest).await? else {
        return Ok(());
    };
    #[derive(Deserialize)]
    struct Named {
        id: String,
        name: String,
    }
    let marks = (2..=rooms.len() + 1)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ids: Vec<_> = std::iter::once(arg(user_id))
        .chain(rooms.iter().map(|r| arg(r.room_id.as_str())))
        .collect();
    let names: Vec<Named> = env
        .d1("DB")?
        .prepare(format!(
            "SELECT r.id, r.name FROM rooms r JOIN memberships m ON m.room_id = r.id AND m.user_id = ?1
             WHERE r.id IN ({marks})"
        ))
        .bind(&ids)?
        .all()
        .await?
        .results()?;
    let named: Vec<DigestRoom> = rooms
        .iter()
        .filter_map(|r| {
            let n = names.iter().find(|n| n.id == r.room_id)?;
            Some(DigestRoom {
                name: n.name.clone(),
                ..r.clone()
            })
        })
        .collect();
    if named.is_empty() {
        return finish(env, &key, EmailStatus::Skipped, Some("no room to list")).await;
    }
    let message = email::digest(
        &out.to,
        user_id,
        day,
        &named,
        &out.app_url,
        &out.unsubscribe_url,
    );
    send(env, &out, &message).await
}

/// An email claimed in the mail log, with what sending it needs.
struct Outgoing {
    key: String,
    provider: Provider,
    to: String,
    app_url: String,
    unsubscribe_url: String,
}

/// Claims `key` in the mail log (`email_log`): `None` when it was sent or
/// settled before, or cannot be sent (no provider, no address: recorded as
/// skipped). A task repeated after a failure claims it again; the provider
/// is given the same key (`Idempotency-Key`) should a task die between
/// sending and recording, so an event is never emailed twice.
async fn claim(
    env: &Env,
    user_id: &str,
    key: &str,
    leave: Unsubscribe,
) -> HttpResult<Option<Outgoing>> {
    let db = env.d1("DB")?;
    let now = now_secs();
    let claimed: Option<String> = db
        .prepare(
            "INSERT INTO email_log (key, user_id, status, attempts, updated_at) VALUES (?1, ?2, ?4, 1, ?3)
             ON CONFLICT (key) DO UPDATE SET attempts = attempts + 1, updated_at = ?3
             WHERE email_log.status = ?4 RETURNING status",
        )
        .bind(&[arg(key), arg(user_id), arg(now), arg(EmailStatus::Sending.as_str())])?
        .first(Some("status"))
        .await?;
    if claimed.is_none() {
        return Ok(None);
    }
    let Some(provider) = env_var(env, "EMAIL_PROVIDER") else {
        finish(
            env,
            key,
            EmailStatus::Skipped,
            Some("EMAIL_PROVIDER is not configured"),
        )
        .await?;
        return Ok(None);
    };
    let provider = Provider::parse(&provider)?;
    let recipient: Option<Recipient> = db
        .prepare("SELECT email FROM users WHERE id = ?1")
        .bind(&[arg(user_id)])?
        .first(None)
        .await?;
    let Some(to) = recipient.and_then(|r| r.email) else {
        finish(env, key, EmailStatus::Skipped, Some("no email address")).await?;
        return Ok(None);
    };
    let app_url = env_var(env, "APP_URL").unwrap_or_else(|| DEFAULT_APP_URL.into());
    let token = email::unsubscribe_token(&unsubscribe_signing_key(env)?, user_id, leave);
    let unsubscribe_url = format!(
        "{}/api/v1/unsubscribe/{token}",
        app_url.trim_end_matches('/')
    );
    Ok(Some(Outgoing {
        key: key.to_string(),
        provider,
        to,
        app_url,
        unsubscribe_url,
    }))
}

/// Sends a claimed email through the provider's HTTP API and records it.
async fn send(env: &Env, out: &Outgoing, message: &email::Email) -> HttpResult<()> {
    let api_key = env_var(env, &out.provider.key)
        .ok_or_else(|| ApiError::Internal(format!("the secret {} is not set", out.provider.key)))?;
    let (url, headers, body) = out.provider.request(message);
    let h = Headers::new();
    h.set("authorization", &format!("Bearer {api_key}"))?;
    for (k, v) in headers {
        h.set(k, &v)?;
    }
    let body = body.into();
    let mut resp = Fetch::Request(request(&url, Method::Post, &h, Some(&body))?)
        .send()
        .await?;
    let status = resp.status_code();
    if (200..300).contains(&status) {
        finish(env, &out.key, EmailStatus::Sent, None).await?;
        return Ok(());
    }
    let detail = resp.text().await.unwrap_or_default();
    let detail: String = detail.chars().take(300).collect();
    Err(ApiError::Unavailable(format!("the mail API answered {status}: {detail}")).into())
}

/// Records how an email ended in the mail log.
async fn finish(env: &Env, key: &str, status: EmailStatus, detail: Option<&str>) -> HttpResult<()> {
    env.d1("DB")?
        .prepare("UPDATE email_log SET status = ?2, error = ?3, updated_at = ?4 WHERE key = ?1")
        .bind(&[arg(key), arg(status.as_str()), arg(detail), arg(now_secs())])?
        .run()
        .await?;
    Ok(())
}
