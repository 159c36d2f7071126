// File throughput benchmark: a 100 MiB file uploaded to Tessera with the real
// tus-js-client (1 MiB and 5 MiB chunks) and downloaded back, against a
// JavaScript Worker that streams the same bytes straight into R2 (one PUT, or
// 5 MiB multipart parts) and back: the platform's floor. Both run under local
// workerd (wrangler dev) in the same run; the median of several runs is kept.
// The peak resident memory of each server's workerd processes is sampled
// during the uploads (local R2 lives in the same processes, so the floor's
// figure is the platform's share).
//
//   node bench/files/run.mjs [--runs 3] [--mib 100]
import * as tus from 'tus-js-client';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, launch, randomIp, register, ROOT } from '../../tests/harness.mjs';
import { arg } from '../args.mjs';

const RUNS = arg('runs', 3);
const MIB = arg('mib', 100);
const MiB = 1024 * 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (bytes, ms) => bytes / MiB / (ms / 1000);

/** Resident memory (KiB) of every workerd process of a server's process group. */
function workerdRss(server) {
  let out = '';
  try { out = execFileSync('pgrep', ['-g', String(server.pid), 'workerd']).toString(); } catch { return 0; }
  let total = 0;
  for (const pid of out.split('\n').filter(Boolean)) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch { /* gone */ }
  }
  return total;
}

function sampleRss(server) {
  let peak = workerdRss(server);
  const timer = setInterval(() => { peak = Math.max(peak, workerdRss(server)); }, 50);
  return () => { clearInterval(timer); return peak; };
}

function tusUpload(server, token, data, roomId, chunkSize) {
  const ip = randomIp();
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `${server.url}/api/v1/uploads`,
      chunkSize,
      metadata: { filename: 'bench.bin', room_id: roomId },
      headers: { authorization: `Bearer ${token}`, 'cf-connecting-ip': ip },
      retryDelays: [],
      onError: reject,
      onSuccess: () => resolve(upload.url.split('/').pop()),
    });
    upload.start();
  });
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function download(url, headers) {
  const res = await fetch(url, { headers });
  const hash = createHash('sha256');
  for await (const chunk of res.body) hash.update(chunk);
  return hash.digest('hex');
}

const data = randomBytes(MIB * MiB);
const digest = createHash('sha256').update(data).digest('hex');
// Tessera's API limit is per IP per minute; the bench makes many requests.
const tessera = await launch({ vars: { FILE_MAX_BYTES: String(2 * MIB * MiB), ROOM_QUOTA_BYTES: String(100 * MIB * MiB) } });
const reference = await launch({ config: join(ROOT, 'bench/files/js-worker/wrangler.toml') });
const results = { mib: MIB, runs: RUNS, at: new Date().toISOString(), samples: {} };
const add = (name, v) => { (results.samples[name] ??= []).push(v); };
try {
  const owner = await register(tessera, 'Bench');
  const room = await api(tessera, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'bench', kind: 'group' } });
  const baseline = workerdRss(tessera);
  const refBaseline = workerdRss(reference);
  let peak = 0;
  let refPeak = 0;
  for (let run = 0; run < RUNS; run += 1) {
    for (const chunk of [1, 5]) {
      const stop = sampleRss(tessera);
      const up = await timed(() => tusUpload(tessera, owner.token, data, room.body.id, chunk * MiB));
      peak = Math.max(peak, stop());
      add(`tessera upload (tus, ${chunk} MiB chunks)`, rate(data.length, up.ms));
      const down = await timed(() => download(`${tessera.url}/api/v1/files/${up.value}/content`, { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp() }));
      if (down.value !== digest) throw new Error('Tessera returned other bytes');
      add('tessera download', rate(data.length, down.ms));
      await api(tessera, 'DELETE', `/api/v1/files/${up.value}`, { token: owner.token });
    }
    const key = `k${run}`;
    const stopRef = sampleRss(reference);
    const whole = await timed(() => fetch(`${reference.url}/whole/${key}`, { method: 'PUT', body: data }));
    add('js floor upload (one PUT)', rate(data.length, whole.ms));
    const parts = await timed(async () => {
      const { uploadId } = await (await fetch(`${reference.url}/mpu/${key}m`, { method: 'POST' })).json();
      const done = [];
      for (let i = 0, n = 1; i < data.length; i += 5 * MiB, n += 1) {
        const r = await fetch(`${reference.url}/mpu/${key}m/${uploadId}/${n}`, { method: 'PUT', body: data.subarray(i, i + 5 * MiB) });
        done.push(await r.json());
      }
      await fetch(`${reference.url}/mpu/${key}m/${uploadId}`, { method: 'POST', body: JSON.stringify(done) });
    });
    add('js floor upload (5 MiB parts)', rate(data.length, parts.ms));
    refPeak = Math.max(refPeak, stopRef());
    const down = await timed(() => download(`${reference.url}/whole/${key}`, {}));
    if (down.value !== digest) throw new Error('the reference returned other bytes');
    add('js floor download', rate(data.length, down.ms));
  }
  results.median_mib_per_s = Object.fromEntries(Object.entries(results.samples).map(([k, v]) => [k, Number(median(v).toFixed(1))]));
  results.workerd_rss_mib = {
    tessera: { before: Math.round(baseline / 1024), peak_during_uploads: Math.round(peak / 1024) },
    js_floor: { before: Math.round(refBaseline / 1024), peak_during_uploads: Math.round(refPeak / 1024) },
  };
  console.log(JSON.stringify(results, null, 2));
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, `bench/results/files-${Date.now()}.json`), JSON.stringify(results, null, 2));
} finally {
  await tessera.cleanup();
  await reference.cleanup();
}
