// A small client for the room socket protocol, on the `ws` package. Every
// frame the server sends is checked against core/openapi.json.
import WebSocket from 'ws';
import { randomIp } from './harness.mjs';
import { checkServerFrame } from './openapi.mjs';

export function connect(server, roomId, token, { since, protocols, ip } = {}) {
  const q = new URLSearchParams();
  if (!protocols) q.set('token', token);
  if (since !== undefined) q.set('since', String(since));
  const url = `${server.url.replace('http', 'ws')}/api/v1/rooms/${roomId}/ws?${q}`;
  const ws = new WebSocket(url, protocols, { headers: { 'cf-connecting-ip': ip ?? randomIp() } });
  const client = {
    ws,
    frames: [],
    waiters: [],
    closed: null,
    send(frame) { ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)); },
    /** Resolves with the first frame (seen or future) matching `pred`. */
    next(pred, timeoutMs = 5000, from = 0) {
      const found = client.frames.slice(from).find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting; saw ${JSON.stringify(client.frames.slice(-5))}`)), timeoutMs);
        client.waiters.push({ pred, resolve: (f) => { clearTimeout(timer); resolve(f); } });
      });
    },
    /** Waits until `n` frames of `type` have arrived; returns them. */
    async count(type, n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (client.frames.filter((f) => f.type === type).length < n) {
        if (Date.now() > deadline) {
          const others = client.frames.filter((f) => f.type !== type).slice(-5);
          throw new Error(`only ${client.frames.filter((f) => f.type === type).length}/${n} ${type} frames; the last others: ${JSON.stringify(others)}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return client.frames.filter((f) => f.type === type);
    },
    close() { ws.close(); },
    closedPromise: null,
  };
  client.closedPromise = new Promise((resolve) => {
    ws.on('close', (code, reason) => { client.closed = { code, reason: reason.toString() }; resolve(client.closed); });
  });
  ws.on('message', (data, isBinary) => {
    const frame = isBinary ? { type: 'binary' } : JSON.parse(data.toString());
    // A frame the document does not describe fails the test that saw it.
    if (!isBinary) checkServerFrame(frame);
    client.frames.push(frame);
    client.waiters = client.waiters.filter((w) => {
      if (w.pred(frame)) { w.resolve(frame); return false; }
      return true;
    });
  });
  client.opened = new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
  return client;
}

/** Connects and waits for `hello`. */
export async function join(server, roomId, token, opts) {
  const c = connect(server, roomId, token, opts);
  await c.opened;
  await c.next((f) => f.type === 'hello');
  return c;
}
