//! A person's inbox, across rooms: the kinds of item, what an item says, how
//! long it is kept, the per-room counts shown as badges, and the frames of
//! the per-person socket (`/api/v1/me/ws`).

use serde::{Deserialize, Serialize};

/// Items are kept this long (then dropped by the person's object).
pub const RETENTION_MS: u64 = 90 * 24 * 3600 * 1000;
/// The longest excerpt of a message kept in an item.
pub const EXCERPT_CHARS: usize = 280;
/// Items per inbox page.
pub const PAGE_MAX: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Someone named the person in a message.
    Mention,
    /// Someone answered one of the person's messages.
    Reply,
    /// A protected action waits for an owner's decision (to every owner).
    ApprovalRequested,
    /// A request the person made was approved, rejected or expired.
    ApprovalDecided,
    /// A job the person started (a file analysis) finished.
    JobFinished,
    /// The daily digest of the person's rooms.
    Digest,
    /// An outgoing webhook of a room the person administers was disabled.
    WebhookDisabled,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mention => "mention",
            Self::Reply => "reply",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalDecided => "approval_decided",
            Self::JobFinished => "job_finished",
            Self::Digest => "digest",
            Self::WebhookDisabled => "webhook_disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Work addressed to the person (not chatter): delivered even from a
    /// muted room.
    pub const fn is_personal(self) -> bool {
        matches!(
            self,
            Self::ApprovalRequested
                | Self::ApprovalDecided
                | Self::JobFinished
                | Self::WebhookDisabled
        )
    }

    /// Kinds worth an email when not seen in time.
    pub const fn emails_when_unseen(self) -> bool {
        matches!(self, Self::Mention | Self::ApprovalRequested)
    }

    /// Kinds that count as mentions on the room's badge.
    pub const fn counts_as_mention(self) -> bool {
        matches!(self, Self::Mention | Self::Reply)
    }
}

/// An item as a room (or the Worker) hands it to a person's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub kind: Kind,
    pub room_id: String,
    /// What the item is about in its room: a message's seq, an approval's or
    /// a job's id, a day.
    pub subject: String,
    /// Who caused it (a user id), if anyone.
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub actor_name: Option<String>,
    /// A short text: the message's excerpt, the action asked for.
    pub text: String,
    /// Unix milliseconds.
    pub at: u64,
}

impl NewItem {
    /// One event gives at most one item per person and kind: a fan-out that is
    /// repeated (a retry) lands once, and an email is sent once per key.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.kind.as_str(), self.room_id, self.subject)
    }

    /// Where the app opens the item: the room, at the message when there is one.
    pub fn link(&self) -> String {
        match self.kind {
            Kind::Mention | Kind::Reply => {
                format!("/rooms/{}?message={}", self.room_id, self.subject)
            }
            _ => format!("/rooms/{}", self.room_id),
        }
    }

    /// Bad input from a caller: sizes bounded, ids of the path grammar.
    pub fn validate(&self) -> Result<(), crate::ApiError> {
        use crate::ids::is_valid_path_param;
        if !is_valid_path_param(&self.room_id) || !is_valid_path_param(&self.subject) {
            return Err(crate::ApiError::invalid("room_id and subject must be ids"));
        }
        if self.text.chars().count() > EXCERPT_CHARS + 1 {
            return Err(crate::ApiError::invalid("text is too long"));
        }
        Ok(())
    }
}

/// An item as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: u64,
    #[serde(flatten)]
    pub item: NewItem,
    pub link: String,
    pub read: bool,
}

/// The first `EXCERPT_CHARS` characters of a body, on one line, with an
/// ellipsis when cut.
pub fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(EXCERPT_CHARS).collect();
    cut.push('…');
    cut
}

/// Items created before this time are dropped.
pub fn expired_before(now_ms: u64) -> u64 {
    now_ms.saturating_sub(RETENTION_MS)
}

/// A room's badge: unread messages (from the room) and unread mentions
/// (the person's unread items of that room that count as mentions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub unread: u64,
    pub mentions: u64,
}

/// Frames of the per-person socket, server to client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MeFrame {
    /// First frame: unread items and each room's counts.
    Hello {
        unread_items: u64,
        rooms: std::collections::BTreeMap<String, Counts>,
    },
    /// A new inbox item.
    Item {
        item: Item,
        unread_items: u64,
    },
    /// A room's counts changed.
    Counts {
        room_id: String,
        counts: Counts,
    },
    /// Items were marked read (`all` for mark-all-read).
    Read {
        ids: Vec<u64>,
        all: bool,
        unread_items: u64,
    },
    Pong {
        nonce: Option<String>,
    },
    Error {
        code: String,
        message: String,
    },
}

impl MeFrame {
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What a client may send on the per-person socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MeClientFrame {
    Ping {
        #[serde(default)]
        nonce: Option<String>,
    },
    /// Marks items read (an empty list with `all` marks every item read).
    Read {
        #[serde(default)]
        ids: Vec<u64>,
        #[serde(default)]
        all: bool,
    },
}

/// Largest client frame on the per-person socket.
pub const ME_FRAME_MAX: usize = 4096;
/// Ids per mark-read request.
pub const READ_IDS_MAX: usize = 200;

pub fn parse_me_frame(text: &str) -> Result<MeClientFrame, crate::ApiError> {
    let frame: MeClientFrame = crate::api::parse_json(text.as_bytes(), ME_FRAME_MAX)?;
    if let MeClientFrame::Read { ids, .. } = &frame {
        if ids.len() > READ_IDS_MAX {
            return Err(crate::ApiError::invalid(format!(
                "at most {READ_IDS_MAX} ids at once"
            )));
        }
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: Kind) -> NewItem {
        NewItem {
            kind,
            room_id: "r1".into(),
            subject: "7".into(),
            actor: Some("u1".into()),
            actor_name: Some("Ada".into()),
            text: "hi".into(),
            at: 1,
        }
    }

    #[test]
    fn one_key_per_event_and_kind() {
        assert_eq!(item(Kind::Mention).key(), "mention:r1:7");
        assert_ne!(item(Kind::Mention).key(), item(Kind::Reply).key());
        assert_eq!(item(Kind::Reply).link(), "/rooms/r1?message=7");
        assert_eq!(item(Kind::ApprovalRequested).link(), "/rooms/r1");
    }

    #[test]
    fn kinds_round_trip_and_classify() {
        for k in [
            Kind::Mention,
            Kind::Reply,
            Kind::ApprovalRequested,
            Kind::ApprovalDecided,
            Kind::JobFinished,
            Kind::Digest,
            Kind::WebhookDisabled,
        ] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("nope"), None);
        assert!(Kind::ApprovalRequested.is_personal());
        assert!(!Kind::Mention.is_personal());
        assert!(Kind::Mention.emails_when_unseen());
        assert!(!Kind::Reply.emails_when_unseen());
    }

    #[test]
    fn excerpts_are_one_bounded_line() {
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        let long = "x".repeat(1000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        let mut it = item(Kind::Mention);
        it.text = e;
        assert!(it.validate().is_ok());
        it.text = long;
        assert!(it.validate().is_err());
        it.text = "ok".into();
        it.room_id = "a/b".into();
        assert!(it.validate().is_err());
    }

    #[test]
    fn retention_is_ninety_days() {
        let day = 24 * 3600 * 1000;
        assert_eq!(expired_before(100 * day), 10 * day);
        assert_eq!(expired_before(5), 0);
    }

    #[test]
    fn socket_frames() {
        assert_eq!(
            parse_me_frame(r#"{"type":"read","all":true}"#).unwrap(),
            MeClientFrame::Read {
                ids: vec![],
                all: true
            }
        );
        assert!(parse_me_frame(r#"{"type":"read","ids":[1],"x":1}"#).is_err());
        let many: Vec<u64> = (0..201).collect();
        let f = serde_json::json!({"type": "read", "ids": many}).to_string();
        assert!(parse_me_frame(&f).is_err());
        let hello = MeFrame::Hello {
            unread_items: 2,
            rooms: [(
                "r1".to_string(),
                Counts {
                    unread: 3,
                    mentions: 1,
                },
            )]
            .into(),
        };
        let v: serde_json::Value = serde_json::from_str(&hello.to_json()).unwrap();
        assert_eq!(v["type"], "hello");
        assert_eq!(v["rooms"]["r1"]["mentions"], 1);
    }
}
