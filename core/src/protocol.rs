//! The room socket's JSON protocol (documented with examples in
//! `docs/protocol.md`): every frame a client may send and every frame the server
//! sends, and the parsing that turns untrusted text into a typed frame or a clear
//! error.

use crate::files::FileRef;
use crate::rooms::Role;
use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        client_msg_id: String,
        body: String,
        #[serde(default)]
        reply_to: Option<u64>,
        #[serde(default)]
        attachments: Vec<String>,
    },
    Edit {
        id: u64,
        body: String,
    },
    Delete {
        id: u64,
    },
    React {
        id: u64,
        emoji: String,
    },
    Unreact {
        id: u64,
        emoji: String,
    },
    Typing {},
    Presence {
        status: Status,
    },
    Read {
        seq: u64,
    },
    Ping {
        #[serde(default)]
        nonce: Option<String>,
    },
}

impl ClientFrame {
    /// Frames that change the room count against the sender's rate limit.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            ClientFrame::Send { .. }
                | ClientFrame::Edit { .. }
                | ClientFrame::Delete { .. }
                | ClientFrame::React { .. }
                | ClientFrame::Unreact { .. }
        )
    }

    /// Frames that tell the room about the sender (typing, presence, read
    /// markers): limited apart from writes, and broadcast only when they change
    /// something.
    pub fn is_signal(&self) -> bool {
        matches!(
            self,
            ClientFrame::Typing {} | ClientFrame::Presence { .. } | ClientFrame::Read { .. }
        )
    }
}

/// Parses one text frame. Oversized frames, invalid JSON, unknown types and bad
/// fields are all errors the sender is told about.
pub fn parse_client_frame(text: &str, frame_limit: usize) -> Result<ClientFrame, ApiError> {
    if text.len() > frame_limit {
        return Err(ApiError::PayloadTooLarge { limit: frame_limit });
    }
    serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid(format!("invalid frame: {e}")),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Away,
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub display_name: String,
    pub role: Role,
}

impl Identity {
    /// The form in which the Worker hands an identity to a room object: base64url
    /// JSON, so display names in any script survive an HTTP header.
    pub fn to_header(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn from_header(value: &str) -> Option<Self> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(value).ok()?).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    pub user_id: String,
    pub display_name: String,
    pub status: Status,
    /// Unix milliseconds of the person's last activity.
    pub last_seen: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingEntry {
    pub user_id: String,
    pub display_name: String,
    /// Unix milliseconds after which the entry no longer counts.
    pub until: u64,
}

/// A chat message as clients see it: the stored message, its `seq` (equal to
/// its id: the seq of the event that created it) and its reactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    #[serde(flatten)]
    pub message: StoredMessage,
    pub seq: u64,
    /// emoji → user ids who reacted with it.
    pub reactions: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello {
        room: String,
        you: Identity,
        head_seq: u64,
        /// The caller's read marker.
        read_seq: u64,
        /// The other people's markers, the furthest first (at most
        /// `chat::HELLO_READS_MAX`), for "seen by" after a reload.
        reads: Vec<ReadMarker>,
        presence: Vec<PresenceEntry>,
        typing: Vec<TypingEntry>,
    },
    Ack {
        client_msg_id: String,
        id: u64,
        seq: u64,
        /// True when this is the original ack of an earlier send with the same id.
        duplicate: bool,
    },
    Message {
        seq: u64,
        message: MessageView,
    },
    MessageEdited {
        seq: u64,
        id: u64,
        body: String,
        mentions: Vec<String>,
        edited_at: u64,
    },
    MessageDeleted {
        seq: u64,
        id: u64,
        deleted_by: String,
    },
    Reaction {
        seq: u64,
        id: u64,
        emoji: String,
        user_id: String,
        added: bool,
    },
    Typing {
        users: Vec<TypingEntry>,
    },
    Presence {
        users: Vec<PresenceEntry>,
    },
    Read {
        user_id: String,
        seq: u64,
    },
    /// A generic envelope for the other parts of the product (files, jobs,
    /// actions, documents, the AI).
    Event {
        event: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        data: serde_json::Value,
    },
    Error {
        code: String,
        message: String,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<f64>,
    },
    Resync {
        head_seq: u64,
        oldest_seq: u64,
    },
    Pong {
        nonce: Option<String>,
        at: u64,
    },
}

impl ServerFrame {
    pub fn error(e: &ApiError, reference: Option<String>) -> Self {
        let retry_after = match e {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs as f64),
            _ => None,
        };
        ServerFrame::Error {
            code: e.code().to_string(),
            message: e.to_string(),
            reference,
            retry_after,
        }
    }

    /// The sequence number of frames that belong to the replayable event stream.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerFrame::Message { seq, .. }
            | ServerFrame::MessageEdited { seq, .. }
            | ServerFrame::MessageDeleted { seq, .. }
            | ServerFrame::Reaction { seq, .. } => Some(*seq),
            ServerFrame::Event { seq, .. } => *seq,
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail: no maps with non-string keys.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The stored form of a message (reactions live apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub id: u64,
    pub author: String,
    pub author_name: String,
    pub client_msg_id: String,
    pub body: String,
    pub reply_to: Option<u64>,
    /// User ids of the people mentioned (and `"ai"` for the AI teammate).
    pub mentions: Vec<String>,
    /// Files of this room, as they were when the message was sent.
    pub attachments: Vec<FileRef>,
    /// Unix milliseconds.
    pub created_at: u64,
    pub edited_at: Option<u64>,
    pub deleted: bool,
}

impl StoredMessage {
    /// The message as clients see it. A deleted message is a tombstone: its
    /// id, author and time, `deleted: true`, and nothing of what it said.
    pub fn view(&self, reactions: BTreeMap<String, Vec<String>>) -> MessageView {
        MessageView {
            message: self.clone(),
            seq: self.id,
            reactions: if self.deleted {
                BTreeMap::new()
            } else {
                reactions
            },
        }
    }
}

/// Someone's read marker: every event up to `seq` has been seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarker {
    pub user_id: String,
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        let frames = [
            r#"{"type":"send","client_msg_id":"c1","body":"hi"}"#,
            r#"{"type":"send","client_msg_id":"c1","body":"hi","reply_to":3,"attachments":["f"]}"#,
            r#"{"type":"edit","id":1,"body":"x"}"#,
            r#"{"type":"delete","id":1}"#,
            r#"{"type":"react","id":1,"emoji":"👍"}"#,
            r#"{"type":"unreact","id":1,"emoji":"👍"}"#,
            r#"{"type":"typing"}"#,
            r#"{"type":"presence","status":"away"}"#,
            r#"{"type":"read","seq":4}"#,
            r#"{"type":"ping"}"#,
        ];
        for f in frames {
            assert!(parse_client_frame(f, 1024).is_ok(), "{f}");
        }
    }

    #[test]
    fn refuses_bad_frames_with_codes() {
        let cases = [
            ("{", "malformed_json"),
            ("[]", "invalid_input"),
            (r#"{"type":"shout"}"#, "invalid_input"),
            (r#"{"type":"send","body":"x"}"#, "invalid_input"),
            (
                r#"{"type":"send","client_msg_id":"a","body":"x","evil":1}"#,
                "invalid_input",
            ),
            (r#"{"type":"read","seq":-1}"#, "invalid_input"),
        ];
        for (f, code) in cases {
            assert_eq!(parse_client_frame(f, 1024).unwrap_err().code(), code, "{f}");
        }
        let big = format!(r#"{{"type":"ping","nonce":"{}"}}"#, "x".repeat(2000));
        assert_eq!(
            parse_client_frame(&big, 1024).unwrap_err().code(),
            "payload_too_large"
        );
    }

    #[test]
    fn identities_survive_headers() {
        let who = Identity {
            user_id: "u1".into(),
            display_name: "Zoë 李 🚀".into(),
            role: Role::Admin,
        };
        let h = who.to_header();
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Identity::from_header(&h), Some(who));
        assert_eq!(Identity::from_header("!!"), None);
    }

    #[test]
    fn server_frames_are_tagged() {
        let f = ServerFrame::Read {
            user_id: "u".into(),
            seq: 3,
        };
        assert_eq!(f.to_json(), r#"{"type":"read","user_id":"u","seq":3}"#);
        let e = ServerFrame::error(
            &ApiError::RateLimited {
                retry_after_secs: 1,
            },
            Some("c1".into()),
        );
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["code"], "rate_limited");
        assert_eq!(v["ref"], "c1");
        assert_eq!(v["retry_after"], 1.0);
    }
}
