// API keys over real HTTP and WebSockets against the Worker in workerd:
// scopes (rooms, read or write, kinds) on routes and sockets, revocation
// that takes effect at once, the key shown once, and keys that cannot make
// more keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, register, startServer } from './harness.mjs';
import { connect, join } from './ws.mjs';
import { post, upload } from './seed.mjs';

const server = await startServer();

// Under wrangler dev a client sees a server's close seconds after it was sent
// (see tests/accounts.test.mjs).
const CLOSE_MS = 20_000;
const within = (p, ms, what) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms))]);

async function roomOf(who, name) {
  const r = await api(server, 'POST', '/api/v1/rooms', { token: who.token, body: { name, kind: 'group' } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

async function createKey(who, scope, name = 'script') {
  const r = await api(server, 'POST', '/api/v1/me/keys', { token: who.token, body: { name, scope } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

const send = (roomId, token, body) => api(server, 'POST', `/api/v1/rooms/${roomId}/messages`, {
  token, body: { body }, headers: { 'idempotency-key': `k-${Math.random()}` },
});

test('an API key limited to one room and reading is refused writing and refused other rooms', async () => {
  const u = await register(server, 'Scripter');
  const stranger = await register(server, 'Stranger');
  const [a, b] = [await roomOf(u, 'Allowed'), await roomOf(u, 'Other')];
  await post(server, a, u, 'hello from a');
  await post(server, b, u, 'hello from b');
  const fileB = await upload(server, u.token, b);
  const fileA = await upload(server, u.token, a);
  const { key } = await createKey(u, { rooms: [a], access: 'read', resources: ['chat', 'rooms', 'files'] });

  // Reading the room it names.
  const read = await api(server, 'GET', `/api/v1/rooms/${a}/messages`, { token: key });
  assert.equal(read.status, 200);
  assert.deepEqual(read.body.messages.map((m) => m.body), ['hello from a']);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${a}`, { token: key })).status, 200);
  assert.equal((await api(server, 'GET', `/api/v1/files/${fileA}`, { token: key })).status, 200);

  // Writing there: 403, and nothing posted.
  const write = await send(a, key, 'from the key');
  assert.equal(write.status, 403);
  assert.equal(write.body.error.code, 'forbidden');
  const after = await api(server, 'GET', `/api/v1/rooms/${a}/messages`, { token: u.token });
  assert.deepEqual(after.body.messages.map((m) => m.body), ['hello from a']);
  assert.equal((await upload(server, key, a).catch((e) => e.message)).slice(0, 11), 'upload: 403');

  // Another room of the person: 404, exactly as a non-member gets it.
  const other = await api(server, 'GET', `/api/v1/rooms/${b}/messages`, { token: key });
  const nonMember = await api(server, 'GET', `/api/v1/rooms/${b}/messages`, { token: stranger.token });
  assert.equal(other.status, 404);
  assert.deepEqual(other.body.error, nonMember.body.error);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${b}`, { token: key })).status, 404);
  // Also through what names the room only indirectly (a file of the other room).
  assert.equal((await api(server, 'GET', `/api/v1/files/${fileB}`, { token: key })).status, 404);
  assert.equal((await api(server, 'GET', `/api/v1/files/${fileB}`, { token: u.token })).status, 200);
  // The rooms list shows only the key's room.
  const rooms = await api(server, 'GET', '/api/v1/rooms', { token: key });
  assert.equal(rooms.status, 200);
  assert.deepEqual(rooms.body.rooms.map((r) => r.id), [a]);

  // A kind the key does not cover: 403.
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${a}/docs`, { token: key })).status, 403);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${a}/rules`, { token: key })).status, 403);

  // Reading keeps the person's role: an owner's read key reads the audit log.
  const audit = await createKey(u, { rooms: [a], access: 'read', resources: ['workflows'] });
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${a}/audit`, { token: audit.key })).status, 200);

  // Sockets: the key's room opens, read-only (a send is refused and not stored); the other room does not.
  const chat = await join(server, a, key);
  assert.equal(chat.frames[0].you.role, 'viewer');
  chat.send({ type: 'send', client_msg_id: 'by-key', body: 'over the socket' });
  const refused = await chat.next((f) => f.type === 'error');
  assert.equal(refused.code, 'forbidden');
  chat.close();
  await assert.rejects(connect(server, b, key).opened, (e) => e.status === 404);
  const still = await api(server, 'GET', `/api/v1/rooms/${a}/messages`, { token: u.token });
  assert.deepEqual(still.body.messages.map((m) => m.body), ['hello from a']);
});

test('a write key posts in its rooms as its person', async () => {
  const u = await register(server, 'Bot owner');
  const a = await roomOf(u, 'Posts');
  const { key } = await createKey(u, { access: 'write', resources: ['chat'] });
  const r = await send(a, key, 'posted by a script');
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const listed = await api(server, 'GET', `/api/v1/rooms/${a}/messages`, { token: u.token });
  const m = listed.body.messages.find((x) => x.body === 'posted by a script');
  assert.equal(m.author, u.user.id);
  // Writing is not more than the kinds it names.
  assert.equal((await api(server, 'POST', `/api/v1/rooms/${a}/docs`, { token: key, body: { name: 'nope' } })).status, 403);
});

test('a revoked key stops at once, its sockets too', async () => {
  const u = await register(server, 'Revoker');
  const a = await roomOf(u, 'Revoked');
  const created = await createKey(u, { rooms: [a], access: 'write', resources: ['chat'] });
  const { key } = created;
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${a}/messages`, { token: key })).status, 200);
  const chat = await join(server, a, key);
  const kept = await join(server, a, u.token);
  const gone = await api(server, 'DELETE', `/api/v1/me/keys/${created.id}`, { token: u.token });
  assert.equal(gone.status, 204);
  // The very next request is refused.
  const next = await api(server, 'GET', `/api/v1/rooms/${a}/messages`, { token: key });
  assert.equal(next.status, 401);
  assert.equal(next.body.error.code, 'invalid_token');
  assert.equal((await send(a, key, 'too late')).status, 401);
  assert.equal((await within(chat.closedPromise, CLOSE_MS, 'key socket close')).code, 4001);
  await assert.rejects(connect(server, a, key).opened, (e) => e.status === 401);
  // The person's own session is untouched.
  assert.equal(kept.closed, null);
  kept.close();
  // Revoking again, or someone else's key: 404.
  assert.equal((await api(server, 'DELETE', `/api/v1/me/keys/${created.id}`, { token: u.token })).status, 404);
  const other = await register(server, 'Other person');
  const theirs = await createKey(other, { access: 'read', resources: ['rooms'] });
  assert.equal((await api(server, 'DELETE', `/api/v1/me/keys/${theirs.id}`, { token: u.token })).status, 404);
  assert.equal((await api(server, 'GET', '/api/v1/rooms', { token: theirs.key })).status, 200);
});

test('the secret is shown once and never listed; the last use is recorded', async () => {
  const u = await register(server, 'Lister');
  const created = await createKey(u, { access: 'read', resources: ['rooms'] }, '  nightly export  ');
  assert.match(created.key, /^tsk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
  assert.equal(created.name, 'nightly export');
  assert.equal(created.last_used_at, null);
  const secret = created.key.split('_').slice(2).join('_');
  const listed = await api(server, 'GET', '/api/v1/me/keys', { token: u.token });
  assert.equal(listed.status, 200);
  assert.equal(listed.body.keys.length, 1);
  const [k] = listed.body.keys;
  assert.equal(k.id, created.id);
  assert.equal(k.key, undefined);
  assert.ok(!JSON.stringify(listed.body).includes(secret), 'the list never carries the secret');
  assert.deepEqual(k.scope, { rooms: null, access: 'read', resources: ['rooms'] });
  // Used: the time is recorded once, and not rewritten within the minute.
  assert.equal((await api(server, 'GET', '/api/v1/rooms', { token: created.key })).status, 200);
  const first = (await api(server, 'GET', '/api/v1/me/keys', { token: u.token })).body.keys[0].last_used_at;
  assert.ok(Math.abs(first - Date.now() / 1000) < 60, `last used ${first}`);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await api(server, 'GET', '/api/v1/rooms', { token: created.key })).status, 200);
  const second = (await api(server, 'GET', '/api/v1/me/keys', { token: u.token })).body.keys[0].last_used_at;
  assert.equal(second, first);
  // A wrong secret for a real key id is refused, as is a malformed key.
  const forged = `tsk_${created.id}_${'A'.repeat(43)}`;
  assert.equal((await api(server, 'GET', '/api/v1/rooms', { token: forged })).status, 401);
  assert.equal((await api(server, 'GET', '/api/v1/rooms', { token: 'tsk_nonsense' })).status, 401);
});

test('a key cannot create keys, nor reach the account', async () => {
  const u = await register(server, 'Escalator');
  const room = await roomOf(u, 'Mine');
  const { key, id } = await createKey(u, { access: 'write', resources: ['chat', 'docs', 'files', 'workflows', 'rooms'] });
  const made = await api(server, 'POST', '/api/v1/me/keys', { token: key, body: { name: 'more', scope: { access: 'write', resources: ['chat'] } } });
  assert.equal(made.status, 403);
  assert.equal((await api(server, 'GET', '/api/v1/me/keys', { token: key })).status, 403);
  assert.equal((await api(server, 'DELETE', `/api/v1/me/keys/${id}`, { token: key })).status, 403);
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: key })).status, 403);
  assert.equal((await api(server, 'PATCH', '/api/v1/me', { token: key, body: { display_name: 'Owned' } })).status, 403);
  assert.equal((await api(server, 'POST', '/api/v1/auth/logout', { token: key, body: { everywhere: true } })).status, 403);
  assert.equal((await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: key, body: { user_id: u.user.id, role: 'member' } })).status, 403);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${room}/webhooks`, { token: key })).status, 403);
  const me = new Promise((resolve) => {
    import('ws').then(({ default: WebSocket }) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/me/ws?token=${key}`);
      ws.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode); });
      ws.once('open', () => { ws.close(); resolve(101); });
    });
  });
  assert.equal(await me, 403);
  // Still only the one key.
  assert.equal((await api(server, 'GET', '/api/v1/me/keys', { token: u.token })).body.keys.length, 1);
});

test('bad key requests are refused with a clear error and change nothing', async () => {
  const u = await register(server, 'Careful');
  const stranger = await register(server, 'Not in it');
  const theirs = await roomOf(stranger, 'Theirs');
  const bad = [
    [{ name: '', scope: { access: 'read', resources: ['chat'] } }, 'invalid_input'],
    [{ name: 'x', scope: { access: 'read', resources: [] } }, 'invalid_input'],
    [{ name: 'x', scope: { access: 'admin', resources: ['chat'] } }, 'invalid_input'],
    [{ name: 'x', scope: { access: 'read', resources: ['chat'], rooms: [] } }, 'invalid_input'],
    [{ name: 'x', scope: { access: 'read', resources: ['chat'], rooms: [theirs] } }, 'invalid_input'],
    [{ name: 'x', scope: { access: 'read', resources: ['chat'] }, expires_in_days: 0 }, 'invalid_input'],
    [{ name: 'x', scope: { access: 'read', resources: ['chat'] }, extra: 1 }, 'invalid_input'],
  ];
  for (const [body, code] of bad) {
    const r = await api(server, 'POST', '/api/v1/me/keys', { token: u.token, body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.code, code);
  }
  assert.equal((await api(server, 'POST', '/api/v1/me/keys', { body: bad[0][0] })).status, 401);
  assert.deepEqual((await api(server, 'GET', '/api/v1/me/keys', { token: u.token })).body.keys, []);
});
