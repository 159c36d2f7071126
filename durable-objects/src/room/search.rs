//! The room object's search index: its FTS5 tables in the object's SQLite,
//! written in the same synchronous turn as the change they index (a message
//! is searchable the moment its send is acknowledged), an outbox of those
//! changes copied to D1's cross-room index, documents re-indexed once their
//! edits settle, and the embeddings of semantic search with their cosine
//! top-k: over all of them, or over the candidates a Vectorize index
//! proposed. The SQL and every rule are in
//! `tessera_core::search`; this module runs them.
//!
//! Upkeep (the D1 copy, settled documents, embeddings) is a queue task
//! (`Task::Index`) asked for at most once a second per room (`Upkeep`): the
//! Worker's consumer calls `POST /search/maintain` and makes the embeddings.

use super::RoomDO;
use crate::clock::now_ms;
use crate::d1::arg;
use crate::http::{json, HttpResult};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;
use tessera_core::ai::Task;
use tessera_core::chat::ChatStore;
use tessera_core::protocol::ServerFrame;
use tessera_core::search::index::{Change, Entry, Kind, Upkeep};
use tessera_core::search::sql::{self, Arg, Found, Hit, Row, Scope, Statement};
use tessera_core::search::{embed, rank, vectorize, Request};
use tessera_core::ApiError;
use worker::{D1Database, D1PreparedStatement, Method, SqlStorage, SqlStorageValue as V};

/// A document is re-indexed once no edit came for this long.
pub const SETTLE_MS: u64 = 2_000;
/// Largest file text or vector batch the Worker sends.
const BODY_LIMIT: usize = 1024 * 1024;

/// The object's in-memory search state (rebuilt as needed after eviction).
pub struct SearchState {
    /// `SEARCH_INDEX=off` stops indexing (what the benchmark compares with).
    pub(crate) enabled: bool,
    upkeep: Cell<Upkeep>,
    /// A copy to D1 is under way: another waits for it rather than racing it
    /// (an older batch landing after a newer one would restore old text).
    copying: Cell<bool>,
}

impl SearchState {
    pub(crate) fn new(enabled: bool) -> Self {
        SearchState {
            enabled,
            upkeep: Cell::default(),
            copying: Cell::new(false),
        }
    }
}

fn values(args: &[Arg]) -> Vec<V> {
    args.iter()
        .map(|a| match a {
            Arg::Int(n) => V::Integer(*n),
            Arg::Real(f) => V::Float(*f),
            Arg::Text(s) => V::String(s.clone()),
            Arg::Blob(b) => V::Blob(b.clone()),
            Arg::Null => V::Null,
        })
        .collect()
}

fn exec(sql: &SqlStorage, s: &Statement) -> worker::Result<worker::SqlCursor> {
    sql.exec(&s.sql, values(&s.args))
}

/// A statement for D1 (numbers go as f64, like every D1 argument).
pub fn d1_statement(db: &D1Database, s: &Statement) -> worker::Result<D1PreparedStatement> {
    let args: Vec<wasm_bindgen::JsValue> = s
        .args
        .iter()
        .map(|a| match a {
            Arg::Int(n) => wasm_bindgen::JsValue::from_f64(*n as f64),
            Arg::Real(f) => wasm_bindgen::JsValue::from_f64(*f),
            Arg::Text(t) => arg(t.as_str()),
            Arg::Blob(b) => js_sys::Uint8Array::from(b.as_slice()).into(),
            Arg::Null => wasm_bindgen::JsValue::NULL,
        })
        .collect();
    db.prepare(&s.sql).bind(&args)
}

/// Writes a change to the room's index and its outbox (in the caller's turn).
/// `fresh`: the item was never indexed (a new message).
pub(crate) fn write(sql: &SqlStorage, change: &Change, fresh: bool) -> worker::Result<()> {
    for s in sql::apply(change, fresh) {
        exec(sql, &s)?;
    }
    let json =
        serde_json::to_string(change).map_err(|e| worker::Error::RustError(e.to_string()))?;
    sql.exec(
        "INSERT INTO search_outbox (change) VALUES (?)",
        vec![V::from(json)],
    )?;
    Ok(())
}

/// The hits of rows, in their order.
fn hits(rows: Vec<Row>, marked: bool, found: Found) -> HttpResult<Vec<Hit>> {
    Ok(rows
        .into_iter()
        .map(|r| r.into_hit(marked, found))
        .collect::<Result<_, _>>()?)
}

/// Full-text hits of the room's own index.
pub(crate) fn text_hits(
    sql: &SqlStorage,
    req: &Request,
    offset: u32,
    take: u32,
) -> HttpResult<Vec<Hit>> {
    let rows: Vec<Row> =
        exec(sql, &sql::search(req, Scope::Room, now_ms(), offset, take))?.to_array()?;
    hits(rows, true, Found::Text)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SemanticAsk {
    model: String,
    /// The normalised query vector, encoded (`embed::encode`), base64.
    vector: String,
    take: u32,
    /// The items a vector index proposed (`tessera_core::search::vectorize`):
    /// only they are scored. Absent, every stored vector is.
    #[serde(default)]
    only: Option<Vec<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    id: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    model: String,
    vectors: Vec<StoredVector>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredVector {
    pub id: i64,
    pub at: u64,
    /// `embed::encode` of the normalised vector, base64.
    pub data: String,
}

/// An item waiting for its embedding.
#[derive(Serialize, Deserialize)]
pub struct Unembedded {
    pub id: i64,
    pub at: u64,
    pub text: String,
}

/// What `POST /search/maintain` did and left.
#[derive(Serialize, Deserialize)]
pub struct Maintained {
    pub copied: u64,
    /// Documents still being edited: ask again after this long.
    pub unsettled_ms: Option<u64>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl RoomDO {
    /// Indexes an item (or its new state) and asks for upkeep.
    pub(crate) fn search_put(&self, entry: Entry) -> HttpResult<()> {
        if !self.search.enabled {
            return Ok(());
        }
        write(&self.state.storage().sql(), &Change::Put(entry), false)?;
        self.search_changed(0);
        Ok(())
    }

    /// Forgets an item and asks for upkeep.
    pub(crate) fn search_remove(&self, kind: Kind, id: &str) -> HttpResult<()> {
        if !self.search.enabled {
            return Ok(());
        }
        let sql = self.state.storage().sql();
        let change = Change::Remove {
            kind,
            id: id.to_string(),
        };
        write(&sql, &change, false)?;
        if kind == Kind::Document {
            sql.exec("DELETE FROM search_dirty WHERE doc = ?", vec![V::from(id)])?;
        }
        self.search_changed(0);
        Ok(())
    }

    /// After a chat frame: messages were indexed by the store in the same
    /// turn; the cross-room copy follows.
    pub(crate) fn search_after(&self, broadcast: &[ServerFrame]) {
        let indexed = broadcast.iter().any(|f| {
            matches!(
                f,
                ServerFrame::Message { .. }
                    | ServerFrame::MessageEdited { .. }
                    | ServerFrame::MessageDeleted { .. }
            )
        });
        if indexed && self.search.enabled {
            self.search_changed(0);
        }
    }

    /// A document was written: it is re-indexed once its edits settle (or
    /// at once by a search in this room).
    pub(crate) fn search_doc_changed(&self, name: &str, now: u64) {
        if !self.search.enabled {
            return;
        }
        let marked = self.state.storage().sql().exec(
            "INSERT INTO search_dirty (doc, changed_at) VALUES (?, ?)
             ON CONFLICT (doc) DO UPDATE SET changed_at = excluded.changed_at",
            vec![V::from(name), crate::sql::int(now)],
        );
        match marked {
            Ok(_) => self.search_changed(SETTLE_MS),
            Err(e) => worker::console_error!("marking document {name} for search failed: {e}"),
        }
    }

    /// Asks for an upkeep task unless one that is due covers this change.
    fn search_changed(&self, settle_ms: u64) {
        let mut upkeep = self.search.upkeep.get();
        let delay = upkeep.on_change(now_ms(), settle_ms);
        self.search.upkeep.set(upkeep);
        let (Some(delay), Ok(room_id)) = (delay, self.room_id()) else {
            return;
        };
        let env = self.env.clone();
        self.state.wait_until(async move {
            if let Err(e) = ask_upkeep(&env, room_id, delay).await {
                worker::console_error!("asking for search upkeep failed: {e}");
            }
        });
    }

    /// Re-indexes the dirty documents that changed at or before `settled`;
    /// returns how long until the next one settles.
    fn reindex_docs(&self, settled: u64) -> HttpResult<Option<u64>> {
        #[derive(Deserialize)]
        struct Dirty {
            doc: String,
            changed_at: u64,
        }
        let sql = self.state.storage().sql();
        let dirty: Vec<Dirty> = sql
            .exec("SELECT doc, changed_at FROM search_dirty", None)?
            .to_array()?;
        let mut next: Option<u64> = None;
        for d in dirty {
            if d.changed_at > settled {
                let wait = d.changed_at - settled;
                next = Some(next.map_or(wait, |n| n.min(wait)));
                continue;
            }
            let change = match self.doc_store().info(&d.doc)? {
                None => Change::Remove {
                    kind: Kind::Document,
                    id: d.doc.clone(),
                },
                Some(info) => {
                    let roots = self.with_doc(&d.doc, |live| live.text_roots())?;
                    Change::Put(Entry::document(&d.doc, &roots, info.updated_at))
                }
            };
            write(&sql, &change, false)?;
            sql.exec(
                "DELETE FROM search_dirty WHERE doc = ? AND changed_at = ?",
                vec![V::from(d.doc.as_str()), crate::sql::int(d.changed_at)],
            )?;
        }
        Ok(next)
    }

    /// Copies the outbox to D1, batch by batch, until it is empty.
    async fn copy_outbox(&self) -> HttpResult<u64> {
        if self.search.copying.replace(true) {
            return Ok(0);
        }
        let result = self.copy_outbox_batches().await;
        self.search.copying.set(false);
        result
    }

    async fn copy_outbox_batches(&self) -> HttpResult<u64> {
        #[derive(Deserialize)]
        struct Pending {
            seq: u64,
            change: String,
        }
        let room = self.room_id()?;
        let sql = self.state.storage().sql();
        let db = self.env.d1("DB")?;
        let mut copied = 0;
        loop {
            let rows: Vec<Pending> = exec(&sql, &sql::outbox_batch())?.to_array()?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                return Ok(copied);
            };
            let changes: Vec<Change> = rows
                .iter()
                .map(|r| serde_json::from_str(&r.change))
                .collect::<Result<_, _>>()?;
            let batch = sql::copy(&room, changes)
                .iter()
                .map(|s| d1_statement(&db, s))
                .collect::<Result<Vec<_>, _>>()?;
            db.batch(batch).await?;
            sql.exec(
                "DELETE FROM search_outbox WHERE seq <= ?",
                vec![crate::sql::int(last)],
            )?;
            copied += rows.len() as u64;
        }
    }

    /// `/search/…` from the Worker (which has checked the caller's
    /// membership for the routes people reach).
    pub(crate) async fn serve_search(
        &self,
        mut req: worker::Request,
        path: &[&str],
        query: &BTreeMap<String, String>,
    ) -> HttpResult<worker::Response> {
        let sql = self.state.storage().sql();
        let request = || -> HttpResult<Request> {
            Ok(Request::parse(
                query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?)
        };
        let num = |k: &str| -> u32 {
            query
                .get(k)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                .min(rank::FUSE_DEPTH + tessera_core::search::OFFSET_MAX)
        };
        match (req.method(), path) {
            (Method::Get, ["text"]) => {
                super::identity(&req)?;
                let r = request()?;
                // What this room shows is current: documents edited a moment
                // ago are indexed before they are searched.
                self.reindex_docs(u64::MAX)?;
                let found = text_hits(&sql, &r, num("at"), num("take").max(1))?;
                json(200, &serde_json::json!({ "hits": found }))
            }
            (Method::Post, ["semantic"]) => {
                super::identity(&req)?;
                let r = request()?;
                let ask: SemanticAsk =
                    tessera_core::api::parse_json(&req.bytes().await?, BODY_LIMIT)?;
                let q = b64()
                    .decode(&ask.vector)
                    .ok()
                    .and_then(|b| embed::decode(&b))
                    .ok_or_else(|| ApiError::invalid("vector is not an encoded vector"))?;
                let only = ask.only.as_deref();
                if only.is_some_and(|ids| ids.len() > vectorize::TOP_K_MAX as usize) {
                    return Err(ApiError::invalid("only names too many items").into());
                }
                let stored: Vec<(i64, Vec<u8>)> = exec(&sql, &sql::vectors(&r, &ask.model, only))?
                    .raw()
                    .filter_map(|row| match row.ok()?.as_slice() {
                        [V::Integer(id), V::Blob(b)] => Some((*id, b.clone())),
                        _ => None,
                    })
                    .collect();
                let top = embed::top_k(
                    &q,
                    stored.iter().map(|(id, b)| (*id, b.as_slice())),
                    ask.take
                        .min(rank::FUSE_DEPTH + tessera_core::search::OFFSET_MAX)
                        as usize,
                );
                let ids: Vec<i64> = top.iter().map(|(id, _)| *id).collect();
                let mut by_id: BTreeMap<i64, Row> = BTreeMap::new();
                if !ids.is_empty() {
                    let rows: Vec<Row> = exec(&sql, &sql::rows_by_id(&ids))?.to_array()?;
                    by_id = rows.into_iter().map(|r| (r.id, r)).collect();
                }
                let mut found = Vec::new();
                for (id, score) in top {
                    if let Some(mut row) = by_id.remove(&id) {
                        row.score = f64::from(score);
                        found.push(row.into_hit(false, Found::Semantic)?);
                    }
                }
                // Proposed items that are gone: the index may forget them.
                let gone: Vec<i64> = match only {
                    Some(ids) if !ids.is_empty() => exec(&sql, &sql::gone(ids))?
                        .raw()
                        .filter_map(|row| match row.ok()?.as_slice() {
                            [V::Integer(id)] => Some(*id),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                json(200, &serde_json::json!({ "hits": found, "gone": gone }))
            }
            (Method::Post, ["maintain"]) => {
                let unsettled_ms = self.reindex_docs(now_ms().saturating_sub(SETTLE_MS))?;
                let copied = self.copy_outbox().await?;
                json(
                    200,
                    &Maintained {
                        copied,
                        unsettled_ms,
                    },
                )
            }
            (Method::Get, ["unembedded"]) => {
                #[derive(Deserialize)]
                struct R {
                    id: i64,
                    at: u64,
                    title: String,
                    body: String,
                }
                let limit = num("limit").clamp(1, embed::BATCH_MAX as u32);
                let rows: Vec<R> = exec(&sql, &sql::unembedded(limit))?.to_array()?;
                let items: Vec<Unembedded> = rows
                    .into_iter()
                    .map(|r| Unembedded {
                        id: r.id,
                        at: r.at,
                        text: embed::input_text(&r.title, &r.body),
                    })
                    .collect();
                json(200, &serde_json::json!({ "items": items }))
            }
            (Method::Post, ["vectors"]) => {
                let body: Vectors =
                    tessera_core::api::parse_json(&req.bytes().await?, BODY_LIMIT * 4)?;
                let mut stored = 0;
                for v in body.vectors {
                    let Some(bytes) = b64()
                        .decode(&v.data)
                        .ok()
                        .filter(|b| embed::decode(b).is_some())
                    else {
                        return Err(ApiError::invalid("a vector is not an encoded vector").into());
                    };
                    stored += exec(&sql, &sql::store_vector(v.id, v.at, &body.model, bytes))?
                        .rows_written();
                }
                json(200, &serde_json::json!({ "stored": stored }))
            }
            (Method::Post, ["file-text"]) => {
                let body: FileText =
                    tessera_core::api::parse_json(&req.bytes().await?, BODY_LIMIT * 2)?;
                let Some(file) = self.store().file(&body.id)? else {
                    // Deleted meanwhile: nothing to index.
                    return json(200, &serde_json::json!({ "indexed": false }));
                };
                #[derive(Deserialize)]
                struct Uploader {
                    author: String,
                }
                let uploader: Vec<Uploader> =
                    exec(&sql, &sql::author_of(Kind::File, &body.id))?.to_array()?;
                let author = uploader
                    .into_iter()
                    .next()
                    .map(|u| u.author)
                    .unwrap_or_default();
                self.search_put(Entry::file(&file, &author, Some(&body.text), now_ms()))?;
                json(200, &serde_json::json!({ "indexed": true }))
            }
            _ => Err(ApiError::NoRoute.into()),
        }
    }
}

/// Queues the upkeep of a room's index in `delay_secs` (the room object
/// after a change; the Worker while documents are still being edited).
pub async fn ask_upkeep(env: &worker::Env, room_id: String, delay_secs: u32) -> worker::Result<()> {
    let message = worker::MessageBuilder::new(Task::Index { room_id })
        .delay_seconds(delay_secs)
        .build();
    env.queue("JOBS")?.send(message).await
}

/// Encodes a normalised vector as the room object stores and receives it.
pub fn encode_vector(v: &[f32]) -> String {
    b64().encode(embed::encode(v))
}
