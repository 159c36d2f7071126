// Notification fan-out benchmark: a room of 1,000 members receiving messages
// at a steady rate (10/s by default), some with mentions, under local workerd
// (wrangler dev), driven by real WebSocket clients from this process.
//
//   node bench/notify/run.mjs [--runs 3] [--seconds 20] [--rate 10] [--members 1000] [--mentions 3]
//
// Members are written straight into the local D1 (registering 1,000 people
// through PBKDF2 would take minutes and measures nothing here); each gets a
// token signed with the server's secret. The people that messages mention
// (a pool of 50) have been in the room once, so mentions resolve, and keep a
// `/me` socket open. In each run the phases alternate second by second:
// messages with `--mentions` mentions each, and messages with none (the
// fan-out plan is empty). Reported, medians over runs:
//   * the send path: send → ack on the sender's socket, p50/p99, with and
//     without notifications in the same run;
//   * send → the mentioned person's `/me` item, p50/p99;
//   * the fan-out's cost per message: subrequests (one D1 membership query
//     and one inbox call per mentioned person) and the wall time from send to
//     the last inbox item.
import WebSocket from 'ws';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { api, launch, randomIp, register, signHs256, ROOT } from '../../tests/harness.mjs';
import { arg } from '../args.mjs';

const RUNS = arg('runs', 3);
const SECONDS = arg('seconds', 20);
const RATE = arg('rate', 10);
const MEMBERS = arg('members', 1000);
const MENTIONS = arg('mentions', 3);
const POOL = Math.min(50, MEMBERS);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ENV = { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_D1_WARNING: 'true' };

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { 'cf-connecting-ip': randomIp() } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** An access token of person `sub` in session `sid` (a refresh-token family `setup` wrote). */
const token = (sub, sid) => {
  const t = Math.floor(Date.now() / 1000);
  return signHs256({ sub, sid, iss: 'tessera', aud: 'tessera-api', iat: t, exp: t + 3600, jti: randomBytes(4).toString('hex') });
};

/** A room of MEMBERS people: the owner registered, the rest written into D1. */
async function setup(server) {
  const owner = await register(server, 'Owner');
  const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Big room', kind: 'group' } });
  const roomId = r.body.id;
  const people = [];
  const at = Math.floor(Date.now() / 1000);
  const rows = [];
  for (let i = 1; i < MEMBERS; i++) {
    const id = randomBytes(16).toString('hex');
    const sid = randomBytes(16).toString('hex');
    people.push({ id, sid, name: `m${i}` });
    rows.push(`INSERT INTO users (id, email, display_name, created_at, updated_at) VALUES ('${id}', 'm${i}-${id}@bench.test', 'm${i}', ${at}, ${at});`);
    rows.push(`INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES ('${roomId}', '${id}', 'member', ${at});`);
    // A live session, as a sign-in leaves one: access tokens name it (`sid`).
    rows.push(`INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at) VALUES ('bench-${id}', '${sid}', '${id}', ${at}, ${at + 86400});`);
  }
  const file = join(server.dir, 'members.sql');
  writeFileSync(file, rows.join('\n'));
  execFileSync('wrangler', ['d1', 'execute', 'DB', '--local', '--persist-to', server.dir, '--file', file, '--yes'], { cwd: ROOT, env: ENV, stdio: 'pipe' });
  return { owner, roomId, people };
}

async function run(server, { owner, roomId, people }, index) {
  const ws = server.url.replace('http', 'ws');
  const pool = people.slice(0, POOL);
  // Each mentioned person has been in the room once (mentions resolve against
  // people the room has seen) and keeps a /me socket open.
  const arrivals = new Map(); // "seq:user" -> time
  const me = [];
  for (const p of pool) {
    p.token = token(p.id, p.sid);
    const chat = await open(`${ws}/api/v1/rooms/${roomId}/ws?token=${p.token}`);
    chat.close();
    const s = await open(`${ws}/api/v1/me/ws?token=${p.token}`);
    s.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.type === 'item') arrivals.set(`${f.item.subject}:${p.id}`, now());
    });
    me.push(s);
  }
  const senders = [];
  for (let i = 0; i < 5; i++) {
    const s = await open(`${ws}/api/v1/rooms/${roomId}/ws?token=${owner.token}`);
    s.pending = new Map();
    s.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.type === 'ack') {
        const p = s.pending.get(f.client_msg_id);
        if (p) p.ack = now() - p.t;
        if (p) p.seq = f.id;
      }
    });
    senders.push(s);
  }
  const sent = [];
  const start = now();
  let n = 0;
  while (now() - start < SECONDS * 1000) {
    const due = Math.floor(((now() - start) / 1000) * RATE);
    while (n < due) {
      const withMentions = Math.floor((now() - start) / 1000) % 2 === 0;
      const targets = withMentions ? Array.from({ length: MENTIONS }, (_, k) => pool[(n * MENTIONS + k) % pool.length]) : [];
      const body = `${targets.map((t) => `@${t.name}`).join(' ')} update ${n}`;
      const s = senders[n % senders.length];
      const id = `b${index}-${n}`;
      const rec = { t: now(), targets, withMentions };
      s.pending.set(id, rec);
      sent.push(rec);
      s.send(JSON.stringify({ type: 'send', client_msg_id: id, body }));
      n += 1;
    }
    await sleep(5);
  }
  await sleep(3000);
  const acks = { on: [], off: [] };
  const delays = [];
  const lastPerMessage = [];
  let lost = 0;
  for (const r of sent) {
    if (r.ack === undefined) { lost += 1; continue; }
    acks[r.withMentions ? 'on' : 'off'].push(r.ack);
    if (!r.withMentions) continue;
    let last = 0;
    for (const t of r.targets) {
      const a = arrivals.get(`${r.seq}:${t.id}`);
      if (a === undefined) { lost += 1; continue; }
      delays.push(a - r.t);
      last = Math.max(last, a - r.t);
    }
    lastPerMessage.push(last);
  }
  for (const s of [...me, ...senders]) s.close();
  const sort = (xs) => xs.sort((a, b) => a - b);
  [acks.on, acks.off, delays, lastPerMessage].forEach(sort);
  return {
    messages: sent.length,
    ack_p50_with: pct(acks.on, 50), ack_p99_with: pct(acks.on, 99),
    ack_p50_without: pct(acks.off, 50), ack_p99_without: pct(acks.off, 99),
    me_p50: pct(delays, 50), me_p99: pct(delays, 99),
    last_item_p50: pct(lastPerMessage, 50),
    lost,
  };
}

const server = await launch({ vars: { CHAT_RATE_PER_SEC: '1000' } });
try {
  const room = await setup(server);
  const results = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await run(server, room, i);
    console.log(`run ${i + 1}:`, JSON.stringify(r, (k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v)));
    results.push(r);
  }
  const keys = Object.keys(results[0]);
  const summary = Object.fromEntries(keys.map((k) => [k, median(results.map((r) => r[k]))]));
  summary.subrequests_per_message = 1 + MENTIONS;
  summary.config = { runs: RUNS, seconds: SECONDS, rate: RATE, members: MEMBERS, mentions: MENTIONS, pool: POOL };
  console.log('median:', JSON.stringify(summary, (k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v)));
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'notify.json'), JSON.stringify({ at: new Date().toISOString(), results, summary }, null, 2));
} finally {
  await server.cleanup();
}
