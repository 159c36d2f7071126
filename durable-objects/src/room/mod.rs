//! RoomDO: the single writer of one room. It holds the room's hibernating
//! WebSockets, orders and stores chat (via `tessera_core::chat`), replays missed
//! events on resume, keeps presence and typing in socket attachments (so they
//! survive hibernation), and serves the room's history to the Worker.
//!
//! Only the Worker reaches this object. It authenticates the caller and checks
//! membership first, then passes the identity in `x-tessera-*` headers that it
//! sets itself; a client cannot forge them.
//!
//! The object's parts live in its submodules, each an `impl RoomDO` over the
//! state declared here: documents (`docs`), workflows and approvals
//! (`workflows`), the AI teammate (`ai`), notifications (`notify`), search
//! (`search`), ending sessions (`sessions`) and the alarm's deadlines
//! (`timers`); its storage is the chat store (`store`) and the document store
//! (`docstore`), so every SQL statement of the room's own database is in this
//! folder (the search index's are `tessera_core::search::sql`). Other objects
//! and the Worker reach a room through `crate::room_client`.

mod ai;
mod docs;
mod docstore;
pub mod notify;
pub mod search;
mod sessions;
mod store;
mod timers;
mod workflows;

use crate::clock::now_ms;
use crate::http::{json, Failure, HttpResult};
use crate::sql::create_schema;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use store::{SqlChatStore, SCHEMA};
use tessera_core::chat::{read_state, record_event, ChatLimits, ChatStore, HISTORY_PAGE_MAX};
use tessera_core::docs::DocLimits;
use tessera_core::protocol::{ClientFrame, Identity, ServerFrame};
use tessera_core::ratelimit::{Rate, TokenBucket};
use tessera_core::room::docs::Docs;
use tessera_core::room::timers::Timer;
use tessera_core::room::{
    ArchivedAnswer, Conn, Input, Output, Room, RoomCall, ROOM_CALL_BYTES_MAX,
};
use tessera_core::rooms::MemberNotice;
use tessera_core::rules::{self, Event, Trigger};
use tessera_core::ApiError;
use worker::{
    Env, Method, Request, Response, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

/// Writes per second per person (bursts of as many), unless `CHAT_RATE_PER_SEC` says otherwise.
const DEFAULT_WRITE_RATE: f64 = 10.0;
pub const CLOSE_ROOM_DELETED: u16 = 4004;
/// A failed backup is tried again after this.
const BACKUP_RETRY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often a busy room tells D1 it is active.
const TOUCH_EVERY_MS: u64 = 60_000;

pub struct RoomDO {
    pub(crate) state: State,
    pub(crate) env: Env,
    pub(crate) limits: ChatLimits,
    /// The chat sockets' engine (`tessera_core::room`).
    chat: RefCell<Room>,
    /// The document sockets' engine (`tessera_core::room::docs`).
    pub(crate) docs: RefCell<Docs>,
    /// The document sockets that opened or sent a frame in this object's
    /// lifetime, by connection, so the engine's outputs find them without a
    /// tag lookup.
    pub(crate) doc_conns: RefCell<HashMap<String, WebSocket>>,
    pub(crate) flush_scheduled: Cell<bool>,
    /// Whether to log the write path's counts when a document's last socket
    /// closes (`DOC_STATS`; the document benchmark reads them).
    pub(crate) log_doc_stats: bool,
    /// The room's deadlines (see `timers`), read once per object lifetime.
    pub(crate) timers: RefCell<Option<tessera_core::room::timers::Timers>>,
    /// Whether this object lifetime has looked for approved actions a
    /// restart interrupted (see `workflows::finish_approvals`).
    pub(crate) approvals_finished: Cell<bool>,
    /// How often changed documents are backed up (`DOC_BACKUP_EVERY_MS`, a day).
    pub(crate) backup_every_ms: u64,
    /// The room's rules, cached (see `workflows`).
    pub(crate) rules: RefCell<Option<Rc<[tessera_core::rules::Rule]>>>,
    /// The room's id, as every call from the Worker names it (kept in storage
    /// for the alarm and the sockets).
    room: RefCell<Option<String>>,
    /// `@ai` answers per minute in this room (in memory, like `buckets`).
    pub(crate) ai_rate: Rate,
    pub(crate) ai_bucket: RefCell<Option<TokenBucket>>,
    /// When the room last told D1 it was active (see `touched`).
    last_touch_ms: Cell<u64>,
    /// The search index's upkeep (see `search`).
    pub(crate) search: search::SearchState,
    /// The webhooks, cached (see `notify`).
    pub(crate) notify: notify::NotifyState,
    /// The stream's head seq, shared by the stores this object makes
    /// (`store::SqlChatStore::head`); storage erased, it is read again.
    head_seq: Rc<Cell<Option<u64>>>,
    schema_error: Option<String>,
}

fn var<T: std::str::FromStr>(env: &Env, name: &str) -> Option<T> {
    env.var(name).ok()?.to_string().parse().ok()
}

/// The runtime's entry points; `objects/` exports the class that calls them.
impl RoomDO {
    pub fn new(state: State, env: Env) -> Self {
        let defaults = ChatLimits::default();
        let limits = ChatLimits {
            body_bytes: var(&env, "CHAT_BODY_LIMIT").unwrap_or(defaults.body_bytes),
            frame_bytes: var(&env, "CHAT_FRAME_LIMIT").unwrap_or(defaults.frame_bytes),
            ..defaults
        };
        let per_sec = var::<f64>(&env, "CHAT_RATE_PER_SEC")
            .filter(|r| *r >= 1.0)
            .unwrap_or(DEFAULT_WRITE_RATE);
        let sql = state.storage().sql();
        let schema_error = create_schema(
            &sql,
            &[
                SCHEMA,
                docstore::SCHEMA,
                workflows::SCHEMA,
                ai::SCHEMA,
                notify::SCHEMA,
                timers::SCHEMA,
                tessera_core::search::sql::SCHEMA,
                tessera_core::search::sql::ROOM_SCHEMA,
            ],
        )
        .err();
        let ai_rate = ai::replies_rate(
            var::<f64>(&env, "AI_REPLIES_PER_MIN")
                .filter(|r| *r >= 1.0)
                .unwrap_or(ai::DEFAULT_REPLIES_PER_MIN),
        );
        let search_index = var::<String>(&env, "SEARCH_INDEX").as_deref() != Some("off");
        let doc_defaults = DocLimits::default();
        let doc_limits = DocLimits {
            message_bytes: var(&env, "DOC_MESSAGE_LIMIT").unwrap_or(doc_defaults.message_bytes),
            doc_bytes: var(&env, "DOC_SIZE_LIMIT").unwrap_or(doc_defaults.doc_bytes),
            compact_after_updates: var(&env, "DOC_COMPACT_AFTER_UPDATES")
                .unwrap_or(doc_defaults.compact_after_updates),
            message_rate: var::<f64>(&env, "DOC_RATE_PER_SEC")
                .filter(|r| *r >= 1.0)
                .map_or(doc_defaults.message_rate, |r| Rate {
                    capacity: r,
                    per_sec: r,
                }),
            docs_per_room: var(&env, "DOC_COUNT_LIMIT").unwrap_or(doc_defaults.docs_per_room),
            versions_per_doc: var(&env, "DOC_VERSION_LIMIT")
                .unwrap_or(doc_defaults.versions_per_doc),
            types_per_doc: var(&env, "DOC_TYPE_LIMIT").unwrap_or(doc_defaults.types_per_doc),
            ..doc_defaults
        };
        let backup_every_ms =
            var(&env, "DOC_BACKUP_EVERY_MS").unwrap_or(docs::DEFAULT_BACKUP_EVERY_MS);
        let log_doc_stats = var::<String>(&env, "DOC_STATS").is_some();
        let room = Self {
            state,
            env,
            limits,
            chat: RefCell::new(Room::new(
                limits,
                Rate {
                    capacity: per_sec,
                    per_sec,
                },
            )),
            docs: RefCell::new(Docs::new(doc_limits)),
            doc_conns: RefCell::new(HashMap::new()),
            flush_scheduled: Cell::new(false),
            log_doc_stats,
            timers: RefCell::new(None),
            approvals_finished: Cell::new(false),
            backup_every_ms,
            rules: RefCell::new(None),
            room: RefCell::new(None),
            ai_rate,
            ai_bucket: RefCell::new(None),
            last_touch_ms: Cell::new(0),
            search: search::SearchState::new(search_index),
            notify: notify::NotifyState::default(),
            head_seq: Rc::default(),
            schema_error,
        };
        // Read once per object lifetime; `archive_room` keeps it current.
        match room.stored_archived() {
            Ok(archived) => room.chat.borrow_mut().set_archived(archived),
            Err(Failure(e)) => worker::console_error!("reading the room state failed: {e}"),
        }
        room
    }

    pub async fn fetch(&self, req: Request) -> worker::Result<Response> {
        crate::http::answer(self.serve(req).await)
    }

    pub async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let tags = socket_tags(&self.state, &ws);
        if tags.has("doc") {
            return match message {
                WebSocketIncomingMessage::Binary(bytes) => self.doc_message(ws, tags, bytes).await,
                WebSocketIncomingMessage::String(_) => {
                    ws.close(
                        Some(1003),
                        Some("document sockets carry binary y-protocol messages"),
                    )?;
                    Ok(())
                }
            };
        }
        let Some(mut conn) = ws.deserialize_attachment::<Conn>()? else {
            ws.close(Some(1011), Some("socket state lost"))?;
            return Ok(());
        };
        let input = match &message {
            WebSocketIncomingMessage::String(t) => Input::Text(t),
            WebSocketIncomingMessage::Binary(_) => Input::Binary,
        };
        let outputs = self.chat.borrow_mut().handle(
            &mut conn,
            input,
            &mut self.store(),
            || self.conns(),
            now_ms(),
        );
        let stored = self.execute(outputs, Some((&ws, &conn)), &[])?;
        self.after_chat(&ws, &stored, &conn.room).await;
        Ok(())
    }

    pub async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _clean: bool,
    ) -> worker::Result<()> {
        crate::sessions::answer_close(&ws, code, reason);
        self.socket_gone(&ws).await
    }

    pub async fn websocket_error(
        &self,
        ws: WebSocket,
        _error: worker::Error,
    ) -> worker::Result<()> {
        self.socket_gone(&ws).await
    }

    pub async fn alarm(&self) -> worker::Result<Response> {
        let due = self.expired_timers()?;
        // Interrupted approvals and the audit copy (it flushes it too) are
        // retried whichever timer rang: both are cheap when nothing waits.
        self.finish_approvals().await;
        // An alarm with nothing due was set before the timers were kept
        // (deployed rooms): it backs up, as every alarm did then.
        if due.is_empty() || due.contains(&Timer::Backup) {
            if let Err(e) = self.backup_docs().await {
                worker::console_error!("document backup failed, retrying later: {e}");
                self.schedule(Timer::Backup, BACKUP_RETRY).await;
            }
        }
        self.alarm_for_next().await?;
        Response::ok("done")
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A WebSocket seen only for `send` with an existing JS value, so that a
    /// broadcast converts its frame from Rust to JavaScript once, not per socket.
    type RawSocket;
    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_value(
        this: &RawSocket,
        data: &wasm_bindgen::JsValue,
    ) -> Result<(), wasm_bindgen::JsValue>;
}

thread_local! {
    static TAGS_KEY: wasm_bindgen::JsValue = wasm_bindgen::JsValue::from_str("tesseraTags");
}

/// A socket's tags. workerd's `getTags` cost about 25 µs a call (a tenth of
/// the document handler in a profile of the benchmark), so they are read once
/// per socket object and kept on it; a socket woken from hibernation is a new
/// object and reads them again.
pub(crate) fn socket_tags(state: &State, ws: &WebSocket) -> Tags {
    let js: &wasm_bindgen::JsValue = ws.as_ref();
    let cached = TAGS_KEY.with(|key| js_sys::Reflect::get(js, key).ok());
    if let Some(joined) = cached.and_then(|v| v.as_string()) {
        return Tags(joined);
    }
    let joined = state.get_tags(ws).join("\n");
    TAGS_KEY.with(|key| {
        let _ = js_sys::Reflect::set(js, key, &joined.as_str().into());
    });
    Tags(joined)
}

/// A socket's tags as they are kept on it, one per line.
pub(crate) struct Tags(String);

impl Tags {
    pub(crate) fn has(&self, tag: &str) -> bool {
        self.0.split('\n').any(|t| t == tag)
    }

    /// The rest of the first tag that starts with `prefix` (`d:`, `c:`).
    pub(crate) fn value(&self, prefix: &str) -> Option<&str> {
        self.0.split('\n').find_map(|t| t.strip_prefix(prefix))
    }
}

pub(crate) fn send_js(
    ws: &WebSocket,
    data: &wasm_bindgen::JsValue,
) -> Result<(), wasm_bindgen::JsValue> {
    use wasm_bindgen::JsCast;
    let raw: &web_sys::WebSocket = ws.as_ref();
    raw.unchecked_ref::<RawSocket>().send_value(data)
}

fn send(ws: &WebSocket, frame: &ServerFrame) {
    // A socket that is closing cannot be written to; its close handler runs.
    let _ = ws.send_with_str(frame.to_json());
}

/// The answer to a WebSocket upgrade, echoing the subprotocol the Worker
/// accepted (a browser's token travels as one).
pub(crate) fn socket_response(req: &Request, client: WebSocket) -> HttpResult<Response> {
    let resp = Response::from_websocket(client)?;
    if let Some(protocol) = req.headers().get("x-tessera-protocol")? {
        resp.headers().set("sec-websocket-protocol", &protocol)?;
    }
    Ok(resp)
}

/// The caller's identity as the Worker passed it.
pub(crate) fn identity(req: &Request) -> HttpResult<Identity> {
    req.headers()
        .get("x-tessera-identity")?
        .as_deref()
        .and_then(Identity::from_header)
        .ok_or_else(|| ApiError::Internal("room object called without an identity".into()).into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostMessage {
    body: String,
    #[serde(default)]
    reply_to: Option<u64>,
    #[serde(default)]
    attachments: Vec<String>,
}

impl RoomDO {
    async fn socket_gone(&self, ws: &WebSocket) -> worker::Result<()> {
        let tags = socket_tags(&self.state, ws);
        if tags.has("doc") {
            self.doc_left(ws, &tags).await
        } else {
            self.left(ws)
        }
    }

    pub(crate) fn store(&self) -> SqlChatStore {
        SqlChatStore {
            index: self.search.enabled,
            sql: self.state.storage().sql(),
            head: Rc::clone(&self.head_seq),
            retained: self.limits.retained_events,
        }
    }

    async fn serve(&self, mut req: Request) -> HttpResult<Response> {
        if let Some(e) = &self.schema_error {
            return Err(ApiError::Internal(format!("room schema: {e}")).into());
        }
        self.remember_room(&req)?;
        self.finish_approvals().await;
        let url = req.url()?;
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let path: Vec<&str> = url.path().trim_matches('/').split('/').collect();
        match (req.method(), path.as_slice()) {
            (Method::Get, ["ws"]) => self.open_socket(&req, &query),
            (_, ["docs", rest @ ..]) => {
                let who = identity(&req)?;
                let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
                let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
                self.serve_docs(req, who, &rest).await
            }
            (Method::Get, ["state"]) => json(200, &self.workflow_state()?),
            (Method::Post, ["actions", name]) => {
                let name = name.to_string();
                let args = Self::action_args(&mut req).await?;
                self.serve_action(&req, &name, args).await
            }
            (Method::Get, ["rules"]) => self.list_rules(&req),
            (Method::Post, ["rules", "dry-run"]) => self.dry_run_rule(&mut req).await,
            (Method::Post, ["rules"]) => {
                let args =
                    tessera_core::rules::set_rule_args(Self::rule_body(&mut req).await?, None)?;
                self.serve_rule(&req, args).await
            }
            (Method::Patch, ["rules", id]) => {
                let id = id.to_string();
                let args = tessera_core::rules::set_rule_args(
                    Self::rule_body(&mut req).await?,
                    Some(&id),
                )?;
                self.serve_rule(&req, args).await
            }
            (Method::Delete, ["rules", id]) => {
                let args = serde_json::json!({ "id": id });
                self.serve_action(&req, "delete_rule", args).await
            }
            (Method::Get, ["approvals"]) => {
                identity(&req)?;
                self.list_approvals(query.get("status").map(String::as_str))
            }
            (Method::Post, ["approvals", id, decision @ ("approve" | "reject")]) => {
                let (id, approve) = (id.to_string(), *decision == "approve");
                self.decide_approval(&mut req, &id, approve).await
            }
            (_, ["search", rest @ ..]) => {
                let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
                let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
                self.serve_search(req, &rest, &query).await
            }
            (Method::Get, ["ai", "digest"]) => self.digest(&query),
            (Method::Get, ["ai", "checkin"]) => self.checkin_view(&query),
            (Method::Get, ["ai", "context"]) => self.question_context(&query),
            (Method::Post, ["ai", "checkin"]) => self.checkin(&mut req).await,
            (Method::Post, ["ai", "record"]) => self.ai_record(&mut req).await,
            (Method::Get, ["messages"]) => self.history(&query),
            (Method::Get, ["messages", id]) => {
                let id: u64 = id.parse().map_err(|_| ApiError::NotFound("message"))?;
                let store = self.store();
                let m = store
                    .message(id)?
                    .filter(|m| !m.deleted)
                    .ok_or(ApiError::NotFound("message"))?;
                let reactions = store.reactions_of(&[id])?.remove(&id).unwrap_or_default();
                json(200, &m.view(reactions))
            }
            (Method::Post, ["messages"]) => {
                let who = identity(&req)?;
                let key = req
                    .headers()
                    .get("idempotency-key")?
                    .ok_or_else(|| ApiError::invalid("the Idempotency-Key header is required"))?;
                let body: PostMessage =
                    tessera_core::api::parse_body(&req.bytes().await?, self.limits.frame_bytes)?;
                let frame = ClientFrame::Send {
                    client_msg_id: key,
                    body: body.body,
                    reply_to: body.reply_to,
                    attachments: body.attachments,
                };
                let (id, duplicate) = self.send_over_http(&who, frame)?;
                let store = self.store();
                let m = store.message(id)?.ok_or(ApiError::NotFound("message"))?;
                if !duplicate {
                    self.touched();
                    let posted = self.message_event(id)?.into_iter().collect();
                    self.react_now(posted, &req).await?;
                    if let Err(e) = self.ask_ai_if_mentioned(&m).await {
                        worker::console_log!("@ai not asked: {e}");
                    }
                }
                let reactions = store.reactions_of(&[id])?.remove(&id).unwrap_or_default();
                json(if duplicate { 200 } else { 201 }, &m.view(reactions))
            }
            (Method::Post, ["call"]) => {
                let call = tessera_core::api::parse_json(&req.bytes().await?, ROOM_CALL_BYTES_MAX)?;
                self.serve_call(&req, call).await
            }
            (Method::Post, ["webhooks"]) => self.set_webhooks(&mut req).await,
            (Method::Post, ["watch"]) => self.watch(&mut req).await,
            _ => Err(ApiError::NoRoute.into()),
        }
    }

    /// The typed calls of the Worker and the other objects (`RoomCall`).
    async fn serve_call(&self, req: &Request, call: RoomCall) -> HttpResult<Response> {
        let ok = || json(200, &serde_json::json!({ "ok": true }));
        match call {
            RoomCall::Member(notice) => {
                let joined = self.member_changed(&notice, &notice.user_id);
                self.react_now(joined, req).await?;
                ok()
            }
            RoomCall::Purge => {
                for ws in self.state.get_websockets() {
                    let _ = ws.close(Some(CLOSE_ROOM_DELETED), Some("room deleted"));
                }
                // Backups go first: once storage is erased nothing would retry.
                self.purge_doc_backups().await?;
                self.state.storage().delete_alarm().await?;
                self.state.storage().delete_all().await?;
                self.head_seq.set(None);
                self.forget_timers();
                ok()
            }
            RoomCall::FileAdded { file, uploader } => {
                if self.store().add_file(&file)? {
                    self.touched();
                    self.search_put(tessera_core::search::index::Entry::file(
                        &file,
                        &uploader,
                        None,
                        now_ms(),
                    ))?;
                    let data = serde_json::json!({ "file": file, "uploader": uploader });
                    self.record("file_added", data.clone())?;
                    let added = Event {
                        trigger: Trigger::FileAdded,
                        actor: uploader,
                        data,
                    };
                    self.react_now(vec![added], req).await?;
                }
                ok()
            }
            RoomCall::FileRemoved { id } => {
                self.file_removed(&id)?;
                ok()
            }
            RoomCall::Ephemeral { event, data } => {
                self.broadcast(&ServerFrame::Event {
                    event,
                    seq: None,
                    data,
                });
                ok()
            }
            RoomCall::EndSessions(end) => json(
                200,
                &serde_json::json!({ "closed": self.end_sessions(&end) }),
            ),
            RoomCall::Archived => json(
                200,
                &ArchivedAnswer {
                    archived: self.archived(),
                },
            ),
            RoomCall::Unread { user } => json(200, &read_state(&self.store(), &user)?),
        }
    }

    /// A message the server side sends (the send_message action, the AI):
    /// `key` (cut to a client message id) makes it once.
    pub(crate) fn post_text(
        &self,
        who: &Identity,
        key: &str,
        body: String,
        reply_to: Option<u64>,
    ) -> HttpResult<(u64, bool)> {
        let frame = ClientFrame::Send {
            client_msg_id: key
                .chars()
                .take(tessera_core::chat::CLIENT_MSG_ID_MAX)
                .collect(),
            body,
            reply_to,
            attachments: Vec::new(),
        };
        self.send_over_http(who, frame)
    }

    /// A `send` that arrives over HTTP (integrations, named actions): the same
    /// rate limit and engine as the socket; returns the message id and whether
    /// it was a repeat of an earlier send.
    pub(crate) fn send_over_http(
        &self,
        who: &Identity,
        frame: ClientFrame,
    ) -> HttpResult<(u64, bool)> {
        let mut store = self.store();
        let outcome = self
            .chat
            .borrow_mut()
            .post(who, frame, &mut store, now_ms())?;
        for f in &outcome.broadcast {
            self.broadcast(f);
        }
        self.notify_frames(&outcome.broadcast);
        self.search_after(&outcome.broadcast);
        match outcome.reply.first() {
            Some(ServerFrame::Ack { id, duplicate, .. }) => Ok((*id, *duplicate)),
            _ => Err(ApiError::Internal("send produced no ack".into()).into()),
        }
    }

    /// A file left the room: dropped from its list, and the sockets told.
    pub(crate) fn file_removed(&self, id: &str) -> HttpResult<()> {
        if self.store().remove_file(id)? {
            self.record("file_deleted", serde_json::json!({ "id": id }))?;
        }
        self.search_remove(tessera_core::search::Kind::File, id)?;
        Ok(())
    }

    /// Whether the room is archived: read-only for everyone.
    pub(crate) fn archived(&self) -> bool {
        self.chat.borrow().archived()
    }

    /// The room was archived: no socket or request writes from now on.
    pub(crate) fn set_archived(&self) {
        self.chat.borrow_mut().set_archived(true);
    }

    /// The room's id: named by every call from the Worker, and kept.
    pub(crate) fn room_id(&self) -> HttpResult<String> {
        if let Some(id) = self.room.borrow().as_ref() {
            return Ok(id.clone());
        }
        let id = self
            .doc_store()
            .meta("room")?
            .ok_or_else(|| ApiError::Internal("the room object does not know its room".into()))?;
        *self.room.borrow_mut() = Some(id.clone());
        Ok(id)
    }

    fn remember_room(&self, req: &Request) -> HttpResult<()> {
        let Some(named) = req.headers().get("x-tessera-room")? else {
            return Ok(());
        };
        if self.room.borrow().as_deref() == Some(named.as_str()) {
            return Ok(());
        }
        let store = self.doc_store();
        if store.meta("room")?.as_deref() != Some(named.as_str()) {
            store.set_meta("room", &named)?;
        }
        *self.room.borrow_mut() = Some(named);
        Ok(())
    }

    /// Lets rules react to events caused by a request from the Worker, and
    /// copies the audit trail before it is answered.
    async fn react_now(&self, events: Vec<Event>, req: &Request) -> HttpResult<()> {
        if events.is_empty() || self.rules()?.is_empty() {
            return Ok(());
        }
        let at = self.attempt_of(req)?;
        self.react(events, &at).await;
        self.flush_audit().await;
        Ok(())
    }

    /// After a chat frame: a new message marks the room active, may ask the
    /// AI (the sender hears when the room's `@ai` rate is spent) and may set
    /// off rules.
    async fn after_chat(&self, ws: &WebSocket, broadcast: &[ServerFrame], room_id: &str) {
        let Some(ServerFrame::Message { message, .. }) = broadcast.first() else {
            return;
        };
        self.touched();
        if let Err(e) = self.ask_ai_if_mentioned(&message.message).await {
            let (code, retry_after) = match e {
                ApiError::RateLimited { retry_after_secs } => (
                    tessera_core::error::code::AI_RATE_LIMITED,
                    Some(retry_after_secs as f64),
                ),
                _ => (tessera_core::error::code::AI_UNAVAILABLE, None),
            };
            send(
                ws,
                &ServerFrame::Error {
                    code: code.into(),
                    message: format!("the AI will not answer this message: {e}"),
                    reference: Some(message.message.client_msg_id.clone()),
                    retry_after,
                },
            );
        }
        if !matches!(self.rules(), Ok(r) if !r.is_empty()) {
            return;
        }
        let posted = Event {
            trigger: Trigger::MessagePosted,
            actor: message.message.author.clone(),
            data: serde_json::json!({ "message": message }),
        };
        let at = workflows::Attempt::new(room_id, format!("ws-{}", message.seq));
        self.react(vec![posted], &at).await;
        self.flush_audit().await;
    }

    /// Tells D1 that the room was active (the daily check-in picks rooms by
    /// it), at most once a minute and without delaying the caller.
    pub(crate) fn touched(&self) {
        let now = now_ms();
        if now.saturating_sub(self.last_touch_ms.get()) < TOUCH_EVERY_MS {
            return;
        }
        let Ok(room) = self.room_id() else {
            return;
        };
        self.last_touch_ms.set(now);
        let env = self.env.clone();
        self.state.wait_until(async move {
            let result = async {
                env.d1("DB")?
                    .prepare("UPDATE rooms SET last_activity_at = ?1 WHERE id = ?2")
                    .bind(&[crate::d1::arg(now / 1000), crate::d1::arg(&room)])?
                    .run()
                    .await
            }
            .await;
            if let Err(e) = result {
                worker::console_error!("marking the room active failed: {e}");
            }
        });
    }

    /// Appends an event to the replayable stream and broadcasts it; whoever
    /// may not read rules gets it without them (`rules::without_rules`).
    pub(crate) fn record(&self, event: &str, data: serde_json::Value) -> HttpResult<()> {
        let frame = record_event(&mut self.store(), event, data)?;
        if let ServerFrame::Event {
            seq: Some(seq),
            data,
            ..
        } = &frame
        {
            self.notify_event(event, *seq, data);
        }
        let Some(partial) = rules::without_rules(&frame) else {
            self.broadcast(&frame);
            return Ok(());
        };
        let full = wasm_bindgen::JsValue::from_str(&frame.to_json());
        let partial = wasm_bindgen::JsValue::from_str(&partial.to_json());
        for (ws, att) in self.sockets() {
            let text = if rules::may_read(att.role) {
                &full
            } else {
                &partial
            };
            let _ = send_js(&ws, text);
        }
        Ok(())
    }

    fn open_socket(&self, req: &Request, query: &BTreeMap<String, String>) -> HttpResult<Response> {
        if req.headers().get("upgrade")?.as_deref() != Some("websocket") {
            return Err(ApiError::invalid("expected a WebSocket upgrade").into());
        }
        let who = identity(req)?;
        let room = req.headers().get("x-tessera-room")?.unwrap_or_default();
        let since: Option<u64> = match query.get("since") {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| ApiError::invalid("since must be a sequence number"))?,
            ),
            None => None,
        };
        let now = now_ms();
        let others = self.conns();
        let conn = Conn::new(format!("{now}-{}", js_sys::Math::random()), room, &who, now);
        let pair = WebSocketPair::new()?;
        let session = crate::sessions::session_tag(req)?;
        let tags: Vec<&str> = std::iter::once("chat").chain(session.as_deref()).collect();
        self.state.accept_websocket_with_tags(&pair.server, &tags);
        let mut store = self.store();
        let outputs = self
            .chat
            .borrow_mut()
            .open(&conn, since, &others, &mut store, now)?;
        self.execute(outputs, Some((&pair.server, &conn)), &[])?;
        socket_response(req, pair.client)
    }

    fn history(&self, query: &BTreeMap<String, String>) -> HttpResult<Response> {
        let num = |k: &str| -> HttpResult<Option<u64>> {
            query
                .get(k)
                .map(|v| {
                    v.parse()
                        .map_err(|_| ApiError::invalid(format!("{k} must be a number")).into())
                })
                .transpose()
        };
        let limit = num("limit")?.unwrap_or(50);
        if !(1..=HISTORY_PAGE_MAX as u64).contains(&limit) {
            return Err(ApiError::invalid(format!("limit must be 1 to {HISTORY_PAGE_MAX}")).into());
        }
        let seq = |k: &str| -> HttpResult<Option<u64>> {
            query
                .get(k)
                .map(|v| {
                    tessera_core::ids::parse_safe_id(v).ok_or_else(|| {
                        ApiError::invalid(format!("{k} must be a message seq")).into()
                    })
                })
                .transpose()
        };
        let store = self.store();
        let page = store.page(seq("before")?, seq("after")?, limit as u32, true)?;
        let ids: Vec<u64> = page.iter().map(|m| m.id).collect();
        let mut reactions = store.reactions_of(&ids)?;
        let messages: Vec<_> = page
            .iter()
            .map(|m| m.view(reactions.remove(&m.id).unwrap_or_default()))
            .collect();
        let head = store.head_seq()?;
        json(
            200,
            &serde_json::json!({ "messages": messages, "head_seq": head }),
        )
    }

    fn sockets(&self) -> Vec<(WebSocket, Conn)> {
        self.state
            .get_websockets_with_tag("chat")
            .into_iter()
            .filter_map(|ws| {
                let conn = ws.deserialize_attachment::<Conn>().ok().flatten()?;
                Some((ws, conn))
            })
            .collect()
    }

    /// Every chat socket's state, as stored in the attachments.
    fn conns(&self) -> Vec<Conn> {
        self.sockets().into_iter().map(|(_, c)| c).collect()
    }

    pub(crate) fn broadcast(&self, frame: &ServerFrame) {
        let text = wasm_bindgen::JsValue::from_str(&frame.to_json());
        for ws in self.state.get_websockets_with_tag("chat") {
            // A closing socket cannot be written to; its close handler runs.
            let _ = send_js(&ws, &text);
        }
    }

    fn broadcast_except(&self, conn: &str, frame: &ServerFrame) {
        let text = wasm_bindgen::JsValue::from_str(&frame.to_json());
        for (ws, c) in self.sockets() {
            if c.conn != conn {
                let _ = send_js(&ws, &text);
            }
        }
    }

    /// Carries out what the room engine decided, in order. `here` is the
    /// socket the event came from; `others` the sockets it may name besides.
    /// Returns the stored frames that the caller hands on to the AI and the
    /// rules (`after_chat`, which awaits them).
    fn execute(
        &self,
        outputs: Vec<Output>,
        here: Option<(&WebSocket, &Conn)>,
        others: &[(WebSocket, Conn)],
    ) -> worker::Result<Vec<ServerFrame>> {
        let mut stored = Vec::new();
        let socket = |to: &str| match here {
            Some((ws, c)) if c.conn == to => Some(ws),
            _ => others.iter().find(|(_, c)| c.conn == to).map(|(ws, _)| ws),
        };
        for output in outputs {
            match output {
                Output::Send { to, frame } => {
                    if let Some(ws) = socket(&to) {
                        send(ws, &frame);
                    }
                }
                Output::SendStored { to, text } => {
                    if let Some(ws) = socket(&to) {
                        let _ = ws.send_with_str(text);
                    }
                }
                Output::Broadcast { frame, except } => match except {
                    Some(conn) => self.broadcast_except(&conn, &frame),
                    None => self.broadcast(&frame),
                },
                Output::Close { to, code, reason } => {
                    if let Some(ws) = socket(&to) {
                        // A socket that is already closing is on its way out.
                        let _ = ws.close(Some(code), Some(reason));
                    }
                }
                Output::Save(conn) => {
                    if let Some(ws) = socket(&conn.conn) {
                        ws.serialize_attachment(&conn)?;
                    }
                }
                Output::Stored(frames) => {
                    self.notify_frames(&frames);
                    self.search_after(&frames);
                    stored = frames;
                }
            }
        }
        Ok(stored)
    }

    /// A socket went away: the room engine says what the others hear.
    fn left(&self, ws: &WebSocket) -> worker::Result<()> {
        let Some(conn) = ws.deserialize_attachment::<Conn>()? else {
            return Ok(());
        };
        let conns = self.conns();
        let mut store = self.store();
        let outputs = self
            .chat
            .borrow_mut()
            .closed(&conn, &conns, &mut store, now_ms())
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        self.execute(outputs, Some((ws, &conn)), &[])?;
        Ok(())
    }

    /// A new role applies to open sockets at once; a removed member's sockets
    /// are closed and their read marker forgotten. Document sockets follow
    /// through `docs::doc_member_changed`.
    pub(crate) fn apply_member_notice(&self, update: &MemberNotice) {
        self.doc_member_changed(update);
        if update.role.is_none() {
            if let Err(e) = self.store().forget_read(&update.user_id) {
                worker::console_error!("forgetting a read marker failed: {e}");
            }
            self.unwatch(&update.user_id);
        }
        let sockets = self.sockets();
        let conns: Vec<Conn> = sockets.iter().map(|(_, c)| c.clone()).collect();
        let outputs = self.chat.borrow().member_changed(update, &conns);
        if let Err(e) = self.execute(outputs, None, &sockets) {
            worker::console_error!("applying a role change to sockets failed: {e}");
        }
    }
}
