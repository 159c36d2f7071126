// Starts the built Worker in workerd (wrangler dev) on a free port with its own
// persisted state, and gives tests a small HTTP client. Every server is stopped
// when its test file ends.
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, createHash, createHmac } from 'node:crypto';
import { after } from 'node:test';
import { checkResponse } from './openapi.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const JWT_SECRET = randomBytes(32).toString('hex');
// X_LOCAL_OBSERVABILITY: wrangler dev's local explorer streams a trace of
// every event of every worker to a collector worker. A hibernated WebSocket
// message is an event of its own, and the trace cost the document benchmark
// about 180 µs of workerd CPU per message (245 against 64 µs over 30,000 edits),
// more than the room's own work; production has no such collector. Tests and
// benchmarks run every server without it, the peers too.
const ENV = { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_D1_WARNING: 'true', X_LOCAL_OBSERVABILITY: 'false' };

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A fresh local D1 with every migration applied. `wrangler d1 migrations
 * apply` costs a wrangler start (5–20 s on a busy machine) and its result
 * depends only on the migrations and wrangler.toml, so it runs once per set of
 * them into .tessera/d1-<hash>/ and each server starts from a copy.
 */
function migratedInto(dir) {
  const hash = createHash('sha256');
  const migrations = join(ROOT, 'migrations');
  for (const f of readdirSync(migrations).sort()) hash.update(f).update(readFileSync(join(migrations, f)));
  hash.update(readFileSync(join(ROOT, 'wrangler.toml')));
  const template = join(ROOT, '.tessera', `d1-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(template)) {
    // A fresh clone has no .tessera/ yet, and a rename into a missing folder fails.
    mkdirSync(dirname(template), { recursive: true });
    const building = mkdtempSync(join(tmpdir(), 'tessera-d1-'));
    execFileSync('wrangler', ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', building], { cwd: ROOT, env: ENV, stdio: 'pipe' });
    // Another process may have made it meanwhile: the first rename wins, the copy is the same.
    try { renameSync(building, template); } catch { rmSync(building, { recursive: true, force: true }); }
  }
  cpSync(template, dir, { recursive: true });
}

/**
 * Starts `wrangler dev` and waits until it answers. `persistDir` lets a caller
 * restart a server on the same state; `vars` become `--var` bindings of both
 * scripts (the Worker and the objects'); `root` is the checkout to run
 * (benchmarks compare another); `config` runs another worker (benchmarks'
 * reference servers) instead of Tessera; `services` ({ BINDING: path of a
 * wrangler.toml }) runs other workers in the same session, each bound to
 * Tessera as a service of that binding's name (test doubles of bindings
 * wrangler dev cannot simulate).
 */
export async function launch({ vars = {}, persistDir, root = ROOT, config, services } = {}) {
  const dir = persistDir ?? mkdtempSync(join(tmpdir(), 'tessera-test-'));
  // A caller's own persistDir may hold state already: migrations apply to it as they would in production.
  if (!config && persistDir) {
    execFileSync('wrangler', ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', dir], { cwd: root, env: ENV, stdio: 'pipe' });
  } else if (!config) {
    migratedInto(dir);
  }
  // A port found free may be taken before wrangler binds it (workerd's own
  // listeners take ephemeral ports too): then it starts again on others.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await serve(dir, persistDir, config ? { config } : configs(root, services, vars), vars);
    } catch (e) {
      if (!(e instanceof PortTaken) || attempt === 3) throw e;
    }
  }
}

class PortTaken extends Error {}

/** A copy of a wrangler.toml written beside it (its paths are relative to where it is). */
function writeBeside(path, toml) {
  const file = join(dirname(path), `.wrangler-test-${process.pid}-${randomBytes(4).toString('hex')}.toml`);
  writeFileSync(file, toml);
  return file;
}

/**
 * The configurations of a checkout's `wrangler dev`: the Worker's, with
 * service bindings added when there are `services`; the objects' script
 * (objects/wrangler.toml; a checkout from before the split has none), with
 * `vars` written into its [vars], since wrangler gives `--var` to the first
 * script only; then the services' own. `generated` are the copies to delete.
 */
function configs(root, services = {}, vars) {
  const main = join(root, 'wrangler.toml');
  const files = [main];
  const generated = [];
  if (Object.keys(services).length) {
    let toml = readFileSync(main, 'utf8');
    for (const [binding, path] of Object.entries(services)) {
      const name = /^name\s*=\s*"([^"]+)"/m.exec(readFileSync(path, 'utf8'))?.[1];
      if (!name) throw new Error(`${path} names no worker`);
      toml += `\n[[services]]\nbinding = "${binding}"\nservice = "${name}"\n`;
    }
    files[0] = writeBeside(main, toml);
    generated.push(files[0]);
  }
  const objects = join(root, 'objects', 'wrangler.toml');
  if (existsSync(objects)) {
    let toml = readFileSync(objects, 'utf8');
    for (const [k, v] of Object.entries(vars)) {
      const line = `${k} = ${JSON.stringify(String(v))}`;
      const set = new RegExp(`^${k}\\s*=.*$`, 'm');
      toml = set.test(toml) ? toml.replace(set, () => line) : toml.replace(/^\[vars\]$/m, () => `[vars]\n${line}`);
    }
    files.push(writeBeside(objects, toml));
    generated.push(files.at(-1));
  }
  files.push(...Object.values(services));
  return { files, generated, cwd: root };
}

/**
 * Starts wrangler dev on free ports and waits until it answers: Tessera's
 * `configs`, or another worker's `config`.
 */
async function serve(dir, persistDir, { config, files = [config], generated = [], cwd = dirname(config) }, vars) {
  const port = await freePort();
  const inspector = await freePort();
  const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', dir, '--test-scheduled', '--show-interactive-dev-session=false'];
  for (const c of files) args.push('-c', c);
  for (const [k, v] of Object.entries({ JWT_SECRET, ...vars })) args.push('--var', `${k}:${v}`);
  const removeGenerated = () => { for (const f of generated) rmSync(f, { force: true }); };
  const child = spawn('wrangler', args, { cwd, env: ENV, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let logs = '';
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  const url = `http://127.0.0.1:${port}`;
  const server = {
    url,
    port,
    /** The Chrome DevTools inspector of the Worker's isolate (benchmarks profile it). */
    inspector,
    dir,
    /** wrangler's pid, which is also its process group (benchmarks sample workerd in it). */
    pid: child.pid,
    get logs() { return logs; },
    /** SIGKILL the whole process group: wrangler and workerd die mid-flight. */
    kill() {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      server.kill();
      await exited;
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      const Failure = /Address already in use/.test(logs) ? PortTaken : Error;
      removeGenerated();
      throw new Failure(`wrangler dev exited early:\n${logs}`);
    }
    try {
      const r = await fetch(`${url}/api/v1/health`, { headers: { 'cf-connecting-ip': randomIp() } });
      if (r.status === 200 || (config && r.status === 404)) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      server.kill();
      removeGenerated();
      throw new Error(`wrangler dev did not become ready:\n${logs}`);
    }
    await sleep(200);
  }
  server.cleanup = async () => {
    await server.stop();
    // TESSERA_WORKER_LOGS=<dir> keeps each server's log (panics, errors) for a look afterwards.
    if (process.env.TESSERA_WORKER_LOGS) writeFileSync(join(process.env.TESSERA_WORKER_LOGS, `worker-${port}.log`), logs);
    if (!persistDir) rmSync(dir, { recursive: true, force: true });
    removeGenerated();
  };
  return server;
}

/** [`launch`] for a test file: the server is stopped when the file's tests end. */
export async function startServer(options) {
  const server = await launch(options);
  after(server.cleanup);
  return server;
}

/** Polls `fn` until it returns something truthy (which it returns), or fails after `timeoutMs`. */
export async function until(what, fn, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A documentation-range address: each test client looks like its own IP. */
export function randomIp() {
  const b = randomBytes(2);
  return `198.18.${b[0]}.${b[1]}`;
}

/**
 * One API call. `body` objects are sent as JSON; `raw` is sent as is.
 * Returns { status, headers, body } with the JSON body parsed when there is one.
 * Every answer is checked against core/openapi.json (status and schema): a
 * mismatch throws, or goes to `undocumented(error)` when the caller gives it.
 */
export async function api(server, method, path, { token, body, raw, headers = {}, ip, undocumented } = {}) {
  const h = { 'cf-connecting-ip': ip ?? randomIp(), ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload = raw;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    h['content-type'] ??= 'application/json';
  }
  const res = await fetch(server.url + path, { method, headers: h, body: payload });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  try {
    checkResponse(method, path, res.status, res.headers.get('content-type'), json);
  } catch (e) {
    if (!undocumented) throw e;
    undocumented(e);
  }
  return { status: res.status, headers: res.headers, body: json };
}

let counter = 0;
/** Registers a fresh user; returns { user, access_token, refresh_token, token }. */
export async function register(server, name = 'User') {
  counter += 1;
  const email = `${name.toLowerCase().replace(/\W/g, '')}-${Date.now()}-${counter}-${randomBytes(3).toString('hex')}@example.org`;
  const r = await api(server, 'POST', '/api/v1/auth/register', {
    body: { email, password: 'correct horse battery', display_name: name },
  });
  if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { ...r.body, email, password: 'correct horse battery', token: r.body.access_token };
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 token signed with the test server's secret (for forged-claim tests). */
export function signHs256(claims, secret = JWT_SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
  const head = `${b64url(header)}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
