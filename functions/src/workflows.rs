//! `/api/v1/rooms/{id}/state`, `/actions`, `/rules`, `/approvals` and
//! `/audit`: the Worker's side of collaboration workflows. The room object runs
//! actions, rules and approvals and writes the audit trail (see its
//! `workflows` module); the Worker checks membership, passes the caller's
//! identity and serves the audit log from D1.

use crate::ctx::{arg, page, read_body, Ctx};
use crate::room_object::identity_headers;
use crate::rooms::role_in;
use crate::tokens::authenticate;
use serde::{Deserialize, Serialize};
use tessera_core::actions::offered;
use tessera_core::api::Endpoint;
use tessera_core::rooms::{require, Permission};
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, HttpResult};
use tessera_durable_objects::room;
use worker::{Headers, Request, Response, ResponseBuilder};

/// Passes a request to the room object, at the path below
/// `/api/v1/rooms/{room_id}` (the object serves the same paths), with the
/// caller's identity, their `If-Match` / `Idempotency-Key`, the query string
/// and, where the route takes one, the JSON body.
pub async fn forward(
    ctx: &Ctx,
    mut req: Request,
    endpoint: Endpoint,
    room_id: &str,
) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let headers = identity_headers(ctx, room_id, &user_id).await?;
    for h in ["if-match", "idempotency-key"] {
        if let Some(v) = req.headers().get(h)? {
            headers.set(h, &v)?;
        }
    }
    let body = match endpoint.takes_json_body() {
        true => Some(read_body(&mut req).await?),
        false => None,
    };
    let url = req.url()?;
    let path = url
        .path()
        .strip_prefix(&format!("/api/v1/rooms/{room_id}"))
        .ok_or(ApiError::NoRoute)?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    room::call(
        &ctx.env,
        room_id,
        req.method(),
        &format!("{path}{query}"),
        headers,
        body,
    )
    .await
}

/// The catalogue as the caller sees it: what they may run, and what they may
/// only ask an owner for.
pub async fn list(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let role = role_in(ctx, room_id, &user_id).await?;
    json(
        200,
        &serde_json::json!({ "role": role, "actions": offered(role) }),
    )
}

#[derive(Serialize, Deserialize)]
struct AuditEntry {
    id: u64,
    actor: String,
    actor_kind: String,
    action: String,
    arguments: String,
    result: String,
    request_id: String,
    at: u64,
}

impl AuditEntry {
    fn view(&self) -> serde_json::Value {
        let parse = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "id": self.id, "actor": self.actor, "actor_kind": self.actor_kind,
            "action": self.action, "arguments": parse(&self.arguments),
            "result": parse(&self.result), "request_id": self.request_id, "at": self.at,
        })
    }
}

/// Largest page of an NDJSON export.
const EXPORT_PAGE: u32 = 5000;

/// Entries newest first, after `?cursor=` (an entry id), filtered by
/// `?actor=` and `?action=`; admins and owners only.
async fn entries(
    ctx: &Ctx,
    req: &Request,
    room_id: &str,
    limit: u32,
) -> HttpResult<(Vec<AuditEntry>, Option<String>)> {
    let user_id = authenticate(ctx, req).await?;
    require(
        role_in(ctx, room_id, &user_id).await?,
        Permission::ManageMembers,
    )?;
    let page = page(req)?;
    let url = req.url()?;
    let q = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    let cursor: Option<u64> = match &page.cursor {
        Some(c) => Some(
            c.parse()
                .map_err(|_| ApiError::invalid("cursor is not valid"))?,
        ),
        None => None,
    };
    let limit = if limit == 0 { page.limit } else { limit };
    let mut rows: Vec<AuditEntry> = ctx
        .db()?
        .prepare(
            "SELECT id, actor, actor_kind, action, arguments, result, request_id, at FROM audit_log
             WHERE room_id = ?1 AND (?2 IS NULL OR id < ?2) AND (?3 IS NULL OR actor = ?3)
               AND (?4 IS NULL OR action = ?4)
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(&[
            arg(room_id),
            arg(cursor),
            arg(q("actor").as_ref()),
            arg(q("action").as_ref()),
            arg(limit + 1),
        ])?
        .all()
        .await?
        .results()?;
    let next = tessera_core::api::Page {
        limit,
        cursor: None,
    }
    .finish(&mut rows, |e| e.id.to_string());
    Ok((rows, next))
}

pub async fn audit(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let (rows, next_cursor) = entries(ctx, &req, room_id, 0).await?;
    let entries: Vec<_> = rows.iter().map(AuditEntry::view).collect();
    json(
        200,
        &serde_json::json!({ "entries": entries, "next_cursor": next_cursor }),
    )
}

/// NDJSON, one entry per line, up to 5,000 per request; `x-next-cursor` names
/// the next page.
pub async fn export(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let (rows, next) = entries(ctx, &req, room_id, EXPORT_PAGE).await?;
    let mut body = String::new();
    for e in &rows {
        body.push_str(&e.view().to_string());
        body.push('\n');
    }
    let headers = Headers::new();
    headers.set("content-type", "application/x-ndjson")?;
    if let Some(c) = next {
        headers.set("x-next-cursor", &c)?;
    }
    Ok(ResponseBuilder::new()
        .with_headers(headers)
        .fixed(body.into_bytes()))
}
