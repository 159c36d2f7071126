//! The document half of RoomDO: y-websocket sockets (tagged `doc`, `d:<name>`,
//! `rw`/`ro` and `c:<conn>`, so the hot path reads no attachment), updates
//! persisted before they are broadcast, awareness relayed, REST reads and
//! writes, versions, and the daily R2 backup from the object's alarm.
//!
//! Write path: an update is integrated into the in-memory document at once and
//! queued; the first queued update waits one timer tick, during which the
//! updates that arrive together are queued too (up to `FLUSH_AT_UPDATES`),
//! then all of them are written in one synchronous turn (one transaction) and
//! only then broadcast. This is the write coalescing DESIGN.md asks for: one
//! commit per burst instead of per message. A burst is stored and sent merged
//! per sender, in groups (`merge_burst`). An update that was never written was
//! never broadcast either, and its sender still holds it and re-sends it on
//! reconnect (sync step 1/2).

use crate::clock::now_ms;
use crate::docstore::{DocStore, VersionInfo};
use crate::http::{json, no_content, HttpResult};
use crate::room::{send_js, socket_tags, RoomDO, Tags};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tessera_core::docs::{
    awareness_removal, handle_frame, merge_burst, should_compact, update_message,
    validate_doc_name, DocEffect, LiveDoc,
};
use tessera_core::protocol::{Identity, ServerFrame};
use tessera_core::ratelimit::TokenBucket;
use tessera_core::rooms::{require, Permission};
use tessera_core::ApiError;
use wasm_bindgen::JsValue;
use worker::{Delay, Method, Request, Response, WebSocket, WebSocketPair};

/// A `doc_changed` event goes to the room's chat sockets at most this often per document.
const DOC_EVENT_EVERY_MS: u64 = 2_000;
const BACKUP_EVERY_MS: u64 = 24 * 3600 * 1000;
/// Close code for sockets of a deleted document.
pub const CLOSE_DOC_DELETED: u16 = 4004;

/// Bytes the first document loaded in a module instance reserves on the heap.
/// Growing WebAssembly memory is slow in workerd and the allocator grows it
/// 64 KiB at a time, so a document that grew update by update paid for it
/// over and over: in a profile of the first 20,000 edits of the benchmark,
/// `malloc` and the copies it served fell from about 510 to 100 ms with this
/// reserve.
const HEAP_RESERVE: usize = 32 << 20;

fn reserve_heap() {
    thread_local! {
        static RESERVED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !RESERVED.with(|r| r.replace(true)) {
        // Freed at once: the allocator keeps the grown memory for later use.
        std::hint::black_box(Vec::<u8>::with_capacity(HEAP_RESERVE));
    }
}

/// Per-socket state of a document socket that must survive hibernation: which
/// awareness clients it speaks for, so that their removal can be announced.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DocAttachment {
    user_id: String,
    awareness: Vec<(u64, u32)>,
}

fn same_socket(a: &WebSocket, b: &WebSocket) -> bool {
    let a: &JsValue = a.as_ref();
    let b: &JsValue = b.as_ref();
    a == b
}

/// Sends one message (converted to JavaScript once) to every socket but `except`.
fn send_except(sockets: &[WebSocket], message: &[u8], except: Option<&WebSocket>) {
    let data = bytes_js(message);
    for ws in sockets {
        if !except.is_some_and(|e| same_socket(e, ws)) {
            // A closing socket cannot be written to; its close handler runs.
            let _ = send_js(ws, &data);
        }
    }
}

fn bytes_js(bytes: &[u8]) -> JsValue {
    js_sys::Uint8Array::from(bytes).buffer().into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVersion {
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Restore {
    /// The Y.Text roots to restore (the server cannot know a root's type).
    texts: Vec<String>,
}

impl RoomDO {
    pub(crate) fn doc_store(&self) -> DocStore {
        DocStore {
            sql: self.state.storage().sql(),
        }
    }

    /// Runs `f` on the named document, loading it from storage first if needed.
    pub(crate) fn with_doc<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut LiveDoc) -> T,
    ) -> worker::Result<T> {
        let mut docs = self.docs.borrow_mut();
        if !docs.contains_key(name) {
            reserve_heap();
            let live = self.doc_store().load(name)?.unwrap_or_default();
            docs.insert(name.to_string(), live);
        }
        let live = docs
            .get_mut(name)
            .ok_or_else(|| worker::Error::RustError("document not loaded".into()))?;
        Ok(f(live))
    }

    fn doc_sockets(&self, name: &str) -> Vec<WebSocket> {
        self.state.get_websockets_with_tag(&format!("d:{name}"))
    }

    pub(crate) fn open_doc_socket(
        &self,
        req: &Request,
        who: &Identity,
        name: &str,
    ) -> HttpResult<Response> {
        validate_doc_name(name)?;
        let pair = WebSocketPair::new()?;
        let conn = format!("{}-{}", now_ms(), js_sys::Math::random());
        let rw = if tessera_core::rooms::can(who.role, Permission::EditDocument) {
            "rw"
        } else {
            "ro"
        };
        let doc_tag = format!("d:{name}");
        let conn_tag = format!("c:{conn}");
        let session = crate::sessions::session_tag(req)?;
        let tags: Vec<&str> = ["doc", &doc_tag, rw, &conn_tag]
            .into_iter()
            .chain(session.as_deref())
            .collect();
        self.state.accept_websocket_with_tags(&pair.server, &tags);
        pair.server.serialize_attachment(DocAttachment {
            user_id: who.user_id.clone(),
            awareness: vec![],
        })?;
        let step1 = self.with_doc(name, |d| d.sync_step1())?;
        let _ = send_js(&pair.server, &bytes_js(&step1));
        for state in self.awareness_states(name, None) {
            let _ = send_js(&pair.server, &bytes_js(&state));
        }
        let resp = Response::from_websocket(pair.client)?;
        if let Some(protocol) = req.headers().get("x-tessera-protocol")? {
            resp.headers().set("sec-websocket-protocol", &protocol)?;
        }
        Ok(resp)
    }

    /// The latest awareness message of every socket of `name` but `except`.
    fn awareness_states(&self, name: &str, except: Option<&str>) -> Vec<Vec<u8>> {
        let awareness = self.awareness.borrow();
        self.doc_sockets(name)
            .iter()
            .filter_map(|ws| {
                let conn = socket_tags(&self.state, ws).value("c:")?.to_string();
                (Some(conn.as_str()) != except)
                    .then(|| awareness.get(&conn).cloned())
                    .flatten()
            })
            .collect()
    }

    pub(crate) async fn doc_message(
        &self,
        ws: WebSocket,
        tags: Tags,
        bytes: Vec<u8>,
    ) -> worker::Result<()> {
        let (Some(name), Some(conn)) = (tags.value("d:"), tags.value("c:")) else {
            ws.close(Some(1011), Some("socket state lost"))?;
            return Ok(());
        };
        let now = now_ms();
        let allowed = {
            let mut buckets = self.doc_buckets.borrow_mut();
            if !buckets.contains_key(conn) {
                buckets.insert(conn.to_string(), TokenBucket::full(self.doc_rate, now));
            }
            buckets
                .get_mut(conn)
                .map_or(Ok(()), |b| b.try_take(self.doc_rate, now))
        };
        if allowed.is_err() {
            // y-websocket has no error message: the client reconnects and
            // re-syncs, losing nothing it holds.
            ws.close(Some(1008), Some("too many document messages per second"))?;
            return Ok(());
        }
        let can_write = tags.has("rw");
        let limits = self.doc_limits;
        let result = self.with_doc(name, |doc| handle_frame(doc, &bytes, can_write, &limits))?;
        let effects = match result {
            Ok(effects) => effects,
            Err(e) => {
                ws.close(Some(e.close_code()), Some(e.to_string()))?;
                return Ok(());
            }
        };
        let mut queued = false;
        for effect in effects {
            match effect {
                DocEffect::Reply(reply) => {
                    let _ = send_js(&ws, &bytes_js(&reply));
                }
                DocEffect::Persist(update) => {
                    self.queue_update(name, Some((conn, &ws)), &update);
                    queued = true;
                }
                DocEffect::Relay(message) => {
                    self.awareness
                        .borrow_mut()
                        .insert(conn.to_string(), message.clone());
                    self.broadcast_doc(name, &message, Some(&ws));
                }
                DocEffect::Awareness(clients) => {
                    let mut att = ws
                        .deserialize_attachment::<DocAttachment>()?
                        .unwrap_or_default();
                    for (id, clock, gone) in clients {
                        att.awareness.retain(|(c, _)| *c != id);
                        if !gone {
                            att.awareness.push((id, clock));
                        }
                    }
                    ws.serialize_attachment(&att)?;
                }
                DocEffect::AnswerAwarenessQuery => {
                    for state in self.awareness_states(name, Some(conn)) {
                        let _ = send_js(&ws, &bytes_js(&state));
                    }
                }
            }
        }
        if queued && self.pending.borrow().is_full() {
            self.flush_docs().await;
        } else if queued && !self.flush_scheduled.replace(true) {
            // Let the updates that arrive together queue up, then write them at once.
            Delay::from(Duration::from_millis(0)).await;
            self.flush_docs().await;
        }
        Ok(())
    }

    /// Queues an update for the next flush; `sender` (its `c:` tag and socket)
    /// is skipped by the broadcast.
    fn queue_update(&self, doc: &str, sender: Option<(&str, &WebSocket)>, update: &[u8]) {
        self.pending
            .borrow_mut()
            .push(doc, sender.map(|(conn, _)| conn), update);
        if let Some((conn, ws)) = sender {
            let mut writers = self.writers.borrow_mut();
            if !writers.contains_key(conn) {
                writers.insert(conn.to_string(), ws.clone());
            }
        }
    }

    fn broadcast_doc(&self, name: &str, message: &[u8], except: Option<&WebSocket>) {
        send_except(&self.doc_sockets(name), message, except);
    }

    /// Writes every queued update in one turn, compacts where the tail grew
    /// long, then broadcasts. Each document's burst is merged per run of one
    /// sender's updates (`merge_burst`): one row and one message per group
    /// instead of per update, which is what makes a fast typist cheap for every
    /// reader. On a storage failure nothing is broadcast, the affected documents
    /// are dropped from memory (reloaded from storage next time) and their
    /// writers are closed so that they re-sync.
    pub(crate) async fn flush_docs(&self) {
        self.flush_scheduled.set(false);
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        if batch.is_empty() {
            return;
        }
        let mut senders = std::mem::take(&mut *self.writers.borrow_mut());
        let now = now_ms();
        let store = self.doc_store();
        for (name, burst) in batch.bursts() {
            let groups = merge_burst(&burst);
            let rows: Vec<&[u8]> = groups.iter().map(|(_, u)| u.as_slice()).collect();
            let written = store.append(name, &rows, now).and_then(|()| {
                self.with_doc(name, |doc| {
                    doc.tail_updates += rows.len() as u64;
                    doc.tail_bytes += rows.iter().map(|u| u.len() as u64).sum::<u64>();
                    if should_compact(doc.tail_updates, doc.tail_bytes, &self.doc_limits) {
                        store.compact(name, doc, &self.doc_limits)?;
                    }
                    Ok(())
                })?
            });
            if let Err(e) = written {
                worker::console_error!("writing document {name} failed: {e}");
                self.docs.borrow_mut().remove(name);
                for (conn, _) in &burst {
                    if let Some(ws) = conn.and_then(|c| senders.remove(c)) {
                        let _ = ws.close(
                            Some(1011),
                            Some("the update could not be stored; reconnect to re-sync"),
                        );
                    }
                }
                continue;
            }
            // The document's sockets are looked up once per flush, not per update.
            let targets = self.doc_sockets(name);
            for (conn, update) in &groups {
                let sender = conn.and_then(|c| senders.get(c));
                send_except(&targets, &update_message(update), sender);
            }
            self.doc_changed(name, now);
            self.search_doc_changed(name, now);
        }
        self.ensure_backup_alarm().await;
    }

    /// Tells the room's chat sockets that a document changed, at most every
    /// `DOC_EVENT_EVERY_MS` per document.
    fn doc_changed(&self, name: &str, now: u64) {
        let mut last = self.last_doc_event.borrow_mut();
        let due = last.get(name).is_none_or(|t| now >= t + DOC_EVENT_EVERY_MS);
        if due {
            last.insert(name.to_string(), now);
            self.broadcast(&ServerFrame::Event {
                event: "doc_changed".into(),
                seq: None,
                data: serde_json::json!({ "doc": name, "at": now }),
            });
        }
    }

    /// Sets the daily backup alarm unless this object already knows one is set
    /// (asked of storage once per object lifetime, not per write).
    async fn ensure_backup_alarm(&self) {
        if self.backup_alarm_set.get() {
            return;
        }
        let storage = self.state.storage();
        self.backup_alarm_set.set(true);
        if let Ok(None) = storage.get_alarm().await {
            // An integer alarm time is an offset from now, not a date.
            let every = std::time::Duration::from_millis(BACKUP_EVERY_MS);
            if let Err(e) = storage.set_alarm(every).await {
                worker::console_error!("setting the backup alarm failed: {e}");
            }
        }
    }

    /// The daily backup: every document changed since its last backup is
    /// written to R2 as one Yjs update.
    pub(crate) async fn backup_docs(&self) -> worker::Result<()> {
        let store = self.doc_store();
        let room = self
            .room_id()
            .unwrap_or_else(|_| self.state.id().to_string());
        let bucket = self.env.bucket("FILES")?;
        let now = now_ms();
        let day = js_sys::Date::new(&JsValue::from_f64(now as f64))
            .to_iso_string()
            .as_string()
            .unwrap_or_default()
            .chars()
            .take(10)
            .collect::<String>();
        for info in store.list()? {
            if info.updated_at <= info.backed_up_at {
                continue;
            }
            let state = self.with_doc(&info.name, |d| d.snapshot())?;
            bucket
                .put(
                    format!("backups/{room}/docs/{}/{day}.yjs", info.name),
                    state,
                )
                .execute()
                .await?;
            store.mark_backed_up(&info.name, now)?;
        }
        // The next change sets the next day's alarm.
        self.backup_alarm_set.set(false);
        Ok(())
    }

    /// A document socket closed: its awareness clients are announced gone, and
    /// the document leaves memory when nobody has it open.
    pub(crate) async fn doc_left(&self, ws: &WebSocket, tags: &Tags) -> worker::Result<()> {
        let (Some(name), Some(conn)) = (tags.value("d:"), tags.value("c:")) else {
            return Ok(());
        };
        self.awareness.borrow_mut().remove(conn);
        self.doc_buckets.borrow_mut().remove(conn);
        if let Some(att) = ws.deserialize_attachment::<DocAttachment>()? {
            if !att.awareness.is_empty() {
                self.broadcast_doc(name, &awareness_removal(&att.awareness), Some(ws));
            }
        }
        let others = self
            .doc_sockets(name)
            .iter()
            .any(|other| !same_socket(other, ws));
        if !others {
            self.flush_docs().await;
            self.docs.borrow_mut().remove(name);
        }
        Ok(())
    }

    /// `/docs…` requests from the Worker, which has checked membership.
    pub(crate) async fn serve_docs(
        &self,
        req: Request,
        who: Identity,
        path: &[&str],
    ) -> HttpResult<Response> {
        let store = self.doc_store();
        let query: HashMap<String, String> = req.url()?.query_pairs().into_owned().collect();
        let result = self
            .serve_doc_request(req, &who, path, &store, &query)
            .await;
        // A document opened only for a REST call leaves memory with it.
        if let Some(name) = path.first().filter(|_| path.get(1) != Some(&"ws")) {
            if self.doc_sockets(name).is_empty() && self.pending.borrow().is_empty() {
                self.docs.borrow_mut().remove(*name);
            }
        }
        result
    }

    async fn serve_doc_request(
        &self,
        mut req: Request,
        who: &Identity,
        path: &[&str],
        store: &DocStore,
        query: &HashMap<String, String>,
    ) -> HttpResult<Response> {
        match (req.method(), path) {
            (Method::Get, []) => json(200, &serde_json::json!({ "docs": store.list()? })),
            (Method::Get, [name, "ws"]) => self.open_doc_socket(&req, who, name),
            (Method::Get, [name]) => {
                validate_doc_name(name)?;
                store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                self.with_doc(name, |d| content(d, query))?
            }
            (Method::Delete, [name]) => {
                require(who.role, Permission::ManageDocuments)?;
                validate_doc_name(name)?;
                for ws in self.doc_sockets(name) {
                    let _ = ws.close(Some(CLOSE_DOC_DELETED), Some("document deleted"));
                }
                self.docs.borrow_mut().remove(*name);
                if !store.delete(name)? {
                    return Err(ApiError::NotFound("document").into());
                }
                self.search_remove(tessera_core::search::Kind::Document, name)?;
                no_content()
            }
            (Method::Post, [name, "updates"]) => {
                require(who.role, Permission::EditDocument)?;
                validate_doc_name(name)?;
                let body = req.bytes().await?;
                let limits = self.doc_limits;
                let frame = update_message(&body);
                let effects = self
                    .with_doc(name, |d| handle_frame(d, &frame, true, &limits))?
                    .map_err(ApiError::from)?;
                for effect in effects {
                    if let DocEffect::Persist(update) = effect {
                        self.queue_update(name, None, &update);
                    }
                }
                self.flush_docs().await;
                let info = store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                json(200, &info)
            }
            (Method::Post, [name, "versions"]) => {
                require(who.role, Permission::EditDocument)?;
                validate_doc_name(name)?;
                let body: NewVersion = tessera_core::api::parse_json(&req.bytes().await?, 4096)?;
                let label = body.label.trim();
                if label.is_empty() || label.chars().count() > 100 {
                    return Err(ApiError::invalid("label must be 1 to 100 characters").into());
                }
                store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                let state = self.with_doc(name, |d| d.snapshot())?;
                let v: VersionInfo = store.save_version(
                    name,
                    label,
                    &who.user_id,
                    &state,
                    now_ms(),
                    &self.doc_limits,
                )?;
                json(201, &v)
            }
            (Method::Get, [name, "versions"]) => {
                validate_doc_name(name)?;
                json(
                    200,
                    &serde_json::json!({ "versions": store.versions(name)? }),
                )
            }
            (Method::Get, [name, "versions", v]) => {
                let state = self.version_state(store, name, v)?;
                content(&LiveDoc::load(&state, []).map_err(ApiError::from)?, query)
            }
            (Method::Post, [name, "versions", v, "restore"]) => {
                require(who.role, Permission::EditDocument)?;
                let state = self.version_state(store, name, v)?;
                let body: Restore = tessera_core::api::parse_json(&req.bytes().await?, 4096)?;
                if body.texts.is_empty() {
                    return Err(
                        ApiError::invalid("name the Y.Text roots to restore in `texts`").into(),
                    );
                }
                let version = LiveDoc::load(&state, []).map_err(ApiError::from)?;
                let change = self.with_doc(name, |d| d.restore_texts(&version, &body.texts))?;
                if let Some(update) = change {
                    self.queue_update(name, None, &update);
                    self.flush_docs().await;
                }
                json(
                    200,
                    &store.info(name)?.ok_or(ApiError::NotFound("document"))?,
                )
            }
            _ => Err(ApiError::NoRoute.into()),
        }
    }

    fn version_state(&self, store: &DocStore, name: &str, v: &str) -> HttpResult<Vec<u8>> {
        validate_doc_name(name)?;
        let v: u64 = v.parse().map_err(|_| ApiError::NotFound("version"))?;
        Ok(store
            .version(name, v)?
            .ok_or(ApiError::NotFound("version"))?)
    }
}

/// `?format=update` (default: the binary Yjs v1 update) or `?format=text&name=`.
fn content(live: &LiveDoc, query: &HashMap<String, String>) -> HttpResult<Response> {
    match query.get("format").map(String::as_str) {
        None | Some("update") => {
            let resp = Response::from_bytes(live.snapshot())?;
            resp.headers()
                .set("content-type", "application/octet-stream")?;
            Ok(resp)
        }
        Some("text") => {
            let name = query
                .get("name")
                .ok_or_else(|| ApiError::invalid("format=text needs name=<Y.Text root>"))?;
            let resp = Response::ok(live.text(name))?;
            resp.headers()
                .set("content-type", "text/plain; charset=utf-8")?;
            Ok(resp)
        }
        Some(other) => {
            Err(ApiError::invalid(format!("unknown format `{other}`; use update or text")).into())
        }
    }
}
