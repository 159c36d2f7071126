// Chat fan-out benchmark: Tessera's RoomDO (Rust) against a JavaScript
// `partyserver` chat room doing the same work, both under local workerd
// (wrangler dev), driven by real WebSocket clients from this process.
//
//   node bench/chat/run.mjs [--runs 3] [--seconds 5]
//
// For 10 and 100 clients in one room at 50 and 500 messages/s in total, every
// client sends its share and every client (the sender too) receives every
// message; fan-out latency is receive time minus send time, over all
// deliveries. Then, with 100 clients, rates rise until p99 passes 50 ms or a
// delivery is lost: the last rate that held is the sustained maximum. Both
// servers run for the whole benchmark and the targets take turns run by run.
// CPU per delivered message is the server's CPU time (every process of its
// wrangler dev, read from /proc) over the deliveries, warm-up included.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, register, ROOT } from '../../tests/harness.mjs';
import { arg } from '../args.mjs';
import { jsRoom, launchReference, median, stretch, tessera } from './fanout.mjs';

const RUNS = arg('runs', 3);
const SECONDS = arg('seconds', 5);

const ts = await launch({ vars: { CHAT_RATE_PER_SEC: '100000' } });
const js = await launchReference();
const results = { date: new Date().toISOString(), runs: RUNS, seconds: SECONDS, suites: {} };
try {
  const people = [];
  for (let i = 0; i < 100; i += 1) people.push(await register(ts, `Bench${i}`));
  const targets = {
    tessera: { server: ts, makeRoom: await tessera(ts, people) },
    partyserver: { server: js, makeRoom: jsRoom(js) },
  };
  for (const name of Object.keys(targets)) results.suites[name] = { rows: [], maxima: [] };
  for (const n of [10, 100]) {
    for (const rate of [50, 500]) {
      const runs = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
      for (let r = 0; r < RUNS; r += 1) {
        for (const [name, target] of Object.entries(targets)) {
          runs[name].push(await stretch(target, n, rate, SECONDS, `${name}-${n}-${rate}-${r}`));
        }
      }
      for (const [name, rs] of Object.entries(runs)) {
        const row = {
          target: name, clients: n, rate,
          p50: median(rs.map((x) => x.p50)), p99: median(rs.map((x) => x.p99)),
          cpu_us_per_delivery: median(rs.map((x) => x.cpu_us_per_delivery)),
          lost: rs.reduce((a, x) => a + x.lost, 0), runs: rs,
        };
        console.log(`${name} ${n} clients ${rate}/s: p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms, CPU ${row.cpu_us_per_delivery.toFixed(0)} µs/delivery, lost ${row.lost}`);
        results.suites[name].rows.push(row);
      }
    }
  }
  for (let r = 0; r < RUNS; r += 1) {
    for (const [name, target] of Object.entries(targets)) {
      let best = 0;
      for (const rate of [25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000]) {
        const m = await stretch(target, 100, rate, 3, `${name}-max-${r}-${rate}`);
        console.log(`${name} 100 clients ${rate}/s: p99 ${m.p99.toFixed(2)} ms, CPU ${m.cpu_us_per_delivery.toFixed(0)} µs/delivery, lost ${m.lost}`);
        if (m.p99 > 50 || m.lost > 0) break;
        best = rate;
      }
      results.suites[name].maxima.push(best);
    }
  }
  for (const suite of Object.values(results.suites)) suite.max_rate = median(suite.maxima);
} finally {
  await Promise.all([ts.cleanup(), js.cleanup()]);
}
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, 'bench/results', `chat-${Date.now()}.json`);
writeFileSync(out, JSON.stringify(results, null, 1));
console.log('\n| clients | msg/s | Tessera p50 | Tessera p99 | partyserver p50 | partyserver p99 | CPU µs per delivery (T/JS) | lost (T/JS) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [i, t] of results.suites.tessera.rows.entries()) {
  const j = results.suites.partyserver.rows[i];
  console.log(`| ${t.clients} | ${t.rate} | ${t.p50.toFixed(2)} ms | ${t.p99.toFixed(2)} ms | ${j.p50.toFixed(2)} ms | ${j.p99.toFixed(2)} ms | ${t.cpu_us_per_delivery.toFixed(0)} / ${j.cpu_us_per_delivery.toFixed(0)} | ${t.lost}/${j.lost} |`);
}
console.log(`\nhighest sustained rate, 100 clients, p99 ≤ 50 ms, no loss: Tessera ${results.suites.tessera.max_rate}/s (runs ${results.suites.tessera.maxima}), partyserver ${results.suites.partyserver.max_rate}/s (runs ${results.suites.partyserver.maxima})`);
console.log(`raw results: ${out}`);
