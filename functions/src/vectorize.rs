//! The Vectorize index, when the deployment binds one as `VECTORIZE`
//! (wrangler.toml): a semantic search asks it once for candidates across
//! the caller's rooms, and each room object scores only those; the upkeep
//! task upserts an item's vector before its room stores it. workers-rs has
//! no Vectorize type, so its three methods are declared here, and their
//! arguments are built as plain JS values (no serde types for them: the
//! Worker's bundle is over its budget). What is asked and what an answer
//! means is `tessera_core::search::vectorize`.

use js_sys::{Array, Float32Array, Object, Reflect, JSON};
use tessera_core::search::vectorize;
use tessera_core::ApiError;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use worker::Env;

#[wasm_bindgen]
extern "C" {
    pub type Index;

    #[wasm_bindgen(method, catch)]
    fn query(
        this: &Index,
        vector: &Float32Array,
        options: &Object,
    ) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn upsert(this: &Index, vectors: &Array) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = deleteByIds)]
    fn delete_by_ids(this: &Index, ids: &Array) -> Result<js_sys::Promise, JsValue>;
}

/// The bound index, if there is one.
pub fn bound(env: &Env) -> Option<Index> {
    let binding = Reflect::get(env, &JsValue::from_str("VECTORIZE")).ok()?;
    (!binding.is_undefined() && !binding.is_null()).then(|| binding.unchecked_into())
}

impl Index {
    /// The items nearest to `vector` in each of `rooms` (most recently
    /// active first), at most `take` in all, one list per room.
    pub async fn nearest(
        &self,
        vector: &[f32],
        rooms: &[&str],
        take: u32,
    ) -> Result<Vec<Vec<i64>>, ApiError> {
        let options = object(&[
            ("topK", take.clamp(1, vectorize::TOP_K_MAX).into()),
            ("returnValues", false.into()),
            ("returnMetadata", "none".into()),
            (
                "filter",
                JSON::parse(&vectorize::filter(rooms)).map_err(failed)?,
            ),
        ])?;
        let answer = settle(self.query(&Float32Array::from(vector), &options)).await?;
        let matches: Array = Reflect::get(&answer, &"matches".into())
            .map_err(failed)?
            .dyn_into()
            .map_err(|_| ApiError::Unavailable("the vector index answered no matches".into()))?;
        let ids = matches
            .iter()
            .filter_map(|m| Reflect::get(&m, &"id".into()).ok()?.as_string());
        Ok(vectorize::candidates(ids, rooms))
    }

    /// Stores the vectors of `items` of `room` (replacing earlier ones),
    /// with the room as the metadata queries filter on.
    pub async fn put(&self, room: &str, items: &[(i64, &[f32])]) -> Result<(), ApiError> {
        let vectors = Array::new();
        for (id, values) in items {
            let metadata = object(&[("room", room.into())])?;
            let vector = object(&[
                ("id", vectorize::vector_id(room, *id).into()),
                ("values", Float32Array::from(*values).into()),
                ("metadata", metadata.into()),
            ])?;
            vectors.push(&vector);
        }
        settle(self.upsert(&vectors)).await.map(drop)
    }

    /// Forgets the vectors of items deleted in `room`.
    pub async fn forget(&self, room: &str, items: &[i64]) -> Result<(), ApiError> {
        let ids: Array = items
            .iter()
            .map(|i| JsValue::from(vectorize::vector_id(room, *i)))
            .collect();
        settle(self.delete_by_ids(&ids)).await.map(drop)
    }
}

fn object(fields: &[(&str, JsValue)]) -> Result<Object, ApiError> {
    let o = Object::new();
    for (k, v) in fields {
        Reflect::set(&o, &JsValue::from_str(k), v).map_err(failed)?;
    }
    Ok(o)
}

async fn settle(call: Result<js_sys::Promise, JsValue>) -> Result<JsValue, ApiError> {
    JsFuture::from(call.map_err(failed)?).await.map_err(failed)
}

fn failed(e: JsValue) -> ApiError {
    let why = e
        .as_string()
        .or_else(|| {
            Reflect::get(&e, &JsValue::from_str("message"))
                .ok()?
                .as_string()
        })
        .unwrap_or_else(|| "no reason given".into());
    ApiError::Unavailable(format!(
        "semantic search is unavailable now: the vector index failed ({why})"
    ))
}
