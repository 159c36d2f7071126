// What the document benchmarks share: the editing trace turned into the Yjs
// updates an editor sends, y-websocket frames, and a replay from a writer
// socket until a reader socket holds the final text.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { ROOT } from '../../tests/harness.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export const trace = JSON.parse(gunzipSync(readFileSync(join(ROOT, '../shared/data/editing-traces/automerge-paper.json.gz'))));

/** The updates an editor would send for the first `edits` edits: one per edit, or one per `batch` edits. */
export function updatesFor(edits, batch) {
  const doc = new Y.Doc();
  const text = doc.getText('t');
  const out = [];
  doc.on('update', (u) => out.push(u));
  for (let i = 0; i < edits; i += batch) {
    doc.transact(() => {
      for (const { patches } of trace.txns.slice(i, Math.min(i + batch, edits))) {
        for (const [pos, del, ins] of patches) {
          if (del) text.delete(pos, del);
          if (ins) text.insert(pos, ins);
        }
      }
    });
  }
  return { updates: out, final: text.toString() };
}

/** y-websocket "sync update" frames: [0, 2, varuint length, bytes]. */
export function frame(update) {
  const len = [];
  let n = update.length;
  while (n > 127) { len.push((n & 127) | 128); n >>>= 7; }
  len.push(n);
  const f = new Uint8Array(2 + len.length + update.length);
  f.set([0, 2, ...len]);
  f.set(update, 2 + len.length);
  return f;
}

export function openWs(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.binaryType = 'arraybuffer';
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends every frame, keeping the socket's buffer bounded; fails if the server stops reading for 30 s. */
export async function sendAll(ws, frames) {
  for (const f of frames) {
    ws.send(f);
    if (ws.bufferedAmount <= 1 << 20) continue;
    let [last, since] = [ws.bufferedAmount, Date.now()];
    while (ws.bufferedAmount > 1 << 18) {
      if (ws.bufferedAmount !== last) [last, since] = [ws.bufferedAmount, Date.now()];
      if (Date.now() - since > 30_000) throw new Error(`the server stopped reading (${last} bytes unsent, socket state ${ws.readyState})`);
      await sleep(1);
    }
  }
}

/** A reader: a Y.Doc fed by the y-websocket protocol from a raw socket. */
export async function reader(url, headers) {
  const ws = await openWs(url, headers);
  const doc = new Y.Doc();
  ws.on('message', (data) => {
    const b = new Uint8Array(data);
    if (b[0] !== 0) return;
    // sync step 2 or update: [0, 1|2, varuint len, update]
    if (b[1] !== 1 && b[1] !== 2) return;
    let i = 2; let len = 0; let shift = 0;
    for (;;) { const x = b[i++]; len |= (x & 127) << shift; if (x < 128) break; shift += 7; }
    Y.applyUpdate(doc, b.subarray(i, i + len));
  });
  // Ask for the current state, as a provider does.
  const sv = Y.encodeStateVector(doc);
  ws.send(Uint8Array.from([0, 0, sv.length, ...sv]));
  const text = doc.getText('t');
  // Length first: it is kept by Yjs, while the string is built on every call,
  // and this is polled every 5 ms while the machine is busy with the replay.
  return { ws, holds: (final) => text.length === final.length && text.toString() === final };
}

export async function replayYjs(writerUrl, readerUrl, updates, final, headers = () => ({})) {
  const r = await reader(readerUrl, headers());
  const w = await openWs(writerUrl, headers());
  await sleep(200);
  const frames = updates.map(frame);
  const t0 = performance.now();
  await sendAll(w, frames);
  const deadline = Date.now() + 600_000;
  while (!r.holds(final)) {
    if (Date.now() > deadline) throw new Error('replay did not converge');
    await sleep(5);
  }
  const ms = performance.now() - t0;
  w.close(); r.ws.close();
  return ms;
}
