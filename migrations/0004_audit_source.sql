-- Audit entries are written by the room objects through an outbox and copied
-- to D1, possibly more than once after a failure: `source` (room id and the
-- entry's sequence number in its room) makes each copy land once.

ALTER TABLE audit_log ADD COLUMN source TEXT;
CREATE UNIQUE INDEX audit_log_source ON audit_log(source);
