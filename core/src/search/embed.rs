//! Embeddings for semantic search, from the AI provider chain: which
//! provider makes them, the requests (OpenAI-compatible `/embeddings`, the
//! Workers AI binding's embedding models) and the parsing of their answers,
//! the stored form of a vector, and the brute-force cosine top-k that the
//! room object runs over its vectors.
//!
//! Vectors of different models cannot be compared, so semantic search uses
//! one model: the first provider in `AI_PROVIDERS` that names an
//! `embedding_model`. Its calls retry like every provider call, but do not
//! fall back to another model. The built-in provider has no embeddings:
//! without an embedding provider, semantic search is unavailable.

use crate::ai::providers::{
    estimate_tokens, http_failure, HttpCall, ProviderConfig, ProviderError, ProviderKind,
};
use serde_json::{json, Value};

/// Characters of an item's text that its embedding is made of.
pub const INPUT_CHARS: usize = 2000;
/// Texts per embedding request.
pub const BATCH_MAX: usize = 32;
/// Largest vector accepted from a provider.
pub const DIMS_MAX: usize = 4096;

/// The text an item's embedding is made of: its title and body as indexed.
pub fn input_text(title: &str, body: &str) -> String {
    format!("{title}\n{body}")
        .chars()
        .filter(|c| *c != super::text::SPLIT)
        .take(INPUT_CHARS)
        .collect()
}

/// The provider that makes embeddings, if any.
pub fn provider(chain: &[ProviderConfig]) -> Option<&ProviderConfig> {
    chain.iter().find(|p| {
        p.kind != ProviderKind::Builtin
            && p.embedding_model.as_deref().is_some_and(|m| !m.is_empty())
    })
}

/// The label stored with every vector of a provider's embedding model.
pub fn model_label(p: &ProviderConfig) -> String {
    format!(
        "{}:{}",
        p.name,
        p.embedding_model.as_deref().unwrap_or_default()
    )
}

/// Why semantic search cannot answer now.
pub const UNAVAILABLE: &str =
    "semantic search is unavailable: no embedding provider is configured \
(give a provider of AI_PROVIDERS an \"embedding_model\"); full-text search works";

/// The request for embeddings of `texts` from an OpenAI-compatible server.
pub fn http_call(p: &ProviderConfig, api_key: Option<&str>, texts: &[String]) -> HttpCall {
    let base = p
        .base_url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(k) = api_key {
        headers.push(("authorization".into(), format!("Bearer {k}")));
    }
    HttpCall {
        url: format!("{base}/embeddings"),
        headers,
        body: json!({ "model": p.embedding_model, "input": texts }),
    }
}

/// The input of a Workers AI embedding model (`@cf/baai/bge-*`).
pub fn workers_ai_input(texts: &[String]) -> Value {
    json!({ "text": texts })
}

/// A provider's embeddings, one per text, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: u64,
}

fn fatal(m: impl Into<String>) -> ProviderError {
    ProviderError::fatal(m)
}

fn vectors_of(rows: Vec<&Value>, n: usize) -> Result<Vec<Vec<f32>>, ProviderError> {
    if rows.len() != n {
        return Err(fatal(format!("{} embeddings for {n} texts", rows.len())));
    }
    let mut dims = None;
    rows.into_iter()
        .map(|row| {
            let raw = row
                .as_array()
                .ok_or_else(|| fatal("an embedding is not an array"))?;
            if raw.is_empty() || raw.len() > DIMS_MAX || *dims.get_or_insert(raw.len()) != raw.len()
            {
                return Err(fatal(
                    "embeddings must have 1 to 4096 dimensions, all alike",
                ));
            }
            let v: Option<Vec<f32>> = raw.iter().map(|x| x.as_f64().map(|f| f as f32)).collect();
            v.and_then(|v| normalise(&v))
                .ok_or_else(|| fatal("an embedding has a value that is not a number, or is zero"))
        })
        .collect()
}

fn estimated(texts: &[String]) -> u64 {
    texts.iter().map(|t| estimate_tokens(t)).sum()
}

/// Reads an OpenAI-compatible `/embeddings` answer for `texts`.
pub fn parse_http_reply(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    texts: &[String],
) -> Result<Embeddings, ProviderError> {
    if let Some(e) = http_failure(status, retry_after, body) {
        return Err(e);
    }
    let v: Value =
        serde_json::from_str(body).map_err(|e| fatal(format!("the answer is not JSON: {e}")))?;
    let mut data: Vec<&Value> = v["data"]
        .as_array()
        .ok_or_else(|| fatal("the answer has no `data`"))?
        .iter()
        .collect();
    // The order of `data` is the `index` of each entry.
    data.sort_by_key(|d| d["index"].as_u64().unwrap_or(u64::MAX));
    let rows = data.iter().map(|d| &d["embedding"]).collect();
    Ok(Embeddings {
        vectors: vectors_of(rows, texts.len())?,
        tokens: v["usage"]["prompt_tokens"]
            .as_u64()
            .or(v["usage"]["total_tokens"].as_u64())
            .unwrap_or_else(|| estimated(texts)),
    })
}

/// Reads a Workers AI embedding answer (`{shape, data: [[…]]}`).
pub fn parse_workers_ai(out: &Value, texts: &[String]) -> Result<Embeddings, ProviderError> {
    let rows = out["data"]
        .as_array()
        .ok_or_else(|| fatal("the answer has no `data`"))?
        .iter()
        .collect();
    Ok(Embeddings {
        vectors: vectors_of(rows, texts.len())?,
        tokens: estimated(texts),
    })
}

/// `v` scaled to length 1 (so a dot product is the cosine); `None` for a
/// zero vector or one with a value that is not finite.
pub fn normalise(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return None;
    }
    Some(v.iter().map(|x| (f64::from(*x) / norm) as f32).collect())
}

/// The stored form: little-endian f32s.
pub fn encode(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

fn dot(a: &[f32], stored: &[u8]) -> Option<f32> {
    if stored.len() != a.len() * 4 {
        return None;
    }
    Some(
        stored
            .chunks_exact(4)
            .zip(a)
            .map(|(c, x)| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * x)
            .sum(),
    )
}

/// The `k` stored vectors nearest to the normalised `query` by cosine, best
/// first; vectors of another length are skipped. Scores the stored bytes in
/// place (no copy per vector).
pub fn top_k<'a>(
    query: &[f32],
    stored: impl IntoIterator<Item = (i64, &'a [u8])>,
    k: usize,
) -> Vec<(i64, f32)> {
    let mut best: Vec<(i64, f32)> = Vec::with_capacity(k + 1);
    for (id, bytes) in stored {
        let Some(score) = dot(query, bytes) else {
            continue;
        };
        if best.len() == k && best.last().is_some_and(|(_, s)| *s >= score) {
            continue;
        }
        let at = best.partition_point(|(_, s)| *s >= score);
        best.insert(at, (id, score));
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::providers::parse_chain;
    use proptest::prelude::*;

    fn chain() -> Vec<ProviderConfig> {
        parse_chain(
            r#"[{"kind":"openai","base_url":"http://h/v1","model":"chat","key":"K"},
                {"kind":"openai","name":"emb","base_url":"http://e/v1/","model":"chat","embedding_model":"text-embed"}]"#,
        )
        .unwrap()
    }

    #[test]
    fn the_first_provider_with_an_embedding_model_makes_them() {
        let chain = chain();
        let p = provider(&chain).unwrap();
        assert_eq!(
            (p.name.as_str(), model_label(p).as_str()),
            ("emb", "emb:text-embed")
        );
        assert!(
            provider(&parse_chain("").unwrap()).is_none(),
            "the built-in provider has none"
        );
        let call = http_call(p, Some("sk"), &["a".into(), "b".into()]);
        assert_eq!(call.url, "http://e/v1/embeddings");
        assert_eq!(
            call.body,
            json!({ "model": "text-embed", "input": ["a", "b"] })
        );
        assert!(call
            .headers
            .contains(&("authorization".into(), "Bearer sk".into())));
        assert_eq!(workers_ai_input(&["x".into()]), json!({ "text": ["x"] }));
        assert_eq!(
            input_text("東\u{E002}京", &"b".repeat(5000))
                .chars()
                .count(),
            INPUT_CHARS
        );
    }

    #[test]
    fn answers_are_read_in_index_order_and_checked() {
        let texts = vec!["one".to_string(), "two".to_string()];
        let body = r#"{"data":[{"index":1,"embedding":[0,2]},{"index":0,"embedding":[3,4]}],"usage":{"prompt_tokens":7}}"#;
        let e = parse_http_reply(200, None, body, &texts).unwrap();
        assert_eq!(e.vectors, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
        assert_eq!(e.tokens, 7);
        for bad in [
            "nope",
            r#"{"data":[{"index":0,"embedding":[1]}]}"#,
            r#"{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[1,2]}]}"#,
            r#"{"data":[{"index":0,"embedding":[0]},{"index":1,"embedding":[1]}]}"#,
            r#"{"data":[{"index":0,"embedding":["x"]},{"index":1,"embedding":[1]}]}"#,
        ] {
            assert!(
                !parse_http_reply(200, None, bad, &texts)
                    .unwrap_err()
                    .retryable,
                "{bad}"
            );
        }
        assert!(
            parse_http_reply(503, None, "down", &texts)
                .unwrap_err()
                .retryable
        );
        let w = parse_workers_ai(
            &json!({ "shape": [2, 2], "data": [[1, 0], [0, 1]] }),
            &texts,
        )
        .unwrap();
        assert_eq!(w.vectors.len(), 2);
        assert_eq!(w.tokens, 2);
    }

    #[test]
    fn the_nearest_vectors_come_first() {
        let q = normalise(&[1.0, 0.0]).unwrap();
        let stored: Vec<(i64, Vec<u8>)> = vec![
            (1, encode(&normalise(&[0.0, 1.0]).unwrap())),
            (2, encode(&normalise(&[1.0, 0.1]).unwrap())),
            (3, encode(&normalise(&[1.0, 1.0]).unwrap())),
            (4, encode(&[1.0, 0.0, 0.0])),
        ];
        let top = top_k(&q, stored.iter().map(|(id, b)| (*id, b.as_slice())), 2);
        assert_eq!(
            top.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(decode(&[1, 2, 3]).is_none());
        assert!(normalise(&[0.0, 0.0]).is_none());
        assert!(normalise(&[f32::NAN]).is_none());
    }

    proptest! {
        #[test]
        fn top_k_is_the_best_k_sorted(vs in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 3), 0..40), k in 0usize..10) {
            let q = [0.5f32, -0.25, 0.8];
            let stored: Vec<(i64, Vec<u8>)> = vs.iter().enumerate().map(|(i, v)| (i as i64, encode(v))).collect();
            let top = top_k(&q, stored.iter().map(|(i, b)| (*i, b.as_slice())), k);
            let mut all: Vec<f32> = vs.iter().map(|v| v.iter().zip(q).map(|(a, b)| a * b).sum()).collect();
            all.sort_by(|a, b| b.total_cmp(a));
            prop_assert_eq!(top.len(), k.min(vs.len()));
            for (i, (_, s)) in top.iter().enumerate() {
                prop_assert!((s - all[i]).abs() < 1e-5);
            }
            let v = decode(&encode(&q)).unwrap();
            prop_assert_eq!(v, q.to_vec());
        }
    }
}
