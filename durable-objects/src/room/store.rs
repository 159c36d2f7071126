//! The Room Durable Object's SQLite schema and the [`ChatStore`] over it.

use crate::sql::{int, select};
use serde::Deserialize;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use tessera_core::chat::{
    mention_handle, prune_upto, ChatStore, MessageEvent, ReadMarker, StoredMessage,
};
use tessera_core::files::FileRef;
use tessera_core::protocol::ServerFrame;
use tessera_core::room::RoomStore;
use tessera_core::search::index::Change;
use worker::{SqlStorage, SqlStorageValue as V};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  author TEXT NOT NULL,
  author_name TEXT NOT NULL,
  client_msg_id TEXT NOT NULL,
  body TEXT NOT NULL,
  reply_to INTEGER,
  mentions TEXT NOT NULL,
  attachments TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  edited_at INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0,
  UNIQUE (author, client_msg_id)
);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, frame TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reactions (
  message_id INTEGER NOT NULL,
  emoji TEXT NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY (message_id, emoji, user_id)
);
CREATE TABLE IF NOT EXISTS people (
  user_id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  handle TEXT NOT NULL,
  last_seen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS people_handle ON people(handle);
CREATE TABLE IF NOT EXISTS reads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
-- The room's finished files, as the upload objects announce them: what chat
-- attachments are checked against (the metadata of record is in D1).
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL
);
";

pub struct SqlChatStore {
    pub sql: SqlStorage,
    /// The newest event's seq as the object last read or wrote it (`None`:
    /// not known yet): a send reads it once per object, not once per message.
    pub head: Rc<Cell<Option<u64>>>,
    /// Whether messages are indexed for search as they are written.
    pub index: bool,
    /// Events older than the newest `retained` are pruned (messages stay).
    pub retained: u64,
}

#[derive(Deserialize)]
struct Row {
    id: u64,
    author: String,
    author_name: String,
    client_msg_id: String,
    body: String,
    reply_to: Option<u64>,
    mentions: String,
    attachments: String,
    created_at: u64,
    edited_at: Option<u64>,
    deleted: u8,
}

impl From<Row> for StoredMessage {
    fn from(r: Row) -> Self {
        StoredMessage {
            id: r.id,
            author: r.author,
            author_name: r.author_name,
            client_msg_id: r.client_msg_id,
            body: r.body,
            reply_to: r.reply_to,
            mentions: serde_json::from_str(&r.mentions).unwrap_or_default(),
            attachments: serde_json::from_str(&r.attachments).unwrap_or_default(),
            created_at: r.created_at,
            edited_at: r.edited_at,
            deleted: r.deleted != 0,
        }
    }
}

/// Ids and seqs stay below 2^53 so they survive JavaScript numbers.
const MAX_SAFE_ID: u64 = (1 << 53) - 1;

const MESSAGE_COLUMNS: &str =
    "id, author, author_name, client_msg_id, body, reply_to, mentions, attachments, created_at, edited_at, deleted";

#[derive(Deserialize)]
struct Seq {
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct ReactionRow {
    message_id: u64,
    emoji: String,
    user_id: String,
}

impl SqlChatStore {
    fn one_seq(&self, query: &str) -> worker::Result<u64> {
        let rows: Vec<Seq> = select(&self.sql, query, None)?;
        Ok(rows.first().and_then(|r| r.seq).unwrap_or(0))
    }

    fn messages_where(&self, clause: &str, args: Vec<V>) -> worker::Result<Vec<StoredMessage>> {
        let rows: Vec<Row> = select(
            &self.sql,
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages {clause}"),
            args,
        )?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The newest `limit` live messages written since `since_ms`, oldest
    /// first, and how many there are in all.
    pub fn since(&self, since_ms: u64, limit: u32) -> worker::Result<(Vec<StoredMessage>, u64)> {
        let mut rows = self.messages_where(
            "WHERE created_at >= ? AND deleted = 0 ORDER BY id DESC LIMIT ?",
            vec![int(since_ms), int(limit.into())],
        )?;
        rows.reverse();
        #[derive(Deserialize)]
        struct Count {
            n: u64,
        }
        let count: Vec<Count> = select(
            &self.sql,
            "SELECT COUNT(*) AS n FROM messages WHERE created_at >= ? AND deleted = 0",
            vec![int(since_ms)],
        )?;
        Ok((rows, count.first().map_or(0, |c| c.n)))
    }

    /// A page of history by id: newest first before `before`, oldest first
    /// after `after`; deleted messages as tombstones, or left out.
    pub fn page(
        &self,
        before: Option<u64>,
        after: Option<u64>,
        limit: u32,
        with_deleted: bool,
    ) -> worker::Result<Vec<StoredMessage>> {
        let live = if with_deleted { "" } else { "AND deleted = 0" };
        let mut page = match (before, after) {
            (_, Some(after)) => self.messages_where(
                &format!("WHERE id > ? AND id < ? {live} ORDER BY id ASC LIMIT ?"),
                vec![
                    int(after),
                    int(before.unwrap_or(MAX_SAFE_ID)),
                    int(limit.into()),
                ],
            )?,
            (before, None) => {
                let mut rows = self.messages_where(
                    &format!("WHERE id < ? {live} ORDER BY id DESC LIMIT ?"),
                    vec![int(before.unwrap_or(MAX_SAFE_ID)), int(limit.into())],
                )?;
                rows.reverse();
                rows
            }
        };
        page.sort_by_key(|m| m.id);
        Ok(page)
    }

    /// Reactions of every message in `ids` (one query).
    pub fn reactions_of(
        &self,
        ids: &[u64],
    ) -> worker::Result<BTreeMap<u64, BTreeMap<String, Vec<String>>>> {
        let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(BTreeMap::new());
        };
        let rows: Vec<ReactionRow> = select(&self.sql, "SELECT message_id, emoji, user_id FROM reactions WHERE message_id BETWEEN ? AND ? ORDER BY rowid",
                vec![int(*lo), int(*hi)])?;
        let mut out: BTreeMap<u64, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for r in rows {
            out.entry(r.message_id)
                .or_default()
                .entry(r.emoji)
                .or_default()
                .push(r.user_id);
        }
        Ok(out)
    }

    /// Forgets someone's read marker (they left the room: their "seen by"
    /// goes, and a return starts from the head's history as a new member).
    pub fn forget_read(&self, user: &str) -> worker::Result<()> {
        self.sql
            .exec("DELETE FROM reads WHERE user_id = ?", vec![V::from(user)])?;
        Ok(())
    }

    /// Records a finished file; returns whether it was new (announcements may repeat).
    pub fn add_file(&self, f: &FileRef) -> worker::Result<bool> {
        let cursor = self.sql.exec(
            "INSERT INTO files (id, name, content_type, size) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                V::from(f.id.as_str()),
                V::from(f.name.as_str()),
                V::from(f.content_type.as_str()),
                int(f.size),
            ],
        )?;
        Ok(cursor.rows_written() > 0)
    }

    /// Forgets a deleted file; returns whether it was known.
    pub fn remove_file(&self, id: &str) -> worker::Result<bool> {
        let cursor = self
            .sql
            .exec("DELETE FROM files WHERE id = ?", vec![V::from(id)])?;
        Ok(cursor.rows_written() > 0)
    }
}

impl ChatStore for SqlChatStore {
    type Error = worker::Error;

    fn head_seq(&self) -> worker::Result<u64> {
        if let Some(seq) = self.head.get() {
            return Ok(seq);
        }
        let seq = self.one_seq("SELECT MAX(seq) AS seq FROM events")?;
        self.head.set(Some(seq));
        Ok(seq)
    }

    fn message(&self, id: u64) -> worker::Result<Option<StoredMessage>> {
        Ok(self.messages_where("WHERE id = ?", vec![int(id)])?.pop())
    }

    fn message_by_client_id(
        &self,
        author: &str,
        client_msg_id: &str,
    ) -> worker::Result<Option<StoredMessage>> {
        Ok(self
            .messages_where(
                "WHERE author = ? AND client_msg_id = ?",
                vec![V::from(author), V::from(client_msg_id)],
            )?
            .pop())
    }

    fn reactions(&self, id: u64) -> worker::Result<BTreeMap<String, Vec<String>>> {
        Ok(self.reactions_of(&[id])?.remove(&id).unwrap_or_default())
    }

    fn set_reaction(&mut self, id: u64, user: &str, emoji: &str, on: bool) -> worker::Result<bool> {
        let query = if on {
            "INSERT INTO reactions (message_id, emoji, user_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?"
        };
        let cursor = self
            .sql
            .exec(query, vec![int(id), V::from(emoji), V::from(user)])?;
        Ok(cursor.rows_written() > 0)
    }

    fn insert_message(&mut self, m: &StoredMessage) -> worker::Result<bool> {
        let inserted = self.sql.exec(
            &format!(
                "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (author, client_msg_id) DO NOTHING RETURNING id"
            ),
            vec![
                int(m.id),
                V::from(m.author.as_str()),
                V::from(m.author_name.as_str()),
                V::from(m.client_msg_id.as_str()),
                V::from(m.body.as_str()),
                m.reply_to.map(int).unwrap_or(V::Null),
                V::from(serde_json::to_string(&m.mentions)?),
                V::from(serde_json::to_string(&m.attachments)?),
                int(m.created_at),
                m.edited_at.map(int).unwrap_or(V::Null),
                int(m.deleted.into()),
            ],
        )?;
        if inserted.raw().next().is_none() {
            return Ok(false);
        }
        // Searchable in the same turn as it is stored (and acknowledged).
        if self.index {
            super::search::write(&self.sql, &Change::of_message(m), true)?;
        }
        Ok(true)
    }

    fn update_message(&mut self, m: &StoredMessage) -> worker::Result<()> {
        self.sql.exec(
            "UPDATE messages SET body = ?, mentions = ?, attachments = ?, edited_at = ?, deleted = ? WHERE id = ?",
            vec![
                V::from(m.body.as_str()),
                V::from(serde_json::to_string(&m.mentions)?),
                V::from(serde_json::to_string(&m.attachments)?),
                m.edited_at.map(int).unwrap_or(V::Null),
                int(m.deleted.into()),
                int(m.id),
            ],
        )?;
        if self.index {
            super::search::write(&self.sql, &Change::of_message(m), false)?;
        }
        Ok(())
    }

    fn append_event(&mut self, seq: u64, frame: &ServerFrame) -> worker::Result<()> {
        self.sql.exec(
            "INSERT INTO events (seq, frame) VALUES (?, ?)",
            vec![int(seq), V::from(frame.to_json())],
        )?;
        self.head.set(Some(seq));
        if let Some(upto) = prune_upto(seq, self.retained) {
            self.sql
                .exec("DELETE FROM events WHERE seq <= ?", vec![int(upto)])?;
        }
        Ok(())
    }

    fn message_events(&self, id: u64) -> worker::Result<Vec<(u64, MessageEvent)>> {
        #[derive(Deserialize)]
        struct E {
            seq: u64,
            frame: String,
        }
        // Frames are serde's JSON of `ServerFrame` (tag first, then the
        // fields in order), and `,"id":N,` cannot occur inside a JSON string
        // unescaped: the pattern matches exactly the edits of message `id`.
        let edits = format!("{{\"type\":\"message_edited\",\"seq\":%,\"id\":{id},%");
        let rows: Vec<E> = select(
            &self.sql,
            "SELECT seq, frame FROM events WHERE seq = ? OR (seq > ? AND frame LIKE ?) ORDER BY seq",
            vec![int(id), int(id), V::from(edits)],
        )?;
        let mut events = Vec::new();
        for r in rows {
            if let Some(event) = MessageEvent::of_json(&r.frame)? {
                events.push((r.seq, event));
            }
        }
        Ok(events)
    }

    fn replace_event(&mut self, seq: u64, frame: &ServerFrame) -> worker::Result<()> {
        self.sql.exec(
            "UPDATE events SET frame = ? WHERE seq = ?",
            vec![V::from(frame.to_json()), int(seq)],
        )?;
        Ok(())
    }

    fn resolve_mention(&self, handle: &str) -> worker::Result<Option<String>> {
        #[derive(Deserialize)]
        struct U {
            user_id: String,
        }
        let rows: Vec<U> = select(
            &self.sql,
            "SELECT user_id FROM people WHERE handle = ? LIMIT 1",
            vec![V::from(handle)],
        )?;
        Ok(rows.into_iter().next().map(|u| u.user_id))
    }

    fn read_marker(&self, user: &str) -> worker::Result<u64> {
        let rows: Vec<Seq> = select(
            &self.sql,
            "SELECT seq FROM reads WHERE user_id = ?",
            vec![V::from(user)],
        )?;
        Ok(rows.first().and_then(|r| r.seq).unwrap_or(0))
    }

    fn set_read(&mut self, user: &str, seq: u64) -> worker::Result<u64> {
        self.sql.exec(
            "INSERT INTO reads (user_id, seq) VALUES (?, ?)
             ON CONFLICT (user_id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            vec![V::from(user), int(seq)],
        )?;
        ChatStore::read_marker(self, user)
    }

    /// One range scan from the marker (`id` is the key); mentions are the
    /// JSON array of user ids each message keeps.
    fn unread(&self, user: &str, read: u64) -> worker::Result<(u64, u64)> {
        #[derive(Deserialize)]
        struct N {
            unread: u64,
            mentions: Option<u64>,
        }
        let rows: Vec<N> = select(
            &self.sql,
            "SELECT COUNT(*) AS unread,
               SUM(EXISTS (SELECT 1 FROM json_each(messages.mentions) WHERE value = ?)) AS mentions
             FROM messages WHERE id > ? AND author != ? AND deleted = 0",
            vec![V::from(user), int(read), V::from(user)],
        )?;
        Ok(rows
            .first()
            .map_or((0, 0), |r| (r.unread, r.mentions.unwrap_or(0))))
    }

    fn reads_except(&self, user: &str, limit: u32) -> worker::Result<Vec<ReadMarker>> {
        select(
            &self.sql,
            "SELECT user_id, seq FROM reads WHERE user_id != ? ORDER BY seq DESC, user_id LIMIT ?",
            vec![V::from(user), int(limit.into())],
        )
    }

    fn file(&self, id: &str) -> worker::Result<Option<FileRef>> {
        let rows: Vec<FileRef> = select(
            &self.sql,
            "SELECT id, name, content_type, size FROM files WHERE id = ?",
            vec![V::from(id)],
        )?;
        Ok(rows.into_iter().next())
    }
}

impl RoomStore for SqlChatStore {
    fn oldest_seq(&self) -> Result<u64, Self::Error> {
        self.one_seq("SELECT MIN(seq) AS seq FROM events")
    }

    fn events_after(&self, after: u64) -> Result<Vec<String>, Self::Error> {
        #[derive(Deserialize)]
        struct F {
            frame: String,
        }
        let rows: Vec<F> = select(
            &self.sql,
            "SELECT frame FROM events WHERE seq > ? ORDER BY seq",
            vec![int(after)],
        )?;
        Ok(rows.into_iter().map(|r| r.frame).collect())
    }

    fn known_people(&self, limit: u32) -> Result<Vec<(String, String, u64)>, Self::Error> {
        #[derive(Deserialize)]
        struct P {
            user_id: String,
            display_name: String,
            last_seen: u64,
        }
        let rows: Vec<P> = select(
            &self.sql,
            "SELECT user_id, display_name, last_seen FROM people ORDER BY last_seen DESC LIMIT ?",
            vec![int(limit.into())],
        )?;
        Ok(rows
            .into_iter()
            .map(|p| (p.user_id, p.display_name, p.last_seen))
            .collect())
    }

    fn remember_person(&mut self, user: &str, name: &str, now_ms: u64) -> Result<(), Self::Error> {
        self.sql.exec(
            "INSERT INTO people (user_id, display_name, handle, last_seen) VALUES (?, ?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name,
               handle = excluded.handle, last_seen = excluded.last_seen",
            vec![
                V::from(user),
                V::from(name),
                V::from(mention_handle(name)),
                int(now_ms),
            ],
        )?;
        Ok(())
    }
}
