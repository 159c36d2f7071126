//! Rules: "when `<trigger>`, if `<condition>`, run `<action>`" — automation a room's
//! admins set up without writing code. A condition is a JSONLogic expression
//! (evaluated by `jsonlogic-rs`) over the event and the room state; an effect
//! is an action from the catalogue whose arguments are templated from the
//! event (`"{{event.data.message.body}}"`).
//!
//! Everything a rule may cost is bounded here, at save time: the size, depth
//! and node count of a condition, which operators it may use and how deeply
//! it may iterate, the templates of its arguments, and how many rules a room
//! holds. At run time a [`Cascade`] bounds the effects one originating event
//! may cause, so rules that trigger each other stop instead of looping.
//!
//! Every refusal names the field it concerns, as a path into the rule
//! (`trigger`, `condition.and[1]`, `effect.args.body`), so an editor can show
//! it where it belongs. `crate::dry_run` answers what a draft would do for a
//! sample event, changing nothing.

use crate::catalogue::{audited_args, spec, validate_args, ActionSpec};
use crate::protocol::ServerFrame;
use crate::rooms::{can, Permission, Role};
use crate::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;

pub const RULES_MAX: usize = 50;
pub const NAME_MAX: usize = 100;
pub const CONDITION_BYTES_MAX: usize = 4096;
pub const CONDITION_DEPTH_MAX: usize = 12;
pub const CONDITION_NODES_MAX: usize = 256;
/// `map`/`filter`/`all`… inside one another: each level multiplies the work
/// by the length of an array (up to 1,000 activities).
pub const ITERATION_NESTING_MAX: usize = 2;
pub const EFFECT_ARGS_BYTES_MAX: usize = 8192;
/// Effects one originating event may cause, chained rules included.
pub const EFFECTS_PER_EVENT_MAX: usize = 10;
/// A templated string after substitution.
const RENDERED_STRING_MAX: usize = 8192;

/// The JSONLogic operators a condition may use: the standard ones minus
/// anything that reaches outside the data (there is nothing else in the spec).
const OPERATORS: &[&str] = &[
    "var",
    "missing",
    "missing_some",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "or",
    "and",
    ">",
    ">=",
    "<",
    "<=",
    "max",
    "min",
    "+",
    "-",
    "*",
    "/",
    "%",
    "map",
    "filter",
    "reduce",
    "all",
    "none",
    "some",
    "merge",
    "in",
    "cat",
    "substr",
];
const ITERATING: &[&str] = &["map", "filter", "reduce", "all", "none", "some"];

/// Rules may not edit rules: an effect that did could rewrite its own bounds.
const NOT_AN_EFFECT: &[&str] = &["set_rule", "delete_rule"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    MessagePosted,
    ActivityChanged,
    FileAdded,
    MemberJoined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEffect {
    pub action: String,
    #[serde(default = "empty_object")]
    pub args: Value,
}

fn empty_object() -> Value {
    json!({})
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub trigger: Trigger,
    /// JSONLogic; `true` when the rule always applies.
    pub condition: Value,
    pub effect: RuleEffect,
    pub enabled: bool,
    /// Whoever saved the rule last: its effects run with their current role.
    pub author: String,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What `set_rule` takes: a new rule without `id`, or the fields to change of
/// an existing one.
#[derive(Debug, Clone, Default)]
pub struct RuleDraft {
    pub id: Option<String>,
    pub name: Option<String>,
    pub trigger: Option<Trigger>,
    pub condition: Option<Value>,
    pub effect: Option<RuleEffect>,
    pub enabled: Option<bool>,
}

const DRAFT_FIELDS: &[&str] = &["id", "name", "trigger", "condition", "effect", "enabled"];
const TRIGGERS: &str = "message_posted, activity_changed, file_added or member_joined";

/// One field of an object, deserialised; its errors name the field.
fn field<T: serde::de::DeserializeOwned>(
    obj: &Map<String, Value>,
    key: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|_| {
            ApiError::invalid_at(
                key,
                format!("the rule is not valid: `{key}` must be {expected}"),
            )
        }),
    }
}

/// Refuses keys of `obj` that are not in `known`, naming the first.
pub(crate) fn known_keys(obj: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid_at(
            k.as_str(),
            format!(
                "the rule is not valid: unknown field `{k}` (fields: {})",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

impl RuleEffect {
    fn parse(v: &Value) -> Result<Self, ApiError> {
        let obj = v.as_object().ok_or_else(|| {
            ApiError::invalid("the rule is not valid: an effect is {\"action\", \"args\"}")
        })?;
        known_keys(obj, &["action", "args"])?;
        let action = field::<String>(obj, "action", "an action's name")?
            .ok_or_else(|| ApiError::invalid_at("action", "an effect needs `action`"))?;
        Ok(RuleEffect {
            action,
            args: obj.get("args").cloned().unwrap_or_else(empty_object),
        })
    }
}

impl RuleDraft {
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::invalid("the rule is not valid: a rule is a JSON object"))?;
        known_keys(obj, DRAFT_FIELDS)?;
        Ok(RuleDraft {
            id: field(obj, "id", "a rule's id")?,
            name: field(obj, "name", "a string")?,
            trigger: field(obj, "trigger", TRIGGERS)?,
            condition: obj.get("condition").filter(|c| !c.is_null()).cloned(),
            effect: obj
                .get("effect")
                .filter(|e| !e.is_null())
                .map(RuleEffect::parse)
                .transpose()
                .map_err(|e| e.within("effect"))?,
            enabled: field(obj, "enabled", "true or false")?,
        })
    }

    /// The rule this draft makes of `existing` (or a new rule with `id`),
    /// validated.
    pub fn apply(
        self,
        existing: Option<&Rule>,
        id: String,
        author: &str,
        now: u64,
    ) -> Result<Rule, ApiError> {
        let missing = |f: &str| ApiError::invalid_at(f, format!("a new rule needs `{f}`"));
        let rule = Rule {
            id,
            name: match (self.name, existing) {
                (Some(n), _) => n.trim().to_string(),
                (None, Some(r)) => r.name.clone(),
                (None, None) => String::new(),
            },
            trigger: self
                .trigger
                .or(existing.map(|r| r.trigger))
                .ok_or_else(|| missing("trigger"))?,
            condition: self
                .condition
                .or_else(|| existing.map(|r| r.condition.clone()))
                .unwrap_or(Value::Bool(true)),
            effect: self
                .effect
                .or_else(|| existing.map(|r| r.effect.clone()))
                .ok_or_else(|| missing("effect"))?,
            enabled: self.enabled.or(existing.map(|r| r.enabled)).unwrap_or(true),
            author: author.to_string(),
            created_at: existing.map_or(now, |r| r.created_at),
            updated_at: now,
        };
        rule.validate()?;
        Ok(rule)
    }
}

impl Rule {
    /// Everything checked at save time, so that a saved rule is cheap to run.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.name.chars().count() > NAME_MAX || self.name.chars().any(char::is_control) {
            return Err(ApiError::invalid_at(
                "name",
                format!(
                    "a rule's name is at most {NAME_MAX} characters without control characters"
                ),
            ));
        }
        validate_condition(&self.condition).map_err(|e| e.within("condition"))?;
        self.effect.validate().map_err(|e| e.within("effect"))?;
        Ok(())
    }
}

impl RuleEffect {
    /// The action a rule may run, with arguments that fit its schema once
    /// templates are filled in (a template stands for a value of the right
    /// type). Fields are named from the effect (`action`, `args.body`).
    pub(crate) fn validate(&self) -> Result<&'static ActionSpec, ApiError> {
        let action = spec(&self.action).map_err(|_| {
            ApiError::invalid_at("action", format!("unknown action `{}`", self.action))
        })?;
        if NOT_AN_EFFECT.contains(&action.name) {
            return Err(ApiError::invalid_at(
                "action",
                format!("`{}` cannot be a rule's effect", action.name),
            ));
        }
        if self.args.to_string().len() > EFFECT_ARGS_BYTES_MAX {
            return Err(ApiError::invalid_at(
                "args",
                format!("a rule's effect arguments are at most {EFFECT_ARGS_BYTES_MAX} bytes"),
            ));
        }
        check_templates(&self.args).map_err(|e| e.within("args"))?;
        validate_args(action, &placeholder_args(action, &self.args))
            .map_err(|e| e.within("args"))?;
        Ok(action)
    }
}

/// The arguments of `set_rule` for a rule sent on its own (`POST …/rules`
/// with no `id`, `PATCH …/rules/{id}` with one). Errors about the rule name
/// their field from the rule (`set_rule`'s own say `rule.…`, see
/// [`as_rule_body`]).
pub fn set_rule_args(body: Value, id: Option<&str>) -> Result<Value, ApiError> {
    let mut rule = body;
    if let Some(id) = id {
        // Parsing first gives a clear error for a body that is no rule.
        RuleDraft::parse(&rule)?;
        rule["id"] = json!(id);
    }
    Ok(json!({ "rule": rule }))
}

/// An error of `set_rule` as the rule routes answer it: their body is the
/// rule itself, so `rule.condition` is `condition` there.
pub fn as_rule_body(e: ApiError) -> ApiError {
    match e {
        ApiError::InvalidInput {
            message,
            field: Some(f),
        } => {
            let field = match f.strip_prefix("rule") {
                Some("") => None,
                Some(rest) => Some(rest.trim_start_matches('.').to_string()),
                None => Some(f),
            };
            ApiError::InvalidInput { message, field }
        }
        other => other,
    }
}

/// Whether someone with `role` may read the room's rules: admins and owners
/// (members see what rules do, never their conditions or authors).
pub fn may_read(role: Role) -> bool {
    can(role, Permission::ManageMembers)
}

/// A frame of the room's stream as someone who may not read rules receives
/// it: a `collaboration_updated` event without its changes to rules
/// (`rules.<id>` paths; its version still counts). `None` when the frame
/// shows no rule, so it goes out as it is.
pub fn without_rules(frame: &ServerFrame) -> Option<ServerFrame> {
    let ServerFrame::Event { event, seq, data } = frame else {
        return None;
    };
    if event != "collaboration_updated" {
        return None;
    }
    let changes = data.get("changes")?.as_array()?;
    let is_rule = |c: &&Value| c["path"].as_str().is_some_and(|p| p.starts_with("rules."));
    if !changes.iter().any(|c| is_rule(&c)) {
        return None;
    }
    let mut data = data.clone();
    data["changes"] = changes.iter().filter(|c| !is_rule(c)).cloned().collect();
    Some(ServerFrame::Event {
        event: event.clone(),
        seq: *seq,
        data,
    })
}

/// The JSON every stored `collaboration_updated` frame starts with (serde
/// writes the tag, then the fields in order).
const UPDATED_PREFIX: &str = r#"{"type":"event","event":"collaboration_updated","#;

/// [`without_rules`] for a stored frame's JSON (what a replay sends): only
/// `collaboration_updated` events are parsed, the rest pass untouched.
pub fn stored_without_rules(text: &str) -> Option<String> {
    if !text.starts_with(UPDATED_PREFIX) {
        return None;
    }
    // Read as the one frame type it is, not through every frame type's
    // deserializer (which would cost the Worker's bundle all of them).
    #[derive(Deserialize)]
    struct Stored {
        event: String,
        seq: Option<u64>,
        data: Value,
    }
    let Stored { event, seq, data } = serde_json::from_str(text).ok()?;
    without_rules(&ServerFrame::Event { event, seq, data }).map(|f| f.to_json())
}

/// Bounds, operators and shape of a JSONLogic condition. An error names the
/// part of the condition it concerns, as a path from the condition (`and[1]`,
/// `if[0].==[1]`; none for the whole).
pub fn validate_condition(condition: &Value) -> Result<(), ApiError> {
    if condition.to_string().len() > CONDITION_BYTES_MAX {
        return Err(ApiError::invalid(format!(
            "a condition is at most {CONDITION_BYTES_MAX} bytes"
        )));
    }
    let mut nodes = 0;
    walk(condition, "", 1, 0, &mut nodes)
}

/// Invalid input at `path` of a condition (the whole one when empty).
fn at(path: &str, message: String) -> ApiError {
    match path {
        "" => ApiError::invalid(message),
        _ => ApiError::invalid_at(path, message),
    }
}

/// A path into a condition: `and[1]` is the second operand of the `and` of
/// the node at `path`.
fn child(path: &str, key: &str) -> String {
    match (path.is_empty(), key.starts_with('[')) {
        (true, _) | (false, true) => format!("{path}{key}"),
        (false, false) => format!("{path}.{key}"),
    }
}

/// The crate parses before it evaluates: with empty data, errors of shape
/// (arity, malformed operations) show; errors about the data do not count.
/// Its error type is private, so the kinds are told apart by their text.
/// Checked on each operation after its operands, so the innermost one to
/// blame is named.
fn check_shape(operation: &Value, path: &str) -> Result<(), ApiError> {
    let Err(e) = jsonlogic_rs::apply(operation, &json!({})) else {
        return Ok(());
    };
    let e = e.to_string();
    let shape = [
        "Wrong argument count",
        "Invalid rule",
        "Invalid variable key",
    ];
    if shape.iter().any(|s| e.starts_with(s)) {
        return Err(at(
            path,
            format!("the condition is not valid JSONLogic: {e}"),
        ));
    }
    Ok(())
}

fn walk(
    v: &Value,
    path: &str,
    depth: usize,
    iterating: usize,
    nodes: &mut usize,
) -> Result<(), ApiError> {
    let here = |message: String| at(path, message);
    *nodes += 1;
    if *nodes > CONDITION_NODES_MAX {
        return Err(here(format!(
            "a condition has at most {CONDITION_NODES_MAX} parts"
        )));
    }
    if depth > CONDITION_DEPTH_MAX {
        return Err(here(format!(
            "a condition nests at most {CONDITION_DEPTH_MAX} levels"
        )));
    }
    match v {
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            walk(
                item,
                &child(path, &format!("[{i}]")),
                depth + 1,
                iterating,
                nodes,
            )
        }),
        Value::Object(map) => {
            let mut ops = map.iter();
            let (Some((op, operand)), None) = (ops.next(), ops.next()) else {
                return Err(here(
                    "each operation in a condition is an object with exactly one operator".into(),
                ));
            };
            if !OPERATORS.contains(&op.as_str()) {
                return Err(here(format!(
                    "`{op}` is not an operator a condition may use"
                )));
            }
            let inner = child(path, op);
            let is_loop = ITERATING.contains(&op.as_str());
            if is_loop && iterating + 1 > ITERATION_NESTING_MAX {
                return Err(here(format!(
                    "a condition iterates at most {ITERATION_NESTING_MAX} levels deep"
                )));
            }
            match operand {
                // The first operand of a loop is the array; the rest runs once
                // per element.
                Value::Array(items) if is_loop => {
                    items.iter().enumerate().try_for_each(|(i, item)| {
                        let inside = iterating + usize::from(i > 0);
                        walk(
                            item,
                            &child(&inner, &format!("[{i}]")),
                            depth + 1,
                            inside,
                            nodes,
                        )
                    })?
                }
                other => walk(other, &inner, depth + 1, iterating, nodes)?,
            }
            check_shape(v, path)
        }
        _ => Ok(()),
    }
}

/// JSONLogic truthiness of a condition's result.
pub fn evaluate(condition: &Value, data: &Value) -> Result<bool, ApiError> {
    let out = jsonlogic_rs::apply(condition, data)
        .map_err(|e| ApiError::invalid(format!("the condition failed: {e}")))?;
    Ok(match out {
        Value::Null => false,
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    })
}

/// Every `{{path}}` in the strings of `v`: each must name `event.…` or
/// `state.…`, with balanced braces. An error names the string.
fn check_templates(v: &Value) -> Result<(), ApiError> {
    match v {
        Value::String(s) => placeholders(s).map(|_| ()),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            check_templates(item).map_err(|e| e.within(&format!("[{i}]")))
        }),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, item)| check_templates(item).map_err(|e| e.within(k))),
        _ => Ok(()),
    }
}

/// The parts of a template string: literal text and `{{path}}`s.
enum Part<'a> {
    Text(&'a str),
    Path(&'a str),
}

fn placeholders(s: &str) -> Result<Vec<Part<'_>>, ApiError> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        parts.push(Part::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| ApiError::invalid(format!("an unclosed `{{{{` in `{s}`")))?;
        let path = after[..end].trim();
        let valid = (path.starts_with("event.") || path.starts_with("state."))
            && path
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
        if !valid {
            return Err(ApiError::invalid(format!(
                "`{{{{{path}}}}}` must name a field of `event` or `state`, like `event.data.message.body`"
            )));
        }
        parts.push(Part::Path(path));
        rest = &after[end + 2..];
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// The arguments with each template standing in for a value of the type the
/// catalogue wants, for checking a rule's shape before it ever runs.
fn placeholder_args(action: &ActionSpec, args: &Value) -> Value {
    let Value::Object(map) = args else {
        return args.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let templated = matches!(v, Value::String(s) if s.contains("{{"));
        let ty = action
            .args
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, t)| t.trim_end_matches('?'));
        let stand_in = match (templated, ty) {
            (true, Some("integer")) => json!(0),
            (true, Some("array")) => json!([]),
            (true, Some("object")) => json!({}),
            // A string that names an id, filled in at run time, is checked then.
            (true, _) => json!("x"),
            _ => v.clone(),
        };
        out.insert(k.clone(), stand_in);
    }
    Value::Object(out)
}

fn lookup<'a>(data: &'a Value, path: &str) -> &'a Value {
    let mut at = data;
    for key in path.split('.') {
        at = match at {
            Value::Object(m) => m.get(key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .unwrap_or(&Value::Null);
    }
    at
}

/// Fills in the templates of an effect's arguments from `data`. A string that
/// is exactly one `{{path}}` becomes the value there (numbers stay numbers);
/// otherwise each is replaced by its text.
pub fn render(args: &Value, data: &Value) -> Result<Value, ApiError> {
    Ok(match args {
        Value::String(s) if s.contains("{{") => {
            let parts = placeholders(s)?;
            if let [Part::Text(""), Part::Path(p), Part::Text("")] = parts.as_slice() {
                return Ok(lookup(data, p).clone());
            }
            let mut out = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Path(p) => match lookup(data, p) {
                        Value::String(s) => out.push_str(s),
                        Value::Null => {}
                        other => out.push_str(&other.to_string()),
                    },
                }
                if out.len() > RENDERED_STRING_MAX {
                    return Err(ApiError::invalid(format!(
                        "a templated argument came to more than {RENDERED_STRING_MAX} bytes"
                    )));
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render(i, data))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render(v, data)?)))
                .collect::<Result<_, ApiError>>()?,
        ),
        other => other.clone(),
    })
}

/// Something that happened in a room that rules may react to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub trigger: Trigger,
    /// The user (or `ai`) whose action caused it.
    pub actor: String,
    pub data: Value,
}

/// What a cascade does with one planned effect ([`Cascade::admit`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// Run it with these arguments, as an attempt by the rule's author (which
    /// is audited); what it caused goes to [`Cascade::caused`].
    Run(Value),
    /// Audit this refusal (`audited`: the arguments as recorded) and go on.
    Refuse { audited: Value, error: ApiError },
    /// The cascade has caused all the effects it may: audit this refusal and
    /// run nothing more of it.
    Stop { audited: Value, error: ApiError },
}

/// What a rule asks to run for an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub rule_id: String,
    pub author: String,
    pub action: String,
    /// The rendered arguments, or why the rule could not be applied.
    pub args: Result<Value, ApiError>,
}

/// The enabled rules for `event` whose condition holds, in id order, with
/// their arguments rendered. `state` is the room state as conditions see it.
pub fn plan(rules: &[Rule], event: &Event, state: &Value) -> Vec<Planned> {
    let data = json!({ "event": event, "state": state });
    rules
        .iter()
        .filter(|r| r.enabled && r.trigger == event.trigger)
        .filter_map(|r| {
            let args = match evaluate(&r.condition, &data) {
                Ok(false) => return None,
                Ok(true) => render(&r.effect.args, &data),
                Err(e) => Err(e),
            };
            Some(Planned {
                rule_id: r.id.clone(),
                author: r.author.clone(),
                action: r.effect.action.clone(),
                args,
            })
        })
        .collect()
}

/// The events one originating event leads to, and the effects they may still
/// cause: at most [`EFFECTS_PER_EVENT_MAX`] in all, so no chain of rules loops.
/// The object drives it: each event's rules are planned ([`plan`]) against
/// the room as it is then, each planned effect is admitted or refused here,
/// and what an effect caused goes back in, breadth first.
#[derive(Debug)]
pub struct Cascade {
    queue: VecDeque<Event>,
    effects: usize,
}

impl Cascade {
    pub fn new(origin: Event) -> Self {
        Self {
            queue: VecDeque::from([origin]),
            effects: 0,
        }
    }

    pub fn next_event(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// What to do with one of an event's planned effects: run it, or audit
    /// why not — its arguments did not fill, or the cascade has caused all
    /// the effects it may (then nothing more of it runs).
    pub fn admit(&mut self, planned: &Planned) -> Admit {
        // What a refused effect records: never the event's text its
        // templates were filled with.
        let audited = || {
            audited_args(
                &planned.action,
                planned.args.as_ref().unwrap_or(&Value::Null),
                false,
            )
        };
        if self.effects >= EFFECTS_PER_EVENT_MAX {
            return Admit::Stop {
                audited: audited(),
                error: ApiError::Conflict {
                    code: crate::error::code::RULE_CHAIN_LIMIT,
                    message: format!(
                        "one event may cause at most {EFFECTS_PER_EVENT_MAX} rule effects; the rest were not run"
                    ),
                },
            };
        }
        self.effects += 1;
        match &planned.args {
            Ok(args) => Admit::Run(args.clone()),
            Err(error) => Admit::Refuse {
                audited: audited(),
                error: error.clone(),
            },
        }
    }

    /// The events an effect that ran caused, for the rules to react to in turn.
    pub fn caused(&mut self, events: impl IntoIterator<Item = Event>) {
        self.queue.extend(events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The state holds the rules: these tests run set_rule on it.
    use crate::actions::RoomState;
    use proptest::prelude::*;

    fn draft(v: Value) -> Result<Rule, ApiError> {
        RuleDraft::parse(&v)?.apply(None, "r1".into(), "u1", 10)
    }

    fn greeting() -> Value {
        json!({
            "name": "greet",
            "trigger": "member_joined",
            "effect": {"action": "send_message", "args": {"body": "Welcome, {{event.data.user_id}}!"}}
        })
    }

    #[test]
    fn a_rule_is_made_and_changed() {
        let r = draft(greeting()).unwrap();
        assert_eq!(
            (r.trigger, r.condition.clone(), r.enabled),
            (Trigger::MemberJoined, json!(true), true)
        );
        let patched = RuleDraft::parse(&json!({"enabled": false}))
            .unwrap()
            .apply(Some(&r), r.id.clone(), "u2", 20)
            .unwrap();
        assert_eq!(
            (
                patched.enabled,
                patched.author.as_str(),
                patched.created_at,
                patched.updated_at
            ),
            (false, "u2", 10, 20)
        );
        assert_eq!(patched.effect, r.effect);
        assert_eq!(
            draft(json!({"trigger": "file_added"}))
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn rule_routes_become_set_rule_arguments() {
        let body = json!({"enabled": false});
        assert_eq!(
            set_rule_args(body.clone(), Some("r2")).unwrap(),
            json!({"rule": {"enabled": false, "id": "r2"}})
        );
        assert_eq!(
            set_rule_args(body.clone(), None).unwrap(),
            json!({ "rule": body })
        );
        assert_eq!(
            set_rule_args(json!([1]), Some("r2")).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn malicious_or_broken_rules_are_refused_at_save() {
        let mut deep = json!(true);
        for _ in 0..CONDITION_DEPTH_MAX + 1 {
            deep = json!({ "!": [deep] });
        }
        let huge = json!({"in": ["x", "y".repeat(CONDITION_BYTES_MAX)]});
        let wide = json!({"and": vec![json!({"==": [1, 1]}); CONDITION_NODES_MAX]});
        let nested_loops = json!({"some": [{"var": "state.activities"},
            {"some": [{"var": "state.activities"},
                {"some": [{"var": "state.activities"}, {"==": [1, 1]}]}]}]});
        for (condition, why, field) in [
            (deep, "nests", "condition.![0].![0].![0].![0].![0].![0]"),
            (huge, "bytes", "condition"),
            (wide, "parts", "condition.and[63].==[0]"),
            (nested_loops, "iterates", "condition.some[1].some[1]"),
            (json!({"eval": "rm -rf"}), "not an operator", "condition"),
            (
                json!({"==": [1, 1], "!=": [1, 2]}),
                "exactly one operator",
                "condition",
            ),
            (json!({"log": "x"}), "not an operator", "condition"),
            (json!({"!": [1, 2, 3]}), "not valid JSONLogic", "condition"),
            (
                json!({"if": [{"==": [1, 1]}, {"and": [true, {"exec": 1}]}, false]}),
                "not an operator",
                "condition.if[1].and[1]",
            ),
            (
                json!({"or": [true, {"in": [{"var": "event.data.message.body"}]}]}),
                "not valid JSONLogic",
                "condition.or[1]",
            ),
        ] {
            let mut rule = greeting();
            rule["condition"] = condition;
            let e = draft(rule).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(why), "{e} should say {why}");
            assert_eq!(e.field(), Some(field), "{e}");
        }
        for (effect, why, field) in [
            (
                json!({"action": "format_disk"}),
                "unknown action",
                "effect.action",
            ),
            (
                json!({"action": "set_rule", "args": {"rule": {}}}),
                "cannot be a rule",
                "effect.action",
            ),
            (
                json!({"action": "send_message", "args": {"body": "{{event.data"}}),
                "unclosed",
                "effect.args.body",
            ),
            (
                json!({"action": "send_message", "args": {"body": "{{env.JWT_SECRET}}"}}),
                "must name a field",
                "effect.args.body",
            ),
            (
                json!({"action": "assign", "args": {"id": "a1", "user_ids": ["u1", "{{nope}}"]}}),
                "must name a field",
                "effect.args.user_ids[1]",
            ),
            (
                json!({"action": "send_message", "args": {"text": "hi"}}),
                "no argument",
                "effect.args.text",
            ),
            (
                json!({"action": "send_message", "args": {}}),
                "needs",
                "effect.args.body",
            ),
            (
                json!({"action": "schedule_activity", "args": {"id": "a1", "at": "soon"}}),
                "must be integer",
                "effect.args.at",
            ),
            (
                json!({"action": "send_message", "args": {"body": "x".repeat(EFFECT_ARGS_BYTES_MAX)}}),
                "bytes",
                "effect.args",
            ),
            (
                json!({"action": "send_message", "with": 1}),
                "unknown field",
                "effect.with",
            ),
            (json!({"args": {}}), "needs `action`", "effect.action"),
            (json!({"action": 5}), "must be", "effect.action"),
        ] {
            let mut rule = greeting();
            rule["effect"] = effect;
            let e = draft(rule).unwrap_err();
            assert!(e.to_string().contains(why), "{e} should say {why}");
            assert_eq!(e.field(), Some(field), "{e}");
        }
        for (rule, field) in [
            (json!({"trigger": "on_the_moon"}), "trigger"),
            (json!({"trigger": "file_added", "sudo": true}), "sudo"),
            (json!({"name": 5}), "name"),
            (json!({"enabled": "yes"}), "enabled"),
            (
                json!({"name": "x".repeat(NAME_MAX + 1), "trigger": "file_added",
                "effect": {"action": "send_message", "args": {"body": "x"}}}),
                "name",
            ),
            (
                json!({"effect": {"action": "send_message", "args": {"body": "x"}}}),
                "trigger",
            ),
            (json!({"trigger": "file_added"}), "effect"),
        ] {
            let e = draft(rule.clone()).unwrap_err();
            assert_eq!((e.status(), e.field()), (400, Some(field)), "{rule}: {e}");
        }
        assert_eq!(draft(json!([1])).unwrap_err().field(), None);
        // A templated argument stands for a value of the right type.
        let mut rule = greeting();
        rule["effect"] = json!({"action": "schedule_activity",
            "args": {"id": "{{event.data.activity.id}}", "at": "{{event.data.activity.due_at}}"}});
        assert!(draft(rule).is_ok());
    }

    #[test]
    fn conditions_see_the_event_and_the_state() {
        let mut rule = draft(greeting()).unwrap();
        rule.trigger = Trigger::MessagePosted;
        rule.condition = json!({"and": [
            {"in": ["urgent", {"var": "event.data.message.body"}]},
            {"<": [{"var": "state.open_activities"}, 3]}
        ]});
        rule.effect = RuleEffect {
            action: "propose_activity".into(),
            args: json!({"title": "Follow up: {{event.data.message.body}}", "due_at": "{{event.data.message.at}}"}),
        };
        let event = |body: &str| Event {
            trigger: Trigger::MessagePosted,
            actor: "u2".into(),
            data: json!({"message": {"body": body, "at": 77}}),
        };
        let state = json!({"open_activities": 1});
        let planned = plan(std::slice::from_ref(&rule), &event("urgent: fix"), &state);
        assert_eq!(planned.len(), 1);
        assert_eq!(
            planned[0].args,
            Ok(json!({"title": "Follow up: urgent: fix", "due_at": 77}))
        );
        assert!(plan(std::slice::from_ref(&rule), &event("calm"), &state).is_empty());
        assert!(plan(
            std::slice::from_ref(&rule),
            &event("urgent"),
            &json!({"open_activities": 5})
        )
        .is_empty());
        // Other triggers and disabled rules do not apply.
        let joined = Event {
            trigger: Trigger::MemberJoined,
            ..event("urgent")
        };
        assert!(plan(std::slice::from_ref(&rule), &joined, &state).is_empty());
        rule.enabled = false;
        assert!(plan(&[rule], &event("urgent"), &state).is_empty());
    }

    #[test]
    fn truthiness_follows_jsonlogic() {
        for (logic, want) in [
            (json!(true), true),
            (json!({"var": "missing"}), false),
            (json!({"var": "zero"}), false),
            (json!({"var": "empty"}), false),
            (json!({"var": "list"}), true),
            (json!({"cat": ["a", "b"]}), true),
        ] {
            let data = json!({"zero": 0, "empty": "", "list": [1]});
            assert_eq!(evaluate(&logic, &data).unwrap(), want, "{logic}");
        }
    }

    /// The object's loop (`workflows::cascade`) over rules whose effects
    /// post a message, which is an event again: what it ran and refused.
    fn cascade(rules: &[Rule], origin: Event) -> Vec<String> {
        let mut log = Vec::new();
        let mut posted = 0;
        let mut c = Cascade::new(origin);
        while let Some(event) = c.next_event() {
            for planned in plan(rules, &event, &json!({})) {
                match c.admit(&planned) {
                    Admit::Run(args) => {
                        posted += 1;
                        log.push(format!("{} ran: {}", planned.rule_id, args["body"]));
                        c.caused([Event {
                            trigger: Trigger::MessagePosted,
                            actor: planned.author.clone(),
                            data: json!({ "body": args["body"], "n": posted }),
                        }]);
                    }
                    Admit::Refuse { audited, error } => log.push(format!(
                        "{} refused: {} {audited}",
                        planned.rule_id,
                        error.code()
                    )),
                    Admit::Stop { audited, error } => {
                        log.push(format!(
                            "{} stopped: {} {audited}",
                            planned.rule_id,
                            error.code()
                        ));
                        return log;
                    }
                }
            }
        }
        log
    }

    fn rule(id: &str, v: Value) -> Rule {
        RuleDraft::parse(&v)
            .unwrap()
            .apply(None, id.into(), "u1", 10)
            .unwrap()
    }

    fn posted(body: &str) -> Event {
        Event {
            trigger: Trigger::MessagePosted,
            actor: "u2".into(),
            data: json!({ "body": body }),
        }
    }

    #[test]
    fn a_rule_that_answers_itself_runs_at_the_bound_then_stops_once_without_the_text() {
        let echo = rule(
            "r1",
            json!({"name": "echo", "trigger": "message_posted",
                   "effect": {"action": "send_message", "args": {"body": "re: {{event.data.body}}"}}}),
        );
        let log = cascade(&[echo], posted("secret"));
        assert_eq!(log.len(), EFFECTS_PER_EVENT_MAX + 1, "{log:#?}");
        assert_eq!(log[0], r#"r1 ran: "re: secret""#);
        assert_eq!(log[1], r#"r1 ran: "re: re: secret""#);
        let last = log.last().unwrap();
        assert!(last.starts_with("r1 stopped: rule_chain_limit"), "{last}");
        assert!(
            !last.contains("secret"),
            "the refusal records sizes, not text: {last}"
        );
    }

    #[test]
    fn effects_run_breadth_first_and_a_refused_one_does_not_stop_the_others() {
        let rules = [
            rule(
                "r1",
                json!({"name": "ack", "trigger": "message_posted",
                       "condition": {"==": [{"var": "event.data.body"}, "go"]},
                       "effect": {"action": "send_message", "args": {"body": "a"}}}),
            ),
            rule(
                "r2",
                json!({"name": "too long", "trigger": "message_posted",
                       "condition": {"==": [{"var": "event.data.body"}, "go"]},
                       "effect": {"action": "send_message",
                                  "args": {"body": "{{event.data.text}} and {{event.data.text}}"}}}),
            ),
            rule(
                "r3",
                json!({"name": "also", "trigger": "message_posted",
                       "condition": {"in": [{"var": "event.data.body"}, ["go", "a"]]},
                       "effect": {"action": "send_message", "args": {"body": "b"}}}),
            ),
        ];
        let mut origin = posted("go");
        origin.data["text"] = json!("x".repeat(RENDERED_STRING_MAX / 2 + 1));
        let log = cascade(&rules, origin);
        assert_eq!(
            log,
            vec![
                r#"r1 ran: "a""#.to_string(),
                "r2 refused: invalid_input null".into(),
                r#"r3 ran: "b""#.into(),
                // What r1's message caused, before what r3's did (nothing).
                r#"r3 ran: "b""#.into(),
            ]
        );
    }

    #[test]
    fn rules_reach_only_those_who_may_read_them_on_every_path() {
        use crate::actions::Effect;
        use crate::catalogue::spec as action;
        use crate::chat::{record_event, MemStore};
        assert!(may_read(Role::Admin) && may_read(Role::Owner));
        assert!(!may_read(Role::Member) && !may_read(Role::Viewer));
        let mut state = RoomState::default();
        let mut changes = Vec::new();
        for (name, args) in [
            ("set_rule", json!({ "rule": greeting() })),
            ("propose_activity", json!({ "title": "Plan" })),
        ] {
            let Effect::State(c) = state.run(action(name).unwrap(), &args, "u1", 5).unwrap() else {
                panic!("{name} changes the state");
            };
            changes.extend(c);
        }
        let mut store = MemStore::default();
        let data = json!({ "version": state.version, "changes": changes });
        let frame = record_event(&mut store, "collaboration_updated", data).unwrap();
        let stored = frame.to_json();
        assert!(stored.starts_with(UPDATED_PREFIX), "{stored}");
        assert!(stored.contains("Welcome") && stored.contains("rules.r1"));
        // Live, and replayed from storage: the same frame without the rule.
        let live = without_rules(&frame).unwrap().to_json();
        assert_eq!(stored_without_rules(&stored), Some(live.clone()));
        assert!(
            !live.contains("rules.") && !live.contains("Welcome"),
            "{live}"
        );
        assert!(live.contains("activities.a1") && live.contains("\"version\":2"));
        // Frames without rules go out as they are.
        let plain = record_event(
            &mut store,
            "collaboration_updated",
            json!({ "version": 3, "changes": [] }),
        )
        .unwrap();
        assert_eq!(without_rules(&plain), None);
        assert_eq!(stored_without_rules(&plain.to_json()), None);
        let message =
            record_event(&mut store, "file_added", json!({ "path": "rules.r1" })).unwrap();
        assert_eq!(without_rules(&message), None);
    }

    #[test]
    fn the_rule_routes_name_fields_from_the_rule() {
        use crate::catalogue::spec as action;
        let mut state = RoomState::default();
        let bad = json!({"rule": {"trigger": "file_added", "condition": {"exec": 1},
            "effect": {"action": "send_message", "args": {"body": "x"}}}});
        let e = state
            .run(action("set_rule").unwrap(), &bad, "u1", 1)
            .unwrap_err();
        assert_eq!(e.field(), Some("rule.condition"));
        assert_eq!(as_rule_body(e).field(), Some("condition"));
        let not_a_rule = state.run(action("set_rule").unwrap(), &json!({"rule": 5}), "u1", 1);
        assert_eq!(as_rule_body(not_a_rule.unwrap_err()).field(), None);
        assert_eq!(
            as_rule_body(ApiError::invalid_at("title", "x")).field(),
            Some("title")
        );
        assert_eq!(
            as_rule_body(ApiError::NotFound("rule")),
            ApiError::NotFound("rule")
        );
    }

    proptest! {
        /// Whatever text a template is filled with, a literal stays literal:
        /// substituted values are never themselves expanded.
        #[test]
        fn substitution_is_not_recursive(body in ".{0,40}") {
            let data = json!({"event": {"data": {"body": body}}});
            let out = render(&json!("said: {{event.data.body}}"), &data).unwrap();
            prop_assert_eq!(out, json!(format!("said: {body}")));
        }
    }
}
