//! The client side of a room's object: how the Worker and the other objects
//! call it (each call names the room; typed calls are `RoomCall`s; answers
//! other than 2xx are our own bugs, so they become internal errors).

use crate::http::{call_object, HttpResult};
use tessera_core::room::{EndSessions, RoomCall};
use tessera_core::ApiError;
use worker::{Env, Headers, Method, Response};

/// Calls a room's object (from the Worker or another object). `path` includes
/// any query string.
pub async fn call(
    env: &Env,
    room_id: &str,
    method: Method,
    path: &str,
    headers: Headers,
    body: Option<Vec<u8>>,
) -> HttpResult<Response> {
    let stub = env
        .durable_object("ROOMS")?
        .id_from_name(room_id)?
        .get_stub()?;
    // Every call names the room, so the object knows which one it is.
    headers.set("x-tessera-room", room_id)?;
    let body = body.map(|b| js_sys::Uint8Array::from(b.as_slice()).into());
    call_object(stub, method, path, headers, body).await
}

/// Makes a typed call to a room's object and reads its JSON answer.
pub async fn call_room<T: serde::de::DeserializeOwned>(
    env: &Env,
    room_id: &str,
    call: &RoomCall,
) -> HttpResult<T> {
    let body = serde_json::to_value(call)?;
    call_json(
        env,
        room_id,
        Method::Post,
        "/call",
        Headers::new(),
        Some(&body),
    )
    .await
}

/// Tells a room something as JSON at `path` (announcements from other objects).
pub async fn tell(
    env: &Env,
    room_id: &str,
    path: &str,
    body: &serde_json::Value,
) -> HttpResult<()> {
    let _: serde_json::Value =
        call_json(env, room_id, Method::Post, path, Headers::new(), Some(body)).await?;
    Ok(())
}

/// Calls a room with an optional JSON body and reads its JSON answer; any
/// answer but 2xx is an internal error (these calls come from our own code).
pub async fn call_json<T: serde::de::DeserializeOwned>(
    env: &Env,
    room_id: &str,
    method: Method,
    path: &str,
    headers: Headers,
    body: Option<&serde_json::Value>,
) -> HttpResult<T> {
    let body = body.map(serde_json::to_vec).transpose()?;
    let mut resp = call(env, room_id, method, path, headers, body).await?;
    if resp.status_code() >= 300 {
        let detail = resp.text().await.unwrap_or_default();
        return Err(ApiError::Internal(format!(
            "room {path} answered {}: {detail}",
            resp.status_code()
        ))
        .into());
    }
    Ok(resp.json().await?)
}

/// Tells a room to close the sockets of ended sessions.
pub async fn end_sessions(env: &Env, room_id: &str, end: &EndSessions) -> HttpResult<()> {
    let _: serde_json::Value = call_room(env, room_id, &RoomCall::EndSessions(end.clone())).await?;
    Ok(())
}
