// Schema fuzzing: schemathesis (pinned in tests/schemathesis/requirements.txt,
// installed into .venv by scripts/bootstrap.sh) generates requests from
// core/openapi.json and sends them to the Worker in workerd as a member of a
// seeded room. No response may be a 5xx, and every response must be what the
// document says, and the document's request schemas are exactly what the
// server takes (valid requests are not refused, invalid ones are). Bounded by
// SCHEMA_SECONDS; SCHEMA_SEED reproduces a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, register, startServer } from './harness.mjs';
import { seed } from './seed.mjs';

const SEED = Number(process.env.SCHEMA_SEED ?? randomInt(2 ** 31));
const SECONDS = Number(process.env.SCHEMA_SECONDS ?? 150);
const BIN = join(ROOT, '.venv', 'bin', 'schemathesis');

test(`schemathesis for ${SECONDS} s (seed ${SEED}): no 5xx, every response as documented`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  assert.ok(existsSync(BIN), 'schemathesis is installed by scripts/bootstrap.sh');
  // Chat writes are not throttled: the API's rate limits are not what is tested here.
  const server = await startServer({ vars: { CHAT_RATE_PER_SEC: '10000' } });
  const { people, ids, tokens } = await seed(server);
  const leaver = await register(server, 'Leaver');
  const reports = mkdtempSync(join(tmpdir(), 'tessera-schema-'));
  const args = [
    '--config-file', join(ROOT, 'tests', 'schemathesis', 'schemathesis.toml'),
    'run', `${server.url}/api/v1/openapi.json`, '--url', server.url,
    // Every check is on by default; the config file turns off the few that
    // cannot apply to an operation, and a CLI `--checks` would override it.
    '--max-time', String(SECONDS), '--seed', String(SEED),
    '--report', 'ndjson', '--report-dir', reports, '--no-color',
  ];
  const env = {
    ...process.env,
    PYTHONPATH: join(ROOT, 'tests', 'schemathesis'),
    TESSERA_TOKEN: tokens.member,
    TESSERA_SIGNOUT_TOKEN: leaver.token,
    TESSERA_ROOM: ids.room,
    TESSERA_OWNER: people.owner.user.id,
    TESSERA_MESSAGE: String(ids.message),
    TESSERA_DOC: ids.doc,
    TESSERA_VERSION: String(ids.version),
    TESSERA_UPLOAD: ids.upload,
    TESSERA_FILE: ids.file,
    TESSERA_RULE: ids.rule,
    TESSERA_JOB: ids.job,
    TESSERA_INVITE: ids.invite,
  };
  console.log(`schemathesis: SCHEMA_SEED=${SEED} SCHEMA_SECONDS=${SECONDS}`);
  const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  const [report] = readdirSync(reports).filter((f) => f.endsWith('.ndjson'));
  const found = summarize(join(reports, report));
  console.log(`schemathesis summary: ${JSON.stringify({ seed: SEED, seconds: SECONDS, exit: code, ...found.counts })}`);
  for (const line of found.failures) console.log(`  ${line}`);
  if (code !== 0) console.log(out.slice(out.lastIndexOf('= SUMMARY =') - 40));
  assert.equal(found.counts.responses_5xx, 0, `5xx answers (seed ${SEED})`);
  // Every failed check fails the test, the request-schema ones too
  // (positive_data_acceptance, negative_data_rejection): the document says
  // exactly what the server takes. The few operations where a schema cannot
  // say it have that check off in schemathesis.toml, with the reason.
  assert.deepEqual(found.failures, [], `failed checks (seed ${SEED})`);
  assert.equal(code, 0, `schemathesis reported errors (seed ${SEED}):\n${out.slice(out.lastIndexOf('= SUMMARY ='))}`);
});

/** Requests, statuses and failed checks (one line per check and operation) of an NDJSON report. */
function summarize(file) {
  const statuses = {};
  const failed = {};
  const lines = new Set();
  let requests = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const finished = line && JSON.parse(line).ScenarioFinished;
    if (!finished) continue;
    const { label, interactions = {}, checks = {} } = finished.recorder;
    for (const it of Object.values(interactions)) {
      requests += 1;
      const status = it.response?.status_code ?? 'none';
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    for (const results of Object.values(checks)) {
      for (const c of results.filter((r) => r.status === 'failure')) {
        failed[c.name] = (failed[c.name] ?? 0) + 1;
        const f = c.failure_info?.failure ?? {};
        lines.add(`${c.name} ${label}: ${f.title} — ${(f.message ?? '').split('\n')[0]}`);
      }
    }
  }
  const responses5xx = Object.entries(statuses).filter(([s]) => Number(s) >= 500).reduce((n, [, k]) => n + k, 0);
  return { counts: { requests, statuses, responses_5xx: responses5xx, failed_checks: failed }, failures: [...lines].sort() };
}
