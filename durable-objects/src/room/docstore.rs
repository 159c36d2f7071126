//! Documents in the Room Durable Object's SQLite: an append-only tail of
//! updates per document, compacted into a snapshot stored in chunks (rows stay
//! under the 2 MB limit; an update too big for a row goes into a snapshot),
//! named versions stored the same way, tombstones of deleted documents, and
//! the latest role the room heard for each person (document sockets follow it).

use serde::{Deserialize, Serialize};
use tessera_core::docs::{plan_write, DocLimits, LiveDoc, StoreAs};
use tessera_core::room::docs::DocStorage;
use tessera_core::rooms::Role;
use worker::{SqlStorage, SqlStorageValue as V};

use crate::sql::{blobs, int};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS docs (
  name TEXT PRIMARY KEY,
  snapshot_bytes INTEGER NOT NULL DEFAULT 0,
  tail_updates INTEGER NOT NULL DEFAULT 0,
  tail_bytes INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  backed_up_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS doc_updates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  doc TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_updates_doc ON doc_updates(doc, id);
CREATE TABLE IF NOT EXISTS doc_chunks (
  doc TEXT NOT NULL,
  kind TEXT NOT NULL,
  chunk INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (doc, kind, chunk)
);
CREATE TABLE IF NOT EXISTS doc_versions (
  doc TEXT NOT NULL,
  v INTEGER NOT NULL,
  label TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (doc, v)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS doc_tombstones (
  name TEXT PRIMARY KEY,
  deleted_at INTEGER NOT NULL,
  deleted_by TEXT NOT NULL,
  backups_purged INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS member_roles (user_id TEXT PRIMARY KEY, role TEXT);
";

const SNAPSHOT: &str = "snapshot";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocInfo {
    pub name: String,
    pub bytes: u64,
    pub updated_at: u64,
    #[serde(skip_serializing)]
    pub tail_updates: u64,
    #[serde(skip_serializing)]
    pub tail_bytes: u64,
    #[serde(skip_serializing)]
    pub backed_up_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    pub v: u64,
    pub label: String,
    pub created_by: String,
    pub created_at: u64,
    pub bytes: u64,
}

/// A deleted document's name, kept so that its name is not re-created by a
/// client that still holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tombstone {
    pub name: String,
    pub deleted_at: u64,
    pub deleted_by: String,
}

/// `SELECT COUNT(*) AS n …`.
fn count(sql: &SqlStorage, query: &str, args: Vec<V>) -> worker::Result<u64> {
    #[derive(Deserialize)]
    struct N {
        n: u64,
    }
    Ok(sql
        .exec(query, args)?
        .to_array::<N>()?
        .first()
        .map_or(0, |n| n.n))
}

/// Bytes the first document loaded in a module instance reserves on the heap.
/// Growing WebAssembly memory is slow in workerd and the allocator grows it
/// 64 KiB at a time, so a document that grew update by update paid for it
/// over and over: in a profile of the first 20,000 edits of the benchmark,
/// `malloc` and the copies it served fell from about 510 to 100 ms with this
/// reserve.
const HEAP_RESERVE: usize = 32 << 20;

fn reserve_heap() {
    thread_local! {
        static RESERVED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !RESERVED.with(|r| r.replace(true)) {
        // Freed at once: the allocator keeps the grown memory for later use.
        std::hint::black_box(Vec::<u8>::with_capacity(HEAP_RESERVE));
    }
}

pub struct DocStore {
    pub sql: SqlStorage,
}

impl DocStore {
    pub fn info(&self, doc: &str) -> worker::Result<Option<DocInfo>> {
        Ok(self
            .sql
            .exec(
                "SELECT name, snapshot_bytes + tail_bytes AS bytes, updated_at, tail_updates, tail_bytes, backed_up_at
                 FROM docs WHERE name = ?",
                vec![V::from(doc)],
            )?
            .to_array::<DocInfo>()?
            .pop())
    }

    pub fn list(&self) -> worker::Result<Vec<DocInfo>> {
        self.sql
            .exec(
                "SELECT name, snapshot_bytes + tail_bytes AS bytes, updated_at, tail_updates, tail_bytes, backed_up_at
                 FROM docs ORDER BY name",
                None,
            )?
            .to_array()
    }

    fn read_blob(&self, doc: &str, kind: &str) -> worker::Result<Vec<u8>> {
        let parts = blobs(self.sql.exec(
            "SELECT data FROM doc_chunks WHERE doc = ? AND kind = ? ORDER BY chunk",
            vec![V::from(doc), V::from(kind)],
        )?)?;
        Ok(parts.concat())
    }

    fn write_blob(
        &self,
        doc: &str,
        kind: &str,
        bytes: &[u8],
        limits: &DocLimits,
    ) -> worker::Result<()> {
        self.sql.exec(
            "DELETE FROM doc_chunks WHERE doc = ? AND kind = ?",
            vec![V::from(doc), V::from(kind)],
        )?;
        for (i, chunk) in bytes.chunks(limits.chunk_bytes).enumerate() {
            self.sql.exec(
                "INSERT INTO doc_chunks (doc, kind, chunk, data) VALUES (?, ?, ?, ?)",
                vec![
                    V::from(doc),
                    V::from(kind),
                    int(i as u64),
                    V::Blob(chunk.to_vec()),
                ],
            )?;
        }
        Ok(())
    }

    /// Creates an empty document (a deliberate creation: it also lifts a
    /// tombstone). `false` when it already exists.
    pub fn create(&self, doc: &str, now_ms: u64) -> worker::Result<bool> {
        if self.info(doc)?.is_some() {
            return Ok(false);
        }
        self.sql.exec(
            "DELETE FROM doc_tombstones WHERE name = ?",
            vec![V::from(doc)],
        )?;
        self.sql.exec(
            "INSERT INTO docs (name, updated_at) VALUES (?, ?)",
            vec![V::from(doc), int(now_ms)],
        )?;
        Ok(true)
    }

    /// Replaces snapshot and tail with one snapshot of `live` (one transaction:
    /// the caller runs it in a single synchronous turn).
    pub fn compact(&self, doc: &str, live: &mut LiveDoc, limits: &DocLimits) -> worker::Result<()> {
        let snapshot = live.snapshot();
        self.write_blob(doc, SNAPSHOT, &snapshot, limits)?;
        self.sql
            .exec("DELETE FROM doc_updates WHERE doc = ?", vec![V::from(doc)])?;
        self.sql.exec(
            "UPDATE docs SET snapshot_bytes = ?, tail_updates = 0, tail_bytes = 0 WHERE name = ?",
            vec![int(snapshot.len() as u64), V::from(doc)],
        )?;
        live.compacted(&snapshot)
            .map_err(|e| worker::Error::RustError(format!("the snapshot of {doc}: {e}")))
    }

    /// Deletes a document with its versions and leaves a tombstone, so that a
    /// client still holding it cannot bring it back. `false` when it did not exist.
    pub fn delete(&self, doc: &str, by: &str, now_ms: u64) -> worker::Result<bool> {
        let existed = self.info(doc)?.is_some();
        for table in [
            "doc_updates WHERE doc",
            "doc_chunks WHERE doc",
            "doc_versions WHERE doc",
            "docs WHERE name",
        ] {
            self.sql
                .exec(&format!("DELETE FROM {table} = ?"), vec![V::from(doc)])?;
        }
        if existed {
            self.sql.exec(
                "INSERT INTO doc_tombstones (name, deleted_at, deleted_by) VALUES (?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at,
                   deleted_by = excluded.deleted_by, backups_purged = 0",
                vec![V::from(doc), int(now_ms), V::from(by)],
            )?;
        }
        Ok(existed)
    }

    /// The tombstone of a deleted document, if it has one.
    pub fn tombstone(&self, doc: &str) -> worker::Result<Option<Tombstone>> {
        Ok(self
            .sql
            .exec(
                "SELECT name, deleted_at, deleted_by FROM doc_tombstones WHERE name = ?",
                vec![V::from(doc)],
            )?
            .to_array::<Tombstone>()?
            .pop())
    }

    /// The newest tombstones, newest first (at most `limit`).
    pub fn tombstones(&self, limit: u32) -> worker::Result<Vec<Tombstone>> {
        self.sql
            .exec(
                "SELECT name, deleted_at, deleted_by FROM doc_tombstones
                 ORDER BY deleted_at DESC, name LIMIT ?",
                vec![int(u64::from(limit))],
            )?
            .to_array()
    }

    /// Deleted documents whose R2 backups are not yet known to be gone.
    pub fn unpurged_tombstones(&self) -> worker::Result<Vec<String>> {
        #[derive(Deserialize)]
        struct N {
            name: String,
        }
        Ok(self
            .sql
            .exec(
                "SELECT name FROM doc_tombstones WHERE backups_purged = 0",
                None,
            )?
            .to_array::<N>()?
            .into_iter()
            .map(|n| n.name)
            .collect())
    }

    pub fn mark_backups_purged(&self, doc: &str) -> worker::Result<()> {
        self.sql.exec(
            "UPDATE doc_tombstones SET backups_purged = 1 WHERE name = ?",
            vec![V::from(doc)],
        )?;
        Ok(())
    }

    pub fn save_version(
        &self,
        doc: &str,
        label: &str,
        by: &str,
        state: &[u8],
        now_ms: u64,
        limits: &DocLimits,
    ) -> worker::Result<Option<VersionInfo>> {
        let held = count(
            &self.sql,
            "SELECT COUNT(*) AS n FROM doc_versions WHERE doc = ?",
            vec![V::from(doc)],
        )?;
        if held >= limits.versions_per_doc {
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct N {
            v: Option<u64>,
        }
        let next = self
            .sql
            .exec(
                "SELECT MAX(v) AS v FROM doc_versions WHERE doc = ?",
                vec![V::from(doc)],
            )?
            .to_array::<N>()?
            .first()
            .and_then(|n| n.v)
            .unwrap_or(0)
            + 1;
        self.write_blob(doc, &format!("v{next}"), state, limits)?;
        self.sql.exec(
            "INSERT INTO doc_versions (doc, v, label, created_by, created_at, bytes) VALUES (?, ?, ?, ?, ?, ?)",
            vec![V::from(doc), int(next), V::from(label), V::from(by), int(now_ms), int(state.len() as u64)],
        )?;
        Ok(Some(VersionInfo {
            v: next,
            label: label.to_string(),
            created_by: by.to_string(),
            created_at: now_ms,
            bytes: state.len() as u64,
        }))
    }

    /// Deletes a version; `false` when there was none.
    pub fn delete_version(&self, doc: &str, v: u64) -> worker::Result<bool> {
        let existed = self.versions(doc)?.iter().any(|x| x.v == v);
        self.sql.exec(
            "DELETE FROM doc_chunks WHERE doc = ? AND kind = ?",
            vec![V::from(doc), V::from(format!("v{v}"))],
        )?;
        self.sql.exec(
            "DELETE FROM doc_versions WHERE doc = ? AND v = ?",
            vec![V::from(doc), int(v)],
        )?;
        Ok(existed)
    }

    pub fn versions(&self, doc: &str) -> worker::Result<Vec<VersionInfo>> {
        self.sql
            .exec(
                "SELECT v, label, created_by, created_at, bytes FROM doc_versions WHERE doc = ? ORDER BY v",
                vec![V::from(doc)],
            )?
            .to_array()
    }

    /// A version's state, if it exists.
    pub fn version(&self, doc: &str, v: u64) -> worker::Result<Option<Vec<u8>>> {
        let exists = self.versions(doc)?.iter().any(|x| x.v == v);
        if !exists {
            return Ok(None);
        }
        Ok(Some(self.read_blob(doc, &format!("v{v}"))?))
    }

    pub fn mark_backed_up(&self, doc: &str, now_ms: u64) -> worker::Result<()> {
        self.sql.exec(
            "UPDATE docs SET backed_up_at = ? WHERE name = ?",
            vec![int(now_ms), V::from(doc)],
        )?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> worker::Result<Option<String>> {
        #[derive(Deserialize)]
        struct M {
            value: String,
        }
        Ok(self
            .sql
            .exec("SELECT value FROM meta WHERE key = ?", vec![V::from(key)])?
            .to_array::<M>()?
            .pop()
            .map(|m| m.value))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> worker::Result<()> {
        self.sql.exec(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![V::from(key), V::from(value)],
        )?;
        Ok(())
    }
}

impl DocStorage for DocStore {
    type Error = worker::Error;

    /// The document as stored: snapshot plus tail. `None` when it was never written.
    fn load(&self, doc: &str) -> worker::Result<Option<LiveDoc>> {
        reserve_heap();
        let Some(info) = self.info(doc)? else {
            return Ok(None);
        };
        let snapshot = self.read_blob(doc, SNAPSHOT)?;
        let tail = blobs(self.sql.exec(
            "SELECT data FROM doc_updates WHERE doc = ? ORDER BY id",
            vec![V::from(doc)],
        )?)?;
        let mut live = LiveDoc::load(&snapshot, tail.iter().map(Vec::as_slice)).map_err(|e| {
            worker::Error::RustError(format!("stored document {doc} does not load: {e}"))
        })?;
        live.stored_bytes = info.bytes as usize;
        live.snapshot_bytes = info.bytes.saturating_sub(info.tail_bytes);
        live.tail_updates = info.tail_updates;
        live.tail_bytes = info.tail_bytes;
        Ok(Some(live))
    }

    /// Stores a burst of `live`'s updates (merged into `rows`; `live` already
    /// holds them): appended to the tail, or folded with everything else into
    /// a new snapshot when the tail is long or a row would be too big for
    /// one (`plan_write`). Creates the document. The caller runs it in one
    /// synchronous turn, so it commits as one transaction.
    fn write_burst(
        &self,
        doc: &str,
        live: &mut LiveDoc,
        rows: &[&[u8]],
        now_ms: u64,
        limits: &DocLimits,
    ) -> worker::Result<StoreAs> {
        let plan = plan_write(live, rows, limits);
        let appended: &[&[u8]] = match plan {
            StoreAs::Append => rows,
            StoreAs::Snapshot => &[],
        };
        let bytes: usize = appended.iter().map(|u| u.len()).sum();
        self.sql.exec(
            "INSERT INTO docs (name, tail_updates, tail_bytes, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET tail_updates = tail_updates + excluded.tail_updates,
               tail_bytes = tail_bytes + excluded.tail_bytes, updated_at = excluded.updated_at",
            vec![
                V::from(doc),
                int(appended.len() as u64),
                int(bytes as u64),
                int(now_ms),
            ],
        )?;
        for u in appended {
            self.sql.exec(
                "INSERT INTO doc_updates (doc, data) VALUES (?, ?)",
                vec![V::from(doc), V::Blob(u.to_vec())],
            )?;
        }
        match plan {
            StoreAs::Append => {
                live.tail_updates += appended.len() as u64;
                live.tail_bytes += bytes as u64;
            }
            StoreAs::Snapshot => self.compact(doc, live, limits)?,
        }
        Ok(plan)
    }

    fn count(&self) -> worker::Result<u64> {
        count(&self.sql, "SELECT COUNT(*) AS n FROM docs", vec![])
    }

    /// Every person the room heard a role notice for, with the latest role
    /// (`None`: removed from the room).
    fn member_roles(&self) -> worker::Result<Vec<(String, Option<Role>)>> {
        #[derive(Deserialize)]
        struct R {
            user_id: String,
            role: Option<String>,
        }
        Ok(self
            .sql
            .exec("SELECT user_id, role FROM member_roles", None)?
            .to_array::<R>()?
            .into_iter()
            .map(|r| (r.user_id, r.role.and_then(|role| role.parse().ok())))
            .collect())
    }

    fn set_member_role(&self, user_id: &str, role: Option<Role>) -> worker::Result<()> {
        let role = role.map_or(V::Null, |r| V::from(r.as_str()));
        self.sql.exec(
            "INSERT INTO member_roles (user_id, role) VALUES (?, ?)
             ON CONFLICT (user_id) DO UPDATE SET role = excluded.role",
            vec![V::from(user_id), role],
        )?;
        Ok(())
    }

    fn is_deleted(&self, doc: &str) -> worker::Result<bool> {
        Ok(self.tombstone(doc)?.is_some())
    }
}
