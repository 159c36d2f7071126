//! The Worker's side of the room object (chat and documents): it authenticates,
//! checks membership and forwards to the room's Durable Object with an identity
//! the client cannot forge. Also tells the object about membership changes.

use crate::ctx::Ctx;
use crate::tokens::{authenticate, caller_for_token};
use tessera_core::chat::ReadState;
use tessera_core::protocol::Identity;
use tessera_core::room::RoomCall;
use tessera_core::rooms::MemberNotice;
use tessera_core::ApiError;
use tessera_durable_objects::http::HttpResult;
use tessera_durable_objects::members;
use tessera_durable_objects::room_client;
use tessera_durable_objects::sessions::SESSION_ID_HEADER;
use worker::{Headers, Method, Request, Response};

/// The subprotocol a browser offers next to `bearer.<token>`; the answer echoes it.
pub const SUBPROTOCOL: &str = "tessera.v1";

/// The caller's identity in a room, in one query (this runs on every socket
/// upgrade and every forwarded request); 404 for non-members, as everywhere,
/// and for rooms the caller's API key does not reach.
async fn identity(ctx: &Ctx, room_id: &str, user_id: &str) -> HttpResult<Identity> {
    Ok(members::identity(&ctx.db()?, room_id, user_id)
        .await?
        .filter(|_| ctx.key_allows_room(room_id))
        .ok_or(ApiError::NotFound("room"))?)
}

fn headers_for(ctx: &Ctx, who: &Identity) -> HttpResult<Headers> {
    let headers = Headers::new();
    headers.set("x-tessera-identity", &who.to_header())?;
    headers.set("x-request-id", &ctx.request_id)?;
    Ok(headers)
}

/// The identity headers of a request the room object serves.
pub async fn identity_headers(ctx: &Ctx, room_id: &str, user_id: &str) -> HttpResult<Headers> {
    headers_for(ctx, &identity(ctx, room_id, user_id).await?)
}

/// The token of a socket request: `?token=`, or `bearer.<token>` among the
/// offered subprotocols (browsers cannot set headers on WebSockets).
pub fn socket_token(req: &Request) -> HttpResult<(String, bool)> {
    let offered = req
        .headers()
        .get("sec-websocket-protocol")?
        .unwrap_or_default();
    if let Some(token) = offered
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("bearer."))
    {
        return Ok((
            token.to_string(),
            offered.split(',').any(|p| p.trim() == SUBPROTOCOL),
        ));
    }
    let url = req.url()?;
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .ok_or(ApiError::Unauthenticated)?;
    Ok((token, false))
}

pub fn is_upgrade(req: &Request) -> HttpResult<bool> {
    Ok(req.headers().get("upgrade")?.as_deref() == Some("websocket"))
}

/// Authenticates a WebSocket upgrade and hands it to the room object at `path`.
async fn upgrade(ctx: &Ctx, req: &Request, room_id: &str, path: &str) -> HttpResult<Response> {
    if !is_upgrade(req)? {
        return Err(ApiError::invalid("this endpoint expects a WebSocket upgrade").into());
    }
    let (token, echo_protocol) = socket_token(req)?;
    let caller = caller_for_token(ctx, &token).await?;
    let mut who = identity(ctx, room_id, &caller.user_id).await?;
    // Reading a room opens its socket, which can also write: a read-only
    // API key holds it with a viewer's rights.
    who.role = ctx.acting_role(who.role);
    let headers = headers_for(ctx, &who)?;
    headers.set("upgrade", "websocket")?;
    // The socket is tagged with its session, so that signing out closes it.
    if let Some(session) = &caller.session {
        headers.set(SESSION_ID_HEADER, session)?;
    }
    if echo_protocol {
        headers.set("x-tessera-protocol", SUBPROTOCOL)?;
    }
    room_client::call(&ctx.env, room_id, Method::Get, path, headers, None).await
}

pub async fn socket(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let url = req.url()?;
    let since = url
        .query_pairs()
        .find(|(k, _)| k == "since")
        .map(|(_, v)| v.into_owned());
    let path = match since {
        Some(s) => format!("/ws?since={}", js_sys::encode_uri_component(&s)),
        None => "/ws".to_string(),
    };
    upgrade(ctx, &req, room_id, &path).await
}

/// Largest binary update accepted over REST (the socket limit is the object's).
const DOC_UPDATE_LIMIT: usize = 8 * 1024 * 1024;

/// Whether a request carries a body (a length above zero, or a type).
fn has_body(req: &Request) -> HttpResult<bool> {
    let headers = req.headers();
    let length = headers.get("content-length")?;
    Ok(headers.get("content-type")?.is_some() || length.is_some_and(|l| l != "0"))
}

/// Every `/docs` route: the socket (`GET …/docs/{doc}` with an upgrade) or a
/// REST call, forwarded with the caller's identity; the object checks the
/// role each operation needs.
pub async fn docs(
    ctx: &Ctx,
    mut req: Request,
    room_id: &str,
    rest: &[&str],
) -> HttpResult<Response> {
    let sub = rest.join("/");
    if rest.len() == 1 && req.method() == Method::Get && is_upgrade(&req)? {
        return upgrade(ctx, &req, room_id, &format!("/docs/{sub}/ws")).await;
    }
    let user_id = authenticate(ctx, &req).await?;
    let headers = identity_headers(ctx, room_id, &user_id).await?;
    let url = req.url()?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let body = match (req.method(), rest.last()) {
        (Method::Post, Some(&"updates")) => Some(
            crate::ctx::read_body_as(&mut req, "application/octet-stream", DOC_UPDATE_LIMIT)
                .await?,
        ),
        // A restore with no body restores every root.
        (Method::Post, Some(&"restore")) if !has_body(&req)? => None,
        (Method::Post, _) => Some(crate::ctx::read_body(&mut req).await?),
        _ => None,
    };
    let path = if sub.is_empty() {
        "/docs".to_string()
    } else {
        format!("/docs/{sub}{query}")
    };
    room_client::call(&ctx.env, room_id, req.method(), &path, headers, body).await
}

pub async fn list_messages(ctx: &Ctx, req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let headers = identity_headers(ctx, room_id, &user_id).await?;
    let url = req.url()?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    room_client::call(
        &ctx.env,
        room_id,
        Method::Get,
        &format!("/messages{query}"),
        headers,
        None,
    )
    .await
}

pub async fn get_message(ctx: &Ctx, req: Request, room_id: &str, id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let headers = identity_headers(ctx, room_id, &user_id).await?;
    room_client::call(
        &ctx.env,
        room_id,
        Method::Get,
        &format!("/messages/{id}"),
        headers,
        None,
    )
    .await
}

/// Server-side senders (integrations, the AI) post with an `Idempotency-Key`.
pub async fn post_message(ctx: &Ctx, mut req: Request, room_id: &str) -> HttpResult<Response> {
    let user_id = authenticate(ctx, &req).await?;
    let headers = identity_headers(ctx, room_id, &user_id).await?;
    let key = req
        .headers()
        .get("idempotency-key")?
        .ok_or_else(|| ApiError::invalid("the Idempotency-Key header is required"))?;
    headers.set("idempotency-key", &key)?;
    let body = crate::ctx::read_body(&mut req).await?;
    room_client::call(
        &ctx.env,
        room_id,
        Method::Post,
        "/messages",
        headers,
        Some(body),
    )
    .await
}

/// Tells the room about a membership change (see `MemberNotice`).
pub async fn member_changed(ctx: &Ctx, room_id: &str, notice: MemberNotice) -> HttpResult<()> {
    let _: serde_json::Value =
        room_client::call_room(&ctx.env, room_id, &RoomCall::Member(notice)).await?;
    Ok(())
}

/// Closes the room's sockets and erases its object storage.
pub async fn purge(env: &worker::Env, room_id: &str) -> HttpResult<()> {
    let _: serde_json::Value = room_client::call_room(env, room_id, &RoomCall::Purge).await?;
    Ok(())
}

/// Where `user_id` stands in a room's chat. A room that cannot answer gets
/// an unknown state (nulls) rather than failing a whole rooms list.
pub async fn read_state(ctx: &Ctx, room_id: &str, user_id: &str) -> ReadState {
    let user = user_id.to_string();
    room_client::call_room(&ctx.env, room_id, &RoomCall::Unread { user })
        .await
        .unwrap_or_default()
}
