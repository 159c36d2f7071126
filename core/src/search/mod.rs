//! Search across a room's messages, documents, files, activities and AI
//! check-ins: what is indexed ([`index`]), the tokenising rules ([`text`]),
//! the query syntax and its safe FTS5 form ([`query`]), the SQL both indexes
//! run ([`sql`]: the room object's SQLite and D1 share it), highlighted
//! snippets ([`snippet`]), ranking and fusion ([`rank`]), the embeddings
//! of semantic search ([`embed`]) and the Vectorize index that may propose
//! their candidates ([`vectorize`]). `docs/search.md` tells the design.
//!
//! This module also reads a search request's parameters
//! (`GET /api/v1/search?q=&room=&kind=&from=&after=&before=&limit=&cursor=&mode=`).

pub mod embed;
pub mod index;
pub mod query;
pub mod rank;
pub mod snippet;
pub mod sql;
pub mod text;
pub mod vectorize;

use crate::ApiError;
pub use index::Kind;
pub use query::Query;

pub const LIMIT_DEFAULT: u32 = 20;
pub const LIMIT_MAX: u32 = 50;
/// How deep results can be paged (ranked lists are cut there).
pub const OFFSET_MAX: u32 = 500;

/// Which ranking answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Full text (BM25 with a recency boost).
    Text,
    /// Embeddings only (nearest by cosine).
    Semantic,
    /// Both lists fused by reciprocal rank.
    Hybrid,
}

/// A validated search request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub query: Query,
    pub room: Option<String>,
    /// Empty: every kind.
    pub kinds: Vec<Kind>,
    /// Only items by this user id.
    pub from: Option<String>,
    /// Unix milliseconds, exclusive.
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub limit: u32,
    pub offset: u32,
    pub mode: Mode,
}

/// A time bound: unix milliseconds, or a UTC day `YYYY-MM-DD` (its start).
fn time_bound(name: &str, v: &str) -> Result<u64, ApiError> {
    v.parse::<u64>()
        .ok()
        .or_else(|| crate::dates::parse_day(v).map(|secs| secs * 1000))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{name} must be unix milliseconds or a date YYYY-MM-DD"
            ))
        })
}

fn id_param(name: &str, v: &str) -> Result<String, ApiError> {
    if crate::ids::is_valid_path_param(v) {
        Ok(v.to_string())
    } else {
        Err(ApiError::invalid(format!("{name} is not a valid id")))
    }
}

impl Request {
    /// Reads the query string's pairs; unknown parameters are ignored.
    pub fn parse<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Request, ApiError> {
        let mut q = None;
        let mut req = Request {
            query: Query { terms: Vec::new() },
            room: None,
            kinds: Vec::new(),
            from: None,
            after: None,
            before: None,
            limit: LIMIT_DEFAULT,
            offset: 0,
            mode: Mode::Text,
        };
        for (k, v) in pairs {
            match k {
                "q" => q = Some(v),
                "room" => req.room = Some(id_param("room", v)?),
                "kind" => {
                    for kind in v.split(',').filter(|s| !s.is_empty()) {
                        let kind: Kind = kind.parse()?;
                        if !req.kinds.contains(&kind) {
                            req.kinds.push(kind);
                        }
                    }
                }
                "from" => req.from = Some(id_param("from", v)?),
                "after" => req.after = Some(time_bound("after", v)?),
                "before" => req.before = Some(time_bound("before", v)?),
                "limit" => {
                    req.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=LIMIT_MAX).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid(format!("limit must be 1 to {LIMIT_MAX}"))
                        })?;
                }
                "cursor" => req.offset = rank::parse_cursor(v)?,
                "mode" => {
                    req.mode = match v {
                        "text" => Mode::Text,
                        "semantic" => Mode::Semantic,
                        "hybrid" => Mode::Hybrid,
                        _ => {
                            return Err(ApiError::invalid("mode must be text, semantic or hybrid"))
                        }
                    }
                }
                _ => {}
            }
        }
        let q = q.ok_or_else(|| ApiError::invalid("q is required"))?;
        req.query = Query::parse(q)?;
        if let (Some(a), Some(b)) = (req.after, req.before) {
            if a >= b {
                return Err(ApiError::invalid("after must be earlier than before"));
            }
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Request, ApiError> {
        let pairs: Vec<(&str, &str)> = q.split('&').filter_map(|kv| kv.split_once('=')).collect();
        Request::parse(pairs.into_iter())
    }

    #[test]
    fn parameters_are_read_and_checked() {
        let r = parse("q=plan&room=r1&kind=message,file&kind=file&from=u1&after=2026-01-02&before=1800000000000&limit=5&cursor=10&mode=hybrid&x=y").unwrap();
        assert_eq!(r.room.as_deref(), Some("r1"));
        assert_eq!(r.kinds, vec![Kind::Message, Kind::File]);
        assert_eq!(r.from.as_deref(), Some("u1"));
        assert_eq!(r.after, Some(1_767_312_000_000));
        assert_eq!(r.before, Some(1_800_000_000_000));
        assert_eq!((r.limit, r.offset, r.mode), (5, 10, Mode::Hybrid));
        let d = parse("q=plan").unwrap();
        assert_eq!(
            (d.limit, d.offset, d.mode, d.kinds.len()),
            (LIMIT_DEFAULT, 0, Mode::Text, 0)
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        for q in [
            "room=r1",
            "q=a&kind=nope",
            "q=a&limit=0",
            "q=a&limit=51",
            "q=a&after=yesterday",
            "q=a&after=5&before=5",
            "q=a&room=a'b",
            "q=a&cursor=-1",
            "q=a&mode=vibes",
            "q=\"open",
        ] {
            assert_eq!(parse(q).unwrap_err().status(), 400, "{q}");
        }
    }
}
