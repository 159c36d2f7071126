//! The SQL of both indexes, as statements to run. The room object's SQLite
//! and D1 hold the same two tables (`search_items` and the FTS5 table
//! `search_text`, one row each per item, sharing the id); the room object
//! keeps its own rows under the room id `""` and, beside them, its outbox to
//! D1, the embeddings and the documents waiting to be re-indexed. Every
//! value is a bound parameter; the only SQL built at run time is the list of
//! placeholders and filters chosen by this code, never text from a request.

use super::index::{link, Change, Entry, Kind};
use super::rank::{BODY_WEIGHT, RECENCY_HALF_MS, RECENCY_WEIGHT, TITLE_WEIGHT};
use super::snippet::Snippet;
use super::text::{MARK_CLOSE, MARK_OPEN};
use super::Request;
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// Tables of both indexes (the D1 migration `0008_search.sql` creates the same).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS search_items (
  id INTEGER PRIMARY KEY,
  room_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  ref_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  author TEXT NOT NULL,
  seq INTEGER,
  UNIQUE (room_id, kind, ref_id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(title, body, prefix = '2 3', tokenize = \"unicode61 remove_diacritics 2 separators '\u{E002}'\");
";

/// Tables only the room object has: the outbox of changes for D1, one
/// embedding per item (normalised little-endian f32), and the documents
/// changed since they were last indexed.
pub const ROOM_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS search_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, change TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS search_vectors (item INTEGER PRIMARY KEY, model TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS search_dirty (doc TEXT PRIMARY KEY, changed_at INTEGER NOT NULL);
";

/// Words around a match in a body snippet.
const SNIPPET_TOKENS: u32 = 24;
/// Characters of a snippet without matches (semantic hits).
pub const PLAIN_SNIPPET_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg::Text(s.to_string())
    }
}

impl From<u64> for Arg {
    fn from(n: u64) -> Arg {
        Arg::Int(n.min(i64::MAX as u64) as i64)
    }
}

impl From<Option<u64>> for Arg {
    fn from(n: Option<u64>) -> Arg {
        n.map_or(Arg::Null, Arg::from)
    }
}

/// One statement and its arguments, in placeholder order (`?`).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub args: Vec<Arg>,
}

fn stmt(sql: impl Into<String>, args: Vec<Arg>) -> Statement {
    Statement {
        sql: sql.into(),
        args,
    }
}

const ITEM: &str = "SELECT id FROM search_items WHERE room_id = ? AND kind = ? AND ref_id = ?";

fn item_args(room: &str, kind: Kind, id: &str) -> Vec<Arg> {
    vec![room.into(), kind.as_str().into(), id.into()]
}

/// The room id of the room object's own rows.
const OWN: &str = "";

/// What the room object writes in its own index for a change. `fresh` says
/// the item cannot have been indexed before (a new message), which spares
/// the deletes.
pub fn apply(change: &Change, fresh: bool) -> Vec<Statement> {
    let (kind, id) = change.key();
    let mut out = Vec::with_capacity(4);
    if !fresh {
        out.push(stmt(
            format!("DELETE FROM search_vectors WHERE item IN ({ITEM})"),
            item_args(OWN, kind, id),
        ));
        out.push(stmt(
            format!("DELETE FROM search_text WHERE rowid IN ({ITEM})"),
            item_args(OWN, kind, id),
        ));
    }
    match change {
        Change::Put(e) => out.extend(put(e)),
        Change::Remove { .. } => out.push(stmt(
            "DELETE FROM search_items WHERE room_id = ? AND kind = ? AND ref_id = ?",
            item_args(OWN, kind, id),
        )),
    }
    out
}

fn put(e: &Entry) -> [Statement; 2] {
    let mut text_args = vec![e.title.as_str().into(), e.body.as_str().into()];
    text_args.extend(item_args(OWN, e.kind, &e.id));
    [
        stmt(
            "INSERT INTO search_items (room_id, kind, ref_id, at, author, seq) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (room_id, kind, ref_id) DO UPDATE SET at = excluded.at,
               author = excluded.author, seq = excluded.seq",
            vec![
                OWN.into(),
                e.kind.as_str().into(),
                e.id.as_str().into(),
                e.at.into(),
                e.author.as_str().into(),
                e.seq.into(),
            ],
        ),
        stmt(
            "INSERT INTO search_text (rowid, title, body)
             SELECT id, ?, ? FROM search_items WHERE room_id = ? AND kind = ? AND ref_id = ?",
            text_args,
        ),
    ]
}

/// Largest JSON argument of one copy statement: D1 bounds a bound value at
/// 2 MB, and an item's text is at most about half of this once escaped.
const COPY_CHUNK_BYTES: usize = 1_000_000;

/// The item of a change as `json_each` reads it in [`copy`].
fn copy_item(change: &Change) -> serde_json::Value {
    let (kind, id) = change.key();
    match change {
        Change::Put(e) => serde_json::json!({
            "k": kind.as_str(), "i": id, "p": 1, "t": e.title, "b": e.body,
            "a": e.at, "u": e.author, "s": e.seq,
        }),
        Change::Remove { .. } => serde_json::json!({ "k": kind.as_str(), "i": id, "p": 0 }),
    }
}

/// What D1 writes for a batch of the outbox's changes in `room`, oldest
/// first, coalesced to the last per item: four statements per megabyte, the
/// changes passed as one JSON argument that `json_each` reads, where
/// [`apply`] takes three statements per change. D1 bounds a statement at 100
/// arguments, and in `wrangler dev` each statement costs the thread the room
/// runs on.
pub fn copy(room: &str, changes: Vec<Change>) -> Vec<Statement> {
    // CROSS JOIN keeps the batch the outer loop, each item one index
    // lookup; left to itself SQLite scans the room's every row per batch.
    const KEY: &str = "s.room_id = ? AND s.kind = json_extract(j.value, '$.k') \
                       AND s.ref_id = json_extract(j.value, '$.i')";
    let mut chunks: Vec<String> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    let mut size = 0;
    for change in super::index::coalesce(changes) {
        let item = copy_item(&change).to_string();
        if !items.is_empty() && size + item.len() > COPY_CHUNK_BYTES {
            chunks.push(format!("[{}]", items.join(",")));
            items.clear();
            size = 0;
        }
        size += item.len() + 1;
        items.push(item);
    }
    if !items.is_empty() {
        chunks.push(format!("[{}]", items.join(",")));
    }
    let mut out = Vec::with_capacity(chunks.len() * 4);
    for json in chunks {
        out.push(stmt(
            format!(
                "DELETE FROM search_text WHERE rowid IN
                 (SELECT s.id FROM json_each(?) j CROSS JOIN search_items s ON {KEY})"
            ),
            vec![json.as_str().into(), room.into()],
        ));
        out.push(stmt(
            format!(
                "DELETE FROM search_items WHERE id IN
                 (SELECT s.id FROM json_each(?) j CROSS JOIN search_items s ON {KEY}
                  WHERE json_extract(j.value, '$.p') = 0)"
            ),
            vec![json.as_str().into(), room.into()],
        ));
        out.push(stmt(
            "INSERT INTO search_items (room_id, kind, ref_id, at, author, seq)
             SELECT ?, json_extract(value, '$.k'), json_extract(value, '$.i'),
               json_extract(value, '$.a'), json_extract(value, '$.u'), json_extract(value, '$.s')
             FROM json_each(?) WHERE json_extract(value, '$.p') = 1
             ON CONFLICT (room_id, kind, ref_id) DO UPDATE SET at = excluded.at,
               author = excluded.author, seq = excluded.seq",
            vec![room.into(), json.as_str().into()],
        ));
        out.push(stmt(
            format!(
                "INSERT INTO search_text (rowid, title, body)
                 SELECT s.id, json_extract(j.value, '$.t'), json_extract(j.value, '$.b')
                 FROM json_each(?) j CROSS JOIN search_items s ON {KEY}
                 WHERE json_extract(j.value, '$.p') = 1"
            ),
            vec![json.as_str().into(), room.into()],
        ));
    }
    out
}

/// Outbox rows a copy to D1 takes at most, and the bytes of changes it takes
/// once it has one (a document's or file's text is up to 256 KB). Under
/// `wrangler dev` batches of 50 stalled the room 120–170 ms at p99
/// (BENCHMARKS.md): each D1 batch is a round trip and a commit.
pub const OUTBOX_BATCH: u64 = 500;
pub const OUTBOX_BATCH_BYTES: u64 = 4 * 1024 * 1024;

/// The oldest outbox rows for one copy: rows of (seq, change).
pub fn outbox_batch() -> Statement {
    stmt(
        "SELECT seq, change FROM (
           SELECT seq, change, SUM(length(CAST(change AS BLOB))) OVER (ORDER BY seq)
             - length(CAST(change AS BLOB)) AS before
           FROM search_outbox ORDER BY seq LIMIT ?)
         WHERE before < ?",
        vec![OUTBOX_BATCH.into(), OUTBOX_BATCH_BYTES.into()],
    )
}

/// Who an item is by: a row of (author).
pub fn author_of(kind: Kind, id: &str) -> Statement {
    stmt(
        "SELECT author FROM search_items WHERE room_id = '' AND kind = ? AND ref_id = ?",
        vec![kind.as_str().into(), id.into()],
    )
}

/// Every row of a room (D1, when the room is deleted).
pub fn purge_room(room: &str) -> Vec<Statement> {
    vec![
        stmt(
            "DELETE FROM search_text WHERE rowid IN (SELECT id FROM search_items WHERE room_id = ?)",
            vec![room.into()],
        ),
        stmt(
            "DELETE FROM search_items WHERE room_id = ?",
            vec![room.into()],
        ),
    ]
}

/// Whose items a search sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The room object's own index.
    Room,
    /// D1: the rooms this user is a member of now.
    MemberOf(&'a str),
}

/// The filters of a request on `search_items i`, and their arguments.
fn filters(req: &Request, scope: Scope, args: &mut Vec<Arg>) -> String {
    let mut sql = String::new();
    match scope {
        Scope::Room => {
            sql.push_str(" AND i.room_id = ''");
        }
        Scope::MemberOf(user) => {
            sql.push_str(" AND i.room_id IN (SELECT room_id FROM memberships WHERE user_id = ?)");
            args.push(user.into());
        }
    }
    if !req.kinds.is_empty() {
        sql.push_str(&format!(" AND i.kind IN ({})", marks(req.kinds.len())));
        args.extend(req.kinds.iter().map(|k| Arg::from(k.as_str())));
    }
    if let Some(from) = &req.from {
        sql.push_str(" AND i.author = ?");
        args.push(from.as_str().into());
    }
    if let Some(after) = req.after {
        sql.push_str(" AND i.at > ?");
        args.push(after.into());
    }
    if let Some(before) = req.before {
        sql.push_str(" AND i.at < ?");
        args.push(before.into());
    }
    sql
}

fn room_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Room => "''",
        Scope::MemberOf(_) => "COALESCE((SELECT name FROM rooms WHERE id = i.room_id), '')",
    }
}

/// Full-text search: the page of `limit` (and one more, to know whether
/// another page follows) from `offset`, ranked by BM25 with the recency
/// boost, highlighted. The ranking runs first without snippets; only the
/// page's rows are highlighted.
pub fn search(req: &Request, scope: Scope, now_ms: u64, offset: u32, limit: u32) -> Statement {
    let matched = req.query.to_match();
    let mut args: Vec<Arg> = vec![
        Arg::Real(TITLE_WEIGHT),
        Arg::Real(BODY_WEIGHT),
        Arg::Real(RECENCY_WEIGHT),
        now_ms.into(),
        Arg::Real(RECENCY_HALF_MS),
        Arg::Text(matched.clone()),
    ];
    let filters = filters(req, scope, &mut args);
    args.push(u64::from(limit).into());
    args.push(u64::from(offset).into());
    args.extend([
        Arg::Text(MARK_OPEN.into()),
        Arg::Text(MARK_CLOSE.into()),
        Arg::Text(MARK_OPEN.into()),
        Arg::Text(MARK_CLOSE.into()),
        Arg::Text(matched),
    ]);
    let sql = format!(
        "WITH top AS (
           SELECT i.id AS id,
             bm25(search_text, ?, ?) * (1.0 + ? / (1.0 + MAX(0, ? - i.at) / ?)) AS score
           FROM search_text JOIN search_items i ON i.id = search_text.rowid
           WHERE search_text MATCH ?{filters}
           ORDER BY score LIMIT ? OFFSET ?)
         SELECT i.id AS id, i.room_id AS room_id, {room} AS room_name, i.kind AS kind, i.ref_id AS ref_id,
           i.at AS at, i.author AS author, i.seq AS seq,
           highlight(search_text, 0, ?, ?) AS title,
           snippet(search_text, 1, ?, ?, '…', {SNIPPET_TOKENS}) AS snippet,
           -top.score AS score
         FROM top JOIN search_text ON search_text.rowid = top.id JOIN search_items i ON i.id = top.id
         WHERE search_text MATCH ?
         ORDER BY top.score",
        room = room_name(scope),
    );
    stmt(sql, args)
}

/// The room's embeddings of `model` that pass the request's filters, of
/// the items `only` names when a vector index proposed them: rows of (item
/// id, vector bytes).
pub fn vectors(req: &Request, model: &str, only: Option<&[i64]>) -> Statement {
    let mut args = vec![model.into()];
    let mut filters = filters(req, Scope::Room, &mut args);
    if let Some(ids) = only {
        filters.push_str(&format!(" AND v.item IN ({})", marks(ids.len())));
        args.extend(ids.iter().map(|id| Arg::Int(*id)));
    }
    stmt(
        format!(
            "SELECT v.item AS id, v.data AS data FROM search_vectors v JOIN search_items i ON i.id = v.item
             WHERE v.model = ?{filters}"
        ),
        args,
    )
}

/// Which of `ids` (not empty) name no item any more (deleted since their
/// vectors were sent to a vector index): rows of (id).
pub fn gone(ids: &[i64]) -> Statement {
    let values = vec!["(?)"; ids.len()].join(", ");
    stmt(
        format!(
            "WITH proposed(id) AS (VALUES {values})
             SELECT id FROM proposed WHERE id NOT IN (SELECT id FROM search_items)"
        ),
        ids.iter().map(|id| Arg::Int(*id)).collect(),
    )
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Items by id, unhighlighted (semantic hits): rows for [`Row`].
pub fn rows_by_id(ids: &[i64]) -> Statement {
    let marks = marks(ids.len());
    stmt(
        format!(
            "SELECT i.id AS id, i.room_id AS room_id, '' AS room_name, i.kind AS kind, i.ref_id AS ref_id,
               i.at AS at, i.author AS author, i.seq AS seq, t.title AS title,
               substr(t.body, 1, {len}) AS snippet, 0.0 AS score
             FROM search_items i JOIN search_text t ON t.rowid = i.id WHERE i.id IN ({marks})",
            len = PLAIN_SNIPPET_CHARS * 2,
        ),
        ids.iter().map(|id| Arg::Int(*id)).collect(),
    )
}

/// Items without an embedding, newest first: rows of (id, at, title, body).
pub fn unembedded(limit: u32) -> Statement {
    stmt(
        "SELECT i.id AS id, i.at AS at, t.title AS title, t.body AS body
         FROM search_items i JOIN search_text t ON t.rowid = i.id
         LEFT JOIN search_vectors v ON v.item = i.id
         WHERE v.item IS NULL ORDER BY i.id DESC LIMIT ?",
        vec![u64::from(limit).into()],
    )
}

/// Stores an item's embedding if the item is still as it was embedded
/// (unchanged since `at`).
pub fn store_vector(item: i64, at: u64, model: &str, data: Vec<u8>) -> Statement {
    stmt(
        "INSERT INTO search_vectors (item, model, data) SELECT id, ?, ? FROM search_items WHERE id = ? AND at = ?
         ON CONFLICT (item) DO UPDATE SET model = excluded.model, data = excluded.data",
        vec![model.into(), Arg::Blob(data), Arg::Int(item), at.into()],
    )
}

/// A result row of [`search`] or [`rows_by_id`].
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub id: i64,
    pub room_id: String,
    pub room_name: String,
    pub kind: String,
    pub ref_id: String,
    pub at: u64,
    pub author: String,
    pub seq: Option<u64>,
    pub title: String,
    pub snippet: String,
    pub score: f64,
}

/// Which ranking found a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    Text,
    Semantic,
    Both,
}

/// One search result as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub room_id: String,
    pub room_name: String,
    pub kind: Kind,
    pub id: String,
    pub title: Snippet,
    pub snippet: Snippet,
    pub at: u64,
    pub author: String,
    pub link: serde_json::Value,
    pub score: f64,
    pub found: Found,
    /// The room object's item id (for fusing a room's two lists).
    #[serde(skip)]
    pub item: i64,
}

impl Row {
    /// The hit of a row: `marked` rows come highlighted from [`search`].
    pub fn into_hit(self, marked: bool, found: Found) -> Result<Hit, ApiError> {
        let kind: Kind = self
            .kind
            .parse()
            .map_err(|_| ApiError::Internal(format!("search index: unknown kind {}", self.kind)))?;
        let (title, snippet) = if marked {
            (
                Snippet::from_marked(&self.title),
                Snippet::from_marked(&self.snippet),
            )
        } else {
            (
                Snippet::plain(&self.title, PLAIN_SNIPPET_CHARS),
                Snippet::plain(&self.snippet, PLAIN_SNIPPET_CHARS),
            )
        };
        Ok(Hit {
            link: link(kind, &self.ref_id, self.seq),
            room_id: self.room_id,
            room_name: self.room_name,
            kind,
            id: self.ref_id,
            title,
            snippet,
            at: self.at,
            author: self.author,
            score: self.score,
            found,
            item: self.id,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Against real FTS5 (SQLite bundled by `rusqlite`, a test-only
    //! dependency): the statements above, run as the room object and D1 run them.
    use super::*;
    use crate::search::Query;
    use proptest::prelude::*;
    use rusqlite::types::Value;

    pub(crate) fn db() -> rusqlite::Connection {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch(ROOM_SCHEMA).unwrap();
        c.execute_batch(
            "CREATE TABLE memberships (room_id TEXT, user_id TEXT);
             CREATE TABLE rooms (id TEXT PRIMARY KEY, name TEXT);",
        )
        .unwrap();
        c
    }

    fn values(args: &[Arg]) -> Vec<Value> {
        args.iter()
            .map(|a| match a {
                Arg::Int(n) => Value::Integer(*n),
                Arg::Real(f) => Value::Real(*f),
                Arg::Text(s) => Value::Text(s.clone()),
                Arg::Blob(b) => Value::Blob(b.clone()),
                Arg::Null => Value::Null,
            })
            .collect()
    }

    pub(crate) fn run(c: &rusqlite::Connection, s: &Statement) {
        c.execute(&s.sql, rusqlite::params_from_iter(values(&s.args)))
            .unwrap();
    }

    pub(crate) fn rows(c: &rusqlite::Connection, s: &Statement) -> rusqlite::Result<Vec<Row>> {
        let mut q = c.prepare(&s.sql)?;
        let out = q
            .query_map(rusqlite::params_from_iter(values(&s.args)), |r| {
                Ok(Row {
                    id: r.get("id")?,
                    room_id: r.get("room_id")?,
                    room_name: r.get("room_name")?,
                    kind: r.get("kind")?,
                    ref_id: r.get("ref_id")?,
                    at: r.get::<_, i64>("at")? as u64,
                    author: r.get("author")?,
                    seq: r.get::<_, Option<i64>>("seq")?.map(|s| s as u64),
                    title: r.get("title")?,
                    snippet: r.get("snippet")?,
                    score: r.get("score")?,
                })
            })?
            .collect();
        out
    }

    pub(crate) fn entry(kind: Kind, id: &str, title: &str, body: &str, at: u64) -> Entry {
        Entry {
            kind,
            id: id.into(),
            title: crate::search::text::for_index(title, 1000),
            body: crate::search::text::for_index(body, 100_000),
            at,
            author: "u1".into(),
            seq: (kind == Kind::Message).then(|| id.parse().unwrap_or(0)),
        }
    }

    /// Indexes an entry as the room object (`room` is `""`) or D1 does.
    pub(crate) fn index(c: &rusqlite::Connection, room: &str, e: Entry) {
        let change = Change::Put(e);
        let statements = if room.is_empty() {
            apply(&change, false)
        } else {
            copy(room, vec![change])
        };
        for s in statements {
            run(c, &s);
        }
    }

    pub(crate) fn request(q: &str) -> Request {
        Request::parse([("q", q)].into_iter()).unwrap()
    }

    fn find(c: &rusqlite::Connection, q: &str, scope: Scope) -> Vec<String> {
        rows(c, &search(&request(q), scope, 1_000_000, 0, 20))
            .unwrap()
            .into_iter()
            .map(|r| r.ref_id)
            .collect()
    }

    const NOW: u64 = 1_000_000;

    #[test]
    fn schemas_run_twice_and_the_migration_creates_the_same_tables() {
        let c = db();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch(ROOM_SCHEMA).unwrap();
        assert!(SCHEMA.contains(crate::search::text::TOKENIZER));
        let migration = include_str!("../../../migrations/0008_search.sql");
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        for statement in SCHEMA.split(";\n").filter(|s| !s.trim().is_empty()) {
            assert!(
                squash(migration).contains(&squash(statement)),
                "the migration lacks: {statement}"
            );
        }
    }

    #[test]
    fn words_accents_prefixes_phrases_and_exclusions() {
        let c = db();
        index(
            &c,
            "",
            entry(
                Kind::Message,
                "1",
                "Ada",
                "Le café est prêt, deploy friday",
                NOW,
            ),
        );
        index(
            &c,
            "",
            entry(
                Kind::Message,
                "2",
                "Bob",
                "deployment notes for the release",
                NOW,
            ),
        );
        index(
            &c,
            "",
            entry(Kind::Document, "plan", "plan", "東京の天気は晴れ", NOW),
        );
        let f = |q| find(&c, q, Scope::Room);
        assert_eq!(f("cafe pret "), vec!["1"]);
        assert_eq!(f("CAFÉ "), vec!["1"]);
        let mut deploy = f("deploy");
        deploy.sort();
        assert_eq!(deploy, vec!["1", "2"], "the last word is a prefix");
        assert_eq!(f("deploy "), vec!["1"]);
        assert_eq!(f("deploy -release"), vec!["1"]);
        assert_eq!(f("\"release notes\""), Vec::<String>::new());
        assert_eq!(f("\"notes for the\""), vec!["2"]);
        assert_eq!(f("天気"), vec!["plan"]);
        assert_eq!(f("京"), vec!["plan"]);
        assert_eq!(f("晴れ "), vec!["plan"]);
        assert_eq!(
            f("天晴"),
            Vec::<String>::new(),
            "characters must be adjacent"
        );
        assert_eq!(f("ada"), vec!["1"], "authors are indexed");
    }

    #[test]
    fn changes_replace_and_removals_forget() {
        let c = db();
        index(&c, "", entry(Kind::Message, "1", "Ada", "first words", NOW));
        index(
            &c,
            "",
            entry(Kind::Message, "1", "Ada", "second thoughts", NOW),
        );
        assert!(find(&c, "first ", Scope::Room).is_empty());
        assert_eq!(find(&c, "second ", Scope::Room), vec!["1"]);
        for s in apply(
            &Change::Remove {
                kind: Kind::Message,
                id: "1".into(),
            },
            false,
        ) {
            run(&c, &s);
        }
        assert!(find(&c, "second ", Scope::Room).is_empty());
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM search_text", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn snippets_mark_matches_and_escape_content() {
        let c = db();
        index(
            &c,
            "",
            entry(
                Kind::Message,
                "1",
                "<b>Eve</b>",
                "see <script>alert(1)</script> & the budget",
                NOW,
            ),
        );
        let hit = rows(&c, &search(&request("budget "), Scope::Room, NOW, 0, 5))
            .unwrap()
            .remove(0)
            .into_hit(true, Found::Text)
            .unwrap();
        assert_eq!(
            hit.snippet.html,
            "see &lt;script&gt;alert(1)&lt;/script&gt; &amp; the <mark>budget</mark>"
        );
        assert_eq!(hit.title.html, "&lt;b&gt;Eve&lt;/b&gt;");
        assert_eq!(hit.link["seq"], 1);
        assert!(hit.score > 0.0);
    }

    #[test]
    fn recent_items_rank_higher_but_a_better_match_still_wins() {
        let c = db();
        let day = 24 * 3600 * 1000;
        let now = 400 * day;
        // BM25 needs a corpus in which the word is rare.
        for i in 0..20 {
            index(
                &c,
                "",
                entry(Kind::Message, &format!("f{i}"), "x", "lunch plans", now),
            );
        }
        index(
            &c,
            "",
            entry(
                Kind::Message,
                "old",
                "x",
                "quarterly budget review",
                now - 300 * day,
            ),
        );
        index(
            &c,
            "",
            entry(
                Kind::Message,
                "new",
                "x",
                "quarterly budget review",
                now - day,
            ),
        );
        let ranked = |q: &str| -> Vec<String> {
            rows(&c, &search(&request(q), Scope::Room, now, 0, 5))
                .unwrap()
                .into_iter()
                .map(|r| r.ref_id)
                .collect()
        };
        assert_eq!(ranked("budget "), vec!["new", "old"]);
        index(
            &c,
            "",
            entry(
                Kind::Message,
                "older",
                "budget",
                "budget budget budget",
                now - 200 * day,
            ),
        );
        assert_eq!(ranked("budget ")[0], "older");
        // The factor in SQL is the one `recency_factor` describes.
        let factor: f64 = c
            .query_row(
                "SELECT 1.0 + ?1 / (1.0 + MAX(0, ?2 - ?3) / ?4)",
                rusqlite::params![
                    RECENCY_WEIGHT,
                    now as i64,
                    (now - day) as i64,
                    RECENCY_HALF_MS
                ],
                |r| r.get(0),
            )
            .unwrap();
        assert!((factor - crate::search::rank::recency_factor(day as f64)).abs() < 1e-12);
    }

    #[test]
    fn filters_and_pages() {
        let c = db();
        for i in 0..7u64 {
            let mut e = entry(
                Kind::Message,
                &i.to_string(),
                "x",
                "standup notes",
                1000 + i,
            );
            e.author = if i % 2 == 0 {
                "even".into()
            } else {
                "odd".into()
            };
            index(&c, "", e);
        }
        index(
            &c,
            "",
            entry(Kind::File, "f1", "standup.txt", "text/plain", 1000),
        );
        let run_req = |q: &str, offset, limit| {
            let pairs: Vec<(&str, &str)> =
                q.split('&').filter_map(|kv| kv.split_once('=')).collect();
            let req = Request::parse(pairs.into_iter()).unwrap();
            rows(&c, &search(&req, Scope::Room, 2000, offset, limit)).unwrap()
        };
        assert_eq!(run_req("q=standup&kind=file", 0, 10).len(), 1);
        assert_eq!(run_req("q=standup&from=odd", 0, 10).len(), 3);
        assert_eq!(
            run_req("q=standup&after=1003&before=1006&kind=message", 0, 10).len(),
            2
        );
        let first = run_req("q=standup&kind=message", 0, 3);
        let second = run_req("q=standup&kind=message", 3, 3);
        assert_eq!((first.len(), second.len()), (3, 3));
        assert!(first
            .iter()
            .all(|a| second.iter().all(|b| a.ref_id != b.ref_id)));
    }

    #[test]
    fn members_find_only_their_rooms() {
        let c = db();
        index(
            &c,
            "r1",
            entry(Kind::Message, "1", "x", "shared secret plan", NOW),
        );
        index(
            &c,
            "r2",
            entry(Kind::Message, "1", "x", "other secret plan", NOW),
        );
        c.execute_batch(
            "INSERT INTO memberships VALUES ('r1', 'ann'), ('r2', 'bo'), ('r1', 'bo');
             INSERT INTO rooms VALUES ('r1', 'One'), ('r2', 'Two');",
        )
        .unwrap();
        let rooms = |user: &str| -> Vec<(String, String)> {
            rows(
                &c,
                &search(&request("secret "), Scope::MemberOf(user), NOW, 0, 10),
            )
            .unwrap()
            .into_iter()
            .map(|r| (r.room_id, r.room_name))
            .collect()
        };
        assert_eq!(rooms("ann"), vec![("r1".to_string(), "One".to_string())]);
        assert_eq!(rooms("bo").len(), 2);
        assert!(rooms("nobody").is_empty());
        c.execute("DELETE FROM memberships WHERE user_id = 'ann'", [])
            .unwrap();
        assert!(
            rooms("ann").is_empty(),
            "a removed member finds nothing at once"
        );
        for s in purge_room("r2") {
            run(&c, &s);
        }
        assert_eq!(rooms("bo").len(), 1);
    }

    #[test]
    fn embeddings_are_stored_only_for_unchanged_items() {
        let c = db();
        index(&c, "", entry(Kind::Message, "1", "x", "alpha", 5));
        let (id, at): (i64, i64) = c
            .query_row("SELECT id, at FROM search_items", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let pending = |c: &rusqlite::Connection| -> i64 {
            let s = unembedded(10);
            c.prepare(&s.sql)
                .unwrap()
                .query_map(rusqlite::params_from_iter(values(&s.args)), |_| Ok(()))
                .unwrap()
                .count() as i64
        };
        assert_eq!(pending(&c), 1);
        run(&c, &store_vector(id, at as u64 + 1, "m", vec![0; 8]));
        assert_eq!(pending(&c), 1, "the item changed since: not stored");
        run(&c, &store_vector(id, at as u64, "m", vec![0; 8]));
        assert_eq!(pending(&c), 0);
        // A change makes the embedding stale: it goes with the old text.
        index(&c, "", entry(Kind::Message, "1", "x", "beta", 6));
        assert_eq!(pending(&c), 1);
        let s = vectors(&request("anything"), "m", None);
        assert_eq!(
            c.prepare(&s.sql)
                .unwrap()
                .query_map(rusqlite::params_from_iter(values(&s.args)), |_| Ok(()))
                .unwrap()
                .count(),
            0
        );
        let hits = rows(&c, &rows_by_id(&[id])).unwrap();
        assert_eq!(hits[0].snippet, "beta");
    }

    #[test]
    fn proposed_items_are_narrowed_to_stored_vectors_and_the_gone_are_named() {
        let c = db();
        for (n, body) in ["alpha", "beta", "gamma"].iter().enumerate() {
            index(&c, "", entry(Kind::Message, &n.to_string(), "x", body, 5));
        }
        let items: Vec<(i64, i64)> = c
            .prepare("SELECT id, at FROM search_items ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (id, at) in &items {
            run(&c, &store_vector(*id, *at as u64, "m", vec![0; 8]));
        }
        let ids = |s: &Statement| -> Vec<i64> {
            c.prepare(&s.sql)
                .unwrap()
                .query_map(rusqlite::params_from_iter(values(&s.args)), |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let (first, second) = (items[0].0, items[1].0);
        assert_eq!(
            ids(&vectors(&request("anything"), "m", Some(&[first, 999]))),
            vec![first]
        );
        assert_eq!(ids(&vectors(&request("anything"), "m", None)).len(), 3);
        assert_eq!(
            ids(&vectors(&request("anything"), "other", Some(&[first]))),
            Vec::<i64>::new()
        );
        index(&c, "", entry(Kind::Message, "1", "x", "beta again", 6));
        assert_eq!(
            ids(&vectors(&request("anything"), "m", Some(&[first, second]))),
            vec![first],
            "an edited item's old vector is not a candidate"
        );
        assert_eq!(ids(&gone(&[first, second, 999])), vec![999]);
        for s in apply(
            &Change::Remove {
                kind: Kind::Message,
                id: "0".into(),
            },
            false,
        ) {
            run(&c, &s);
        }
        assert_eq!(ids(&gone(&[first, second])), vec![first]);
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,8}",
            Just("\"".to_string()),
            Just("-".to_string()),
            Just("*".to_string()),
            Just("NOT".to_string()),
            Just("OR".to_string()),
            Just("NEAR(".to_string()),
            Just(")".to_string()),
            Just("body:".to_string()),
            Just("^".to_string()),
            Just("東京".to_string()),
            any::<String>(),
        ]
    }

    /// What D1 holds for `room`: (kind, ref_id) → (at, author, seq, title,
    /// body), and how many text rows it has in all.
    fn copied(c: &rusqlite::Connection, room: &str) -> (Model, i64) {
        let mut q = c
            .prepare(
                "SELECT s.kind, s.ref_id, s.at, s.author, s.seq, t.title, t.body
                 FROM search_items s JOIN search_text t ON t.rowid = s.id WHERE s.room_id = ?",
            )
            .unwrap();
        let held = q
            .query_map([room], |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    (
                        r.get::<_, i64>(2)? as u64,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<i64>>(4)?.map(|s| s as u64),
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ),
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let texts = c
            .query_row("SELECT COUNT(*) FROM search_text", [], |r| r.get(0))
            .unwrap();
        (held, texts)
    }

    type Model =
        std::collections::BTreeMap<(String, String), (u64, String, Option<u64>, String, String)>;

    #[test]
    fn a_batch_larger_than_a_bound_value_is_copied_in_chunks() {
        let c = db();
        let big = |id: &str| Entry {
            body: "word ".repeat(crate::search::index::TEXT_MAX_BYTES / 5),
            ..entry(Kind::Document, id, id, "", NOW)
        };
        let changes: Vec<Change> = (0..9).map(|i| Change::Put(big(&format!("d{i}")))).collect();
        let statements = copy("r1", changes);
        assert!(statements.len() > 4, "{} statements", statements.len());
        for s in &statements {
            for a in &s.args {
                if let Arg::Text(t) = a {
                    assert!(
                        t.len() <= COPY_CHUNK_BYTES,
                        "an argument of {} bytes",
                        t.len()
                    );
                }
            }
            run(&c, s);
        }
        assert_eq!(copied(&c, "r1").0.len(), 9);
    }

    #[test]
    fn a_copy_looks_each_item_up_by_its_key() {
        let c = db();
        let e = entry(Kind::Message, "1", "t", "b", NOW);
        for s in copy("r1", vec![Change::Put(e)]) {
            let mut q = c.prepare(&format!("EXPLAIN QUERY PLAN {}", s.sql)).unwrap();
            let plan: Vec<String> = q
                .query_map(rusqlite::params_from_iter(values(&s.args)), |r| r.get(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for step in plan
                .iter()
                .filter(|p| p.contains(" s ") || p.contains("search_items"))
            {
                assert!(
                    step.contains("ref_id=?") || step.contains("PRIMARY KEY"),
                    "{step} in {}",
                    s.sql
                );
            }
        }
    }

    #[test]
    fn an_outbox_batch_is_bounded_by_rows_and_bytes_and_takes_at_least_one() {
        let c = db();
        let seqs = |c: &rusqlite::Connection| -> Vec<i64> {
            let s = outbox_batch();
            let mut q = c.prepare(&s.sql).unwrap();
            q.query_map(rusqlite::params_from_iter(values(&s.args)), |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let put = |c: &rusqlite::Connection, bytes: usize| {
            c.execute(
                "INSERT INTO search_outbox (change) VALUES (?)",
                ["é".repeat(bytes / 2)],
            )
            .unwrap();
        };
        let big = OUTBOX_BATCH_BYTES as usize;
        put(&c, 10);
        put(&c, big);
        put(&c, 10);
        assert_eq!(seqs(&c), vec![1, 2], "bytes are counted, not characters");
        c.execute("DELETE FROM search_outbox WHERE seq <= 2", [])
            .unwrap();
        for _ in 0..OUTBOX_BATCH + 5 {
            put(&c, 10);
        }
        assert_eq!(seqs(&c).len() as u64, OUTBOX_BATCH);
        c.execute("DELETE FROM search_outbox", []).unwrap();
        put(&c, 2 * big);
        assert_eq!(seqs(&c).len(), 1, "one row over the bound still goes");
    }

    proptest! {
        /// However the outbox's changes fall into batches, D1 ends up holding
        /// each item's last put unless it was removed after, with one item
        /// and one text row per item, and another room's rows untouched.
        #[test]
        fn batched_copies_hold_each_items_last_state(
            steps in proptest::collection::vec((0..4usize, any::<bool>(), any::<bool>(), "[a-zé ]{0,12}", 0..3usize), 1..40),
        ) {
            let c = db();
            index(&c, "other", entry(Kind::Message, "1", "kept", "kept", NOW));
            let mut model = Model::new();
            let mut batch = Vec::new();
            for (n, (id, message, put, text, cut)) in steps.into_iter().enumerate() {
                let kind = if message { Kind::Message } else { Kind::Document };
                let id = id.to_string();
                let change = if put {
                    let e = entry(kind, &id, &text, &text, n as u64);
                    model.insert(
                        (kind.as_str().to_string(), id),
                        (e.at, e.author.clone(), e.seq, e.title.clone(), e.body.clone()),
                    );
                    Change::Put(e)
                } else {
                    model.remove(&(kind.as_str().to_string(), id.clone()));
                    Change::Remove { kind, id }
                };
                batch.push(change);
                if cut == 0 {
                    for s in copy("r1", std::mem::take(&mut batch)) {
                        run(&c, &s);
                    }
                }
            }
            for s in copy("r1", batch) {
                run(&c, &s);
            }
            let (held, texts) = copied(&c, "r1");
            prop_assert_eq!(&held, &model);
            prop_assert_eq!(texts, model.len() as i64 + 1);
            let items: i64 = c
                .query_row("SELECT COUNT(*) FROM search_items WHERE room_id = 'r1'", [], |r| r.get(0))
                .unwrap();
            prop_assert_eq!(items, model.len() as i64);
            prop_assert_eq!(copied(&c, "other").0.len(), 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Whatever is typed, the query either is refused with a 400 or runs
        /// against real FTS5 without an error, and never finds another
        /// room's rows.
        #[test]
        fn no_query_breaks_fts5_or_leaves_its_room(words in proptest::collection::vec(word(), 0..8), spaces in proptest::collection::vec(any::<bool>(), 8)) {
            let mut q = String::new();
            for (i, w) in words.iter().enumerate() {
                q.push_str(w);
                if spaces[i] { q.push(' '); }
            }
            let c = db();
            index(&c, "other", entry(Kind::Message, "9", "x", &q, NOW));
            index(&c, "", entry(Kind::Message, "1", "x", "some words", NOW));
            match Query::parse(&q) {
                Err(e) => prop_assert_eq!(e.status(), 400),
                Ok(_) => {
                    let found = rows(&c, &search(&request(&q), Scope::Room, NOW, 0, 10));
                    prop_assert!(found.is_ok(), "{:?} -> {:?}", q, found.err());
                    prop_assert!(found.unwrap().iter().all(|r| r.room_id.is_empty()));
                }
            }
        }

        /// Any indexed content comes back escaped.
        #[test]
        fn indexed_content_comes_back_escaped(body in any::<String>()) {
            let c = db();
            let body = format!("needle {body} <x> needle");
            index(&c, "", entry(Kind::Message, "1", &body, &body, NOW));
            let found = rows(&c, &search(&request("needle "), Scope::Room, NOW, 0, 1)).unwrap();
            prop_assert_eq!(found.len(), 1);
            let hit = found.into_iter().next().unwrap().into_hit(true, Found::Text).unwrap();
            for html in [&hit.title.html, &hit.snippet.html] {
                let rest = html.replace("<mark>", "").replace("</mark>", "");
                prop_assert!(!rest.contains('<') && !rest.contains('>'), "{}", html);
            }
        }
    }
}
