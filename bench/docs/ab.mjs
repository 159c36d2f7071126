// A/B of the one-update-per-edit replay: this checkout's build against another
// built checkout of Tessera (for example a worktree of an earlier commit, built
// with `bash scripts/build.sh` there), in alternating runs of one invocation:
//
//   node bench/docs/ab.mjs --other ../tessera-before [--edits 20000] [--runs 5]
//
// Each run replays the first N edits of the trace into a new room until a
// second socket holds the final text; medians are printed.
import { api, launch, register } from '../../tests/harness.mjs';
import { launchCheckout } from '../checkout.mjs';
import { median, replayYjs, updatesFor } from './replay.mjs';
import { arg } from '../args.mjs';

const other = arg('other');
if (!other) throw new Error('--other <a built checkout of Tessera> is required');
const { updates, final } = updatesFor(arg('edits', 20_000), 1);
const runs = arg('runs', 5);
const vars = { DOC_RATE_PER_SEC: '1000000' };

const servers = {
  other: await launchCheckout(other, vars),
  this: await launch({ vars }),
};
try {
  const owners = { other: await register(servers.other, 'A'), this: await register(servers.this, 'B') };
  const times = { other: [], this: [] };
  for (let r = 0; r < runs; r += 1) {
    for (const k of (r % 2 ? ['this', 'other'] : ['other', 'this'])) {
      const server = servers[k];
      const { token } = owners[k];
      const room = (await api(server, 'POST', '/api/v1/rooms', { token, body: { name: 'ab', kind: 'group' } })).body.id;
      const url = `${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/paper?token=${token}`;
      times[k].push(await replayYjs(url, url, updates, final, () => ({ 'cf-connecting-ip': `198.18.4.${r}` })));
      console.log(`run ${r + 1}: ${k} ${times[k].at(-1).toFixed(0)} ms`);
    }
  }
  console.log(`median: other ${median(times.other).toFixed(0)} ms, this ${median(times.this).toFixed(0)} ms`);
} finally {
  await servers.other.cleanup();
  await servers.this.cleanup();
}
