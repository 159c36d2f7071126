-- API keys for scripts and integrations (core::notify::apikeys). A key is
-- `tsk_<id>_<secret>`; only the SHA-256 of the secret is kept, so a key is
-- shown once, on creation. Revoking deletes the row: the key is refused from
-- the next request. Times are unix seconds.
CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,           -- 32 hex, part of the key
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  secret_hash  TEXT NOT NULL,              -- hex SHA-256 of the secret
  scope        TEXT NOT NULL,              -- JSON: rooms, access, resources
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER,                    -- NULL: until revoked
  last_used_at INTEGER                     -- written at most once a minute
);
CREATE INDEX api_keys_by_user ON api_keys(user_id, created_at);
