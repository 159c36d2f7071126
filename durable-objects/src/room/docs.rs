//! The document half of RoomDO, the executor of `tessera_core::room::docs`:
//! y-websocket sockets (tagged `doc`, `d:<name>`, `rw`/`ro`, `c:<conn>` and
//! `u:<user>`, so the hot path reads no attachment) are decoded into the
//! engine's calls and its outputs executed — sends, broadcasts, closes, the
//! awareness kept in a socket's attachment, the flush timer (a zero-delay
//! wait in the object, not an alarm: it is due within the turn). The engine
//! decides rights, budgets, awareness and the write path (stored before
//! broadcast, one commit per burst; see its module docs). Here too: the REST
//! reads and writes, versions, tombstones of deleted documents, and the
//! backups to R2 from the object's alarm.
//!
//! An update that was never written was never broadcast either, and its
//! sender still holds it and re-sends it on reconnect (sync step 1/2); a
//! REST write that was not stored answers 503.

use super::docstore::{DocStore, VersionInfo};
use super::{send_js, socket_response, RoomDO, Tags};
use crate::clock::now_ms;
use crate::http::{json, no_content, HttpResult};
use crate::r2::delete_prefix;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tessera_core::docs::{
    validate_doc_name, Access, DocError, LiveDoc, Roots, CLOSE_DOC_DELETED, TEXT_ROOT,
};
use tessera_core::protocol::{Identity, ServerFrame};
use tessera_core::room::docs::{write_failed, Clients, DocOutput, DocSocket, DocStorage, Opened};
use tessera_core::room::timers::Timer;
use tessera_core::rooms::{require, MemberNotice, Permission};
use tessera_core::ApiError;
use wasm_bindgen::JsValue;
use worker::{Bucket, Delay, Method, Request, Response, WebSocket, WebSocketPair};

/// How often changed documents are backed up, unless `DOC_BACKUP_EVERY_MS` says otherwise.
pub const DEFAULT_BACKUP_EVERY_MS: u64 = 24 * 3600 * 1000;
/// The newest tombstones `GET /docs` lists.
const TOMBSTONES_LISTED: u32 = 100;

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
    awareness: Clients,
}

/// The awareness clients a socket's attachment says it speaks for.
fn attachment(ws: &WebSocket) -> Clients {
    match ws.deserialize_attachment::<DocAttachment>() {
        Ok(att) => att.unwrap_or_default().awareness,
        Err(e) => {
            worker::console_error!("reading a document socket's attachment failed: {e}");
            Vec::new()
        }
    }
}

/// A document socket as its tags describe it.
fn doc_socket(tags: &Tags) -> Option<DocSocket<'_>> {
    Some(DocSocket {
        conn: tags.value("c:")?,
        doc: tags.value("d:")?,
        user: tags.value("u:").unwrap_or_default(),
        opened: if tags.has("rw") {
            Access::Write
        } else {
            Access::Read
        },
    })
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
        self.docs.borrow_mut().with_doc(&self.doc_store(), name, f)
    }

    fn doc_sockets(&self, name: &str) -> Vec<WebSocket> {
        self.state.get_websockets_with_tag(&format!("d:{name}"))
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

    /// A membership change reaches document sockets (`Docs::member_changed`).
    pub(crate) fn doc_member_changed(&self, notice: &MemberNotice) {
        let changed =
            self.docs
                .borrow_mut()
                .member_changed(&self.doc_store(), &notice.user_id, notice.role);
        match changed {
            Ok(out) => {
                self.execute_doc(out, None);
            }
            Err(e) => worker::console_error!("storing the role of {} failed: {e}", notice.user_id),
        }
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
        let sock = DocSocket {
            conn: &conn,
            doc: name,
            user: &who.user_id,
            opened: Access::of(who.role),
        };
        let opened = self.docs.borrow_mut().open(
            &self.doc_store(),
            sock,
            who.role,
            self.archived(),
            now_ms(),
        )?;
        let (write, greeting) = match opened {
            Opened::Refused { code, reason } => {
                pair.server.accept()?;
                pair.server.close(Some(code), Some(reason))?;
                return socket_response(req, pair.client);
            }
            Opened::Accepted { write, greeting } => (write, greeting),
        };
        let rw = if write { "rw" } else { "ro" };
        let doc_tag = format!("d:{name}");
        let conn_tag = format!("c:{conn}");
        let user_tag = format!("u:{}", who.user_id);
        let session = crate::sessions::session_tag(req)?;
        let tags: Vec<&str> = ["doc", &doc_tag, rw, &conn_tag, &user_tag]
            .into_iter()
            .chain(session.as_deref())
            .collect();
        self.state.accept_websocket_with_tags(&pair.server, &tags);
        for message in greeting {
            let _ = send_js(&pair.server, &bytes_js(&message));
        }
        self.doc_conns
            .borrow_mut()
            .insert(conn, pair.server.clone());
        socket_response(req, pair.client)
    }

    pub(crate) async fn doc_message(
        &self,
        ws: WebSocket,
        tags: Tags,
        bytes: Vec<u8>,
    ) -> worker::Result<()> {
        let Some(sock) = doc_socket(&tags) else {
            ws.close(Some(1011), Some("socket state lost"))?;
            return Ok(());
        };
        if !self.doc_conns.borrow().contains_key(sock.conn) {
            self.doc_conns
                .borrow_mut()
                .insert(sock.conn.to_string(), ws.clone());
        }
        let out = self.docs.borrow_mut().frame(
            &self.doc_store(),
            sock,
            &bytes,
            self.archived(),
            now_ms(),
            || attachment(&ws),
        )?;
        self.run_doc(out, Some((sock.conn, &ws))).await;
        self.flush_when_due().await;
        Ok(())
    }

    /// Waits for the flush timer the engine asks for, once however many
    /// frames ask meanwhile, then writes what is due.
    async fn flush_when_due(&self) {
        let Some(at) = self.docs.borrow().poll_timeout() else {
            return;
        };
        if self.flush_scheduled.replace(true) {
            return;
        }
        Delay::from(Duration::from_millis(at.saturating_sub(now_ms()))).await;
        self.flush_scheduled.set(false);
        let out = self.docs.borrow_mut().expired(&self.doc_store(), now_ms());
        self.run_doc(out, None).await;
    }

    /// Writes every queued update now; whether `name`'s (if any) are stored.
    async fn flushed(&self, name: &str) -> bool {
        let out = self.docs.borrow_mut().flush(&self.doc_store(), now_ms());
        let failed = write_failed(&out, name);
        self.run_doc(out, None).await;
        !failed
    }

    /// Executes what the document engine decided, then asks for the backup
    /// of what changed.
    async fn run_doc(&self, out: Vec<DocOutput>, current: Option<(&str, &WebSocket)>) {
        if self.execute_doc(out, current) {
            self.ensure_backup().await;
        }
    }

    /// Executes what the document engine decided, in order; `current` is the
    /// socket whose event it was (its connection and socket). Returns whether
    /// a document was stored.
    fn execute_doc(&self, out: Vec<DocOutput>, current: Option<(&str, &WebSocket)>) -> bool {
        let mut changed = false;
        // A flush broadcasts several groups to one document: its sockets are
        // looked up once.
        let mut targets: Option<(String, Vec<WebSocket>)> = None;
        for o in out {
            match o {
                DocOutput::Send { to, message } => {
                    if let Some(ws) = self.doc_conn(&to, current) {
                        let _ = send_js(&ws, &bytes_js(&message));
                    }
                }
                DocOutput::Broadcast {
                    doc,
                    message,
                    except,
                } => {
                    if targets.as_ref().is_none_or(|(d, _)| *d != doc) {
                        targets = Some((doc.clone(), self.doc_sockets(&doc)));
                    }
                    let except = except.and_then(|c| self.doc_conn(&c, current));
                    if let Some((_, sockets)) = &targets {
                        send_except(sockets, &message, except.as_ref());
                    }
                }
                DocOutput::Close { to, code, reason } => {
                    if let Some(ws) = self.doc_conn(&to, current) {
                        let _ = ws.close(Some(code), Some(reason));
                    }
                }
                DocOutput::CloseUser { user, code, reason } => {
                    for ws in self.state.get_websockets_with_tag(&format!("u:{user}")) {
                        let _ = ws.close(Some(code), Some(reason));
                    }
                }
                DocOutput::SaveAwareness { to, clients } => {
                    if let Some(ws) = self.doc_conn(&to, current) {
                        if let Err(e) =
                            ws.serialize_attachment(DocAttachment { awareness: clients })
                        {
                            worker::console_error!("keeping a socket's awareness failed: {e}");
                        }
                    }
                }
                DocOutput::Stored { doc, announce } => {
                    let now = now_ms();
                    if announce {
                        self.broadcast(&ServerFrame::Event {
                            event: "doc_changed".into(),
                            seq: None,
                            data: serde_json::json!({ "doc": doc, "at": now }),
                        });
                    }
                    self.search_doc_changed(&doc, now);
                    changed = true;
                }
                DocOutput::WriteFailed { doc, error } => {
                    worker::console_error!("writing document {doc} failed: {error}");
                }
            }
        }
        changed
    }

    /// The socket of connection `conn`: the one whose event it is, one that
    /// opened or sent a frame in this object's lifetime, or else found by its tag.
    fn doc_conn(&self, conn: &str, current: Option<(&str, &WebSocket)>) -> Option<WebSocket> {
        if let Some((_, ws)) = current.filter(|(c, _)| *c == conn) {
            return Some(ws.clone());
        }
        if let Some(ws) = self.doc_conns.borrow().get(conn) {
            return Some(ws.clone());
        }
        let tagged = self.state.get_websockets_with_tag(&format!("c:{conn}"));
        tagged.into_iter().next()
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
            let open = self.docs.borrow().snapshot_if_open(&info.name);
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

    /// A document socket closed: the engine announces its awareness clients
    /// gone, and writes and frees the document when nobody has it open.
    pub(crate) async fn doc_left(&self, ws: &WebSocket, tags: &Tags) -> worker::Result<()> {
        let Some(sock) = doc_socket(tags) else {
            return Ok(());
        };
        self.doc_conns.borrow_mut().remove(sock.conn);
        let others = self
            .doc_sockets(sock.doc)
            .iter()
            .any(|other| !same_socket(other, ws));
        let out = self
            .docs
            .borrow_mut()
            .left(&self.doc_store(), sock, others, now_ms(), || attachment(ws));
        self.run_doc(out, Some((sock.conn, ws))).await;
        if !others && self.log_doc_stats {
            worker::console_log!("{}", self.docs.borrow().stats());
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
            if self.doc_sockets(name).is_empty() {
                self.docs.borrow_mut().forget(name);
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
        let limits = *self.docs.borrow().limits();
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
                self.docs.borrow_mut().forget(&body.name);
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
                self.flushed(name).await;
                store.info(name)?.ok_or(ApiError::NotFound("document"))?;
                for ws in self.doc_sockets(name) {
                    let _ = ws.close(Some(CLOSE_DOC_DELETED), Some("document deleted"));
                }
                self.docs.borrow_mut().discard(name);
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
                self.docs
                    .borrow_mut()
                    .post_update(store, name, &body, now_ms())?
                    .map_err(ApiError::from)?;
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
                // What is queued is stored first: a failed restore may then
                // drop the document from memory.
                self.flush_or_fail(name).await?;
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
                        self.docs.borrow_mut().forget(name);
                    })
                    .map_err(ApiError::from)?;
                if let Some(update) = change {
                    self.docs.borrow_mut().queue(name, &update);
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
