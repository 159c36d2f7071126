// CPU profile of the Worker's isolate (the Room object included) while the
// first N edits of the editing trace are replayed one update per edit:
//
//   node bench/docs/profile.mjs [--edits 30000] [--runs N]
//
// Prints self time by function (the module must carry its name section: build
// with `worker-build --release --no-opt` in functions/ and skip wasm-opt for
// this) and writes the whole profile to bench/results/ (open it in Chrome
// DevTools). With --runs N it replays N times without the profiler instead and
// prints the times.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, launch, register, ROOT } from '../../tests/harness.mjs';
import { median, openWs, replayYjs, updatesFor } from './replay.mjs';
import { arg } from '../args.mjs';

const EDITS = arg('edits', 30_000);
const RUNS = arg('runs', 0);
const { updates, final } = updatesFor(EDITS, 1);

/** The isolate's DevTools session: the first target the inspector lists. */
async function devtools(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = await openWs(targets[0].webSocketDebuggerUrl);
  let id = 0;
  const waiting = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    if (m.id && waiting.has(m.id)) { waiting.get(m.id)(m); waiting.delete(m.id); }
  });
  return {
    call: (method, params = {}) => new Promise((resolve) => {
      id += 1;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    }),
    close: () => ws.close(),
  };
}

/** Self time per function, from the sample counts. */
function summarise(profile, ms) {
  const { nodes, samples, timeDeltas } = profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  samples.forEach((id, k) => {
    const n = byId.get(id);
    const name = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}`;
    self.set(name, (self.get(name) ?? 0) + (timeDeltas[k] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`${updates.length} updates in ${ms.toFixed(0)} ms; profile ${(total / 1000).toFixed(0)} ms`);
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${(100 * us / total).toFixed(1).padStart(5)}%  ${name}`);
  }
}

const server = await launch({ vars: { DOC_RATE_PER_SEC: '1000000' } });
try {
  const owner = await register(server, 'Profile');
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'profile', kind: 'group' } })).body.id;
  const url = (doc) => `${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/${doc}?token=${owner.token}`;
  const headers = () => ({ 'cf-connecting-ip': '198.18.7.7' });
  if (RUNS) {
    const times = [];
    for (let k = 0; k < RUNS; k += 1) times.push(await replayYjs(url(`run${k}`), url(`run${k}`), updates, final, headers));
    console.log(`runs: ${times.map((t) => t.toFixed(0)).join(', ')} ms; median ${median(times).toFixed(0)}`);
  } else {
    const dt = await devtools(server.inspector);
    await dt.call('Profiler.enable');
    await dt.call('Profiler.setSamplingInterval', { interval: 200 });
    await dt.call('Profiler.start');
    const ms = await replayYjs(url('paper'), url('paper'), updates, final, headers);
    const { result } = await dt.call('Profiler.stop');
    dt.close();
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    const file = join(ROOT, `bench/results/profile-${Date.now()}.cpuprofile`);
    writeFileSync(file, JSON.stringify(result.profile));
    summarise(result.profile, ms);
    console.log(`whole profile: ${file}`);
  }
} finally {
  await server.cleanup();
}
