// Collaborative documents with unmodified yjs + y-websocket clients in Node,
// against the Worker in workerd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { api, register, startServer, randomIp } from './harness.mjs';
import { join } from './ws.mjs';
import {
  done, open, rawDocSocket, roomWith as roomWithRoles, sleep, synced, textOf as readText, until,
  updateMessage, within, Y,
} from './ydoc.mjs';
import { r2Keys } from './storage.mjs';

const server = await startServer({ vars: { DOC_COMPACT_AFTER_UPDATES: '50', DOC_RATE_PER_SEC: '300' } });

const roomWith = (...roles) => roomWithRoles(server, ...roles);
const textOf = (room, doc, token) => readText(server, room, doc, token);

test('two clients converge under concurrent edits; a late joiner gets the full state', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = open(server, room, 'notes', owner.token);
  const b = open(server, room, 'notes', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  for (let i = 0; i < 30; i += 1) {
    const s = a.text.toString();
    a.text.insert(s.indexOf(' ', Math.floor(s.length / 2)) + 1, `a${i} `); // at a word boundary
    b.text.insert(i % 3 === 0 ? 0 : b.text.length, `b${i} `);
  }
  await until(() => a.text.toString() === b.text.toString() && a.text.length > 0, 10_000, 'convergence');
  for (let i = 0; i < 30; i += 1) {
    assert.ok(a.text.toString().includes(`a${i} `), `a${i}`);
    assert.ok(a.text.toString().includes(`b${i} `), `b${i}`);
  }
  const late = open(server, room, 'notes', owner.token);
  await synced(late.provider);
  await until(() => late.text.toString() === a.text.toString(), 5000, 'late joiner');
  assert.equal(await textOf(room, 'notes', owner.token), a.text.toString());
  done(a, b, late);
});

test("a client's offline edits merge on reconnect", async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = open(server, room, 'offline', owner.token);
  const b = open(server, room, 'offline', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  a.text.insert(0, 'shared ');
  await until(() => b.text.toString() === 'shared ');
  b.provider.disconnect();
  b.text.insert(b.text.length, 'offline-b');
  a.text.insert(0, 'online-a ');
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(!a.text.toString().includes('offline-b'));
  b.provider.connect();
  await until(() => a.text.toString() === b.text.toString() && a.text.toString().includes('offline-b'), 10_000, 'merge');
  assert.equal(a.text.toString(), 'online-a shared offline-b');
  done(a, b);
});

test("a viewer's edits are applied nowhere, but the viewer still receives updates", async () => {
  const { room, owner, people: [viewer] } = await roomWith('viewer');
  const a = open(server, room, 'ro', owner.token);
  const v = open(server, room, 'ro', viewer.token);
  await Promise.all([synced(a.provider), synced(v.provider)]);
  v.text.insert(0, 'VIEWER WAS HERE ');
  a.text.insert(0, 'owner text');
  await until(() => v.text.toString().includes('owner text'), 5000, 'viewer receives');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.text.toString(), 'owner text');
  assert.equal(await textOf(room, 'ro', owner.token), 'owner text');
  const late = open(server, room, 'ro', owner.token);
  await synced(late.provider);
  await until(() => late.text.toString() === 'owner text');
  const rest = await fetch(`${server.url}/api/v1/rooms/${room}/docs/ro/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${viewer.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
    body: Y.encodeStateAsUpdate(v.ydoc),
  });
  assert.equal(rest.status, 403);
  done(a, v, late);
});

test('compaction leaves the text identical, and it reloads from snapshot + tail', async () => {
  const { room, owner } = await roomWith();
  const a = open(server, room, 'compact', owner.token);
  await synced(a.provider);
  for (let i = 0; i < 180; i += 1) a.text.insert(a.text.length, `${i},`);
  const expected = a.text.toString();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await textOf(room, 'compact', owner.token), expected);
  const list = await api(server, 'GET', `/api/v1/rooms/${room}/docs`, { token: owner.token });
  const info = list.body.docs.find((d) => d.name === 'compact');
  assert.ok(info.bytes > 0 && info.bytes < 4000, `stored bytes ${info.bytes} (compacted, not 180 separate updates' overhead)`);
  done(a);
  await new Promise((r) => setTimeout(r, 200)); // the object drops the document from memory
  const fresh = open(server, room, 'compact', owner.token);
  await synced(fresh.provider);
  await until(() => fresh.text.toString() === expected, 5000, 'reload');
  done(fresh);
});

test('REST: list, read as update and text, write, delete with permissions', async () => {
  const { room, owner, people: [member, admin] } = await roomWith('member', 'admin');
  const src = new Y.Doc();
  src.getText('t').insert(0, 'written over REST');
  const post = await fetch(`${server.url}/api/v1/rooms/${room}/docs/rest-doc/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${member.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
    body: Y.encodeStateAsUpdate(src),
  });
  assert.equal(post.status, 200);
  const got = await fetch(`${server.url}/api/v1/rooms/${room}/docs/rest-doc?format=update`, {
    headers: { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp() },
  });
  assert.equal(got.headers.get('content-type'), 'application/octet-stream');
  const copy = new Y.Doc();
  Y.applyUpdate(copy, new Uint8Array(await got.arrayBuffer()));
  assert.equal(copy.getText('t').toString(), 'written over REST');
  assert.equal(await textOf(room, 'rest-doc', owner.token), 'written over REST');
  const junk = await fetch(`${server.url}/api/v1/rooms/${room}/docs/rest-doc/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${member.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
    body: new Uint8Array([1, 2, 3, 250, 250]),
  });
  assert.equal(junk.status, 400);
  assert.equal(await textOf(room, 'rest-doc', owner.token), 'written over REST');
  const missing = await api(server, 'GET', `/api/v1/rooms/${room}/docs/nope?format=text&name=t`, { token: owner.token });
  assert.equal(missing.status, 404);
  const badName = await api(server, 'GET', `/api/v1/rooms/${room}/docs/a..b%2F?format=text`, { token: owner.token });
  assert.equal(badName.status, 404);
  const c = open(server, room, 'rest-doc', owner.token);
  await synced(c.provider);
  const closed = new Promise((r) => c.provider.ws.once('close', (code) => r(code)));
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}/docs/rest-doc`, { token: member.token })).status, 403);
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}/docs/rest-doc`, { token: admin.token })).status, 204);
  assert.equal(await closed, 4004);
  done(c);
  const after = await api(server, 'GET', `/api/v1/rooms/${room}/docs`, { token: owner.token });
  assert.ok(!after.body.docs.some((d) => d.name === 'rest-doc'));
  const stranger = await register(server, 'Stranger');
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/docs`, { token: stranger.token })).status, 404);
});

test('versions: save, read, and restore as a forward change that connected clients converge on', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = open(server, room, 'versioned', owner.token);
  const b = open(server, room, 'versioned', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  a.text.insert(0, 'The first draft.');
  await until(() => b.text.toString() === 'The first draft.');
  await new Promise((r) => setTimeout(r, 100));
  const v = await api(server, 'POST', `/api/v1/rooms/${room}/docs/versioned/versions`, { token: owner.token, body: { label: 'draft 1' } });
  assert.equal(v.status, 201);
  assert.equal(v.body.v, 1);
  b.text.insert(0, 'Bob rewrote everything. ');
  a.text.delete(4, 6);
  await until(() => a.text.toString() === b.text.toString() && a.text.toString() !== 'The first draft.');
  const list = await api(server, 'GET', `/api/v1/rooms/${room}/docs/versioned/versions`, { token: bob.token });
  assert.deepEqual(list.body.versions.map((x) => x.label), ['draft 1']);
  const old = await fetch(`${server.url}/api/v1/rooms/${room}/docs/versioned/versions/1?format=text&name=t`, {
    headers: { authorization: `Bearer ${bob.token}`, 'cf-connecting-ip': randomIp() },
  });
  assert.equal(await old.text(), 'The first draft.');
  const noTexts = await api(server, 'POST', `/api/v1/rooms/${room}/docs/versioned/versions/1/restore`, { token: owner.token, body: { texts: [] } });
  assert.equal(noTexts.status, 400);
  const restore = await api(server, 'POST', `/api/v1/rooms/${room}/docs/versioned/versions/1/restore`, { token: owner.token, body: { texts: ['t'] } });
  assert.equal(restore.status, 200);
  await until(() => a.text.toString() === 'The first draft.' && b.text.toString() === 'The first draft.', 5000, 'restore converges');
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/docs/versioned/versions/9?format=text&name=t`, { token: owner.token })).status, 404);
  done(a, b);
});

/** Resolves with the code of the provider's next socket close. */
const nextClose = (provider) => new Promise((resolve) => {
  const on = (event) => { provider.off('connection-close', on); resolve(event?.code); };
  provider.on('connection-close', on);
});

test('a deleted document is not re-created by a client that still holds it; an explicit create reuses the name', async () => {
  const { room, owner, people: [bob, vic] } = await roomWith('member', 'viewer');
  const a = open(server, room, 'gone', owner.token);
  const b = open(server, room, 'gone', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  a.text.insert(0, 'old content');
  await until(() => b.text.toString() === 'old content');
  await sleep(100);
  b.provider.disconnect(); // Bob goes offline, holding the document
  b.text.insert(0, 'offline edit; ');
  const aClosed = nextClose(a.provider);
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${room}/docs/gone`, { token: owner.token })).status, 204);
  assert.equal(await aClosed, 4004);
  a.provider.disconnect();

  const got = await api(server, 'GET', `/api/v1/rooms/${room}/docs/gone?format=text`, { token: owner.token });
  assert.equal(got.status, 410);
  assert.equal(got.body.error.code, 'document_deleted');
  const list = await api(server, 'GET', `/api/v1/rooms/${room}/docs`, { token: owner.token });
  assert.ok(!list.body.docs.some((d) => d.name === 'gone'));
  assert.deepEqual(list.body.deleted.map((t) => [t.name, t.deleted_by]), [['gone', owner.user.id]]);

  // Bob comes back: his socket is closed with 4004 before anything is read.
  const bClosed = nextClose(b.provider);
  b.provider.connect();
  assert.equal(await within(bClosed, 5000, "Bob's socket to be refused"), 4004);
  b.provider.disconnect();
  const raw = await rawDocSocket(server, room, 'gone', bob.token);
  assert.equal((await within(raw.closedPromise, 5000, 'a raw socket to be refused')).code, 4004);
  assert.equal(raw.received.length, 0, 'the server sent nothing to a deleted document socket');
  const write = await fetch(`${server.url}/api/v1/rooms/${room}/docs/gone/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bob.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
    body: Y.encodeStateAsUpdate(b.ydoc),
  });
  assert.equal(write.status, 410);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/docs/gone?format=text`, { token: owner.token })).status, 410);
  done(a, b);

  // A deliberate creation reuses the name, empty.
  assert.equal((await api(server, 'POST', `/api/v1/rooms/${room}/docs`, { token: vic.token, body: { name: 'gone' } })).status, 403);
  const created = await api(server, 'POST', `/api/v1/rooms/${room}/docs`, { token: bob.token, body: { name: 'gone' } });
  assert.equal(created.status, 201);
  assert.deepEqual([created.body.name, created.body.bytes], ['gone', 0]);
  const again = await api(server, 'POST', `/api/v1/rooms/${room}/docs`, { token: bob.token, body: { name: 'gone' } });
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, 'document_exists');
  const after = await api(server, 'GET', `/api/v1/rooms/${room}/docs`, { token: owner.token });
  assert.deepEqual([after.body.docs.map((d) => d.name), after.body.deleted], [['gone'], []]);
  const c = open(server, room, 'gone', owner.token);
  await synced(c.provider);
  assert.equal(c.text.toString(), '');
  c.text.insert(0, 'a fresh start');
  await sleep(200);
  assert.equal(await textOf(room, 'gone', owner.token), 'a fresh start');
  done(c);
});

/** Every root of a document as plain data, XML attributes with their types. */
function dump(ydoc) {
  const xml = (node) => (node instanceof Y.XmlText
    ? { text: node.toDelta(), attrs: node.getAttributes() }
    : { tag: node.nodeName, attrs: node.getAttributes(), children: node.toArray().map(xml) });
  return {
    content: ydoc.getText('content').toDelta(),
    meta: ydoc.getMap('meta').toJSON(),
    list: ydoc.getArray('list').toJSON(),
    prosemirror: ydoc.getXmlFragment('prosemirror').toArray().map(xml),
    later: ydoc.getText('later').toString(),
  };
}

test('a restore with no body brings back every root type for every connected client', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = open(server, room, 'rich', owner.token);
  const b = open(server, room, 'rich', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  a.ydoc.transact(() => {
    const content = a.ydoc.getText('content');
    content.insert(0, 'Grüße 👋🏽 aus 東京', { bold: true });
    content.insert(content.length, ' und cafe\u0301');
    const meta = a.ydoc.getMap('meta');
    meta.set('title', 'Plan');
    meta.set('owner', { name: 'Ada', tags: ['x', 1] });
    a.ydoc.getArray('list').push([1, 'two', { three: 3 }]);
    const heading = new Y.XmlElement('heading');
    heading.setAttribute('level', 1);
    const words = new Y.XmlText();
    words.insert(0, 'Ça va?', { em: true });
    heading.insert(0, [words]);
    const para = new Y.XmlElement('paragraph');
    para.insert(0, [new Y.XmlText('second')]);
    a.ydoc.getXmlFragment('prosemirror').insert(0, [heading, para]);
  });
  const expected = dump(a.ydoc);
  await until(() => isDeepStrictEqual(dump(b.ydoc), expected), 5000, 'b has the version');
  await sleep(100);
  assert.equal((await api(server, 'POST', `/api/v1/rooms/${room}/docs/rich/versions`, { token: owner.token, body: { label: 'rich' } })).status, 201);
  b.ydoc.transact(() => {
    b.ydoc.getText('content').format(0, 3, { bold: null });
    b.ydoc.getText('content').insert(2, '😀');
    b.ydoc.getMap('meta').delete('owner');
    b.ydoc.getMap('meta').set('title', 'Other');
    b.ydoc.getArray('list').delete(0, 1);
    const pm = b.ydoc.getXmlFragment('prosemirror');
    pm.get(0).setAttribute('level', 2);
    pm.delete(1, 1);
    pm.insert(1, [new Y.XmlElement('blockquote')]);
    b.ydoc.getText('later').insert(0, 'written after the version');
  });
  await until(() => isDeepStrictEqual(dump(a.ydoc), dump(b.ydoc)) && !isDeepStrictEqual(dump(a.ydoc), expected), 5000, 'edits converge');
  const restore = await fetch(`${server.url}/api/v1/rooms/${room}/docs/rich/versions/1/restore`, {
    method: 'POST',
    headers: { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp() },
  });
  assert.equal(restore.status, 200, await restore.clone().text());
  // A restored map value comes back from yrs with its keys in another order:
  // JSON objects are unordered, so the comparison is too.
  for (const [who, c] of [['a', a], ['b', b]]) {
    await until(() => isDeepStrictEqual(dump(c.ydoc), expected), 10_000, 'the restore reaches every client')
      .catch((e) => {
        throw new Error(`${e.message}: ${who} (connected: ${c.provider.wsconnected}) has ${JSON.stringify(dump(c.ydoc))}, the version is ${JSON.stringify(expected)}`);
      });
  }
  assert.equal(b.ydoc.getXmlFragment('prosemirror').get(0).getAttribute('level'), 1, 'the attribute keeps its number type');
  // `?format=text` reads the `content` root unless another is named.
  assert.equal(await readText(server, room, 'rich', owner.token, 'content'), a.ydoc.getText('content').toString());
  const plain = await fetch(`${server.url}/api/v1/rooms/${room}/docs/rich?format=text`, {
    headers: { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp() },
  });
  assert.equal(await plain.text(), 'Grüße 👋🏽 aus 東京 und cafe\u0301');
  done(a, b);
});

test("backups go to R2, and leave with their document and their room", async () => {
  const quick = await startServer({ vars: { DOC_BACKUP_EVERY_MS: '500' } });
  const owner = await register(quick, 'Owner');
  const room = (await api(quick, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'B', kind: 'group' } })).body.id;
  const post = (doc, text) => {
    const d = new Y.Doc();
    d.getText('t').insert(0, text);
    return fetch(`${quick.url}/api/v1/rooms/${room}/docs/${doc}/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
      body: Y.encodeStateAsUpdate(d),
    });
  };
  for (const doc of ['kept', 'dropped']) assert.equal((await post(doc, doc)).status, 200);
  const prefix = `backups/${room}/docs/`;
  await until(() => r2Keys(quick, prefix).length === 2, 10_000, 'both documents backed up');
  assert.deepEqual(r2Keys(quick, prefix).map((k) => k.split('/')[3]), ['dropped', 'kept']);
  assert.equal((await api(quick, 'DELETE', `/api/v1/rooms/${room}/docs/dropped`, { token: owner.token })).status, 204);
  assert.deepEqual(r2Keys(quick, prefix).map((k) => k.split('/')[3]), ['kept']);
  assert.equal((await api(quick, 'DELETE', `/api/v1/rooms/${room}`, { token: owner.token })).status, 204);
  assert.deepEqual(r2Keys(quick, `backups/${room}/`), []);
});

test('awareness is relayed and removed when a client leaves', async () => {
  const { room, owner, people: [bob] } = await roomWith('viewer');
  const a = open(server, room, 'aware', owner.token);
  const b = open(server, room, 'aware', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  a.provider.awareness.setLocalStateField('user', { name: 'Owner', cursor: 3 });
  const aId = a.ydoc.clientID;
  await until(() => b.provider.awareness.getStates().get(aId)?.user?.name === 'Owner', 5000, 'awareness relayed');
  a.provider.ws.close();
  a.provider.shouldConnect = false;
  await until(() => !b.provider.awareness.getStates().has(aId), 5000, 'awareness removed');
  done(a, b);
});

test('a doc_changed event reaches the room socket', async () => {
  const { room, owner } = await roomWith();
  const chat = await join(server, room, owner.token);
  const a = open(server, room, 'events', owner.token);
  await synced(a.provider);
  a.text.insert(0, 'hello');
  const ev = await chat.next((f) => f.type === 'event' && f.event === 'doc_changed');
  assert.equal(ev.data.doc, 'events');
  chat.close();
  done(a);
});

test('a fuzzed stream of malformed frames closes only the sender; the document is untouched', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = open(server, room, 'fuzz', owner.token);
  const b = open(server, room, 'fuzz', bob.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  a.text.insert(0, 'stable');
  await until(() => b.text.toString() === 'stable');
  let seed = 42;
  const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const good = Y.encodeStateAsUpdate(a.ydoc);
  const frames = [new Uint8Array([]), new Uint8Array([0]), new Uint8Array([0, 2]), new Uint8Array([9, 9, 9]), new Uint8Array([2, 0])];
  for (let i = 0; i < 40; i += 1) {
    const len = 1 + (rand() % 60);
    frames.push(Uint8Array.from({ length: len }, () => rand() % 256));
    const mutated = Uint8Array.from([0, 2, ...[good.length], ...good]);
    mutated[3 + (rand() % good.length)] ^= 1 + (rand() % 255);
    frames.push(mutated.slice(0, 3 + (rand() % good.length)));
  }
  const codes = [];
  for (const frame of frames) {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/fuzz?token=${owner.token}`, { headers: { 'cf-connecting-ip': randomIp() } });
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise((r) => ws.once('close', (code) => r(code)));
    ws.send(frame);
    const code = await Promise.race([closed, new Promise((r) => setTimeout(() => r('open'), 300))]);
    codes.push(code);
    ws.terminate();
  }
  assert.ok(codes.filter((c) => c === 1007 || c === 1003 || c === 1009).length >= frames.length * 0.8, `close codes: ${codes}`);
  a.text.insert(a.text.length, ' still works');
  await until(() => b.text.toString() === 'stable still works', 5000, 'others unaffected');
  assert.equal(await textOf(room, 'fuzz', owner.token), 'stable still works');
  const big = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/fuzz?token=${owner.token}`, { headers: { 'cf-connecting-ip': randomIp() } });
  await new Promise((r) => big.once('open', r));
  const bigClosed = new Promise((r) => big.once('close', (code, reason) => r([code, reason.toString()])));
  big.send(new Uint8Array(9 * 1024 * 1024));
  const [code, reason] = await bigClosed;
  assert.equal(code, 1009);
  assert.match(reason, /exceeds/);
  done(a, b);
});

test('a burst of updates is stored and sent merged, in order, and reads back whole', async () => {
  const { room, owner } = await roomWith();
  const url = `${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/burst?token=${owner.token}`;
  const connect = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { 'cf-connecting-ip': randomIp() } });
    ws.binaryType = 'arraybuffer';
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
  // The reader applies what the server sends and counts the update messages.
  const reader = await connect();
  const seen = new Y.Doc();
  let updateMessages = 0;
  reader.on('message', (data) => {
    const b = new Uint8Array(data);
    if (b[0] !== 0 || (b[1] !== 1 && b[1] !== 2)) return;
    if (b[1] === 2) updateMessages += 1;
    let i = 2; let len = 0; let shift = 0;
    for (;;) { const x = b[i++]; len |= (x & 127) << shift; if (x < 128) break; shift += 7; }
    Y.applyUpdate(seen, b.subarray(i, i + len));
  });
  // The writer types 3,000 characters, one update each, sent as two frames of
  // 1,500 update messages (a frame may carry several): past the flush threshold.
  const writer = await connect();
  const typist = new Y.Doc();
  const updates = [];
  typist.on('update', (u) => updates.push(u));
  for (let i = 0; i < 3000; i += 1) typist.getText('t').insert(i % 7 === 0 ? 0 : typist.getText('t').length, String.fromCharCode(97 + (i % 26)));
  const frame = (us) => Uint8Array.from(us.flatMap((u) => [...updateMessage(u)]));
  writer.send(frame(updates.slice(0, 1500)));
  writer.send(frame(updates.slice(1500)));
  const expected = typist.getText('t').toString();
  await until(() => seen.getText('t').toString() === expected, 10_000, 'the reader holds the burst');
  // Merged per sender in groups of at most 100 updates: 15 messages a frame.
  assert.ok(updateMessages <= 30, `${updateMessages} update messages for 3,000 updates`);
  assert.equal(await textOf(room, 'burst', owner.token), expected);
  writer.close();
  reader.close();
});


test('the server is killed and restarted: nothing that was broadcast is lost', async () => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'tessera-doc-kill-'));
  const s1 = await startServer({ persistDir: dir });
  const owner = await register(s1, 'Owner');
  const room = (await api(s1, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'K', kind: 'group' } })).body.id;
  const a = open(s1, room, 'kill', owner.token);
  const b = open(s1, room, 'kill', owner.token);
  await Promise.all([synced(a.provider), synced(b.provider)]);
  let i = 0;
  const writer = setInterval(() => { a.text.insert(a.text.length, `${i++};`); }, 2);
  await until(() => b.text.length > 400, 10_000, 'edits flowing');
  s1.kill();
  clearInterval(writer);
  const seenByB = b.text.toString();
  done(a, b);
  await s1.stop();
  const s2 = await startServer({ persistDir: dir });
  const c = open(s2, room, 'kill', owner.token);
  await synced(c.provider);
  const restored = c.text.toString();
  assert.ok(restored.startsWith(seenByB), `the restarted server holds everything B received (${seenByB.length} chars; server has ${restored.length})`);
  done(c);
});
