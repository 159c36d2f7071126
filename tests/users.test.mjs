// GET /api/v1/users?q=: finding someone to start a direct room with, among
// the people one shares a room with (or by their exact email), never showing
// an email and never the whole user table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, register, startServer } from './harness.mjs';

const server = await startServer();

const alice = await register(server, 'Alice Finder');
const bob = await register(server, 'Bob Builder');
const carol = await register(server, 'Carol Bobson');
const elodie = await register(server, 'Élodie Durand');
const stranger = await register(server, 'Bob Stranger');
const room = await api(server, 'POST', '/api/v1/rooms', {
  token: alice.token,
  body: { name: 'Found', kind: 'group', members: [bob.user.id, carol.user.id, elodie.user.id] },
});
assert.equal(room.status, 201);

async function search(q, user = alice) {
  const r = await api(server, 'GET', `/api/v1/users?q=${encodeURIComponent(q)}`, { token: user.token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.users;
}
const ids = (users) => users.map((u) => u.id);

test('co-members match by name prefix or word, in any case, and strangers do not', async () => {
  assert.deepEqual(ids(await search('bob')), [bob.user.id, carol.user.id]);
  assert.deepEqual(ids(await search('BUILDER')), [bob.user.id]);
  assert.deepEqual(ids(await search('élo')), [elodie.user.id]);
  assert.deepEqual(ids(await search('ÉLODIE d')), [elodie.user.id]);
  assert.deepEqual(await search('uilder'), [], 'not the middle of a word');
  assert.deepEqual(await search('stranger'), []);
  assert.deepEqual(await search('alice'), [], 'never the caller');
  const [found] = await search('carol');
  assert.deepEqual(found, { id: carol.user.id, display_name: 'Carol Bobson' });
});

test('an exact email finds its account, which need not share a room; no email is shown', async () => {
  const users = await search(stranger.email.toUpperCase());
  assert.deepEqual(users, [{ id: stranger.user.id, display_name: 'Bob Stranger' }]);
  assert.deepEqual(await search(stranger.email.slice(0, -1)), [], 'a partial email finds nobody');
  assert.deepEqual(await search(alice.email), [], 'not even oneself by email');
  // Bob finds Carol by a word of her name, but neither himself nor the stranger.
  assert.deepEqual(ids(await search('bob', bob)), [carol.user.id]);
});

test('wildcards and quotes are text, not patterns', async () => {
  for (const q of ['%', '_', "%' OR 1=1 --", '\\', 'b%']) {
    assert.deepEqual(await search(q), [], q);
  }
});

test('bad queries are refused and strangers to the API get 401', async () => {
  for (const q of ['', '   ', 'x'.repeat(101), 'a\u0007b']) {
    const r = await api(server, 'GET', `/api/v1/users?q=${encodeURIComponent(q)}`, { token: alice.token });
    assert.equal(r.status, 400, JSON.stringify(q));
    assert.equal(r.body.error.code, 'invalid_input');
  }
  assert.equal((await api(server, 'GET', '/api/v1/users', { token: alice.token })).status, 400);
  assert.equal((await api(server, 'GET', '/api/v1/users?q=bob')).status, 401);
});
