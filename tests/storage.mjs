// Reads the state `wrangler dev` persists for a test server: the room objects'
// SQLite files and R2's object index. Tests check with it what the platform
// enforces but local workerd does not (the 2 MB row limit), and what no API
// shows (backups in R2).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

function databases(dir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite')
    .map((f) => join(dir, f));
}

function query(file, sql, params) {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all(...params);
  } finally {
    db.close();
  }
}

/** The rows `sql` returns in every room object's storage (the `tessera-objects` script's `RoomDO`), together. */
export function roomRows(server, sql, ...params) {
  return databases(join(server.dir, 'v3', 'do', 'tessera-objects-RoomDO')).flatMap((f) => query(f, sql, params));
}

/** The keys of the R2 objects that start with `prefix`. */
export function r2Keys(server, prefix) {
  return databases(join(server.dir, 'v3', 'r2', 'miniflare-R2BucketObject'))
    .flatMap((f) => query(f, 'SELECT key FROM _mf_objects WHERE substr(key, 1, length(?)) = ?', [prefix, prefix]))
    .map((r) => r.key)
    .sort();
}
