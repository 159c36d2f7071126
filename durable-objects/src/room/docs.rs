//! The document half of RoomDO: y-websocket sockets (tagged `doc`, `d:<name>`,
//! `rw`/`ro`, `c:<conn>` and `u:<user>`, so the hot path reads no attachment),
//! updates persisted before they are broadcast, awareness relayed, REST reads
//! and writes, versions, tombstones of deleted documents, and the backups to
//! R2 from the object's alarm.
//!
//! Rights follow the room: `rw`/`ro` is the right a socket was opened with;
//! every frame also looks up the latest role the room heard for the socket's
//! person (`member_roles`, stored, read once per object lifetime), so a
//! demotion makes an open socket read-only from its next frame, a promotion
//! lets it write, and a removal closes it (4003). Nothing of this lives only
//! in memory: a socket woken from hibernation, or an object rebuilt after
//! eviction, reads the same table.
//!
//! Write path: an update is integrated into the in-memory document at once and
//! queued; the first queued update waits one timer tick, during which the
//! updates that arrive together are queued too (up to `FLUSH_AT_UPDATES`),
//! then all of them are written in one synchronous turn (one transaction) and
//! only then broadcast. This is the write coalescing DESIGN.md asks for: one
//! commit per burst instead of per message. A burst is stored and sent merged
//! per sender, in groups (`merge_burst`); an update too big for a row is
//! stored inside a new snapshot (`plan_write`). An update that was never
//! written was never broadcast either, and its sender still holds it and
//! re-sends it on reconnect (sync step 1/2); a REST write that was not stored
//! answers 503.

use super::docstore::{DocStore, VersionInfo};
use super::{send_js, socket_response, socket_tags, RoomDO, Tags};
use crate::clock::now_ms;
use crate::http::{json, no_content, HttpResult};
use crate::r2::delete_prefix;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tessera_core::docs::{
    awareness_removal, handle_frame, merge_burst, track_awareness, update_message,
    validate_doc_name, Access, DocEffect, DocError, LiveDoc, Peer, Rights, Roots,
    CLOSE_DOC_DELETED, TEXT_ROOT,
};
use tessera_core::protocol::{Identity, ServerFrame};
use tessera_core::room::timers::Timer;
use tessera_core::room::CLOSE_REMOVED;
use tessera_core::rooms::{require, MemberNotice, Permission, Role};
use tessera_core::ApiError;
use wasm_bindgen::JsValue;
use worker::{Bucket, Delay, Method, Request, Response, WebSocket, WebSocketPair};

/// A `doc_changed` event goes to the room's chat sockets at most this often per document.
const DOC_EVENT_EVERY_MS: u64 = 2_000;
/// How often changed documents are backed up, unless `DOC_BACKUP_EVERY_MS` says otherwise.
pub const DEFAULT_BACKUP_EVERY_MS: u64 = 24 * 3600 * 1000;
/// The newest tombstones `GET /docs` lists.
const TOMBSTONES_LISTED: u32 = 100;

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

/// Where a room's document backups live in R2: `backups/<room>/docs/<doc>/<date>.yjs`.
fn backups_of_room(room: &str) -> String {
    format!("backups/{room}/")
}

fn backups_of_doc(room: &str, doc: &str) -> String {
    format!("backups/{room}/docs/{doc}/")
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
struct NewDoc {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVersion {
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Restore {
    /// Only these roots (the form from before roots were inferred).
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
            let live = match self.doc_store().load(name)? {
                Some(mut stored) => {
                    stored.exists = true;
                    stored
                }
                None => LiveDoc::default(),
            };
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

    /// The latest role the room heard for `user` since this object's storage
    /// began (`Some(None)`: removed), or `None` when it heard none.
    fn latest_role(&self, user: &str) -> worker::Result<Option<Option<Role>>> {
        let mut cache = self.member_roles.borrow_mut();
        if cache.is_none() {
            *cache = Some(self.doc_store().member_roles()?.into_iter().collect());
        }
        Ok(cache.as_ref().and_then(|roles| roles.get(user).copied()))
    }

    /// What a document socket may do now (see the module docs).
    fn doc_access(&self, tags: &Tags) -> worker::Result<Access> {
        let opened = if tags.has("rw") {
            Access::Write
        } else {
            Access::Read
        };
        let latest = match tags.value("u:") {
            Some(user) => self.latest_role(user)?,
            None => None,
        };
        Ok(Access::now(opened, latest).unless_archived(self.archived()))
    }

    /// Whether `who` may change documents now: by role, and not in an
    /// archived room.
    fn may_change_docs(&self, who: &Identity, permission: Permission) -> HttpResult<()> {
        require(who.role, permission)?;
        if self.archived() {
            return Err(ApiError::room_archived().into());
        }
        Ok(())
    }

    /// A membership change reaches document sockets: stored first (sockets
    /// woken later read it), then a removed person's sockets are closed.
    pub(crate) fn doc_member_changed(&self, notice: &MemberNotice) {
        if let Err(e) = self.latest_role(&notice.user_id) {
            worker::console_error!("reading member roles failed: {e}");
        }
        if let Err(e) = self
            .doc_store()
            .set_member_role(&notice.user_id, notice.role)
        {
            worker::console_error!("storing the role of {} failed: {e}", notice.user_id);
        }
        if let Some(roles) = self.member_roles.borrow_mut().as_mut() {
            roles.insert(notice.user_id.clone(), notice.role);
        }
        if notice.role.is_none() {
            for ws in self
                .state
                .get_websockets_with_tag(&format!("u:{}", notice.user_id))
            {
                let _ = ws.close(Some(CLOSE_REMOVED), Some("removed from the room"));
            }
        }
    }

    /// What a frame's sender may do with `doc`. A document that does not
    /// exist is created only if its name was not deleted and the room has
    /// room for it (asked of storage only then).
    fn frame_rights(
        &self,
        name: &str,
        doc: &LiveDoc,
        write: bool,
    ) -> worker::Result<Result<Rights, DocError>> {
        if doc.exists {
            return Ok(Ok(Rights {
                write,
                create: true,
            }));
        }
        let store = self.doc_store();
        if store.tombstone(name)?.is_some() {
            return Ok(Err(DocError::Deleted));
        }
        let create = !write || store.count()? < self.doc_limits.docs_per_room;
        Ok(Ok(Rights { write, create }))
    }

    pub(crate) fn open_doc_socket(
        &self,
        req: &Request,
        who: &Identity,
        name: &str,
    ) -> HttpResult<Response> {
        validate_doc_name(name)?;
        let pair = WebSocketPair::new()?;
        let access = Access::now(Access::of(who.role), self.latest_role(&who.user_id)?)
            .unless_archived(self.archived());
        let refusal = if self.doc_store().tombstone(name)?.is_some() {
            Some((CLOSE_DOC_DELETED, "document deleted"))
        } else if access == Access::Removed {
            Some((CLOSE_REMOVED, "removed from the room"))
        } else {
            None
        };
        if let Some((code, reason)) = refusal {
            // Accepted outside hibernation and closed at once: the client
            // hears why, and nothing it sends (its cached copy) is read.
            pair.server.accept()?;
            pair.server.close(Some(code), Some(reason))?;
            return socket_response(req, pair.client);
        }
        let conn = format!("{}-{}", now_ms(), js_sys::Math::random());
        let rw = if access == Access::Write { "rw" } else { "ro" };
        let doc_tag = format!("d:{name}");
        let conn_tag = format!("c:{conn}");
        let user_tag = format!("u:{}", who.user_id);
        let session = crate::sessions::session_tag(req)?;
        let tags: Vec<&str> = ["doc", &doc_tag, rw, &conn_tag, &user_tag]
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
        socket_response(req, pair.client)
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
        let access = self.doc_access(&tags)?;
        if access == Access::Removed {
            ws.close(Some(CLOSE_REMOVED), Some("removed from the room"))?;
            return Ok(());
        }
        let now = now_ms();
        let limits = self.doc_limits;
        let mut peer = self
            .doc_peers
            .borrow()
            .get(conn)
            .copied()
            .unwrap_or_else(|| Peer::new(&limits, now));
        let result = self.with_doc(name, |doc| {
            let rights = self.frame_rights(name, doc, access == Access::Write)?;
            Ok::<_, worker::Error>(
                rights.and_then(|r| handle_frame(doc, &bytes, &mut peer, r, now, &limits)),
            )
        })??;
        self.doc_peers.borrow_mut().insert(conn.to_string(), peer);
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
                    // The answer to a SyncStep1 holds the document as it is in
                    // memory: what it holds must be stored before it is sent.
                    if self.pending.borrow().holds(name) && !self.flushed(name).await {
                        ws.close(
                            Some(1011),
                            Some("the document could not be stored; reconnect to re-sync"),
                        )?;
                        return Ok(());
                    }
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
                    if let Err(e) = track_awareness(&mut att.awareness, &clients, &limits) {
                        ws.close(Some(e.close_code()), Some(e.to_string()))?;
                        return Ok(());
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

    /// Writes every queued update in one turn, then broadcasts. Each document's
    /// burst is merged per run of one sender's updates (`merge_burst`): one row
    /// and one message per group instead of per update, which is what makes a
    /// fast typist cheap for every reader. On a storage failure nothing is
    /// broadcast, the affected documents are dropped from memory (reloaded
    /// from storage next time) and their writers are closed so that they
    /// re-sync. Returns the documents whose write failed.
    pub(crate) async fn flush_docs(&self) -> Vec<String> {
        self.flush_scheduled.set(false);
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        if batch.is_empty() {
            return Vec::new();
        }
        let mut senders = std::mem::take(&mut *self.writers.borrow_mut());
        let now = now_ms();
        let store = self.doc_store();
        let mut failed = Vec::new();
        let mut stats = self.doc_stats.get();
        stats.flushes += 1;
        for (name, burst) in batch.bursts() {
            let groups = merge_burst(&burst);
            let rows: Vec<&[u8]> = groups.iter().map(|(_, u)| u.as_slice()).collect();
            let written = self
                .with_doc(name, |doc| {
                    store.write_burst(name, doc, &rows, now, &self.doc_limits)
                })
                .and_then(|r| r);
            let stored = match written {
                Ok(stored) => stored,
                Err(e) => {
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
                    failed.push(name.to_string());
                    continue;
                }
            };
            stats.burst(burst.len(), rows.len(), stored);
            // The document's sockets are looked up once per flush, not per update.
            let targets = self.doc_sockets(name);
            for (conn, update) in &groups {
                let sender = conn.and_then(|c| senders.get(c));
                send_except(&targets, &update_message(update), sender);
            }
            self.doc_changed(name, now);
            self.search_doc_changed(name, now);
        }
        self.doc_stats.set(stats);
        self.ensure_backup().await;
        failed
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

    /// Asks for a backup within the backup interval, unless one is already
    /// due (an in-memory check once the timers are read: nothing per write).
    async fn ensure_backup(&self) {
        self.schedule(Timer::Backup, Duration::from_millis(self.backup_every_ms))
            .await;
    }

    fn backup_bucket(&self) -> worker::Result<(Bucket, String)> {
        let room = self
            .room_id()
            .unwrap_or_else(|_| self.state.id().to_string());
        Ok((self.env.bucket("FILES")?, room))
    }

    /// The backup alarm: the backups of deleted documents are removed, then
    /// every document changed since its last backup is written to R2 as one
    /// Yjs update, one document at a time (an open one is read from memory,
    /// any other is loaded and dropped before the next).
    pub(crate) async fn backup_docs(&self) -> worker::Result<()> {
        let store = self.doc_store();
        let (bucket, room) = self.backup_bucket()?;
        for name in store.unpurged_tombstones()? {
            delete_prefix(&bucket, &backups_of_doc(&room, &name)).await?;
            store.mark_backups_purged(&name)?;
        }
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
            let open = self.docs.borrow().get(&info.name).map(LiveDoc::snapshot);
            let state = match open {
                Some(state) => state,
                None => match store.load(&info.name)? {
                    Some(doc) => doc.snapshot(),
                    None => continue,
                },
            };
            let key = format!("{}{day}.yjs", backups_of_doc(&room, &info.name));
            bucket.put(&key, state).execute().await?;
            // Deleted while its backup was on the way: the backup goes too.
            if store.info(&info.name)?.is_none() {
                bucket.delete(&key).await?;
                continue;
            }
            store.mark_backed_up(&info.name, now)?;
        }
        // The next change asks for the next backup.
        Ok(())
    }

    /// Removes a deleted document's backups, or leaves that to the alarm.
    async fn purge_backups_of(&self, name: &str) {
        let purged = async {
            let (bucket, room) = self.backup_bucket()?;
            delete_prefix(&bucket, &backups_of_doc(&room, name)).await?;
            self.doc_store().mark_backups_purged(name)
        }
        .await;
        if let Err(e) = purged {
            worker::console_error!("removing the backups of {name} failed, retrying later: {e}");
            self.ensure_backup().await;
        }
    }

    /// Removes every document backup of the room (it is being deleted).
    pub(crate) async fn purge_doc_backups(&self) -> worker::Result<()> {
        let (bucket, room) = self.backup_bucket()?;
        delete_prefix(&bucket, &backups_of_room(&room)).await
    }

    /// A document socket closed: its awareness clients are announced gone, and
    /// the document leaves memory when nobody has it open.
    pub(crate) async fn doc_left(&self, ws: &WebSocket, tags: &Tags) -> worker::Result<()> {
        let (Some(name), Some(conn)) = (tags.value("d:"), tags.value("c:")) else {
            return Ok(());
        };
        self.awareness.borrow_mut().remove(conn);
        self.doc_peers.borrow_mut().remove(conn);
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
            if self.log_doc_stats {
                worker::console_log!("{}", self.doc_stats.get());
            }
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

    /// A name fit for a document route: valid, and not deleted (410).
    fn live_name(&self, store: &DocStore, name: &str) -> HttpResult<()> {
        validate_doc_name(name)?;
        if store.tombstone(name)?.is_some() {
            return Err(ApiError::from(DocError::Deleted).into());
        }
        Ok(())
    }

    /// Writes what is queued, answering 503 if `name`'s write failed.
    /// Flushes; whether `name`'s queued updates (if any) are now stored.
    async fn flushed(&self, name: &str) -> bool {
        !self.flush_docs().await.iter().any(|f| f == name)
    }

    async fn flush_or_fail(&self, name: &str) -> HttpResult<()> {
        if !self.flushed(name).await {
            return Err(ApiError::Unavailable(
                "the change could not be stored; nothing was changed, retry".into(),
            )
            .into());
        }
        Ok(())
    }

    async fn serve_doc_request(
        &self,
        mut req: Request,
        who: &Identity,
        path: &[&str],
        store: &DocStore,
        query: &HashMap<String, String>,
    ) -> HttpResult<Response> {
        let limits = self.doc_limits;
        match (req.method(), path) {
            (Method::Get, []) => json(
                200,
                &serde_json::json!({
                    "docs": store.list()?,
                    "deleted": store.tombstones(TOMBSTONES_LISTED)?,
                }),
            ),
            (Method::Post, []) => {
                self.may_change_docs(who, Permission::EditDocument)?;
                let body: NewDoc = tessera_core::api::parse_body(&req.bytes().await?, 4096)?;
                validate_doc_name(&body.name)?;
                if store.info(&body.name)?.is_some() {
                    return Err(ApiError::from(DocError::Exists).into());
                }
                if store.count()? >= limits.docs_per_room {
                    return Err(
                        ApiError::from(DocError::TooManyDocuments(limits.docs_per_room)).into(),
                    );
                }
                store.create(&body.name, now_ms())?;
                self.docs.borrow_mut().remove(&body.name);
                json(
                    201,
                    &store
                        .info(&body.name)?
                        .ok_or(ApiError::NotFound("document"))?,
                )
            }
            (Method::Get, [name, "ws"]) => self.open_doc_socket(&req, who, name),
            (Method::Get, [name]) => {
                self.live_name(store, name)?;
                store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                self.with_doc(name, |d| content(d, query))?
            }
            (Method::Delete, [name]) => {
                self.may_change_docs(who, Permission::ManageDocuments)?;
                self.live_name(store, name)?;
                // What was queued is written first, so that no later flush
                // writes it again after the deletion.
                self.flush_docs().await;
                store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                for ws in self.doc_sockets(name) {
                    let _ = ws.close(Some(CLOSE_DOC_DELETED), Some("document deleted"));
                }
                self.pending.borrow_mut().discard(name);
                self.docs.borrow_mut().remove(*name);
                if !store.delete(name, &who.user_id, now_ms())? {
                    return Err(ApiError::NotFound("document").into());
                }
                self.search_remove(tessera_core::search::Kind::Document, name)?;
                self.purge_backups_of(name).await;
                no_content()
            }
            (Method::Post, [name, "updates"]) => {
                self.may_change_docs(who, Permission::EditDocument)?;
                self.live_name(store, name)?;
                let body = req.bytes().await?;
                let frame = update_message(&body);
                let now = now_ms();
                let effects = self
                    .with_doc(name, |d| {
                        let rights = self.frame_rights(name, d, true)?;
                        let mut peer = Peer::new(&limits, now);
                        Ok::<_, worker::Error>(
                            rights
                                .and_then(|r| handle_frame(d, &frame, &mut peer, r, now, &limits)),
                        )
                    })??
                    .map_err(ApiError::from)?;
                for effect in effects {
                    if let DocEffect::Persist(update) = effect {
                        self.queue_update(name, None, &update);
                    }
                }
                self.flush_or_fail(name).await?;
                let info = store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                json(200, &info)
            }
            (Method::Post, [name, "versions"]) => {
                self.may_change_docs(who, Permission::EditDocument)?;
                self.live_name(store, name)?;
                let body: NewVersion = tessera_core::api::parse_body(&req.bytes().await?, 4096)?;
                let label = body.label.trim();
                if label.is_empty() || label.chars().count() > 100 {
                    return Err(ApiError::invalid("label must be 1 to 100 characters").into());
                }
                store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                let state = self.with_doc(name, |d| d.snapshot())?;
                let v: VersionInfo = store
                    .save_version(name, label, &who.user_id, &state, now_ms(), &limits)?
                    .ok_or_else(|| {
                        ApiError::from(DocError::TooManyVersions(limits.versions_per_doc))
                    })?;
                json(201, &v)
            }
            (Method::Get, [name, "versions"]) => {
                self.live_name(store, name)?;
                json(
                    200,
                    &serde_json::json!({ "versions": store.versions(name)? }),
                )
            }
            (Method::Get, [name, "versions", v]) => {
                let state = self.version_state(store, name, v)?;
                content(&LiveDoc::load(&state, []).map_err(ApiError::from)?, query)
            }
            (Method::Delete, [name, "versions", v]) => {
                self.may_change_docs(who, Permission::ManageDocuments)?;
                self.live_name(store, name)?;
                let v: u64 = v.parse().map_err(|_| ApiError::NotFound("version"))?;
                if !store.delete_version(name, v)? {
                    return Err(ApiError::NotFound("version").into());
                }
                no_content()
            }
            (Method::Post, [name, "versions", v, "restore"]) => {
                self.may_change_docs(who, Permission::EditDocument)?;
                let state = self.version_state(store, name, v)?;
                let body = req.bytes().await?;
                let named = if body.is_empty() {
                    None
                } else {
                    let r: Restore = tessera_core::api::parse_body(&body, 4096)?;
                    if r.texts.is_empty() {
                        return Err(ApiError::invalid(
                            "name at least one root in `texts`, or send no body to restore every root",
                        )
                        .into());
                    }
                    Some(r.texts)
                };
                let roots = named.as_deref().map_or(Roots::All, Roots::Named);
                let version = LiveDoc::load(&state, []).map_err(ApiError::from)?;
                let change = self
                    .with_doc(name, |d| {
                        let change = d.restore(&version, roots)?;
                        if let Some(update) = &change {
                            if d.stored_bytes + update.len() > limits.doc_bytes {
                                return Err(DocError::DocTooLarge(limits.doc_bytes));
                            }
                            d.stored_bytes += update.len();
                        }
                        Ok(change)
                    })?
                    .inspect_err(|_| {
                        // The change may be half in memory: storage has the truth.
                        self.docs.borrow_mut().remove(*name);
                    })
                    .map_err(ApiError::from)?;
                if let Some(update) = change {
                    self.queue_update(name, None, &update);
                    self.flush_or_fail(name).await?;
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
        self.live_name(store, name)?;
        let v: u64 = v.parse().map_err(|_| ApiError::NotFound("version"))?;
        Ok(store
            .version(name, v)?
            .ok_or(ApiError::NotFound("version"))?)
    }
}

/// `?format=update` (default: the binary Yjs v1 update) or `?format=text`
/// (the Y.Text root `name=`, by default [`TEXT_ROOT`]).
fn content(live: &LiveDoc, query: &HashMap<String, String>) -> HttpResult<Response> {
    match query.get("format").map(String::as_str) {
        None | Some("update") => {
            let resp = Response::from_bytes(live.snapshot())?;
            resp.headers()
                .set("content-type", "application/octet-stream")?;
            Ok(resp)
        }
        Some("text") => {
            let name = query.get("name").map_or(TEXT_ROOT, String::as_str);
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
