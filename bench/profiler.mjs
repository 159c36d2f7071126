// V8's sampling profiler on the Worker's isolate, through the inspector that
// `tests/harness.mjs` opens for `wrangler dev`. Self time is summed by
// function; the module carries names only when it is built without wasm-opt
// (`cd functions && worker-build --release --no-opt`).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ROOT } from '../tests/harness.mjs';

/** The isolate's DevTools session: the first target the inspector lists. */
async function devtools(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
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

/**
 * Runs `work` under the profiler (200 µs sampling), prints the 40 functions
 * with the most self time and writes the whole profile to bench/results/
 * (open it in Chrome DevTools). Returns what `work` returned.
 */
export async function profiled(server, name, work) {
  const dt = await devtools(server.inspector);
  await dt.call('Profiler.enable');
  await dt.call('Profiler.setSamplingInterval', { interval: 200 });
  await dt.call('Profiler.start');
  const result = await work();
  const { result: { profile } } = await dt.call('Profiler.stop');
  dt.close();
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/${name}-${Date.now()}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  summarise(profile);
  console.log(`whole profile: ${file}`);
  return result;
}

function summarise({ nodes, samples, timeDeltas }) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map();
  samples.forEach((id, k) => {
    const n = byId.get(id);
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}`;
    self.set(fn, (self.get(fn) ?? 0) + (timeDeltas[k] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`profile: ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [fn, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${(100 * us / total).toFixed(1).padStart(5)}%  ${fn}`);
  }
}
