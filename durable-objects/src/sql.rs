//! Helpers over an object's SQLite storage shared by every object: rows read
//! into types, JSON documents kept in a `data` column, schema creation that
//! reports rather than panics, integers as SQLite takes them, and BLOB columns
//! read as bytes.

use crate::http::HttpResult;
use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue as V};

/// The rows of a query, deserialised.
pub fn select<T: serde::de::DeserializeOwned>(
    sql: &SqlStorage,
    query: &str,
    args: impl Into<Option<Vec<V>>>,
) -> worker::Result<Vec<T>> {
    sql.exec(query, args)?.to_array()
}

#[derive(Deserialize)]
struct JsonRow {
    data: String,
}

/// Rows that keep a JSON document in a `data` column, deserialised.
pub fn select_json<T: serde::de::DeserializeOwned>(
    sql: &SqlStorage,
    query: &str,
    args: impl Into<Option<Vec<V>>>,
) -> HttpResult<Vec<T>> {
    Ok(select::<JsonRow>(sql, query, args)?
        .iter()
        .map(|r| serde_json::from_str(&r.data))
        .collect::<Result<_, _>>()?)
}

/// Stores `value` as JSON under `key`: `upsert` takes the key, then the document.
pub fn upsert_json(
    sql: &SqlStorage,
    upsert: &str,
    key: &str,
    value: &impl serde::Serialize,
) -> HttpResult<()> {
    sql.exec(
        upsert,
        vec![V::from(key), V::from(serde_json::to_string(value)?)],
    )?;
    Ok(())
}

/// Creates an object's tables once, when the object starts; the error (if
/// any) is kept and answered to every request rather than panicking.
pub fn create_schema(sql: &SqlStorage, schemas: &[&str]) -> Result<(), String> {
    schemas
        .iter()
        .try_for_each(|schema| sql.exec(schema, None).map(|_| ()))
        .map_err(|e| e.to_string())
}

pub fn int(v: u64) -> V {
    V::Integer(v as i64)
}

/// The first column of every row, as bytes (a query that selects one BLOB).
pub fn blobs(cursor: worker::SqlCursor) -> worker::Result<Vec<Vec<u8>>> {
    cursor
        .raw()
        .map(|row| match row?.into_iter().next() {
            Some(V::Blob(b)) => Ok(b),
            _ => Err(worker::Error::RustError("expected a BLOB column".into())),
        })
        .collect()
}
