//! Documents in the Room Durable Object's SQLite: an append-only tail of
//! updates per document, compacted into a snapshot stored in chunks (rows stay
//! under the 2 MB limit), and named versions stored the same way.

use serde::{Deserialize, Serialize};
use tessera_core::docs::{DocLimits, LiveDoc};
use worker::{SqlStorage, SqlStorageValue as V};

use crate::store::int;

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

pub struct DocStore {
    pub sql: SqlStorage,
}

/// The first column of every row, as bytes (a query that selects one BLOB).
pub(crate) fn blobs(cursor: worker::SqlCursor) -> worker::Result<Vec<Vec<u8>>> {
    cursor
        .raw()
        .map(|row| match row?.into_iter().next() {
            Some(V::Blob(b)) => Ok(b),
            _ => Err(worker::Error::RustError("expected a BLOB column".into())),
        })
        .collect()
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

    /// The document as stored: snapshot plus tail. `None` when it was never written.
    pub fn load(&self, doc: &str) -> worker::Result<Option<LiveDoc>> {
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
        live.tail_updates = info.tail_updates;
        live.tail_bytes = info.tail_bytes;
        Ok(Some(live))
    }

    /// Appends updates to a document's tail (creating the document).
    pub fn append(&self, doc: &str, updates: &[&[u8]], now_ms: u64) -> worker::Result<()> {
        let bytes: usize = updates.iter().map(|u| u.len()).sum();
        self.sql.exec(
            "INSERT INTO docs (name, tail_updates, tail_bytes, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET tail_updates = tail_updates + excluded.tail_updates,
               tail_bytes = tail_bytes + excluded.tail_bytes, updated_at = excluded.updated_at",
            vec![
                V::from(doc),
                int(updates.len() as u64),
                int(bytes as u64),
                int(now_ms),
            ],
        )?;
        for u in updates {
            self.sql.exec(
                "INSERT INTO doc_updates (doc, data) VALUES (?, ?)",
                vec![V::from(doc), V::Blob(u.to_vec())],
            )?;
        }
        Ok(())
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
        live.stored_bytes = snapshot.len();
        live.tail_updates = 0;
        live.tail_bytes = 0;
        Ok(())
    }

    pub fn delete(&self, doc: &str) -> worker::Result<bool> {
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
        Ok(existed)
    }

    pub fn save_version(
        &self,
        doc: &str,
        label: &str,
        by: &str,
        state: &[u8],
        now_ms: u64,
        limits: &DocLimits,
    ) -> worker::Result<VersionInfo> {
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
        Ok(VersionInfo {
            v: next,
            label: label.to_string(),
            created_by: by.to_string(),
            created_at: now_ms,
            bytes: state.len() as u64,
        })
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
