-- The AI teammate: analysis jobs, token usage per room per day, the day's
-- check-ins, the providers' circuit breakers, and when each room was last
-- active (what the daily check-in picks rooms by). Times are unix seconds
-- unless the column says otherwise.

ALTER TABLE rooms ADD COLUMN last_activity_at INTEGER;

CREATE TABLE jobs (
  id         TEXT PRIMARY KEY,
  room_id    TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
  file_id    TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('analyze')),
  status     TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
  progress   INTEGER NOT NULL DEFAULT 0,   -- percent
  result     TEXT,                         -- JSON: {summary, key_points, ...}
  error      TEXT,
  attempts   INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_file ON jobs(file_id, status);

CREATE TABLE ai_usage (
  room_id     TEXT NOT NULL,
  day         TEXT NOT NULL,               -- YYYY-MM-DD, UTC
  provider    TEXT NOT NULL,
  calls       INTEGER NOT NULL,
  tokens_in   INTEGER NOT NULL,
  tokens_out  INTEGER NOT NULL,
  cost_micros INTEGER NOT NULL,            -- millionths of a US dollar
  PRIMARY KEY (room_id, day, provider)
);

CREATE TABLE ai_checkins (
  room_id     TEXT NOT NULL,
  day         TEXT NOT NULL,
  finished_at INTEGER NOT NULL,
  PRIMARY KEY (room_id, day)
);

CREATE TABLE ai_breakers (
  provider   TEXT PRIMARY KEY,
  failures   INTEGER NOT NULL,
  open_until INTEGER NOT NULL               -- unix milliseconds
);
