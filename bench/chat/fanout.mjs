// A chat room's fan-out, measured: real WebSocket clients in this process
// send at a set total rate and every client receives every message. Used by
// `run.mjs` (the benchmark) and `profile.mjs` (one stretch under the profiler).
import WebSocket from 'ws';
import { join } from 'node:path';
import { api, launch, randomIp, ROOT } from '../../tests/harness.mjs';
import { cpuOf } from '../cpu.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();
const BODY_T = /"body":"t=([0-9.]+)/;

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function open(url, headers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** One measured stretch: `n` clients, `rate` messages/s in total, `seconds` long. */
async function measure(clients, rate, seconds, tag) {
  const lat = [];
  let window = { from: Infinity, to: -Infinity };
  const received = new Map();
  let delivered = 0;
  for (const c of clients) {
    c.ws.removeAllListeners('message');
    c.ws.on('message', (data) => {
      const m = BODY_T.exec(data.toString());
      if (!m) return;
      delivered += 1;
      const t = Number(m[1]);
      if (t >= window.from && t <= window.to) {
        lat.push(now() - t);
        received.set(t, (received.get(t) ?? 0) + 1);
      }
    });
  }
  const send = async (secs, record, phase) => {
    const start = now();
    let sent = 0;
    let turn = 0;
    const stamps = [];
    while (now() - start < secs * 1000) {
      const due = Math.floor(((now() - start) / 1000) * rate);
      while (sent < due) {
        const t = now();
        const c = clients[turn++ % clients.length];
        c.ws.send(`{"type":"send","client_msg_id":"${tag}-${phase}-${c.i}-${sent}","body":"t=${t}"}`);
        if (record) stamps.push(t);
        sent += 1;
      }
      await sleep(2);
    }
    return stamps;
  };
  await send(1, false, 'w'); // warm-up
  window = { from: now(), to: Infinity };
  const stamps = await send(seconds, true, 'm');
  window.to = stamps.at(-1) ?? 0;
  await sleep(1500); // drain
  // "lost": not delivered within the 1.5 s drain after the last send.
  const expected = stamps.length * clients.length;
  lat.sort((a, b) => a - b);
  return { sent: stamps.length, deliveries: lat.length, delivered, lost: expected - lat.length, p50: pct(lat, 50), p99: pct(lat, 99) };
}

/** Targets: how to make a room with `n` connected clients, and close it. */
export async function tessera(server, people) {
  return async (n) => {
    const owner = people[0];
    const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'bench', kind: 'group' } })).body.id;
    for (const p of people.slice(1, n)) {
      await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: p.user.id } });
    }
    const base = server.url.replace('http', 'ws');
    return Promise.all(people.slice(0, n).map(async (p, i) => ({
      i, ws: await open(`${base}/api/v1/rooms/${room}/ws?token=${p.token}`, { 'cf-connecting-ip': randomIp() }),
    })));
  };
}

/** The reference: a partyserver chat room under its own `wrangler dev`. */
export const launchReference = () => launch({ config: join(ROOT, 'bench/chat/js-room/wrangler.toml') });

export function jsRoom(server) {
  let k = 0;
  return async (n) => {
    const room = `bench-${Date.now()}-${k++}`;
    const base = server.url.replace('http', 'ws');
    return Promise.all(Array.from({ length: n }, async (_, i) => ({ i, ws: await open(`${base}/parties/js-chat-room/${room}`, {}) })));
  };
}

/**
 * One measured stretch on a fresh room of `n` clients, with the server's CPU
 * per delivered message: all its processes' (`cpu_us_per_delivery`, what the
 * benchmark reports) and workerd's alone (what the profiler samples).
 */
export async function stretch(target, n, rate, seconds, tag) {
  const clients = await target.makeRoom(n);
  const before = cpuOf(target.server.pid);
  const m = await measure(clients, rate, seconds, tag);
  const after = cpuOf(target.server.pid);
  const perDelivery = (secs) => (secs * 1e6) / Math.max(1, m.delivered);
  m.cpu_us_per_delivery = perDelivery(after.all - before.all);
  m.workerd_cpu_us_per_delivery = perDelivery(after.workerd - before.workerd);
  clients.forEach((c) => c.ws.terminate());
  return m;
}

