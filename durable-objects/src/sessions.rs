//! Sessions in the objects that hold sockets: rooms (chat and document
//! sockets) and the person's object (`/api/v1/me/ws`). Every socket is tagged
//! with the session that opened it (`s:<sid>`, from the `x-tessera-session-id`
//! header the Worker sets; for an API key, the key's id), so the sockets of a
//! signed-out session or revoked key are found by tag, without reading
//! attachments, and closed with `CLOSE_SESSION_ENDED`, across hibernation
//! (tags are the platform's). Signing out everywhere closes every socket of
//! the person: in a room those whose attachment names them (that also reaches
//! sockets opened with an external provider's token, which have no session),
//! in the person's object all of them. `close_ended` does both. How both
//! objects answer a peer's close (`answer_close`) is here too.

use crate::http::HttpResult;
use tessera_core::ids::is_valid_path_param;
pub use tessera_core::room::EndSessions;
use worker::{Request, State, WebSocket};

/// Close code for the sockets of a session that ended (sign-out, password
/// change, stolen refresh token): the client must sign in again.
pub const CLOSE_SESSION_ENDED: u16 = 4001;
/// The Worker names the session of a socket upgrade in this header.
pub const SESSION_ID_HEADER: &str = "x-tessera-session-id";

/// The person's object's path for ending sessions (answered with [`close_ended`]).
pub(crate) const END_PATH: &str = "/sessions/end";

/// Answers a peer's close frame with one of ours, which completes the closing
/// handshake (the peer may already be gone; a code outside the range a close
/// frame may carry is answered with the nearest one that is).
pub(crate) fn answer_close(ws: &WebSocket, code: usize, reason: String) {
    let _ = ws.close(Some(code.clamp(1000, 4999) as u16), Some(reason));
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
