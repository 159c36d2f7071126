//! Per-request context: the environment, the request id, the caller's address and
//! (once authenticated) user, plus body reading and D1 access helpers.

use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use tessera_core::api::{parse_body, Endpoint, Page, Route, JSON_BODY_LIMIT};
use tessera_core::notify::apikeys::{self, Scope};
use tessera_core::rooms::Role;
use tessera_core::ApiError;
pub use tessera_durable_objects::d1::{arg, changes};
use tessera_durable_objects::http::HttpResult;
use worker::{D1Database, Env, Request};

pub struct Ctx {
    pub env: Env,
    pub request_id: String,
    pub ip: String,
    /// Set by authentication, read by the request log.
    pub user: RefCell<Option<String>>,
    /// The route being served and the room its path names: what an API key
    /// is checked against when it authenticates.
    pub endpoint: Cell<Option<Endpoint>>,
    pub path_room: RefCell<Option<String>>,
    /// The scope of the API key the caller authenticated with, if any.
    pub key_scope: RefCell<Option<Scope>>,
}

impl Ctx {
    pub fn new(env: Env, request_id: String, ip: String) -> Self {
        Self {
            env,
            request_id,
            ip,
            user: RefCell::new(None),
            endpoint: Cell::new(None),
            path_room: RefCell::new(None),
            key_scope: RefCell::new(None),
        }
    }

    /// Remembers the route for authentication (see [`Ctx::endpoint`]).
    pub fn routed(&self, route: &Route) {
        self.endpoint.set(Some(route.endpoint));
        *self.path_room.borrow_mut() =
            apikeys::room_param(route.endpoint).map(|i| route.param(i).to_string());
    }

    /// Whether the caller's API key (if they used one) reaches `room_id`;
    /// where it does not, the room is answered as one they are not in.
    pub fn key_allows_room(&self, room_id: &str) -> bool {
        self.key_scope
            .borrow()
            .as_ref()
            .is_none_or(|s| s.allows_room(room_id))
    }

    /// The role the caller's socket acts with in a room where they hold `role`.
    pub fn acting_role(&self, role: Role) -> Role {
        self.key_scope
            .borrow()
            .as_ref()
            .map_or(role, |s| s.cap_role(role))
    }

    pub fn db(&self) -> HttpResult<D1Database> {
        Ok(self.env.d1("DB")?)
    }

    /// A `[vars]` value or secret, if set and non-empty.
    pub fn var(&self, name: &str) -> Option<String> {
        env_var(&self.env, name)
    }

    /// Applies a rate limit binding to `key`; `period` is the binding's window.
    pub async fn limit(&self, binding: &str, key: String, period: u64) -> HttpResult<()> {
        let outcome = self.env.rate_limiter(binding)?.limit(key).await?;
        if outcome.success {
            Ok(())
        } else {
            Err(ApiError::RateLimited {
                retry_after_secs: period,
            }
            .into())
        }
    }
}

/// A `[vars]` value or secret, if set and non-empty (also for the queue
/// consumer and the cron, which have no request).
pub use tessera_durable_objects::config::env_var;

pub use tessera_durable_objects::clock::{now_ms, now_secs};

/// Reads a JSON body's bytes: it must be `application/json` and at most
/// `JSON_BODY_LIMIT` bytes. Used as is when the body is forwarded to a room object.
pub async fn read_body(req: &mut Request) -> HttpResult<Vec<u8>> {
    read_body_as(req, "application/json", JSON_BODY_LIMIT).await
}

/// Reads a body of content type `expected` and at most `limit` bytes (refused
/// from `Content-Length` before reading when it says so).
pub async fn read_body_as(
    req: &mut Request,
    expected: &'static str,
    limit: usize,
) -> HttpResult<Vec<u8>> {
    let ct = req.headers().get("content-type")?.unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with(expected) {
        return Err(ApiError::UnsupportedMediaType { expected }.into());
    }
    let declared: Option<usize> = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse().ok());
    let too_large = ApiError::PayloadTooLarge { limit };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large.into());
    }
    let body = req.bytes().await?;
    if body.len() > limit {
        return Err(too_large.into());
    }
    Ok(body)
}

/// Reads and parses a JSON body (see [`read_body`]); unknown fields are refused
/// by the target types, `null` members by `parse_body`.
pub async fn read_json<T: DeserializeOwned>(req: &mut Request) -> HttpResult<T> {
    Ok(parse_body(&read_body(req).await?, JSON_BODY_LIMIT)?)
}

/// Reads a JSON body that may be left out: no body (or an empty one) is
/// `T::default()`; anything else is read as [`read_json`] does.
pub async fn read_optional_json<T: DeserializeOwned + Default>(req: &mut Request) -> HttpResult<T> {
    let declared: Option<usize> = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse().ok());
    if declared == Some(0) || (declared.is_none() && req.inner().body().is_none()) {
        return Ok(T::default());
    }
    let body = read_body(req).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    Ok(parse_body(&body, JSON_BODY_LIMIT)?)
}

/// `?limit=&cursor=` of a list request.
pub fn page(req: &Request) -> HttpResult<Page> {
    let url = req.url()?;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok(Page::from_query(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// `?date=YYYY-MM-DD` of a per-day read (check-ins, AI usage): that UTC day,
/// or today when it is left out.
pub fn query_day(req: &Request) -> HttpResult<String> {
    let date = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "date")
        .map(|(_, v)| v.into_owned());
    Ok(tessera_core::dates::day_param(date.as_deref(), now_secs())?)
}
