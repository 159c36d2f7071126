// The first N edits of the editing trace replayed one update per edit:
//
//   node bench/docs/profile.mjs [--edits 30000] [--runs N]
//
// With --runs N it replays N times and prints the times. Without, it replays
// once under `perf` (../profiler.mjs: workerd's native time by kind, the JIT
// code as one share).
import { api, launch, register } from '../../tests/harness.mjs';
import { median, replayYjs, updatesFor } from './replay.mjs';
import { profiled } from '../profiler.mjs';
import { arg } from '../args.mjs';

const EDITS = arg('edits', 30_000);
const RUNS = arg('runs', 0);
const { updates, final } = updatesFor(EDITS, 1);

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
    const { result: ms } = await profiled(server, 'docs', () => replayYjs(url('paper'), url('paper'), updates, final, headers));
    console.log(`${updates.length} updates in ${ms.toFixed(0)} ms`);
  }
} finally {
  await server.cleanup();
}
