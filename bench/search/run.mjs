// Search benchmark, under local workerd (wrangler dev):
//
//   node bench/search/run.mjs [--messages 100000] [--rooms 50] [--docs 200]
//                             [--queries 200] [--runs 3] [--cost 2000]
//
// 1. Latency: one person, a member of `rooms` rooms holding `messages`
//    messages and `docs` documents in all (seeded over the room sockets and
//    the document REST API), runs `queries` searches per run — common and
//    rare words, two words, a phrase, a prefix as typed — in one room
//    (`room=`, the room object's index) and across all rooms (D1's index).
//    p50/p99 of the HTTP round trip, median over runs.
// 2. Indexing cost: two servers in the same run, one with search indexing
//    (the default) and one with `SEARCH_INDEX=off`, each sent the same
//    `cost` messages into one room over one socket at a steady rate: the
//    send path's p99 (send to ack) and the CPU per message of the server's
//    process group (wrangler and workerd, from /proc); then, with the
//    servers stopped, the bytes per message of the search tables in the room
//    objects' and D1's SQLite files (dbstat, read with node:sqlite).
import WebSocket from 'ws';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import * as Y from 'yjs';
import { api, launch, randomIp, register, ROOT } from '../../tests/harness.mjs';
import { arg } from '../args.mjs';
import { cpuOf } from '../cpu.mjs';

const MESSAGES = arg('messages', 100_000);
const ROOMS = arg('rooms', 50);
const DOCS = arg('docs', 200);
const QUERIES = arg('queries', 200);
const RUNS = arg('runs', 3);
const COST = arg('cost', 2000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (xs) => pct(xs, 50);

// A deterministic vocabulary with a Zipf-like spread: a few words are in
// most messages, most words in few.
let prng = 42;
const rand = () => {
  prng = (prng * 1_103_515_245 + 12_345) % 2_147_483_648;
  return prng / 2_147_483_648;
};
const SYLLABLES = ['ka', 'lo', 'mi', 'ra', 'te', 'su', 'no', 'vi', 'de', 'pa', 'shi', 'gor', 'ben', 'tal', 'fu'];
const VOCAB = Array.from({ length: 5000 }, (_, i) => {
  let w = '';
  let n = i + 1;
  while (n > 0) {
    w += SYLLABLES[n % SYLLABLES.length];
    n = Math.floor(n / SYLLABLES.length);
  }
  return w;
});
const word = () => VOCAB[Math.floor(VOCAB.length * rand() ** 3)];
const sentence = (n) => Array.from({ length: n }, word).join(' ');

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { 'cf-connecting-ip': randomIp() } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends `bodies` over one socket, at most `window` unacknowledged; resolves with each send-to-ack time. */
function sendAll(ws, bodies, { window = 50, rate = Infinity, tag = 'm' } = {}) {
  return new Promise((resolve) => {
    const times = [];
    const started = new Map();
    let next = 0;
    let acked = 0;
    const t0 = now();
    const pump = () => {
      while (next < bodies.length && next - acked < window && next < (now() - t0) * (rate / 1000) + 1) {
        const id = `${tag}-${next}`;
        started.set(id, now());
        ws.send(JSON.stringify({ type: 'send', client_msg_id: id, body: bodies[next] }));
        next += 1;
      }
      if (next < bodies.length) setTimeout(pump, rate === Infinity ? 5 : 1);
    };
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type !== 'ack' && !(f.type === 'error' && f.reference)) return;
      const id = f.client_msg_id ?? f.reference;
      if (!started.has(id)) return;
      times.push(now() - started.get(id));
      started.delete(id);
      acked += 1;
      if (acked === bodies.length) resolve(times);
      else pump();
    });
    pump();
  });
}

/** A fresh access token for `who`: seeding 100,000 messages outlasts one. */
async function refresh(server, who) {
  const r = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: who.refresh_token } });
  if (r.status !== 200) throw new Error(`refresh: ${r.status} ${JSON.stringify(r.body)}`);
  who.token = r.body.access_token;
  who.refresh_token = r.body.refresh_token;
}

async function seed(server, owner, rooms) {
  const per = Math.ceil(MESSAGES / rooms.length);
  const t0 = now();
  await Promise.all(rooms.map(async (room, i) => {
    const ws = await open(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/ws?token=${owner.token}`);
    const bodies = Array.from({ length: per }, (_, j) => `${sentence(8 + Math.floor(rand() * 20))} r${i}m${j}`);
    await sendAll(ws, bodies, { window: 20, tag: `seed${i}` });
    ws.close();
  }));
  console.log(`seeded ${per * rooms.length} messages in ${((now() - t0) / 1000).toFixed(1)} s`);
  await refresh(server, owner);
  const t1 = now();
  for (let d = 0; d < DOCS; d++) {
    const doc = new Y.Doc();
    doc.getText('t').insert(0, Array.from({ length: 20 }, () => sentence(15)).join('\n'));
    const room = rooms[d % rooms.length];
    const r = await fetch(`${server.url}/api/v1/rooms/${room}/docs/doc-${d}/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
      body: Y.encodeStateAsUpdate(doc),
    });
    if (r.status !== 200) throw new Error(`document ${d}: ${r.status}`);
  }
  console.log(`seeded ${DOCS} documents in ${((now() - t1) / 1000).toFixed(1)} s`);
  // The cross-room index has caught up when the last room's last message is found there.
  const last = `r${rooms.length - 1}m${per - 1}`;
  await refresh(server, owner);
  const t2 = now();
  for (;;) {
    const r = await api(server, 'GET', `/api/v1/search?q=${last}%20`, { token: owner.token });
    if (r.body?.results?.length) break;
    if (now() - t2 > 600_000) throw new Error('the cross-room index did not catch up');
    await sleep(500);
  }
  console.log(`cross-room index caught up ${((now() - t2) / 1000).toFixed(1)} s after the last send`);
}

function queries(n) {
  const kinds = [
    () => VOCAB[Math.floor(rand() * 20)] + ' ', // common word
    () => VOCAB[1000 + Math.floor(rand() * 4000)] + ' ', // rare word
    () => `${VOCAB[Math.floor(rand() * 200)]} ${VOCAB[Math.floor(rand() * 2000)]} `, // two words
    () => `"${sentence(2)}"`, // phrase
    () => VOCAB[Math.floor(rand() * 500)].slice(0, 3), // prefix as typed
  ];
  return Array.from({ length: n }, (_, i) => kinds[i % kinds.length]());
}

async function latency(server, owner, rooms) {
  const rows = [];
  for (let run = 0; run < RUNS; run++) {
    for (const scope of ['room', 'rooms']) {
      const times = [];
      let hits = 0;
      for (const q of queries(QUERIES)) {
        const params = new URLSearchParams({ q, limit: '20' });
        if (scope === 'room') params.set('room', rooms[Math.floor(rand() * rooms.length)]);
        const t = now();
        const r = await api(server, 'GET', `/api/v1/search?${params}`, { token: owner.token });
        times.push(now() - t);
        if (r.status !== 200) throw new Error(`${q}: ${r.status} ${JSON.stringify(r.body)}`);
        hits += r.body.results.length;
      }
      rows.push({ run, scope, p50: pct(times, 50), p99: pct(times, 99), hits: hits / QUERIES });
    }
  }
  return rows;
}

/** Bytes of the search tables and rows of `counted` in the SQLite files under `dir`. */
function storedBytes(dir, counted) {
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.sqlite')) files.push(p);
    }
  };
  walk(dir);
  const tmp = mkdtempSync(join(tmpdir(), 'search-bytes-'));
  let search = 0;
  let rows = 0;
  for (const [i, f] of files.entries()) {
    // A copy, so that SQLite may replay the WAL without touching the server's files.
    const copy = join(tmp, `${i}.sqlite`);
    for (const suffix of ['', '-wal']) {
      if (existsSync(f + suffix)) copyFileSync(f + suffix, copy + suffix);
    }
    const db = new DatabaseSync(copy);
    const tables = db.prepare('SELECT name FROM sqlite_master').all().map((t) => t.name);
    if (tables.includes(counted)) {
      rows += db.prepare(`SELECT COUNT(*) AS n FROM ${counted}`).get().n;
      search += db.prepare("SELECT COALESCE(SUM(pgsize), 0) AS b FROM dbstat WHERE name LIKE 'search%' OR name LIKE 'sqlite_autoindex_search%'").get().b;
    }
    db.close();
  }
  rmSync(tmp, { recursive: true, force: true });
  return { search, rows };
}

async function cost(servers) {
  const out = {};
  for (const [name, server] of Object.entries(servers)) {
    const owner = await register(server, 'Cost');
    const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'cost', kind: 'group' } })).body.id;
    const ws = await open(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/ws?token=${owner.token}`);
    await sendAll(ws, ['warm up'], { tag: 'warm' });
    await sleep(2000);
    const cpu0 = cpuOf(server.pid).all;
    const bodies = Array.from({ length: COST }, () => sentence(20));
    const times = await sendAll(ws, bodies, { window: 1, rate: 100, tag: 'cost' });
    // Let the outbox reach D1 before the bytes are counted.
    await sleep(5000);
    const cpu = cpuOf(server.pid).all - cpu0;
    ws.close();
    out[name] = {
      p50: pct(times, 50),
      p99: pct(times, 99),
      cpuUsPerMessage: (cpu * 1e6) / COST,
    };
  }
  return out;
}

const gz = statSync(join(ROOT, 'functions', 'build', 'index_bg.wasm')).size;
console.log(`Worker module: ${(gz / 1024).toFixed(0)} KiB (uncompressed; the test command prints the gzipped size)`);

const server = await launch({ vars: { CHAT_RATE_PER_SEC: '100000' } });
const results = { options: { MESSAGES, ROOMS, DOCS, QUERIES, RUNS, COST } };
try {
  const owner = await register(server, 'Bench');
  const rooms = [];
  for (let i = 0; i < ROOMS; i++) {
    rooms.push((await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: `room ${i}`, kind: 'group' } })).body.id);
  }
  await seed(server, owner, rooms);
  await refresh(server, owner);
  const rows = await latency(server, owner, rooms);
  for (const scope of ['room', 'rooms']) {
    const mine = rows.filter((r) => r.scope === scope);
    results[scope] = { p50: median(mine.map((r) => r.p50)), p99: median(mine.map((r) => r.p99)), hitsPerQuery: median(mine.map((r) => r.hits)) };
    console.log(`${scope === 'room' ? 'one room  ' : 'all rooms '} p50 ${results[scope].p50.toFixed(1)} ms  p99 ${results[scope].p99.toFixed(1)} ms  (${results[scope].hitsPerQuery.toFixed(1)} hits/query; runs: ${mine.map((r) => r.p50.toFixed(1)).join(', ')})`);
  }
} finally {
  await server.cleanup();
}

const on = await launch({ vars: { CHAT_RATE_PER_SEC: '100000' } });
const off = await launch({ vars: { CHAT_RATE_PER_SEC: '100000', SEARCH_INDEX: 'off' } });
try {
  const runs = [];
  for (let run = 0; run < RUNS; run++) {
    // Turns alternate, so a slow spell of the machine falls on both.
    const order = run % 2 ? { off, on } : { on, off };
    runs.push(await cost(order));
  }
  results.cost = {};
  for (const name of ['on', 'off']) {
    const keys = Object.keys(runs[0][name]);
    results.cost[name] = Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[name][k]))]));
    const c = results.cost[name];
    console.log(`indexing ${name.padEnd(3)}: send p50 ${c.p50.toFixed(2)} ms p99 ${c.p99.toFixed(2)} ms, ${c.cpuUsPerMessage.toFixed(0)} µs CPU/message`);
  }
  await on.stop();
  const room = storedBytes(join(on.dir, 'v3', 'do'), 'messages');
  const d1 = storedBytes(join(on.dir, 'v3', 'd1'), 'search_items');
  results.cost.bytes = { roomPerMessage: room.search / room.rows, d1PerMessage: d1.search / d1.rows, messages: room.rows };
  console.log(`search tables: ${results.cost.bytes.roomPerMessage.toFixed(0)} B/message in the room object, ${results.cost.bytes.d1PerMessage.toFixed(0)} B/message in D1 (${room.rows} messages of 20 words)`);
} finally {
  await on.cleanup();
  await off.cleanup();
}

mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const file = join(ROOT, 'bench', 'results', `search-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(results, null, 1));
console.log(`results: ${file}`);
