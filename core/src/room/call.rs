//! The calls the Worker and the other objects make to a room's object, as one
//! typed enum: the caller serialises a [`RoomCall`], the object matches it
//! exhaustively, so a call without a handler does not compile and neither
//! side builds a path or a body by hand. Client requests the Worker forwards
//! (sockets, history, documents) keep their REST paths: their routes are
//! `api::ROUTES`.

use crate::files::FileRef;
use crate::rooms::MemberNotice;
use serde::{Deserialize, Serialize};

/// What a room is told when sessions end: one session of `user_id`, or all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSessions {
    pub user_id: String,
    pub session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum RoomCall {
    /// A membership changed (answers `{"ok": true}`).
    Member(MemberNotice),
    /// The room is deleted: its sockets close and its storage is erased.
    Purge,
    /// An upload finished; announcements may repeat.
    FileAdded {
        file: FileRef,
        uploader: String,
    },
    FileRemoved {
        id: String,
    },
    /// An event that is broadcast but not kept for replay (progress).
    Ephemeral {
        event: String,
        data: serde_json::Value,
    },
    /// Sessions ended: their sockets close (answers `{"closed": n}`).
    EndSessions(EndSessions),
    /// Where `user` stands in the room's chat (answers a `chat::ReadState`).
    Unread {
        user: String,
    },
    /// Whether the room is archived, and so takes no writes (answers an
    /// [`ArchivedAnswer`]): asked before an upload starts.
    Archived,
}

/// A room's answer to [`RoomCall::Archived`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedAnswer {
    pub archived: bool,
}

/// The largest call body a room accepts.
pub const ROOM_CALL_BYTES_MAX: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::Role;
    use serde_json::json;

    #[test]
    fn calls_are_tagged_json_both_ways() {
        let calls = [
            RoomCall::Member(MemberNotice {
                user_id: "u1".into(),
                role: Some(Role::Viewer),
                joined: false,
            }),
            RoomCall::Purge,
            RoomCall::FileRemoved { id: "f1".into() },
            RoomCall::Ephemeral {
                event: "job_progress".into(),
                data: json!({ "progress": 50 }),
            },
            RoomCall::EndSessions(EndSessions {
                user_id: "u1".into(),
                session: None,
            }),
            RoomCall::Unread { user: "u1".into() },
        ];
        for call in calls {
            let text = serde_json::to_string(&call).unwrap();
            assert_eq!(serde_json::from_str::<RoomCall>(&text).unwrap(), call);
        }
        assert_eq!(
            serde_json::to_value(RoomCall::Member(MemberNotice {
                user_id: "u1".into(),
                role: None,
                joined: false,
            }))
            .unwrap(),
            json!({ "call": "member", "user_id": "u1", "role": null, "joined": false })
        );
        assert!(serde_json::from_str::<RoomCall>(r#"{"call":"nope"}"#).is_err());
    }
}
