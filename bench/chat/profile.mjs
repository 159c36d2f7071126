// Tessera's chat room under load, profiled, timed, or A/B against another build:
//
//   node bench/chat/profile.mjs [--clients 10] [--rate 500] [--seconds 5] [--reference yes]
//   node bench/chat/profile.mjs --runs N [--other ../tessera-before]
//   node bench/chat/profile.mjs --runs N --var SEARCH_INDEX=off
//
// One room of `clients` sockets at `rate` messages/s in total (as in run.mjs).
// Without --runs, one stretch runs under `perf` after one unprofiled stretch
// that warms the module up (../profiler.mjs: workerd's native time by kind,
// the JIT-compiled code as one share), and each kind is printed as CPU µs per
// delivery; `--reference yes` profiles the partyserver room (run.mjs's
// reference) the same way, for a side-by-side. With --runs N, N
// stretches run without it and print p50/p99 and the server's CPU per
// delivery; with --other too, that checkout's build (../checkout.mjs) takes
// turns with this one, run by run, for comparing a change with its parent.
import { launch, register } from '../../tests/harness.mjs';
import { arg } from '../args.mjs';
import { launchCheckout } from '../checkout.mjs';
import { profiled } from '../profiler.mjs';
import { jsRoom, launchReference, median, stretch, tessera } from './fanout.mjs';

const CLIENTS = arg('clients', 10);
const RATE = arg('rate', 500);
const SECONDS = arg('seconds', 5);
const RUNS = arg('runs', 0);
const OTHER = arg('other');
const REFERENCE = arg('reference') === 'yes';
// `--var NAME=value` sets one more of the Worker's vars for both builds.
const [varName, varValue] = (arg('var') ?? '').split('=');
const vars = { CHAT_RATE_PER_SEC: '100000', ...(varName ? { [varName]: varValue } : {}) };

const servers = { this: await launch({ vars }) };
if (OTHER) servers.other = await launchCheckout(OTHER, vars);
if (REFERENCE) servers.partyserver = await launchReference();
try {
  const targets = {};
  for (const [name, server] of Object.entries(servers)) {
    if (name === 'partyserver') {
      targets[name] = { server, makeRoom: jsRoom(server) };
      continue;
    }
    const people = [];
    for (let i = 0; i < CLIENTS; i += 1) people.push(await register(server, `Bench${i}`));
    targets[name] = { server, makeRoom: await tessera(server, people) };
  }
  const line = (m) => `p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms, CPU ${m.cpu_us_per_delivery.toFixed(0)} µs/delivery, lost ${m.lost}`;
  if (RUNS) {
    const runs = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
    for (let r = 0; r < RUNS; r += 1) {
      const order = Object.keys(targets);
      if (r % 2) order.reverse();
      for (const name of order) {
        runs[name].push(await stretch(targets[name], CLIENTS, RATE, SECONDS, `${name}-${r}`));
        console.log(`run ${r + 1} ${name}: ${line(runs[name].at(-1))}`);
      }
    }
    for (const [name, rs] of Object.entries(runs)) {
      console.log(`${name}, median of ${RUNS}: p50 ${median(rs.map((m) => m.p50)).toFixed(2)} ms, p99 ${median(rs.map((m) => m.p99)).toFixed(2)} ms, CPU ${median(rs.map((m) => m.cpu_us_per_delivery)).toFixed(0)} µs/delivery`);
    }
  } else {
    const table = [];
    for (const [name, target] of Object.entries(targets)) {
      await stretch(target, CLIENTS, RATE, SECONDS, `${name}-warm-up`);
      console.log(`\n${name}:`);
      const { result: m, kinds } = await profiled(target.server, `chat-${name}`, () => stretch(target, CLIENTS, RATE, SECONDS, `${name}-profile`));
      console.log(`${CLIENTS} clients at ${RATE}/s: ${line(m)}`);
      table.push({ name, kinds: new Map(kinds), cpu: m.workerd_cpu_us_per_delivery });
    }
    const kinds = [...new Set(table.flatMap((t) => [...t.kinds.keys()]))];
    console.log(`\nworkerd CPU µs per delivery by kind | ${table.map((t) => t.name).join(' | ')}`);
    for (const k of kinds) console.log(`${k} | ${table.map((t) => ((t.kinds.get(k) ?? 0) * t.cpu / 100).toFixed(1)).join(' | ')}`);
    console.log(`all | ${table.map((t) => t.cpu.toFixed(1)).join(' | ')}`);
  }
} finally {
  await Promise.all(Object.values(servers).map((s) => s.cleanup()));
}
