// Nothing acknowledged is lost: the server process is killed (SIGKILL) mid-burst
// and restarted on the same persisted state; the room object is evicted (server
// restarted) and clients resume; an upload's acknowledged chunks survive a kill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { api, register, startServer } from './harness.mjs';
import { join } from './ws.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PEOPLE = 10;
const PER_PERSON = 20;

async function allMessages(server, room, token) {
  const out = [];
  let after = 0;
  for (;;) {
    const page = await api(server, 'GET', `/api/v1/rooms/${room}/messages?after=${after}&limit=200`, { token });
    assert.equal(page.status, 200);
    out.push(...page.body.messages);
    if (page.body.messages.length < 200) return out;
    after = out.at(-1).id;
  }
}

test('SIGKILL mid-burst: every acknowledged message survives exactly once', async () => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'tessera-kill-'));
  let server = await startServer({ persistDir: dir });
  const owner = await register(server, 'Owner');
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Kill', kind: 'group' } })).body.id;
  const people = [];
  for (let i = 0; i < PEOPLE; i += 1) {
    const u = await register(server, `K${i}`);
    await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: u.user.id } });
    people.push(u);
  }
  const clients = await Promise.all(people.map((p) => join(server, room, p.token)));
  const frames = (i) => Array.from({ length: PER_PERSON }, (_, n) => ({ type: 'send', client_msg_id: `p${i}-m${n}`, body: `person ${i} message ${n}` }));
  // First half of everyone's messages, all at once.
  clients.forEach((c, i) => frames(i).slice(0, 10).forEach((f) => c.send(f)));
  await sleep(1050);
  // Second half, and kill the server while it is arriving.
  clients.forEach((c, i) => frames(i).slice(10).forEach((f) => c.send(f)));
  const acked = () => clients.flatMap((c, i) => c.frames.filter((f) => f.type === 'ack').map((a) => ({ ...a, person: i })));
  while (acked().length < PEOPLE * 10 + 20) await sleep(1);
  server.kill();
  await server.stop();
  const ackedBeforeKill = acked();
  assert.ok(ackedBeforeKill.length < PEOPLE * PER_PERSON, 'the kill landed mid-burst');

  server = await startServer({ persistDir: dir });
  const stored = await allMessages(server, room, owner.token);
  const key = (m) => `${m.author}|${m.client_msg_id}`;
  assert.equal(new Set(stored.map(key)).size, stored.length, 'no duplicates');
  assert.deepEqual(stored.map((m) => m.id), Array.from({ length: stored.length }, (_, i) => i + 1), 'gap-free');
  for (const a of ackedBeforeKill) {
    const m = stored.find((s) => s.id === a.id);
    assert.ok(m, `acked message ${a.client_msg_id} is stored`);
    assert.equal(m.client_msg_id, a.client_msg_id);
    assert.equal(m.author, people[a.person].user.id);
  }
  // Clients retry everything they sent; duplicates are recognised.
  const again = await Promise.all(people.map((p) => join(server, room, p.token)));
  for (const [i, c] of again.entries()) {
    const fs = frames(i);
    fs.slice(0, 10).forEach((f) => c.send(f));
    await sleep(1050);
    fs.slice(10).forEach((f) => c.send(f));
  }
  await Promise.all(again.map((c) => c.count('ack', PER_PERSON, 20_000)));
  const final = await allMessages(server, room, owner.token);
  assert.equal(final.length, PEOPLE * PER_PERSON);
  assert.equal(new Set(final.map(key)).size, PEOPLE * PER_PERSON);
  for (const c of again) c.close();
  await server.stop();
});

test('the room object is evicted (server restarted); a client resumes with since, losing nothing', async () => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'tessera-evict-'));
  let server = await startServer({ persistDir: dir });
  const owner = await register(server, 'Owner');
  const reader = await register(server, 'Reader');
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Evict', kind: 'group' } })).body.id;
  await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: reader.user.id } });
  const a = await join(server, room, owner.token);
  const r = await join(server, room, reader.token);
  for (let i = 0; i < 5; i += 1) a.send({ type: 'send', client_msg_id: `e${i}`, body: `before ${i}` });
  await r.count('message', 5);
  r.close();
  await sleep(1050);
  for (let i = 5; i < 10; i += 1) a.send({ type: 'send', client_msg_id: `e${i}`, body: `missed ${i}` });
  await a.count('ack', 10);
  await server.stop();
  server = await startServer({ persistDir: dir });
  const r2 = await join(server, room, reader.token, { since: 5 });
  const replayed = await r2.count('message', 5);
  assert.deepEqual(replayed.map((f) => f.message.body), [5, 6, 7, 8, 9].map((i) => `missed ${i}`));
  assert.equal(r2.frames.find((f) => f.type === 'hello').head_seq, 10);
  // Idempotency survives the restart too.
  const a2 = await join(server, room, owner.token);
  a2.send({ type: 'send', client_msg_id: 'e3', body: 'again' });
  const ack = await a2.next((f) => f.type === 'ack');
  assert.deepEqual([ack.duplicate, ack.id], [true, 4]);
  r2.close(); a2.close();
  await server.stop();
});

test('an upload survives SIGKILL: every acknowledged chunk is kept and the file completes intact', async () => {
  const MiB = 1024 * 1024;
  const dir = mkdtempSync(joinPath(tmpdir(), 'tessera-kill-upload-'));
  let server = await startServer({ persistDir: dir });
  const owner = await register(server, 'Uploader');
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Up', kind: 'group' } })).body.id;
  const data = randomBytes(7 * MiB + 100);
  const tus = (srv, method, path, headers = {}, body) => fetch(srv.url + path, {
    method, body, headers: { authorization: `Bearer ${owner.token}`, 'tus-resumable': '1.0.0', ...headers },
  });
  const meta = `filename ${Buffer.from('k.bin').toString('base64')},room_id ${Buffer.from(room).toString('base64')}`;
  const created = await tus(server, 'POST', '/api/v1/uploads', { 'upload-length': String(data.length), 'upload-metadata': meta });
  assert.equal(created.status, 201);
  const path = new URL(created.headers.get('location')).pathname;
  const patch = (srv, from, to) => tus(srv, 'PATCH', path, { 'content-type': 'application/offset+octet-stream', 'upload-offset': String(from) }, data.subarray(from, to));
  // 3 MiB only buffered, then 3 more: one 5 MiB part in R2 and 1 MiB buffered.
  assert.equal((await patch(server, 0, 3 * MiB)).status, 204);
  assert.equal((await patch(server, 3 * MiB, 6 * MiB)).status, 204);
  server.kill();
  server = await startServer({ persistDir: dir });
  const head = await tus(server, 'HEAD', path);
  assert.equal(head.headers.get('upload-offset'), String(6 * MiB));
  const last = await patch(server, 6 * MiB, data.length);
  assert.equal(last.status, 204);
  assert.equal(last.headers.get('upload-offset'), String(data.length));
  const got = await fetch(`${server.url}/api/v1/files/${path.split('/').pop()}/content`, { headers: { authorization: `Bearer ${owner.token}` } });
  const hash = (b) => createHash('sha256').update(b).digest('hex');
  assert.equal(hash(Buffer.from(await got.arrayBuffer())), hash(data));
});
