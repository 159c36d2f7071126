//! Sessions in the room object. Every socket is tagged with the session that
//! opened it (`s:<sid>`, from the `x-tessera-session-id` header the Worker
//! sets), so the sockets of a signed-out session are found by tag, without
//! reading attachments, and closed with `CLOSE_SESSION_ENDED`: chat and
//! document sockets alike, and across hibernation (tags are the platform's).
//! Signing out everywhere closes every socket of the person, found by the
//! `user_id` that both kinds of socket attachment carry; that also reaches
//! sockets opened with an external provider's token, which have no session.

use crate::http::HttpResult;
use crate::room::{self, RoomDO};
use serde::Deserialize;
use tessera_core::ids::is_valid_path_param;
pub use tessera_core::room::EndSessions;
use tessera_core::room::RoomCall;
use worker::{Env, Request, WebSocket};

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
        let sockets: Vec<WebSocket> = match &end.session {
            Some(sid) => self.state.get_websockets_with_tag(&format!("s:{sid}")),
            None => self
                .state
                .get_websockets()
                .into_iter()
                .filter(|ws| owner(ws).as_deref() == Some(end.user_id.as_str()))
                .collect(),
        };
        for ws in &sockets {
            // A socket that is already closing is on its way out anyway.
            let _ = ws.close(Some(CLOSE_SESSION_ENDED), Some("signed out"));
        }
        sockets.len()
    }
}
