-- Integrations of a room: outgoing webhooks with their delivery log, incoming
-- webhooks (only a hash of each URL's secret), and the mail log that keeps
-- one email per event. Times are unix seconds.

CREATE TABLE webhooks (
  id              TEXT PRIMARY KEY,
  room_id         TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
  url             TEXT NOT NULL,
  events          TEXT NOT NULL,            -- JSON array of event types
  description     TEXT NOT NULL DEFAULT '',
  secret          TEXT NOT NULL,            -- whsec_…: needed to sign, so kept
  previous_secret TEXT,                     -- still signs until previous_until
  previous_until  INTEGER,
  enabled         INTEGER NOT NULL DEFAULT 1,
  disabled_reason TEXT,
  failures_in_row INTEGER NOT NULL DEFAULT 0,
  created_by      TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX webhooks_room ON webhooks(room_id);

CREATE TABLE webhook_deliveries (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  hook_id     TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  msg_id      TEXT NOT NULL,
  event       TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  status      INTEGER,                      -- HTTP status; NULL when no answer
  ok          INTEGER NOT NULL,
  error       TEXT,
  response    TEXT,                         -- the first 512 characters
  duration_ms INTEGER NOT NULL,
  at          INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(hook_id, id);

CREATE TABLE incoming_hooks (
  id           TEXT PRIMARY KEY,
  room_id      TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  secret_hash  TEXT NOT NULL,               -- SHA-256 of the URL's secret
  created_by   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE INDEX incoming_hooks_room ON incoming_hooks(room_id);

CREATE TABLE email_log (
  key        TEXT PRIMARY KEY,              -- the event's key (one email each)
  user_id    TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'skipped')),
  attempts   INTEGER NOT NULL,
  error      TEXT,
  updated_at INTEGER NOT NULL
);
