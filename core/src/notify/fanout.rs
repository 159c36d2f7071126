//! The fan-out plan: which people's inboxes one room event reaches, and the
//! bound that keeps a message's cost independent of the room's size.
//!
//! A message reaches only the people it names — its mentions and the author
//! of the message it answers — never every member: a room of 1,000 members
//! costs per message what a room of 3 does. At most [`FANOUT_MAX`] people
//! per event; the rest of a longer list of mentions are not notified (the
//! message is still in the room for them). Approval requests go to the
//! room's owners (at most [`FANOUT_MAX`] of them), outcomes to the one
//! person who asked, finished jobs to who started them.

use super::inbox::{excerpt, Kind, NewItem};
use crate::ai::analysis::JobStatus;
use crate::chat::StoredMessage;
use serde_json::Value;

/// People one event may notify.
pub const FANOUT_MAX: usize = 50;
/// The AI teammate's id in mentions: it has no inbox.
const AI_ID: &str = "ai";

/// One person to tell, with the item to put in their inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub user_id: String,
    pub item: NewItem,
}

/// The people a new message notifies: each mentioned person once (as a
/// mention), the author of the message it answers (as a reply, unless also
/// mentioned), never its own author, never the AI; at most [`FANOUT_MAX`].
pub fn for_message(
    room_id: &str,
    m: &StoredMessage,
    replied_author: Option<&str>,
) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    let item = |kind| NewItem {
        kind,
        room_id: room_id.to_string(),
        subject: m.id.to_string(),
        actor: Some(m.author.clone()),
        actor_name: Some(m.author_name.clone()),
        text: excerpt(&m.body),
        at: m.created_at,
    };
    let named = m
        .mentions
        .iter()
        .map(|u| (u.as_str(), Kind::Mention))
        .chain(replied_author.map(|u| (u, Kind::Reply)));
    for (user, kind) in named {
        if out.len() >= FANOUT_MAX {
            break;
        }
        if user == m.author || user == AI_ID || out.iter().any(|d| d.user_id == user) {
            continue;
        }
        out.push(Delivery {
            user_id: user.to_string(),
            item: item(kind),
        });
    }
    out
}

/// Whom a recorded room event notifies. `owners` is asked for only when an
/// event needs it (approval requests).
pub fn for_event(
    room_id: &str,
    event: &str,
    data: &Value,
    at_ms: u64,
    owners: impl FnOnce() -> Vec<String>,
) -> Vec<Delivery> {
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let item = |kind, subject: String, actor: Option<String>, text: String| NewItem {
        kind,
        room_id: room_id.to_string(),
        subject,
        actor,
        actor_name: None,
        text: excerpt(&text),
        at: at_ms,
    };
    match event {
        "approval_requested" => {
            let a = &data["approval"];
            let (Some(id), Some(action)) = (str_of(a, "id"), str_of(a, "action")) else {
                return Vec::new();
            };
            let by = str_of(a, "requested_by");
            let text = match str_of(a, "reason") {
                Some(r) => format!("{action}: {r}"),
                None => action,
            };
            owners()
                .into_iter()
                .filter(|o| Some(o) != by.as_ref())
                .take(FANOUT_MAX)
                .map(|user_id| Delivery {
                    user_id,
                    item: item(
                        Kind::ApprovalRequested,
                        id.clone(),
                        by.clone(),
                        text.clone(),
                    ),
                })
                .collect()
        }
        "approval_resolved" => {
            let a = &data["approval"];
            let (Some(id), Some(action), Some(status)) =
                (str_of(a, "id"), str_of(a, "action"), str_of(a, "status"))
            else {
                return Vec::new();
            };
            if str_of(a, "requested_kind").as_deref() != Some("user") {
                return Vec::new();
            }
            let Some(requester) = str_of(a, "requested_by") else {
                return Vec::new();
            };
            let resolver = str_of(a, "resolved_by");
            vec![Delivery {
                user_id: requester,
                item: item(
                    Kind::ApprovalDecided,
                    id,
                    resolver,
                    format!("{action}: {status}"),
                ),
            }]
        }
        "job_done" => {
            let j = &data["job"];
            let (Some(id), Some(by), Some(status)) = (
                str_of(j, "id"),
                str_of(j, "created_by"),
                str_of(j, "status"),
            ) else {
                return Vec::new();
            };
            let text = match str_of(j, "error") {
                Some(e) if status == JobStatus::Failed.as_str() => format!("analysis failed: {e}"),
                _ => format!("analysis {status}"),
            };
            vec![Delivery {
                user_id: by,
                item: item(Kind::JobFinished, id, None, text),
            }]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(author: &str, mentions: &[&str]) -> StoredMessage {
        StoredMessage {
            id: 9,
            author: author.into(),
            author_name: "Ada".into(),
            client_msg_id: "c".into(),
            body: "hello @bob".into(),
            reply_to: Some(3),
            mentions: mentions.iter().map(|s| s.to_string()).collect(),
            attachments: vec![],
            created_at: 1000,
            edited_at: None,
            deleted: false,
        }
    }

    #[test]
    fn a_message_reaches_whom_it_names_once() {
        let m = message("ada", &["bob", "ai", "ada", "bob", "cy"]);
        let d = for_message("r1", &m, Some("cy"));
        let who: Vec<_> = d
            .iter()
            .map(|d| (d.user_id.as_str(), d.item.kind))
            .collect();
        assert_eq!(who, vec![("bob", Kind::Mention), ("cy", Kind::Mention)]);
        let d = for_message("r1", &message("ada", &[]), Some("dan"));
        assert_eq!(d[0].item.kind, Kind::Reply);
        assert_eq!(d[0].item.subject, "9");
        assert!(for_message("r1", &message("ada", &[]), Some("ada")).is_empty());
    }

    #[test]
    fn the_fanout_is_bounded_whatever_the_message_names() {
        let many: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let d = for_message("r1", &message("ada", &names), None);
        assert_eq!(d.len(), FANOUT_MAX);
        let owners: Vec<String> = many.clone();
        let data = json!({"approval": {"id": "a1", "action": "delete_room", "requested_by": "u0"}});
        let d = for_event("r1", "approval_requested", &data, 5, || owners);
        assert_eq!(d.len(), FANOUT_MAX);
        assert!(d.iter().all(|x| x.user_id != "u0"), "not to the requester");
    }

    #[test]
    fn approvals_reach_owners_and_outcomes_the_requester() {
        let asked = json!({"approval": {"id": "a1", "action": "set_topic", "requested_by": "m1", "reason": null}});
        let d = for_event("r1", "approval_requested", &asked, 5, || {
            vec!["o1".into(), "o2".into()]
        });
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].item.kind, Kind::ApprovalRequested);
        assert_eq!(d[1].item.text, "set_topic");
        let decided = json!({"approval": {"id": "a1", "action": "set_topic", "status": "approved",
            "requested_by": "m1", "requested_kind": "user", "resolved_by": "o1"}});
        let d = for_event("r1", "approval_resolved", &decided, 6, || unreachable!());
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].user_id.as_str(), d[0].item.kind),
            ("m1", Kind::ApprovalDecided)
        );
        let by_ai = json!({"approval": {"id": "a2", "action": "x", "status": "approved",
            "requested_by": "ai", "requested_kind": "ai"}});
        assert!(for_event("r1", "approval_resolved", &by_ai, 6, Vec::new).is_empty());
    }

    #[test]
    fn finished_jobs_reach_who_started_them() {
        let done = json!({"job": {"id": "j1", "created_by": "u1", "status": "done"}});
        let d = for_event("r1", "job_done", &done, 1, Vec::new);
        assert_eq!(
            (d[0].user_id.as_str(), d[0].item.kind),
            ("u1", Kind::JobFinished)
        );
        assert!(for_event("r1", "file_added", &done, 1, Vec::new).is_empty());
        assert!(for_event("r1", "job_done", &json!({}), 1, Vec::new).is_empty());
    }
}
