//! `/api/v1/me/keys`: a person's API keys (created, listed, revoked). A
//! request made with a key is authenticated where every bearer token is
//! (`tokens::caller_for_token`), so keys are accepted wherever an access
//! token is, HTTP and sockets alike. What a key may do is decided in
//! `tessera_core::notify::apikeys`.
//!
//! A key's sockets are tagged with its id as a session's are with the
//! session's, so revoking a key closes them as signing out closes a session's
//! (`sessions::close_sockets`).

use crate::crypto::random_bytes;
use crate::ctx::{arg, changes, now_secs, read_json, Ctx};
use crate::sessions;
use crate::tokens::authenticate;
use serde::Deserialize;
use tessera_core::notify::apikeys::{self, stored_scope, CreateKey, KeyInfo, KEYS_PER_PERSON_MAX};
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, no_content, HttpResult};
use worker::{Request, Response};

#[derive(Deserialize)]
struct Row {
    id: String,
    name: String,
    scope: String,
    created_at: u64,
    expires_at: Option<u64>,
    last_used_at: Option<u64>,
}

impl Row {
    fn info(self) -> HttpResult<KeyInfo> {
        Ok(KeyInfo {
            id: self.id,
            name: self.name,
            scope: stored_scope(&self.scope)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// `GET /api/v1/me/keys`: the caller's keys, newest first (never a secret).
pub async fn list(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let rows: Vec<Row> = ctx
        .db()?
        .prepare(
            "SELECT id, name, scope, created_at, expires_at, last_used_at FROM api_keys
             WHERE user_id = ?1 ORDER BY created_at DESC, id DESC",
        )
        .bind(&[arg(&user_id)])?
        .all()
        .await?
        .results()?;
    let keys = rows
        .into_iter()
        .map(Row::info)
        .collect::<HttpResult<Vec<_>>>()?;
    json(200, &serde_json::json!({ "keys": keys }))
}

/// `POST /api/v1/me/keys`: a new key, shown in the answer and never again.
/// The rooms it names must be the caller's.
pub async fn create(ctx: &Ctx, mut req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let body: CreateKey = read_json(&mut req).await?;
    body.validate()?;
    let scope = body.scope.clone().normalized();
    let db = ctx.db()?;
    if let Some(rooms) = &scope.rooms {
        let theirs: Option<u32> = db
            .prepare(
                "SELECT COUNT(*) AS n FROM memberships
                 WHERE user_id = ?1 AND room_id IN (SELECT value FROM json_each(?2))",
            )
            .bind(&[arg(&user_id), arg(&serde_json::to_string(rooms)?)])?
            .first(Some("n"))
            .await?;
        if theirs.unwrap_or(0) as usize != rooms.len() {
            return Err(
                ApiError::invalid_at("scope.rooms", "every room must be one of yours").into(),
            );
        }
    }
    let (key, id) = apikeys::new_key(random_bytes::<16>()?, &random_bytes::<32>()?);
    let (_, secret_hash) = apikeys::parse(&key)?;
    let now = now_secs();
    let info = KeyInfo {
        id,
        name: body.name.trim().to_string(),
        scope,
        created_at: now,
        expires_at: body.expires_at(now),
        last_used_at: None,
    };
    let inserted = db
        .prepare(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, scope, created_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = ?2) < ?8",
        )
        .bind(&[
            arg(&info.id),
            arg(&user_id),
            arg(&info.name),
            arg(&secret_hash),
            arg(&serde_json::to_string(&info.scope)?),
            arg(now),
            arg(info.expires_at),
            arg(KEYS_PER_PERSON_MAX as u64),
        ])?
        .run()
        .await?;
    if changes(&inserted)? == 0 {
        return Err(ApiError::Conflict {
            code: tessera_core::error::code::TOO_MANY_API_KEYS,
            message: format!("you have {KEYS_PER_PERSON_MAX} API keys; revoke some first"),
        }
        .into());
    }
    // The key itself, this once, next to what the list shows.
    let mut body = serde_json::to_value(&info)?;
    body["key"] = key.into();
    json(201, &body)
}

/// `DELETE /api/v1/me/keys/{id}`: the key is refused from the next request,
/// and the sockets it opened are closed.
pub async fn revoke(ctx: &Ctx, req: Request, id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let deleted = ctx
        .db()?
        .prepare("DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2")
        .bind(&[arg(id), arg(&user_id)])?
        .run()
        .await?;
    if changes(&deleted)? == 0 {
        return Err(ApiError::NotFound("API key").into());
    }
    sessions::close_sockets(ctx, &user_id, Some(id)).await?;
    no_content()
}
