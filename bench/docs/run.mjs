// Document benchmark: replays the automerge-paper editing trace (259,778 edits)
// through a document socket, one Yjs update per edit as an editor sends them,
// and again in batches of 100 edits, against:
//   Tessera (RoomDO, every update durable before broadcast),
//   the platform floor (a Durable Object that only counts messages),
//   y-partyserver (Yjs in a Durable Object, nothing persisted per update),
//   y-websocket-server (Node),
// all Durable Objects under the same local workerd (wrangler dev).
//
//   node bench/docs/run.mjs [--runs 3] [--edits N]
//
// Replay time: from the first update sent until a second, already connected
// client holds the final text (checked equal to the trace's endContent); for
// the floor, until the object has counted every message.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { api, freePort, launch, register, ROOT } from '../../tests/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('runs', 3);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const trace = JSON.parse(gunzipSync(readFileSync(join(ROOT, '../shared/data/editing-traces/automerge-paper.json.gz'))));
const EDITS = arg('edits', trace.txns.length);

/** The updates an editor would send: one per edit, or one per `batch` edits. */
function updatesFor(batch) {
  const doc = new Y.Doc();
  const text = doc.getText('t');
  const out = [];
  doc.on('update', (u) => out.push(u));
  for (let i = 0; i < EDITS; i += batch) {
    doc.transact(() => {
      for (const { patches } of trace.txns.slice(i, i + batch)) {
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
function frame(update) {
  const len = [];
  let n = update.length;
  while (n > 127) { len.push((n & 127) | 128); n >>>= 7; }
  len.push(n);
  const f = new Uint8Array(2 + len.length + update.length);
  f.set([0, 2, ...len]);
  f.set(update, 2 + len.length);
  return f;
}

function openWs(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.binaryType = 'arraybuffer';
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends every frame, keeping the socket's buffer bounded. */
async function sendAll(ws, frames) {
  for (const f of frames) {
    ws.send(f);
    if (ws.bufferedAmount > 1 << 20) while (ws.bufferedAmount > 1 << 18) await sleep(1);
  }
}

/** A reader: a Y.Doc fed by the y-websocket protocol from a raw socket. */
async function reader(url, headers) {
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
  return { ws, text: () => doc.getText('t').toString() };
}

async function replayYjs(writerUrl, readerUrl, updates, final, headers = () => ({})) {
  const r = await reader(readerUrl, headers());
  const w = await openWs(writerUrl, headers());
  await sleep(200);
  const frames = updates.map(frame);
  const t0 = performance.now();
  await sendAll(w, frames);
  const deadline = Date.now() + 600_000;
  while (r.text().length !== final.length || r.text() !== final) {
    if (Date.now() > deadline) throw new Error('replay did not converge');
    await sleep(5);
  }
  const ms = performance.now() - t0;
  w.close(); r.ws.close();
  return ms;
}

async function replayFloor(url, updates) {
  const w = await openWs(url);
  const frames = updates.map(frame);
  const t0 = performance.now();
  await sendAll(w, frames);
  for (;;) {
    const count = await new Promise((resolve) => { w.once('message', (d) => resolve(Number(d.toString()))); w.send('count?'); });
    if (count >= frames.length) break;
    await sleep(5);
  }
  const ms = performance.now() - t0;
  w.close();
  return ms;
}

const results = { date: new Date().toISOString(), edits: EDITS, runs: RUNS, modes: {} };
const modes = { 'one update per edit': updatesFor(1), 'batches of 100 edits': updatesFor(100) };
for (const [mode, { updates, final }] of Object.entries(modes)) {
  if (EDITS === trace.txns.length && final !== trace.endContent) throw new Error('trace replay mismatch');
  results.modes[mode] = { updates: updates.length, bytes: updates.reduce((a, u) => a + u.length, 0), targets: {} };
}

// Tessera
{
  // The per-socket message rate is lifted: the replay sends as fast as it can.
  const server = await launch({ vars: { DOC_RATE_PER_SEC: '1000000' } });
  try {
    const owner = await register(server, 'Bench');
    const base = server.url.replace('http', 'ws');
    for (const [mode, { updates, final }] of Object.entries(modes)) {
      const t = { ms: [], stored_bytes: [], cold_load_ms: [], warm_read_ms: [] };
      for (let r = 0; r < RUNS; r += 1) {
        const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'bench', kind: 'group' } })).body.id;
        const url = `${base}/api/v1/rooms/${room}/docs/paper?token=${owner.token}`;
        t.ms.push(await replayYjs(url, url, updates, final, () => ({ 'cf-connecting-ip': `198.18.${r}.${Math.floor(Math.random() * 250)}` })));
        await sleep(300);
        const list = await api(server, 'GET', `/api/v1/rooms/${room}/docs`, { token: owner.token });
        t.stored_bytes.push(list.body.docs[0].bytes);
        t.room = room;
      }
      results.modes[mode].targets.tessera = t;
      console.log(`tessera, ${mode}: ${median(t.ms).toFixed(0)} ms (runs ${t.ms.map((x) => x.toFixed(0))}), stored ${median(t.stored_bytes)} bytes`);
    }
    // Cold load: restart on the same state, then read each final document.
    const dir = server.dir;
    await server.stop();
    const again = await launch({ persistDir: dir, vars: { DOC_RATE_PER_SEC: '1000000' } });
    try {
      for (const mode of Object.keys(modes)) {
        const t = results.modes[mode].targets.tessera;
        const read = async () => {
          const t0 = performance.now();
          const res = await fetch(`${again.url}/api/v1/rooms/${t.room}/docs/paper?format=update`, { headers: { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': '198.18.9.9' } });
          await res.arrayBuffer();
          return performance.now() - t0;
        };
        t.cold_load_ms.push(await read());
        for (let i = 0; i < 5; i += 1) t.warm_read_ms.push(await read());
        console.log(`tessera, ${mode}: first read after restart ${t.cold_load_ms[0].toFixed(1)} ms, warm read ${median(t.warm_read_ms).toFixed(1)} ms`);
      }
    } finally {
      await again.cleanup();
    }
  } finally {
    await server.cleanup();
  }
}

// Floor and y-partyserver, in one reference worker.
{
  const server = await launch({ config: join(ROOT, 'bench/docs/js-worker/wrangler.toml') });
  try {
    const base = server.url.replace('http', 'ws');
    for (const [mode, { updates, final }] of Object.entries(modes)) {
      const floor = [];
      const party = [];
      for (let r = 0; r < RUNS; r += 1) {
        floor.push(await replayFloor(`${base}/count/${mode.length}-${r}-${Date.now()}`, updates));
        const room = `paper-${r}-${Date.now()}`;
        party.push(await replayYjs(`${base}/parties/y-doc/${room}`, `${base}/parties/y-doc/${room}`, updates, final));
      }
      results.modes[mode].targets.floor = { ms: floor };
      results.modes[mode].targets['y-partyserver'] = { ms: party };
      console.log(`floor, ${mode}: ${median(floor).toFixed(0)} ms; y-partyserver: ${median(party).toFixed(0)} ms`);
    }
  } finally {
    await server.cleanup();
  }
}

// The floor again, as a Rust (workers-rs) object built like Tessera.
{
  const server = await launch({ config: join(ROOT, 'bench/docs/rust-floor/wrangler.toml') });
  try {
    const base = server.url.replace('http', 'ws');
    for (const [mode, { updates }] of Object.entries(modes)) {
      const ms = [];
      for (let r = 0; r < RUNS; r += 1) ms.push(await replayFloor(`${base}/count-${mode.length}-${r}-${Date.now()}`, updates));
      results.modes[mode].targets['rust floor'] = { ms };
      console.log(`rust floor, ${mode}: ${median(ms).toFixed(0)} ms`);
    }
  } finally {
    await server.cleanup();
  }
}

// y-websocket-server (Node)
{
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/@y/websocket-server/src/server.js')], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) }, stdio: 'ignore',
  });
  try {
    for (let i = 0; i < 100; i += 1) {
      try { (await openWs(`ws://127.0.0.1:${port}/probe`)).close(); break; } catch { await sleep(100); }
    }
    for (const [mode, { updates, final }] of Object.entries(modes)) {
      const ms = [];
      for (let r = 0; r < RUNS; r += 1) {
        const url = `ws://127.0.0.1:${port}/paper-${r}-${mode.length}`;
        ms.push(await replayYjs(url, url, updates, final));
      }
      results.modes[mode].targets['y-websocket-server'] = { ms };
      console.log(`y-websocket-server, ${mode}: ${median(ms).toFixed(0)} ms`);
    }
  } finally {
    child.kill('SIGKILL');
  }
}

mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, 'bench/results', `docs-${Date.now()}.json`);
writeFileSync(out, JSON.stringify(results, null, 1));
console.log('\n| mode | updates | Tessera | floor (JS) | floor (Rust) | y-partyserver | y-websocket-server | Tessera / floor |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [mode, m] of Object.entries(results.modes)) {
  const med = (k) => median(m.targets[k].ms);
  const cell = (k) => `${(med(k) / 1000).toFixed(2)} s (${Math.round(m.updates / (med(k) / 1000))}/s)`;
  console.log(`| ${mode} | ${m.updates} | ${cell('tessera')} | ${cell('floor')} | ${cell('rust floor')} | ${cell('y-partyserver')} | ${cell('y-websocket-server')} | ${(med('tessera') / med('floor')).toFixed(2)}× |`);
}
console.log(`raw results: ${out}`);
