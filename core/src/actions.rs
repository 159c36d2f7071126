//! Collaboration workflows: a room's versioned state (activities and
//! settings), what each action of the catalogue (`crate::catalogue`) does to
//! it, the activity life-cycle, and the rules of approvals. Every change to
//! the state says what it changed (`path`, `old`, `new`) so clients patch
//! their view from `collaboration_updated` events.
//!
//! Rules (`crate::rules`) are part of the state: `set_rule` and `delete_rule`
//! change it like any other action.

pub use crate::actor::ActorKind;
use crate::actor::{ChangedBy, LastChange};
use crate::catalogue::{validate_args, ActionSpec};
use crate::protocol::Identity;
use crate::rooms::Role;
use crate::rules::{Event, Rule, RuleDraft, Trigger, RULES_MAX};
use crate::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 4000;
pub const ASSIGNEES_MAX: usize = 20;
pub const ACTIVITIES_MAX: usize = 1000;
/// An approval not decided within this time expires.
pub const APPROVAL_TTL_SECS: u64 = 7 * 24 * 3600;
/// Requests a room holds waiting for an owner at once.
pub const PENDING_APPROVALS_MAX: usize = 100;
/// Longest comment an owner gives with a decision (characters).
pub const COMMENT_MAX: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityStatus {
    Proposed,
    Scheduled,
    InProgress,
    Done,
    Cancelled,
}

impl ActivityStatus {
    pub const ALL: [ActivityStatus; 5] = [
        Self::Proposed,
        Self::Scheduled,
        Self::InProgress,
        Self::Done,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Scheduled => "scheduled",
            Self::InProgress => "in_progress",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }

    /// The life-cycle: forward only; done and cancelled are final.
    pub const fn can_move_to(self, to: ActivityStatus) -> bool {
        use ActivityStatus::*;
        matches!(
            (self, to),
            (Proposed, Scheduled)
                | (Proposed, InProgress)
                | (Proposed, Cancelled)
                | (Scheduled, Scheduled)
                | (Scheduled, InProgress)
                | (Scheduled, Cancelled)
                | (InProgress, Done)
                | (InProgress, Cancelled)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: ActivityStatus,
    pub created_by: String,
    pub assignees: Vec<String>,
    pub scheduled_at: Option<u64>,
    pub due_at: Option<u64>,
    /// User ids, each once.
    pub votes: Vec<String>,
    pub updated_at: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSettings {
    pub archived: bool,
}

/// Everything the workflows own in a room. `version` increases by one with
/// every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    pub version: u64,
    pub activities: BTreeMap<String, Activity>,
    pub settings: RoomSettings,
    /// The number the next activity gets (ids are `a<n>`).
    pub next_activity: u64,
    /// Admins only: not part of the state members read.
    #[serde(skip)]
    pub rules: BTreeMap<String, Rule>,
    /// The number the next rule gets (ids are `r<n>`).
    #[serde(skip)]
    pub next_rule: u64,
    /// Who made the latest change, and when (`None` before the first, and in
    /// rooms whose state last changed before this was kept).
    #[serde(default)]
    pub last_change: Option<LastChange>,
}

/// One field that changed, for `collaboration_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// An action that is not a change of the room state: the room object or the
/// Worker carries it out (messages, members, rules, files, the room).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    State(Vec<Change>),
    External { name: &'static str, args: Value },
}

fn text(args: &Value, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    match args.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => {
            let s = s.trim();
            if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') {
                return Err(ApiError::invalid_at(
                    key,
                    format!("`{key}` must be at most {max} characters without control characters"),
                ));
            }
            Ok(Some(s.to_string()))
        }
    }
}

impl RoomState {
    fn activity(&self, args: &Value) -> Result<&Activity, ApiError> {
        let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
        self.activities
            .get(id)
            .ok_or(ApiError::NotFound("activity"))
    }

    /// Runs a validated action by `actor` at `now` (unix seconds). State
    /// actions change the state (one version step) and return their changes;
    /// the others are returned for the caller to carry out. Nothing changes
    /// on error.
    pub fn run(
        &mut self,
        spec: &'static ActionSpec,
        args: &Value,
        actor: &str,
        now: u64,
    ) -> Result<Effect, ApiError> {
        validate_args(spec, args)?;
        if self.settings.archived {
            return Err(ApiError::room_archived());
        }
        let mut next = self.clone();
        let changes = match spec.name {
            "propose_activity" => next.propose(args, actor, now)?,
            "update_activity" => {
                let mut a = self.activity(args)?.clone();
                if matches!(a.status, ActivityStatus::Done | ActivityStatus::Cancelled) {
                    return Err(transition_error(a.status, a.status));
                }
                if let Some(t) = text(args, "title", TITLE_MAX)? {
                    if t.is_empty() {
                        return Err(ApiError::invalid_at("title", "`title` must not be empty"));
                    }
                    a.title = t;
                }
                if let Some(d) = text(args, "description", DESCRIPTION_MAX)? {
                    a.description = d;
                }
                if let Some(due) = args.get("due_at").and_then(Value::as_u64) {
                    a.due_at = Some(due);
                }
                next.put(a, now)
            }
            "vote_activity" => {
                let mut a = self.activity(args)?.clone();
                if a.status != ActivityStatus::Proposed {
                    return Err(ApiError::Conflict {
                        code: crate::error::code::INVALID_TRANSITION,
                        message: "only proposed activities take votes".into(),
                    });
                }
                match a.votes.iter().position(|v| v == actor) {
                    Some(i) => {
                        a.votes.remove(i);
                    }
                    None => a.votes.push(actor.to_string()),
                }
                next.put(a, now)
            }
            "schedule_activity" => {
                let at = args.get("at").and_then(Value::as_u64).unwrap_or_default();
                next.transition(args, ActivityStatus::Scheduled, now, |a| {
                    a.scheduled_at = Some(at)
                })?
            }
            "start_activity" => next.transition(args, ActivityStatus::InProgress, now, |_| {})?,
            "complete_activity" => next.transition(args, ActivityStatus::Done, now, |_| {})?,
            "cancel_activity" => next.transition(args, ActivityStatus::Cancelled, now, |_| {})?,
            "assign" => {
                let mut a = self.activity(args)?.clone();
                let ids: Vec<String> = args["user_ids"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                if ids.len() > ASSIGNEES_MAX
                    || ids.iter().any(|i| !crate::ids::is_valid_path_param(i))
                {
                    return Err(ApiError::invalid_at(
                        "user_ids",
                        format!("`user_ids` must be at most {ASSIGNEES_MAX} user ids"),
                    ));
                }
                let mut unique: Vec<String> = Vec::new();
                for id in ids {
                    if !unique.contains(&id) {
                        unique.push(id);
                    }
                }
                a.assignees = unique;
                next.put(a, now)
            }
            "set_rule" => next
                .set_rule(&args["rule"], actor, now)
                .map_err(|e| e.within("rule"))?,
            "delete_rule" => {
                let id = args["id"].as_str().unwrap_or_default();
                let old = next.rules.remove(id).ok_or(ApiError::NotFound("rule"))?;
                vec![Change {
                    path: format!("rules.{id}"),
                    old: json_of(&old),
                    new: Value::Null,
                }]
            }
            "archive_room" => {
                next.settings.archived = true;
                vec![Change {
                    path: "settings.archived".into(),
                    old: json!(false),
                    new: json!(true),
                }]
            }
            name => {
                return Ok(Effect::External {
                    name,
                    args: args.clone(),
                })
            }
        };
        if changes.is_empty() {
            return Ok(Effect::State(changes));
        }
        next.version = self.version + 1;
        *self = next;
        Ok(Effect::State(changes))
    }

    /// [`RoomState::run`] by `by`, who is remembered as the author of the
    /// change it makes (if it makes one).
    pub fn run_as(
        &mut self,
        spec: &'static ActionSpec,
        args: &Value,
        by: &ChangedBy,
        now: u64,
    ) -> Result<Effect, ApiError> {
        let effect = self.run(spec, args, &by.user_id, now)?;
        if matches!(&effect, Effect::State(changes) if !changes.is_empty()) {
            self.last_change = Some(LastChange {
                version: self.version,
                changed_by: by.clone(),
                changed_at: now,
            });
        }
        Ok(effect)
    }

    /// The `collaboration_updated` event of `changes` just made: the version,
    /// what changed, and who changed it when.
    pub fn updated_event(&self, changes: &[Change]) -> Value {
        let mut data = json!({ "version": self.version, "changes": changes });
        if let Some(last) = self
            .last_change
            .as_ref()
            .filter(|l| l.version == self.version)
        {
            data["changed_by"] = json!(last.changed_by);
            data["changed_at"] = json!(last.changed_at);
        }
        data
    }

    /// `If-Match: <version>` (quotes allowed): 412 when the state moved on,
    /// saying to what and who moved it.
    pub fn check_version(&self, if_match: Option<&str>) -> Result<(), ApiError> {
        let Some(h) = if_match else { return Ok(()) };
        let wanted = h.trim().trim_start_matches("W/").trim_matches('"');
        if wanted == "*" || wanted.parse::<u64>().ok() == Some(self.version) {
            return Ok(());
        }
        let version = self.version;
        let by = match &self.last_change {
            Some(l) => format!(
                " (last changed by {} at {})",
                l.changed_by.display_name,
                crate::dates::rfc3339(l.changed_at)
            ),
            None => String::new(),
        };
        let wanted: String = wanted.chars().take(40).collect();
        Err(ApiError::VersionConflict {
            message: format!(
                "the room state is at version {version}{by}, not {wanted}; reload and retry"
            ),
            current_version: version,
            last_change: self.last_change.clone().map(Box::new),
        })
    }

    fn propose(&mut self, args: &Value, actor: &str, now: u64) -> Result<Vec<Change>, ApiError> {
        if self.activities.len() >= ACTIVITIES_MAX {
            return Err(ApiError::Conflict {
                code: crate::error::code::TOO_MANY_ACTIVITIES,
                message: format!("a room holds at most {ACTIVITIES_MAX} activities"),
            });
        }
        let title = text(args, "title", TITLE_MAX)?.unwrap_or_default();
        if title.is_empty() {
            return Err(ApiError::invalid_at("title", "`title` must not be empty"));
        }
        self.next_activity += 1;
        let a = Activity {
            id: format!("a{}", self.next_activity),
            title,
            description: text(args, "description", DESCRIPTION_MAX)?.unwrap_or_default(),
            status: ActivityStatus::Proposed,
            created_by: actor.to_string(),
            assignees: Vec::new(),
            scheduled_at: None,
            due_at: args.get("due_at").and_then(Value::as_u64),
            votes: Vec::new(),
            updated_at: now,
        };
        Ok(self.put(a, now))
    }

    fn set_rule(&mut self, draft: &Value, actor: &str, now: u64) -> Result<Vec<Change>, ApiError> {
        let draft = RuleDraft::parse(draft)?;
        let (id, old) = match &draft.id {
            Some(id) => (
                id.clone(),
                Some(
                    self.rules
                        .get(id)
                        .ok_or(ApiError::NotFound("rule"))?
                        .clone(),
                ),
            ),
            None if self.rules.len() >= RULES_MAX => {
                return Err(ApiError::Conflict {
                    code: crate::error::code::TOO_MANY_RULES,
                    message: format!("a room holds at most {RULES_MAX} rules"),
                })
            }
            None => {
                self.next_rule += 1;
                (format!("r{}", self.next_rule), None)
            }
        };
        let rule = draft.apply(old.as_ref(), id.clone(), actor, now)?;
        let change = Change {
            path: format!("rules.{id}"),
            old: old.as_ref().map_or(Value::Null, json_of),
            new: json_of(&rule),
        };
        self.rules.insert(id, rule);
        Ok(vec![change])
    }

    /// The `activity_changed` events of a change by `actor`: one per activity
    /// touched, with the activity as it is now and its own changes.
    pub fn activity_events(&self, changes: &[Change], actor: &str) -> Vec<Event> {
        changed(changes, "activities")
            .into_iter()
            .filter_map(|id| self.activities.get(id))
            .map(|a| {
                let base = format!("activities.{}", a.id);
                let own: Vec<&Change> = changes
                    .iter()
                    .filter(|c| {
                        c.path
                            .strip_prefix(&base)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
                    })
                    .collect();
                Event {
                    trigger: Trigger::ActivityChanged,
                    actor: actor.to_string(),
                    data: json!({ "activity": a, "changes": own }),
                }
            })
            .collect()
    }

    /// The state as rule conditions see it: activities as a list (for
    /// `filter`, `some`, …) and how many are still open.
    pub fn view_for_rules(&self) -> Value {
        let open = self
            .activities
            .values()
            .filter(|a| !matches!(a.status, ActivityStatus::Done | ActivityStatus::Cancelled))
            .count();
        json!({
            "version": self.version,
            "settings": self.settings,
            "activities": self.activities.values().collect::<Vec<_>>(),
            "open_activities": open,
        })
    }

    fn transition(
        &mut self,
        args: &Value,
        to: ActivityStatus,
        now: u64,
        also: impl FnOnce(&mut Activity),
    ) -> Result<Vec<Change>, ApiError> {
        let mut a = self.activity(args)?.clone();
        if !a.status.can_move_to(to) {
            return Err(transition_error(a.status, to));
        }
        a.status = to;
        also(&mut a);
        Ok(self.put(a, now))
    }

    /// Stores an activity and lists the fields that differ from before.
    fn put(&mut self, mut a: Activity, now: u64) -> Vec<Change> {
        let old = self.activities.get(&a.id).cloned();
        if let Some(o) = &old {
            a.updated_at = o.updated_at;
            if *o == a {
                return Vec::new();
            }
        }
        a.updated_at = now;
        let base = format!("activities.{}", a.id);
        let changes = match (old.as_ref().map(json_of), json_of(&a)) {
            (Some(Value::Object(o)), Value::Object(n)) => n
                .iter()
                .filter(|(k, v)| o.get(*k) != Some(*v))
                .map(|(k, v)| Change {
                    path: format!("{base}.{k}"),
                    old: o.get(k).cloned().unwrap_or(Value::Null),
                    new: v.clone(),
                })
                .collect(),
            (_, new) => vec![Change {
                path: base,
                old: Value::Null,
                new,
            }],
        };
        self.activities.insert(a.id.clone(), a);
        changes
    }
}

fn transition_error(from: ActivityStatus, to: ActivityStatus) -> ApiError {
    ApiError::Conflict {
        code: crate::error::code::INVALID_TRANSITION,
        message: format!(
            "an activity cannot go from {} to {}",
            from.as_str(),
            to.as_str()
        ),
    }
}

fn json_of<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The entries of `collection` (`activities`, `rules`) that a list of
/// changes touched, each once: what to write or delete.
pub fn changed<'a>(changes: &'a [Change], collection: &str) -> Vec<&'a str> {
    let mut ids: Vec<&str> = Vec::new();
    for c in changes {
        let id = c
            .path
            .strip_prefix(collection)
            .and_then(|p| p.strip_prefix('.'))
            .and_then(|p| p.split('.').next());
        if let Some(id) = id.filter(|id| !ids.contains(id)) {
            ids.push(id);
        }
    }
    ids
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

/// A protected action waiting for an owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub action: String,
    pub args: Value,
    /// A person's id, `ai`, or (kind `rule`) the rule's author.
    pub requested_by: String,
    /// Their display name when they asked.
    #[serde(default)]
    pub requested_by_name: String,
    pub requested_kind: ActorKind,
    /// The rule whose effect asked (kind `rule`).
    #[serde(default)]
    pub rule_id: Option<String>,
    /// Why the AI asks.
    pub reason: Option<String>,
    pub status: ApprovalStatus,
    pub created_at: u64,
    pub expires_at: u64,
    pub resolved_by: Option<String>,
    #[serde(default)]
    pub resolved_by_name: Option<String>,
    pub resolved_at: Option<u64>,
    /// What the owner said with the decision, for the requester.
    #[serde(default)]
    pub comment: Option<String>,
    /// What running the approved action gave: `{status, outcome}`.
    #[serde(default)]
    pub result: Option<Value>,
}

/// Who asks for a protected action, and in what circumstances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub by: ChangedBy,
    pub rule_id: Option<String>,
    pub reason: Option<String>,
}

/// What asking gave: a new request, or the same one already waiting (the
/// same action and arguments from the same requester), so that a rule or
/// the AI asking again does not fill the owners' inbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Requested {
    New(Approval),
    AlreadyWaiting(Approval),
}

impl Requested {
    pub fn approval(&self) -> &Approval {
        match self {
            Self::New(a) | Self::AlreadyWaiting(a) => a,
        }
    }
}

/// The optional body of an approve or reject: `{"comment"}`, at most
/// [`COMMENT_MAX`] characters without control characters but line breaks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    comment: Option<String>,
}

/// The comment of an approve or reject body (none for an empty body).
pub fn decision_comment(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: DecisionBody = crate::api::parse_body(body, crate::api::JSON_BODY_LIMIT)?;
    let Some(comment) = parsed.comment.map(|c| c.trim().to_string()) else {
        return Ok(None);
    };
    if comment.chars().count() > COMMENT_MAX || comment.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::invalid_at(
            "comment",
            format!("a comment is at most {COMMENT_MAX} characters without control characters"),
        ));
    }
    Ok(Some(comment).filter(|c| !c.is_empty()))
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 4] =
        [Self::Pending, Self::Approved, Self::Rejected, Self::Expired];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl Approval {
    /// The `n`-th request of a room for `spec` by `from`, checked against the
    /// catalogue and against the requests already waiting (`recent`, newest
    /// first, expiry applied): the same request still waiting is answered
    /// instead of a new one.
    pub fn request(
        n: u64,
        spec: &ActionSpec,
        args: &Value,
        from: &Requester,
        now: u64,
        recent: &[Approval],
    ) -> Result<Requested, ApiError> {
        validate_args(spec, args)?;
        let pending = || {
            recent
                .iter()
                .filter(|a| a.status == ApprovalStatus::Pending)
        };
        let twin = pending().find(|a| {
            a.action == spec.name
                && a.args == *args
                && a.requested_by == from.by.user_id
                && a.requested_kind == from.by.kind
                && a.rule_id == from.rule_id
        });
        if let Some(twin) = twin {
            return Ok(Requested::AlreadyWaiting(twin.clone()));
        }
        let waiting = pending().count();
        if waiting >= PENDING_APPROVALS_MAX {
            return Err(ApiError::Conflict {
                code: crate::error::code::TOO_MANY_APPROVALS,
                message: format!(
                    "the room already has {PENDING_APPROVALS_MAX} requests waiting for an owner"
                ),
            });
        }
        Ok(Requested::New(Approval {
            id: format!("ap{n}"),
            action: spec.name.to_string(),
            args: args.clone(),
            requested_by: from.by.user_id.clone(),
            requested_by_name: from.by.display_name.clone(),
            requested_kind: from.by.kind,
            rule_id: from.rule_id.clone(),
            reason: from.reason.clone(),
            status: ApprovalStatus::Pending,
            created_at: now,
            expires_at: now + APPROVAL_TTL_SECS,
            resolved_by: None,
            resolved_by_name: None,
            resolved_at: None,
            comment: None,
            result: None,
        }))
    }

    /// Whether it was approved but its result never recorded: a restart
    /// interrupted its run, which must finish.
    fn unfinished(&self) -> bool {
        self.status == ApprovalStatus::Approved && self.result.is_none()
    }

    /// How an interrupted approved action finishes, given its approver as
    /// the room knows them now (`None`: they left): it runs again as them,
    /// with their current role (a demoted approver's run is refused by the
    /// action's own check), or, if they left, is refused in their name.
    pub fn resume(&self, approver_now: Option<Identity>) -> Resume {
        if !self.unfinished() {
            return Resume::Finished;
        }
        match approver_now {
            Some(who) => Resume::Run(who),
            None => Resume::Refuse(
                Identity {
                    user_id: self.resolved_by.clone().unwrap_or_default(),
                    display_name: self.resolved_by_name.clone().unwrap_or_default(),
                    role: Role::Viewer,
                },
                ApiError::forbidden("the approver left the room before the approved action ran"),
            ),
        }
    }

    /// A pending approval past its time is expired.
    pub fn expire(&mut self, now: u64) {
        if self.status == ApprovalStatus::Pending && now >= self.expires_at {
            self.status = ApprovalStatus::Expired;
        }
    }

    /// Whether `user` (an owner) may decide this request: it waits, and they
    /// did not ask for it (a rule's request counts as its author's).
    pub fn decidable_by(&self, user: &str, now: u64) -> bool {
        let mut a = self.clone();
        a.expire(now);
        a.status == ApprovalStatus::Pending && a.requested_by != user
    }

    /// Approves or rejects, with an optional comment for the requester: only
    /// an owner, never the AI, never the requester (a rule's request is its
    /// author's), and only while pending and unexpired.
    pub fn resolve(
        &mut self,
        by: &ChangedBy,
        role: Role,
        approve: bool,
        comment: Option<String>,
        now: u64,
    ) -> Result<(), ApiError> {
        if by.kind != ActorKind::User || role != Role::Owner {
            return Err(ApiError::forbidden(
                "only an owner of the room can decide an approval",
            ));
        }
        if by.user_id == self.requested_by {
            return Err(ApiError::forbidden(
                "an approval cannot be decided by whoever requested it",
            ));
        }
        self.expire(now);
        if self.status != ApprovalStatus::Pending {
            return Err(ApiError::Conflict {
                code: crate::error::code::APPROVAL_CLOSED,
                message: "this approval was already decided or has expired".into(),
            });
        }
        self.status = if approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        self.resolved_by = Some(by.user_id.clone());
        self.resolved_by_name = Some(by.display_name.clone());
        self.resolved_at = Some(now);
        self.comment = comment;
        Ok(())
    }
}

/// How an interrupted approved action finishes ([`Approval::resume`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Run it as this approver (their current role).
    Run(Identity),
    /// Record this refusal as theirs; nothing runs.
    Refuse(Identity, ApiError),
    /// Nothing to finish: it is not approved, or its result is recorded.
    Finished,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::spec;

    #[test]
    fn approval_statuses_are_the_columns_and_the_apis() {
        let names = ApprovalStatus::ALL.map(ApprovalStatus::as_str);
        let migration = include_str!("../../migrations/0007_approvals_and_audit_filters.sql");
        crate::migrations::assert_check(migration, "status", &names);
        for s in ApprovalStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(s));
        }
    }

    fn run(s: &mut RoomState, name: &str, args: Value) -> Result<Effect, ApiError> {
        s.run(spec(name)?, &args, "u1", 100)
    }

    fn changes(e: Effect) -> Vec<Change> {
        match e {
            Effect::State(c) => c,
            other => panic!("expected a state change, got {other:?}"),
        }
    }

    #[test]
    fn every_transition() {
        use ActivityStatus::*;
        let allowed = [
            (Proposed, Scheduled),
            (Proposed, InProgress),
            (Proposed, Cancelled),
            (Scheduled, Scheduled),
            (Scheduled, InProgress),
            (Scheduled, Cancelled),
            (InProgress, Done),
            (InProgress, Cancelled),
        ];
        for from in ActivityStatus::ALL {
            for to in ActivityStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
        // Through the actions: done → anything is refused and changes nothing.
        let mut s = RoomState::default();
        run(&mut s, "propose_activity", json!({"title": "Ship"})).unwrap();
        run(&mut s, "start_activity", json!({"id": "a1"})).unwrap();
        run(&mut s, "complete_activity", json!({"id": "a1"})).unwrap();
        let before = s.clone();
        for (name, args) in [
            ("schedule_activity", json!({"id": "a1", "at": 5})),
            ("start_activity", json!({"id": "a1"})),
            ("complete_activity", json!({"id": "a1"})),
            ("cancel_activity", json!({"id": "a1"})),
            ("update_activity", json!({"id": "a1", "title": "again"})),
        ] {
            let e = run(&mut s, name, args).unwrap_err();
            assert_eq!(e.code(), "invalid_transition", "{name}");
        }
        assert_eq!(s, before);
    }

    #[test]
    fn changes_and_versions() {
        let mut s = RoomState::default();
        let c = changes(
            run(
                &mut s,
                "propose_activity",
                json!({"title": " Plan ", "due_at": 500}),
            )
            .unwrap(),
        );
        assert_eq!(s.version, 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].path, "activities.a1");
        assert_eq!(c[0].new["title"], "Plan");
        let c = changes(run(&mut s, "schedule_activity", json!({"id": "a1", "at": 400})).unwrap());
        assert_eq!(s.version, 2);
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert!(
            paths.contains(&"activities.a1.status")
                && paths.contains(&"activities.a1.scheduled_at")
        );
        let status = c.iter().find(|c| c.path.ends_with(".status")).unwrap();
        assert_eq!(
            (status.old.clone(), status.new.clone()),
            (json!("proposed"), json!("scheduled"))
        );
        // Setting what is already there changes nothing and keeps the version.
        let c = changes(
            run(
                &mut s,
                "update_activity",
                json!({"id": "a1", "title": "Plan"}),
            )
            .unwrap(),
        );
        assert!(c.is_empty());
        assert_eq!(s.version, 2);
        run(
            &mut s,
            "assign",
            json!({"id": "a1", "user_ids": ["u2", "u2", "u3"]}),
        )
        .unwrap();
        assert_eq!(s.activities["a1"].assignees, ["u2", "u3"]);
        assert_eq!(s.version, 3);
    }

    #[test]
    fn changed_activities_are_listed_once() {
        let mut s = RoomState::default();
        let mut all = changes(run(&mut s, "propose_activity", json!({"title": "x"})).unwrap());
        all.extend(changes(
            run(&mut s, "schedule_activity", json!({"id": "a1", "at": 1})).unwrap(),
        ));
        all.extend(changes(run(&mut s, "archive_room", json!({})).unwrap()));
        assert_eq!(changed(&all, "activities"), ["a1"]);
        assert!(changed(&all, "rules").is_empty());
        for status in ActivityStatus::ALL {
            assert_eq!(json!(status), json!(status.as_str()));
        }
    }

    #[test]
    fn votes_toggle_on_proposals_only() {
        let mut s = RoomState::default();
        run(&mut s, "propose_activity", json!({"title": "x"})).unwrap();
        run(&mut s, "vote_activity", json!({"id": "a1"})).unwrap();
        assert_eq!(s.activities["a1"].votes, ["u1"]);
        run(&mut s, "vote_activity", json!({"id": "a1"})).unwrap();
        assert!(s.activities["a1"].votes.is_empty());
        run(&mut s, "start_activity", json!({"id": "a1"})).unwrap();
        assert_eq!(
            run(&mut s, "vote_activity", json!({"id": "a1"}))
                .unwrap_err()
                .code(),
            "invalid_transition"
        );
    }

    #[test]
    fn arguments_are_checked_against_the_catalogue() {
        let mut s = RoomState::default();
        for (name, args) in [
            ("propose_activity", json!({})),
            ("propose_activity", json!({"title": ""})),
            ("propose_activity", json!({"title": 5})),
            ("propose_activity", json!({"title": "x", "extra": 1})),
            ("propose_activity", json!("title")),
            (
                "propose_activity",
                json!({"title": "x".repeat(TITLE_MAX + 1)}),
            ),
            ("schedule_activity", json!({"id": "a1"})),
            ("assign", json!({"id": "a1", "user_ids": "u2"})),
        ] {
            assert_eq!(
                run(&mut s, name, args.clone()).unwrap_err().status(),
                400,
                "{name} {args}"
            );
        }
        assert_eq!(
            run(&mut s, "start_activity", json!({"id": "nope"}))
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(spec("rm_rf").unwrap_err().status(), 404);
        assert_eq!(s, RoomState::default());
    }

    #[test]
    fn other_actions_are_handed_back_and_archiving_freezes_the_state() {
        let mut s = RoomState::default();
        let e = run(&mut s, "send_message", json!({"body": "hi"})).unwrap();
        assert_eq!(
            e,
            Effect::External {
                name: "send_message",
                args: json!({"body": "hi"})
            }
        );
        run(&mut s, "archive_room", json!({})).unwrap();
        assert!(s.settings.archived);
        assert_eq!(
            run(&mut s, "propose_activity", json!({"title": "x"}))
                .unwrap_err()
                .code(),
            "room_archived"
        );
    }

    #[test]
    fn rules_are_versioned_state_kept_out_of_the_members_view() {
        let mut s = RoomState::default();
        let rule = json!({"trigger": "file_added",
            "effect": {"action": "send_message", "args": {"body": "new file"}}});
        let c = changes(run(&mut s, "set_rule", json!({ "rule": rule })).unwrap());
        assert_eq!((s.version, c[0].path.as_str()), (1, "rules.r1"));
        assert_eq!(changed(&c, "rules"), ["r1"]);
        run(
            &mut s,
            "set_rule",
            json!({"rule": {"id": "r1", "enabled": false}}),
        )
        .unwrap();
        assert!(!s.rules["r1"].enabled);
        assert_eq!(s.version, 2);
        assert!(serde_json::to_value(&s).unwrap().get("rules").is_none());
        let missing = run(&mut s, "set_rule", json!({"rule": {"id": "r9"}}));
        assert_eq!(missing.unwrap_err().status(), 404);
        let c = changes(run(&mut s, "delete_rule", json!({"id": "r1"})).unwrap());
        assert_eq!(c[0].new, Value::Null);
        assert!(s.rules.is_empty());
        for _ in 0..RULES_MAX {
            run(&mut s, "set_rule", json!({ "rule": rule })).unwrap();
        }
        let full = run(&mut s, "set_rule", json!({ "rule": rule })).unwrap_err();
        assert_eq!(full.code(), "too_many_rules");
        // Ids are never reused, so audit entries name one rule each.
        assert!(!s.rules.contains_key("r1") && s.rules.contains_key("r2"));
    }

    #[test]
    fn each_touched_activity_is_one_event_with_its_own_changes() {
        let mut s = RoomState::default();
        for _ in 0..10 {
            run(&mut s, "propose_activity", json!({"title": "x"})).unwrap();
        }
        let mut all = changes(run(&mut s, "start_activity", json!({"id": "a1"})).unwrap());
        all.extend(changes(
            run(&mut s, "start_activity", json!({"id": "a10"})).unwrap(),
        ));
        let events = s.activity_events(&all, "u2");
        assert_eq!(events.len(), 2);
        for (e, id) in events.iter().zip(["a1", "a10"]) {
            assert_eq!(
                (e.trigger, e.actor.as_str()),
                (Trigger::ActivityChanged, "u2")
            );
            assert_eq!(e.data["activity"]["id"], id);
            assert_eq!(e.data["activity"]["status"], "in_progress");
            let paths = e.data["changes"].as_array().unwrap();
            assert!(
                paths.iter().all(|c| c["path"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("activities.{id}."))),
                "{id}: only its own changes, not those of a1 / a10"
            );
        }
        assert!(s.activity_events(&[], "u2").is_empty());
    }

    fn person(id: &str, kind: ActorKind) -> ChangedBy {
        ChangedBy {
            user_id: id.into(),
            display_name: format!("{id}'s name"),
            kind,
        }
    }

    fn asker(id: &str, kind: ActorKind) -> Requester {
        Requester {
            by: person(id, kind),
            rule_id: None,
            reason: None,
        }
    }

    fn new_request(r: Result<Requested, ApiError>) -> Approval {
        match r.unwrap() {
            Requested::New(a) => a,
            other => panic!("expected a new request, got {other:?}"),
        }
    }

    #[test]
    fn approval_requests_are_checked_bounded_and_asked_once() {
        let spec = spec("remove_member").unwrap();
        let args = json!({"user_id": "u9"});
        let u1 = asker("u1", ActorKind::User);
        let a = new_request(Approval::request(3, spec, &args, &u1, 10, &[]));
        assert_eq!((a.id.as_str(), a.status), ("ap3", ApprovalStatus::Pending));
        assert_eq!(
            (a.requested_by_name.as_str(), a.requested_kind),
            ("u1's name", ActorKind::User)
        );
        assert_eq!(a.expires_at, 10 + APPROVAL_TTL_SECS);
        let bad = Approval::request(4, spec, &json!({}), &u1, 10, &[]);
        assert_eq!(bad.unwrap_err().field(), Some("user_id"));
        // The same request again answers the one waiting, even when full.
        let again = Approval::request(4, spec, &args, &u1, 11, std::slice::from_ref(&a)).unwrap();
        assert_eq!(again, Requested::AlreadyWaiting(a.clone()));
        let mut waiting = vec![a.clone(); PENDING_APPROVALS_MAX];
        let ai = Requester {
            reason: Some("inactive".into()),
            ..asker("ai", ActorKind::Ai)
        };
        let full = Approval::request(4, spec, &args, &ai, 10, &waiting);
        assert_eq!(full.unwrap_err().code(), "too_many_approvals");
        waiting[0].status = ApprovalStatus::Expired;
        let by_ai = new_request(Approval::request(4, spec, &args, &ai, 10, &waiting));
        assert_eq!(by_ai.reason.as_deref(), Some("inactive"));
        // Another rule of the same author, other arguments, or a decided
        // twin make a new request.
        let rule = Requester {
            rule_id: Some("r2".into()),
            ..asker("u1", ActorKind::Rule)
        };
        let by_rule = new_request(Approval::request(
            5,
            spec,
            &args,
            &rule,
            10,
            std::slice::from_ref(&a),
        ));
        assert_eq!(
            (by_rule.rule_id.as_deref(), by_rule.requested_kind),
            (Some("r2"), ActorKind::Rule)
        );
        let other = json!({"user_id": "u8"});
        new_request(Approval::request(
            6,
            spec,
            &other,
            &u1,
            10,
            std::slice::from_ref(&a),
        ));
        let mut decided = a.clone();
        decided.status = ApprovalStatus::Rejected;
        new_request(Approval::request(7, spec, &args, &u1, 10, &[decided]));
    }

    #[test]
    fn decision_comments_are_optional_and_bounded() {
        assert_eq!(decision_comment(b"").unwrap(), None);
        assert_eq!(decision_comment(b" {} ").unwrap(), None);
        assert_eq!(decision_comment(br#"{"comment": "  "}"#).unwrap(), None);
        assert_eq!(
            decision_comment("{\"comment\": \" ok, but ask first\\nnext time \"}".as_bytes())
                .unwrap(),
            Some("ok, but ask first\nnext time".into())
        );
        let long = json!({ "comment": "x".repeat(COMMENT_MAX + 1) }).to_string();
        assert_eq!(
            decision_comment(long.as_bytes()).unwrap_err().field(),
            Some("comment")
        );
        let bell = json!({ "comment": "ding\u{7}" }).to_string();
        assert_eq!(
            decision_comment(bell.as_bytes()).unwrap_err().field(),
            Some("comment")
        );
        assert_eq!(
            decision_comment(br#"{"note": "x"}"#).unwrap_err().code(),
            "invalid_input"
        );
        assert_eq!(decision_comment(b"{").unwrap_err().code(), "malformed_json");
    }

    #[test]
    fn if_match_says_who_changed_the_state() {
        let mut s = RoomState::default();
        assert!(s.check_version(Some("0")).is_ok());
        let ada = person("u1", ActorKind::User);
        s.run_as(
            spec("propose_activity").unwrap(),
            &json!({"title": "x"}),
            &ada,
            50,
        )
        .unwrap();
        for ok in [None, Some("1"), Some("\"1\""), Some("W/\"1\""), Some("*")] {
            assert!(s.check_version(ok).is_ok(), "{ok:?}");
        }
        let e = s.check_version(Some("0")).unwrap_err();
        assert_eq!((e.status(), e.code()), (412, "version_conflict"));
        assert!(e.to_string().contains("u1's name"), "{e}");
        let body = e.body();
        assert_eq!(body["error"]["current_version"], 1);
        assert_eq!(
            body["error"]["last_change"],
            json!({
                "version": 1, "changed_by": {"user_id": "u1", "display_name": "u1's name", "kind": "user"},
                "changed_at": 50
            })
        );
        assert_eq!(s.check_version(Some("x")).unwrap_err().status(), 412);
        // No change, no new author; the event names who made the change.
        let bot = person("ai", ActorKind::Ai);
        let Effect::State(none) = s
            .run_as(
                spec("update_activity").unwrap(),
                &json!({"id": "a1", "title": "x"}),
                &bot,
                60,
            )
            .unwrap()
        else {
            panic!("a state action")
        };
        assert!(none.is_empty());
        assert_eq!(s.last_change.as_ref().unwrap().changed_by, ada);
        let Effect::State(c) = s
            .run_as(
                spec("start_activity").unwrap(),
                &json!({"id": "a1"}),
                &bot,
                70,
            )
            .unwrap()
        else {
            panic!("a state action")
        };
        let event = s.updated_event(&c);
        assert_eq!(
            (event["version"].clone(), event["changed_at"].clone()),
            (json!(2), json!(70))
        );
        assert_eq!(event["changed_by"]["kind"], "ai");
        assert_eq!(
            serde_json::to_value(&s).unwrap()["last_change"]["version"],
            2
        );
    }

    /// Ada's request to remove u9, waiting.
    fn pending_approval() -> Approval {
        Approval {
            id: "p1".into(),
            action: "remove_member".into(),
            args: json!({"user_id": "u9"}),
            requested_by: "u1".into(),
            requested_by_name: "Ada".into(),
            requested_kind: ActorKind::User,
            rule_id: None,
            reason: None,
            status: ApprovalStatus::Pending,
            created_at: 0,
            expires_at: APPROVAL_TTL_SECS,
            resolved_by: None,
            resolved_by_name: None,
            resolved_at: None,
            comment: None,
            result: None,
        }
    }

    #[test]
    fn an_approved_action_a_restart_interrupted_finishes_once_as_its_approver_is_now() {
        let mut a = pending_approval();
        let bea = Identity {
            user_id: "u2".into(),
            display_name: "Bea".into(),
            role: Role::Owner,
        };
        assert_eq!(
            a.resume(Some(bea.clone())),
            Resume::Finished,
            "pending: nothing to finish"
        );
        a.resolve(&person("u2", ActorKind::User), Role::Owner, true, None, 5)
            .unwrap();
        // Stored as decided before it runs; the restart comes before its result.
        let demoted = Identity {
            role: Role::Member,
            ..bea.clone()
        };
        assert_eq!(a.resume(Some(demoted.clone())), Resume::Run(demoted));
        let Resume::Refuse(who, e) = a.resume(None) else {
            panic!("an approver who left runs nothing");
        };
        assert_eq!(
            (
                who.user_id.as_str(),
                who.display_name.as_str(),
                who.role,
                e.status()
            ),
            ("u2", "u2's name", Role::Viewer, 403)
        );
        a.result = Some(json!({"status": 403}));
        assert_eq!(
            a.resume(Some(bea.clone())),
            Resume::Finished,
            "finished once"
        );
        let mut rejected = a.clone();
        rejected.status = ApprovalStatus::Rejected;
        rejected.result = None;
        assert_eq!(
            rejected.resume(Some(bea)),
            Resume::Finished,
            "rejected: nothing ran"
        );
    }

    #[test]
    fn approvals_need_another_owner() {
        let pending = pending_approval();
        let mut a = pending.clone();
        let owner = |id: &str| person(id, ActorKind::User);
        assert!(a.decidable_by("u2", 5) && !a.decidable_by("u1", 5));
        assert_eq!(
            a.resolve(&owner("u1"), Role::Owner, true, None, 5)
                .unwrap_err()
                .status(),
            403,
            "self-approval"
        );
        assert_eq!(
            a.resolve(&person("ai", ActorKind::Ai), Role::Owner, true, None, 5)
                .unwrap_err()
                .status(),
            403,
            "the AI"
        );
        assert_eq!(
            a.resolve(&owner("u2"), Role::Admin, true, None, 5)
                .unwrap_err()
                .status(),
            403,
            "an admin"
        );
        assert_eq!(a, pending, "refusals change nothing");
        a.resolve(&owner("u2"), Role::Owner, true, Some("fine".into()), 5)
            .unwrap();
        assert_eq!(
            (
                a.status,
                a.resolved_by.as_deref(),
                a.resolved_by_name.as_deref(),
                a.comment.as_deref()
            ),
            (
                ApprovalStatus::Approved,
                Some("u2"),
                Some("u2's name"),
                Some("fine")
            )
        );
        assert!(!a.decidable_by("u3", 6));
        assert_eq!(
            a.resolve(&owner("u3"), Role::Owner, false, None, 6)
                .unwrap_err()
                .code(),
            "approval_closed"
        );
        let mut late = pending.clone();
        assert!(!late.decidable_by("u2", APPROVAL_TTL_SECS));
        assert_eq!(
            late.resolve(&owner("u2"), Role::Owner, true, None, APPROVAL_TTL_SECS)
                .unwrap_err()
                .code(),
            "approval_closed"
        );
        assert_eq!(late.status, ApprovalStatus::Expired);
        // A rule's request is its author's: they cannot decide it either.
        let mut by_rule = Approval {
            requested_kind: ActorKind::Rule,
            rule_id: Some("r1".into()),
            ..pending.clone()
        };
        assert_eq!(
            by_rule
                .resolve(&owner("u1"), Role::Owner, true, None, 5)
                .unwrap_err()
                .status(),
            403
        );
        for status in [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Rejected,
            ApprovalStatus::Expired,
        ] {
            assert_eq!(json!(status), json!(status.as_str()));
        }
    }
}
