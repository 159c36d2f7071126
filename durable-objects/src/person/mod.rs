//! PersonDO: one per person, across rooms. It keeps the person's inbox (90
//! days), their notification preferences and push subscriptions, holds their
//! hibernating `/api/v1/me/ws` sockets (new items and each room's counts,
//! live), sends Web Push when no socket is open, queues an email for an
//! item still unseen when its delay is up, and the daily digest email of
//! what stayed unread (alarms).
//!
//! What it stores, sends and when its alarm rings is decided in
//! `tessera_core::notify::person`; its SQLite is `store`. This module routes
//! requests and frames and runs what the engine returns.
//!
//! Only the Worker and the room objects reach it: the Worker authenticates
//! the person and names the object by their id; rooms hand it items.

mod store;

use crate::config::{allow_private_urls, env_var};
use crate::http::{call_object, json, Failure, HttpResult};
use crate::sql::create_schema;
use serde::Deserialize;
use std::collections::BTreeMap;
use store::SqlPersonStore;
use tessera_core::api::{parse_body, parse_body_with, parse_json};
use tessera_core::notify::inbox::{
    expired_before, parse_me_frame, Item, Kind, MeClientFrame, MeFrame, NewItem, PAGE_MAX,
    READ_IDS_MAX,
};
use tessera_core::notify::person::{self as engine, Output, PersonStore, Timing, RETRY_ALARM_MS};
use tessera_core::notify::prefs::{PrefsPatch, Reach};
use tessera_core::notify::webpush::{self, Subscription, SUBSCRIPTIONS_MAX, TTL_SECS};
use tessera_core::room::EndSessions;
use tessera_core::ApiError;
use worker::{
    Env, Fetch, Headers, Method, Request, Response, State, WebSocket, WebSocketIncomingMessage,
    WebSocketPair,
};

/// Rooms whose counts a person's socket follows (the first this many).
const ROOMS_WATCHED_MAX: u32 = 200;

/// How long an item may stay unseen before it is emailed, unless
/// `NOTIFY_EMAIL_DELAY_SECS` says otherwise.
const DEFAULT_EMAIL_DELAY_SECS: u64 = 600;
/// How often a person who opted in gets the digest of their unread items,
/// unless `NOTIFY_DIGEST_EVERY_SECS` says otherwise.
const DEFAULT_DIGEST_EVERY_SECS: u64 = 24 * 3600;
const ME_TAG: &str = "me";

pub struct PersonDO {
    state: State,
    env: Env,
    timing: Timing,
    schema_error: Option<String>,
}

/// Calls a person's object. `path` includes any query string.
pub async fn call(
    env: &Env,
    user_id: &str,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> HttpResult<Response> {
    let body = body.map(|b| js_sys::Uint8Array::from(b.as_slice()).into());
    call_object(
        stub(env, user_id)?,
        method,
        path,
        user_headers(user_id)?,
        body,
    )
    .await
}

/// Tells the person's object to close their `/me` sockets of ended sessions.
pub async fn end_sessions(env: &Env, end: &EndSessions) -> HttpResult<()> {
    let body = serde_json::to_vec(end)?;
    let resp = call(
        env,
        &end.user_id,
        Method::Post,
        crate::sessions::END_PATH,
        Some(body),
    )
    .await?;
    if resp.status_code() >= 300 {
        return Err(ApiError::Internal(format!(
            "the person's object answered {} to ending sessions",
            resp.status_code()
        ))
        .into());
    }
    Ok(())
}

/// Hands a WebSocket upgrade to a person's object; `protocol` is echoed, and
/// the socket is tagged with `session` so that ending it closes the socket.
pub async fn socket(
    env: &Env,
    user_id: &str,
    session: Option<&str>,
    protocol: Option<&str>,
) -> HttpResult<Response> {
    let headers = user_headers(user_id)?;
    headers.set("upgrade", "websocket")?;
    if let Some(s) = session {
        headers.set(crate::sessions::SESSION_ID_HEADER, s)?;
    }
    if let Some(p) = protocol {
        headers.set("x-tessera-protocol", p)?;
    }
    call_object(stub(env, user_id)?, Method::Get, "/ws", headers, None).await
}

fn stub(env: &Env, user_id: &str) -> HttpResult<worker::Stub> {
    Ok(env
        .durable_object("PEOPLE")?
        .id_from_name(user_id)?
        .get_stub()?)
}

fn user_headers(user_id: &str) -> HttpResult<Headers> {
    let headers = Headers::new();
    headers.set("x-tessera-user", user_id)?;
    Ok(headers)
}

/// Hands items to a person's inbox (rooms and the Worker call this).
pub async fn deliver(env: &Env, user_id: &str, items: &[NewItem]) -> HttpResult<()> {
    let body = serde_json::to_vec(&serde_json::json!({ "items": items }))?;
    let resp = call(env, user_id, Method::Post, "/deliver", Some(body)).await?;
    if resp.status_code() >= 300 {
        return Err(ApiError::Internal(format!("inbox answered {}", resp.status_code())).into());
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deliver {
    items: Vec<NewItem>,
}

/// A room's count tick (see the room's `notify` module).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tick {
    room_id: String,
    #[serde(default)]
    unread: Option<u64>,
    #[serde(default)]
    added: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkRead {
    #[serde(default)]
    ids: Vec<u64>,
    #[serde(default)]
    all: bool,
}

/// The runtime's entry points; `objects/` exports the class that calls them.
impl PersonDO {
    pub fn new(state: State, env: Env) -> Self {
        let schema_error = create_schema(&state.storage().sql(), &[store::SCHEMA]).err();
        let secs = |name, default| {
            env_var(&env, name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
                * 1000
        };
        let timing = Timing {
            email_delay_ms: secs("NOTIFY_EMAIL_DELAY_SECS", DEFAULT_EMAIL_DELAY_SECS),
            digest_every_ms: secs("NOTIFY_DIGEST_EVERY_SECS", DEFAULT_DIGEST_EVERY_SECS),
        };
        Self {
            state,
            env,
            timing,
            schema_error,
        }
    }

    pub async fn fetch(&self, req: Request) -> worker::Result<Response> {
        crate::http::answer(self.serve(req).await)
    }

    pub async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            ws.close(Some(1003), Some("frames are JSON text"))?;
            return Ok(());
        };
        let reply = match parse_me_frame(&text) {
            Ok(MeClientFrame::Ping { nonce }) => MeFrame::Pong { nonce },
            Ok(MeClientFrame::Read { ids, all }) => match self.mark_read(&ids, all) {
                Ok(()) => return Ok(()),
                Err(Failure(e)) => error_frame(&e),
            },
            Err(e) => error_frame(&e),
        };
        let _ = ws.send_with_str(reply.to_json());
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
        self.unwatch_unless_open(Some(&ws)).await;
        Ok(())
    }

    pub async fn alarm(&self) -> worker::Result<Response> {
        match self.ring().await {
            Ok(()) => Response::ok("done"),
            Err(Failure(e)) => {
                worker::console_error!("inbox alarm failed: {e}");
                let _ = self
                    .set_alarm_by(crate::clock::now_ms() + RETRY_ALARM_MS)
                    .await;
                Response::ok("retrying")
            }
        }
    }
}

fn error_frame(e: &ApiError) -> MeFrame {
    MeFrame::Error {
        code: e.code().into(),
        message: e.to_string(),
    }
}

impl PersonDO {
    fn store(&self) -> SqlPersonStore {
        SqlPersonStore {
            sql: self.state.storage().sql(),
        }
    }

    async fn serve(&self, mut req: Request) -> HttpResult<Response> {
        if let Some(e) = &self.schema_error {
            return Err(ApiError::Internal(format!("person schema: {e}")).into());
        }
        if let Some(user) = req.headers().get("x-tessera-user")? {
            self.store().set_user(&user)?;
        }
        let url = req.url()?;
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let path: Vec<&str> = url.path().trim_matches('/').split('/').collect();
        match (req.method(), path.as_slice()) {
            (Method::Get, ["ws"]) => {
                self.watch_rooms(true).await;
                self.open_socket(&req)
            }
            (Method::Post, ["sessions", "end"]) => {
                let end = crate::sessions::parse_end(&req.bytes().await?)?;
                // Every socket here is the person's.
                let closed = crate::sessions::close_ended(&self.state, &end, |_| true);
                if closed > 0 {
                    self.unwatch_unless_open(None).await;
                }
                json(200, &serde_json::json!({ "closed": closed }))
            }
            (Method::Post, ["counts"]) => {
                let tick: Tick = parse_json(&req.bytes().await?, 4096)?;
                let watching = !self.state.get_websockets_with_tag(ME_TAG).is_empty();
                if watching {
                    self.room_tick(&tick)?;
                } else {
                    self.watch(&tick.room_id, false).await;
                }
                json(200, &serde_json::json!({ "watching": watching }))
            }
            (Method::Post, ["deliver"]) => {
                let body: Deliver = parse_json(&req.bytes().await?, 256 * 1024)?;
                if body.items.len() > tessera_core::notify::fanout::FANOUT_MAX {
                    return Err(ApiError::invalid("too many items at once").into());
                }
                for item in &body.items {
                    item.validate()?;
                }
                let delivered = self.deliver(body.items).await?;
                json(200, &serde_json::json!({ "delivered": delivered }))
            }
            (Method::Get, ["inbox"]) => self.page(&query),
            (Method::Post, ["read"]) => {
                let body: MarkRead = parse_body(&req.bytes().await?, 16 * 1024)?;
                if body.ids.len() > READ_IDS_MAX {
                    return Err(ApiError::invalid(format!("at most {READ_IDS_MAX} ids")).into());
                }
                self.mark_read(&body.ids, body.all)?;
                let unread_items = self.store().unread_items()?;
                json(200, &serde_json::json!({ "unread_items": unread_items }))
            }
            (Method::Get, ["prefs"]) => json(200, &self.store().prefs()?),
            (Method::Patch, ["prefs"]) => {
                let patch = PrefsPatch::parse(&req.bytes().await?)?;
                let next = self.store().prefs()?.patched(patch)?;
                self.store().set_prefs(&next)?;
                json(200, &next)
            }
            (Method::Post, ["unsubscribe", what]) => {
                let mut prefs = self.store().prefs()?;
                match *what {
                    "digest" => prefs.digest_email = false,
                    _ => prefs.email = false,
                }
                self.store().set_prefs(&prefs)?;
                json(200, &prefs)
            }
            (Method::Get, ["push"]) => {
                let subs = self.store().subscriptions()?;
                let list: Vec<_> = subs
                    .iter()
                    .map(|(id, s)| serde_json::json!({ "id": id, "endpoint": s.endpoint }))
                    .collect();
                json(200, &serde_json::json!({ "subscriptions": list }))
            }
            (Method::Post, ["push"]) => {
                // A browser's `toJSON()` gives `expirationTime: null`.
                let sub: Subscription =
                    parse_body_with(&req.bytes().await?, 8192, &["expirationTime"])?;
                sub.target(allow_private_urls(&self.env))?;
                let id = subscription_id(&sub.endpoint);
                let known = self.store().subscriptions()?;
                if known.len() >= SUBSCRIPTIONS_MAX && !known.iter().any(|(k, _)| *k == id) {
                    return Err(ApiError::Conflict {
                        code: tessera_core::error::code::TOO_MANY_SUBSCRIPTIONS,
                        message: format!("at most {SUBSCRIPTIONS_MAX} push subscriptions"),
                    }
                    .into());
                }
                self.store()
                    .put_subscription(&id, &sub, crate::clock::now_ms())?;
                json(
                    201,
                    &serde_json::json!({ "id": id, "endpoint": sub.endpoint }),
                )
            }
            (Method::Delete, ["push", id]) => {
                if !self.store().delete_subscription(id)? {
                    return Err(ApiError::NotFound("push subscription").into());
                }
                crate::http::no_content()
            }
            _ => Err(ApiError::NoRoute.into()),
        }
    }

    /// Tells the person's rooms that their socket opened (`on`: each answers
    /// the unread count, kept for `hello`) or that the last one closed.
    async fn watch_rooms(&self, on: bool) {
        #[derive(Deserialize)]
        struct Row {
            room_id: String,
        }
        let Ok(Some(user_id)) = self.store().user() else {
            return;
        };
        let rooms: Vec<String> = if on {
            let found = async {
                self.env
                    .d1("DB")?
                    .prepare("SELECT room_id FROM memberships WHERE user_id = ?1 ORDER BY joined_at DESC LIMIT ?2")
                    .bind(&[crate::d1::arg(user_id.as_str()), crate::d1::arg(ROOMS_WATCHED_MAX)])?
                    .all()
                    .await?
                    .results::<Row>()
            }
            .await;
            match found {
                Ok(rows) => rows.into_iter().map(|r| r.room_id).collect(),
                Err(e) => {
                    worker::console_error!("listing the person's rooms failed: {e}");
                    return;
                }
            }
        } else {
            self.store().watched_rooms().unwrap_or_default()
        };
        let calls = rooms.iter().map(|r| self.watch(r, on));
        futures_util::future::join_all(calls).await;
        if !on {
            let _ = self.store().forget_rooms();
        }
    }

    /// Starts or stops following one room's counts.
    async fn watch(&self, room_id: &str, on: bool) {
        #[derive(Deserialize)]
        struct Answer {
            unread: u64,
        }
        let Ok(Some(user_id)) = self.store().user() else {
            return;
        };
        let body = serde_json::json!({ "user_id": user_id, "on": on });
        let answer: HttpResult<Answer> = crate::room_client::call_json(
            &self.env,
            room_id,
            Method::Post,
            "/watch",
            Headers::new(),
            Some(&body),
        )
        .await;
        match answer {
            Ok(a) if on => {
                let _ = self.store().set_room_unread(room_id, a.unread);
            }
            Ok(_) => {}
            Err(e) => worker::console_error!("watching a room failed: {}", e.0),
        }
    }

    /// A room's tick: the exact count, or more unread messages.
    fn room_tick(&self, tick: &Tick) -> HttpResult<()> {
        let store = self.store();
        match (tick.unread, tick.added) {
            (Some(n), _) => store.set_room_unread(&tick.room_id, n)?,
            (None, Some(n)) => store.add_room_unread(&tick.room_id, n)?,
            (None, None) => return Ok(()),
        }
        self.broadcast(&engine::counts(&store, &tick.room_id)?);
        Ok(())
    }

    /// Stops following the rooms' counts unless a socket (other than
    /// `closing`) is still open.
    async fn unwatch_unless_open(&self, closing: Option<&WebSocket>) {
        let open = self.state.get_websockets_with_tag(ME_TAG).iter().any(|w| {
            let raw: &web_sys::WebSocket = w.as_ref();
            raw.ready_state() == web_sys::WebSocket::OPEN
                && closing.is_none_or(|c| !js_sys::Object::is(w.as_ref(), c.as_ref()))
        });
        if !open {
            self.watch_rooms(false).await;
        }
    }

    fn broadcast(&self, frame: &MeFrame) {
        let text = frame.to_json();
        for ws in self.state.get_websockets_with_tag(ME_TAG) {
            let _ = ws.send_with_str(&text);
        }
    }

    fn open_socket(&self, req: &Request) -> HttpResult<Response> {
        if req.headers().get("upgrade")?.as_deref() != Some("websocket") {
            return Err(ApiError::invalid("expected a WebSocket upgrade").into());
        }
        let pair = WebSocketPair::new()?;
        let session = crate::sessions::session_tag(req)?;
        let tags: Vec<&str> = std::iter::once(ME_TAG).chain(session.as_deref()).collect();
        self.state.accept_websocket_with_tags(&pair.server, &tags);
        let _ = pair
            .server
            .send_with_str(engine::hello(&self.store())?.to_json());
        let resp = Response::from_websocket(pair.client)?;
        if let Some(protocol) = req.headers().get("x-tessera-protocol")? {
            resp.headers().set("sec-websocket-protocol", &protocol)?;
        }
        Ok(resp)
    }

    /// Hands items to the engine and runs what it says: frames to the open
    /// sockets, the alarm, pushes (last: each is a round trip).
    async fn deliver(&self, items: Vec<NewItem>) -> HttpResult<u64> {
        let subs = self.store().subscriptions()?;
        let reach = Reach {
            sockets_open: !self.state.get_websockets_with_tag(ME_TAG).is_empty(),
            push_subscribed: !subs.is_empty(),
            has_email: true,
        };
        let now = crate::clock::now_ms();
        let (delivered, outputs) =
            engine::deliver(&mut self.store(), items, reach, now, self.timing)?;
        for output in outputs {
            match output {
                Output::Broadcast(frame) => self.broadcast(&frame),
                Output::AlarmBy(at) => self.set_alarm_by(at).await?,
                Output::Push(item) => self.push(&item, &subs).await,
            }
        }
        Ok(delivered)
    }

    /// Brings the alarm forward to `at` if it is set later (or not at all).
    async fn set_alarm_by(&self, at: u64) -> HttpResult<()> {
        let storage = self.state.storage();
        let current = storage.get_alarm().await?;
        if current.is_none_or(|c| c as u64 > at) {
            storage.set_alarm(crate::clock::alarm_at(at)).await?;
        }
        Ok(())
    }

    fn mark_read(&self, ids: &[u64], all: bool) -> HttpResult<()> {
        for frame in engine::mark_read(&mut self.store(), ids, all)? {
            self.broadcast(&frame);
        }
        Ok(())
    }

    /// `?limit=&before=<id>&unread=true`, newest first.
    fn page(&self, query: &BTreeMap<String, String>) -> HttpResult<Response> {
        let limit: u32 = match query.get("limit") {
            Some(l) => l
                .parse()
                .ok()
                .filter(|n| (1..=PAGE_MAX).contains(n))
                .ok_or_else(|| ApiError::invalid(format!("limit must be 1 to {PAGE_MAX}")))?,
            None => 50,
        };
        let before: Option<u64> = match query.get("before") {
            Some(b) => Some(
                tessera_core::ids::parse_safe_id(b)
                    .ok_or_else(|| ApiError::invalid("before must be an item id"))?,
            ),
            None => None,
        };
        let unread_only = match query.get("unread").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::invalid("unread must be true or false").into()),
        };
        let store = self.store();
        let mut items = store.page(
            before.unwrap_or(1 << 53),
            unread_only,
            expired_before(crate::clock::now_ms()),
            limit + 1,
        )?;
        let next = (items.len() > limit as usize).then(|| {
            items.truncate(limit as usize);
            items.last().map(|i| i.id)
        });
        json(
            200,
            &serde_json::json!({
                "items": items,
                "next_before": next.flatten(),
                "unread_items": store.unread_items()?,
            }),
        )
    }

    /// Sends an item to every subscription; forgets those the push service
    /// says are gone (404, 410).
    async fn push(&self, item: &Item, subs: &[(String, Subscription)]) {
        let (Some(public), Some(private)) = (
            env_var(&self.env, "VAPID_PUBLIC_KEY"),
            env_var(&self.env, "VAPID_PRIVATE_KEY"),
        ) else {
            worker::console_log!("web push skipped: VAPID keys are not configured");
            return;
        };
        let subject =
            env_var(&self.env, "VAPID_SUBJECT").unwrap_or_else(|| "mailto:admin@localhost".into());
        let room_name = self.room_name(&item.item.room_id).await;
        let payload = webpush::notification(item, &room_name);
        for (id, sub) in subs {
            match send_push(
                &self.env,
                sub,
                &payload,
                &subject,
                &public,
                &private,
                item.item.kind,
            )
            .await
            {
                Ok(webpush::Outcome::Gone) => {
                    let _ = self.store().delete_subscription(id);
                }
                Ok(_) => {}
                Err(Failure(e)) => worker::console_error!("web push failed: {e}"),
            }
        }
    }

    async fn room_name(&self, room_id: &str) -> String {
        let found = async {
            self.env
                .d1("DB")?
                .prepare("SELECT name FROM rooms WHERE id = ?1")
                .bind(&[crate::d1::arg(room_id)])?
                .first::<String>(Some("name"))
                .await
        }
        .await;
        found.ok().flatten().unwrap_or_else(|| "Tessera".into())
    }

    /// Runs the alarm the engine plans: queues its jobs, reports them done,
    /// and sets the next alarm where the engine says.
    async fn ring(&self) -> HttpResult<()> {
        let now = crate::clock::now_ms();
        let Some(plan) = engine::alarm(&self.store(), now, self.timing)? else {
            return Ok(());
        };
        if !plan.jobs.is_empty() {
            let queue = self.env.queue("NOTIFY")?;
            for job in &plan.jobs {
                queue.send(job).await?;
            }
        }
        let next = engine::done(&mut self.store(), plan, now)?;
        // Set outright: while the alarm runs, the storage may still report it.
        self.state
            .storage()
            .set_alarm(crate::clock::alarm_at(next))
            .await?;
        Ok(())
    }
}

/// A subscription's id: derived from its endpoint, so subscribing again
/// from the same browser replaces the old entry.
fn subscription_id(endpoint: &str) -> String {
    use tessera_core::hmac::hmac_sha256;
    hmac_sha256(b"push subscription", &[endpoint.as_bytes()])[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn send_push(
    env: &Env,
    sub: &Subscription,
    payload: &[u8],
    subject: &str,
    public: &str,
    private: &str,
    kind: Kind,
) -> HttpResult<webpush::Outcome> {
    let target = sub.target(allow_private_urls(env))?;
    let body = crate::webcrypto::encrypt(&target, payload).await?;
    let auth = crate::webcrypto::vapid(
        &target.endpoint,
        subject,
        public,
        private,
        crate::clock::now_secs(),
    )
    .await?;
    let headers = Headers::new();
    headers.set("authorization", &auth)?;
    headers.set("content-encoding", "aes128gcm")?;
    headers.set("content-type", "application/octet-stream")?;
    headers.set("ttl", &TTL_SECS.to_string())?;
    let urgency = if kind == Kind::Mention || kind == Kind::ApprovalRequested {
        "high"
    } else {
        "normal"
    };
    headers.set("urgency", urgency)?;
    let body = js_sys::Uint8Array::from(body.as_slice()).into();
    let req = crate::http::request(&target.endpoint, Method::Post, &headers, Some(&body))?;
    let resp = Fetch::Request(req).send().await?;
    let outcome = webpush::outcome(resp.status_code());
    if outcome == webpush::Outcome::Failed {
        worker::console_error!("push service answered {}", resp.status_code());
    }
    Ok(outcome)
}
