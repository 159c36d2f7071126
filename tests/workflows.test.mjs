// Collaboration workflows over real HTTP and the room socket: named actions on
// the room state, versions and If-Match, collaboration_updated events, the
// permission matrix as the catalogue lists it, and the audit log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, register, startServer } from './harness.mjs';
import { join } from './ws.mjs';

const server = await startServer();

async function setup() {
  const owner = await register(server, 'Owner');
  const member = await register(server, 'Member');
  const viewer = await register(server, 'Viewer');
  const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Plans', kind: 'project' } });
  const roomId = r.body.id;
  for (const [u, role] of [[member, 'member'], [viewer, 'viewer']]) {
    const added = await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: owner.token, body: { user_id: u.user.id, role } });
    assert.equal(added.status, 201);
  }
  return { owner, member, viewer, roomId };
}

const act = (roomId, who, name, args, headers = {}) =>
  api(server, 'POST', `/api/v1/rooms/${roomId}/actions/${name}`, { token: who.token, body: args, headers });

test('an activity through its life-cycle: versions, changes on the socket, refused transitions', async () => {
  const { member, owner, roomId } = await setup();
  const sock = await join(server, roomId, owner.token);
  const proposed = await act(roomId, member, 'propose_activity', { title: 'Launch', due_at: 1900000000 });
  assert.equal(proposed.status, 200, JSON.stringify(proposed.body));
  assert.equal(proposed.body.version, 1);
  const event = await sock.next((f) => f.type === 'event' && f.event === 'collaboration_updated');
  assert.equal(event.data.version, 1);
  assert.ok(event.seq > 0);
  assert.equal(event.data.changes[0].path, 'activities.a1');
  for (const [name, args, version] of [
    ['schedule_activity', { id: 'a1', at: 1890000000 }, 2],
    ['start_activity', { id: 'a1' }, 3],
    ['complete_activity', { id: 'a1' }, 4],
  ]) {
    const r = await act(roomId, member, name, args);
    assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.version, version);
    assert.ok(r.body.changes.some((c) => c.path === 'activities.a1.status'));
  }
  const back = await act(roomId, member, 'start_activity', { id: 'a1' });
  assert.equal(back.status, 409);
  assert.equal(back.body.error.code, 'invalid_transition');
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: member.token });
  assert.equal(state.status, 200);
  assert.equal(state.body.version, 4);
  assert.equal(state.body.activities.a1.status, 'done');
  assert.equal(state.body.activities.a1.created_by, member.user.id);
  await sock.count('event', 4);
  const versions = sock.frames.filter((f) => f.event === 'collaboration_updated').map((f) => f.data.version);
  assert.deepEqual(versions, [1, 2, 3, 4], 'one event per change, none for the refused one');
  sock.close();
});

test('If-Match: a stale version is 412 and changes nothing', async () => {
  const { member, roomId } = await setup();
  await act(roomId, member, 'propose_activity', { title: 'A' });
  const stale = await act(roomId, member, 'propose_activity', { title: 'B' }, { 'if-match': '0' });
  assert.equal(stale.status, 412);
  assert.equal(stale.body.error.code, 'version_conflict');
  const fresh = await act(roomId, member, 'propose_activity', { title: 'B' }, { 'if-match': '"1"' });
  assert.equal(fresh.status, 200);
  assert.equal(fresh.body.version, 2);
});

test('roles: the catalogue per role, viewers and members refused what is above them, bad arguments refused', async () => {
  const { owner, member, viewer, roomId } = await setup();
  const names = async (who) => (await api(server, 'GET', `/api/v1/rooms/${roomId}/actions`, { token: who.token })).body.actions;
  assert.deepEqual(await names(viewer), []);
  const forMember = await names(member);
  assert.equal(forMember.find((a) => a.name === 'propose_activity').mode, 'run');
  assert.equal(forMember.find((a) => a.name === 'archive_room').mode, 'approval');
  assert.equal(forMember.find((a) => a.name === 'cancel_activity'), undefined);
  assert.equal((await names(owner)).length, 15);
  assert.ok((await names(owner)).every((a) => a.mode === 'run'));
  assert.equal((await act(roomId, viewer, 'propose_activity', { title: 'x' })).status, 403);
  await act(roomId, member, 'propose_activity', { title: 'x' });
  assert.equal((await act(roomId, member, 'cancel_activity', { id: 'a1' })).status, 403);
  assert.equal((await act(roomId, owner, 'cancel_activity', { id: 'a1' })).status, 200);
  const approval = await act(roomId, member, 'archive_room', {});
  assert.equal(approval.status, 501, 'approvals are visibly not built yet');
  assert.equal((await act(roomId, member, 'no_such_action', {})).status, 404);
  assert.equal((await act(roomId, member, 'propose_activity', { title: 'x', sudo: true })).status, 400);
  const stranger = await register(server, 'Stranger');
  assert.equal((await act(roomId, stranger, 'propose_activity', { title: 'x' })).status, 404);
  const sent = await act(roomId, member, 'send_message', { body: 'from an action' });
  assert.equal(sent.status, 201);
  const msg = await api(server, 'GET', `/api/v1/rooms/${roomId}/messages/${sent.body.message_id}`, { token: member.token });
  assert.equal(msg.body.body, 'from an action');
});

test('audit: every state change has exactly one entry; admins read it, others cannot; NDJSON export', async () => {
  const { owner, member, roomId } = await setup();
  await act(roomId, member, 'propose_activity', { title: 'one' });
  await act(roomId, member, 'propose_activity', { title: 'two' });
  await act(roomId, member, 'start_activity', { id: 'a1' });
  await act(roomId, member, 'complete_activity', { id: 'a2' }); // refused: proposed → done
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: owner.token });
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${roomId}/audit`, { token: member.token })).status, 403);
  const log = await api(server, 'GET', `/api/v1/rooms/${roomId}/audit`, { token: owner.token });
  assert.equal(log.status, 200);
  assert.equal(log.body.entries.length, 4);
  const changed = log.body.entries.filter((e) => e.result.status === 200 && e.result.outcome.changes.length > 0);
  assert.equal(changed.length, state.body.version, 'one entry per version step');
  assert.deepEqual(changed.map((e) => e.result.outcome.version).sort(), [1, 2, 3]);
  const refused = log.body.entries.find((e) => e.action === 'complete_activity');
  assert.equal(refused.result.status, 409);
  assert.equal(refused.actor, member.user.id);
  assert.equal(refused.actor_kind, 'user');
  assert.deepEqual(refused.arguments, { id: 'a2' });
  assert.ok(refused.request_id);
  const filtered = await api(server, 'GET', `/api/v1/rooms/${roomId}/audit?action=propose_activity&limit=1`, { token: owner.token });
  assert.equal(filtered.body.entries.length, 1);
  assert.ok(filtered.body.next_cursor);
  const page2 = await api(server, 'GET', `/api/v1/rooms/${roomId}/audit?action=propose_activity&cursor=${filtered.body.next_cursor}`, { token: owner.token });
  assert.equal(page2.body.entries.length, 1);
  assert.notEqual(page2.body.entries[0].id, filtered.body.entries[0].id);
  const res = await fetch(`${server.url}/api/v1/rooms/${roomId}/audit/export`, { headers: { authorization: `Bearer ${owner.token}` } });
  assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
  const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
});
