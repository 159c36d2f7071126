//! The room object's side of collaboration workflows: the room state
//! (activities, rules, settings, version) in the object's SQLite, named
//! actions run against it (`tessera_core::actions`), approval requests for
//! protected actions, rules reacting to the room's events
//! (`tessera_core::rules`), and the audit trail.
//!
//! Every attempt — by a person, a rule or the AI, allowed or refused — goes
//! through [`RoomDO::attempt`], which writes exactly one audit entry. Entries
//! go to an outbox table in the same synchronous turn as the change they
//! describe, so neither exists without the other, and are then copied to D1's
//! append-only `audit_log` (idempotently: each has a unique `source`).
//! Approval requests are copied to D1's `approvals` the same way (the outbox
//! names which changed; a copy carries its outbox sequence as `rev`, so an
//! older copy never overwrites a newer one), where the inbox across rooms
//! reads them (`tessera_core::inbox`).

use super::{identity, RoomDO};
use crate::d1::arg;
use crate::http::{json, Failure, HttpResult};
use crate::members;
use crate::sql::{int, select, select_json, upsert_json};
use serde::Deserialize;
use serde_json::{json as j, Value};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tessera_core::actions::{
    changed, decision_comment, Activity, ActorKind, Approval, ApprovalStatus, Change, Effect,
    Requested, Requester, Resume, RoomSettings, RoomState,
};
use tessera_core::actor::{ChangedBy, LastChange};
use tessera_core::approval_inbox::{settled_at, StatusFilter};
use tessera_core::catalogue::{self, audited_args, authorize, spec, ActionSpec, Decision};
use tessera_core::chat::ChatStore;
use tessera_core::protocol::Identity;
use tessera_core::room::timers::Timer;
use tessera_core::rooms::{MemberNotice, Role};
use tessera_core::rules::{plan, Admit, Cascade, Event, Rule, Trigger};
use tessera_core::ApiError;
use worker::{Request, Response, SqlStorageValue as V};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workflow (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,
  settings TEXT NOT NULL, next_activity INTEGER NOT NULL, next_rule INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS activities (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rules (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
  data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workflow_last_change (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approval_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL);
-- Requests made before their copies went to D1 are copied once.
INSERT INTO approval_outbox (id) SELECT id FROM approvals
  WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'approvals_copied') ORDER BY n;
INSERT OR IGNORE INTO meta (key, value) VALUES ('approvals_copied', '1');
";

/// Largest JSON arguments of one action.
const ARGS_LIMIT: usize = 16 * 1024;
const APPROVALS_PAGE: usize = 100;
/// Audit entries copied to D1 per batch.
const AUDIT_BATCH: usize = 50;
/// When copying the audit trail to D1 fails, the alarm retries after this.
const AUDIT_RETRY: Duration = Duration::from_secs(30);
/// An approved action a restart interrupted runs again within this, if no
/// request wakes the room sooner (see `finish_approvals`).
const RESUME: Duration = Duration::from_secs(30);

/// Who runs an action, and as what.
pub(crate) struct Actor {
    pub who: Identity,
    pub kind: ActorKind,
}

/// The circumstances of one attempt.
pub(crate) struct Attempt {
    pub room_id: String,
    pub request_id: String,
    pub if_match: Option<String>,
    pub idempotency_key: Option<String>,
    /// Recorded with the result: the rule or approval behind the attempt.
    pub context: serde_json::Map<String, Value>,
    /// The run of an approved action that a restart interrupted: its effect
    /// may already be in place (see [`Attempt::done_before`]).
    pub resumed: bool,
}

impl Attempt {
    /// An attempt outside a request's headers (a socket frame, a resumed run).
    pub(crate) fn new(room_id: &str, request_id: String) -> Attempt {
        Attempt {
            room_id: room_id.to_string(),
            request_id,
            if_match: None,
            idempotency_key: None,
            context: serde_json::Map::new(),
            resumed: false,
        }
    }

    pub(crate) fn with(&self, key: &str, value: Value) -> Attempt {
        let mut context = self.context.clone();
        context.insert(key.into(), value);
        Attempt {
            room_id: self.room_id.clone(),
            request_id: self.request_id.clone(),
            if_match: None,
            idempotency_key: None,
            context,
            resumed: self.resumed,
        }
    }

    /// A resumed run finds the effect of `action` it was interrupted after:
    /// the refusal that says so (`catalogue::already_done`) means it is done.
    fn done_before(&self, action: &str, result: HttpResult<()>) -> HttpResult<()> {
        match result {
            Err(Failure(e)) if self.resumed && catalogue::already_done(action, &e) => Ok(()),
            other => other,
        }
    }
}

/// What an allowed attempt did: the answer, and the events rules may react to.
pub(crate) struct Done {
    pub status: u16,
    pub body: Value,
    pub events: Vec<Event>,
}

impl RoomDO {
    pub(crate) fn workflow_state(&self) -> HttpResult<RoomState> {
        #[derive(Deserialize)]
        struct Meta {
            version: u64,
            settings: String,
            next_activity: u64,
            next_rule: u64,
        }
        let sql = self.state.storage().sql();
        let meta: Vec<Meta> = select(
            &sql,
            "SELECT version, settings, next_activity, next_rule FROM workflow WHERE id = 1",
            None,
        )?;
        let mut state = RoomState::default();
        if let Some(m) = meta.into_iter().next() {
            state.version = m.version;
            state.settings = serde_json::from_str(&m.settings)?;
            state.next_activity = m.next_activity;
            state.next_rule = m.next_rule;
        }
        let activities: Vec<Activity> = select_json(&sql, "SELECT data FROM activities", None)?;
        state.activities = activities.into_iter().map(|a| (a.id.clone(), a)).collect();
        state.rules = self
            .rules()?
            .iter()
            .map(|r| (r.id.clone(), r.clone()))
            .collect();
        state.last_change = select_json::<LastChange>(
            &sql,
            "SELECT data FROM workflow_last_change WHERE id = 1",
            None,
        )?
        .pop();
        Ok(state)
    }

    /// Whether the stored settings say the room is archived: all a new object
    /// lifetime needs of the state (not its activities and rules).
    pub(crate) fn stored_archived(&self) -> HttpResult<bool> {
        #[derive(Deserialize)]
        struct Row {
            settings: String,
        }
        let sql = self.state.storage().sql();
        let rows: Vec<Row> = select(&sql, "SELECT settings FROM workflow WHERE id = 1", None)?;
        Ok(match rows.first() {
            Some(r) => serde_json::from_str::<RoomSettings>(&r.settings)?.archived,
            None => false,
        })
    }

    /// The room's rules, read from storage once and kept until one changes
    /// (every chat message asks: a shared handle, not a copy).
    pub(crate) fn rules(&self) -> HttpResult<Rc<[Rule]>> {
        if let Some(rules) = self.rules.borrow().as_ref() {
            return Ok(Rc::clone(rules));
        }
        let sql = self.state.storage().sql();
        let rules: Rc<[Rule]> =
            select_json::<Rule>(&sql, "SELECT data FROM rules ORDER BY id", None)?.into();
        *self.rules.borrow_mut() = Some(Rc::clone(&rules));
        Ok(rules)
    }

    /// Writes the state after a change: the meta row and the activities and
    /// rules that changed, in one synchronous turn.
    fn save_workflow(&self, state: &RoomState, changes: &[Change]) -> HttpResult<()> {
        let sql = self.state.storage().sql();
        sql.exec(
            "INSERT INTO workflow (id, version, settings, next_activity, next_rule) VALUES (1, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, settings = excluded.settings,
               next_activity = excluded.next_activity, next_rule = excluded.next_rule",
            vec![
                int(state.version),
                V::from(serde_json::to_string(&state.settings)?),
                int(state.next_activity),
                int(state.next_rule),
            ],
        )?;
        if let Some(last) = &state.last_change {
            upsert_json(
                &sql,
                "INSERT INTO workflow_last_change (id, data) VALUES (?, ?)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                "1",
                last,
            )?;
        }
        for id in changed(changes, "activities") {
            if let Some(a) = state.activities.get(id) {
                upsert_json(
                    &sql,
                    "INSERT INTO activities (id, data) VALUES (?, ?)
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    id,
                    a,
                )?;
                self.search_put(tessera_core::search::index::Entry::activity(a))?;
            }
        }
        let rules = changed(changes, "rules");
        for id in &rules {
            match state.rules.get(*id) {
                Some(r) => upsert_json(
                    &sql,
                    "INSERT INTO rules (id, data) VALUES (?, ?)
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    id,
                    r,
                )?,
                None => {
                    sql.exec("DELETE FROM rules WHERE id = ?", vec![V::from(*id)])?;
                }
            };
        }
        if !rules.is_empty() {
            *self.rules.borrow_mut() = None;
        }
        Ok(())
    }

    /// The circumstances of a request from the Worker.
    pub(crate) fn attempt_of(&self, req: &Request) -> HttpResult<Attempt> {
        let h = |name: &str| req.headers().get(name);
        let mut at = Attempt::new(&self.room_id()?, h("x-request-id")?.unwrap_or_default());
        at.if_match = h("if-match")?;
        at.idempotency_key = h("idempotency-key")?;
        Ok(at)
    }

    /// The person behind a request from the Worker, and its circumstances.
    fn caller(&self, req: &Request) -> HttpResult<(Actor, Attempt)> {
        let actor = Actor {
            who: identity(req)?,
            kind: ActorKind::User,
        };
        Ok((actor, self.attempt_of(req)?))
    }

    /// `POST /actions/{name}` (and the rule routes, which are `set_rule` and
    /// `delete_rule`): runs or requests an action for the caller, lets rules
    /// react, and copies the audit trail to D1 before answering.
    pub(crate) async fn serve_action(
        &self,
        req: &Request,
        name: &str,
        args: Value,
    ) -> HttpResult<Response> {
        let (actor, at) = self.caller(req)?;
        self.touched();
        let result = self.attempt(&actor, name, &args, &at).await;
        if let Ok(done) = &result {
            self.react(done.events.clone(), &at).await;
        }
        self.flush_audit().await;
        let done = result?;
        json(done.status, &done.body)
    }

    /// `POST /rules` and `PATCH /rules/{id}`: `set_rule` with the rule as the
    /// body, so errors name the rule's fields as the body has them.
    pub(crate) async fn serve_rule(&self, req: &Request, args: Value) -> HttpResult<Response> {
        self.serve_action(req, "set_rule", args)
            .await
            .map_err(|Failure(e)| Failure(tessera_core::rules::as_rule_body(e)))
    }

    /// Parses the JSON arguments of an action request (each action's own
    /// checks decide what a `null` argument means).
    pub(crate) async fn action_args(req: &mut Request) -> HttpResult<Value> {
        Ok(tessera_core::api::parse_json(
            &req.bytes().await?,
            ARGS_LIMIT,
        )?)
    }

    /// Parses a rule as the rule routes take it: no `null` members but its
    /// condition, which is any JSONLogic value.
    pub(crate) async fn rule_body(req: &mut Request) -> HttpResult<Value> {
        Ok(tessera_core::api::parse_body_with(
            &req.bytes().await?,
            ARGS_LIMIT,
            &["condition"],
        )?)
    }

    /// One attempt at an action, allowed or refused, with its audit entry.
    pub(crate) async fn attempt(
        &self,
        actor: &Actor,
        name: &str,
        args: &Value,
        at: &Attempt,
    ) -> HttpResult<Done> {
        let result = self.decide(actor, name, args, at).await;
        let (status, outcome) = answer(&result);
        let recorded = audited_args(name, args, result.is_ok());
        self.audit(actor, name, &recorded, status, outcome, at)?;
        result
    }

    async fn decide(
        &self,
        actor: &Actor,
        name: &str,
        args: &Value,
        at: &Attempt,
    ) -> HttpResult<Done> {
        let spec = spec(name)?;
        match authorize(spec, actor.who.role, actor.kind)? {
            Decision::Run => self.perform(actor, spec, args, at).await,
            Decision::NeedsApproval => self.request_approval(actor, spec, args, at),
        }
    }

    /// Runs an authorised action.
    async fn perform(
        &self,
        actor: &Actor,
        spec: &'static ActionSpec,
        args: &Value,
        at: &Attempt,
    ) -> HttpResult<Done> {
        let mut state = self.workflow_state()?;
        state.check_version(at.if_match.as_deref())?;
        let now = crate::clock::now_secs();
        let user = actor.who.user_id.as_str();
        match state.run_as(spec, args, &actor.changed_by(), now)? {
            Effect::State(changes) => {
                if !changes.is_empty() {
                    self.save_workflow(&state, &changes)?;
                    if state.settings.archived {
                        self.set_archived();
                    }
                    self.record("collaboration_updated", state.updated_event(&changes))?;
                }
                let events = state.activity_events(&changes, user);
                let mut body = j!({ "version": state.version, "changes": changes });
                if let Some(rule) = changed(&changes, "rules")
                    .first()
                    .and_then(|id| state.rules.get(*id))
                {
                    body["rule"] = j!(rule);
                }
                Ok(Done {
                    status: 200,
                    body,
                    events,
                })
            }
            Effect::External { name, args } => self.perform_external(actor, name, &args, at).await,
        }
    }

    /// The actions that are not changes of the room state.
    async fn perform_external(
        &self,
        actor: &Actor,
        name: &str,
        args: &Value,
        at: &Attempt,
    ) -> HttpResult<Done> {
        let text = |k: &str| args[k].as_str().unwrap_or_default().to_string();
        let user = actor.who.user_id.as_str();
        let db = || self.env.d1("DB");
        let now = crate::clock::now_secs();
        match name {
            "send_message" => {
                let key = at.idempotency_key.clone().unwrap_or_else(|| {
                    format!(
                        "action-{}-{}",
                        crate::clock::now_ms(),
                        js_sys::Math::random()
                    )
                });
                let (id, duplicate) = self.post_text(&actor.who, &key, text("body"), None)?;
                let events = match duplicate {
                    true => Vec::new(),
                    false => self.message_event(id)?.into_iter().collect(),
                };
                Ok(Done {
                    status: 201,
                    body: j!({ "message_id": id }),
                    events,
                })
            }
            "add_member" => {
                let role: Role = text("role").parse()?;
                let member = text("user_id");
                at.done_before(
                    name,
                    members::add(&db()?, &at.room_id, actor.who.role, &member, role, now).await,
                )?;
                let notice = MemberNotice {
                    user_id: member,
                    role: Some(role),
                    joined: true,
                };
                let events = self.member_changed(&notice, user);
                Ok(Done {
                    status: 201,
                    body: j!({ "user_id": notice.user_id, "role": role }),
                    events,
                })
            }
            "remove_member" => {
                let member = text("user_id");
                at.done_before(
                    name,
                    members::remove(&db()?, &at.room_id, user, actor.who.role, &member).await,
                )?;
                self.apply_member_notice(&MemberNotice {
                    user_id: member.clone(),
                    role: None,
                    joined: false,
                });
                Ok(Done {
                    status: 200,
                    body: j!({ "removed": member }),
                    events: Vec::new(),
                })
            }
            "delete_file" => {
                let id = text("id");
                // Only this room's files: an id from elsewhere is not found.
                if self.store().file(&id)?.is_some() {
                    crate::upload::discard(&self.env, &at.room_id, &id).await?;
                    self.file_removed(&id)?;
                } else {
                    at.done_before(name, Err(ApiError::NotFound("file").into()))?;
                }
                Ok(Done {
                    status: 200,
                    body: j!({ "deleted": id }),
                    events: Vec::new(),
                })
            }
            other => Err(ApiError::Internal(format!("no way to carry out `{other}`")).into()),
        }
    }

    /// The `message_posted` event of a stored message.
    pub(crate) fn message_event(&self, id: u64) -> HttpResult<Option<Event>> {
        let Some(m) = self.store().message(id)? else {
            return Ok(None);
        };
        let author = m.author.clone();
        Ok(Some(event(
            Trigger::MessagePosted,
            &author,
            j!({ "message": m.view(BTreeMap::new()) }),
        )))
    }

    /// A protected action by someone below its role (or by the AI) waits for
    /// an owner: checked now, stored, announced, answered 202.
    fn request_approval(
        &self,
        actor: &Actor,
        spec: &'static ActionSpec,
        args: &Value,
        at: &Attempt,
    ) -> HttpResult<Done> {
        let sql = self.state.storage().sql();
        #[derive(Deserialize)]
        struct Next {
            n: u64,
        }
        let next: Vec<Next> = select(
            &sql,
            "SELECT COALESCE(MAX(n), 0) + 1 AS n FROM approvals",
            None,
        )?;
        let context = |key: &str| {
            at.context
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let from = Requester {
            by: actor.changed_by(),
            // A rule's effect names its rule; the AI says why it asks.
            rule_id: context("rule"),
            reason: context("reason"),
        };
        let requested = Approval::request(
            next.first().map_or(1, |n| n.n),
            spec,
            args,
            &from,
            crate::clock::now_secs(),
            &self.approvals()?,
        )?;
        if let Requested::New(approval) = &requested {
            self.save_approval(approval)?;
            self.record("approval_requested", j!({ "approval": approval }))?;
        }
        Ok(Done {
            status: 202,
            body: j!({ "approval": requested.approval() }),
            events: Vec::new(),
        })
    }

    /// Stores a request and notes it for its copy in D1, in one turn.
    fn save_approval(&self, a: &Approval) -> HttpResult<()> {
        let sql = self.state.storage().sql();
        upsert_json(
            &sql,
            "INSERT INTO approvals (id, data) VALUES (?, ?)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            &a.id,
            a,
        )?;
        sql.exec(
            "INSERT INTO approval_outbox (id) VALUES (?)",
            vec![V::from(a.id.as_str())],
        )?;
        Ok(())
    }

    /// Newest first; expiry is applied as they are read (no timer keeps the
    /// object awake for it).
    pub(crate) fn approvals(&self) -> HttpResult<Vec<Approval>> {
        let sql = self.state.storage().sql();
        let mut list: Vec<Approval> = select_json(
            &sql,
            "SELECT data FROM approvals ORDER BY n DESC LIMIT ?",
            Some(vec![int(APPROVALS_PAGE as u64 * 2)]),
        )?;
        let now = crate::clock::now_secs();
        for a in &mut list {
            a.expire(now);
        }
        Ok(list)
    }

    /// `GET /approvals[?status=pending|approved|rejected|expired|resolved]`.
    pub(crate) fn list_approvals(&self, status: Option<&str>) -> HttpResult<Response> {
        let filter = StatusFilter::parse(status)?;
        let list: Vec<Approval> = self
            .approvals()?
            .into_iter()
            .filter(|a| filter.admits(a))
            .take(APPROVALS_PAGE)
            .collect();
        json(200, &j!({ "approvals": list }))
    }

    /// `POST /approvals/{id}/approve|reject` by an owner other than the
    /// requester. On approval the action runs with the approver's authority;
    /// the decision and the action's result are one audit entry.
    pub(crate) async fn decide_approval(
        &self,
        req: &mut Request,
        id: &str,
        approve: bool,
    ) -> HttpResult<Response> {
        let comment = decision_comment(&req.bytes().await?)?;
        let (approver, at) = self.caller(req)?;
        let sql = self.state.storage().sql();
        let mut approval: Approval = select_json::<Approval>(
            &sql,
            "SELECT data FROM approvals WHERE id = ?",
            Some(vec![V::from(id)]),
        )?
        .pop()
        .ok_or(ApiError::NotFound("approval"))?;
        let at = at.with("approval", j!(approval.id));
        let now = crate::clock::now_secs();
        if let Err(e) = approval.resolve(
            &approver.changed_by(),
            approver.who.role,
            approve,
            comment,
            now,
        ) {
            self.audit(
                &approver,
                &approval.action,
                &approval.args,
                e.status(),
                e.body(),
                &at,
            )?;
            self.flush_audit().await;
            return Err(e.into());
        }
        // Decided before it runs: a second decision meanwhile finds it
        // closed, and a restart before its result finishes it.
        self.save_approval(&approval)?;
        let decided = decision_attempt(&approval, &at);
        let result = if approve {
            self.schedule(Timer::Resume, RESUME).await;
            self.decide(&approver, &approval.action, &approval.args, &decided)
                .await
        } else {
            Ok(Done {
                status: 200,
                body: j!({ "rejected": true }),
                events: Vec::new(),
            })
        };
        let approval = self
            .settle(&approver, approval, result, &at, &decided)
            .await?;
        self.flush_audit().await;
        json(200, &j!({ "approval": approval }))
    }

    /// Keeps what a decision gave as the approval's result, with the one
    /// audit entry of the decision, and lets rules react to it.
    async fn settle(
        &self,
        approver: &Actor,
        mut approval: Approval,
        result: HttpResult<Done>,
        at: &Attempt,
        decided: &Attempt,
    ) -> HttpResult<Approval> {
        let (status, outcome) = answer(&result);
        approval.result = Some(j!({ "status": status, "outcome": outcome }));
        self.save_approval(&approval)?;
        self.audit(
            approver,
            &approval.action,
            &approval.args,
            status,
            outcome,
            decided,
        )?;
        self.record("approval_resolved", j!({ "approval": approval }))?;
        let events = result.map(|d| d.events).unwrap_or_default();
        self.react(events, at).await;
        Ok(approval)
    }

    /// Finishes, once per object lifetime, the approved actions a restart
    /// interrupted between their decision and their result: each runs again
    /// as its approver with their current role, and an effect already in
    /// place counts as done, so each runs exactly once. Called by the first
    /// request and by the alarm; a failure leaves them to the next.
    pub(crate) async fn finish_approvals(&self) {
        if self.approvals_finished.replace(true) {
            return;
        }
        if let Err(Failure(e)) = self.finish_interrupted().await {
            worker::console_error!("finishing interrupted approvals failed: {e}");
            self.approvals_finished.set(false);
            self.schedule(Timer::Resume, RESUME).await;
        }
        self.flush_audit().await;
    }

    async fn finish_interrupted(&self) -> HttpResult<()> {
        let unfinished: Vec<Approval> = select_json(
            &self.state.storage().sql(),
            "SELECT data FROM approvals WHERE json_extract(data, '$.status') = ?
             AND json_extract(data, '$.result') IS NULL ORDER BY n",
            vec![V::from(ApprovalStatus::Approved.as_str())],
        )?;
        if unfinished.is_empty() {
            return Ok(());
        }
        let room_id = self.room_id()?;
        let db = self.env.d1("DB")?;
        for approval in unfinished {
            let mut at = Attempt::new(&room_id, format!("resume-{}", approval.id));
            at.resumed = true;
            let at = at.with("approval", j!(approval.id));
            let decided = decision_attempt(&approval, &at);
            let by = approval.resolved_by.clone().unwrap_or_default();
            let now = members::identity(&db, &room_id, &by).await?;
            let (who, refusal) = match approval.resume(now) {
                Resume::Run(who) => (who, None),
                Resume::Refuse(who, e) => (who, Some(e)),
                Resume::Finished => continue,
            };
            let approver = Actor {
                who,
                kind: ActorKind::User,
            };
            let result = match refusal {
                None => {
                    self.decide(&approver, &approval.action, &approval.args, &decided)
                        .await
                }
                Some(e) => Err(e.into()),
            };
            self.settle(&approver, approval, result, &at, &decided)
                .await?;
        }
        Ok(())
    }

    /// `GET /rules` (admins and owners).
    pub(crate) fn list_rules(&self, req: &Request) -> HttpResult<Response> {
        may_read_rules(req)?;
        json(200, &j!({ "rules": &*self.rules()? }))
    }

    /// `POST /rules/dry-run` (admins and owners): what a draft rule would do
    /// for a sample event, as the caller's rule; nothing is stored, run or
    /// audited.
    pub(crate) async fn dry_run_rule(&self, req: &mut Request) -> HttpResult<Response> {
        let who = may_read_rules(req)?;
        let body: Value =
            tessera_core::api::parse_json(&req.bytes().await?, tessera_core::api::JSON_BODY_LIMIT)?;
        let author = ChangedBy {
            user_id: who.user_id.clone(),
            display_name: who.display_name.clone(),
            kind: ActorKind::User,
        };
        let state = self.workflow_state()?;
        let run = tessera_core::dry_run::dry_run(
            &body,
            &state,
            &author,
            who.role,
            crate::clock::now_secs(),
        )?;
        json(200, &run)
    }

    /// Lets the room's rules react to `events` (and to the events their
    /// effects cause, up to the cascade's bound). Each effect is an attempt
    /// by the rule's author, with their current role, and audited as such.
    pub(crate) async fn react(&self, events: Vec<Event>, at: &Attempt) {
        for origin in events {
            if let Err(Failure(e)) = self.cascade(origin, at).await {
                worker::console_error!("rules: {e}");
            }
        }
    }

    async fn cascade(&self, origin: Event, at: &Attempt) -> HttpResult<()> {
        let mut cascade = Cascade::new(origin);
        while let Some(event) = cascade.next_event() {
            let rules = self.rules()?;
            if !rules
                .iter()
                .any(|r| r.enabled && r.trigger == event.trigger)
            {
                continue;
            }
            let view = self.workflow_state()?.view_for_rules();
            for planned in plan(&rules, &event, &view) {
                let at = at.with("rule", j!(planned.rule_id));
                let author = members::identity(&self.env.d1("DB")?, &at.room_id, &planned.author)
                    .await?
                    .unwrap_or(Identity {
                        user_id: planned.author.clone(),
                        display_name: String::new(),
                        role: Role::Viewer,
                    });
                let actor = Actor {
                    who: author,
                    kind: ActorKind::Rule,
                };
                let (audited, error, stop) = match cascade.admit(&planned) {
                    Admit::Run(args) => {
                        if let Ok(done) = self.attempt(&actor, &planned.action, &args, &at).await {
                            cascade.caused(done.events);
                        }
                        continue;
                    }
                    Admit::Refuse { audited, error } => (audited, error, false),
                    Admit::Stop { audited, error } => (audited, error, true),
                };
                let (status, body) = (error.status(), error.body());
                self.audit(&actor, &planned.action, &audited, status, body, &at)?;
                if stop {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Appends an audit entry to the outbox (see the module comment); its
    /// result is `{status, outcome}` and the attempt's context (the rule or
    /// approval behind it).
    pub(crate) fn audit(
        &self,
        actor: &Actor,
        action: &str,
        args: &Value,
        status: u16,
        outcome: Value,
        at: &Attempt,
    ) -> HttpResult<()> {
        let mut result = at.context.clone();
        result.insert("status".into(), j!(status));
        result.insert("outcome".into(), outcome);
        let entry = j!({
            "room_id": at.room_id, "actor": actor.who.user_id, "actor_kind": actor.kind,
            "action": action, "arguments": args, "result": result,
            "request_id": at.request_id, "at": crate::clock::now_secs(),
        });
        self.state.storage().sql().exec(
            "INSERT INTO audit_outbox (entry) VALUES (?)",
            vec![V::from(entry.to_string())],
        )?;
        Ok(())
    }

    /// Copies the outboxes to D1: the audit trail, then the approval
    /// requests. A failure leaves the entries in the outbox and asks the
    /// alarm to try again.
    pub(crate) async fn flush_audit(&self) {
        let copied = match self.copy_audit().await {
            Ok(()) => self.copy_approvals().await,
            failed => failed,
        };
        if let Err(Failure(e)) = copied {
            worker::console_error!("audit copy to D1 failed, retrying later: {e}");
            self.schedule(Timer::AuditRetry, AUDIT_RETRY).await;
        }
    }

    async fn copy_audit(&self) -> HttpResult<()> {
        #[derive(Deserialize)]
        struct Pending {
            seq: u64,
            entry: String,
        }
        #[derive(Deserialize)]
        struct Entry {
            room_id: String,
            actor: String,
            actor_kind: String,
            action: String,
            arguments: Value,
            result: Value,
            request_id: String,
            at: u64,
        }
        let sql = self.state.storage().sql();
        let db = self.env.d1("DB")?;
        loop {
            let rows: Vec<Pending> = select(
                &sql,
                "SELECT seq, entry FROM audit_outbox ORDER BY seq LIMIT ?",
                Some(vec![int(AUDIT_BATCH as u64)]),
            )?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                return Ok(());
            };
            let mut inserts = Vec::with_capacity(rows.len());
            for r in &rows {
                let e: Entry = serde_json::from_str(&r.entry)?;
                inserts.push(
                    db.prepare(
                        "INSERT OR IGNORE INTO audit_log (room_id, actor, actor_kind, action, arguments,
                           result, request_id, at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .bind(&[
                        arg(&e.room_id),
                        arg(&e.actor),
                        arg(&e.actor_kind),
                        arg(&e.action),
                        arg(&e.arguments.to_string()),
                        arg(&e.result.to_string()),
                        arg(&e.request_id),
                        arg(e.at),
                        arg(&format!("{}:{}", e.room_id, r.seq)),
                    ])?,
                );
            }
            db.batch(inserts).await?;
            sql.exec("DELETE FROM audit_outbox WHERE seq <= ?", vec![int(last)])?;
        }
    }

    /// Copies the requests the outbox names to D1 `approvals`, each as it is
    /// now, with the newest outbox sequence that names it as `rev`: a copy
    /// made meanwhile with a higher `rev` is never overwritten by this one.
    /// A room deleted meanwhile gets no copy.
    async fn copy_approvals(&self) -> HttpResult<()> {
        #[derive(Deserialize)]
        struct Pending {
            id: String,
            seq: u64,
            data: Option<String>,
        }
        let sql = self.state.storage().sql();
        let db = self.env.d1("DB")?;
        let room_id = self.room_id()?;
        loop {
            let rows: Vec<Pending> = select(
                &sql,
                "SELECT o.id, MAX(o.seq) AS seq, a.data FROM approval_outbox o
                 LEFT JOIN approvals a ON a.id = o.id GROUP BY o.id ORDER BY MAX(o.seq) LIMIT ?",
                Some(vec![int(AUDIT_BATCH as u64)]),
            )?;
            if rows.is_empty() {
                return Ok(());
            }
            let mut upserts = Vec::with_capacity(rows.len());
            for r in &rows {
                let Some(data) = &r.data else { continue };
                let a: Approval = serde_json::from_str(data)?;
                upserts.push(
                    db.prepare(
                        "INSERT INTO approvals (room_id, id, status, requested_by, requested_kind, created_at,
                           settled_at, data, rev)
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM rooms WHERE id = ?1)
                         ON CONFLICT (room_id, id) DO UPDATE SET status = excluded.status,
                           settled_at = excluded.settled_at, data = excluded.data, rev = excluded.rev
                         WHERE excluded.rev > approvals.rev",
                    )
                    .bind(&[
                        arg(&room_id),
                        arg(&a.id),
                        arg(a.status.as_str()),
                        arg(&a.requested_by),
                        arg(a.requested_kind.as_str()),
                        arg(a.created_at),
                        arg(settled_at(&a)),
                        arg(data),
                        arg(r.seq),
                    ])?,
                );
            }
            if !upserts.is_empty() {
                db.batch(upserts).await?;
            }
            for r in &rows {
                sql.exec(
                    "DELETE FROM approval_outbox WHERE id = ? AND seq <= ?",
                    vec![V::from(r.id.as_str()), int(r.seq)],
                )?;
            }
        }
    }

    /// A membership change told by the Worker or made by an action: new roles
    /// apply to open sockets at once, removed members' sockets close, and a
    /// new member is announced (and returned as an event for rules).
    pub(crate) fn member_changed(&self, notice: &MemberNotice, actor: &str) -> Vec<Event> {
        self.apply_member_notice(notice);
        match (notice.joined, notice.role) {
            (true, Some(role)) => {
                let data = j!({ "user_id": notice.user_id, "role": role });
                // Not in the replayable stream: a client that missed it reads
                // the member list.
                self.broadcast(&tessera_core::protocol::ServerFrame::Event {
                    event: "member_joined".into(),
                    seq: None,
                    data: data.clone(),
                });
                vec![event(Trigger::MemberJoined, actor, data)]
            }
            (joined, role) => {
                // Open clients update their member list, and the person their
                // own role, without asking; a missed one reads the list again.
                if !joined {
                    self.broadcast(&tessera_core::protocol::ServerFrame::Event {
                        event: "member_changed".into(),
                        seq: None,
                        data: j!({ "user_id": notice.user_id, "role": role }),
                    });
                }
                Vec::new()
            }
        }
    }
}

impl Actor {
    /// The actor as a change of the room state remembers them.
    pub(crate) fn changed_by(&self) -> ChangedBy {
        ChangedBy {
            user_id: self.who.user_id.clone(),
            display_name: self.who.display_name.clone(),
            kind: self.kind,
        }
    }
}

/// The caller of a rule route, if they may read rules (admins and owners).
fn may_read_rules(req: &Request) -> HttpResult<tessera_core::protocol::Identity> {
    let who = identity(req)?;
    if !tessera_core::rules::may_read(who.role) {
        return Err(ApiError::forbidden("only admins and owners read the room's rules").into());
    }
    Ok(who)
}

/// The status and body an attempt answered with, as recorded.
pub(crate) fn answer(result: &HttpResult<Done>) -> (u16, Value) {
    match result {
        Ok(done) => (done.status, done.body.clone()),
        Err(Failure(e)) => (e.status(), e.body()),
    }
}

/// The attempt of an approval's decision: what its audit entry records, and
/// a key that makes an approved `send_message` post once however often it runs.
fn decision_attempt(approval: &Approval, at: &Attempt) -> Attempt {
    let mut decided = at
        .with("decision", j!(approval.status.as_str()))
        .with("requested_by", j!(approval.requested_by));
    decided.idempotency_key = Some(format!("approval-{}", approval.id));
    decided
}

fn event(trigger: Trigger, actor: &str, data: Value) -> Event {
    Event {
        trigger,
        actor: actor.to_string(),
        data,
    }
}
