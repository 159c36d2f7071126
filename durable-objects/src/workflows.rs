//! The room object's side of collaboration workflows: the room state
//! (activities, settings, version) in the object's SQLite, named actions run
//! against it (`tessera_core::actions`), and a `collaboration_updated` event in
//! the room's stream for every change.

use crate::http::{json, HttpResult};
use crate::room::{identity, RoomDO};
use crate::store::{int, select};
use serde::Deserialize;
use tessera_core::actions::{
    authorize, changed_activities, check_version, spec, ActorKind, Decision, Effect, RoomState,
};
use tessera_core::protocol::ClientFrame;
use tessera_core::ApiError;
use worker::{Request, Response, SqlStorageValue as V};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workflow (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,
  settings TEXT NOT NULL, next_activity INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS activities (id TEXT PRIMARY KEY, data TEXT NOT NULL);
";

/// Largest JSON arguments of one action.
const ARGS_LIMIT: usize = 16 * 1024;

impl RoomDO {
    pub(crate) fn workflow_state(&self) -> HttpResult<RoomState> {
        #[derive(Deserialize)]
        struct Meta {
            version: u64,
            settings: String,
            next_activity: u64,
        }
        #[derive(Deserialize)]
        struct Row {
            data: String,
        }
        let sql = self.state.storage().sql();
        let meta: Vec<Meta> = select(
            &sql,
            "SELECT version, settings, next_activity FROM workflow WHERE id = 1",
            None,
        )?;
        let mut state = RoomState::default();
        if let Some(m) = meta.into_iter().next() {
            state.version = m.version;
            state.settings = serde_json::from_str(&m.settings)?;
            state.next_activity = m.next_activity;
        }
        let rows: Vec<Row> = select(&sql, "SELECT data FROM activities", None)?;
        for r in rows {
            let a: tessera_core::actions::Activity = serde_json::from_str(&r.data)?;
            state.activities.insert(a.id.clone(), a);
        }
        Ok(state)
    }

    /// Writes the state after a change: the meta row and the activities that
    /// changed, in one synchronous turn.
    fn save_workflow(&self, state: &RoomState, touched: &[&str]) -> HttpResult<()> {
        let sql = self.state.storage().sql();
        sql.exec(
            "INSERT INTO workflow (id, version, settings, next_activity) VALUES (1, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, settings = excluded.settings,
               next_activity = excluded.next_activity",
            vec![
                int(state.version),
                V::from(serde_json::to_string(&state.settings)?),
                int(state.next_activity),
            ],
        )?;
        for id in touched {
            if let Some(a) = state.activities.get(*id) {
                sql.exec(
                    "INSERT INTO activities (id, data) VALUES (?, ?)
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    vec![V::from(*id), V::from(serde_json::to_string(a)?)],
                )?;
            }
        }
        Ok(())
    }

    /// `POST /actions/{name}` from the Worker, which has checked membership and
    /// writes the audit entry from this answer.
    pub(crate) async fn run_action(&self, mut req: Request, name: &str) -> HttpResult<Response> {
        let who = identity(&req)?;
        let spec = spec(name)?;
        let args: serde_json::Value =
            tessera_core::api::parse_json(&req.bytes().await?, ARGS_LIMIT)?;
        if authorize(spec, who.role, ActorKind::User)? == Decision::NeedsApproval {
            return Err(ApiError::NotImplemented(format!(
                "`{name}` needs an owner's approval for your role, and approval requests are not built yet"
            ))
            .into());
        }
        let mut state = self.workflow_state()?;
        check_version(req.headers().get("if-match")?.as_deref(), state.version)?;
        let now = crate::clock::now_ms();
        match state.run(spec, &args, &who.user_id, now / 1000)? {
            Effect::State(changes) => {
                if !changes.is_empty() {
                    self.save_workflow(&state, &changed_activities(&changes))?;
                    self.record(
                        "collaboration_updated",
                        serde_json::json!({ "version": state.version, "changes": changes }),
                    )?;
                }
                json(
                    200,
                    &serde_json::json!({ "version": state.version, "changes": changes }),
                )
            }
            Effect::External {
                name: "send_message",
                args,
            } => {
                let key = req
                    .headers()
                    .get("idempotency-key")?
                    .unwrap_or_else(|| format!("action-{now}-{}", js_sys::Math::random()));
                let frame = ClientFrame::Send {
                    client_msg_id: key.chars().take(64).collect(),
                    body: args["body"].as_str().unwrap_or_default().to_string(),
                    reply_to: None,
                    attachments: Vec::new(),
                };
                let (id, _) = self.send_over_http(&who, frame)?;
                json(
                    201,
                    &serde_json::json!({ "version": state.version, "message_id": id }),
                )
            }
            Effect::External { name, .. } => Err(ApiError::NotImplemented(format!(
                "`{name}` is not yet runnable as a named action; use its own endpoint"
            ))
            .into()),
        }
    }
}
