//! Sessions in the objects that hold sockets: rooms (chat and document
//! sockets) and the person's object (`/api/v1/me/ws`). Every socket is tagged
//! with the session that opened it (`s:<sid>`, from the `x-tessera-session-id`
//! header the Worker sets; for an API key, the key's id), so the sockets of a
//! signed-out session or revoked key are found by tag, without reading
//! attachments, and closed with `CLOSE_SESSION_ENDED`, across hibernation
//! (tags are the platform's). Signing out everywhere closes every socket of
//! the person: in a room those whose attachment names them (that also reaches
//! sockets opened with an external provider's token, which have no session),
//! in the person's object all of them. [`close_ended`] does both.

use crate::http::HttpResult;
use crate::person;
use crate::room::{self, RoomDO};
use serde::Deserialize;
use tessera_core::ids::is_valid_path_param;
pub use tessera_core::room::EndSessions;
use tessera_core::room::RoomCall;
use tessera_core::ApiError;
use worker::{Env, Method, Request, State, WebSocket};

/// Close code for the sockets of a session that ended (sign-out, password
/// change, stolen refresh token): the client must sign in again.
pub const CLOSE_SESSION_ENDED: u16 = 4001;
/// The Worker names the session of a socket upgrade in this header.
pub const SESSION_ID_HEADER: &str = "x-tessera-session-id";

/// Tells a room to close the sockets of ended sessions.
pub async fn end_in_room(env: &Env, room_id: &str, end: &EndSessions) -> HttpResult<()> {
    let _: serde_json::Value =
        room::call_room(env, room_id, &RoomCall::EndSessions(end.clone())).await?;
    Ok(())
}

/// The person's object's path for ending sessions (answered with [`close_ended`]).
pub(crate) const END_PATH: &str = "/sessions/end";

/// Tells the person's object to close their `/me` sockets of ended sessions.
pub async fn end_for_person(env: &Env, end: &EndSessions) -> HttpResult<()> {
    let body = serde_json::to_vec(end)?;
    let resp = person::call(env, &end.user_id, Method::Post, END_PATH, Some(body)).await?;
    if resp.status_code() >= 300 {
        return Err(ApiError::Internal(format!(
            "the person's object answered {} to ending sessions",
            resp.status_code()
        ))
        .into());
    }
    Ok(())
}

/// The sessions to end, from the body of an [`END_PATH`] call.
pub(crate) fn parse_end(body: &[u8]) -> HttpResult<EndSessions> {
    Ok(tessera_core::api::parse_json(body, 4096)?)
}

/// Closes the sockets of `state` that ended sessions held; how many. With
/// no session named, every socket `owned` says is the person's.
pub(crate) fn close_ended(
    state: &State,
    end: &EndSessions,
    owned: impl Fn(&WebSocket) -> bool,
) -> usize {
    let sockets: Vec<WebSocket> = match &end.session {
        Some(sid) => state.get_websockets_with_tag(&format!("s:{sid}")),
        None => state.get_websockets().into_iter().filter(owned).collect(),
    };
    for ws in &sockets {
        // A socket that is already closing is on its way out anyway.
        let _ = ws.close(Some(CLOSE_SESSION_ENDED), Some("signed out"));
    }
    sockets.len()
}

/// The tag of a socket opened by this request's session, if it has one.
pub(crate) fn session_tag(req: &Request) -> HttpResult<Option<String>> {
    Ok(req
        .headers()
        .get(SESSION_ID_HEADER)?
        .filter(|s| is_valid_path_param(s))
        .map(|s| format!("s:{s}")))
}

/// The person a socket belongs to, from its attachment (chat or document).
fn owner(ws: &WebSocket) -> Option<String> {
    #[derive(Deserialize)]
    struct Owner {
        user_id: String,
    }
    ws.deserialize_attachment::<Owner>()
        .ok()
        .flatten()
        .map(|o| o.user_id)
}

impl RoomDO {
    /// Closes the sockets of ended sessions; how many.
    pub(crate) fn end_sessions(&self, end: &EndSessions) -> usize {
        close_ended(&self.state, end, |ws| {
            owner(ws).as_deref() == Some(end.user_id.as_str())
        })
    }
}
