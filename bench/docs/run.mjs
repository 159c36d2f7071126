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
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import * as Y from 'yjs';
import { api, freePort, launch, register, ROOT } from '../../tests/harness.mjs';
import { frame, median, openWs, replayYjs, sendAll, sleep, trace, updatesFor } from './replay.mjs';
import { arg } from '../args.mjs';
import { cpuOf } from '../cpu.mjs';

const RUNS = arg('runs', 3);
const EDITS = arg('edits', trace.txns.length);

async function replayFloor(url, updates) {
  const w = await openWs(url);
  const frames = updates.map(frame);
  const t0 = performance.now();
  await sendAll(w, frames);
  const deadline = Date.now() + 600_000;
  for (;;) {
    const count = await new Promise((resolve) => { w.once('message', (d) => resolve(Number(d.toString()))); w.send('count?'); });
    if (count >= frames.length) break;
    if (Date.now() > deadline) throw new Error(`the floor counted ${count} of ${frames.length}`);
    await sleep(5);
  }
  const ms = performance.now() - t0;
  w.close();
  return ms;
}

const results = { date: new Date().toISOString(), edits: EDITS, runs: RUNS, modes: {} };
const modes = { 'one update per edit': updatesFor(EDITS, 1), 'batches of 100 edits': updatesFor(EDITS, 100) };
for (const [mode, { updates, final }] of Object.entries(modes)) {
  if (EDITS === trace.txns.length && final !== trace.endContent) throw new Error('trace replay mismatch');
  results.modes[mode] = { updates: updates.length, bytes: updates.reduce((a, u) => a + u.length, 0), targets: {} };
}

// Every server runs for the whole benchmark and the targets take turns, run by
// run, so that a slow spell of the shared machine falls on all of them alike.
// The per-socket message rate is lifted: the replay sends as fast as it can.
const tessera = await launch({ vars: { DOC_RATE_PER_SEC: '1000000', DOC_STATS: '1' } });
const jsWorker = await launch({ config: join(ROOT, 'bench/docs/js-worker/wrangler.toml') });
const rustFloor = await launch({ config: join(ROOT, 'bench/docs/rust-floor/wrangler.toml') });
const wsPort = await freePort();
const wsServer = spawn(process.execPath, [join(ROOT, 'node_modules/@y/websocket-server/src/server.js')], {
  env: { ...process.env, HOST: '127.0.0.1', PORT: String(wsPort) }, stdio: 'ignore', detached: true,
});
const ws = (server) => server.url.replace('http', 'ws');
try {
  for (let i = 0; i < 100; i += 1) {
    try { (await openWs(`ws://127.0.0.1:${wsPort}/probe`)).close(); break; } catch { await sleep(100); }
  }
  const targets = {
    tessera: async (mode, { updates, final }, r, t) => {
      // A new owner each run: a whole benchmark outlasts an access token.
      const owner = await register(tessera, 'Bench');
      t.token = owner.token;
      const room = (await api(tessera, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'bench', kind: 'group' } })).body.id;
      const url = `${ws(tessera)}/api/v1/rooms/${room}/docs/paper?token=${owner.token}`;
      const logged = tessera.logs.length;
      const ms = await replayYjs(url, url, updates, final, () => ({ 'cf-connecting-ip': `198.18.${r}.${Math.floor(Math.random() * 250)}` }));
      // What the write path did, which the room logs when its last document socket closes.
      const STATS = /doc stats: (\d+) flushes, (\d+) updates, (\d+) rows, (\d+) snapshots/;
      let stats;
      for (let i = 0; i < 100 && !(stats = STATS.exec(tessera.logs.slice(logged))); i += 1) await sleep(100);
      if (!stats) throw new Error('the room logged no doc stats within 10 s of the replay');
      const [flushes, stored, rows, snapshots] = stats.slice(1).map(Number);
      if (stored !== updates.length) throw new Error(`the room stored ${stored} updates of ${updates.length}`);
      (t.flushes ??= []).push(flushes);
      (t.rows ??= []).push(rows);
      (t.snapshots ??= []).push(snapshots);
      const list = await api(tessera, 'GET', `/api/v1/rooms/${room}/docs`, { token: owner.token });
      (t.stored_bytes ??= []).push(list.body.docs[0].bytes);
      t.room = room;
      return ms;
    },
    floor: (mode, { updates }, r) => replayFloor(`${ws(jsWorker)}/count/${mode.length}-${r}-${Date.now()}`, updates),
    'rust floor': (mode, { updates }, r) => replayFloor(`${ws(rustFloor)}/count-${mode.length}-${r}-${Date.now()}`, updates),
    'y-partyserver': (mode, { updates, final }, r) => {
      const url = `${ws(jsWorker)}/parties/y-doc/paper-${r}-${Date.now()}`;
      return replayYjs(url, url, updates, final);
    },
    'y-websocket-server': (mode, { updates, final }, r) => {
      const url = `ws://127.0.0.1:${wsPort}/paper-${r}-${mode.length}`;
      return replayYjs(url, url, updates, final);
    },
  };
  // The process group whose CPU each target costs (y-partyserver shares the JS floor's).
  const groups = { tessera: tessera.pid, floor: jsWorker.pid, 'rust floor': rustFloor.pid, 'y-partyserver': jsWorker.pid, 'y-websocket-server': wsServer.pid };
  for (const [mode, data] of Object.entries(modes)) {
    for (const name of Object.keys(targets)) results.modes[mode].targets[name] = { ms: [], cpu_us: [], workerd_cpu_us: [] };
    for (let r = 0; r < RUNS; r += 1) {
      for (const [name, run] of Object.entries(targets)) {
        const t = results.modes[mode].targets[name];
        const before = cpuOf(groups[name]);
        t.ms.push(await run(mode, data, r, t));
        const after = cpuOf(groups[name]);
        // Per message sent: every process of the server (wrangler, its proxy, workerd), and workerd alone.
        t.cpu_us.push(((after.all - before.all) * 1e6) / data.updates.length);
        t.workerd_cpu_us.push(((after.workerd - before.workerd) * 1e6) / data.updates.length);
        const rows = t.rows ? `, ${t.flushes.at(-1)} flushes, ${t.rows.at(-1)} rows, ${t.snapshots.at(-1)} snapshots` : '';
        console.log(`${mode}, run ${r + 1}: ${name} ${t.ms.at(-1).toFixed(0)} ms, CPU ${t.cpu_us.at(-1).toFixed(0)} µs/message (workerd ${t.workerd_cpu_us.at(-1).toFixed(0)})${rows}`);
      }
    }
  }
  // Cold load: restart Tessera on the same state, then read each final document.
  await tessera.stop();
  const again = await launch({ persistDir: tessera.dir, vars: { DOC_RATE_PER_SEC: '1000000' } });
  try {
    for (const mode of Object.keys(modes)) {
      const t = results.modes[mode].targets.tessera;
      const read = async (doc) => {
        const t0 = performance.now();
        const res = await fetch(`${again.url}/api/v1/rooms/${t.room}/docs/${doc}?format=update`, { headers: { authorization: `Bearer ${t.token}`, 'cf-connecting-ip': '198.18.9.9' } });
        if (res.status !== 200) throw new Error(`read ${doc}: ${res.status}`);
        await res.arrayBuffer();
        return performance.now() - t0;
      };
      t.cold_load_ms = [await read('paper')];
      // A document read over REST with no socket open is loaded from storage
      // for that request and released after it, so every read below loads it
      // cold. A one-character document in the same room costs the same
      // request path (auth, membership, the object, the response) with an
      // almost empty load: the difference of the medians is the load of the
      // final document (SQLite read, yrs apply, encode) and its transfer.
      const tiny = new Y.Doc();
      tiny.getText('t').insert(0, 'x');
      await api(again, 'POST', `/api/v1/rooms/${t.room}/docs/tiny/updates`, { token: t.token, raw: Y.encodeStateAsUpdate(tiny), headers: { 'content-type': 'application/octet-stream' } });
      t.warm_read_ms = [];
      t.tiny_read_ms = [];
      for (let i = 0; i < 9; i += 1) {
        t.warm_read_ms.push(await read('paper'));
        t.tiny_read_ms.push(await read('tiny'));
      }
      t.load_ms = median(t.warm_read_ms) - median(t.tiny_read_ms);
      console.log(`tessera, ${mode}: stored ${median(t.stored_bytes)} bytes; first read after restart ${t.cold_load_ms[0].toFixed(1)} ms; reads from storage ${median(t.warm_read_ms).toFixed(1)} ms, of a one-character document ${median(t.tiny_read_ms).toFixed(1)} ms: load ${t.load_ms.toFixed(1)} ms`);
    }
  } finally {
    await again.cleanup();
  }
} finally {
  wsServer.kill('SIGKILL');
  await Promise.all([tessera.cleanup(), jsWorker.cleanup(), rustFloor.cleanup()]);
}

mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, 'bench/results', `docs-${Date.now()}.json`);
writeFileSync(out, JSON.stringify(results, null, 1));
const names = ['tessera', 'floor', 'rust floor', 'y-partyserver', 'y-websocket-server'];
console.log(`\n| mode | updates | ${names.join(' | ')} | Tessera / Rust floor |`);
console.log(`|---|---|${names.map(() => '---|').join('')}---|`);
for (const [mode, m] of Object.entries(results.modes)) {
  const med = (k, f = 'ms') => median(m.targets[k][f]);
  // Replay time, then CPU per message (workerd's; y-websocket-server's whole process).
  const cell = (k) => `${(med(k) / 1000).toFixed(2)} s, ${med(k, k === 'y-websocket-server' ? 'cpu_us' : 'workerd_cpu_us').toFixed(0)} µs`;
  const ratio = `${(med('tessera') / med('rust floor')).toFixed(2)}× time, ${(med('tessera', 'workerd_cpu_us') / med('rust floor', 'workerd_cpu_us')).toFixed(2)}× CPU`;
  console.log(`| ${mode} | ${m.updates} | ${names.map(cell).join(' | ')} | ${ratio} |`);
  const t = m.targets.tessera;
  console.log(`Tessera, ${mode}: per 1,000 updates ${((median(t.flushes) * 1000) / m.updates).toFixed(1)} flushes, ${((median(t.rows) * 1000) / m.updates).toFixed(1)} rows; ${median(t.snapshots)} snapshots`);
}
console.log(`raw results: ${out}`);
