// The JavaScript reference for the chat benchmark: a minimal chat room on the npm
// `partyserver` package, doing the same work per message as Tessera's RoomDO
// (assign a seq, store the message in the object's SQLite, ack, broadcast).
import { Server, routePartykitRequest } from 'partyserver';

export class JsChatRoom extends Server {
  static options = { hibernate: true };

  onStart() {
    this.ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      seq INTEGER PRIMARY KEY, author TEXT, client_msg_id TEXT, body TEXT, created_at INTEGER,
      UNIQUE (author, client_msg_id))`);
  }

  onMessage(conn, raw) {
    const f = JSON.parse(raw);
    if (f.type !== 'send') return;
    const sql = this.ctx.storage.sql;
    const seq = (sql.exec('SELECT MAX(seq) AS s FROM messages').one().s ?? 0) + 1;
    const now = Date.now();
    sql.exec('INSERT INTO messages VALUES (?, ?, ?, ?, ?)', seq, conn.id, f.client_msg_id, f.body, now);
    conn.send(JSON.stringify({ type: 'ack', client_msg_id: f.client_msg_id, id: seq, seq, duplicate: false }));
    this.broadcast(JSON.stringify({
      type: 'message', seq,
      message: { id: seq, seq, author: conn.id, client_msg_id: f.client_msg_id, body: f.body, created_at: now },
    }));
  }
}

export default {
  async fetch(req, env) {
    return (await routePartykitRequest(req, env)) ?? new Response('not found', { status: 404 });
  },
};
