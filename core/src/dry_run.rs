//! A rule draft tried on a sample event (`POST …/rules/dry-run`): checked as
//! saving would check it, its condition evaluated, its effect decided for its
//! would-be author and simulated on a copy of the room state, and nothing
//! stored, run or audited. It sits above both `crate::rules` (the rule) and
//! `crate::actions` (the state the effect would change).

use crate::actions::{Change, Effect, RoomState};
use crate::actor::{ActorKind, ChangedBy};
use crate::catalogue::{authorize, validate_args, Decision};
use crate::rooms::Role;
use crate::rules::{evaluate, known_keys, render, validate_condition, Event, RuleDraft, Trigger};
use crate::ApiError;
use serde::Serialize;
use serde_json::{json, Value};

/// What a draft rule would do for a sample event (`POST …/rules/dry-run`),
/// with nothing stored, run or audited.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    /// Whether the condition holds for the event and the room as it is now.
    pub matches: bool,
    /// Why the condition could not be evaluated for this event (it then does
    /// not match): the `error` object of an error body.
    pub error: Option<Value>,
    /// What the effect would do, when the condition matches and the draft
    /// has one.
    pub effect: Option<DryEffect>,
}

/// The effect of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryEffect {
    pub action: String,
    /// The arguments with the event's values filled in (`null` when they
    /// could not be).
    pub args: Value,
    /// `run`, `approval` (an owner would be asked) or `refused`.
    pub decision: &'static str,
    /// For an action on the room state that would run: the version it would
    /// make and the changes (`null` for messages, members and files, which
    /// are checked but not simulated, and for an unchanged state).
    pub version: Option<u64>,
    pub changes: Option<Vec<Change>>,
    /// Why it would be refused: the `error` object of an error body.
    pub error: Option<Value>,
}

fn error_object(e: &ApiError) -> Value {
    e.body()["error"].clone()
}

/// The sample event of a dry run: `{type?, actor?, data}`; its type is the
/// rule's trigger and its actor, unless given, the caller.
fn sample_event(v: Option<&Value>, trigger: Trigger, caller: &str) -> Result<Event, ApiError> {
    let obj = v.and_then(Value::as_object).ok_or_else(|| {
        ApiError::invalid_at("event", "a dry run needs an `event`: {\"actor\", \"data\"}")
    })?;
    let inside = |e: ApiError| e.within("event");
    known_keys(obj, &["type", "actor", "data"]).map_err(|e| {
        // `known_keys` words its message for rules.
        let field = e.field().unwrap_or_default().to_string();
        ApiError::invalid_at(field, "an event has only `type`, `actor` and `data`").within("event")
    })?;
    if let Some(t) = obj.get("type") {
        if *t != json!(trigger) {
            return Err(inside(ApiError::invalid_at(
                "type",
                "the event's type is the rule's trigger",
            )));
        }
    }
    let actor = match obj.get("actor") {
        None | Some(Value::Null) => caller.to_string(),
        Some(Value::String(a)) if crate::ids::is_valid_path_param(a) => a.clone(),
        Some(_) => {
            return Err(inside(ApiError::invalid_at(
                "actor",
                "`actor` must be a user id",
            )))
        }
    };
    let data = match obj.get("data") {
        Some(d @ Value::Object(_)) => d.clone(),
        _ => {
            return Err(inside(ApiError::invalid_at(
                "data",
                "`data` must be an object, as the trigger's events carry",
            )))
        }
    };
    Ok(Event {
        trigger,
        actor,
        data,
    })
}

/// Runs a draft rule against a sample event, changing nothing: the body is
/// a rule as `POST …/rules` takes it (with `id`, the missing parts come from
/// that rule; `effect` may be left out to test only the condition) plus
/// `event`. The draft is checked as when it is saved (400 naming the field);
/// the effect is decided as it would be for `author` with `role` (the caller,
/// who would become the rule's author) and simulated on a copy of `state`.
pub fn dry_run(
    body: &Value,
    state: &RoomState,
    author: &ChangedBy,
    role: Role,
    now: u64,
) -> Result<DryRun, ApiError> {
    let mut rule = body
        .as_object()
        .cloned()
        .ok_or_else(|| ApiError::invalid("a dry run is a JSON object"))?;
    let event = rule.remove("event");
    let draft = RuleDraft::parse(&Value::Object(rule))?;
    let existing = match &draft.id {
        Some(id) => Some(state.rules.get(id).ok_or(ApiError::NotFound("rule"))?),
        None => None,
    };
    let trigger = draft
        .trigger
        .or(existing.map(|r| r.trigger))
        .ok_or_else(|| ApiError::invalid_at("trigger", "a dry run needs `trigger`"))?;
    let condition = draft
        .condition
        .or_else(|| existing.map(|r| r.condition.clone()))
        .unwrap_or(Value::Bool(true));
    validate_condition(&condition).map_err(|e| e.within("condition"))?;
    let effect = draft.effect.or_else(|| existing.map(|r| r.effect.clone()));
    let action = effect
        .as_ref()
        .map(|e| e.validate().map_err(|e| e.within("effect")))
        .transpose()?;
    let event = sample_event(event.as_ref(), trigger, &author.user_id)?;
    let data = json!({ "event": event, "state": state.view_for_rules() });
    let matches = match evaluate(&condition, &data) {
        Ok(m) => m,
        Err(e) => {
            return Ok(DryRun {
                matches: false,
                error: Some(error_object(&e)),
                effect: None,
            })
        }
    };
    let (Some(effect), Some(action), true) = (effect, action, matches) else {
        return Ok(DryRun {
            matches,
            error: None,
            effect: None,
        });
    };
    let mut out = DryEffect {
        action: effect.action.clone(),
        args: Value::Null,
        decision: "refused",
        version: None,
        changes: None,
        error: None,
    };
    let decided = render(&effect.args, &data).and_then(|args| {
        out.args = args.clone();
        validate_args(action, &args)?;
        Ok((authorize(action, role, ActorKind::Rule)?, args))
    });
    match decided {
        Err(e) => out.error = Some(error_object(&e)),
        Ok((Decision::NeedsApproval, _)) => out.decision = "approval",
        Ok((Decision::Run, args)) => {
            let rule_author = ChangedBy {
                kind: ActorKind::Rule,
                ..author.clone()
            };
            match state.clone().run_as(action, &args, &rule_author, now) {
                Err(e) => out.error = Some(error_object(&e)),
                Ok(Effect::State(changes)) => {
                    out.decision = "run";
                    if !changes.is_empty() {
                        out.version = Some(state.version + 1);
                        out.changes = Some(changes);
                    }
                }
                Ok(Effect::External { .. }) => out.decision = "run",
            }
        }
    }
    Ok(DryRun {
        matches,
        error: None,
        effect: Some(out),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> ChangedBy {
        ChangedBy {
            user_id: "u1".into(),
            display_name: "Ada".into(),
            kind: ActorKind::User,
        }
    }

    fn urgent(effect: Value) -> Value {
        json!({
            "trigger": "message_posted",
            "condition": {"in": ["urgent", {"var": "event.data.message.body"}]},
            "effect": effect,
            "event": {"actor": "u2", "data": {"message": {"body": "urgent: the build is red"}}}
        })
    }

    #[test]
    fn a_dry_run_says_what_would_happen_and_changes_nothing() {
        let mut state = RoomState::default();
        let before = state.clone();
        let propose = json!({"action": "propose_activity",
            "args": {"title": "Follow up: {{event.data.message.body}}"}});
        let run = dry_run(&urgent(propose.clone()), &state, &admin(), Role::Admin, 9).unwrap();
        assert!(run.matches && run.error.is_none());
        let effect = run.effect.unwrap();
        assert_eq!((effect.decision, effect.version), ("run", Some(1)));
        assert_eq!(effect.args["title"], "Follow up: urgent: the build is red");
        let changes = effect.changes.unwrap();
        assert_eq!(changes[0].path, "activities.a1");
        assert_eq!(changes[0].new["created_by"], "u1");
        assert_eq!(state, before, "nothing changed");
        // Not matching: no effect.
        let mut calm = urgent(propose.clone());
        calm["event"]["data"]["message"]["body"] = json!("all good");
        let quiet = dry_run(&calm, &state, &admin(), Role::Admin, 9).unwrap();
        assert_eq!((quiet.matches, quiet.effect), (false, None));
        // Only a condition.
        let mut bare = urgent(Value::Null);
        bare.as_object_mut().unwrap().remove("effect");
        let only = dry_run(&bare, &state, &admin(), Role::Admin, 9).unwrap();
        assert_eq!((only.matches, only.effect), (true, None));
        // What the state would refuse, and what an owner would be asked.
        let start = json!({"action": "start_activity", "args": {"id": "a9"}});
        let refused = dry_run(&urgent(start), &state, &admin(), Role::Admin, 9).unwrap();
        let effect = refused.effect.unwrap();
        assert_eq!(
            (effect.decision, effect.error.unwrap()["code"].clone()),
            ("refused", json!("not_found"))
        );
        let archive = json!({"action": "archive_room"});
        let asks = dry_run(&urgent(archive.clone()), &state, &admin(), Role::Admin, 9).unwrap();
        assert_eq!(asks.effect.unwrap().decision, "approval");
        let owner = dry_run(&urgent(archive.clone()), &state, &admin(), Role::Owner, 9).unwrap();
        let effect = owner.effect.unwrap();
        assert_eq!(effect.changes.unwrap()[0].path, "settings.archived");
        let viewer = dry_run(&urgent(archive), &state, &admin(), Role::Viewer, 9).unwrap();
        assert_eq!(viewer.effect.unwrap().error.unwrap()["code"], "forbidden");
        // Messages are checked, not posted; a template that fills an id
        // with something else is refused as it would be.
        let say =
            json!({"action": "send_message", "args": {"body": "{{event.data.message.body}}"}});
        let said = dry_run(&urgent(say), &state, &admin(), Role::Member, 9)
            .unwrap()
            .effect
            .unwrap();
        assert_eq!((said.decision, said.changes), ("run", None));
        let by_body =
            json!({"action": "start_activity", "args": {"id": "{{event.data.message.body}}"}});
        let bad = dry_run(&urgent(by_body), &state, &admin(), Role::Admin, 9)
            .unwrap()
            .effect
            .unwrap();
        assert_eq!(bad.error.unwrap()["field"], "id");
        // A rule's id fills in what the draft leaves out.
        state
            .run(
                crate::catalogue::spec("set_rule").unwrap(),
                &json!({"rule": {
            "trigger": "message_posted", "effect": propose}}),
                "u1",
                5,
            )
            .unwrap();
        let patch = json!({"id": "r1", "condition": {"==": [{"var": "event.actor"}, "u2"]},
            "event": {"data": {"message": {"body": "hi"}}, "actor": "u2"}});
        let patched = dry_run(&patch, &state, &admin(), Role::Admin, 9).unwrap();
        assert_eq!(patched.effect.unwrap().args["title"], "Follow up: hi");
        let missing = json!({"id": "r9", "event": {"data": {}}});
        assert_eq!(
            dry_run(&missing, &state, &admin(), Role::Admin, 9)
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn a_dry_run_refuses_what_saving_refuses_naming_the_field() {
        let state = RoomState::default();
        let ok = json!({"action": "send_message", "args": {"body": "x"}});
        let cases = [
            (json!({"event": {"data": {}}}), "trigger"),
            (json!({"trigger": "file_added"}), "event"),
            (
                json!({"trigger": "file_added", "event": {"data": 5}}),
                "event.data",
            ),
            (
                json!({"trigger": "file_added", "event": {"data": {}, "actor": "a b"}}),
                "event.actor",
            ),
            (
                json!({"trigger": "file_added", "event": {"data": {}, "type": "member_joined"}}),
                "event.type",
            ),
            (
                json!({"trigger": "file_added", "event": {"data": {}, "extra": 1}}),
                "event.extra",
            ),
            (
                json!({"trigger": "file_added", "condition": {"if": [{"exec": 1}]}, "event": {"data": {}}}),
                "condition.if[0]",
            ),
            (
                json!({"trigger": "file_added", "effect": {"action": "nope"}, "event": {"data": {}}}),
                "effect.action",
            ),
            (
                json!({"trigger": "file_added", "effect": ok, "event": {"data": {}}, "sudo": 1}),
                "sudo",
            ),
        ];
        for (body, field) in cases {
            let e = dry_run(&body, &state, &admin(), Role::Admin, 9).unwrap_err();
            assert_eq!((e.status(), e.field()), (400, Some(field)), "{body}: {e}");
        }
        assert_eq!(
            dry_run(&json!([]), &state, &admin(), Role::Admin, 9)
                .unwrap_err()
                .status(),
            400
        );
        // A condition that fails on this event does not match, and says why.
        let body = json!({"trigger": "file_added", "condition": {"in": ["x", {"var": "event.data.file"}]},
            "event": {"data": {"file": {"name": "x.txt"}}}});
        let run = dry_run(&body, &state, &admin(), Role::Admin, 9).unwrap();
        assert_eq!((run.matches, run.effect), (false, None));
        let error = run.error.unwrap();
        assert_eq!(error["code"], "invalid_input");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("condition failed"),
            "{error}"
        );
    }
}
