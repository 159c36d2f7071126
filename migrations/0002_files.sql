-- Files: one row per upload, from creation to a finished file. The bytes are in
-- R2 under r2_key; an Upload Durable Object (named by the id) runs the upload.
-- Times are unix seconds.

CREATE TABLE files (
  id            TEXT PRIMARY KEY,
  room_id       TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
  uploader_id   TEXT NOT NULL,
  name          TEXT NOT NULL,            -- sanitised
  declared_type TEXT NOT NULL,            -- what the client said; never used to render
  content_type  TEXT,                     -- sniffed from the first bytes when finished
  size          INTEGER NOT NULL,
  sha256        TEXT,                     -- hex, when finished
  status        TEXT NOT NULL CHECK (status IN ('uploading', 'ready', 'expired')),
  r2_key        TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  completed_at  INTEGER,
  expires_at    INTEGER NOT NULL          -- an unfinished upload is aborted then
);
CREATE INDEX files_room ON files(room_id, status, created_at, id);
