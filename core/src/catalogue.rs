//! The one catalogue of named actions: each action's arguments and their
//! checks, the role it needs, and whether someone below that role (or the AI)
//! may ask an owner instead. Users, rules and the AI teammate all go through
//! it, so what one may do the others may only do the same way; it is also
//! exactly what the AI may propose. What an action does to the room state is
//! `crate::actions`; how a refused or allowed attempt is audited is here.

use crate::actor::ActorKind;
use crate::rooms::Role;
use crate::ApiError;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub min_role: Role,
    /// Protected actions by someone below `min_role` (or by the AI) become
    /// approval requests instead of failing.
    pub protected: bool,
    /// Argument names and JSON types (`string`, `integer`, `array`, `object`);
    /// a trailing `?` marks an optional one.
    pub args: &'static [(&'static str, &'static str)],
}

/// The catalogue: every action there is.
pub const CATALOGUE: &[ActionSpec] = &[
    ActionSpec {
        name: "propose_activity",
        summary: "Propose an activity",
        min_role: Role::Member,
        protected: false,
        args: &[
            ("title", "string"),
            ("description", "string?"),
            ("due_at", "integer?"),
        ],
    },
    ActionSpec {
        name: "update_activity",
        summary: "Change an activity's title, description or due date",
        min_role: Role::Member,
        protected: false,
        args: &[
            ("id", "string"),
            ("title", "string?"),
            ("description", "string?"),
            ("due_at", "integer?"),
        ],
    },
    ActionSpec {
        name: "vote_activity",
        summary: "Vote for an activity (again to withdraw)",
        min_role: Role::Member,
        protected: false,
        args: &[("id", "string")],
    },
    ActionSpec {
        name: "schedule_activity",
        summary: "Schedule an activity",
        min_role: Role::Member,
        protected: false,
        args: &[("id", "string"), ("at", "integer")],
    },
    ActionSpec {
        name: "start_activity",
        summary: "Start an activity",
        min_role: Role::Member,
        protected: false,
        args: &[("id", "string")],
    },
    ActionSpec {
        name: "complete_activity",
        summary: "Complete an activity",
        min_role: Role::Member,
        protected: false,
        args: &[("id", "string")],
    },
    ActionSpec {
        name: "cancel_activity",
        summary: "Cancel an activity",
        min_role: Role::Admin,
        protected: false,
        args: &[("id", "string")],
    },
    ActionSpec {
        name: "assign",
        summary: "Set who works on an activity",
        min_role: Role::Member,
        protected: false,
        args: &[("id", "string"), ("user_ids", "array")],
    },
    ActionSpec {
        name: "send_message",
        summary: "Post a message in the room",
        min_role: Role::Member,
        protected: false,
        args: &[("body", "string")],
    },
    ActionSpec {
        name: "add_member",
        summary: "Add someone to the room",
        min_role: Role::Admin,
        protected: false,
        args: &[("user_id", "string"), ("role", "string")],
    },
    ActionSpec {
        name: "remove_member",
        summary: "Remove someone from the room",
        min_role: Role::Admin,
        protected: true,
        args: &[("user_id", "string")],
    },
    ActionSpec {
        name: "set_rule",
        summary: "Create or replace a rule",
        min_role: Role::Admin,
        protected: false,
        args: &[("rule", "object")],
    },
    ActionSpec {
        name: "delete_rule",
        summary: "Delete a rule",
        min_role: Role::Admin,
        protected: false,
        args: &[("id", "string")],
    },
    ActionSpec {
        name: "delete_file",
        summary: "Delete a file",
        min_role: Role::Admin,
        protected: true,
        args: &[("id", "string")],
    },
    ActionSpec {
        name: "archive_room",
        summary: "Archive the room",
        min_role: Role::Owner,
        protected: true,
        args: &[],
    },
];

pub fn spec(name: &str) -> Result<&'static ActionSpec, ApiError> {
    CATALOGUE
        .iter()
        .find(|s| s.name == name)
        .ok_or(ApiError::NotFound("action"))
}

/// The actions someone with `role` may run or request (protected ones above
/// their role appear too: asking creates an approval request).
pub fn available(role: Role) -> Vec<&'static ActionSpec> {
    CATALOGUE
        .iter()
        .filter(|s| role >= s.min_role || (s.protected && role >= Role::Member))
        .collect()
}

/// A catalogue entry as `GET …/actions` shows it to someone: whether they may
/// run it or only ask an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offered {
    pub name: &'static str,
    pub summary: &'static str,
    pub min_role: Role,
    pub protected: bool,
    /// `run` or `approval`.
    pub mode: &'static str,
    pub args: BTreeMap<&'static str, &'static str>,
}

pub fn offered(role: Role) -> Vec<Offered> {
    available(role)
        .into_iter()
        .map(|s| Offered {
            name: s.name,
            summary: s.summary,
            min_role: s.min_role,
            protected: s.protected,
            mode: match authorize(s, role, ActorKind::User) {
                Ok(Decision::Run) => "run",
                _ => "approval",
            },
            args: s.args.iter().copied().collect(),
        })
        .collect()
}

/// What happens to a request for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Run,
    NeedsApproval,
}

/// Whether `actor` (with `role` in the room) may run `spec` now, must ask an
/// owner, or is refused. The AI never runs a protected action itself; a rule
/// asks like its author would (its author's current role decides).
pub fn authorize(spec: &ActionSpec, role: Role, kind: ActorKind) -> Result<Decision, ApiError> {
    if spec.protected && kind == ActorKind::Ai {
        return Ok(Decision::NeedsApproval);
    }
    if role >= spec.min_role {
        return Ok(Decision::Run);
    }
    if spec.protected && role >= Role::Member {
        return Ok(Decision::NeedsApproval);
    }
    Err(ApiError::forbidden(format!(
        "`{}` needs the {} role",
        spec.name, spec.min_role
    )))
}

/// Checks the arguments against the catalogue's schema: no unknown names,
/// every required one present, each of its JSON type.
pub fn validate_args(spec: &ActionSpec, args: &Value) -> Result<(), ApiError> {
    let obj = args
        .as_object()
        .ok_or_else(|| ApiError::invalid("arguments must be a JSON object"))?;
    for key in obj.keys() {
        if !spec.args.iter().any(|(n, _)| n == key) {
            return Err(ApiError::invalid_at(
                key.as_str(),
                format!("`{}` takes no argument `{key}`", spec.name),
            ));
        }
    }
    for (name, ty) in spec.args {
        let (ty, optional) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (*ty, false),
        };
        match obj.get(*name) {
            None | Some(Value::Null) if optional => {}
            None | Some(Value::Null) => {
                return Err(ApiError::invalid_at(
                    *name,
                    format!("`{}` needs the argument `{name}`", spec.name),
                ))
            }
            Some(v) => {
                let ok = match ty {
                    "string" => v.is_string(),
                    "integer" => v.is_u64(),
                    "array" => v.is_array(),
                    _ => v.is_object(),
                };
                if !ok {
                    return Err(ApiError::invalid_at(
                        *name,
                        format!("`{name}` of `{}` must be {ty}", spec.name),
                    ));
                }
                // Ids name things of the room: bounded, and in the id charset.
                let names_an_id = *name == "id" || name.ends_with("_id");
                if names_an_id && !v.as_str().is_some_and(crate::ids::is_valid_path_param) {
                    return Err(ApiError::invalid_at(
                        *name,
                        format!(
                            "`{name}` of `{}` must be an id (1 to 128 of A-Z a-z 0-9 - _ .)",
                            spec.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Longest string argument, and largest other value, an audit entry of a
/// refused attempt keeps.
const AUDITED_STRING_MAX: usize = 200;
const AUDITED_VALUE_BYTES_MAX: usize = 200;

/// The arguments of an attempt at `name` as its audit entry records them.
///
/// The audit log is append-only and kept for good, so it records what was
/// decided, never simply what the caller sent. An allowed attempt (run, or
/// turned into an approval request) records its arguments, which passed the
/// action's checks — except a message body, which is chat and goes with the
/// message (deleted, it must leave no copy): `send_message` records only the
/// body's size. A refused attempt (unknown action, no permission, bad
/// arguments, a conflict) records only the catalogue's arguments of that
/// action, each string cut to 200 characters and any other value over 200
/// bytes replaced by its size, and the size of everything else it sent as
/// `_dropped_bytes`.
pub fn audited_args(name: &str, args: &Value, allowed: bool) -> Value {
    let known = spec(name).map_or(&[][..], |s| s.args);
    let is_known = |key: &str| known.iter().any(|(n, _)| *n == key);
    let size = |v: &Value| {
        let bytes = v.as_str().map_or_else(|| v.to_string().len(), str::len);
        json!({ "bytes": bytes })
    };
    let Some(obj) = args.as_object() else {
        return match args {
            Value::Null => Value::Null,
            other => json!({ "_dropped_bytes": other.to_string().len() }),
        };
    };
    let mut out = serde_json::Map::new();
    let mut dropped = 0;
    for (key, value) in obj {
        if !is_known(key) {
            dropped += key.len() + value.to_string().len();
            continue;
        }
        let kept = match value {
            _ if name == "send_message" && key == "body" => size(value),
            _ if allowed => value.clone(),
            Value::String(text) => Value::String(text.chars().take(AUDITED_STRING_MAX).collect()),
            Value::Array(_) | Value::Object(_)
                if value.to_string().len() > AUDITED_VALUE_BYTES_MAX =>
            {
                size(value)
            }
            other => other.clone(),
        };
        out.insert(key.clone(), kept);
    }
    if dropped > 0 {
        out.insert("_dropped_bytes".into(), json!(dropped));
    }
    Value::Object(out)
}

/// Whether `refusal` of action `name` says its effect is already in place:
/// a run resumed after a crash (an approved action cut off mid-way) treats
/// such a refusal as done, so the action runs once. Only actions whose
/// effect is a state a refusal can name are listed.
pub fn already_done(name: &str, refusal: &ApiError) -> bool {
    match name {
        "add_member" => matches!(
            refusal,
            ApiError::Conflict {
                code: crate::error::code::ALREADY_MEMBER,
                ..
            }
        ),
        "remove_member" => matches!(refusal, ApiError::NotFound("member")),
        "delete_file" => matches!(refusal, ApiError::NotFound("file")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_action_is_done_when_its_refusal_names_the_effect_in_place() {
        let already = ApiError::Conflict {
            code: crate::error::code::ALREADY_MEMBER,
            message: "already a member".into(),
        };
        assert!(already_done("add_member", &already));
        assert!(already_done("remove_member", &ApiError::NotFound("member")));
        assert!(already_done("delete_file", &ApiError::NotFound("file")));
        // Another refusal, or the same refusal of another action, is an error still.
        assert!(!already_done("add_member", &ApiError::NotFound("member")));
        assert!(!already_done("remove_member", &already));
        assert!(!already_done("delete_file", &ApiError::NotFound("member")));
        assert!(!already_done("send_message", &ApiError::NotFound("file")));
    }

    #[test]
    fn every_action_by_every_role() {
        use ActorKind::*;
        for s in CATALOGUE {
            for role in Role::ALL {
                let d = authorize(s, role, User);
                if role >= s.min_role {
                    assert_eq!(d, Ok(Decision::Run), "{} by {role}", s.name);
                } else if s.protected && role >= Role::Member {
                    assert_eq!(d, Ok(Decision::NeedsApproval), "{} by {role}", s.name);
                } else {
                    assert_eq!(d.unwrap_err().status(), 403, "{} by {role}", s.name);
                }
                // A rule asks as its author would; the AI never runs protected actions.
                assert_eq!(authorize(s, role, Rule), authorize(s, role, User));
                if s.protected {
                    assert_eq!(authorize(s, role, Ai), Ok(Decision::NeedsApproval));
                }
            }
        }
        assert_eq!(CATALOGUE.len(), 15);
        let protected: Vec<_> = CATALOGUE
            .iter()
            .filter(|s| s.protected)
            .map(|s| s.name)
            .collect();
        assert_eq!(protected, ["remove_member", "delete_file", "archive_room"]);
        assert!(available(Role::Viewer).is_empty());
        let member = offered(Role::Member);
        let mode = |n: &str| member.iter().find(|o| o.name == n).map(|o| o.mode);
        assert_eq!(
            (
                mode("propose_activity"),
                mode("archive_room"),
                mode("cancel_activity")
            ),
            (Some("run"), Some("approval"), None)
        );
        assert!(offered(Role::Owner).iter().all(|o| o.mode == "run"));
        assert!(available(Role::Member)
            .iter()
            .any(|s| s.name == "archive_room"));
        assert_eq!(available(Role::Owner).len(), CATALOGUE.len());
    }

    #[test]
    fn refused_attempts_audit_what_was_refused_not_what_was_sent() {
        let blob = "x".repeat(16 * 1024);
        // A viewer's propose_activity, refused: the title is cut, the blob
        // in an unknown argument only counted.
        let sent = json!({ "title": blob, "sudo": blob });
        let kept = audited_args("propose_activity", &sent, false);
        assert_eq!(kept["title"].as_str().unwrap().chars().count(), 200);
        assert_eq!(kept["_dropped_bytes"], json!(4 + blob.len() + 2));
        assert!(kept.get("sudo").is_none());
        assert!(kept.to_string().len() < 300);
        // An unknown action keeps nothing but the size of what it sent.
        let unknown = audited_args("no_such_action", &json!({ "a": blob }), false);
        assert_eq!(unknown, json!({ "_dropped_bytes": 1 + blob.len() + 2 }));
        assert_eq!(
            audited_args("propose_activity", &json!(blob), false),
            json!({ "_dropped_bytes": blob.len() + 2 })
        );
        assert_eq!(
            audited_args("send_message", &Value::Null, false),
            Value::Null
        );
        // Big structured values become their size.
        let rule = json!({ "rule": { "name": blob } });
        let set_rule = audited_args("set_rule", &rule, false);
        assert_eq!(
            set_rule["rule"],
            json!({ "bytes": rule["rule"].to_string().len() })
        );
        // Allowed attempts keep their checked arguments, but never a message body.
        let ok = json!({ "id": "a1", "title": "Plan" });
        assert_eq!(audited_args("update_activity", &ok, true), ok);
        let said = audited_args("send_message", &json!({ "body": "secret" }), true);
        assert_eq!(said, json!({ "body": { "bytes": 6 } }));
        assert_eq!(
            audited_args("complete_activity", &json!({ "id": "a2" }), false),
            json!({ "id": "a2" })
        );
    }

    #[test]
    fn ids_in_arguments_are_bounded_ids() {
        let remove = spec("remove_member").unwrap();
        assert!(validate_args(remove, &json!({ "user_id": "u-1.a_b" })).is_ok());
        for bad in [json!(""), json!("a b"), json!("x".repeat(129))] {
            let e = validate_args(remove, &json!({ "user_id": bad })).unwrap_err();
            assert_eq!(e.code(), "invalid_input");
        }
        let e = validate_args(spec("start_activity").unwrap(), &json!({ "id": "a1'--" }));
        assert!(e.is_err());
    }
}
