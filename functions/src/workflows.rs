//! `/api/v1/rooms/{id}/state`, `/actions`, `/rules`, `/approvals` and
//! `/audit`, and the approvals inbox `/api/v1/approvals`: the Worker's side
//! of collaboration workflows. The room object runs actions, rules and
//! approvals and writes the audit trail and the approvals' copies (see its
//! `workflows` module); the Worker checks membership, passes the caller's
//! identity and serves the audit log and the inbox from D1.

use crate::access::role_in;
use crate::ctx::{arg, now_secs, read_body, Ctx};
use crate::room_object::identity_headers;
use crate::tokens::authenticate;
use serde::{Deserialize, Serialize};
use tessera_core::api::{Endpoint, Page, Param};
use tessera_core::approval_inbox::{ApprovalInboxItem, ApprovalInboxQuery, ApprovalInboxRow};
use tessera_core::audit::AuditQuery;
use tessera_core::catalogue::offered;
use tessera_core::rooms::{require, Permission};
use tessera_core::ApiError;
use tessera_durable_objects::http::{json, HttpResult};
use tessera_durable_objects::room_client;
use wasm_bindgen::JsValue;
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
    let body =
        if endpoint.takes_json_body() || (endpoint.takes_optional_json_body() && has_body(&req)?) {
            Some(read_body(&mut req).await?)
        } else {
            None
        };
    let url = req.url()?;
    let path = url
        .path()
        .strip_prefix(&format!("/api/v1/rooms/{room_id}"))
        .ok_or(ApiError::NoRoute)?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    room_client::call(
        &ctx.env,
        room_id,
        req.method(),
        &format!("{path}{query}"),
        headers,
        body,
    )
    .await
}

/// Whether a request says it has a body (a type, or a length above 0): an
/// optional JSON body is then read as any other (type and size checked).
fn has_body(req: &Request) -> HttpResult<bool> {
    let h = req.headers();
    let length: usize = h
        .get("content-length")?
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    Ok(length > 0 || h.get("content-type")?.is_some())
}

/// The query string of a request as pairs.
fn query_pairs(req: &Request) -> HttpResult<Vec<(String, String)>> {
    Ok(req.url()?.query_pairs().into_owned().collect())
}

/// The rows of a query core built (`(sql, params)`).
async fn rows<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    (sql, params): (String, Vec<Param>),
) -> HttpResult<Vec<T>> {
    let args: Vec<JsValue> = params.iter().map(arg).collect();
    Ok(ctx.db()?.prepare(sql).bind(&args)?.all().await?.results()?)
}

/// `GET /api/v1/approvals`: the requests of every room the caller owns,
/// newest first, each with its room and whether they may decide it; with
/// `?scope=mine`, the caller's own requests (and their rules') in the rooms
/// they are still in, with what became of them (see `tessera_core::inbox`).
pub async fn inbox(ctx: &Ctx, req: Request) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let pairs = query_pairs(&req)?;
    let q = ApprovalInboxQuery::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let now = now_secs();
    let mut found: Vec<ApprovalInboxRow> = rows(ctx, q.sql(&user_id, now)).await?;
    let next_cursor = q.page.finish(&mut found, |r| r.n.to_string());
    let approvals = found
        .iter()
        .map(|r| ApprovalInboxItem::of(r, q.scope, &user_id, now))
        .collect::<Result<Vec<_>, _>>()?;
    json(
        200,
        &serde_json::json!({ "approvals": approvals, "next_cursor": next_cursor }),
    )
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

/// Entries newest first, filtered and paged as `tessera_core::audit` says
/// (`?actor=&kind=&action=&from=&to=&cursor=&limit=`); admins and owners only.
async fn entries(
    ctx: &Ctx,
    req: &Request,
    room_id: &str,
    export: bool,
) -> HttpResult<(Vec<AuditEntry>, Option<String>)> {
    let user_id = authenticate(ctx, req).await?;
    require(
        role_in(ctx, room_id, &user_id).await?,
        Permission::ManageMembers,
    )?;
    let pairs = query_pairs(req)?;
    let q = AuditQuery::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), export)?;
    let mut found: Vec<AuditEntry> = rows(ctx, q.sql(room_id)).await?;
    let next = Page {
        limit: q.limit,
        cursor: None,
    }
    .finish(&mut found, |e| e.id.to_string());
    Ok((found, next))
}

pub async fn audit(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let (rows, next_cursor) = entries(ctx, &req, room_id, false).await?;
    let entries: Vec<_> = rows.iter().map(AuditEntry::view).collect();
    json(
        200,
        &serde_json::json!({ "entries": entries, "next_cursor": next_cursor }),
    )
}

/// NDJSON, one entry per line, up to 5,000 per request; `x-next-cursor` names
/// the next page.
pub async fn export(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let (rows, next) = entries(ctx, &req, room_id, true).await?;
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
