// Another built checkout of Tessera (a worktree of an earlier commit, built
// with `bash scripts/build.sh` there) under wrangler dev, for A/B runs against
// this one in the same invocation.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from '../tests/harness.mjs';

export function launchCheckout(dir, vars) {
  const persistDir = mkdtempSync(join(tmpdir(), 'tessera-ab-'));
  execFileSync('wrangler', ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistDir], { cwd: dir, stdio: 'pipe' });
  return launch({ root: dir, persistDir, vars });
}
