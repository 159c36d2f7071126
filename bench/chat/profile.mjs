// Tessera's chat room under load, profiled or timed:
//
//   node bench/chat/profile.mjs [--clients 10] [--rate 500] [--seconds 5] [--runs N]
//
// One room of `clients` sockets at `rate` messages/s in total (as in run.mjs).
// Without --runs, one stretch runs under V8's sampling profiler (build without
// wasm-opt for function names, see ../profiler.mjs); with --runs N, N stretches
// run without it and print p50/p99 and the server's CPU per delivery, for
// comparing a change against its parent on the same machine.
import { launch, register } from '../../tests/harness.mjs';
import { arg } from '../args.mjs';
import { profiled } from '../profiler.mjs';
import { median, stretch, tessera } from './fanout.mjs';

const CLIENTS = arg('clients', 10);
const RATE = arg('rate', 500);
const SECONDS = arg('seconds', 5);
const RUNS = arg('runs', 0);

const server = await launch({ vars: { CHAT_RATE_PER_SEC: '100000' } });
try {
  const people = [];
  for (let i = 0; i < CLIENTS; i += 1) people.push(await register(server, `Bench${i}`));
  const target = { server, makeRoom: await tessera(server, people) };
  const line = (m) => `p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms, CPU ${m.cpu_us_per_delivery.toFixed(0)} µs/delivery, lost ${m.lost}`;
  if (RUNS) {
    const runs = [];
    for (let r = 0; r < RUNS; r += 1) {
      runs.push(await stretch(target, CLIENTS, RATE, SECONDS, `run-${r}`));
      console.log(`run ${r + 1}: ${line(runs.at(-1))}`);
    }
    console.log(`median of ${RUNS}: p50 ${median(runs.map((m) => m.p50)).toFixed(2)} ms, p99 ${median(runs.map((m) => m.p99)).toFixed(2)} ms, CPU ${median(runs.map((m) => m.cpu_us_per_delivery)).toFixed(0)} µs/delivery`);
  } else {
    const m = await profiled(server, 'chat', () => stretch(target, CLIENTS, RATE, SECONDS, 'profile'));
    console.log(`${CLIENTS} clients at ${RATE}/s: ${line(m)}`);
  }
} finally {
  await server.cleanup();
}
