//! D1 helpers shared by the Worker and the Durable Objects: bind arguments and
//! write results.

use crate::http::HttpResult;
use wasm_bindgen::JsValue;

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
impl From<&tessera_core::api::Param> for D1Arg {
    fn from(v: &tessera_core::api::Param) -> Self {
        match v {
            tessera_core::api::Param::Text(t) => t.into(),
            tessera_core::api::Param::Int(n) => (*n).into(),
        }
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
