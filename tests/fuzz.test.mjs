// Frame fuzzing, live: seeded random and mutated chat frames, y-websocket
// messages (deep nesting, huge lengths), tus headers, Range headers and JSON
// bodies against the Worker in workerd, while a second client keeps chatting
// and editing. Nothing may answer 5xx or panic (the Worker's log is read),
// the second client's traffic must go on untouched, and nothing refused may
// be stored. FUZZ_SEED reproduces a run's inputs; FUZZ_SECONDS sets its length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import WebSocket from 'ws';
import { api, randomIp, register, startServer } from './harness.mjs';
import { checkResponse } from './openapi.mjs';
import { join } from './ws.mjs';
import { open, synced, Y } from './ydoc.mjs';
import { freshMember, OK, roomFor, seed, textUpdate, upload } from './seed.mjs';
import { awareness, syncStep1, syncUpdate, varstring, varuint } from './ywire.mjs';

const SEED = Number(process.env.FUZZ_SEED ?? randomInt(2 ** 31));
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);

/** mulberry32: a small seeded generator; each fuzzer draws from its own stream. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
  r.string = () => r.pick(STRINGS)(r);
  r.number = () => r.pick(NUMBERS);
  r.json = (depth = 0) => {
    const kinds = depth > 3 ? 4 : 6;
    switch (r.int(kinds)) {
      case 0: return null;
      case 1: return r.chance(0.5);
      case 2: return r.number();
      case 3: return r.string();
      case 4: return Array.from({ length: r.int(4) }, () => r.json(depth + 1));
      default: return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(KEYS), r.json(depth + 1)]));
    }
  };
  /** A copy of `value` with one random change at a random depth. */
  r.mutate = (value) => {
    if (value === null || typeof value !== 'object' || r.chance(0.15)) {
      return r.pick([() => r.json(), () => r.string(), () => r.number(), () => undefined, () => [value], () => ({ v: value })])();
    }
    const copy = Array.isArray(value) ? [...value] : { ...value };
    const keys = Object.keys(copy);
    const op = r.int(3);
    if (op === 0 && keys.length) delete copy[r.pick(keys)];
    else if (op === 1 || !keys.length) copy[Array.isArray(copy) ? copy.length : r.pick(KEYS)] = r.json();
    else {
      const k = r.pick(keys);
      copy[k] = r.mutate(copy[k]);
    }
    return copy;
  };
  return r;
}

const STRINGS = [
  () => '', () => ' ', () => 'x', () => 'hello', () => '👍', () => '\u0000', () => '\ud800', () => '\u202e evil',
  () => 'e\u0301\u0301\u0301', () => '中文字符', () => '<script>alert(1)</script>', () => "'; DROP TABLE users; --",
  () => '../../etc/passwd', () => '%00%2e%2e', () => '{{event.data}}', () => 'null', () => '1e999',
  (r) => 'a'.repeat(r.pick([63, 64, 65, 100, 101, 255, 256, 4096, 8193, 70_000])),
  (r) => r.bytes(r.int(40)).toString('latin1'), (r) => r.bytes(r.int(40)).toString('base64'),
];
const NUMBERS = [0, 1, -1, 2, 7, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, -(2 ** 63), 1e308, -1e308, 0.5, -0, 1e-320];
const KEYS = [
  'type', 'id', 'body', 'client_msg_id', 'reply_to', 'attachments', 'emoji', 'status', 'seq', 'nonce', 'name', 'kind',
  'topic', 'members', 'role', 'user_id', 'max_uses', 'expires_in', 'title', 'description', 'due_at', 'at', 'user_ids',
  'rule', 'trigger', 'condition', 'effect', 'action', 'args', 'enabled', 'label', 'texts', 'file_ids', 'display_name',
  'password', 'current_password', 'email', '__proto__', 'constructor', 'évil', '',
];

const CHAT_FRAMES = [
  { type: 'send', client_msg_id: 'c', body: 'fuzz' }, { type: 'send', client_msg_id: 'c', body: 'r', reply_to: 1, attachments: [] },
  { type: 'edit', id: 1, body: 'x' }, { type: 'delete', id: 1 }, { type: 'react', id: 1, emoji: '👍' },
  { type: 'unreact', id: 1, emoji: '👍' }, { type: 'typing' }, { type: 'presence', status: 'away' },
  { type: 'read', seq: 1 }, { type: 'ping', nonce: 'n' },
];

const tally = {
  chat_frames: 0, doc_messages: 0, tus_requests: 0, range_requests: 0, json_bodies: 0,
  responses_5xx: 0, undocumented: 0, internal_error_frames: 0, reconnects: 0,
};
const problems = [];
const note = (what) => { if (problems.length < 50) problems.push(what); };
/** An answer the document does not describe is noted, and the fuzzer goes on. */
const undocumented = (e) => { tally.undocumented += 1; note(e.message.slice(0, 400)); };
const http = async (server, method, path, opts) => {
  const r = await api(server, method, path, { ...opts, undocumented });
  if (r.status >= 500) {
    tally.responses_5xx += 1;
    note(`${method} ${path} → ${r.status} ${JSON.stringify(r.body)} (${JSON.stringify(opts?.headers ?? {})})`);
  }
  return r;
};

const server = await startServer({ vars: { CHAT_RATE_PER_SEC: '10000' } });
const fx = await seed(server);
const { people, ids } = fx;
const room = ids.room;
// Set when the fuzzing starts (after the setup).
let deadline = 0;
const running = () => Date.now() < deadline;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The second client: a member who chats and edits throughout, as an app would. */
async function steadyClient(steady, t) {
  const chat = await join(server, room, steady.token);
  const doc = open(server, room, 'steady', steady.token);
  t.after(() => {
    chat.close();
    doc.provider.destroy();
    doc.ydoc.destroy(); // and with it the awareness timer
  });
  await synced(doc.provider);
  let disconnects = 0;
  doc.provider.on('status', ({ status }) => { if (status === 'disconnected') disconnects += 1; });
  let i = 0;
  for (; running(); i += 1) {
    chat.send({ type: 'send', client_msg_id: `steady-${i}`, body: `steady ${i}` });
    doc.text.insert(doc.text.length, `[${i}]`);
    await sleep(100);
  }
  await chat.count('ack', i, 30_000);
  return { chat, doc, sent: i, disconnects };
}

/** Random and mutated chat frames from a member, in batches closed by a ping. */
async function chatFuzzer(r, who) {
  const acked = new Set();
  let c = null;
  while (running()) {
    if (!c || c.closed) {
      if (c) tally.reconnects += 1;
      try {
        c = await join(server, room, who.token);
      } catch (e) {
        // A refused upgrade is an answer like any other: a 5xx counts.
        if (!(e.status < 500)) { tally.responses_5xx += 1; note(`chat socket upgrade: ${e.message.slice(0, 200)}`); }
        c = null;
        await sleep(100);
        continue;
      }
    }
    const barrier = `barrier-${tally.chat_frames}`;
    for (let n = 0; n < 25; n += 1) {
      tally.chat_frames += 1;
      const kind = r.int(10);
      if (kind < 6) {
        let frame = r.mutate(r.pick(CHAT_FRAMES));
        if (r.chance(0.3)) frame = r.mutate(frame);
        if (frame && typeof frame === 'object' && 'id' in frame && r.chance(0.5)) frame.id = r.pick([ids.message, ...ids.viewerMessages, 1, 2, 3]);
        c.send(JSON.stringify(frame) ?? 'undefined');
      } else if (kind === 6) {
        const depth = r.pick([10, 127, 128, 129, 1000, 20_000]);
        c.send(`${'['.repeat(depth)}${']'.repeat(depth)}`);
      } else if (kind === 7) {
        c.ws.send(r.bytes(r.int(100)));
      } else if (kind === 8) {
        c.send(r.bytes(r.int(200)).toString('utf8'));
      } else {
        c.send(`{"type":"send","client_msg_id":"dup","body":"a","type":"${r.pick(['edit', 'ping', 'send'])}"}`);
      }
    }
    c.send({ type: 'ping', nonce: barrier });
    const pong = c.next((f) => f.type === 'pong' && f.nonce === barrier, 10_000).then(() => true, () => false);
    // Too many invalid frames close the socket (by design): then no pong comes.
    if (!(await Promise.race([pong, c.closedPromise.then(() => true)]))) note(`chat fuzzer: no pong within 10 s (seed ${SEED})`);
    for (const f of c.frames) {
      if (f.type === 'ack') acked.add(f.client_msg_id);
      if (f.type === 'error' && f.code === 'internal') { tally.internal_error_frames += 1; note(`internal error frame ${JSON.stringify(f)}`); }
    }
    c.frames.length = 0;
  }
  c?.close();
  return acked;
}

/** An update whose one map value is an array nested `depth` deep. */
function nestedUpdate(depth) {
  const d = new Y.Doc();
  d.getMap('m').set('k', ['\u0001MARK']);
  const u = Buffer.from(Y.encodeStateAsUpdate(d));
  const mark = Buffer.concat([Buffer.from([119]), varstring('\u0001MARK')]);
  const at = u.indexOf(mark);
  const nest = Buffer.alloc(depth * 2);
  for (let k = 0; k < depth; k += 1) nest.set([117, 1], k * 2);
  return Buffer.concat([u.subarray(0, at), nest, Buffer.from([119]), varstring('x'), u.subarray(at + mark.length)]);
}

function docMessage(r) {
  const valid = syncUpdate(textUpdate(`fuzz ${r.int(1000)}`));
  switch (r.int(9)) {
    case 0: return r.bytes(1 + r.int(300));
    case 1: { // a valid update with bytes flipped, inserted or cut
      const b = Buffer.from(valid);
      for (let k = 0; k < 1 + r.int(4); k += 1) b[r.int(b.length)] = r.int(256);
      return r.chance(0.5) ? b : b.subarray(0, r.int(b.length));
    }
    case 2: // a length far beyond the message
      return Buffer.concat([varuint(r.pick([0, 1])), varuint(r.int(3)), varuint(r.pick([2 ** 31, 2 ** 32, 2 ** 53 - 1, 9e15])), r.bytes(r.int(20))]);
    case 3: return syncUpdate(nestedUpdate(r.pick([100, 1000, 10_000, 100_000, 500_000])));
    case 4: return awareness(r.pick([0, 1, 2 ** 32, 2 ** 53 - 1]), r.pick([0, 1, 2 ** 32]), r.mutate({ user: { name: 'x', color: '#fff' } }) ?? null);
    case 5: return Buffer.concat([varuint(1), varuint(r.pick([2 ** 20, 2 ** 32])), r.bytes(10)]);
    case 6: return syncStep1(r.bytes(r.int(40)));
    case 7: return Buffer.concat([varuint(r.pick([2, 3, 4, 99, 2 ** 40])), r.bytes(r.int(20))]);
    default: return valid;
  }
}

/** Random y-websocket messages on `doc` from `who`; the socket reopens after each close. */
async function docFuzzer(r, who, doc) {
  let ws = null;
  const reopen = async () => {
    ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/${doc}?token=${who.token}`, { headers: { 'cf-connecting-ip': randomIp() } });
    ws.on('error', () => {});
    ws.on('close', (code, reason) => { if (code === 1011) note(`doc socket closed 1011: ${reason}`); });
    await new Promise((resolve) => { ws.once('open', resolve); ws.once('close', resolve); });
  };
  await reopen();
  while (running()) {
    if (ws.readyState !== WebSocket.OPEN) {
      tally.reconnects += 1;
      await reopen();
      continue;
    }
    tally.doc_messages += 1;
    ws.send(docMessage(r));
    // Paced: the Worker's one isolate serves every fuzzer and the second client.
    await sleep(20);
  }
  ws.close();
}

/** A header value of the string's UTF-8 bytes (fetch refuses control characters: they become `?`), at most 4 KiB. */
const headerSafe = (v) => Buffer.from(String(v), 'utf8').subarray(0, 4096).toString('latin1').replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '?');
const tusHeaders = (extra) => ({ 'tus-resumable': '1.0.0', ...extra });
const meta = (pairs) => pairs.map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');

/** tus creations and PATCHes with mutated headers; a refused PATCH must leave the offset as it was. */
async function tusFuzzer(r, who) {
  const token = who.token;
  const live = [];
  while (running()) {
    tally.tus_requests += 1;
    if (live.length === 0 || r.chance(0.4)) {
      const length = r.pick(['5', '0', '-1', '1e3', '0x10', String(2 ** 64), '', ' 5', '100000000000', String(r.int(50))]);
      const headers = tusHeaders({
        'upload-length': length,
        'upload-metadata': r.pick([
          meta([['filename', 'f.txt'], ['room_id', room]]),
          meta([['filename', r.string() || 'x'], ['room_id', room], ['filetype', r.string()]]),
          meta([['filename', 'f.txt'], ['room_id', r.pick([room, 'nope', fx.ids.file, ''])]]),
          `filename !!!,room_id ${Buffer.from(room).toString('base64')}`, 'room_id', ',,,', r.string(),
        ]),
      });
      if (r.chance(0.2)) headers['tus-resumable'] = r.pick(['0.2.2', '', '1.0.0, 0.2.2', 'x']);
      if (r.chance(0.2)) headers['upload-defer-length'] = r.pick(['1', '0', 'x']);
      if (r.chance(0.2)) delete headers['upload-length'];
      headers['upload-metadata'] = headerSafe(headers['upload-metadata']);
      const res = await http(server, 'POST', '/api/v1/uploads', { token, headers });
      if (res.status === 201) live.push(res.headers.get('location').split('/').pop());
      continue;
    }
    const id = r.pick(live);
    const head = await http(server, 'HEAD', `/api/v1/uploads/${id}`, { token, headers: tusHeaders() });
    const before = head.status === 200 ? head.headers.get('upload-offset') : null;
    const headers = tusHeaders({
      'content-type': r.pick(['application/offset+octet-stream', 'application/octet-stream', 'text/plain', '']),
      'upload-offset': r.pick([before ?? '0', '0', '1', '-1', 'x', String(2 ** 60), `${before} `]),
    });
    if (r.chance(0.3)) headers['upload-checksum'] = r.pick(['sha1 AAAA', 'sha256 !!!', 'md5 abc', 'sha1', '', `sha1 ${randomBytes(20).toString('base64')}`]);
    const body = r.bytes(r.pick([0, 1, 3, 5, 50, 100]));
    const res = await http(server, 'PATCH', `/api/v1/uploads/${id}`, { token, headers, raw: body });
    if (before !== null && res.status >= 400 && res.status < 500) {
      const after = (await http(server, 'HEAD', `/api/v1/uploads/${id}`, { token, headers: tusHeaders() })).headers.get('upload-offset');
      if (after !== before) note(`a refused PATCH (${res.status}) moved the offset of ${id} from ${before} to ${after}`);
    }
  }
}

/** Downloads with random Range (and If-None-Match) headers: every answer is the bytes it claims. */
async function rangeFuzzer(r, who, fileId, data) {
  const token = who.token;
  while (running()) {
    tally.range_requests += 1;
    const n = () => r.pick([0, 1, data.length - 1, data.length, data.length + 1, r.int(data.length), 2 ** 53, -1]);
    const range = r.pick([
      () => `bytes=${n()}-${n()}`, () => `bytes=${n()}-`, () => `bytes=-${n()}`, () => `bytes=${n()}-${n()},${n()}-${n()}`,
      () => 'bytes=', () => `items=0-${n()}`, () => r.string(), () => `bytes=${n()}-${n()}`.replace('-', '--'),
    ])();
    const headers = { range: headerSafe(range), 'cf-connecting-ip': randomIp(), authorization: `Bearer ${token}` };
    if (r.chance(0.1)) headers['if-none-match'] = headerSafe(r.pick(['*', '"x"', r.string()]));
    let res;
    try {
      res = await fetch(`${server.url}/api/v1/files/${fileId}/content`, { headers });
    } catch (e) {
      note(`range ${JSON.stringify(range)}: ${e.message}`);
      continue;
    }
    const body = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type');
    try {
      const json = type?.startsWith('application/json') ? JSON.parse(body.toString()) : null;
      checkResponse('GET', `/api/v1/files/${fileId}/content`, res.status, type, json);
    } catch (e) {
      undocumented(e);
    }
    if (res.status >= 500) { tally.responses_5xx += 1; note(`range ${JSON.stringify(range)} → ${res.status}`); }
    if (res.status === 200 && !body.equals(data)) note(`range ${JSON.stringify(range)}: 200 with other bytes`);
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || !body.equals(data.subarray(Number(m[1]), Number(m[2]) + 1)) || Number(m[3]) !== data.length) {
        note(`range ${JSON.stringify(range)}: 206 ${res.headers.get('content-range')} with ${body.length} bytes that are not that range`);
      }
    }
    if (![200, 206, 304, 416].includes(res.status)) note(`range ${JSON.stringify(range)} → ${res.status}`);
  }
}

/**
 * Mutated JSON bodies for the routes that take one, sent by an admin of a
 * room of their own (so only this fuzzer changes it). After every refused
 * body what the route would have changed is as it was.
 */
/** The JSON fuzzer's room, made before any fuzzing starts. */
async function jsonRoom(admin, owner) {
  const own = await roomFor(server, { ...people, admin, owner });
  const spare = [];
  for (let k = 0; k < 3; k += 1) spare.push(await freshMember(server, own, owner));
  OK(await api(server, 'POST', `/api/v1/rooms/${own}/docs/notes/updates`, {
    token: admin.token, raw: textUpdate('json fuzz'), headers: { 'content-type': 'application/octet-stream' },
  }), 200, 'doc');
  OK(await api(server, 'POST', `/api/v1/rooms/${own}/docs/notes/versions`, { token: admin.token, body: { label: 'v1' } }), 201, 'version');
  return { own, spare };
}

async function jsonFuzzer(r, admin, { own, spare }) {
  const users = [...spare, 'nope', people.stranger.user.id, ''];
  // Each target with the read that a refused body must leave unchanged.
  const state = `/api/v1/rooms/${own}/state`;
  const targets = [
    ['PATCH', `/api/v1/rooms/${own}`, { name: 'Renamed', topic: 't' }, `/api/v1/rooms/${own}`],
    ['POST', `/api/v1/rooms/${own}/members`, { user_id: spare[0], role: 'viewer' }, `/api/v1/rooms/${own}/members?limit=200`],
    ['PATCH', () => `/api/v1/rooms/${own}/members/${encodeURIComponent(r.pick(users))}`, { role: 'viewer' }, `/api/v1/rooms/${own}/members?limit=200`],
    ['POST', `/api/v1/rooms/${own}/messages`, { body: 'hi', reply_to: 1, attachments: [] }, `/api/v1/rooms/${own}/messages?limit=1`],
    ['POST', () => `/api/v1/rooms/${own}/actions/${r.pick(['propose_activity', 'update_activity', 'vote_activity', 'assign', 'set_rule', 'archive_room', 'remove_member', 'nope'])}`, { title: 'T', id: 'a1', user_ids: [spare[1]] }, state],
    ['POST', `/api/v1/rooms/${own}/rules`, { name: 'n', trigger: 'message_posted', condition: { '==': [1, 2] }, effect: { action: 'propose_activity', args: { title: 'x' } } }, state],
    ['PATCH', `/api/v1/rooms/${own}/rules/r1`, { name: 'n', trigger: 'file_added', effect: { action: 'send_message', args: { body: 'x' } } }, state],
    ['POST', `/api/v1/rooms/${own}/docs/notes/versions`, { label: 'v' }, `/api/v1/rooms/${own}/docs/notes/versions`],
    ['POST', `/api/v1/rooms/${own}/docs/notes/versions/1/restore`, { texts: ['t'] }, `/api/v1/rooms/${own}/docs/notes?format=text&name=t`],
    ['POST', `/api/v1/rooms/${own}/invites`, { role: 'member', max_uses: 5, expires_in: 3600 }, null],
    ['POST', '/api/v1/rooms', { name: 'R', kind: 'group', topic: '', members: [] }, null],
    ['POST', '/api/v1/ai/batch', { file_ids: ['nope'] }, null],
    ['PATCH', '/api/v1/me', { display_name: 'Admin' }, '/api/v1/me'],
    ['POST', '/api/v1/auth/login', { email: 'nobody@example.org', password: 'wrong password' }, null],
    ['POST', '/api/v1/auth/refresh', { refresh_token: 'x' }, null],
  ];
  const read = async (path) => JSON.stringify((await http(server, 'GET', path, { token: admin.token })).body);
  while (running()) {
    tally.json_bodies += 1;
    const [method, target, body, view] = r.pick(targets);
    const path = typeof target === 'function' ? target() : target;
    const mutated = r.chance(0.2) ? body : r.mutate(r.chance(0.5) ? r.mutate(body) : body);
    const raw = r.chance(0.1) ? r.pick(['{', '[]', 'null', '{"a":1,"a":2}', `${'{"a":'.repeat(200)}1${'}'.repeat(200)}`, r.bytes(30).toString('latin1')]) : JSON.stringify(mutated ?? null);
    const headers = { 'content-type': r.chance(0.95) ? 'application/json' : r.pick(['text/plain', 'application/jsonx', '']), 'idempotency-key': `j-${tally.json_bodies}` };
    const before = view && (await read(view));
    const res = await http(server, method, path, { token: admin.token, raw, headers });
    if (view && res.status >= 400 && (await read(view)) !== before) note(`a refused body changed ${view}: ${method} ${path} ${raw} → ${res.status}`);
  }
}

test(`live fuzzing for ${SECONDS} s (seed ${SEED}): no 5xx, no panic, the second client untouched, nothing refused stored`, async (t) => {
  console.log(`fuzz: FUZZ_SEED=${SEED} FUZZ_SECONDS=${SECONDS}`);
  const steady = await register(server, 'Steady');
  const fuzzer = await register(server, 'Fuzzer');
  for (const u of [steady, fuzzer]) {
    OK(await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: people.owner.token, body: { user_id: u.user.id, role: 'member' } }), 201, 'join');
  }
  const data = randomBytes(1000);
  const bin = await upload(server, fuzzer.token, room, { name: 'r.bin', data });
  const own = await jsonRoom(people.admin, people.owner);
  deadline = Date.now() + SECONDS * 1000;
  const [second, acked] = await Promise.all([
    steadyClient(steady, t),
    chatFuzzer(rng(SEED), fuzzer),
    docFuzzer(rng(SEED + 1), fuzzer, 'fuzzdoc'),
    docFuzzer(rng(SEED + 2), people.viewer, 'steady'),
    tusFuzzer(rng(SEED + 3), fuzzer),
    tusFuzzer(rng(SEED + 4), fuzzer),
    rangeFuzzer(rng(SEED + 5), fuzzer, bin, data),
    rangeFuzzer(rng(SEED + 6), fuzzer, bin, data),
    jsonFuzzer(rng(SEED + 7), people.admin, own),
  ]);
  // Every verdict is collected, then the figures printed (docs/reliability.md
  // quotes them), then all that went wrong is reported at once.
  const wrong = [];
  const check = (ok, what) => { if (!ok) wrong.push(what); };
  const panics = (server.logs.match(/panicked at|RuntimeError/g) ?? []).length;
  check(panics === 0, `${panics} panics in the Worker's log (TESSERA_WORKER_LOGS=<dir> keeps it)`);

  // The second client: every message acknowledged once and stored in order,
  // every edit in the document, never disconnected.
  const history = [];
  for (let after = 0; ;) {
    const page = (await api(server, 'GET', `/api/v1/rooms/${room}/messages?after=${after}&limit=200`, { token: people.owner.token })).body.messages;
    history.push(...page);
    if (page.length < 200) break;
    after = page.at(-1).id;
  }
  const mine = history.filter((m) => m.author === steady.user.id).map((m) => m.body);
  const sentBodies = Array.from({ length: second.sent }, (_, i) => `steady ${i}`);
  const lost = sentBodies.filter((b) => !mine.includes(b));
  check(JSON.stringify(mine) === JSON.stringify(sentBodies), `the second client's ${second.sent} acknowledged messages are stored once, in order (${lost.length} missing)`);
  check(second.chat.frames.every((f) => f.type !== 'error'), 'the second client got no error frame');
  check(second.chat.closed === null, `its socket stayed open (closed: ${JSON.stringify(second.chat.closed)})`);
  check(second.disconnects === 0, `its document socket stayed open (${second.disconnects} disconnects)`);
  const expectedText = Array.from({ length: second.sent }, (_, i) => `[${i}]`).join('');
  const stored = async () => (await fetch(`${server.url}/api/v1/rooms/${room}/docs/steady?format=text&name=t`, {
    headers: { authorization: `Bearer ${people.owner.token}`, 'cf-connecting-ip': randomIp() },
  })).text();
  const settled = Date.now() + 10_000;
  while ((await stored()) !== expectedText && Date.now() < settled) await sleep(100);
  const text = await stored();
  const editsLost = Array.from({ length: second.sent }, (_, i) => `[${i}]`).filter((e) => !text.includes(e)).length;
  check(text === expectedText, `the stored document is exactly the second client's edits, nothing of the viewer's (${editsLost} of ${second.sent} edits missing)`);

  // Nothing refused was stored: the fuzzer's stored messages are ones it was acknowledged for.
  const unacked = history.filter((m) => m.author === fuzzer.user.id && !acked.has(m.client_msg_id));
  check(unacked.length === 0, `every stored fuzz message was acknowledged (${unacked.length} were not: ${JSON.stringify(unacked.slice(0, 3))})`);
  const seeded = history.filter((m) => [...ids.viewerMessages, ids.message].includes(m.id));
  check(seeded.every((m) => !m.deleted && !m.edited_at), 'a member cannot edit or delete others’ messages');
  check(tally.responses_5xx === 0, `${tally.responses_5xx} answers with a 5xx`);

  const summary = { seed: SEED, seconds: SECONDS, ...tally, panics, messages_lost: lost.length, edits_lost: editsLost, problems: problems.length };
  console.log(`fuzz summary: ${JSON.stringify(summary)}`);
  for (const p of problems) console.log(`  ${p}`);
  assert.deepEqual([...wrong, ...problems], [], `FUZZ_SEED=${SEED}`);
});
