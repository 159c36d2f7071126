//! The notification queue's messages (`NOTIFY`, apart from the AI's `JOBS`):
//! one webhook delivery attempt, one email, one daily digest. Each is safe to repeat: a
//! delivery carries its message id (receivers deduplicate by it), an email
//! its key (the mail log and the provider refuse a second).

use super::email::DigestRoom;
use super::inbox::NewItem;
use super::webhooks::EventType;
use serde::{Deserialize, Serialize};

/// The queue's name, as the consumer tells it apart from the AI queue.
pub const QUEUE: &str = "tessera-notify";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Job {
    /// Attempt number `attempt` (1-based) of delivering `body` to a hook.
    Deliver {
        hook_id: String,
        room_id: String,
        msg_id: String,
        event: EventType,
        body: String,
        attempt: u32,
    },
    /// An inbox item that stayed unseen: email it (if still wanted).
    Email {
        user_id: String,
        item_id: u64,
        item: NewItem,
    },
    /// The day's digest of a person's unread items, by room (names are
    /// looked up when the email is written).
    Digest {
        user_id: String,
        day: String,
        rooms: Vec<DigestRoom>,
    },
}

/// A delivery's message id: one per room event, the same for every attempt
/// and every hook (`msg_<room>_<what>`).
pub fn message_id(room_id: &str, what: &str) -> String {
    format!("msg_{room_id}_{what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_tagged_json() {
        let j = Job::Deliver {
            hook_id: "h".into(),
            room_id: "r".into(),
            msg_id: message_id("r", "7"),
            event: EventType::MessagePosted,
            body: "{}".into(),
            attempt: 1,
        };
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["task"], "deliver");
        assert_eq!(v["event"], "message.posted");
        assert_eq!(v["msg_id"], "msg_r_7");
        assert_eq!(serde_json::from_value::<Job>(v).unwrap(), j);
    }
}
