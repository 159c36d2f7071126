//! The upload object's SQLite: its schema and the [`UploadStore`] the write
//! plan (`tessera_core::files::store`) runs on. Every SQL string of the
//! upload object is here.

use crate::http::{Failure, HttpResult};
use crate::sql::{blobs, int, select};
use serde::Deserialize;
use tessera_core::files::store::UploadStore;
use tessera_core::files::UploadState;
use worker::{SqlStorage, SqlStorageValue as V};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS upload (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (number INTEGER PRIMARY KEY, etag TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buffer (start INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
";

pub struct SqlUploadStore {
    pub sql: SqlStorage,
}

impl UploadStore for SqlUploadStore {
    type Error = Failure;

    fn load(&self) -> HttpResult<Option<UploadState>> {
        #[derive(Deserialize)]
        struct Row {
            state: String,
        }
        let rows: Vec<Row> = select(&self.sql, "SELECT state FROM upload WHERE id = 1", None)?;
        match rows.into_iter().next() {
            Some(r) => Ok(Some(serde_json::from_str(&r.state)?)),
            None => Ok(None),
        }
    }

    fn save(&mut self, state: &UploadState) -> HttpResult<()> {
        self.sql.exec(
            "INSERT INTO upload (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            vec![V::from(serde_json::to_string(state)?)],
        )?;
        Ok(())
    }

    fn buffer(&self) -> HttpResult<Vec<u8>> {
        let rows = blobs(
            self.sql
                .exec("SELECT bytes FROM buffer ORDER BY start", None)?,
        )?;
        Ok(rows.concat())
    }

    fn append_buffer(&mut self, start: u64, bytes: &[u8]) -> HttpResult<()> {
        self.sql.exec(
            "INSERT INTO buffer (start, bytes) VALUES (?, ?)",
            vec![int(start), V::Blob(bytes.to_vec())],
        )?;
        Ok(())
    }

    fn clear_buffer(&mut self) -> HttpResult<()> {
        self.sql.exec("DELETE FROM buffer", None)?;
        Ok(())
    }

    fn put_part(&mut self, number: u64, etag: &str) -> HttpResult<()> {
        self.sql.exec(
            "INSERT INTO parts (number, etag) VALUES (?, ?) ON CONFLICT (number) DO UPDATE SET etag = excluded.etag",
            vec![int(number), V::from(etag)],
        )?;
        Ok(())
    }

    fn parts(&self) -> HttpResult<Vec<(u64, String)>> {
        #[derive(Deserialize)]
        struct Row {
            number: u64,
            etag: String,
        }
        let rows: Vec<Row> = select(
            &self.sql,
            "SELECT number, etag FROM parts ORDER BY number",
            None,
        )?;
        Ok(rows.into_iter().map(|r| (r.number, r.etag)).collect())
    }

    fn clear_parts(&mut self) -> HttpResult<()> {
        self.sql.exec("DELETE FROM parts", None)?;
        Ok(())
    }
}
