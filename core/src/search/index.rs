//! What is indexed: one [`Entry`] per searchable item of a room (a message,
//! a document, a file, an activity, a check-in), built from the room's own
//! types, and the [`Change`]s a room writes to its index and sends to the
//! cross-room index through its outbox.

use super::text::for_index;
use crate::actions::Activity;
use crate::chat::StoredMessage;
use crate::files::FileRef;
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// Largest text indexed for one item (a long document is found by its first
/// 256 KiB; SQLite rows stay far below their 2 MB limit).
pub const TEXT_MAX_BYTES: usize = 256 * 1024;
const TITLE_MAX_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Message,
    Document,
    File,
    Activity,
    Checkin,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Message,
        Kind::Document,
        Kind::File,
        Kind::Activity,
        Kind::Checkin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Document => "document",
            Kind::File => "file",
            Kind::Activity => "activity",
            Kind::Checkin => "checkin",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = ApiError;

    fn from_str(s: &str) -> Result<Self, ApiError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "kind must be one of message, document, file, activity, checkin (not `{s}`)"
                ))
            })
    }
}

/// One searchable item, with its text as indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    /// The item's id in its kind: a message id, a document name, a file id,
    /// an activity id, a check-in's day.
    pub id: String,
    pub title: String,
    pub body: String,
    /// Unix milliseconds of the item's last change (what recency counts from).
    pub at: u64,
    /// The user id of the author, uploader or creator.
    pub author: String,
    /// The message to jump to: a message's seq, a check-in's summary message.
    pub seq: Option<u64>,
}

impl Entry {
    fn new(
        kind: Kind,
        id: impl Into<String>,
        title: &str,
        body: &str,
        at: u64,
        author: &str,
    ) -> Entry {
        Entry {
            kind,
            id: id.into(),
            title: for_index(title, TITLE_MAX_BYTES),
            body: for_index(body, TEXT_MAX_BYTES),
            at,
            author: author.to_string(),
            seq: None,
        }
    }

    /// A message as it reads now: its body and the names of its files, under
    /// its author's name. A deleted message has no entry.
    pub fn message(m: &StoredMessage) -> Option<Entry> {
        if m.deleted {
            return None;
        }
        let mut body = m.body.clone();
        for f in &m.attachments {
            body.push('\n');
            body.push_str(&f.name);
        }
        let mut e = Entry::new(
            Kind::Message,
            m.id.to_string(),
            &m.author_name,
            &body,
            m.edited_at.unwrap_or(m.created_at),
            &m.author,
        );
        e.seq = Some(m.id);
        Some(e)
    }

    /// A document's text roots (name, text), each after its name.
    pub fn document(name: &str, roots: &[(String, String)], at: u64) -> Entry {
        let mut body = String::new();
        for (root, text) in roots.iter().filter(|(_, t)| !t.trim().is_empty()) {
            if roots.len() > 1 {
                body.push_str(root);
                body.push('\n');
            }
            body.push_str(text);
            body.push_str("\n\n");
            if body.len() > TEXT_MAX_BYTES {
                break;
            }
        }
        Entry::new(Kind::Document, name, name, &body, at, "")
    }

    /// A file: its name, its type and, once analysed, its text.
    pub fn file(f: &FileRef, uploader: &str, text: Option<&str>, at: u64) -> Entry {
        let mut body = f.content_type.clone();
        if let Some(text) = text {
            body.push('\n');
            body.push_str(text);
        }
        Entry::new(Kind::File, f.id.as_str(), &f.name, &body, at, uploader)
    }

    pub fn activity(a: &Activity) -> Entry {
        let body = format!("{}\n{}", a.description, a.status.as_str().replace('_', " "));
        Entry::new(
            Kind::Activity,
            a.id.as_str(),
            &a.title,
            &body,
            a.updated_at.saturating_mul(1000),
            &a.created_by,
        )
    }

    /// An AI check-in: its summary and what it proposed.
    pub fn checkin(
        day: &str,
        summary: &str,
        proposed: &[String],
        message: Option<u64>,
        at: u64,
    ) -> Entry {
        let mut body = summary.to_string();
        for p in proposed {
            body.push('\n');
            body.push_str(p);
        }
        let mut e = Entry::new(
            Kind::Checkin,
            day,
            &format!("Check-in {day}"),
            &body,
            at,
            crate::ai::AI_USER_ID,
        );
        e.seq = message;
        e
    }
}

/// Where a hit leads: a message's seq (jump to it with context), a document,
/// a file, an activity.
pub fn link(kind: Kind, id: &str, seq: Option<u64>) -> serde_json::Value {
    match (kind, seq) {
        (Kind::Message | Kind::Checkin, Some(seq)) => serde_json::json!({ "seq": seq }),
        (Kind::Document, _) => serde_json::json!({ "doc": id }),
        (Kind::File, _) => serde_json::json!({ "file": id }),
        (Kind::Activity, _) => serde_json::json!({ "activity": id }),
        (Kind::Message | Kind::Checkin, None) => serde_json::json!({}),
    }
}

/// A change to an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Adds the item or replaces what was indexed of it.
    Put(Entry),
    Remove {
        kind: Kind,
        id: String,
    },
}

impl Change {
    pub fn key(&self) -> (Kind, &str) {
        match self {
            Change::Put(e) => (e.kind, &e.id),
            Change::Remove { kind, id } => (*kind, id),
        }
    }

    /// The change a message's new state makes: indexed as it reads, or
    /// removed once deleted.
    pub fn of_message(m: &StoredMessage) -> Change {
        Entry::message(m)
            .map(Change::Put)
            .unwrap_or(Change::Remove {
                kind: Kind::Message,
                id: m.id.to_string(),
            })
    }
}

/// The last change of each item, in the order of those last changes: what a
/// batch of the outbox comes to (an item edited three times is written once).
pub fn coalesce(changes: Vec<Change>) -> Vec<Change> {
    let mut last: std::collections::HashMap<(Kind, String), usize> =
        std::collections::HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        let (k, id) = c.key();
        last.insert((k, id.to_string()), i);
    }
    changes
        .into_iter()
        .enumerate()
        .filter(|(i, c)| {
            let (k, id) = c.key();
            last.get(&(k, id.to_string())) == Some(i)
        })
        .map(|(_, c)| c)
        .collect()
}

/// When a room asks for its index upkeep (the cross-room copy, settled
/// documents, embeddings) as a queue task: at most once per `INTERVAL_MS`,
/// never before a change has settled, and always after the last change (a
/// change while a task is due is covered by that task).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// When the last task asked for is due to run (0: none asked yet).
    due_at: u64,
}

impl Upkeep {
    pub const INTERVAL_MS: u64 = 1_000;

    /// A change at `now` that may be taken up after `settle_ms`: the delay in
    /// seconds of the task to send, or `None` when one already due will do.
    pub fn on_change(&mut self, now: u64, settle_ms: u64) -> Option<u32> {
        if now < self.due_at && now + settle_ms <= self.due_at {
            return None;
        }
        let mut earliest = now + settle_ms;
        if self.due_at > 0 {
            earliest = earliest.max(self.due_at + Self::INTERVAL_MS);
        }
        let secs = (earliest - now).div_ceil(1000);
        self.due_at = now + secs * 1000;
        Some(secs as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ActivityStatus;

    fn message(id: u64, body: &str) -> StoredMessage {
        StoredMessage {
            id,
            author: "u1".into(),
            author_name: "Ada".into(),
            client_msg_id: format!("c{id}"),
            body: body.into(),
            reply_to: None,
            mentions: vec![],
            attachments: vec![FileRef {
                id: "f1".into(),
                name: "plan.pdf".into(),
                content_type: "application/pdf".into(),
                size: 1,
            }],
            created_at: 1000,
            edited_at: None,
            deleted: false,
        }
    }

    #[test]
    fn messages_are_indexed_as_they_read_and_removed_when_deleted() {
        let mut m = message(7, "ship it");
        let Change::Put(e) = Change::of_message(&m) else {
            panic!("not indexed")
        };
        assert_eq!(
            (e.title.as_str(), e.body.as_str()),
            ("Ada", "ship it\nplan.pdf")
        );
        assert_eq!((e.seq, e.at, e.author.as_str()), (Some(7), 1000, "u1"));
        m.edited_at = Some(2000);
        assert_eq!(Entry::message(&m).unwrap().at, 2000);
        m.deleted = true;
        assert_eq!(
            Change::of_message(&m),
            Change::Remove {
                kind: Kind::Message,
                id: "7".into()
            }
        );
    }

    #[test]
    fn other_kinds_carry_their_text() {
        let roots = vec![
            ("body".to_string(), "Hello".to_string()),
            ("notes".to_string(), " ".to_string()),
        ];
        let d = Entry::document("plan", &roots, 5);
        assert_eq!(
            (d.title.as_str(), d.body.as_str()),
            ("plan", "body\nHello\n\n")
        );
        let a = Activity {
            id: "a1".into(),
            title: "Offsite".into(),
            description: "book rooms".into(),
            status: ActivityStatus::InProgress,
            created_by: "u1".into(),
            assignees: vec![],
            scheduled_at: None,
            due_at: None,
            votes: vec![],
            updated_at: 3,
        };
        let e = Entry::activity(&a);
        assert_eq!((e.body.as_str(), e.at), ("book rooms\nin progress", 3000));
        let f = &message(1, "").attachments[0];
        let e = Entry::file(f, "u2", Some("quarterly numbers"), 9);
        assert_eq!(e.body, "application/pdf\nquarterly numbers");
        let c = Entry::checkin("2026-01-02", "All good.", &["Follow up".into()], Some(4), 1);
        assert_eq!((c.body.as_str(), c.seq), ("All good.\nFollow up", Some(4)));
        assert_eq!(link(Kind::Checkin, "2026-01-02", Some(4))["seq"], 4);
        assert_eq!(link(Kind::Document, "plan", None)["doc"], "plan");
    }

    #[test]
    fn long_text_is_bounded() {
        let big = "word ".repeat(TEXT_MAX_BYTES);
        let roots = vec![("a".to_string(), big.clone()), ("b".to_string(), big)];
        assert!(Entry::document("d", &roots, 0).body.len() <= TEXT_MAX_BYTES);
    }

    #[test]
    fn kinds_parse_or_say_which_exist() {
        assert_eq!("file".parse::<Kind>().unwrap(), Kind::File);
        assert!("files"
            .parse::<Kind>()
            .unwrap_err()
            .to_string()
            .contains("message"));
    }

    #[test]
    fn an_outbox_batch_keeps_each_items_last_change() {
        let put = |id: u64, body: &str| Change::of_message(&message(id, body));
        let gone = Change::Remove {
            kind: Kind::Message,
            id: "1".into(),
        };
        let out = coalesce(vec![
            put(1, "a"),
            put(2, "b"),
            put(1, "c"),
            gone.clone(),
            put(3, "d"),
        ]);
        assert_eq!(out, vec![put(2, "b"), gone, put(3, "d")]);
    }

    #[test]
    fn upkeep_is_throttled_settles_and_covers_the_last_change() {
        let mut u = Upkeep::default();
        assert_eq!(u.on_change(10_000, 0), Some(0));
        // Within the interval: one task a second later covers them all.
        assert_eq!(u.on_change(10_100, 0), Some(1));
        assert_eq!(u.on_change(10_500, 0), None);
        assert_eq!(u.on_change(10_900, 0), None);
        // After the due task: a new one.
        assert_eq!(u.on_change(11_200, 0), Some(1));
        // A document change must settle: the due task is too early for it.
        assert_eq!(u.on_change(11_300, 2_000), Some(2));
        assert_eq!(u.on_change(11_400, 0), None);
        assert_eq!(u.on_change(20_000, 0), Some(0));
    }
}
