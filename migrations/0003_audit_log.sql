-- The audit log: every action asked of a room (by a person, the AI or a rule),
-- with its arguments and result. Append-only: the triggers refuse changes.

CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id     TEXT NOT NULL,
  actor       TEXT NOT NULL,
  actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('user', 'ai', 'rule')),
  action      TEXT NOT NULL,
  arguments   TEXT NOT NULL,              -- JSON
  result      TEXT NOT NULL,              -- JSON: {"status", ...}
  request_id  TEXT NOT NULL,
  at          INTEGER NOT NULL            -- unix seconds
);
CREATE INDEX audit_log_room ON audit_log(room_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
