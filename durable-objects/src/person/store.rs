//! The person object's SQLite: its schema, the [`PersonStore`] the engine
//! (`tessera_core::notify::person`) runs on, and the reads and writes the
//! object's own routes make (inbox pages, push subscriptions, the rooms'
//! counts). Every SQL string of the person object is here.

use crate::http::HttpResult;
use crate::sql::{int, select};
use serde::Deserialize;
use std::collections::BTreeMap;
use tessera_core::notify::email::DigestRoom;
use tessera_core::notify::inbox::{Counts, Item, NewItem};
use tessera_core::notify::person::PersonStore;
use tessera_core::notify::prefs::Prefs;
use tessera_core::notify::webpush::Subscription;
use worker::{SqlStorage, SqlStorageValue as V};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  room_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL,
  at INTEGER NOT NULL,
  read INTEGER NOT NULL DEFAULT 0,
  -- when to email the item if still unread; NULL once queued or read
  email_at INTEGER
);
CREATE INDEX IF NOT EXISTS items_unread ON items(read, room_id);
CREATE INDEX IF NOT EXISTS items_email ON items(email_at);
CREATE INDEX IF NOT EXISTS items_at ON items(at);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS push (id TEXT PRIMARY KEY, data TEXT NOT NULL, created_at INTEGER NOT NULL);
-- unread messages per room, as the rooms last said (while a socket is open)
CREATE TABLE IF NOT EXISTS rooms (room_id TEXT PRIMARY KEY, unread INTEGER NOT NULL);
";

/// The meta keys.
const USER: &str = "user";
const PREFS: &str = "prefs";
/// When the next digest is due (unix ms).
const DIGEST_AT: &str = "digest_at";

pub struct SqlPersonStore {
    pub sql: SqlStorage,
}

#[derive(Deserialize)]
struct ItemRow {
    id: u64,
    data: String,
    read: u8,
}

impl ItemRow {
    fn item(&self) -> HttpResult<Item> {
        let item: NewItem = serde_json::from_str(&self.data)?;
        Ok(Item {
            id: self.id,
            link: item.link(),
            item,
            read: self.read != 0,
        })
    }
}

#[derive(Deserialize)]
struct RoomCount {
    room_id: String,
    n: u64,
}

#[derive(Deserialize)]
struct RoomId {
    room_id: String,
}

impl SqlPersonStore {
    fn meta(&self, k: &str) -> HttpResult<Option<String>> {
        #[derive(Deserialize)]
        struct Row {
            v: String,
        }
        let rows: Vec<Row> = select(
            &self.sql,
            "SELECT v FROM meta WHERE k = ?",
            vec![V::from(k)],
        )?;
        Ok(rows.into_iter().next().map(|r| r.v))
    }

    fn remember(&self, k: &str, v: &str) -> HttpResult<()> {
        self.sql.exec(
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            vec![V::from(k), V::from(v)],
        )?;
        Ok(())
    }

    pub fn set_user(&self, user_id: &str) -> HttpResult<()> {
        self.remember(USER, user_id)
    }

    pub fn set_prefs(&self, prefs: &Prefs) -> HttpResult<()> {
        self.remember(PREFS, &serde_json::to_string(prefs)?)
    }

    /// Up to `limit` items below id `before`, newest first, received since
    /// `since` (unread ones only with `unread_only`).
    pub fn page(
        &self,
        before: u64,
        unread_only: bool,
        since: u64,
        limit: u32,
    ) -> HttpResult<Vec<Item>> {
        let rows: Vec<ItemRow> = select(
            &self.sql,
            "SELECT id, data, read FROM items
             WHERE id < ? AND (? = 0 OR read = 0) AND at >= ?
             ORDER BY id DESC LIMIT ?",
            vec![
                int(before),
                int(u64::from(unread_only)),
                int(since),
                int(limit.into()),
            ],
        )?;
        rows.iter().map(ItemRow::item).collect()
    }

    /// The push subscriptions by id, oldest first.
    pub fn subscriptions(&self) -> HttpResult<Vec<(String, Subscription)>> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            data: String,
        }
        let rows: Vec<Row> = select(
            &self.sql,
            "SELECT id, data FROM push ORDER BY created_at",
            None,
        )?;
        rows.into_iter()
            .map(|r| Ok((r.id, serde_json::from_str(&r.data)?)))
            .collect()
    }

    /// Adds a subscription, or replaces the one of the same id.
    pub fn put_subscription(&self, id: &str, sub: &Subscription, now: u64) -> HttpResult<()> {
        self.sql.exec(
            "INSERT INTO push (id, data, created_at) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            vec![V::from(id), V::from(serde_json::to_string(sub)?), int(now)],
        )?;
        Ok(())
    }

    /// Whether there was a subscription of that id.
    pub fn delete_subscription(&self, id: &str) -> HttpResult<bool> {
        let gone = self
            .sql
            .exec("DELETE FROM push WHERE id = ?", vec![V::from(id)])?
            .rows_written();
        Ok(gone > 0)
    }

    /// The rooms whose counts the person's sockets follow.
    pub fn watched_rooms(&self) -> HttpResult<Vec<String>> {
        let rows: Vec<RoomId> = select(&self.sql, "SELECT room_id FROM rooms", None)?;
        Ok(rows.into_iter().map(|r| r.room_id).collect())
    }

    /// A room's unread count as it says it is.
    pub fn set_room_unread(&self, room_id: &str, unread: u64) -> HttpResult<()> {
        self.room_unread(room_id, unread, "unread = excluded.unread")
    }

    /// More unread messages in a room.
    pub fn add_room_unread(&self, room_id: &str, added: u64) -> HttpResult<()> {
        self.room_unread(room_id, added, "unread = unread + excluded.unread")
    }

    fn room_unread(&self, room_id: &str, n: u64, update: &str) -> HttpResult<()> {
        self.sql.exec(
            &format!(
                "INSERT INTO rooms (room_id, unread) VALUES (?, ?)
                 ON CONFLICT (room_id) DO UPDATE SET {update}"
            ),
            vec![V::from(room_id), int(n)],
        )?;
        Ok(())
    }

    /// No socket follows the rooms any more.
    pub fn forget_rooms(&self) -> HttpResult<()> {
        self.sql.exec("DELETE FROM rooms", None)?;
        Ok(())
    }
}

impl PersonStore for SqlPersonStore {
    type Error = crate::http::Failure;

    fn user(&self) -> HttpResult<Option<String>> {
        self.meta(USER)
    }

    fn prefs(&self) -> HttpResult<Prefs> {
        Ok(match self.meta(PREFS)? {
            Some(p) => serde_json::from_str(&p)?,
            None => Prefs::default(),
        })
    }

    fn digest_at(&self) -> HttpResult<Option<u64>> {
        Ok(self.meta(DIGEST_AT)?.and_then(|v| v.parse().ok()))
    }

    fn set_digest_at(&mut self, at: Option<u64>) -> HttpResult<()> {
        match at {
            Some(at) => self.remember(DIGEST_AT, &at.to_string()),
            None => {
                self.sql
                    .exec("DELETE FROM meta WHERE k = ?", vec![V::from(DIGEST_AT)])?;
                Ok(())
            }
        }
    }

    fn insert_item(
        &mut self,
        item: &NewItem,
        at: u64,
        email_at: Option<u64>,
    ) -> HttpResult<Option<u64>> {
        #[derive(Deserialize)]
        struct Id {
            id: u64,
        }
        let inserted: Vec<Id> = select(
            &self.sql,
            "INSERT INTO items (key, room_id, kind, data, at, email_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (key) DO NOTHING RETURNING id",
            vec![
                V::from(item.key()),
                V::from(item.room_id.as_str()),
                V::from(item.kind.as_str()),
                V::from(serde_json::to_string(item)?),
                int(at),
                email_at.map_or(V::Null, int),
            ],
        )?;
        Ok(inserted.first().map(|r| r.id))
    }

    fn unread_items(&self) -> HttpResult<u64> {
        #[derive(Deserialize)]
        struct Count {
            n: u64,
        }
        let rows: Vec<Count> = select(
            &self.sql,
            "SELECT COUNT(*) AS n FROM items WHERE read = 0",
            None,
        )?;
        Ok(rows.first().map_or(0, |c| c.n))
    }

    fn counts(&self, room: Option<&str>) -> HttpResult<BTreeMap<String, Counts>> {
        let (filter, args) = match room {
            Some(r) => (" AND room_id = ?", vec![V::from(r)]),
            None => ("", vec![]),
        };
        let mentions: Vec<RoomCount> = select(
            &self.sql,
            &format!(
                "SELECT room_id, COUNT(*) AS n FROM items
                 WHERE read = 0 AND kind IN ('mention', 'reply'){filter} GROUP BY room_id"
            ),
            args.clone(),
        )?;
        let unread: Vec<RoomCount> = select(
            &self.sql,
            &format!("SELECT room_id, unread AS n FROM rooms WHERE 1 = 1{filter}"),
            args,
        )?;
        let mut counts: BTreeMap<String, Counts> = unread
            .into_iter()
            .map(|r| {
                let c = Counts {
                    unread: r.n,
                    mentions: 0,
                };
                (r.room_id, c)
            })
            .collect();
        for r in mentions {
            counts.entry(r.room_id).or_default().mentions = r.n;
        }
        Ok(counts)
    }

    fn mark_read(&mut self, ids: &[u64], all: bool) -> HttpResult<Vec<String>> {
        let rooms: Vec<RoomId> = if all {
            select(
                &self.sql,
                "UPDATE items SET read = 1, email_at = NULL WHERE read = 0 RETURNING room_id",
                None,
            )?
        } else {
            select(
                &self.sql,
                "UPDATE items SET read = 1, email_at = NULL
                 WHERE read = 0 AND id IN (SELECT value FROM json_each(?)) RETURNING room_id",
                vec![V::from(serde_json::to_string(ids)?)],
            )?
        };
        Ok(rooms.into_iter().map(|r| r.room_id).collect())
    }

    fn emails_due(&self, now: u64, limit: u32) -> HttpResult<Vec<(u64, NewItem)>> {
        #[derive(Deserialize)]
        struct Due {
            id: u64,
            data: String,
        }
        let due: Vec<Due> = select(
            &self.sql,
            "SELECT id, data FROM items WHERE email_at IS NOT NULL AND email_at <= ? AND read = 0
             ORDER BY email_at LIMIT ?",
            vec![int(now), int(limit.into())],
        )?;
        due.into_iter()
            .map(|d| Ok((d.id, serde_json::from_str(&d.data)?)))
            .collect()
    }

    fn email_queued(&mut self, id: u64) -> HttpResult<()> {
        self.sql.exec(
            "UPDATE items SET email_at = NULL WHERE id = ?",
            vec![int(id)],
        )?;
        Ok(())
    }

    fn next_email_at(&self) -> HttpResult<Option<u64>> {
        #[derive(Deserialize)]
        struct Next {
            at: Option<u64>,
        }
        let next: Vec<Next> = select(
            &self.sql,
            "SELECT MIN(email_at) AS at FROM items WHERE email_at IS NOT NULL",
            None,
        )?;
        Ok(next.first().and_then(|n| n.at))
    }

    fn drop_before(&mut self, before: u64) -> HttpResult<()> {
        self.sql
            .exec("DELETE FROM items WHERE at < ?", vec![int(before)])?;
        Ok(())
    }

    fn digest_rooms(&self, since: u64, limit: usize) -> HttpResult<Vec<DigestRoom>> {
        Ok(select(
            &self.sql,
            "SELECT room_id, COUNT(*) AS unread,
                    SUM(kind IN ('mention', 'reply')) AS mentions
             FROM items WHERE read = 0 AND at >= ?
             GROUP BY room_id ORDER BY unread DESC, room_id LIMIT ?",
            vec![int(since), int(limit as u64)],
        )?)
    }
}
