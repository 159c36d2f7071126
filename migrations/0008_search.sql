-- The cross-room search index: every room object sends its index changes
-- here through an outbox, so that one query searches all of a person's rooms
-- (filtered by their memberships at query time). The same two tables as in
-- each room object (core/src/search/sql.rs, SCHEMA; a test keeps them equal).
-- The tokenizer's extra separator is U+E002, a private-use character that
-- splits CJK text into characters (core/src/search/text.rs).

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
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(title, body, prefix = '2 3', tokenize = "unicode61 remove_diacritics 2 separators ''");
