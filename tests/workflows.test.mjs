// Collaboration workflows over real HTTP and the room socket: named actions on
// the room state, versions and If-Match, collaboration_updated events, the
// permission matrix for every action and role, approvals, rules and the audit
// log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, randomIp, register, startServer } from './harness.mjs';
import { join } from './ws.mjs';
import { rawDocSocket, sleep, textOf, updateMessage, Y } from './ydoc.mjs';

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
  assert.equal(approval.status, 202, 'a protected action above the role becomes a request');
  assert.equal(approval.body.approval.status, 'pending');
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

const audit = async (roomId, owner, query = '') =>
  (await api(server, 'GET', `/api/v1/rooms/${roomId}/audit?limit=200${query}`, { token: owner.token })).body.entries;

async function uploadSmallFile(who, roomId, name = 'notes.txt') {
  const b64 = (v) => Buffer.from(v).toString('base64');
  const res = await fetch(`${server.url}/api/v1/uploads`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${who.token}`, 'cf-connecting-ip': randomIp(), 'tus-resumable': '1.0.0',
      'upload-length': '5', 'upload-metadata': `filename ${b64(name)},room_id ${b64(roomId)}`,
      'content-type': 'application/offset+octet-stream',
    },
    body: 'hello',
  });
  assert.equal(res.status, 201);
  return res.headers.get('location').split('/').pop();
}

test('an archived room is read-only for everyone: chat socket, messages, actions, documents, uploads; reading still works', async () => {
  const { owner, member, roomId } = await setup();
  const sock = await join(server, roomId, member.token);
  sock.send({ type: 'send', client_msg_id: 'before', body: 'said before the archive' });
  await sock.next((f) => f.type === 'ack');
  const written = (text) => { const d = new Y.Doc(); d.getText('t').insert(0, text); return Y.encodeStateAsUpdate(d); };
  const postUpdate = (update) => fetch(`${server.url}/api/v1/rooms/${roomId}/docs/notes/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${member.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
    body: update,
  });
  assert.equal((await postUpdate(written('kept'))).status, 200);
  const doc = await rawDocSocket(server, roomId, 'notes', member.token);

  const archived = await act(roomId, owner, 'archive_room', {});
  assert.equal(archived.status, 200, JSON.stringify(archived.body));
  const isArchived = (r, what) => {
    assert.equal(r.status, 409, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'room_archived', what);
  };
  for (const [frame, what] of [
    [{ type: 'send', client_msg_id: 'after', body: 'said after' }, 'send'],
    [{ type: 'edit', id: 1, body: 'changed' }, 'edit'],
    [{ type: 'react', id: 1, emoji: '👍' }, 'react'],
    [{ type: 'typing' }, 'typing'],
  ]) {
    const from = sock.frames.length;
    sock.send(frame);
    const refused = await sock.next((f) => f.type === 'error', 5000, from);
    assert.equal(refused.code, 'room_archived', what);
  }
  isArchived(await api(server, 'POST', `/api/v1/rooms/${roomId}/messages`, { token: owner.token, body: { body: 'over REST' }, headers: { 'idempotency-key': 'archived-1' } }), 'REST message');
  isArchived(await act(roomId, owner, 'send_message', { body: 'as an action' }), 'send_message');
  isArchived(await act(roomId, member, 'propose_activity', { title: 'x' }), 'propose_activity');
  const update = await postUpdate(written('lost'));
  assert.equal(update.status, 409);
  assert.equal((await update.json()).error.code, 'room_archived');
  isArchived(await api(server, 'POST', `/api/v1/rooms/${roomId}/docs`, { token: owner.token, body: { name: 'new' } }), 'new document');
  isArchived(await api(server, 'DELETE', `/api/v1/rooms/${roomId}/docs/notes`, { token: owner.token }), 'deleting a document');
  // A document socket opened before the archive no longer writes.
  doc.ws.send(updateMessage(written('through the socket')));
  const b64 = (v) => Buffer.from(v).toString('base64');
  const upload = await fetch(`${server.url}/api/v1/uploads`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp(), 'tus-resumable': '1.0.0',
      'upload-length': '5', 'upload-metadata': `filename ${b64('late.txt')},room_id ${b64(roomId)}`,
    },
  });
  assert.equal(upload.status, 409);
  assert.equal((await upload.json()).error.code, 'room_archived');
  await sleep(300);

  const messages = await api(server, 'GET', `/api/v1/rooms/${roomId}/messages`, { token: member.token });
  assert.equal(messages.status, 200);
  assert.deepEqual(messages.body.messages.map((m) => [m.body, m.edited_at, Object.keys(m.reactions)]), [['said before the archive', null, []]]);
  assert.equal(await textOf(server, roomId, 'notes', member.token), 'kept');
  const files = await api(server, 'GET', `/api/v1/rooms/${roomId}/files`, { token: owner.token });
  assert.deepEqual(files.body.files, []);
  doc.ws.close();
  sock.close();
});

test('the permission matrix: every action by every role over HTTP', async () => {
  const first = await setup();
  const catalogue = (await api(server, 'GET', `/api/v1/rooms/${first.roomId}/actions`, { token: first.owner.token })).body;
  const rank = { viewer: 0, member: 1, admin: 2, owner: 3 };
  for (const role of ['viewer', 'member', 'admin', 'owner']) {
    const { owner, roomId } = await setup();
    const actor = role === 'owner' ? owner : await register(server, role);
    if (role !== 'owner') {
      await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: owner.token, body: { user_id: actor.user.id, role } });
    }
    await act(roomId, owner, 'propose_activity', { title: 'seed' });
    const target = await register(server, 'Target');
    const file = await uploadSmallFile(owner, roomId);
    const args = {
      propose_activity: { title: 't' }, update_activity: { id: 'a1', title: 'u' }, vote_activity: { id: 'a1' },
      schedule_activity: { id: 'a1', at: 1900000000 }, start_activity: { id: 'a1' }, complete_activity: { id: 'a1' },
      cancel_activity: { id: 'a1' }, assign: { id: 'a1', user_ids: [owner.user.id] }, send_message: { body: 'hi' },
      add_member: { user_id: target.user.id, role: 'viewer' }, remove_member: { user_id: target.user.id },
      set_rule: { rule: { trigger: 'file_added', effect: { action: 'send_message', args: { body: 'x' } } } },
      delete_rule: { id: 'r1' }, delete_file: { id: file }, archive_room: {},
    };
    assert.deepEqual(Object.keys(args).sort(), catalogue.actions.map((a) => a.name).sort());
    for (const spec of catalogue.actions) {
      const r = await act(roomId, actor, spec.name, args[spec.name]);
      const allowed = rank[role] >= rank[spec.min_role];
      const why = `${spec.name} by ${role}: ${r.status} ${JSON.stringify(r.body)}`;
      if (allowed) assert.ok(![403, 202].includes(r.status) && r.status < 500, why);
      else if (spec.protected && role !== 'viewer') assert.equal(r.status, 202, why);
      else assert.equal(r.status, 403, why);
    }
  }
});

test('approval: a member asks to remove someone, the requester cannot decide, another owner approves, it runs and is audited', async () => {
  const { owner, member, viewer, roomId } = await setup();
  const sock = await join(server, roomId, owner.token);
  const viewerSock = await join(server, roomId, viewer.token);
  const asked = await act(roomId, member, 'remove_member', { user_id: viewer.user.id });
  assert.equal(asked.status, 202, JSON.stringify(asked.body));
  const aid = asked.body.approval.id;
  const requested = await sock.next((f) => f.event === 'approval_requested');
  assert.equal(requested.data.approval.id, aid);
  assert.equal(requested.data.approval.requested_by, member.user.id);
  const pending = await api(server, 'GET', `/api/v1/rooms/${roomId}/approvals?status=pending`, { token: member.token });
  assert.deepEqual(pending.body.approvals.map((a) => a.id), [aid]);
  const decide = (who, verb) => api(server, 'POST', `/api/v1/rooms/${roomId}/approvals/${aid}/${verb}`, { token: who.token });
  assert.equal((await decide(member, 'approve')).status, 403, 'a member cannot decide');
  // Even as an owner, the requester cannot approve their own request.
  await api(server, 'PATCH', `/api/v1/rooms/${roomId}/members/${member.user.id}`, { token: owner.token, body: { role: 'owner' } });
  const self = await decide(member, 'approve');
  assert.equal(self.status, 403);
  assert.match(self.body.error.message, /requested/);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${roomId}/members`, { token: owner.token })).body.members.length, 3, 'nothing ran');
  const approved = await decide(owner, 'approve');
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.equal(approved.body.approval.status, 'approved');
  assert.equal(approved.body.approval.resolved_by, owner.user.id);
  assert.equal(approved.body.approval.result.status, 200);
  assert.equal((await viewerSock.closedPromise).code, 4003, 'the removed member is disconnected');
  const members = (await api(server, 'GET', `/api/v1/rooms/${roomId}/members`, { token: owner.token })).body.members;
  assert.ok(!members.some((m) => m.user_id === viewer.user.id));
  const resolved = await sock.next((f) => f.event === 'approval_resolved');
  assert.equal(resolved.data.approval.status, 'approved');
  assert.equal((await decide(owner, 'reject')).body.error.code, 'approval_closed');
  const entries = (await audit(roomId, owner, '&action=remove_member')).reverse();
  assert.deepEqual(entries.map((e) => [e.actor, e.result.status]), [
    [member.user.id, 202], [member.user.id, 403], [member.user.id, 403], [owner.user.id, 200], [owner.user.id, 409],
  ]);
  assert.equal(entries[3].result.approval, aid);
  assert.equal(entries[3].result.requested_by, member.user.id);
  assert.equal(entries[3].result.decision, 'approved');
  sock.close();
});

test('approval: a rejected request changes nothing; an approved delete_file removes the file', async () => {
  const { owner, member, roomId } = await setup();
  const archive = await act(roomId, member, 'archive_room', {});
  const rejected = await api(server, 'POST', `/api/v1/rooms/${roomId}/approvals/${archive.body.approval.id}/reject`, { token: owner.token });
  assert.equal(rejected.body.approval.status, 'rejected');
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: member.token });
  assert.equal(state.body.settings.archived, false);
  const file = await uploadSmallFile(owner, roomId);
  const other = await setup();
  const foreign = await act(other.roomId, other.owner, 'delete_file', { id: file });
  assert.equal(foreign.status, 404, 'a file of another room is not found');
  const asked = await act(roomId, member, 'delete_file', { id: file });
  assert.equal(asked.status, 202);
  const approved = await api(server, 'POST', `/api/v1/rooms/${roomId}/approvals/${asked.body.approval.id}/approve`, { token: owner.token });
  assert.equal(approved.body.approval.result.status, 200, JSON.stringify(approved.body));
  assert.equal((await api(server, 'GET', `/api/v1/files/${file}`, { token: owner.token })).status, 404);
});

const rule = (roomId, who, body) => api(server, 'POST', `/api/v1/rooms/${roomId}/rules`, { token: who.token, body });

test('rules: admins only; welcome on member_joined, a follow-up on a matching message, file_added; each effect audited as the rule', async () => {
  const { owner, member, roomId } = await setup();
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${roomId}/rules`, { token: member.token })).status, 403);
  assert.equal((await rule(roomId, member, { trigger: 'member_joined', effect: { action: 'send_message', args: { body: 'x' } } })).status, 403);
  const welcome = await rule(roomId, owner, {
    name: 'welcome', trigger: 'member_joined',
    effect: { action: 'send_message', args: { body: 'Welcome {{event.data.user_id}} as {{event.data.role}}' } },
  });
  assert.equal(welcome.status, 200, JSON.stringify(welcome.body));
  assert.equal(welcome.body.rule.id, 'r1');
  await rule(roomId, owner, {
    name: 'urgent', trigger: 'message_posted',
    condition: { in: ['urgent', { var: 'event.data.message.body' }] },
    effect: { action: 'propose_activity', args: { title: 'Follow up: {{event.data.message.body}}' } },
  });
  await rule(roomId, owner, {
    trigger: 'file_added', condition: { '==': [{ var: 'event.data.file.name' }, 'notes.txt'] },
    effect: { action: 'send_message', args: { body: 'New file {{event.data.file.name}}' } },
  });
  const listed = await api(server, 'GET', `/api/v1/rooms/${roomId}/rules`, { token: owner.token });
  assert.deepEqual(listed.body.rules.map((r) => r.id), ['r1', 'r2', 'r3']);

  const sock = await join(server, roomId, member.token);
  const newcomer = await register(server, 'Newcomer');
  await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: owner.token, body: { user_id: newcomer.user.id, role: 'member' } });
  const hello = await sock.next((f) => f.type === 'message' && f.message.body.startsWith('Welcome'));
  assert.equal(hello.message.body, `Welcome ${newcomer.user.id} as member`);
  assert.equal(hello.message.author, owner.user.id, 'the effect runs as the rule author');

  sock.send({ type: 'send', client_msg_id: 'c1', body: 'calm day' });
  sock.send({ type: 'send', client_msg_id: 'c2', body: 'urgent: the roof leaks' });
  const updated = await sock.next((f) => f.event === 'collaboration_updated');
  assert.equal(updated.data.changes[0].new.title, 'Follow up: urgent: the roof leaks');
  await uploadSmallFile(member, roomId);
  await sock.next((f) => f.type === 'message' && f.message.body === 'New file notes.txt');
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: member.token });
  assert.equal(Object.keys(state.body.activities).length, 1, 'the calm message matched nothing');
  assert.equal(state.body.rules, undefined, 'rules are not in the state members read');

  const byRules = (await audit(roomId, owner)).filter((e) => e.actor_kind === 'rule');
  assert.deepEqual(byRules.map((e) => [e.result.rule, e.action, e.result.status]).sort(), [
    ['r1', 'send_message', 201], ['r2', 'propose_activity', 200], ['r3', 'send_message', 201],
  ]);
  assert.ok(byRules.every((e) => e.actor === owner.user.id));
  sock.close();
});

test('rules: a chain that would loop stops at the bound, and the stop is audited', async () => {
  const { owner, member, roomId } = await setup();
  // Every change of an activity changes it again: without a bound, forever.
  const loop = await rule(roomId, owner, {
    name: 'again', trigger: 'activity_changed',
    effect: { action: 'update_activity', args: { id: '{{event.data.activity.id}}', title: '{{event.data.activity.title}}!' } },
  });
  assert.equal(loop.status, 200, JSON.stringify(loop.body));
  const proposed = await act(roomId, member, 'propose_activity', { title: 'x' });
  assert.equal(proposed.status, 200);
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: owner.token });
  assert.equal(state.body.activities.a1.title, 'x' + '!'.repeat(10), 'ten effects, then the bound');
  assert.equal(state.body.version, 2 + 10, 'the rule, the proposal and ten effects');
  const entries = await audit(roomId, owner);
  const stopped = entries.filter((e) => e.result.outcome?.error?.code === 'rule_chain_limit');
  assert.equal(stopped.length, 1);
  assert.equal(stopped[0].actor_kind, 'rule');
  assert.equal(entries.filter((e) => e.actor_kind === 'rule' && e.result.status === 200).length, 10);
  // The room still works, and deleting the rule ends it.
  assert.equal((await api(server, 'DELETE', `/api/v1/rooms/${roomId}/rules/r1`, { token: owner.token })).status, 200);
  await act(roomId, member, 'update_activity', { id: 'a1', title: 'calm' });
  const after = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: owner.token });
  assert.equal(after.body.activities.a1.title, 'calm');
});

test('rules: malicious or broken rules are refused at save time and change nothing; at most 50', async () => {
  const { owner, roomId } = await setup();
  let deep = true;
  for (let i = 0; i < 20; i++) deep = { '!': [deep] };
  const effect = { action: 'send_message', args: { body: 'x' } };
  for (const [body, why] of [
    [{ trigger: 'message_posted', condition: deep, effect }, /nests/],
    [{ trigger: 'message_posted', condition: { in: ['a', 'b'.repeat(5000)] }, effect }, /bytes/],
    [{ trigger: 'message_posted', condition: { exec: ['rm -rf /'] }, effect }, /not an operator/],
    [{ trigger: 'message_posted', effect: { action: 'set_rule', args: { rule: {} } } }, /cannot be a rule/],
    [{ trigger: 'message_posted', effect: { action: 'send_message', args: { body: '{{env.JWT_SECRET}}' } } }, /must name a field/],
    [{ trigger: 'on_the_moon', effect }, /not valid/],
    [{ trigger: 'message_posted', effect, sudo: true }, /not valid/],
  ]) {
    const r = await rule(roomId, owner, body);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, why);
  }
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: owner.token });
  assert.equal(state.body.version, 0, 'nothing was saved');
  for (let i = 0; i < 50; i++) assert.equal((await rule(roomId, owner, { trigger: 'file_added', effect })).status, 200);
  const tooMany = await rule(roomId, owner, { trigger: 'file_added', effect });
  assert.equal(tooMany.status, 409);
  assert.equal(tooMany.body.error.code, 'too_many_rules');
  const patched = await api(server, 'PATCH', `/api/v1/rooms/${roomId}/rules/r7`, { token: owner.token, body: { enabled: false } });
  assert.equal(patched.body.rule.enabled, false);
  assert.equal((await api(server, 'PATCH', `/api/v1/rooms/${roomId}/rules/r999`, { token: owner.token, body: { enabled: false } })).status, 404);
});

test('rules: an effect runs with its author\'s current role; a lost right is refused and audited', async () => {
  const { owner, member, roomId } = await setup();
  const admin = await register(server, 'Admin');
  await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: owner.token, body: { user_id: admin.user.id, role: 'admin' } });
  const saved = await rule(roomId, admin, {
    trigger: 'message_posted', condition: { '==': [{ var: 'event.data.message.body' }, 'cancel it'] },
    effect: { action: 'cancel_activity', args: { id: 'a1' } },
  });
  assert.equal(saved.status, 200);
  await act(roomId, member, 'propose_activity', { title: 'doomed' });
  await api(server, 'PATCH', `/api/v1/rooms/${roomId}/members/${admin.user.id}`, { token: owner.token, body: { role: 'member' } });
  await act(roomId, member, 'send_message', { body: 'cancel it' });
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: member.token });
  assert.equal(state.body.activities.a1.status, 'proposed', 'the demoted author\'s rule could not cancel');
  const refused = (await audit(roomId, owner, '&action=cancel_activity'))[0];
  assert.equal(refused.actor, admin.user.id);
  assert.equal(refused.actor_kind, 'rule');
  assert.equal(refused.result.status, 403);
  // Promoted again, the same rule works.
  await api(server, 'PATCH', `/api/v1/rooms/${roomId}/members/${admin.user.id}`, { token: owner.token, body: { role: 'admin' } });
  await act(roomId, member, 'send_message', { body: 'cancel it' });
  const after = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: member.token });
  assert.equal(after.body.activities.a1.status, 'cancelled');
});

test('audit: with rules and approvals in play, every version step has exactly one entry', async () => {
  const { owner, member, roomId } = await setup();
  await rule(roomId, owner, {
    trigger: 'activity_changed', condition: { '==': [{ var: 'event.data.activity.status' }, 'in_progress'] },
    effect: { action: 'assign', args: { id: '{{event.data.activity.id}}', user_ids: [owner.user.id] } },
  });
  await act(roomId, member, 'propose_activity', { title: 'x' });
  await act(roomId, member, 'start_activity', { id: 'a1' });
  const asked = await act(roomId, member, 'archive_room', {});
  await api(server, 'POST', `/api/v1/rooms/${roomId}/approvals/${asked.body.approval.id}/approve`, { token: owner.token });
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: owner.token });
  assert.deepEqual(state.body.activities.a1.assignees, [owner.user.id], 'the rule assigned it');
  assert.equal(state.body.settings.archived, true);
  const versions = (await audit(roomId, owner))
    .filter((e) => e.result.status === 200 && e.result.outcome?.changes?.length > 0)
    .map((e) => e.result.outcome.version)
    .sort((a, b) => a - b);
  assert.deepEqual(versions, Array.from({ length: state.body.version }, (_, i) => i + 1));
});

test('audit: refused attempts record what was refused, not the blob that was sent', async () => {
  const { owner, member, viewer, roomId } = await setup();
  const blob = 'x'.repeat(15 * 1024);
  const tries = [
    [viewer, 'propose_activity', { title: 'hi', description: blob }, 403],
    [viewer, 'no_such_action', { payload: blob }, 404],
    [viewer, 'propose_activity', { title: 'hi', [blob.slice(0, 5000)]: 1 }, 403],
    [member, 'propose_activity', { title: blob }, 400],
    [member, 'remove_member', { user_id: blob }, 400],
    [member, 'send_message', { body: 'a secret note' }, 201],
  ];
  for (const [who, name, args, status] of tries) {
    const r = await act(roomId, who, name, args);
    assert.equal(r.status, status, `${name}: ${JSON.stringify(r.body).slice(0, 300)}`);
  }
  const entries = (await audit(roomId, owner)).reverse();
  assert.equal(entries.length, tries.length);
  for (const e of entries) assert.ok(JSON.stringify(e).length < 2048, `${e.action}: ${JSON.stringify(e).length} bytes`);
  const [described, unknown, oddKey, longTitle, removal, sent] = entries;
  assert.deepEqual([described.actor, described.result.status, described.arguments.title], [viewer.user.id, 403, 'hi']);
  assert.equal(described.arguments.description.length, 200);
  assert.equal(unknown.action, 'no_such_action');
  assert.deepEqual(Object.keys(unknown.arguments), ['_dropped_bytes']);
  assert.ok(oddKey.arguments._dropped_bytes > 5000);
  assert.equal(longTitle.arguments.title.length, 200);
  assert.equal(removal.result.status, 400);
  assert.deepEqual(sent.arguments, { body: { bytes: 13 } }, 'a message body stays in chat');
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${roomId}/approvals`, { token: owner.token })).body.approvals.length, 0);
});

test('rules reach only admins and owners: live events, replay and state', async () => {
  const { owner, member, roomId } = await setup();
  const m = await join(server, roomId, member.token);
  const o = await join(server, roomId, owner.token);
  const saved = await api(server, 'POST', `/api/v1/rooms/${roomId}/rules`, {
    token: owner.token,
    body: { name: 'secret sauce', trigger: 'message_posted', condition: { in: ['launch code', { var: 'event.data.message.body' }] },
      effect: { action: 'send_message', args: { body: 'noted' } } },
  });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  await act(roomId, member, 'propose_activity', { title: 'Visible plan' });
  const seen = async (c) => {
    const events = await c.count('event', 2);
    return events.filter((f) => f.event === 'collaboration_updated');
  };
  const [ruleM, activityM] = await seen(m);
  const [ruleO, activityO] = await seen(o);
  assert.deepEqual([ruleM.seq, ruleM.data.version], [ruleO.seq, ruleO.data.version]);
  assert.deepEqual(ruleM.data.changes, [], 'the version moves, the rule stays hidden');
  assert.equal(ruleO.data.changes[0].path, 'rules.r1');
  assert.equal(ruleO.data.changes[0].new.name, 'secret sauce');
  assert.deepEqual(activityM, activityO, 'everything else is the same for all');
  await api(server, 'DELETE', `/api/v1/rooms/${roomId}/rules/r1`, { token: owner.token });
  const deletedM = await m.next((f) => f.event === 'collaboration_updated' && f.data.version === 3);
  assert.deepEqual(deletedM.data.changes, []);
  for (const [who, sees] of [[member, false], [owner, true]]) {
    const c = await join(server, roomId, who.token, { since: 0 });
    const replayed = await c.count('event', 3);
    assert.equal(JSON.stringify(replayed).includes('secret sauce'), sees, `${sees ? 'owner' : 'member'} replay`);
    assert.ok(JSON.stringify(replayed).includes('Visible plan'));
    c.close();
  }
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: member.token });
  assert.ok(!JSON.stringify(state.body).includes('secret sauce') && !('rules' in state.body));
  m.close(); o.close();
});

// ---- what the browser app needs (issue #17) ---------------------------------

test('If-Match: a 412 says the current version and who changed it when; collaboration_updated and the state name the author', async () => {
  const { owner, member, roomId } = await setup();
  const sock = await join(server, roomId, member.token);
  await act(roomId, member, 'propose_activity', { title: 'Launch' });
  const before = Math.floor(Date.now() / 1000);
  const moved = await act(roomId, owner, 'start_activity', { id: 'a1' }, { 'if-match': '1' });
  assert.equal(moved.status, 200);
  // The member's screen still says version 1 and tries to cancel it.
  const stale = await act(roomId, member, 'update_activity', { id: 'a1', title: 'Launch!' }, { 'if-match': '1' });
  assert.equal(stale.status, 412);
  assert.equal(stale.body.error.code, 'version_conflict');
  assert.equal(stale.body.error.current_version, 2);
  const last = stale.body.error.last_change;
  assert.deepEqual(last.changed_by, { user_id: owner.user.id, display_name: 'Owner', kind: 'user' });
  assert.equal(last.version, 2);
  assert.ok(last.changed_at >= before - 1 && last.changed_at <= before + 60, `${last.changed_at}`);
  assert.match(stale.body.error.message, /version 2 \(last changed by Owner at \d{4}-\d\d-\d\dT/);
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: member.token });
  assert.equal(state.body.activities.a1.title, 'Launch', 'nothing changed');
  assert.deepEqual(state.body.last_change, last);
  const events = (await sock.count('event', 2)).filter((f) => f.event === 'collaboration_updated');
  assert.deepEqual(events.map((e) => [e.data.version, e.data.changed_by.user_id, e.data.changed_by.kind]),
    [[1, member.user.id, 'user'], [2, owner.user.id, 'user']]);
  assert.equal(events[1].data.changed_at, last.changed_at);
  // A rule's change names the rule's author, as a rule.
  await api(server, 'POST', `/api/v1/rooms/${roomId}/rules`, {
    token: owner.token,
    body: { trigger: 'activity_changed', condition: { '==': [{ var: 'event.data.activity.status' }, 'done'] },
      effect: { action: 'propose_activity', args: { title: 'Retro' } } },
  });
  await act(roomId, member, 'complete_activity', { id: 'a1' });
  const ruled = await sock.next((f) => f.event === 'collaboration_updated' && f.data.version === 5);
  assert.deepEqual(ruled.data.changed_by, { user_id: owner.user.id, display_name: 'Owner', kind: 'rule' });
  const conflict = await act(roomId, member, 'propose_activity', { title: 'x' }, { 'if-match': '4' });
  assert.equal(conflict.body.error.last_change.changed_by.kind, 'rule');
  sock.close();
});

const inbox = (who, query = '') => api(server, 'GET', `/api/v1/approvals${query}`, { token: who.token });
const decide = (roomId, aid, who, verb, body) =>
  api(server, 'POST', `/api/v1/rooms/${roomId}/approvals/${aid}/${verb}`, { token: who.token, body });

test('approvals inbox: pending requests of every room the caller owns, who asked, paged; decided with a comment the requester sees', async () => {
  const owner = await register(server, 'Boss');
  const member = await register(server, 'Asker');
  const rooms = [];
  for (const name of ['Alpha', 'Beta']) {
    const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name, kind: 'project' } });
    await api(server, 'POST', `/api/v1/rooms/${r.body.id}/members`, { token: owner.token, body: { user_id: member.user.id, role: 'member' } });
    rooms.push(r.body.id);
  }
  // A room the owner is only a member of: its requests are not theirs to decide.
  const other = await setup();
  await api(server, 'POST', `/api/v1/rooms/${other.roomId}/members`, { token: other.owner.token, body: { user_id: owner.user.id, role: 'member' } });
  await act(other.roomId, other.member, 'archive_room', {});
  const [alpha, beta] = rooms;
  const first = await act(alpha, member, 'archive_room', {});
  const second = await act(beta, member, 'remove_member', { user_id: owner.user.id });
  assert.equal(second.status, 202);
  const memberSock = await join(server, alpha, member.token);

  const pending = await inbox(owner, '?status=pending');
  assert.equal(pending.status, 200, JSON.stringify(pending.body));
  assert.deepEqual(pending.body.approvals.map((i) => [i.room_id, i.room_name, i.approval.id]),
    [[beta, 'Beta', second.body.approval.id], [alpha, 'Alpha', first.body.approval.id]], 'newest first, owned rooms only');
  const [newest] = pending.body.approvals;
  assert.equal(newest.may_decide, true);
  assert.deepEqual([newest.approval.action, newest.approval.args], ['remove_member', { user_id: owner.user.id }]);
  assert.deepEqual([newest.approval.requested_by, newest.approval.requested_by_name, newest.approval.requested_kind],
    [member.user.id, 'Asker', 'user']);
  assert.ok(newest.approval.expires_at > Date.now() / 1000 + 6 * 86400);
  const page1 = await inbox(owner, '?status=pending&limit=1');
  assert.equal(page1.body.approvals.length, 1);
  const page2 = await inbox(owner, `?status=pending&limit=1&cursor=${page1.body.next_cursor}`);
  assert.deepEqual(page2.body.approvals.map((i) => i.approval.id), [first.body.approval.id]);
  assert.equal(page2.body.next_cursor, null);
  assert.deepEqual((await inbox(member)).body.approvals, [], 'a member owns nothing here');
  const mine = await inbox(member, '?scope=mine&status=pending');
  assert.deepEqual(mine.body.approvals.map((i) => [i.room_id, i.may_decide]), [[beta, false], [alpha, false]]);
  for (const q of ['?status=open', '?scope=everyone', '?room=x', '?cursor=abc']) {
    const bad = await inbox(owner, q);
    assert.equal(bad.status, 400, q);
    assert.equal(bad.body.error.field, q.slice(1).split('=')[0], q);
  }
  assert.equal((await api(server, 'GET', '/api/v1/approvals')).status, 401);

  // Approved with a comment: the requester's socket tells them, and so does their list.
  const tooLong = await decide(alpha, first.body.approval.id, owner, 'approve', { comment: 'x'.repeat(1001) });
  assert.equal(tooLong.status, 400);
  assert.equal(tooLong.body.error.field, 'comment');
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${alpha}/state`, { token: owner.token })).body.settings.archived, false);
  const approved = await decide(alpha, first.body.approval.id, owner, 'approve', { comment: 'Done with it, thanks' });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.deepEqual([approved.body.approval.comment, approved.body.approval.resolved_by_name], ['Done with it, thanks', 'Boss']);
  const told = await memberSock.next((f) => f.event === 'approval_resolved');
  assert.deepEqual([told.data.approval.status, told.data.approval.comment, told.data.approval.resolved_by],
    ['approved', 'Done with it, thanks', owner.user.id]);
  const rejected = await decide(beta, second.body.approval.id, owner, 'reject');
  assert.equal(rejected.status, 200, 'no body is no comment');
  assert.equal(rejected.body.approval.comment, null);
  assert.deepEqual((await inbox(owner, '?status=pending')).body.approvals, []);
  const resolved = await inbox(owner, '?status=resolved');
  assert.deepEqual(resolved.body.approvals.map((i) => [i.approval.status, i.may_decide]), [['rejected', false], ['approved', false]]);
  const outcome = await inbox(member, '?scope=mine&status=approved');
  assert.deepEqual(outcome.body.approvals.map((i) => [i.approval.id, i.approval.comment]), [[first.body.approval.id, 'Done with it, thanks']]);
  const all = await inbox(owner);
  assert.equal(all.body.approvals.length, 2);
  memberSock.close();
});

test('approvals inbox: current roles decide what is listed; the requester cannot decide their own; a rule asks once', async () => {
  const { owner, member, roomId } = await setup();
  const coOwner = await register(server, 'CoOwner');
  await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: owner.token, body: { user_id: coOwner.user.id, role: 'owner' } });
  const asked = await act(roomId, member, 'archive_room', {});
  const aid = asked.body.approval.id;
  assert.equal((await inbox(coOwner, '?status=pending')).body.approvals.length, 1);
  // Demoted, the co-owner no longer sees it; promoted, the requester sees their own, undecidable.
  await api(server, 'PATCH', `/api/v1/rooms/${roomId}/members/${coOwner.user.id}`, { token: owner.token, body: { role: 'admin' } });
  assert.deepEqual((await inbox(coOwner, '?status=pending')).body.approvals, []);
  await api(server, 'PATCH', `/api/v1/rooms/${roomId}/members/${member.user.id}`, { token: owner.token, body: { role: 'owner' } });
  const own = (await inbox(member, '?status=pending')).body.approvals;
  assert.deepEqual(own.map((i) => [i.approval.id, i.may_decide]), [[aid, false]]);
  const self = await decide(roomId, aid, member, 'approve', { comment: 'me' });
  assert.equal(self.status, 403);
  assert.equal((await inbox(owner, '?status=pending')).body.approvals[0].may_decide, true);

  // An admin's rule asks an owner for what only an owner may do, once while it waits.
  const admin = await register(server, 'RuleAdmin');
  await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: owner.token, body: { user_id: admin.user.id, role: 'admin' } });
  const saved = await api(server, 'POST', `/api/v1/rooms/${roomId}/rules`, {
    token: admin.token,
    body: { trigger: 'message_posted', condition: { '==': [{ var: 'event.data.message.body' }, 'wrap up'] },
      effect: { action: 'remove_member', args: { user_id: coOwner.user.id } } },
  });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  // remove_member is the admin's to run; archive_room is not: a rule asks for it.
  await api(server, 'PATCH', `/api/v1/rooms/${roomId}/rules/${saved.body.rule.id}`, {
    token: admin.token, body: { effect: { action: 'archive_room', args: {} } },
  });
  await act(roomId, member, 'send_message', { body: 'wrap up' });
  await act(roomId, member, 'send_message', { body: 'wrap up' });
  const byRule = (await inbox(owner, '?status=pending')).body.approvals.filter((i) => i.approval.requested_kind === 'rule');
  assert.equal(byRule.length, 1, 'asked once while it waits');
  assert.deepEqual([byRule[0].approval.rule_id, byRule[0].approval.requested_by, byRule[0].approval.requested_by_name],
    [saved.body.rule.id, admin.user.id, 'RuleAdmin']);
  const audited = (await audit(roomId, owner, '&action=archive_room&kind=rule'));
  assert.deepEqual(audited.map((e) => e.result.status), [202, 202]);
  assert.equal(audited[0].result.outcome.approval.id, audited[1].result.outcome.approval.id);
  // The rule's author cannot decide it either.
  await api(server, 'PATCH', `/api/v1/rooms/${roomId}/members/${admin.user.id}`, { token: owner.token, body: { role: 'owner' } });
  assert.equal((await decide(roomId, byRule[0].approval.id, admin, 'approve')).status, 403);
  assert.equal((await decide(roomId, byRule[0].approval.id, owner, 'approve')).status, 200);
});

test('rules: a refusal names the field it concerns, for the rule routes and for set_rule', async () => {
  const { owner, roomId } = await setup();
  const effect = { action: 'send_message', args: { body: 'x' } };
  for (const [body, field] of [
    [{ trigger: 'message_posted', condition: { if: [{ exec: 1 }, true, false] }, effect }, 'condition.if[0]'],
    [{ trigger: 'message_posted', condition: { and: [true, { in: ['x'] }] }, effect }, 'condition.and[1]'],
    [{ trigger: 'message_posted', effect: { action: 'send_message', args: { body: '{{env.SECRET}}' } } }, 'effect.args.body'],
    [{ trigger: 'message_posted', effect: { action: 'propose_activity', args: { title: 'x', due_at: 'soon' } } }, 'effect.args.due_at'],
    [{ trigger: 'message_posted', effect: { action: 'format_disk' } }, 'effect.action'],
    [{ trigger: 'on_the_moon', effect }, 'trigger'],
    [{ trigger: 'message_posted' }, 'effect'],
    [{ trigger: 'message_posted', effect, sudo: true }, 'sudo'],
    [{ name: 'n'.repeat(101), trigger: 'message_posted', effect }, 'name'],
  ]) {
    const r = await rule(roomId, owner, body);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'invalid_input');
    assert.equal(r.body.error.field, field, JSON.stringify(r.body));
  }
  const viaAction = await act(roomId, owner, 'set_rule', { rule: { trigger: 'message_posted', condition: { exec: 1 }, effect } });
  assert.equal(viaAction.body.error.field, 'rule.condition');
  const badArg = await act(roomId, owner, 'propose_activity', { title: 'x', due_at: 'soon' });
  assert.equal(badArg.body.error.field, 'due_at');
  await rule(roomId, owner, { trigger: 'message_posted', effect });
  const patched = await api(server, 'PATCH', `/api/v1/rooms/${roomId}/rules/r1`, { token: owner.token, body: { condition: { '!': [1, 2, 3] } } });
  assert.equal(patched.body.error.field, 'condition');
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: owner.token })).body.version, 1, 'nothing else saved');
});

test('rules: a dry run says whether the condition matches and what the effect would do, changing nothing', async () => {
  const { owner, member, roomId } = await setup();
  await act(roomId, member, 'propose_activity', { title: 'Ship' });
  const dry = (who, body) => api(server, 'POST', `/api/v1/rooms/${roomId}/rules/dry-run`, { token: who.token, body });
  const draft = {
    trigger: 'message_posted',
    condition: { in: ['urgent', { var: 'event.data.message.body' }] },
    effect: { action: 'propose_activity', args: { title: 'Follow up: {{event.data.message.body}}' } },
    event: { actor: member.user.id, data: { message: { body: 'urgent: the build is red' } } },
  };
  const before = (await audit(roomId, owner)).length;
  const run = await dry(owner, draft);
  assert.equal(run.status, 200, JSON.stringify(run.body));
  assert.equal(run.body.matches, true);
  assert.deepEqual([run.body.effect.decision, run.body.effect.version], ['run', 2]);
  assert.equal(run.body.effect.args.title, 'Follow up: urgent: the build is red');
  assert.equal(run.body.effect.changes[0].path, 'activities.a2');
  const calm = await dry(owner, { ...draft, event: { data: { message: { body: 'all fine' } } } });
  assert.deepEqual([calm.body.matches, calm.body.effect], [false, null]);
  const asks = await dry(owner, { ...draft, effect: { action: 'start_activity', args: { id: 'a9' } } });
  assert.deepEqual([asks.body.effect.decision, asks.body.effect.error.code], ['refused', 'not_found']);
  const archive = await dry(owner, { ...draft, effect: { action: 'archive_room' } });
  assert.equal(archive.body.effect.decision, 'run');
  const onlyCondition = await dry(owner, { trigger: draft.trigger, condition: draft.condition, event: draft.event });
  assert.deepEqual([onlyCondition.body.matches, onlyCondition.body.effect], [true, null]);
  const broken = await dry(owner, { ...draft, condition: { if: [{ exec: 1 }] } });
  assert.deepEqual([broken.status, broken.body.error.field], [400, 'condition.if[0]']);
  const noEvent = await dry(owner, { trigger: draft.trigger });
  assert.deepEqual([noEvent.status, noEvent.body.error.field], [400, 'event']);
  assert.equal((await dry(member, draft)).status, 403);
  const stranger = await register(server, 'Stranger');
  assert.equal((await dry(stranger, draft)).status, 404);
  // Nothing happened: same version, no activity, no audit entry, no rule.
  const state = await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: owner.token });
  assert.equal(state.body.version, 1);
  assert.deepEqual(Object.keys(state.body.activities), ['a1']);
  assert.equal((await audit(roomId, owner)).length, before);
  assert.deepEqual((await api(server, 'GET', `/api/v1/rooms/${roomId}/rules`, { token: owner.token })).body.rules, []);
});

test('audit: filters by actor, kind, action and time, paged with a cursor, also in the export; bad filters name themselves', async () => {
  const { owner, member, roomId } = await setup();
  await act(roomId, member, 'propose_activity', { title: 'one' });
  await act(roomId, owner, 'propose_activity', { title: 'two' });
  await act(roomId, member, 'start_activity', { id: 'a1' });
  await rule(roomId, owner, {
    trigger: 'activity_changed', condition: { '==': [{ var: 'event.data.activity.status' }, 'done'] },
    effect: { action: 'send_message', args: { body: 'well done' } },
  });
  await act(roomId, member, 'complete_activity', { id: 'a1' });
  const all = await audit(roomId, owner);
  assert.equal(all.length, 6);
  const ids = (entries) => entries.map((e) => e.id);
  const byMember = await audit(roomId, owner, `&actor=${member.user.id}`);
  assert.deepEqual(ids(byMember), ids(all.filter((e) => e.actor === member.user.id)));
  assert.equal(byMember.length, 3);
  const byRule = await audit(roomId, owner, '&kind=rule');
  assert.deepEqual(byRule.map((e) => [e.action, e.actor_kind]), [['send_message', 'rule']]);
  const proposals = await audit(roomId, owner, `&action=propose_activity&actor=${owner.user.id}`);
  assert.deepEqual(proposals.map((e) => e.arguments.title), ['two']);
  const at = all[0].at;
  assert.equal((await audit(roomId, owner, `&from=${at + 3600}`)).length, 0);
  assert.equal((await audit(roomId, owner, `&to=${all.at(-1).at}`)).length, 0, 'to is exclusive');
  const today = new Date(at * 1000).toISOString().slice(0, 10);
  assert.equal((await audit(roomId, owner, `&from=${today}&to=${today}`)).length, 6, 'a date as `to` covers the day');
  assert.equal((await audit(roomId, owner, `&from=${new Date((at - 60) * 1000).toISOString()}`)).length, 6);
  // Pages of two, through the cursor, with a filter.
  const seen = [];
  let cursor = '';
  for (;;) {
    const page = await api(server, 'GET', `/api/v1/rooms/${roomId}/audit?limit=2&kind=user${cursor}`, { token: owner.token });
    seen.push(...page.body.entries);
    if (!page.body.next_cursor) break;
    cursor = `&cursor=${page.body.next_cursor}`;
  }
  assert.deepEqual(ids(seen), ids(all.filter((e) => e.actor_kind === 'user')));
  const res = await fetch(`${server.url}/api/v1/rooms/${roomId}/audit/export?kind=user&limit=2`, { headers: { authorization: `Bearer ${owner.token}` } });
  const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(ids(lines), ids(seen.slice(0, 2)));
  assert.equal(res.headers.get('x-next-cursor'), String(lines[1].id));
  for (const [q, field] of [['kind=admin', 'kind'], ['from=yesterday', 'from'], ['actor=a%20b', 'actor'], ['action=DROP', 'action'],
    ['from=2026-05-02&to=2026-05-01', 'to'], ['sort=asc', 'sort'], ['limit=201', 'limit']]) {
    const r = await api(server, 'GET', `/api/v1/rooms/${roomId}/audit?${q}`, { token: owner.token });
    assert.deepEqual([r.status, r.body.error.field], [400, field], q);
  }
  const bigExport = await api(server, 'GET', `/api/v1/rooms/${roomId}/audit/export?limit=5001`, { token: owner.token });
  assert.equal(bigExport.status, 400);
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${roomId}/audit?kind=user`, { token: member.token })).status, 403);
});
