// Read markers for the browser app: the rooms list and a room carry where the
// caller stands (read_seq, head_seq, unread, mentions), and the socket's hello
// carries the caller's marker and the others' ("seen by" after a reload).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, register, startServer } from './harness.mjs';
import { join } from './ws.mjs';

const server = await startServer();

async function roomOf(owner, ...members) {
  const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Reads', kind: 'group' } });
  assert.equal(r.status, 201);
  for (const m of members) {
    const add = await api(server, 'POST', `/api/v1/rooms/${r.body.id}/members`, { token: owner.token, body: { user_id: m.user.id } });
    assert.equal(add.status, 201);
  }
  return r.body.id;
}

const readsOf = (room) => ({ read_seq: room.read_seq, head_seq: room.head_seq, unread: room.unread, mentions: room.mentions });

async function listed(user, roomId) {
  const list = await api(server, 'GET', '/api/v1/rooms', { token: user.token });
  assert.equal(list.status, 200);
  return list.body.rooms.find((r) => r.id === roomId);
}

async function sent(client, frame) {
  client.send(frame);
  return client.next((f) => f.type === 'ack' && f.client_msg_id === frame.client_msg_id);
}

test('the rooms list and a room say what is unread and what mentions me', async () => {
  const alice = await register(server, 'Alice Reads');
  const bob = await register(server, 'Bobby Reads');
  const roomId = await roomOf(alice, bob);
  // Bob has been in the room (his handle resolves) before he is mentioned.
  const b = await join(server, roomId, bob.token);
  const hello = b.frames.find((f) => f.type === 'hello');
  assert.equal(hello.read_seq, 0);
  assert.deepEqual(hello.reads, []);
  const a = await join(server, roomId, alice.token);
  await sent(a, { type: 'send', client_msg_id: 'm1', body: 'hi @bobbyreads' });
  await sent(a, { type: 'send', client_msg_id: 'm2', body: 'plain' });
  await sent(b, { type: 'send', client_msg_id: 'm3', body: 'mine is never unread to me' });

  const expected = { read_seq: 0, head_seq: 3, unread: 2, mentions: 1 };
  assert.deepEqual(readsOf(await listed(bob, roomId)), expected);
  const got = await api(server, 'GET', `/api/v1/rooms/${roomId}`, { token: bob.token });
  assert.equal(got.status, 200);
  assert.deepEqual(readsOf(got.body), expected);
  assert.equal(got.body.name, 'Reads');

  b.send({ type: 'read', seq: 1 });
  const told = await a.next((f) => f.type === 'read' && f.user_id === bob.user.id);
  assert.equal(told.seq, 1);
  assert.deepEqual(readsOf(await listed(bob, roomId)), { read_seq: 1, head_seq: 3, unread: 1, mentions: 0 });
  assert.deepEqual(readsOf(await listed(alice, roomId)), { read_seq: 0, head_seq: 3, unread: 1, mentions: 0 });

  // After a reload, Alice's hello shows who has read how far.
  a.close();
  const again = await join(server, roomId, alice.token);
  const hello2 = again.frames.find((f) => f.type === 'hello');
  assert.equal(hello2.read_seq, 0);
  assert.equal(hello2.head_seq, 3);
  assert.deepEqual(hello2.reads, [{ user_id: bob.user.id, seq: 1 }]);
  again.close();
  b.close();
});

test('answers other than the list and the room carry no read state', async () => {
  const alice = await register(server, 'Plain Rooms');
  const created = await api(server, 'POST', '/api/v1/rooms', { token: alice.token, body: { name: 'P', kind: 'group' } });
  assert.equal(created.status, 201);
  assert.equal('unread' in created.body, false);
  const patched = await api(server, 'PATCH', `/api/v1/rooms/${created.body.id}`, { token: alice.token, body: { topic: 't' } });
  assert.equal(patched.status, 200);
  assert.equal('read_seq' in patched.body, false);
  // A new room: nothing to read yet.
  assert.deepEqual(readsOf(await listed(alice, created.body.id)), { read_seq: 0, head_seq: 0, unread: 0, mentions: 0 });
});

test('a member who leaves takes their marker with them', async () => {
  const alice = await register(server, 'Owner Marks');
  const bob = await register(server, 'Leaving Bob');
  const roomId = await roomOf(alice, bob);
  const a = await join(server, roomId, alice.token);
  await sent(a, { type: 'send', client_msg_id: 'x1', body: 'hello' });
  const b = await join(server, roomId, bob.token);
  b.send({ type: 'read', seq: 1 });
  await a.next((f) => f.type === 'read' && f.user_id === bob.user.id);
  a.close();
  const before = await join(server, roomId, alice.token);
  assert.deepEqual(before.frames.find((f) => f.type === 'hello').reads, [{ user_id: bob.user.id, seq: 1 }]);
  before.close();
  const removed = await api(server, 'DELETE', `/api/v1/rooms/${roomId}/members/${bob.user.id}`, { token: alice.token });
  assert.equal(removed.status, 204);
  assert.equal((await b.closedPromise).code, 4003);
  const after = await join(server, roomId, alice.token);
  assert.deepEqual(after.frames.find((f) => f.type === 'hello').reads, []);
  after.close();
});
