//! PersonDO: one per person, across rooms. It keeps the person's inbox (90
//! days), their notification preferences and push subscriptions, holds their
//! hibernating `/api/v1/me/ws` sockets (new items and each room's counts,
//! live), sends Web Push when no socket is open, queues an email for an
//! item still unseen when its delay is up, and the daily digest email of
//! what stayed unread (alarms).
//!
//! Only the Worker and the room objects reach it: the Worker authenticates
//! the person and names the object by their id; rooms hand it items.

use crate::config::{allow_private_urls, env_var};
use crate::http::{call_object, error_response, json, Failure, HttpResult};
use crate::sql::{create_schema, select};
use serde::Deserialize;
use std::collections::BTreeMap;
use tessera_core::api::{parse_body, parse_body_with, parse_json};
use tessera_core::dates::day_of;
use tessera_core::notify::email::{DigestRoom, DIGEST_ROOMS_MAX};
use tessera_core::notify::inbox::{
    expired_before, parse_me_frame, Counts, Item, Kind, MeClientFrame, MeFrame, NewItem, PAGE_MAX,
    READ_IDS_MAX,
};
use tessera_core::notify::jobs::Job;
use tessera_core::notify::prefs::{decide, Prefs, PrefsPatch, Reach};
use tessera_core::notify::webpush::{self, Subscription, SUBSCRIPTIONS_MAX, TTL_SECS};
use tessera_core::room::EndSessions;
use tessera_core::ApiError;
use worker::{
    Env, Fetch, Headers, Method, Request, Response, SqlStorageValue as V, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  room_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL,
  at INTEGER NOT NULL,
  read INTEGER NOT NULL DEFAULT 0,
  -- when to email the item if still unread; NULL once queued or read
  email_at INTEGER
);
CREATE INDEX IF NOT EXISTS items_unread ON items(read, room_id);
CREATE INDEX IF NOT EXISTS items_email ON items(email_at);
CREATE INDEX IF NOT EXISTS items_at ON items(at);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS push (id TEXT PRIMARY KEY, data TEXT NOT NULL, created_at INTEGER NOT NULL);
-- unread messages per room, as the rooms last said (while a socket is open)
CREATE TABLE IF NOT EXISTS rooms (room_id TEXT PRIMARY KEY, unread INTEGER NOT NULL);
";

/// Rooms whose counts a person's socket follows (the first this many).
const ROOMS_WATCHED_MAX: u32 = 200;

/// How long an item may stay unseen before it is emailed, unless
/// `NOTIFY_EMAIL_DELAY_SECS` says otherwise.
const DEFAULT_EMAIL_DELAY_SECS: u64 = 600;
/// How often a person who opted in gets the digest of their unread items,
/// unless `NOTIFY_DIGEST_EVERY_SECS` says otherwise.
const DEFAULT_DIGEST_EVERY_SECS: u64 = 24 * 3600;
/// Items emailed per alarm (the rest at the next one, a minute later).
const EMAILS_PER_ALARM: u32 = 50;
const RETRY_ALARM_MS: u64 = 60_000;
const CLEANUP_EVERY_MS: u64 = 24 * 3600 * 1000;
const ME_TAG: &str = "me";
/// The meta key of when the next digest is due (unix ms).
const DIGEST_AT: &str = "digest_at";

pub struct PersonDO {
    state: State,
    env: Env,
    email_delay_ms: u64,
    digest_every_ms: u64,
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

#[derive(Deserialize)]
struct ItemRow {
    id: u64,
    data: String,
    read: u8,
}

impl ItemRow {
    fn item(&self) -> HttpResult<Item> {
        let item: NewItem = serde_json::from_str(&self.data)?;
        Ok(Item {
            id: self.id,
            link: item.link(),
            item,
            read: self.read != 0,
        })
    }
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

#[derive(Deserialize)]
struct RoomCount {
    room_id: String,
    n: u64,
}

#[derive(Deserialize)]
struct PushRow {
    id: String,
    data: String,
}

/// The runtime's entry points; `objects/` exports the class that calls them.
impl PersonDO {
    pub fn new(state: State, env: Env) -> Self {
        let schema_error = create_schema(&state.storage().sql(), &[SCHEMA]).err();
        let secs = |name, default| {
            env_var(&env, name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
                * 1000
        };
        let email_delay_ms = secs("NOTIFY_EMAIL_DELAY_SECS", DEFAULT_EMAIL_DELAY_SECS);
        let digest_every_ms = secs("NOTIFY_DIGEST_EVERY_SECS", DEFAULT_DIGEST_EVERY_SECS);
        Self {
            state,
            env,
            email_delay_ms,
            digest_every_ms,
            schema_error,
        }
    }

    pub async fn fetch(&self, req: Request) -> worker::Result<Response> {
        Ok(match self.serve(req).await {
            Ok(resp) => resp,
            Err(Failure(e)) => error_response(&e),
        })
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
        let _ = ws.close(Some(code.clamp(1000, 4999) as u16), Some(reason));
        self.unwatch_unless_open(Some(&ws)).await;
        Ok(())
    }

    pub async fn alarm(&self) -> worker::Result<Response> {
        match self.due_emails().await {
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
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    async fn serve(&self, mut req: Request) -> HttpResult<Response> {
        if let Some(e) = &self.schema_error {
            return Err(ApiError::Internal(format!("person schema: {e}")).into());
        }
        if let Some(user) = req.headers().get("x-tessera-user")? {
            self.remember("user", &user)?;
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
                json(
                    200,
                    &serde_json::json!({ "unread_items": self.unread_items()? }),
                )
            }
            (Method::Get, ["prefs"]) => json(200, &self.prefs()?),
            (Method::Patch, ["prefs"]) => {
                let patch = PrefsPatch::parse(&req.bytes().await?)?;
                let next = self.prefs()?.patched(patch)?;
                self.remember("prefs", &serde_json::to_string(&next)?)?;
                json(200, &next)
            }
            (Method::Post, ["unsubscribe", what]) => {
                let mut prefs = self.prefs()?;
                match *what {
                    "digest" => prefs.digest_email = false,
                    _ => prefs.email = false,
                }
                self.remember("prefs", &serde_json::to_string(&prefs)?)?;
                json(200, &prefs)
            }
            (Method::Get, ["push"]) => {
                let subs = self.subscriptions()?;
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
                let known = self.subscriptions()?;
                if known.len() >= SUBSCRIPTIONS_MAX && !known.iter().any(|(k, _)| *k == id) {
                    return Err(ApiError::Conflict {
                        code: tessera_core::error::code::TOO_MANY_SUBSCRIPTIONS,
                        message: format!("at most {SUBSCRIPTIONS_MAX} push subscriptions"),
                    }
                    .into());
                }
                self.sql().exec(
                    "INSERT INTO push (id, data, created_at) VALUES (?, ?, ?)
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    vec![
                        V::from(id.as_str()),
                        V::from(serde_json::to_string(&sub)?),
                        V::from(crate::clock::now_ms() as f64),
                    ],
                )?;
                json(
                    201,
                    &serde_json::json!({ "id": id, "endpoint": sub.endpoint }),
                )
            }
            (Method::Delete, ["push", id]) => {
                let gone = self
                    .sql()
                    .exec("DELETE FROM push WHERE id = ?", vec![V::from(*id)])?
                    .rows_written();
                if gone == 0 {
                    return Err(ApiError::NotFound("push subscription").into());
                }
                crate::http::no_content()
            }
            _ => Err(ApiError::NoRoute.into()),
        }
    }

    fn remember(&self, k: &str, v: &str) -> HttpResult<()> {
        self.sql().exec(
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            vec![V::from(k), V::from(v)],
        )?;
        Ok(())
    }

    fn meta(&self, k: &str) -> HttpResult<Option<String>> {
        #[derive(Deserialize)]
        struct Row {
            v: String,
        }
        let rows: Vec<Row> = select(
            &self.sql(),
            "SELECT v FROM meta WHERE k = ?",
            vec![V::from(k)],
        )?;
        Ok(rows.into_iter().next().map(|r| r.v))
    }

    fn prefs(&self) -> HttpResult<Prefs> {
        Ok(match self.meta("prefs")? {
            Some(p) => serde_json::from_str(&p)?,
            None => Prefs::default(),
        })
    }

    fn subscriptions(&self) -> HttpResult<Vec<(String, Subscription)>> {
        let rows: Vec<PushRow> = select(
            &self.sql(),
            "SELECT id, data FROM push ORDER BY created_at",
            None,
        )?;
        rows.into_iter()
            .map(|r| Ok((r.id, serde_json::from_str(&r.data)?)))
            .collect()
    }

    fn unread_items(&self) -> HttpResult<u64> {
        let rows: Vec<Count> = select(
            &self.sql(),
            "SELECT COUNT(*) AS n FROM items WHERE read = 0",
            None,
        )?;
        Ok(rows.first().map_or(0, |c| c.n))
    }

    /// Unread mentions and replies per room.
    fn mention_counts(&self, room: Option<&str>) -> HttpResult<BTreeMap<String, Counts>> {
        let (filter, args) = match room {
            Some(r) => (" AND room_id = ?", vec![V::from(r)]),
            None => ("", vec![]),
        };
        let rows: Vec<RoomCount> = select(
            &self.sql(),
            &format!(
                "SELECT room_id, COUNT(*) AS n FROM items
                 WHERE read = 0 AND kind IN ('mention', 'reply'){filter} GROUP BY room_id"
            ),
            args,
        )?;
        let unread: Vec<RoomCount> = select(
            &self.sql(),
            &format!("SELECT room_id, unread AS n FROM rooms WHERE 1 = 1{filter}"),
            match room {
                Some(r) => vec![V::from(r)],
                None => vec![],
            },
        )?;
        let mut counts: BTreeMap<String, Counts> = unread
            .into_iter()
            .map(|r| {
                (
                    r.room_id,
                    Counts {
                        unread: r.n,
                        mentions: 0,
                    },
                )
            })
            .collect();
        for r in rows {
            counts.entry(r.room_id).or_default().mentions = r.n;
        }
        Ok(counts)
    }

    /// Tells the person's rooms that their socket opened (`on`: each answers
    /// the unread count, kept for `hello`) or that the last one closed.
    async fn watch_rooms(&self, on: bool) {
        #[derive(Deserialize)]
        struct Row {
            room_id: String,
        }
        let Ok(Some(user_id)) = self.meta("user") else {
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
            select::<Row>(&self.sql(), "SELECT room_id FROM rooms", None)
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.room_id)
                .collect()
        };
        let calls = rooms.iter().map(|r| self.watch(r, on));
        futures_util::future::join_all(calls).await;
        if !on {
            let _ = self.sql().exec("DELETE FROM rooms", None);
        }
    }

    /// Starts or stops following one room's counts.
    async fn watch(&self, room_id: &str, on: bool) {
        #[derive(Deserialize)]
        struct Answer {
            unread: u64,
        }
        let Ok(Some(user_id)) = self.meta("user") else {
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
                let _ = self.sql().exec(
                    "INSERT INTO rooms (room_id, unread) VALUES (?, ?)
                     ON CONFLICT (room_id) DO UPDATE SET unread = excluded.unread",
                    vec![V::from(room_id), V::from(a.unread as f64)],
                );
            }
            Ok(_) => {}
            Err(e) => worker::console_error!("watching a room failed: {}", e.0),
        }
    }

    /// A room's tick: the exact count, or more unread messages.
    fn room_tick(&self, tick: &Tick) -> HttpResult<()> {
        let upsert = match (tick.unread, tick.added) {
            (Some(n), _) => ("unread = excluded.unread", n),
            (None, Some(n)) => ("unread = unread + excluded.unread", n),
            (None, None) => return Ok(()),
        };
        self.sql().exec(
            &format!(
                "INSERT INTO rooms (room_id, unread) VALUES (?, ?)
                 ON CONFLICT (room_id) DO UPDATE SET {}",
                upsert.0
            ),
            vec![V::from(tick.room_id.as_str()), V::from(upsert.1 as f64)],
        )?;
        self.send_counts(&tick.room_id)
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
        let hello = MeFrame::Hello {
            unread_items: self.unread_items()?,
            rooms: self.mention_counts(None)?,
        };
        let _ = pair.server.send_with_str(hello.to_json());
        let resp = Response::from_websocket(pair.client)?;
        if let Some(protocol) = req.headers().get("x-tessera-protocol")? {
            resp.headers().set("sec-websocket-protocol", &protocol)?;
        }
        Ok(resp)
    }

    /// Stores each item the preferences let in (once per key), tells open
    /// sockets, pushes when none is open, and sets the email alarm.
    async fn deliver(&self, items: Vec<NewItem>) -> HttpResult<u64> {
        let prefs = self.prefs()?;
        let subs = self.subscriptions()?;
        let now = crate::clock::now_ms();
        let reach = Reach {
            sockets_open: !self.state.get_websockets_with_tag(ME_TAG).is_empty(),
            push_subscribed: !subs.is_empty(),
            has_email: true,
        };
        let mut delivered = 0;
        let mut pushes = Vec::new();
        let mut earliest_email: Option<u64> = None;
        for item in items {
            let d = decide(
                &prefs,
                &item.room_id,
                item.kind,
                reach,
                now,
                self.email_delay_ms,
            );
            if !d.inbox {
                continue;
            }
            #[derive(Deserialize)]
            struct Id {
                id: u64,
            }
            let inserted: Vec<Id> = select(
                &self.sql(),
                "INSERT INTO items (key, room_id, kind, data, at, email_at) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (key) DO NOTHING RETURNING id",
                vec![
                    V::from(item.key()),
                    V::from(item.room_id.as_str()),
                    V::from(item.kind.as_str()),
                    V::from(serde_json::to_string(&item)?),
                    V::from(now as f64),
                    d.email_at.map_or(V::Null, |t| V::from(t as f64)),
                ],
            )?;
            let Some(id) = inserted.first().map(|r| r.id) else {
                continue;
            };
            delivered += 1;
            let stored = Item {
                id,
                link: item.link(),
                item,
                read: false,
            };
            if d.live {
                self.broadcast(&MeFrame::Item {
                    item: stored.clone(),
                    unread_items: self.unread_items()?,
                });
                if stored.item.kind.counts_as_mention() {
                    self.send_counts(&stored.item.room_id)?;
                }
            }
            if d.push {
                pushes.push(stored);
            }
            if let Some(at) = d.email_at {
                earliest_email = Some(earliest_email.map_or(at, |e: u64| e.min(at)));
            }
        }
        if delivered > 0 {
            // Emails and the digest when due; at the latest the daily drop of
            // expired items.
            let digest = self.schedule_digest(&prefs, now)?;
            let at = [earliest_email, digest]
                .into_iter()
                .flatten()
                .fold(now + CLEANUP_EVERY_MS, u64::min);
            self.set_alarm_by(at).await?;
        }
        for item in &pushes {
            self.push(item, &subs).await;
        }
        Ok(delivered)
    }

    fn send_counts(&self, room_id: &str) -> HttpResult<()> {
        let counts = self
            .mention_counts(Some(room_id))?
            .remove(room_id)
            .unwrap_or_default();
        self.broadcast(&MeFrame::Counts {
            room_id: room_id.to_string(),
            counts,
        });
        Ok(())
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
        #[derive(Deserialize)]
        struct Room {
            room_id: String,
        }
        let rooms: Vec<Room> = if all {
            select(
                &self.sql(),
                "UPDATE items SET read = 1, email_at = NULL WHERE read = 0 RETURNING room_id",
                None,
            )?
        } else {
            let list = serde_json::to_string(ids)?;
            select(
                &self.sql(),
                "UPDATE items SET read = 1, email_at = NULL
                 WHERE read = 0 AND id IN (SELECT value FROM json_each(?)) RETURNING room_id",
                vec![V::from(list)],
            )?
        };
        self.broadcast(&MeFrame::Read {
            ids: if all { Vec::new() } else { ids.to_vec() },
            all,
            unread_items: self.unread_items()?,
        });
        let mut touched: Vec<String> = rooms.into_iter().map(|r| r.room_id).collect();
        touched.sort();
        touched.dedup();
        for room in touched {
            self.send_counts(&room)?;
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
        let rows: Vec<ItemRow> = select(
            &self.sql(),
            "SELECT id, data, read FROM items
             WHERE id < ? AND (? = 0 OR read = 0) AND at >= ?
             ORDER BY id DESC LIMIT ?",
            vec![
                V::from(before.unwrap_or(1 << 53) as f64),
                V::from(i64::from(unread_only) as f64),
                V::from(expired_before(crate::clock::now_ms()) as f64),
                V::from(f64::from(limit + 1)),
            ],
        )?;
        let mut items = rows
            .iter()
            .map(ItemRow::item)
            .collect::<HttpResult<Vec<_>>>()?;
        let next = (items.len() > limit as usize).then(|| {
            items.truncate(limit as usize);
            items.last().map(|i| i.id)
        });
        json(
            200,
            &serde_json::json!({
                "items": items,
                "next_before": next.flatten(),
                "unread_items": self.unread_items()?,
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
                    let _ = self
                        .sql()
                        .exec("DELETE FROM push WHERE id = ?", vec![V::from(id.as_str())]);
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

    /// Queues the emails that are due and drops items past their retention.
    async fn due_emails(&self) -> HttpResult<()> {
        let now = crate::clock::now_ms();
        let Some(user_id) = self.meta("user")? else {
            return Ok(());
        };
        #[derive(Deserialize)]
        struct Due {
            id: u64,
            data: String,
        }
        let due: Vec<Due> = select(
            &self.sql(),
            "SELECT id, data FROM items WHERE email_at IS NOT NULL AND email_at <= ? AND read = 0
             ORDER BY email_at LIMIT ?",
            vec![V::from(now as f64), V::from(f64::from(EMAILS_PER_ALARM))],
        )?;
        if !due.is_empty() {
            let queue = self.env.queue("NOTIFY")?;
            for d in &due {
                let job = Job::Email {
                    user_id: user_id.clone(),
                    item_id: d.id,
                    item: serde_json::from_str(&d.data)?,
                };
                queue.send(&job).await?;
                // Queued once: the mail log makes a repeated job send nothing.
                self.sql().exec(
                    "UPDATE items SET email_at = NULL WHERE id = ?",
                    vec![V::from(d.id as f64)],
                )?;
            }
        }
        self.sql().exec(
            "DELETE FROM items WHERE at < ?",
            vec![V::from(expired_before(now) as f64)],
        )?;
        #[derive(Deserialize)]
        struct Next {
            at: Option<f64>,
        }
        let next: Vec<Next> = select(
            &self.sql(),
            "SELECT MIN(email_at) AS at FROM items WHERE email_at IS NOT NULL",
            None,
        )?;
        let digest = self.due_digest(&user_id, now).await?;
        // Set outright: while the alarm runs, the storage may still report it.
        let at = [next.first().and_then(|n| n.at).map(|a| a as u64), digest]
            .into_iter()
            .flatten()
            .fold(now + CLEANUP_EVERY_MS, u64::min);
        self.state
            .storage()
            .set_alarm(crate::clock::alarm_at(at))
            .await?;
        Ok(())
    }

    /// When the next digest is due, setting it a period from now if the
    /// person wants digests and none is set (a quiet inbox sets none).
    fn schedule_digest(&self, prefs: &Prefs, now: u64) -> HttpResult<Option<u64>> {
        if !prefs.digest_email {
            return Ok(None);
        }
        if let Some(at) = self.digest_at()? {
            return Ok(Some(at));
        }
        let at = now + self.digest_every_ms;
        self.remember(DIGEST_AT, &at.to_string())?;
        Ok(Some(at))
    }

    fn digest_at(&self) -> HttpResult<Option<u64>> {
        Ok(self.meta(DIGEST_AT)?.and_then(|v| v.parse().ok()))
    }

    /// Queues the digest when it is due: the rooms with items that arrived
    /// since it was set and are still unread. Returns when the next one is due
    /// (none until an item arrives). Queued before it is cleared, so a
    /// failure retries it; the mail log sends one a day.
    async fn due_digest(&self, user_id: &str, now: u64) -> HttpResult<Option<u64>> {
        let Some(at) = self.digest_at()? else {
            return Ok(None);
        };
        if at > now {
            return Ok(Some(at));
        }
        if self.prefs()?.digest_email {
            let rooms: Vec<DigestRoom> = select(
                &self.sql(),
                "SELECT room_id, COUNT(*) AS unread,
                        SUM(kind IN ('mention', 'reply')) AS mentions
                 FROM items WHERE read = 0 AND at >= ?
                 GROUP BY room_id ORDER BY unread DESC, room_id LIMIT ?",
                vec![
                    // Since the digest was set: the first item of the period.
                    V::from(at.saturating_sub(self.digest_every_ms) as f64),
                    V::from(DIGEST_ROOMS_MAX as f64),
                ],
            )?;
            if !rooms.is_empty() {
                let job = Job::Digest {
                    user_id: user_id.to_string(),
                    day: day_of(now / 1000),
                    rooms,
                };
                self.env.queue("NOTIFY")?.send(&job).await?;
            }
        }
        self.sql()
            .exec("DELETE FROM meta WHERE k = ?", vec![V::from(DIGEST_AT)])?;
        Ok(None)
    }
}

/// An alarm at unix milliseconds `at` (an integer `ScheduledTime` is an offset).
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
