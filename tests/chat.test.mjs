// Real-time rooms with real WebSocket clients against the Worker in workerd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, register, startServer } from './harness.mjs';
import { connect, join } from './ws.mjs';

const server = await startServer();

async function roomWith(...roles) {
  const owner = await register(server, 'Owner');
  const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Chat', kind: 'group' } });
  const people = [];
  for (const [i, role] of roles.entries()) {
    const u = await register(server, `P${i}`);
    const add = await api(server, 'POST', `/api/v1/rooms/${r.body.id}/members`, { token: owner.token, body: { user_id: u.user.id, role } });
    assert.equal(add.status, 201);
    people.push(u);
  }
  return { room: r.body.id, owner, people };
}

const sendFrame = (id, body, extra = {}) => ({ type: 'send', client_msg_id: id, body, ...extra });

/** Sends frames in chunks of 10 a second: within one person's rate limit. */
async function paced(client, frames) {
  for (let i = 0; i < frames.length; i += 10) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1050));
    for (const f of frames.slice(i, i + 10)) client.send(f);
  }
}
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

test('two clients converge; the sender gets acks; seqs are gap-free', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = await join(server, room, owner.token);
  const b = await join(server, room, bob.token);
  await Promise.all([
    paced(a, range(0, 20).map((i) => sendFrame(`a${i}`, `from a ${i}`))),
    paced(b, range(0, 20).map((i) => sendFrame(`b${i}`, `from b ${i}`))),
  ]);
  const acksA = await a.count('ack', 20);
  const acksB = await b.count('ack', 20);
  const inA = await a.count('message', 40);
  const inB = await b.count('message', 40);
  assert.deepEqual(inA.map((m) => m.seq), inB.map((m) => m.seq));
  assert.deepEqual(inA.map((m) => m.seq), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.deepEqual(inA.map((m) => m.message.body), inB.map((m) => m.message.body));
  // Each ack names a message that everyone received with that body.
  for (const ack of [...acksA, ...acksB]) {
    const m = inA.find((x) => x.seq === ack.seq);
    assert.equal(m.message.client_msg_id, ack.client_msg_id);
  }
  // A's own messages arrive in the order sent.
  const aBodies = inA.filter((m) => m.message.author === owner.user.id).map((m) => m.message.body);
  assert.deepEqual(aBodies, Array.from({ length: 20 }, (_, i) => `from a ${i}`));
  a.close(); b.close();
});

test('a duplicate client_msg_id yields one message and the original ack', async () => {
  const { room, owner } = await roomWith();
  const a = await join(server, room, owner.token);
  a.send(sendFrame('once', 'hello'));
  a.send(sendFrame('once', 'hello again'));
  const [first, second] = await a.count('ack', 2);
  assert.equal(first.duplicate, false);
  assert.equal(second.duplicate, true);
  assert.equal(second.id, first.id);
  const hist = await api(server, 'GET', `/api/v1/rooms/${room}/messages`, { token: owner.token });
  assert.equal(hist.body.messages.length, 1);
  assert.equal(hist.body.messages[0].body, 'hello');
  a.close();
});

test('a client dropped mid-burst resumes with since and gets exactly what it missed, in order', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = await join(server, room, owner.token);
  const b = await join(server, room, bob.token);
  for (let i = 0; i < 10; i += 1) a.send(sendFrame(`x${i}`, `m${i}`));
  await b.count('message', 10);
  b.ws.terminate(); // no close handshake: a dropped connection
  const lastSeen = b.frames.filter((f) => f.seq).at(-1).seq;
  await new Promise((r) => setTimeout(r, 1050));
  await paced(a, range(10, 40).map((i) => sendFrame(`x${i}`, `m${i}`)));
  await a.count('ack', 40);
  await new Promise((r) => setTimeout(r, 1050));
  // An edit and a reaction are part of the stream too.
  a.send({ type: 'edit', id: 12, body: 'm11 (edited)' });
  a.send({ type: 'react', id: 13, emoji: '🎉' });
  await a.next((f) => f.type === 'reaction');
  const b2 = await join(server, room, bob.token, { since: lastSeen });
  const replayed = await b2.count('reaction', 1).then(() => b2.frames.filter((f) => f.seq));
  assert.deepEqual(replayed.map((f) => f.seq), Array.from({ length: 32 }, (_, i) => lastSeen + 1 + i));
  // Replay shows each message as it is now: message 12 with its edit.
  const now = Array.from({ length: 30 }, (_, i) => (i === 1 ? 'm11 (edited)' : `m${10 + i}`));
  assert.deepEqual(replayed.slice(0, 30).map((f) => f.message.body), now);
  assert.equal(replayed[30].type, 'message_edited');
  // Then live traffic.
  a.send(sendFrame('live', 'after resume'));
  const live = await b2.next((f) => f.type === 'message' && f.message.body === 'after resume');
  assert.equal(live.seq, lastSeen + 33);
  a.close(); b2.close();
});

test('since older than the retained window gets resync; since in the future gets nothing', async () => {
  const { room, owner } = await roomWith();
  const c = await join(server, room, owner.token, { since: 99 });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.frames.filter((f) => f.seq).length, 0);
  c.close();
  const bad = connect(server, room, owner.token, { since: 'yesterday' });
  await assert.rejects(bad.opened, (e) => e.status === 400);
});

test('edit, delete, reactions, replies and mentions', async () => {
  const { room, owner, people: [bob, admin] } = await roomWith('member', 'admin');
  const a = await join(server, room, owner.token);
  const b = await join(server, room, bob.token);
  const z = await join(server, room, admin.token);
  b.send(sendFrame('q', `hey @${owner.user.display_name.toLowerCase()} and @ai`));
  const q = await a.next((f) => f.type === 'message');
  assert.deepEqual(q.message.mentions, [owner.user.id, 'ai']);
  a.send(sendFrame('r', 'answer', { reply_to: q.message.id }));
  const r = await b.next((f) => f.type === 'message' && f.message.reply_to === q.message.id);
  b.send({ type: 'edit', id: r.message.id, body: 'not mine' });
  assert.equal((await b.next((f) => f.type === 'error')).code, 'forbidden');
  b.send({ type: 'edit', id: q.message.id, body: 'edited question' });
  const edited = await a.next((f) => f.type === 'message_edited');
  assert.equal(edited.body, 'edited question');
  a.send({ type: 'react', id: q.message.id, emoji: '👍' });
  b.send({ type: 'react', id: q.message.id, emoji: '👍' });
  await z.count('reaction', 2);
  z.send({ type: 'delete', id: r.message.id });
  const del = await b.next((f) => f.type === 'message_deleted');
  assert.equal(del.deleted_by, admin.user.id);
  const hist = await api(server, 'GET', `/api/v1/rooms/${room}/messages`, { token: bob.token });
  const [mq, mr] = hist.body.messages;
  assert.equal(mq.body, 'edited question');
  assert.ok(mq.edited_at);
  assert.deepEqual(mq.reactions['👍'].sort(), [owner.user.id, bob.user.id].sort());
  assert.equal(mr.deleted, true);
  assert.equal(mr.body, '');
  a.close(); b.close(); z.close();
});

test('a deleted message is gone from replay, history and GET; replay shows edited messages as they are now', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = await join(server, room, owner.token);
  const b = await join(server, room, bob.token);
  a.send(sendFrame('s1', 'my password is hunter2'));
  a.send(sendFrame('s2', 'first draft'));
  const [one, two] = await a.count('ack', 2);
  a.send({ type: 'edit', id: one.id, body: 'oops, hunter3 too' });
  // Two sockets: the room takes their frames in either order unless the
  // reaction waits for the edit.
  await b.next((f) => f.type === 'message_edited' && f.id === one.id);
  b.send({ type: 'react', id: one.id, emoji: '👀' });
  await a.next((f) => f.type === 'reaction');
  a.send({ type: 'delete', id: one.id });
  a.send({ type: 'edit', id: two.id, body: 'final text' });
  await b.next((f) => f.type === 'message_edited' && f.body === 'final text');
  // Someone who joins later and replays everything, and a member resuming.
  const late = await register(server, 'Late');
  await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: late.user.id, role: 'member' } });
  for (const who of [late, bob]) {
    const c = await join(server, room, who.token, { since: 0 });
    const deadline = Date.now() + 5000;
    while (c.frames.filter((f) => f.seq).length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const replayed = c.frames.filter((f) => f.seq);
    assert.deepEqual(replayed.map((f) => [f.seq, f.type]), [
      [1, 'message'], [2, 'message'], [3, 'message_edited'], [4, 'reaction'], [5, 'message_deleted'], [6, 'message_edited'],
    ]);
    const text = JSON.stringify(replayed);
    for (const gone of ['hunter2', 'hunter3', 'first draft']) assert.ok(!text.includes(gone), `${gone} replayed: ${text}`);
    assert.equal(replayed[0].message.deleted, true);
    assert.equal(replayed[1].message.body, 'final text');
    c.close();
  }
  const hist = await api(server, 'GET', `/api/v1/rooms/${room}/messages`, { token: late.token });
  const [tomb, kept] = hist.body.messages;
  assert.deepEqual([tomb.deleted, tomb.body, tomb.mentions, tomb.attachments, tomb.reactions], [true, '', [], [], {}]);
  assert.equal(kept.body, 'final text');
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/messages/${one.id}`, { token: bob.token })).status, 404);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/messages/${two.id}`, { token: bob.token })).body.body, 'final text');
  a.close(); b.close();
});

test('a flood of typing, presence and read frames is limited per person and never reaches the others', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = await join(server, room, owner.token);
  const b = await join(server, room, bob.token);
  const b2 = await join(server, room, bob.token); // a second socket buys no more
  a.send(sendFrame('m1', 'one'));
  await b.next((f) => f.type === 'message');
  const from = a.frames.length;
  for (let i = 0; i < 300; i += 1) {
    const s = i % 2 ? b : b2;
    s.send({ type: 'typing' });
    s.send({ type: 'presence', status: i % 3 ? 'away' : 'online' });
    s.send({ type: 'read', seq: 1 });
  }
  for (const s of [b, b2]) {
    s.send({ type: 'ping', nonce: 'done' });
    await s.next((f) => f.type === 'pong' && f.nonce === 'done');
  }
  await new Promise((r) => setTimeout(r, 300));
  const reached = a.frames.slice(from).filter((f) => ['typing', 'presence', 'read'].includes(f.type));
  assert.ok(reached.length >= 1 && reached.length <= 12, `${reached.length} frames reached the owner`);
  const limited = [...b.frames, ...b2.frames].filter((f) => f.type === 'error' && f.code === 'rate_limited');
  assert.ok(limited.length >= 800, `only ${limited.length} limited`);
  assert.ok(limited.every((e) => e.retry_after > 0 && /typing, presence and read/.test(e.message)));
  // Writes have their own budget: Bob can still talk.
  b.send(sendFrame('b1', 'still here'));
  await a.next((f) => f.type === 'message' && f.message.body === 'still here');
  a.close(); b.close(); b2.close();
});

test('typing (expiring), presence, read markers and unread counts', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  const a = await join(server, room, owner.token);
  const b = await join(server, room, bob.token);
  const online = await a.next((f) => f.type === 'presence' && f.users[0].user_id === bob.user.id);
  assert.equal(online.users[0].status, 'online');
  b.send({ type: 'typing' });
  const typing = await a.next((f) => f.type === 'typing');
  assert.equal(typing.users[0].user_id, bob.user.id);
  assert.ok(typing.users[0].until > Date.now() && typing.users[0].until <= Date.now() + 6000);
  b.send({ type: 'presence', status: 'away' });
  const away = await a.next((f) => f.type === 'presence' && f.users[0].status === 'away');
  assert.equal(away.users[0].user_id, bob.user.id);
  for (let i = 0; i < 3; i += 1) b.send(sendFrame(`u${i}`, `unread ${i}`));
  await a.count('message', 3);
  const list = await api(server, 'GET', '/api/v1/rooms', { token: owner.token });
  assert.equal(list.body.rooms.find((x) => x.id === room).unread, 3);
  a.send({ type: 'read', seq: 2 });
  const read = await b.next((f) => f.type === 'read');
  assert.deepEqual(read, { type: 'read', user_id: owner.user.id, seq: 2 });
  const list2 = await api(server, 'GET', '/api/v1/rooms', { token: owner.token });
  assert.equal(list2.body.rooms.find((x) => x.id === room).unread, 1);
  const bobs = await api(server, 'GET', '/api/v1/rooms', { token: bob.token });
  assert.equal(bobs.body.rooms.find((x) => x.id === room).unread, 0, 'own messages are not unread');
  b.close();
  const offline = await a.next((f) => f.type === 'presence' && f.users[0].status === 'offline');
  assert.ok(offline.users[0].last_seen > 0);
  // A late joiner's hello carries presence with last_seen.
  const c = await join(server, room, bob.token);
  const hello = c.frames.find((f) => f.type === 'hello');
  assert.equal(hello.you.user_id, bob.user.id);
  assert.equal(hello.head_seq, 3);
  assert.ok(hello.presence.some((p) => p.user_id === owner.user.id && p.status === 'online'));
  a.close(); c.close();
});

test('rate limit: 10 messages per second per person; refused ones are not stored', async () => {
  const { room, owner } = await roomWith();
  const a = await join(server, room, owner.token);
  for (let i = 0; i < 30; i += 1) a.send(sendFrame(`r${i}`, `burst ${i}`));
  await a.next((f) => f.type === 'ack' && f.client_msg_id === 'r9');
  await new Promise((r) => setTimeout(r, 300));
  const limited = a.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited');
  const acks = a.frames.filter((f) => f.type === 'ack');
  assert.ok(limited.length >= 15, `only ${limited.length} limited`);
  assert.ok(limited.every((e) => e.retry_after > 0 && e.ref));
  assert.equal(acks.length + limited.length, 30);
  const hist = await api(server, 'GET', `/api/v1/rooms/${room}/messages?limit=200`, { token: owner.token });
  assert.equal(hist.body.messages.length, acks.length);
  a.close();
});

test('viewers read but cannot send', async () => {
  const { room, owner, people: [viewer] } = await roomWith('viewer');
  const v = await join(server, room, viewer.token);
  const a = await join(server, room, owner.token);
  v.send(sendFrame('v1', 'let me talk'));
  const err = await v.next((f) => f.type === 'error');
  assert.equal(err.code, 'forbidden');
  assert.equal(err.ref, 'v1');
  a.send(sendFrame('o1', 'owner speaks'));
  await v.next((f) => f.type === 'message' && f.message.body === 'owner speaks');
  const post = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, {
    token: viewer.token, body: { body: 'via REST' }, headers: { 'idempotency-key': 'k1' },
  });
  assert.equal(post.status, 403);
  a.close(); v.close();
});

test('a member removed over REST is disconnected at once; a demoted one loses write access', async () => {
  const { room, owner, people: [bob, carol] } = await roomWith('member', 'member');
  const b = await join(server, room, bob.token);
  const c = await join(server, room, carol.token);
  const del = await api(server, 'DELETE', `/api/v1/rooms/${room}/members/${bob.user.id}`, { token: owner.token });
  assert.equal(del.status, 204);
  const closed = await b.closedPromise;
  assert.equal(closed.code, 4003);
  assert.match(closed.reason, /removed/);
  await assert.rejects(connect(server, room, bob.token).opened, (e) => e.status === 404);
  await api(server, 'PATCH', `/api/v1/rooms/${room}/members/${carol.user.id}`, { token: owner.token, body: { role: 'viewer' } });
  c.send(sendFrame('c1', 'still here?'));
  assert.equal((await c.next((f) => f.type === 'error')).code, 'forbidden');
  c.close();
});

test('malformed frames from one client do not disturb the others; abuse closes with 1008', async () => {
  const { room, owner, people: [bob, mallory] } = await roomWith('member', 'member');
  const a = await join(server, room, owner.token);
  const b = await join(server, room, bob.token);
  const m = await join(server, room, mallory.token);
  const junk = ['{', '[]', 'null', '{"type":"shout"}', '{"type":"send"}', '{"type":"send","client_msg_id":"x","body":"y","admin":true}',
    '{"type":"edit","id":-1,"body":"x"}', '{"type":"read","seq":"lots"}', JSON.stringify({ type: 'ping', nonce: 'x'.repeat(70_000) })];
  for (const j of junk) m.send(j);
  m.ws.send(Buffer.from([1, 2, 3]));
  const errors = await m.count('error', junk.length + 1);
  assert.ok(errors.some((e) => e.code === 'malformed_json'));
  assert.ok(errors.some((e) => e.code === 'payload_too_large'));
  // Still usable.
  m.send({ type: 'ping', nonce: 'alive' });
  assert.equal((await m.next((f) => f.type === 'pong')).nonce, 'alive');
  // Meanwhile others chat normally, interleaved with more junk until Mallory is cut off.
  for (let i = 0; i < 10; i += 1) {
    a.send(sendFrame(`a${i}`, `a ${i}`));
    m.send('not json at all');
  }
  const closed = await m.closedPromise;
  assert.equal(closed.code, 1008);
  const got = await b.count('message', 10);
  assert.deepEqual(got.map((f) => f.message.body), Array.from({ length: 10 }, (_, i) => `a ${i}`));
  a.close(); b.close();
});

test('history paging and REST sends with Idempotency-Key', async () => {
  const { room, owner, people: [bob] } = await roomWith('member');
  for (let i = 0; i < 25; i += 1) {
    const r = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, {
      token: owner.token, body: { body: `rest ${i}` }, headers: { 'idempotency-key': `k-${i}` },
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.id, i + 1);
    if (i % 10 === 9) await new Promise((res) => setTimeout(res, 1050));
  }
  const again = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, {
    token: owner.token, body: { body: 'rest 0 retried' }, headers: { 'idempotency-key': 'k-0' },
  });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, 1);
  assert.equal(again.body.body, 'rest 0');
  await new Promise((res) => setTimeout(res, 1050));
  const noKey = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, { token: owner.token, body: { body: 'x' } });
  assert.equal(noKey.status, 400);
  const latest = await api(server, 'GET', `/api/v1/rooms/${room}/messages?limit=10`, { token: bob.token });
  assert.deepEqual(latest.body.messages.map((m) => m.id), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  const older = await api(server, 'GET', `/api/v1/rooms/${room}/messages?limit=10&before=16`, { token: bob.token });
  assert.deepEqual(older.body.messages.map((m) => m.id), [6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  const after = await api(server, 'GET', `/api/v1/rooms/${room}/messages?limit=3&after=20`, { token: bob.token });
  assert.deepEqual(after.body.messages.map((m) => m.id), [21, 22, 23]);
  const one = await api(server, 'GET', `/api/v1/rooms/${room}/messages/7`, { token: bob.token });
  assert.equal(one.body.body, 'rest 6');
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/messages/999`, { token: bob.token })).status, 404);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/messages?limit=500`, { token: bob.token })).status, 400);
});

test('socket authentication: subprotocol token, bad tokens, non-members', async () => {
  const { room, owner } = await roomWith();
  const stranger = await register(server, 'Stranger');
  const viaProtocol = connect(server, room, owner.token, { protocols: ['tessera.v1', `bearer.${owner.token}`] });
  await viaProtocol.opened;
  assert.equal(viaProtocol.ws.protocol, 'tessera.v1');
  await viaProtocol.next((f) => f.type === 'hello');
  viaProtocol.close();
  await assert.rejects(connect(server, room, 'garbage').opened, (e) => e.status === 401);
  await assert.rejects(connect(server, room, stranger.token).opened, (e) => e.status === 404);
  const plain = await api(server, 'GET', `/api/v1/rooms/${room}/ws?token=${owner.token}`);
  assert.equal(plain.status, 400);
});
