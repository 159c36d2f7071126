//! The room's part of ending sessions (`crate::sessions`): its sockets are
//! document sockets, whose `u:` tag names their person, and chat sockets,
//! whose attachment does.

use super::{socket_tags, RoomDO};
use crate::sessions::{close_ended, EndSessions};
use serde::Deserialize;
use worker::{State, WebSocket};

/// The person a socket belongs to.
fn owner(state: &State, ws: &WebSocket) -> Option<String> {
    #[derive(Deserialize)]
    struct Owner {
        user_id: String,
    }
    if let Some(user) = socket_tags(state, ws).value("u:") {
        return Some(user.to_string());
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
            owner(&self.state, ws).as_deref() == Some(end.user_id.as_str())
        })
    }
}
