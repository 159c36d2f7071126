-- Approval requests of every room, copied here by their room objects (which
-- keep them and are their one writer), so that a person's inbox across the
-- rooms they own is one query (core::inbox). `settled_at` is when a request
-- was decided, or while pending when it expires; `rev` is the room's outbox
-- sequence of the copy, so an older copy never overwrites a newer one. The
-- cron drops copies 30 days after they settle.
CREATE TABLE approvals (
  n              INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id        TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
  id             TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
  requested_by   TEXT NOT NULL,
  requested_kind TEXT NOT NULL CHECK (requested_kind IN ('user', 'ai', 'rule')),
  created_at     INTEGER NOT NULL,
  settled_at     INTEGER NOT NULL,
  data           TEXT NOT NULL,             -- JSON: the request as the room keeps it
  rev            INTEGER NOT NULL,
  UNIQUE (room_id, id)
);
CREATE INDEX approvals_room ON approvals(room_id, settled_at);
CREATE INDEX approvals_requester ON approvals(requested_by, settled_at);
CREATE INDEX approvals_settled ON approvals(settled_at);

-- The audit log's filters (core::audit): each walks its own index of a room's
-- entries, newest first.
CREATE INDEX audit_log_actor ON audit_log(room_id, actor, id);
CREATE INDEX audit_log_kind ON audit_log(room_id, actor_kind, id);
CREATE INDEX audit_log_action ON audit_log(room_id, action, id);
CREATE INDEX audit_log_at ON audit_log(room_id, at);
