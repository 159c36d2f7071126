// Rooms, members, roles and invites over real HTTP against the Worker in workerd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, register, startServer } from './harness.mjs';
import { join } from './ws.mjs';

const server = await startServer();

async function room(owner, body = { name: 'Team', kind: 'group' }) {
  const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function addMember(actor, roomId, user, role) {
  return api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: actor.token, body: { user_id: user.user.id, role } });
}

test('create, get, list (paged), update and delete a room', async () => {
  const owner = await register(server, 'Owner');
  const created = await room(owner, { name: ' Launch ', kind: 'project', topic: 'Ship it' });
  assert.equal(created.name, 'Launch');
  assert.equal(created.kind, 'project');
  assert.equal(created.role, 'owner');
  assert.equal(created.member_count, 1);
  const got = await api(server, 'GET', `/api/v1/rooms/${created.id}`, { token: owner.token });
  // A room read back is the created room plus where the caller stands in it.
  assert.deepEqual(got.body, { ...created, read_seq: 0, head_seq: 0, unread: 0, mentions: 0 });
  for (let i = 0; i < 4; i += 1) await room(owner, { name: `Room ${i}`, kind: 'group' });
  const seen = [];
  let cursor = null;
  do {
    const q = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
    const page = await api(server, 'GET', `/api/v1/rooms${q}`, { token: owner.token });
    assert.equal(page.status, 200);
    assert.ok(page.body.rooms.length <= 2);
    seen.push(...page.body.rooms.map((r) => r.id));
    cursor = page.body.next_cursor;
  } while (cursor);
  assert.equal(seen.length, 5);
  assert.equal(new Set(seen).size, 5);
  const patched = await api(server, 'PATCH', `/api/v1/rooms/${created.id}`, { token: owner.token, body: { topic: 'Shipped' } });
  assert.equal(patched.status, 200);
  assert.equal(patched.body.topic, 'Shipped');
  assert.equal(patched.body.name, 'Launch');
  const del = await api(server, 'DELETE', `/api/v1/rooms/${created.id}`, { token: owner.token });
  assert.equal(del.status, 204);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${created.id}`, { token: owner.token })).status, 404);
});

test('room input is validated', async () => {
  const u = await register(server, 'Validator');
  for (const body of [
    { kind: 'group' },
    { name: '', kind: 'group' },
    { name: 'x'.repeat(101), kind: 'group' },
    { name: 'A', kind: 'castle' },
    { name: 'A', kind: 'group', owner: 'me' },
    { name: 'A', kind: 'group', members: ['does-not-exist'] },
  ]) {
    const r = await api(server, 'POST', '/api/v1/rooms', { token: u.token, body });
    assert.equal(r.status, 400, JSON.stringify(body));
  }
  assert.equal((await api(server, 'GET', '/api/v1/rooms?limit=0', { token: u.token })).status, 400);
  assert.equal((await api(server, 'GET', '/api/v1/rooms')).status, 401);
});

test('non-members get 404 for a room, exactly like a missing room', async () => {
  const owner = await register(server, 'Private');
  const stranger = await register(server, 'Stranger');
  const r = await room(owner);
  for (const [method, path, body] of [
    ['GET', `/api/v1/rooms/${r.id}`],
    ['PATCH', `/api/v1/rooms/${r.id}`, { name: 'Mine now' }],
    ['DELETE', `/api/v1/rooms/${r.id}`],
    ['GET', `/api/v1/rooms/${r.id}/members`],
    ['POST', `/api/v1/rooms/${r.id}/members`, { user_id: stranger.user.id }],
    ['POST', `/api/v1/rooms/${r.id}/invites`, {}],
  ]) {
    const res = await api(server, method, path, { token: stranger.token, body });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(res.body.error.code, 'not_found');
    const missing = await api(server, method, path.replace(r.id, '0'.repeat(32)), { token: stranger.token, body });
    assert.deepEqual(missing.body, res.body);
  }
  const list = await api(server, 'GET', '/api/v1/rooms', { token: stranger.token });
  assert.equal(list.body.rooms.length, 0);
});

test('viewers and members cannot do admin things', async () => {
  const owner = await register(server, 'Boss');
  const viewer = await register(server, 'Viewer');
  const member = await register(server, 'Member');
  const extra = await register(server, 'Extra');
  const r = await room(owner);
  assert.equal((await addMember(owner, r.id, viewer, 'viewer')).status, 201);
  assert.equal((await addMember(owner, r.id, member, 'member')).status, 201);
  for (const actor of [viewer, member]) {
    const attempts = [
      api(server, 'PATCH', `/api/v1/rooms/${r.id}`, { token: actor.token, body: { name: 'x' } }),
      api(server, 'DELETE', `/api/v1/rooms/${r.id}`, { token: actor.token }),
      addMember(actor, r.id, extra, 'viewer'),
      api(server, 'POST', `/api/v1/rooms/${r.id}/invites`, { token: actor.token, body: {} }),
      api(server, 'PATCH', `/api/v1/rooms/${r.id}/members/${owner.user.id}`, { token: actor.token, body: { role: 'viewer' } }),
      api(server, 'DELETE', `/api/v1/rooms/${r.id}/members/${owner.user.id}`, { token: actor.token }),
    ];
    for (const res of await Promise.all(attempts)) {
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'forbidden');
    }
  }
  // Viewers can still read.
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}/members`, { token: viewer.token })).body.members.length, 3);
});

test('admins manage members below them; only owners touch admins and owners', async () => {
  const owner = await register(server, 'Owner2');
  const admin = await register(server, 'Admin');
  const m = await register(server, 'M');
  const r = await room(owner);
  await addMember(owner, r.id, admin, 'admin');
  assert.equal((await addMember(admin, r.id, m, 'admin')).status, 403);
  assert.equal((await addMember(admin, r.id, m, 'member')).status, 201);
  assert.equal((await addMember(admin, r.id, m, 'member')).status, 409);
  const toViewer = await api(server, 'PATCH', `/api/v1/rooms/${r.id}/members/${m.user.id}`, { token: admin.token, body: { role: 'viewer' } });
  assert.equal(toViewer.status, 200);
  assert.equal(toViewer.body.role, 'viewer');
  const demoteOwner = await api(server, 'PATCH', `/api/v1/rooms/${r.id}/members/${owner.user.id}`, { token: admin.token, body: { role: 'member' } });
  assert.equal(demoteOwner.status, 403);
  const badRole = await api(server, 'PATCH', `/api/v1/rooms/${r.id}/members/${m.user.id}`, { token: admin.token, body: { role: 'emperor' } });
  assert.equal(badRole.status, 400);
  const kick = await api(server, 'DELETE', `/api/v1/rooms/${r.id}/members/${m.user.id}`, { token: admin.token });
  assert.equal(kick.status, 204);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}`, { token: m.token })).status, 404);
});

test('the last owner can be neither demoted nor leave; a second owner makes both possible', async () => {
  const owner = await register(server, 'Solo');
  const other = await register(server, 'Heir');
  const r = await room(owner);
  const demote = await api(server, 'PATCH', `/api/v1/rooms/${r.id}/members/${owner.user.id}`, { token: owner.token, body: { role: 'admin' } });
  assert.equal(demote.status, 409);
  assert.equal(demote.body.error.code, 'last_owner');
  const leave = await api(server, 'DELETE', `/api/v1/rooms/${r.id}/members/${owner.user.id}`, { token: owner.token });
  assert.equal(leave.status, 409);
  assert.equal(leave.body.error.code, 'last_owner');
  await addMember(owner, r.id, other, 'owner');
  const leave2 = await api(server, 'DELETE', `/api/v1/rooms/${r.id}/members/${owner.user.id}`, { token: owner.token });
  assert.equal(leave2.status, 204);
  const members = await api(server, 'GET', `/api/v1/rooms/${r.id}/members`, { token: other.token });
  assert.deepEqual(members.body.members.map((x) => [x.user_id, x.role]), [[other.user.id, 'owner']]);
});

test('members can leave on their own', async () => {
  const owner = await register(server, 'Host');
  const guest = await register(server, 'Guest');
  const r = await room(owner);
  await addMember(owner, r.id, guest, 'viewer');
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${r.id}/members/${guest.user.id}`, { token: guest.token })).status, 204);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}`, { token: guest.token })).status, 404);
});

test('invites: accept, max uses, role limits', async () => {
  const owner = await register(server, 'Inviter');
  const [a, b, c] = await Promise.all([register(server, 'A'), register(server, 'B'), register(server, 'C')]);
  const r = await room(owner);
  const inv = await api(server, 'POST', `/api/v1/rooms/${r.id}/invites`, { token: owner.token, body: { role: 'viewer', max_uses: 2, expires_in: 3600 } });
  assert.equal(inv.status, 201);
  assert.equal(inv.body.role, 'viewer');
  const accA = await api(server, 'POST', `/api/v1/invites/${inv.body.code}/accept`, { token: a.token });
  assert.equal(accA.status, 201);
  assert.equal(accA.body.role, 'viewer');
  // Accepting again is harmless and uses nothing.
  assert.equal((await api(server, 'POST', `/api/v1/invites/${inv.body.code}/accept`, { token: a.token })).status, 200);
  assert.equal((await api(server, 'POST', `/api/v1/invites/${inv.body.code}/accept`, { token: b.token })).status, 201);
  const third = await api(server, 'POST', `/api/v1/invites/${inv.body.code}/accept`, { token: c.token });
  assert.equal(third.status, 410);
  assert.equal(third.body.error.code, 'invite_used_up');
  assert.equal((await api(server, 'POST', '/api/v1/invites/nonexistent/accept', { token: c.token })).status, 404);
  const asOwner = await api(server, 'POST', `/api/v1/rooms/${r.id}/invites`, { token: owner.token, body: { role: 'owner' } });
  assert.equal(asOwner.status, 403);
  const tooLong = await api(server, 'POST', `/api/v1/rooms/${r.id}/invites`, { token: owner.token, body: { expires_in: 10 ** 9 } });
  assert.equal(tooLong.status, 400);
});

test('direct rooms have exactly two people and are reused', async () => {
  const a = await register(server, 'DmA');
  const b = await register(server, 'DmB');
  const c = await register(server, 'DmC');
  const dm = await room(a, { kind: 'direct', members: [b.user.id] });
  assert.equal(dm.kind, 'direct');
  assert.equal(dm.member_count, 2);
  const again = await api(server, 'POST', '/api/v1/rooms', { token: b.token, body: { kind: 'direct', members: [a.user.id] } });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, dm.id);
  // Each person sees the room named for the other one.
  assert.equal(dm.name, 'DmB');
  assert.equal(again.body.name, 'DmA');
  const listed = await api(server, 'GET', '/api/v1/rooms', { token: b.token });
  assert.equal(listed.body.rooms.find((x) => x.id === dm.id)?.name, 'DmA');
  const three = await api(server, 'POST', '/api/v1/rooms', { token: a.token, body: { kind: 'direct', members: [b.user.id, c.user.id] } });
  assert.equal(three.status, 400);
  const add = await addMember(a, dm.id, c, 'member');
  assert.equal(add.status, 409);
  assert.equal(add.body.error.code, 'direct_room');
  const invite = await api(server, 'POST', `/api/v1/rooms/${dm.id}/invites`, { token: a.token, body: {} });
  assert.equal(invite.status, 409);
});

test('SQL-injection strings in room names are stored verbatim', async () => {
  const u = await register(server, 'Bobby');
  const name = "x'); DELETE FROM rooms; --";
  const r = await room(u, { name, kind: 'group', topic: '"; DROP TABLE memberships; --' });
  const got = await api(server, 'GET', `/api/v1/rooms/${r.id}`, { token: u.token });
  assert.equal(got.body.name, name);
  assert.equal(got.body.topic, '"; DROP TABLE memberships; --');
  assert.equal((await api(server, 'GET', '/api/v1/rooms', { token: u.token })).body.rooms.length, 1);
});

test('admins list and revoke invites; a revoked code cannot be accepted; members cannot do either', async () => {
  const owner = await register(server, 'Host');
  const admin = await register(server, 'Admin');
  const member = await register(server, 'Member');
  const [guest, stranger] = await Promise.all([register(server, 'Guest'), register(server, 'Stranger')]);
  const r = await room(owner);
  await addMember(owner, r.id, admin, 'admin');
  await addMember(owner, r.id, member, 'member');
  const make = async (body) => (await api(server, 'POST', `/api/v1/rooms/${r.id}/invites`, { token: owner.token, body })).body;
  const a = await make({ role: 'member', max_uses: 3, expires_in: 3600 });
  const b = await make({ role: 'viewer' });
  const used = await make({ role: 'viewer', max_uses: 1 });
  assert.equal((await api(server, 'POST', `/api/v1/invites/${used.code}/accept`, { token: guest.token })).status, 201);

  const listed = await api(server, 'GET', `/api/v1/rooms/${r.id}/invites`, { token: admin.token });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.invites.map((i) => i.code).sort(), [a.code, b.code].sort(), 'only invites that can still be used');
  const ia = listed.body.invites.find((i) => i.code === a.code);
  assert.deepEqual({ ...ia, created_at: 0 }, {
    code: a.code, room_id: r.id, role: 'member', max_uses: 3, uses: 0, expires_at: a.expires_at, created_by: owner.user.id, created_at: 0,
  });
  const paged = await api(server, 'GET', `/api/v1/rooms/${r.id}/invites?limit=1`, { token: owner.token });
  assert.equal(paged.body.invites.length, 1);
  const rest = await api(server, 'GET', `/api/v1/rooms/${r.id}/invites?limit=1&cursor=${paged.body.next_cursor}`, { token: owner.token });
  assert.equal(rest.body.invites.length, 1);
  assert.notEqual(rest.body.invites[0].code, paged.body.invites[0].code);

  assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}/invites`, { token: member.token })).status, 403);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}/invites`, { token: stranger.token })).status, 404);
  assert.equal((await api(server, 'DELETE', `/api/v1/invites/${a.code}`, { token: member.token })).status, 403);
  assert.equal((await api(server, 'DELETE', `/api/v1/invites/${a.code}`, { token: stranger.token })).status, 404);
  assert.equal((await api(server, 'DELETE', `/api/v1/invites/${a.code}`, { token: admin.token })).status, 204);
  const accept = await api(server, 'POST', `/api/v1/invites/${a.code}/accept`, { token: stranger.token });
  assert.equal(accept.status, 404);
  assert.equal((await api(server, 'DELETE', `/api/v1/invites/${a.code}`, { token: admin.token })).status, 404);
  assert.deepEqual((await api(server, 'GET', `/api/v1/rooms/${r.id}/invites`, { token: owner.token })).body.invites.map((i) => i.code), [b.code]);
  // An admin does not see an owner's admin invite: its code would let them make admins.
  const adminInvite = await make({ role: 'admin' });
  const byAdmin = (await api(server, 'GET', `/api/v1/rooms/${r.id}/invites`, { token: admin.token })).body.invites.map((i) => i.code);
  const byOwner = (await api(server, 'GET', `/api/v1/rooms/${r.id}/invites`, { token: owner.token })).body.invites.map((i) => i.code);
  assert.ok(!byAdmin.includes(adminInvite.code) && byOwner.includes(adminInvite.code));
  assert.equal((await api(server, 'DELETE', `/api/v1/invites/${adminInvite.code}`, { token: owner.token })).status, 204);
  // Who joined with a revoked invite stays.
  assert.equal((await api(server, 'DELETE', `/api/v1/invites/${used.code}`, { token: owner.token })).status, 204);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}`, { token: guest.token })).status, 200);
});

test('two owners demoting each other at the same moment leave the room with an owner', async () => {
  for (let round = 0; round < 6; round += 1) {
    const a = await register(server, 'OwnerA');
    const b = await register(server, 'OwnerB');
    const r = await room(a);
    await addMember(a, r.id, b, 'owner');
    const [ab, ba] = await Promise.all([
      api(server, 'PATCH', `/api/v1/rooms/${r.id}/members/${b.user.id}`, { token: a.token, body: { role: 'admin' } }),
      api(server, 'PATCH', `/api/v1/rooms/${r.id}/members/${a.user.id}`, { token: b.token, body: { role: 'admin' } }),
    ]);
    const members = (await api(server, 'GET', `/api/v1/rooms/${r.id}/members`, { token: a.token })).body.members;
    assert.equal(members.filter((m) => m.role === 'owner').length, 1, `round ${round}: ${ab.status} ${ba.status}`);
    const statuses = [ab.status, ba.status].sort();
    assert.equal(statuses[0], 200, `round ${round}: ${statuses}`);
    assert.ok([403, 409].includes(statuses[1]), `round ${round}: ${statuses}`);
  }
});

test('two owners leaving at the same moment leave the room with an owner', async () => {
  for (let round = 0; round < 6; round += 1) {
    const a = await register(server, 'LeaverA');
    const b = await register(server, 'LeaverB');
    const r = await room(a);
    await addMember(a, r.id, b, 'owner');
    const results = await Promise.all([a, b].map((u) => api(server, 'DELETE', `/api/v1/rooms/${r.id}/members/${u.user.id}`, { token: u.token })));
    const left = results.filter((x) => x.status === 204).length;
    assert.equal(left, 1, `round ${round}: ${results.map((x) => x.status)}`);
    const refused = results.find((x) => x.status !== 204);
    assert.equal(refused.body.error.code, 'last_owner');
  }
});

test('deleting a room takes it away at once: members, invites, sockets and files', async () => {
  const owner = await register(server, 'Deleter');
  const member = await register(server, 'Witness');
  const r = await room(owner);
  await addMember(owner, r.id, member, 'member');
  const invite = (await api(server, 'POST', `/api/v1/rooms/${r.id}/invites`, { token: owner.token, body: {} })).body;
  const sock = await join(server, r.id, member.token);
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${r.id}`, { token: member.token })).status, 403);
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${r.id}`, { token: owner.token })).status, 204);
  assert.equal((await sock.closedPromise).code, 4004);
  for (const u of [owner, member]) {
    assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}`, { token: u.token })).status, 404);
    assert.equal((await api(server, 'GET', `/api/v1/rooms/${r.id}/messages`, { token: u.token })).status, 404);
  }
  const stranger = await register(server, 'Late');
  assert.equal((await api(server, 'POST', `/api/v1/invites/${invite.code}/accept`, { token: stranger.token })).status, 404);
});
