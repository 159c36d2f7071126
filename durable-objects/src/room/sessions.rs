//! The room's part of ending sessions (`crate::sessions`): its sockets are
//! chat and document sockets, whose attachments name their person.

use super::RoomDO;
use crate::sessions::{close_ended, EndSessions};
use serde::Deserialize;
use worker::WebSocket;

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
