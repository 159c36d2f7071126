//! `GET /api/v1/search` and the search upkeep task.
//!
//! A search in one room (`room=`) asks that room's object, whose index is
//! written with every change, after checking the caller's membership now. A
//! search across rooms is one query on D1's index, fed by the rooms'
//! outboxes and filtered by the caller's memberships in the same query, so
//! a person removed from a room stops finding it at once. Semantic search
//! embeds the query through the AI provider chain (charged to the rooms
//! searched) and asks the room objects for their nearest vectors (among the
//! candidates of the Vectorize index, when one is bound); hybrid
//! fuses both lists by reciprocal rank. Everything else is
//! `tessera_core::search`.

use crate::ai::{
    account, api_key, attempt, breakers, chain, post, require_budget, run_workers_ai,
    usage_statements,
};
use crate::ctx::{arg, now_ms, Ctx};
use crate::tokens::authenticate;
use crate::vectorize;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use tessera_core::ai::providers::{estimate_tokens, ProviderConfig, ProviderError, ProviderKind};
use tessera_core::ai::CallRecord;
use tessera_core::protocol::Identity;
use tessera_core::rooms::Role;
use tessera_core::search::embed::{self, Embeddings};
use tessera_core::search::rank::{fuse, next_cursor, FUSE_DEPTH};
use tessera_core::search::sql::{self, Found, Hit, Row, Scope};
use tessera_core::search::{Mode, Request};
use tessera_core::ApiError;
use tessera_durable_objects::http::{json as respond, HttpResult};
use tessera_durable_objects::room::search::{
    ask_upkeep, d1_statement, encode_vector, Maintained, StoredVector, Unembedded,
};
use tessera_durable_objects::room_client;
use worker::{Env, Headers, Method, Response};

/// Rooms a cross-room semantic search asks at most (one call each): the
/// caller's most recently active.
const SEMANTIC_ROOMS_MAX: u32 = 50;
/// Embedding batches one upkeep task makes before it hands over to another.
const EMBED_BATCHES_PER_TASK: usize = 8;

/// Where a search looks.
enum Target {
    Room {
        id: String,
        name: String,
        headers: Headers,
    },
    Rooms {
        user: String,
    },
}

#[derive(Deserialize)]
struct Hits {
    hits: Vec<Hit>,
    /// Of the candidates a vector index proposed, those deleted since.
    #[serde(default)]
    gone: Vec<i64>,
}

pub async fn search(ctx: &Ctx, req: worker::Request) -> HttpResult<Response> {
    let user = authenticate(ctx, &req).await?;
    let url = req.url()?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let r = Request::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let qs = url.query().unwrap_or_default().to_string();
    let target = match &r.room {
        Some(id) => {
            let m = crate::access::membership(ctx, id, &user).await?;
            Target::Room {
                id: id.clone(),
                name: m.name,
                headers: searcher(ctx, &user, m.role)?,
            }
        }
        None => Target::Rooms { user: user.clone() },
    };
    let chain = chain(&ctx.env)?;
    let embedder = embed::provider(&chain);
    let take = r.limit + 1;
    let mut semantic = json!({ "available": embedder.is_some() });
    match embedder {
        None => semantic["reason"] = json!(embed::UNAVAILABLE),
        Some(_) => {
            let index = vectorize::bound(&ctx.env).map_or("rooms", |_| "vectorize");
            semantic["index"] = json!(index);
        }
    }
    let mut hits = match (r.mode, embedder) {
        (Mode::Semantic, None) => {
            // Not a passing outage (that is the 503 below) but how this
            // deployment is set up: the caller asks for what it does not offer.
            return Err(ApiError::Conflict {
                code: tessera_core::error::code::SEMANTIC_UNAVAILABLE,
                message: embed::UNAVAILABLE.into(),
            }
            .into());
        }
        (Mode::Text, _) | (Mode::Hybrid, None) => {
            text(ctx, &target, &r, &qs, r.offset, take).await?
        }
        (Mode::Semantic, Some(p)) => {
            let vector = query_vector(&ctx.env, p, &target, &user, &r).await?;
            let mut found = nearest(ctx, &target, &qs, p, &vector, r.offset + take).await?;
            found.drain(..(r.offset as usize).min(found.len()));
            found
        }
        (Mode::Hybrid, Some(p)) => {
            let by_text = text(ctx, &target, &r, &qs, 0, FUSE_DEPTH).await?;
            let by_meaning = match query_vector(&ctx.env, p, &target, &user, &r).await {
                Ok(vector) => nearest(ctx, &target, &qs, p, &vector, FUSE_DEPTH).await,
                Err(e) => Err(e),
            };
            match by_meaning {
                Ok(by_meaning) => fused(by_text, by_meaning, r.offset, take),
                // Full text still answers; the reason is given.
                Err(e) => {
                    semantic = json!({ "available": false, "reason": e.0.to_string() });
                    by_text
                        .into_iter()
                        .skip(r.offset as usize)
                        .take(take as usize)
                        .collect()
                }
            }
        }
    };
    let more = hits.len() > r.limit as usize;
    hits.truncate(r.limit as usize);
    if let Target::Room { name, .. } = &target {
        for h in &mut hits {
            h.room_name.clone_from(name);
        }
    }
    respond(
        200,
        &json!({
            "results": hits,
            "next_cursor": next_cursor(r.offset, r.limit, more),
            "mode": r.mode,
            "scope": if r.room.is_some() { "room" } else { "rooms" },
            "semantic": semantic,
        }),
    )
}

/// What the room object is told of the caller (only that the Worker checked
/// them, with their role: search needs no display name, which spares a query).
fn searcher(ctx: &Ctx, user: &str, role: Role) -> HttpResult<Headers> {
    let who = Identity {
        user_id: user.to_string(),
        display_name: String::new(),
        role,
    };
    let headers = Headers::new();
    headers.set("x-tessera-identity", &who.to_header())?;
    headers.set("x-request-id", &ctx.request_id)?;
    Ok(headers)
}

/// Full-text hits: from the room's object, or from D1 across the caller's rooms.
async fn text(
    ctx: &Ctx,
    target: &Target,
    r: &Request,
    qs: &str,
    offset: u32,
    take: u32,
) -> HttpResult<Vec<Hit>> {
    match target {
        Target::Room { id, headers, .. } => {
            let path = format!("/search/text?{qs}&at={offset}&take={take}");
            let found: Hits =
                room_client::call_json(&ctx.env, id, Method::Get, &path, headers.clone(), None)
                    .await?;
            // The room object's rows are its own (room id ""): named here.
            Ok(found
                .hits
                .into_iter()
                .map(|h| Hit {
                    room_id: id.clone(),
                    ..h
                })
                .collect())
        }
        Target::Rooms { user } => {
            let db = ctx.db()?;
            let statement = sql::search(r, Scope::MemberOf(user), now_ms(), offset, take);
            let rows: Vec<Row> = d1_statement(&db, &statement)?.all().await?.results()?;
            Ok(rows
                .into_iter()
                .map(|row| row.into_hit(true, Found::Text))
                .collect::<Result<_, _>>()?)
        }
    }
}

/// The rooms a semantic search asks: id, name and what to tell the room.
async fn rooms_of(ctx: &Ctx, target: &Target) -> HttpResult<Vec<(String, String, Headers)>> {
    #[derive(Deserialize)]
    struct R {
        id: String,
        name: String,
        role: String,
    }
    match target {
        Target::Room { id, name, headers } => Ok(vec![(id.clone(), name.clone(), headers.clone())]),
        Target::Rooms { user } => ctx
            .db()?
            .prepare(
                "SELECT r.id, r.name, m.role FROM memberships m JOIN rooms r ON r.id = m.room_id
                 WHERE m.user_id = ?1 ORDER BY COALESCE(r.last_activity_at, r.created_at) DESC LIMIT ?2",
            )
            .bind(&[arg(user.as_str()), arg(SEMANTIC_ROOMS_MAX)])?
            .all()
            .await?
            .results::<R>()?
            .into_iter()
            .map(|r| Ok((r.id, r.name, searcher(ctx, user, r.role.parse()?)?)))
            .collect(),
    }
}

/// The query's embedding, charged to the rooms searched: the room of a
/// one-room search (refused when its budget is spent), in equal shares to
/// the rooms of a cross-room search; in each, to the share of the member who
/// searched.
async fn query_vector(
    env: &Env,
    p: &ProviderConfig,
    target: &Target,
    user: &str,
    r: &Request,
) -> HttpResult<Vec<f32>> {
    let text = r.query.plain();
    if let Target::Room { id, .. } = target {
        require_budget(env, id, Some(user), estimate_tokens(&text)).await?;
    }
    let (got, calls) = embed_texts(env, p, std::slice::from_ref(&text)).await;
    match target {
        Target::Room { id, .. } => account(env, id, Some(user), &calls).await?,
        Target::Rooms { .. } => {
            let rooms: Vec<String> = env
                .d1("DB")?
                .prepare("SELECT room_id FROM memberships WHERE user_id = ?1")
                .bind(&[arg(user)])?
                .all()
                .await?
                .results::<HashMap<String, String>>()?
                .into_iter()
                .filter_map(|mut m| m.remove("room_id"))
                .collect();
            let n = rooms.len().max(1) as u64;
            let shares: Vec<CallRecord> = calls
                .iter()
                .map(|c| CallRecord {
                    tokens_in: c.tokens_in.div_ceil(n),
                    tokens_out: c.tokens_out.div_ceil(n),
                    cost_micros: c.cost_micros.div_ceil(n),
                    ..c.clone()
                })
                .collect();
            // One D1 round trip for every room's share, not one per room.
            let db = env.d1("DB")?;
            let mut statements = Vec::new();
            for room in &rooms {
                statements.extend(usage_statements(&db, room, Some(user), &shares)?);
            }
            if !statements.is_empty() {
                db.batch(statements).await?;
            }
        }
    }
    got.and_then(|e| e.vectors.into_iter().next())
        .ok_or_else(|| {
            let why = calls.last().map_or("no answer", |c| c.outcome.as_str());
            ApiError::Unavailable(format!(
                "semantic search is unavailable now: the embedding provider failed ({why})"
            ))
            .into()
        })
}

/// The stored vectors nearest to `vector`, best first, from each room asked:
/// of all its vectors, or of the candidates the Vectorize index proposed
/// for it when the deployment has one (rooms with none are not asked).
async fn nearest(
    ctx: &Ctx,
    target: &Target,
    qs: &str,
    p: &ProviderConfig,
    vector: &[f32],
    take: u32,
) -> HttpResult<Vec<Hit>> {
    let rooms = rooms_of(ctx, target).await?;
    let index = vectorize::bound(&ctx.env);
    let asks: Vec<_> = match &index {
        Some(index) => {
            let proposed = {
                let ids: Vec<&str> = rooms.iter().map(|(id, _, _)| id.as_str()).collect();
                index.nearest(vector, &ids, take).await?
            };
            rooms
                .into_iter()
                .zip(proposed)
                .filter(|(_, only)| !only.is_empty())
                .map(|(room, only)| (room, Some(only)))
                .collect()
        }
        None => rooms.into_iter().map(|room| (room, None)).collect(),
    };
    let path = &format!("/search/semantic?{qs}");
    // Encoded once: the same query goes to every room asked.
    let ask =
        json!({ "model": embed::model_label(p), "vector": encode_vector(vector), "take": take });
    let calls = asks.iter().map(|((id, _, headers), only)| {
        let mut body = ask.clone();
        if let Some(only) = only {
            body["only"] = json!(only);
        }
        async move {
            room_client::call_json::<Hits>(
                &ctx.env,
                id,
                Method::Post,
                path,
                headers.clone(),
                Some(&body),
            )
            .await
        }
    });
    let mut found = Vec::new();
    let mut gone = Vec::new();
    for (((id, name, _), _), answer) in asks.iter().zip(futures_util::future::join_all(calls).await)
    {
        let answer = answer?;
        if !answer.gone.is_empty() {
            gone.push((id, answer.gone));
        }
        for mut h in answer.hits {
            h.room_id = id.clone();
            h.room_name = name.clone();
            found.push(h);
        }
    }
    if let Some(index) = &index {
        // The gone are only never found again: a failure here loses nothing.
        let forgetting = gone.iter().map(|(id, items)| index.forget(id, items));
        for e in futures_util::future::join_all(forgetting)
            .await
            .into_iter()
            .filter_map(Result::err)
        {
            worker::console_log!("vector index cleanup: {e}");
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found.truncate(take as usize);
    Ok(found)
}

/// The two ranked lists fused by reciprocal rank; a hit in both keeps its
/// highlighted text form.
fn fused(by_text: Vec<Hit>, by_meaning: Vec<Hit>, offset: u32, take: u32) -> Vec<Hit> {
    let key = |h: &Hit| (h.room_id.clone(), h.kind, h.id.clone());
    let lists = [
        by_text.iter().map(key).collect::<Vec<_>>(),
        by_meaning.iter().map(key).collect::<Vec<_>>(),
    ];
    let in_both: std::collections::HashSet<_> = lists[1]
        .iter()
        .filter(|k| lists[0].contains(k))
        .cloned()
        .collect();
    let mut pool: HashMap<_, Hit> = by_meaning.into_iter().map(|h| (key(&h), h)).collect();
    pool.extend(by_text.into_iter().map(|h| (key(&h), h)));
    fuse(&lists)
        .into_iter()
        .skip(offset as usize)
        .take(take as usize)
        .filter_map(|(k, score)| {
            let mut h = pool.remove(&k)?;
            h.score = score;
            if in_both.contains(&k) {
                h.found = Found::Both;
            }
            Some(h)
        })
        .collect()
}

/// Embeddings of `texts` from the embedding provider, with the calls made.
async fn embed_texts(
    env: &Env,
    p: &ProviderConfig,
    texts: &[String],
) -> (Option<Embeddings>, Vec<CallRecord>) {
    let breaker = breakers(env)
        .await
        .unwrap_or_default()
        .remove(&p.name)
        .unwrap_or_default();
    let mut calls = Vec::new();
    let got = attempt(
        env,
        p,
        breaker,
        &mut calls,
        || send_embeddings(env, p, texts),
        |e: &Embeddings, ms| CallRecord {
            provider: p.name.clone(),
            model: p.embedding_model.clone(),
            tokens_in: e.tokens,
            tokens_out: 0,
            cost_micros: p.cost_micros(e.tokens, 0),
            outcome: "ok".into(),
            ms,
        },
    )
    .await;
    (got, calls)
}

async fn send_embeddings(
    env: &Env,
    p: &ProviderConfig,
    texts: &[String],
) -> Result<Embeddings, ProviderError> {
    let model = p.embedding_model.clone().unwrap_or_default();
    if p.kind == ProviderKind::WorkersAi {
        let out = run_workers_ai(env, model, embed::workers_ai_input(texts), p.timeout_ms).await?;
        return embed::parse_workers_ai(&out, texts);
    }
    let key = api_key(env, p)?;
    let call = embed::http_call(p, key.as_deref(), texts);
    let (status, retry_after, body) = post(&call, p.timeout_ms).await?;
    embed::parse_http_reply(status, retry_after.as_deref(), &body, texts)
}

/// The upkeep task (`Task::Index`): the room copies its outbox to D1 and
/// re-indexes settled documents (asked again while some are still being
/// edited); then its items without an embedding are embedded, within its
/// AI budget.
pub async fn upkeep(env: &Env, room_id: &str) -> HttpResult<()> {
    let done: Maintained = room_client::call_json(
        env,
        room_id,
        Method::Post,
        "/search/maintain",
        Headers::new(),
        None,
    )
    .await?;
    if let Some(ms) = done.unsettled_ms {
        ask_upkeep(env, room_id.to_string(), ms.div_ceil(1000).max(1) as u32).await?;
    }
    let chain = chain(env)?;
    let Some(p) = embed::provider(&chain) else {
        return Ok(());
    };
    #[derive(Deserialize)]
    struct Pending {
        items: Vec<Unembedded>,
    }
    for _ in 0..EMBED_BATCHES_PER_TASK {
        let path = format!("/search/unembedded?limit={}", embed::BATCH_MAX);
        let pending: Pending =
            room_client::call_json(env, room_id, Method::Get, &path, Headers::new(), None).await?;
        if pending.items.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = pending.items.iter().map(|i| i.text.clone()).collect();
        let needed: u64 = texts.iter().map(|t| estimate_tokens(t)).sum();
        if let Err(e) = require_budget(env, room_id, None, needed).await {
            worker::console_log!("embeddings of room {room_id} wait: {}", e.0);
            return Ok(());
        }
        let (got, calls) = embed_texts(env, p, &texts).await;
        account(env, room_id, None, &calls).await?;
        let Some(e) = got else {
            // The provider failed (its calls are recorded): the next change tries again.
            return Ok(());
        };
        // Upserted first: an item the room stores is in the index, and a
        // failure here retries the task before the room marks it embedded.
        if let Some(index) = vectorize::bound(env) {
            let items: Vec<(i64, &[f32])> = pending
                .items
                .iter()
                .zip(&e.vectors)
                .map(|(item, v)| (item.id, v.as_slice()))
                .collect();
            index.put(room_id, &items).await?;
        }
        let vectors: Vec<StoredVector> = pending
            .items
            .iter()
            .zip(&e.vectors)
            .map(|(item, v)| StoredVector {
                id: item.id,
                at: item.at,
                data: encode_vector(v),
            })
            .collect();
        let body = json!({ "model": embed::model_label(p), "vectors": vectors });
        let _: serde_json::Value = room_client::call_json(
            env,
            room_id,
            Method::Post,
            "/search/vectors",
            Headers::new(),
            Some(&body),
        )
        .await?;
        if pending.items.len() < embed::BATCH_MAX {
            return Ok(());
        }
    }
    // More to embed: another task takes over.
    Ok(ask_upkeep(env, room_id.to_string(), 0).await?)
}

/// Tells the room's object the text of an analysed file.
pub async fn file_text(env: &Env, room_id: &str, file_id: &str, text: &str) -> HttpResult<()> {
    let mut end = text.len().min(tessera_core::search::index::TEXT_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    room_client::tell(
        env,
        room_id,
        "/search/file-text",
        &json!({ "id": file_id, "text": text }),
    )
    .await
}

/// Forgets a deleted room's rows in the cross-room index.
pub async fn purge_room(env: &Env, room_id: &str) -> HttpResult<()> {
    let db = env.d1("DB")?;
    let statements = sql::purge_room(room_id)
        .iter()
        .map(|s| d1_statement(&db, s))
        .collect::<Result<Vec<_>, _>>()?;
    db.batch(statements).await?;
    Ok(())
}
