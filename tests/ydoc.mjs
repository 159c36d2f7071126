// Unmodified yjs + y-websocket clients for Tessera's document sockets.
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import WebSocket from 'ws';
import { api, register, randomIp } from './harness.mjs';

/** `ws` with a per-client address, so the API rate limit sees separate clients. */
class ClientSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { 'cf-connecting-ip': randomIp() } });
  }
}

/** Connects a Y.Doc the way any Yjs app does: `origin + /api/v1/rooms/{room}/docs`. */
export function open(server, room, name, token, ydoc = new Y.Doc()) {
  const provider = new WebsocketProvider(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs`, name, ydoc, {
    WebSocketPolyfill: ClientSocket,
    params: { token },
    disableBc: true,
    maxBackoffTime: 500,
  });
  return { provider, ydoc, text: ydoc.getText('t') };
}

export function synced(provider, timeoutMs = 10_000) {
  if (provider.synced) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('not synced')), timeoutMs);
    const on = (isSynced) => {
      if (isSynced) {
        clearTimeout(timer);
        provider.off('sync', on);
        resolve();
      }
    };
    provider.on('sync', on);
  });
}

/** Waits until `pred()` holds, polling. */
export async function until(pred, timeoutMs = 10_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { Y };

/** A project room of a fresh owner, with one fresh person per role given. */
export async function roomWith(server, ...roles) {
  const owner = await register(server, 'Owner');
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Docs', kind: 'project' } })).body.id;
  const people = [];
  for (const role of roles) {
    const u = await register(server, role);
    await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: u.user.id, role } });
    people.push(u);
  }
  return { room, owner, people };
}

/** A document's Y.Text root `name` as the server reads it (`?format=text`). */
export async function textOf(server, room, doc, token, name = 't') {
  const res = await fetch(`${server.url}/api/v1/rooms/${room}/docs/${doc}?format=text&name=${name}`, {
    headers: { authorization: `Bearer ${token}`, 'cf-connecting-ip': randomIp() },
  });
  return res.text();
}

/** Ends y-websocket clients. */
export const done = (...clients) => clients.forEach((c) => { c.provider.destroy(); c.ydoc.destroy(); });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a failure naming `what` after `ms`. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Raw y-protocol frames, for tests that send what no well-behaved client would.

/** A lib0 variable-length unsigned integer. */
export function varUint(n) {
  const out = [];
  while (n > 127) { out.push((n % 128) | 128); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}

/** A lib0 length-prefixed byte array. */
export const varBytes = (bytes) => [...varUint(bytes.length), ...bytes];

/** A lib0 length-prefixed UTF-8 string. */
export const varString = (s) => varBytes(new TextEncoder().encode(s));

/** messageSync / messageYjsUpdate carrying one update. */
export const updateMessage = (update) => Uint8Array.from([0, 2, ...varBytes(update)]);

/** messageSync / SyncStep1 with the state vector of `ydoc`. */
export const syncStep1 = (ydoc) => Uint8Array.from([0, 0, ...varBytes(Y.encodeStateVector(ydoc))]);

/** messageAwareness with one `[clientId, clock, state]` entry per client. */
export const awarenessMessage = (entries) => Uint8Array.from([1, ...varBytes([
  ...varUint(entries.length),
  ...entries.flatMap(([id, clock, state]) => [...varUint(id), ...varUint(clock), ...varString(JSON.stringify(state))]),
])]);

/**
 * A document socket on the `ws` package that keeps every binary message it
 * receives and how it closed: `{ ws, received, closed }` once open.
 */
export function rawDocSocket(server, room, name, token) {
  const url = `${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/${name}?token=${token}`;
  const ws = new WebSocket(url, { headers: { 'cf-connecting-ip': randomIp() } });
  ws.binaryType = 'arraybuffer';
  const socket = { ws, received: [], closed: null };
  socket.closedPromise = new Promise((resolve) => {
    ws.on('close', (code, reason) => { socket.closed = { code, reason: reason.toString() }; resolve(socket.closed); });
  });
  ws.on('message', (data) => socket.received.push(new Uint8Array(data)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(socket));
    ws.once('error', reject);
  });
}
