//! Per-request context: the environment, the request id, the caller's address and
//! (once authenticated) user, plus body reading and D1 access helpers.

use serde::de::DeserializeOwned;
use std::cell::RefCell;
use tessera_core::api::{parse_json, Page, JSON_BODY_LIMIT};
use tessera_core::ApiError;
use tessera_durable_objects::http::HttpResult;
use wasm_bindgen::JsValue;
use worker::{D1Database, Env, Request};

pub struct Ctx {
    pub env: Env,
    pub request_id: String,
    pub ip: String,
    /// Set by authentication, read by the request log.
    pub user: RefCell<Option<String>>,
}

impl Ctx {
    pub fn db(&self) -> HttpResult<D1Database> {
        Ok(self.env.d1("DB")?)
    }

    /// A `[vars]` value or secret, if set and non-empty.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(name).map(|v| v.to_string()))
            .ok()
            .filter(|v| !v.trim().is_empty())
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

pub fn now_secs() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

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
/// by the target types.
pub async fn read_json<T: DeserializeOwned>(req: &mut Request) -> HttpResult<T> {
    Ok(parse_json(&read_body(req).await?, JSON_BODY_LIMIT)?)
}

/// A D1 bind argument. Numbers go as f64: D1 takes no BigInt, and every number we
/// store (seconds, counts) is far below 2^53.
pub fn arg<T: Into<D1Arg>>(v: T) -> JsValue {
    v.into().0
}

pub struct D1Arg(JsValue);

impl From<&str> for D1Arg {
    fn from(v: &str) -> Self {
        D1Arg(JsValue::from_str(v))
    }
}
impl From<&String> for D1Arg {
    fn from(v: &String) -> Self {
        D1Arg(JsValue::from_str(v))
    }
}
impl From<u64> for D1Arg {
    fn from(v: u64) -> Self {
        D1Arg(JsValue::from_f64(v as f64))
    }
}
impl From<u32> for D1Arg {
    fn from(v: u32) -> Self {
        D1Arg(JsValue::from_f64(v.into()))
    }
}
impl<T: Into<D1Arg>> From<Option<T>> for D1Arg {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(D1Arg(JsValue::NULL))
    }
}

/// Rows changed by a write.
pub fn changes(result: &worker::D1Result) -> HttpResult<u64> {
    Ok(result
        .meta()?
        .and_then(|m| m.changes)
        .map(|c| c as u64)
        .unwrap_or(0))
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
