//! Who does things in a room: the kinds of actor (a person, the AI, a rule),
//! and the record of who made the room state's latest change, which
//! `collaboration_updated` events, `GET …/state` and a 412 `version_conflict`
//! carry so that a client can say "changed by X — reload".

use serde::{Deserialize, Serialize};

/// Who asks for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    User,
    Ai,
    Rule,
}

impl ActorKind {
    pub const ALL: [ActorKind; 3] = [Self::User, Self::Ai, Self::Rule];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ai => "ai",
            Self::Rule => "rule",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who made a change: a person's id and name as they were then, or the AI
/// (`ai`), or a rule (its author, with kind `rule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedBy {
    pub user_id: String,
    pub display_name: String,
    pub kind: ActorKind,
}

/// The room state's latest change: the version it made, who, and when (unix
/// seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastChange {
    pub version: u64,
    pub changed_by: ChangedBy,
    pub changed_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_their_names() {
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::json!(k), serde_json::json!(k.as_str()));
        }
        assert_eq!(ActorKind::parse("admin"), None);
    }
}
