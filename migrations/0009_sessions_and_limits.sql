-- Sessions that end at once, per-account sign-in limits, per-member shares of
-- a room's AI budget, and room deletions that finish even after a failure.
-- Times are unix seconds.

-- An access token names its session (`sid`: the refresh-token family) and is
-- refused once that family has no live token. Each family has at most one
-- live row, so this index makes the check one lookup in the query that
-- authentication already runs.
CREATE INDEX refresh_tokens_live ON refresh_tokens(family_id)
  WHERE used_at IS NULL AND revoked_at IS NULL;

-- "Sign out everywhere" and password changes: tokens of an external identity
-- provider issued at or before this time are refused (its own sessions have
-- no `sid` we could revoke).
ALTER TABLE users ADD COLUMN revoked_before INTEGER;

-- Failed password sign-ins per email (whether or not an account has it, so
-- the answer reveals nothing), in fixed windows.
CREATE TABLE sign_in_failures (
  email        TEXT PRIMARY KEY,           -- lower-cased
  window_start INTEGER NOT NULL,
  failures     INTEGER NOT NULL
);

-- AI tokens per member per room per UTC day (each member's share of the
-- room's budget); the room's own total stays in ai_usage.
CREATE TABLE ai_member_usage (
  room_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  day     TEXT NOT NULL,                   -- YYYY-MM-DD, UTC
  tokens  INTEGER NOT NULL,
  PRIMARY KEY (room_id, user_id, day)
);

-- A deleted room's object storage and R2 objects still to erase: written in
-- the same transaction that deletes the room, removed once both are gone (the
-- daily cron retries what a failure left).
CREATE TABLE room_purges (
  room_id    TEXT PRIMARY KEY,
  deleted_at INTEGER NOT NULL
);
