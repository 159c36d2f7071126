// Search against workerd: a room's own index (current the moment a message
// is acknowledged), the cross-room index in D1 (fed through the rooms'
// outboxes, filtered by memberships at query time), documents, analysed
// files, escaping, hostile queries, and semantic search through a scripted
// OpenAI-compatible embeddings server this file starts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { api, freePort, randomIp, register, startServer, until } from './harness.mjs';
import { join } from './ws.mjs';

/** The delay the README states for the cross-room index. */
const CROSS_ROOM_DELAY_MS = 5_000;

// ---- the scripted embedding model -----------------------------------------
// Each text becomes a vector over a few concepts (synonyms share one), so a
// paraphrase with no word in common lands near its original; other words
// are hashed into the remaining dimensions with a small weight.
const CONCEPTS = [
  ['visualize', 'visualise', 'visualization', 'chart', 'charts', 'plot', 'plots', 'graph', 'graphs', 'd3'],
  ['data', 'dataset', 'datasets', 'numbers', 'figures'],
  ['project', 'projects', 'repository', 'repo'],
  ['lunch', 'pizza', 'food', 'sandwich'],
  ['deploy', 'release', 'ship', 'launch'],
];
const DIMS = 48;
function embedText(text) {
  const v = new Array(DIMS).fill(0);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    const c = CONCEPTS.findIndex((words) => words.includes(word));
    if (c >= 0) v[c] += 1;
    else {
      let h = 0;
      for (const ch of word) h = (h * 31 + ch.codePointAt(0)) % 1_000_003;
      v[CONCEPTS.length + (h % (DIMS - CONCEPTS.length))] += 0.2;
    }
  }
  if (v.every((x) => x === 0)) v[DIMS - 1] = 1;
  return v;
}
/** A local HTTP server answering each JSON request with `handle(path, body, headers)` → [status, body]; its port. */
async function scripted(handle) {
  const port = await freePort();
  const srv = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      const [status, body] = handle(req.url, JSON.parse(raw), req.headers);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  after(() => srv.close());
  return port;
}

const embedder = { requests: [] };
const embedPort = await scripted((path, body, headers) => {
  embedder.requests.push({ path, auth: headers.authorization, body });
  if (path !== '/v1/embeddings' || body.model !== 'test-embed' || !Array.isArray(body.input)) {
    return [400, { error: { message: 'unexpected request' } }];
  }
  // Answered out of order: the client must sort by index.
  const data = body.input.map((t, index) => ({ object: 'embedding', index, embedding: embedText(t) })).reverse();
  // "expensive" texts report a large usage (the budget test).
  const tokens = body.input.some((t) => t.includes('expensive')) ? 10_000 : body.input.length * 5;
  return [200, { object: 'list', data, usage: { prompt_tokens: tokens, total_tokens: tokens } }];
});
const embeddings = {
  AI_PROVIDERS: JSON.stringify([{ kind: 'openai', base_url: `http://127.0.0.1:${embedPort}/v1`, model: 'unused-chat',
    embedding_model: 'test-embed', key: 'EMBED_KEY', timeout_ms: 2000 }]),
  EMBED_KEY: 'sk-embed',
};

// ---- the Vectorize test double ---------------------------------------------
// wrangler dev simulates no Vectorize index, so tests/vectorize/worker.mjs
// stands in for one as the service VECTORIZE and forwards every call here,
// where the index is kept (cosine, the `room` metadata filter, Vectorize's
// limits) and every call is seen.
const vectorIndex = { vectors: new Map(), queries: [], deleted: [], failing: false };
const cosine = (a, b) => {
  let dot = 0; let na = 0; let nb = 0;
  for (let i = 0; i < a.length; i += 1) { dot += a[i] * b[i]; na += a[i] ** 2; nb += b[i] ** 2; }
  return dot / Math.sqrt(na * nb || 1);
};
const indexPort = await scripted((path, args) => {
  if (vectorIndex.failing) return [500, 'VECTOR_QUERY_ERROR (code = 40006): the index is down'];
  if (path === '/upsert') {
    for (const v of args.vectors) {
      if (v.values.length !== DIMS || typeof v.metadata?.room !== 'string' || v.id.length > 64) return [400, `bad vector ${v.id}`];
      vectorIndex.vectors.set(v.id, v);
    }
    return [200, { mutationId: String(vectorIndex.vectors.size) }];
  }
  if (path === '/deleteByIds') {
    for (const id of args.ids) vectorIndex.vectors.delete(id);
    vectorIndex.deleted.push(...args.ids);
    return [200, { mutationId: 'd' }];
  }
  const { vector, options } = args;
  vectorIndex.queries.push(options);
  const rooms = options.filter?.room?.$in;
  if (vector.length !== DIMS || !Array.isArray(rooms) || options.topK > 100 || JSON.stringify(options.filter).length > 2048) {
    return [400, 'VECTOR_QUERY_ERROR: a query Vectorize refuses'];
  }
  const matches = [...vectorIndex.vectors.values()]
    .filter((v) => rooms.includes(v.metadata.room))
    .map((v) => ({ id: v.id, score: cosine(vector, v.values) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, options.topK);
  return [200, { count: matches.length, matches }];
});
const indexConfig = joinPath(mkdtempSync(joinPath(tmpdir(), 'tessera-vectorize-')), 'wrangler.toml');
writeFileSync(indexConfig, [
  'name = "tessera-test-vectorize"',
  `main = ${JSON.stringify(fileURLToPath(new URL('./vectorize/worker.mjs', import.meta.url)))}`,
  'compatibility_date = "2025-09-01"',
  '[vars]',
  `INDEX_URL = "http://127.0.0.1:${indexPort}"`,
].join('\n'));

const server = await startServer();
const semanticServer = await startServer({ vars: { ...embeddings, AI_ROOM_DAILY_TOKENS: '5000' } });
const vectorizeServer = await startServer({ vars: embeddings, services: { VECTORIZE: indexConfig } });

// ---- helpers ------------------------------------------------------------
async function roomWith(srv, owner, ...people) {
  const r = await api(srv, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Search room', kind: 'group' } });
  assert.equal(r.status, 201);
  for (const [u, role] of people) {
    const added = await api(srv, 'POST', `/api/v1/rooms/${r.body.id}/members`, { token: owner.token, body: { user_id: u.user.id, role } });
    assert.equal(added.status, 201);
  }
  return r.body.id;
}

let keys = 0;
async function post(srv, room, who, body) {
  const r = await api(srv, 'POST', `/api/v1/rooms/${room}/messages`, { token: who.token, body: { body }, headers: { 'idempotency-key': `s${++keys}` } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

function search(srv, who, params) {
  const q = new URLSearchParams(params);
  return api(srv, 'GET', `/api/v1/search?${q}`, { token: who.token });
}

const ids = (r) => r.body.results.map((h) => `${h.kind}:${h.id}`);

// ---- tests --------------------------------------------------------------
test('a sent message is found by the next request; edits by their new words only; deletes never', async () => {
  const owner = await register(server, 'Owner');
  const room = await roomWith(server, owner);
  const m = await post(server, room, owner, 'The quarterly budget review is on Thursday');
  const found = await search(server, owner, { q: 'budget review', room });
  assert.equal(found.status, 200);
  assert.deepEqual(ids(found), [`message:${m.id}`]);
  const hit = found.body.results[0];
  assert.equal(hit.room_id, room);
  assert.equal(hit.room_name, 'Search room');
  assert.deepEqual(hit.link, { seq: m.seq });
  assert.equal(hit.snippet.html, 'The quarterly <mark>budget</mark> <mark>review</mark> is on Thursday');
  assert.equal(found.body.scope, 'room');

  // Edits over the socket (the path people use): the old words are gone.
  const sock = await join(server, room, owner.token);
  sock.send({ type: 'edit', id: m.id, body: 'The yearly forecast meeting is on Friday' });
  await sock.next((f) => f.type === 'message_edited');
  assert.deepEqual(ids(await search(server, owner, { q: 'budget', room })), []);
  assert.deepEqual(ids(await search(server, owner, { q: 'forecast', room })), [`message:${m.id}`]);
  // Across rooms too, before the delete: so the delete below has a row to remove there.
  await until('the edit in the cross-room index', async () => ids(await search(server, owner, { q: 'forecast' })).includes(`message:${m.id}`));
  assert.deepEqual(ids(await search(server, owner, { q: 'budget' })), []);

  // Deleted: never found again, in the room or across rooms.
  sock.send({ type: 'delete', id: m.id });
  await sock.next((f) => f.type === 'message_deleted');
  sock.close();
  assert.deepEqual(ids(await search(server, owner, { q: 'forecast', room })), []);
  const marker = await post(server, room, owner, 'marker after the delete zebra');
  await until('the cross-room index to catch up', async () => ids(await search(server, owner, { q: 'zebra' })).includes(`message:${marker.id}`));
  assert.deepEqual(ids(await search(server, owner, { q: 'forecast' })), []);
});

test('cross-room results appear within the stated delay, ranked, with prefixes, phrases, exclusions, accents and CJK', async () => {
  const ann = await register(server, 'Ann');
  const a = await roomWith(server, ann);
  const b = await roomWith(server, ann);
  const sent = Date.now();
  const m1 = await post(server, a, ann, 'Deploy the café release on Friday');
  const m2 = await post(server, b, ann, 'Deployment checklist: 東京の天気は晴れ');
  const first = await until('both rooms in the cross-room index', async () => {
    const r = await search(server, ann, { q: 'deploy' });
    return r.body.results.length === 2 ? r : null;
  }, CROSS_ROOM_DELAY_MS);
  const delay = Date.now() - sent;
  assert.ok(delay < CROSS_ROOM_DELAY_MS, `cross-room delay ${delay} ms`);
  assert.equal(first.body.scope, 'rooms');
  assert.deepEqual(new Set(first.body.results.map((h) => h.room_id)), new Set([a, b]));
  assert.deepEqual(ids(await search(server, ann, { q: 'deploy ' })), [`message:${m1.id}`], 'a finished word is not a prefix');
  assert.deepEqual(ids(await search(server, ann, { q: 'deploy* -friday' })), [`message:${m2.id}`]);
  assert.deepEqual(ids(await search(server, ann, { q: '"release on friday"' })), [`message:${m1.id}`]);
  assert.deepEqual(ids(await search(server, ann, { q: '"friday release"' })), []);
  assert.deepEqual(ids(await search(server, ann, { q: 'CAFE ' })), [`message:${m1.id}`]);
  assert.deepEqual(ids(await search(server, ann, { q: '天気' })), [`message:${m2.id}`]);
  const cjk = await search(server, ann, { q: '天気' });
  assert.equal(cjk.body.results[0].snippet.html, 'Deployment checklist: 東京の<mark>天気</mark>は晴れ');
  // Filters and paging.
  assert.deepEqual(ids(await search(server, ann, { q: 'deploy', kind: 'file' })), []);
  assert.equal((await search(server, ann, { q: 'deploy', from: ann.user.id })).body.results.length, 2);
  assert.equal((await search(server, ann, { q: 'deploy', after: String(Date.now() + 60_000) })).body.results.length, 0);
  const page1 = await search(server, ann, { q: 'deploy', limit: '1' });
  assert.equal(page1.body.next_cursor, '1');
  const page2 = await search(server, ann, { q: 'deploy', limit: '1', cursor: page1.body.next_cursor });
  assert.equal(page2.body.next_cursor, null);
  const where = (r) => `${r.body.results[0].room_id}/${r.body.results[0].id}`;
  assert.notEqual(where(page1), where(page2));
});

test('a viewer finds what they can read; a non-member nothing; a member removed a moment ago stops finding it', async () => {
  const owner = await register(server, 'Owner');
  const viewer = await register(server, 'Viewer');
  const member = await register(server, 'Member');
  const stranger = await register(server, 'Stranger');
  const room = await roomWith(server, owner, [viewer, 'viewer'], [member, 'member']);
  const m = await post(server, room, owner, 'Confidential merger codename bluebird');
  for (const who of [viewer, member]) {
    assert.deepEqual(ids(await search(server, who, { q: 'bluebird', room })), [`message:${m.id}`]);
  }
  await until('the cross-room index', async () => ids(await search(server, member, { q: 'bluebird' })).length === 1);
  assert.deepEqual(ids(await search(server, viewer, { q: 'bluebird' })), [`message:${m.id}`]);
  // A stranger: 404 for the room (as for a room that does not exist), nothing across rooms.
  const probe = await search(server, stranger, { q: 'bluebird', room });
  assert.equal(probe.status, 404);
  assert.equal(probe.body.error.code, 'not_found');
  assert.deepEqual(ids(await search(server, stranger, { q: 'bluebird' })), []);
  // Removed: at once, both ways.
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}/members/${member.user.id}`, { token: owner.token })).status, 204);
  assert.equal((await search(server, member, { q: 'bluebird', room })).status, 404);
  assert.deepEqual(ids(await search(server, member, { q: 'bluebird' })), []);
  // A deleted room's rows leave the cross-room index.
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}`, { token: owner.token })).status, 204);
  assert.deepEqual(ids(await search(server, owner, { q: 'bluebird' })), []);
});

test("a document's text is found after an edit, in the room at once and across rooms once the edits settle", async () => {
  const owner = await register(server, 'Owner');
  const room = await roomWith(server, owner);
  const doc = new Y.Doc();
  const write = async () => {
    const r = await fetch(`${server.url}/api/v1/rooms/${room}/docs/roadmap/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
      body: Y.encodeStateAsUpdate(doc),
    });
    assert.equal(r.status, 200);
  };
  doc.getText('t').insert(0, 'Roadmap: migrate billing to the new ledger');
  await write();
  assert.deepEqual(ids(await search(server, owner, { q: 'ledger', room })), ['document:roadmap']);
  doc.getText('t').delete(0, doc.getText('t').length);
  doc.getText('t').insert(0, 'Roadmap: rewrite onboarding emails');
  await write();
  assert.deepEqual(ids(await search(server, owner, { q: 'ledger', room })), []);
  const hit = (await search(server, owner, { q: 'onboarding', room })).body.results[0];
  assert.deepEqual(hit.link, { doc: 'roadmap' });
  assert.equal(hit.kind, 'document');
  await until('the settled document in the cross-room index', async () => ids(await search(server, owner, { q: 'onboarding' })).length === 1, 15_000);
  assert.deepEqual(ids(await search(server, owner, { q: 'ledger' })), []);
  // A deleted document is forgotten.
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}/docs/roadmap`, { token: owner.token })).status, 204);
  assert.deepEqual(ids(await search(server, owner, { q: 'onboarding', room })), []);
});

test("files are found by name at once and by their text once analysed; activities by title", async () => {
  const owner = await register(server, 'Owner');
  const room = await roomWith(server, owner);
  const bytes = Buffer.from('Minutes: the committee approved the greenhouse extension.\n');
  const meta = `filename ${Buffer.from('minutes-march.txt').toString('base64')},room_id ${Buffer.from(room).toString('base64')}`;
  const up = await api(server, 'POST', '/api/v1/uploads', {
    token: owner.token, raw: bytes,
    headers: { 'tus-resumable': '1.0.0', 'upload-length': String(bytes.length), 'upload-metadata': meta, 'content-type': 'application/offset+octet-stream' },
  });
  assert.equal(up.status, 201);
  const fileId = up.headers.get('location').split('/').pop();
  await until('the file in search', async () => ids(await search(server, owner, { q: 'minutes', room })).includes(`file:${fileId}`));
  assert.deepEqual(ids(await search(server, owner, { q: 'greenhouse', room })), []);
  const job = await api(server, 'POST', `/api/v1/files/${fileId}/analyze`, { token: owner.token });
  assert.equal(job.status, 202);
  await until("the analysed file's text", async () => ids(await search(server, owner, { q: 'greenhouse', room })).includes(`file:${fileId}`));
  const fileHit = (await search(server, owner, { q: 'greenhouse', room, kind: 'file' })).body.results[0];
  assert.deepEqual(fileHit.link, { file: fileId });
  assert.equal(fileHit.title.html, 'minutes-march.txt');

  const act = await api(server, 'POST', `/api/v1/rooms/${room}/actions/propose_activity`, { token: owner.token, body: { title: 'Plan the harvest festival', description: 'stalls and music' } });
  assert.ok(act.status < 300, JSON.stringify(act.body));
  const a = (await search(server, owner, { q: 'harvest festival', room, kind: 'activity' })).body.results;
  assert.equal(a.length, 1);
  assert.ok(a[0].link.activity);
  assert.equal(a[0].snippet.parts.map((p) => p.text).join(''), 'stalls and music\nproposed');
});

test('snippets escape HTML in the content; FTS syntax cannot cause a 500 or match across rooms; bad queries get 400', async () => {
  const owner = await register(server, 'Owner');
  const other = await register(server, 'Other');
  const room = await roomWith(server, owner);
  const theirs = await roomWith(server, other);
  await post(server, theirs, other, 'secret payroll numbers NEAR body title');
  const m = await post(server, room, owner, '<img src=x onerror=alert(1)> payroll & "quotes"');
  const hit = (await search(server, owner, { q: 'payroll', room })).body.results[0];
  assert.equal(hit.snippet.html, '&lt;img src=x onerror=alert(1)&gt; <mark>payroll</mark> &amp; &quot;quotes&quot;');
  assert.deepEqual(hit.snippet.parts.map((p) => p.mark), [false, true, false]);
  await until('both rooms indexed', async () => ids(await search(server, other, { q: 'payroll' })).length === 1);
  await until('both rooms indexed', async () => ids(await search(server, owner, { q: 'payroll' })).length === 1);

  const hostile = [
    'payroll OR secret', 'secret NOT x', 'NEAR(secret payroll)', 'body:secret', '{body title}: secret',
    '^secret', 'secret*', '* OR *', '"', '""', '"payroll', 'payroll"', '(', ')', '\\', "'; DROP TABLE search_items; --",
    'rowid:1', 'search_text:secret', '- payroll', '--secret', 'secret AND', 'AND', '+', '"" OR ""', '\u0000secret',
    '\uE000secret\uE001', 'x'.repeat(300), 'a '.repeat(40), '東京*', '🙂', 'café"',
  ];
  for (const q of hostile) {
    for (const params of [{ q }, { q, room }, { q, room: theirs }]) {
      const r = await search(server, owner, params);
      assert.ok([200, 400, 404].includes(r.status), `${JSON.stringify(params)} → ${r.status} ${JSON.stringify(r.body)}`);
      if (r.status === 200) {
        assert.ok(r.body.results.every((h) => h.room_id === room), `${q} leaked ${JSON.stringify(r.body.results)}`);
      } else if (r.status === 400) {
        assert.equal(r.body.error.code, 'invalid_input');
        assert.ok(r.body.error.message.length > 0);
      } else {
        assert.equal(params.room, theirs);
      }
    }
  }
  const unbalanced = await search(server, owner, { q: 'say "hello' });
  assert.equal(unbalanced.status, 400);
  assert.match(unbalanced.body.error.message, /unbalanced quote/);
  assert.equal((await search(server, owner, { q: 'x'.repeat(257) })).status, 400);
  assert.equal((await search(server, owner, {})).status, 400);
  assert.equal((await search(server, owner, { q: 'a', kind: 'spreadsheet' })).status, 400);
  assert.equal((await search(server, owner, { q: 'a', limit: '1000' })).status, 400);
  assert.equal((await api(server, 'GET', '/api/v1/search?q=payroll')).status, 401);
  assert.ok(m.id);
});

test('without an embedding provider semantic search says it is unavailable and full text still works', async () => {
  const owner = await register(server, 'Owner');
  const room = await roomWith(server, owner);
  await post(server, room, owner, 'We plot charts of our datasets');
  const semantic = await search(server, owner, { q: 'visualize data', room, mode: 'semantic' });
  assert.equal(semantic.status, 409);
  assert.equal(semantic.body.error.code, 'semantic_unavailable');
  assert.match(semantic.body.error.message, /no embedding provider/);
  const hybrid = await search(server, owner, { q: 'charts', room, mode: 'hybrid' });
  assert.equal(hybrid.status, 200);
  assert.equal(hybrid.body.semantic.available, false);
  assert.equal(hybrid.body.results.length, 1);
  const text = await search(server, owner, { q: 'charts', room });
  assert.equal(text.body.semantic.available, false);
});

test('semantic search through a scripted embeddings server ranks a paraphrase above unrelated text, and counts against the AI budget', async () => {
  const srv = semanticServer;
  const owner = await register(srv, 'Owner');
  const room = await roomWith(srv, owner);
  const paraphrase = await post(srv, room, owner, 'We plot charts of our datasets with d3');
  const unrelated = await post(srv, room, owner, 'Pizza for lunch on Friday');
  const project = await post(srv, room, owner, 'The repository moves to the new project board');
  await until('the messages embedded', async () => {
    const embedded = embedder.requests.flatMap((r) => r.body.input);
    return embedded.some((t) => t.includes('Pizza')) && embedded.some((t) => t.includes('datasets'));
  });
  assert.ok(embedder.requests.every((r) => r.auth === 'Bearer sk-embed' && r.path === '/v1/embeddings'));
  // Full text cannot find it: no word in common.
  assert.deepEqual(ids(await search(srv, owner, { q: 'visualize data', room })), []);
  const found = await until('semantic hits', async () => {
    const r = await search(srv, owner, { q: 'projects that visualize data', room, mode: 'semantic' });
    return r.status === 200 && r.body.results.length === 3 ? r : null;
  });
  const order = ids(found);
  assert.equal(order[0], `message:${paraphrase.id}`, JSON.stringify(found.body.results.map((h) => [h.snippet.html, h.score])));
  assert.ok(order.indexOf(`message:${paraphrase.id}`) < order.indexOf(`message:${unrelated.id}`));
  assert.ok(found.body.results.every((h) => h.found === 'semantic'));
  assert.equal(found.body.semantic.available, true);
  // Hybrid: an item in both lists rises; text hits keep their marks.
  const hybrid = await search(srv, owner, { q: 'charts', room, mode: 'hybrid' });
  assert.equal(hybrid.body.results[0].id, String(paraphrase.id));
  assert.equal(hybrid.body.results[0].found, 'both');
  assert.match(hybrid.body.results[0].snippet.html, /<mark>charts<\/mark>/);
  // Across rooms, semantic too.
  const across = await search(srv, owner, { q: 'visualize data', mode: 'semantic' });
  assert.equal(across.body.results[0].id, String(paraphrase.id));
  assert.equal(across.body.results[0].room_name, 'Search room');
  assert.ok(project.id);
});

test('with a Vectorize index bound, it proposes the candidates across the caller\'s rooms only, learns of deletes, and its outage is told', async () => {
  const srv = vectorizeServer;
  const owner = await register(srv, 'Owner');
  const stranger = await register(srv, 'Stranger');
  const room = await roomWith(srv, owner);
  const elsewhere = await roomWith(srv, stranger);
  const paraphrase = await post(srv, room, owner, 'We plot charts of our datasets with d3');
  const unrelated = await post(srv, room, owner, 'Pizza for lunch on Friday');
  await post(srv, elsewhere, stranger, 'Their charts of datasets, plotted');
  const inIndex = (r) => [...vectorIndex.vectors.keys()].filter((id) => id.startsWith(`${r}:`));
  await until('every message upserted to the index', () => inIndex(room).length === 2 && inIndex(elsewhere).length === 1);
  assert.ok([...vectorIndex.vectors.values()].every((v) => v.id === `${v.metadata.room}:${v.id.split(':')[1]}`));

  const found = await search(srv, owner, { q: 'projects that visualize data', room, mode: 'semantic' });
  assert.equal(found.status, 200, JSON.stringify(found.body));
  assert.equal(found.body.semantic.index, 'vectorize');
  assert.deepEqual(ids(found), [`message:${paraphrase.id}`, `message:${unrelated.id}`]);
  assert.deepEqual(vectorIndex.queries.at(-1).filter, { room: { $in: [room] } });

  // Across rooms: one query, filtered on the caller's rooms; the stranger's
  // near match is not proposed, so it cannot be found.
  const across = await search(srv, owner, { q: 'visualize data', mode: 'semantic' });
  assert.deepEqual(vectorIndex.queries.at(-1).filter, { room: { $in: [room] } });
  assert.deepEqual(across.body.results.map((h) => h.room_id), [room, room]);

  // A deleted message is not found, and the index is told to forget it.
  const sock = await join(srv, room, owner.token);
  sock.send({ type: 'delete', id: unrelated.id });
  await sock.next((f) => f.type === 'message_deleted');
  sock.close();
  const beforeDelete = inIndex(room);
  assert.deepEqual(ids(await search(srv, owner, { q: 'pizza lunch', room, mode: 'semantic' })), [`message:${paraphrase.id}`]);
  await until('the deleted message\'s vector forgotten', () => vectorIndex.deleted.some((id) => beforeDelete.includes(id)));
  assert.equal(inIndex(room).length, 1);

  // Only what the index proposes is scored: without the room's vectors
  // there, nothing is found, though the room still holds them.
  for (const id of inIndex(room)) vectorIndex.vectors.delete(id);
  assert.deepEqual(ids(await search(srv, owner, { q: 'visualize data', room, mode: 'semantic' })), []);

  // The index down: semantic search says so; hybrid answers with full text.
  vectorIndex.failing = true;
  try {
    const down = await search(srv, owner, { q: 'charts', room, mode: 'semantic' });
    assert.equal(down.status, 503);
    assert.equal(down.body.error.code, 'unavailable');
    assert.match(down.body.error.message, /vector index failed/);
    const hybrid = await search(srv, owner, { q: 'charts', room, mode: 'hybrid' });
    assert.equal(hybrid.status, 200);
    assert.deepEqual(ids(hybrid), [`message:${paraphrase.id}`]);
  } finally {
    vectorIndex.failing = false;
  }
});

test("embedding calls count against the room's daily AI budget", async () => {
  const srv = semanticServer;
  const owner = await register(srv, 'Owner');
  const room = await roomWith(srv, owner);
  await post(srv, room, owner, 'something to find');
  const first = await search(srv, owner, { q: 'an expensive question', room, mode: 'semantic' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  // That query was charged 10,000 tokens against a budget of 5,000.
  const refused = await search(srv, owner, { q: 'another question', room, mode: 'semantic' });
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, 'ai_budget_exhausted');
  // Hybrid falls back to full text and says why.
  const hybrid = await search(srv, owner, { q: 'something', room, mode: 'hybrid' });
  assert.equal(hybrid.status, 200);
  assert.equal(hybrid.body.semantic.available, false);
  assert.match(hybrid.body.semantic.reason, /budget/);
  assert.equal(hybrid.body.results.length, 1);
});

