// Documents under hostile or unlucky input (issue #14): role changes on open
// sockets, non-ASCII restores, deeply nested and oversized updates, viewers
// that amplify, and the room-wide bounds. Real yjs + y-websocket clients, and
// raw sockets for what no well-behaved client sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, startServer, randomIp } from './harness.mjs';
import {
  awarenessMessage, done, open, rawDocSocket, roomWith, sleep, synced, syncStep1, textOf, until,
  updateMessage, varString, varUint, within, Y,
} from './ydoc.mjs';
import { roomRows } from './storage.mjs';

// A low message rate, so that a flood exceeds it however slowly a loaded
// machine processes frames.
const server = await startServer({ vars: { DOC_COUNT_LIMIT: '4', DOC_VERSION_LIMIT: '3', DOC_RATE_PER_SEC: '50' } });

const patchRole = (room, owner, user, role) => api(server, 'PATCH', `/api/v1/rooms/${room}/members/${user.user.id}`, { token: owner.token, body: { role } });

/** Resolves with the code of the provider's next socket close. */
const nextClose = (provider) => new Promise((resolve) => {
  const on = (event) => { provider.off('connection-close', on); resolve(event?.code); };
  provider.on('connection-close', on);
});

/** Counts the socket closes a provider sees (a reset room object drops every socket). */
function closeCounter(provider) {
  const counter = { closes: 0 };
  provider.on('connection-close', () => { counter.closes += 1; });
  return counter;
}

const postUpdate = (room, doc, token, body) => fetch(`${server.url}/api/v1/rooms/${room}/docs/${doc}/updates`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
  body,
  signal: AbortSignal.timeout(30_000),
});

test('role changes reach open document sockets: demoted stops writing, promoted starts, removed is closed with 4003', async () => {
  const { room, owner, people: [bob, vic] } = await roomWith(server, 'member', 'viewer');
  const a = open(server, room, 'roles', owner.token);
  const b = open(server, room, 'roles', bob.token);
  const v = open(server, room, 'roles', vic.token);
  await Promise.all([a, b, v].map((c) => synced(c.provider)));
  a.text.insert(0, 'owner;');
  await until(() => b.text.toString() === 'owner;' && v.text.toString() === 'owner;', 5000, 'first edit');

  assert.equal((await patchRole(room, owner, bob, 'viewer')).status, 200);
  b.text.insert(b.text.length, 'bob-after-demotion;');
  await sleep(500);
  assert.equal(await textOf(server, room, 'roles', owner.token), 'owner;', 'the demoted member wrote over a socket opened before');
  assert.equal(a.text.toString(), 'owner;');

  // Vic has no dropped edits of its own, so its first edit as a member integrates.
  assert.equal((await patchRole(room, owner, vic, 'member')).status, 200);
  v.text.insert(0, 'vic;');
  await until(() => a.text.toString() === 'vic;owner;', 5000, 'the promoted viewer writes');
  assert.equal(await textOf(server, room, 'roles', owner.token), 'vic;owner;');

  const closed = nextClose(v.provider);
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}/members/${vic.user.id}`, { token: owner.token })).status, 204);
  assert.equal(await closed, 4003);
  v.provider.disconnect();
  v.text.insert(0, 'after-removal;');
  await sleep(300);
  assert.equal(await textOf(server, room, 'roles', owner.token), 'vic;owner;');
  done(a, b, v);
});

test('restoring a version with emoji, CJK and combining marks converges on exactly that text', async () => {
  const { room, owner, people: [bob] } = await roomWith(server, 'member');
  const a = open(server, room, 'unicode', owner.token);
  const b = open(server, room, 'unicode', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  const resets = [closeCounter(a.provider), closeCounter(b.provider)];
  const version = 'Grüße 👋🏽 aus 東京 — cafe\u0301 ✨ 𝄞 und ﷽ Ende';
  a.text.insert(0, version);
  await until(() => b.text.toString() === version, 5000, 'the text reaches b');
  await sleep(100);
  assert.equal((await api(server, 'POST', `/api/v1/rooms/${room}/docs/unicode/versions`, { token: owner.token, body: { label: 'v1' } })).status, 201);
  a.text.insert(a.text.toString().indexOf('東'), '大阪と');
  a.text.delete(0, 6);
  b.text.insert(b.text.length, ' 🎉🎉');
  b.text.insert(b.text.toString().indexOf('𝄞'), 'ñ');
  await until(() => a.text.toString() === b.text.toString() && a.text.toString() !== version, 5000, 'edits converge');
  const restore = await api(server, 'POST', `/api/v1/rooms/${room}/docs/unicode/versions/1/restore`, { token: owner.token, body: { texts: ['t'] } });
  assert.equal(restore.status, 200, JSON.stringify(restore.body));
  await until(() => a.text.toString() === version && b.text.toString() === version, 5000, 'both clients hold the version');
  assert.equal(await textOf(server, room, 'unicode', owner.token), version);
  a.text.insert(0, '→ ');
  await until(() => b.text.toString() === `→ ${version}`, 5000, 'editing goes on');
  assert.deepEqual(resets.map((r) => r.closes), [0, 0], 'no socket was dropped');
  done(a, b);
});

/** A Yjs v1 update whose one item holds `depth` arrays nested in each other. */
function nestedAnyUpdate(depth, root = 'nest', client = 424242) {
  const head = [...varUint(1), ...varUint(1), ...varUint(client), ...varUint(0), 8, ...varUint(1), ...varString(root), ...varUint(1)];
  const out = new Uint8Array(head.length + depth * 2 + 2);
  out.set(head);
  for (let i = 0; i < depth; i += 1) out.set([117, 1], head.length + i * 2);
  out[head.length + depth * 2] = 126; // null, the innermost value
  out[head.length + depth * 2 + 1] = 0; // an empty delete set
  return out;
}

test('an update nested a million levels deep is refused; the room keeps serving its other sockets', async () => {
  // The hand-made encoding is a real update: Yjs reads a shallow one.
  const probe = new Y.Doc();
  Y.applyUpdate(probe, nestedAnyUpdate(3));
  assert.deepEqual(probe.getArray('nest').toJSON(), [[[[null]]]]);

  const { room, owner, people: [bob] } = await roomWith(server, 'member');
  const a = open(server, room, 'nested', owner.token);
  const b = open(server, room, 'nested', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  const resets = [closeCounter(a.provider), closeCounter(b.provider)];
  a.text.insert(0, 'safe');
  await until(() => b.text.toString() === 'safe');

  const bomb = nestedAnyUpdate(1_000_000);
  const raw = await rawDocSocket(server, room, 'nested', owner.token);
  raw.ws.send(updateMessage(bomb));
  const { code, reason } = await within(raw.closedPromise, 15_000, 'the sender to be closed');
  assert.equal(code, 1007, reason);
  assert.match(reason, /nest/);

  const rest = await postUpdate(room, 'nested', owner.token, bomb);
  assert.equal(rest.status, 400);
  assert.equal((await rest.json()).error.code, 'invalid_input');

  // Nesting within the bound is stored like any other update.
  assert.equal((await postUpdate(room, 'nested', owner.token, nestedAnyUpdate(20))).status, 200);
  a.text.insert(4, ' still');
  await until(() => b.text.toString() === 'safe still', 5000, 'the others keep editing');
  assert.equal(await textOf(server, room, 'nested', owner.token), 'safe still');
  let shallow = null;
  for (let i = 0; i < 20; i += 1) shallow = [shallow];
  await until(() => JSON.stringify(b.ydoc.getArray('nest').toJSON()) === JSON.stringify([shallow]), 5000, 'the shallow update reaches b');
  assert.deepEqual(resets.map((r) => r.closes), [0, 0], 'no socket was dropped');
  done(a, b);
});

/** A document whose root map `root` holds `n` maps nested in each other. */
function nestedMaps(n) {
  const d = new Y.Doc();
  let map = new Y.Map();
  d.getMap('root').set('k', map);
  for (let i = 1; i < n; i += 1) {
    const inner = new Y.Map();
    map.set('k', inner);
    map = inner;
  }
  return d;
}

test('shared types nested as deep as the type bound allows are deleted without harm; more are refused', async () => {
  const { room, owner } = await roomWith(server);
  const a = open(server, room, 'neighbour', owner.token);
  await synced(a.provider);
  const resets = closeCounter(a.provider);
  a.text.insert(0, 'x');
  const limit = 4_000; // DOC_TYPE_LIMIT's default
  const deep = nestedMaps(limit);
  assert.equal((await postUpdate(room, 'deep', owner.token, Y.encodeStateAsUpdate(deep))).status, 200);
  // Deleting the outermost map deletes and collects the others, recursively in yrs.
  const deleteOutermost = Uint8Array.from([0, 1, ...varUint(deep.clientID), 1, 0, 1]);
  assert.equal((await postUpdate(room, 'deep', owner.token, deleteOutermost)).status, 200);
  const over = await postUpdate(room, 'deeper', owner.token, Y.encodeStateAsUpdate(nestedMaps(limit + 1)));
  assert.equal(over.status, 409);
  assert.equal((await over.json()).error.code, 'too_many_types');
  a.text.insert(1, 'y');
  await sleep(300);
  assert.equal(await textOf(server, room, 'neighbour', owner.token), 'xy');
  assert.equal(resets.closes, 0, 'no socket was dropped');
  done(a);
});

test('an oversized awareness state is refused and never relayed', async () => {
  const { room, owner, people: [viewer] } = await roomWith(server, 'viewer');
  const b = open(server, room, 'aware-big', owner.token);
  await synced(b.provider);
  const raw = await rawDocSocket(server, room, 'aware-big', viewer.token);
  raw.ws.send(awarenessMessage([[777, 1, { user: { name: 'x'.repeat(1024 * 1024) } }]]));
  const { code } = await within(raw.closedPromise, 5000, 'the sender to be closed');
  assert.equal(code, 1009);
  const many = await rawDocSocket(server, room, 'aware-big', viewer.token);
  many.ws.send(awarenessMessage(Array.from({ length: 100 }, (_, i) => [1000 + i, 1, { n: i }])));
  assert.equal((await within(many.closedPromise, 5000, 'the crowd to be closed')).code, 1009);
  await sleep(300);
  assert.ok(!b.provider.awareness.getStates().has(777), 'the big state was relayed');
  assert.ok(!b.provider.awareness.getStates().has(1000), 'the crowd was relayed');
  // An ordinary awareness state still goes through.
  const fine = await rawDocSocket(server, room, 'aware-big', viewer.token);
  fine.ws.send(awarenessMessage([[778, 1, { user: { name: 'Vic', cursor: 3 } }]]));
  await until(() => b.provider.awareness.getStates().get(778)?.user?.name === 'Vic', 5000, 'a normal state is relayed');
  fine.ws.close();
  done(b);
});

test('a socket that floods document messages is closed with 1008; others are unaffected', async () => {
  const { room, owner } = await roomWith(server);
  const a = open(server, room, 'flood', owner.token);
  await synced(a.provider);
  a.text.insert(0, 'calm');
  const src = new Y.Doc();
  const updates = [];
  src.on('update', (u) => updates.push(u));
  for (let i = 0; i < 1000; i += 1) src.getText('other').insert(0, 'x');
  const raw = await rawDocSocket(server, room, 'flood', owner.token);
  for (const u of updates) raw.ws.send(updateMessage(u));
  const { code, reason } = await within(raw.closedPromise, 20_000, 'the flood to be closed');
  assert.equal(code, 1008);
  assert.match(reason, /too many/);
  a.text.insert(4, ' still');
  await sleep(200);
  assert.equal(await textOf(server, room, 'flood', owner.token), 'calm still');
  done(a);
});

test("a viewer's sync requests are answered a bounded number of times", async () => {
  const { room, owner, people: [viewer] } = await roomWith(server, 'viewer');
  const src = new Y.Doc();
  src.getText('t').insert(0, 'y'.repeat(100_000));
  assert.equal((await postUpdate(room, 'amplify', owner.token, Y.encodeStateAsUpdate(src))).status, 200);
  const raw = await rawDocSocket(server, room, 'amplify', viewer.token);
  const ask = syncStep1(new Y.Doc());
  for (let i = 0; i < 100; i += 1) raw.ws.send(ask);
  const { code, reason } = await within(raw.closedPromise, 10_000, 'the viewer to be closed');
  const answers = raw.received.filter((m) => m[0] === 0 && m[1] === 1).length;
  assert.equal(code, 1008, reason);
  assert.match(reason, /sync/);
  assert.ok(answers >= 1 && answers <= 10, `${answers} full-document answers to 100 requests`);
});

test('a room holds a bounded number of documents, a document a bounded number of versions', async () => {
  const { room, owner } = await roomWith(server);
  const update = (s) => { const d = new Y.Doc(); d.getText('t').insert(0, s); return Y.encodeStateAsUpdate(d); };
  for (const name of ['d1', 'd2', 'd3', 'd4']) assert.equal((await postUpdate(room, name, owner.token, update(name))).status, 200);
  const fifth = await postUpdate(room, 'd5', owner.token, update('d5'));
  assert.equal(fifth.status, 409);
  assert.equal((await fifth.json()).error.code, 'too_many_documents');
  const ws = await rawDocSocket(server, room, 'd6', owner.token);
  ws.ws.send(updateMessage(update('d6')));
  assert.equal((await within(ws.closedPromise, 5000, 'the sixth document to be refused')).code, 1008);
  // Existing documents still take edits.
  assert.equal((await postUpdate(room, 'd1', owner.token, update('more'))).status, 200);
  const list = await api(server, 'GET', `/api/v1/rooms/${room}/docs`, { token: owner.token });
  assert.deepEqual(list.body.docs.map((d) => d.name), ['d1', 'd2', 'd3', 'd4']);

  const save = (label) => api(server, 'POST', `/api/v1/rooms/${room}/docs/d1/versions`, { token: owner.token, body: { label } });
  for (const label of ['a', 'b', 'c']) assert.equal((await save(label)).status, 201);
  const fourth = await save('d');
  assert.equal(fourth.status, 409);
  assert.equal(fourth.body.error.code, 'too_many_versions');
  // Deleting a version makes room for the next one.
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}/docs/d1/versions/1`, { token: owner.token })).status, 204);
  assert.equal((await save('d')).status, 201);
  const versions = await api(server, 'GET', `/api/v1/rooms/${room}/docs/d1/versions`, { token: owner.token });
  assert.deepEqual(versions.body.versions.map((v) => v.label), ['b', 'c', 'd']);
});

test('an update larger than a storage row is stored whole, over REST and over the socket', async () => {
  const { room, owner, people: [bob] } = await roomWith(server, 'member');
  const big = 'ü'.repeat(1_600_000); // 3.2 MB of UTF-8 in one update
  const src = new Y.Doc();
  src.getText('t').insert(0, big);
  const rest = await postUpdate(room, 'big-rest', owner.token, Y.encodeStateAsUpdate(src));
  assert.equal(rest.status, 200);
  assert.equal((await textOf(server, room, 'big-rest', owner.token)).length, big.length);

  const a = open(server, room, 'big-ws', owner.token);
  const b = open(server, room, 'big-ws', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  a.text.insert(0, big);
  await until(() => b.text.length === big.length, 20_000, 'the big paste reaches b');
  done(a, b);
  await sleep(300); // the document leaves memory; the next read comes from storage
  const fresh = open(server, room, 'big-ws', bob.token);
  await synced(fresh.provider);
  await until(() => fresh.text.length === big.length, 20_000, 'the big paste reloads from storage');
  done(fresh);
  // Production refuses rows over 2 MB (local workerd does not): none was written.
  const sizes = roomRows(server, `SELECT max(length(data)) AS n FROM doc_updates UNION ALL
    SELECT max(length(data)) AS n FROM doc_chunks`).map((r) => r.n ?? 0);
  assert.ok(Math.max(0, ...sizes) <= 2_000_000, `a stored row of ${Math.max(0, ...sizes)} bytes`);
});
