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
  // First half of everyone's messages, all at once. Each person may write
  // ten a second, counted when the server takes them: the second half waits
  // a second after the first half's acks, not after its sending.
  clients.forEach((c, i) => frames(i).slice(0, 10).forEach((f) => c.send(f)));
  await Promise.all(clients.map((c) => c.count('ack', 10, 20_000)));
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
  await Promise.all(again.map(async (c, i) => {
    const fs = frames(i);
    fs.slice(0, 10).forEach((f) => c.send(f));
    await c.count('ack', 10, 20_000);
    await sleep(1050);
    fs.slice(10).forEach((f) => c.send(f));
    await c.count('ack', PER_PERSON, 20_000);
  }));
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

/** Restarts on the same state: `server.kill()` mid-flight, then a fresh wrangler. */
async function killAndRestart(server, dir) {
  server.kill();
  await server.stop();
  return startServer({ persistDir: dir });
}

async function roomWithMembers(server, owner, names) {
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Durable', kind: 'group' } })).body.id;
  const people = [];
  for (const name of names) {
    const u = await register(server, name);
    assert.equal((await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: u.user.id } })).status, 201);
    people.push(u);
  }
  return { room, people };
}

const auditOf = async (server, room, owner) => {
  const out = [];
  for (let cursor = ''; ;) {
    const page = await api(server, 'GET', `/api/v1/rooms/${room}/audit?limit=200${cursor}`, { token: owner.token });
    assert.equal(page.status, 200);
    out.push(...page.body.entries);
    if (!page.body.next_cursor) return out;
    cursor = `&cursor=${page.body.next_cursor}`;
  }
};

test('SIGKILL around approval decisions: each approved action runs exactly once', async (t) => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'tessera-kill-approval-'));
  let server = await startServer({ persistDir: dir });
  const owner = await register(server, 'Owner');
  const { room, people: [asker, ...targets] } = await roomWithMembers(server, owner, ['Asker', 'T0', 'T1', 'T2', 'T3']);
  const aids = [];
  for (const t of targets) {
    const r = await api(server, 'POST', `/api/v1/rooms/${room}/actions/remove_member`, { token: asker.token, body: { user_id: t.user.id } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    aids.push(r.body.approval.id);
  }
  const decide = (srv, aid) => api(srv, 'POST', `/api/v1/rooms/${room}/approvals/${aid}/approve`, { token: owner.token });
  // The first is decided and acknowledged just before the kill; the others
  // are decided at once and the server is killed while they run. Where the
  // kill lands varies: before a decision, after it, or between a decision
  // and its result (its removal under way in D1), which the restart finishes.
  const first = await decide(server, aids[0]);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const inFlight = aids.slice(1).map((aid) => decide(server, aid).catch(() => null));
  await sleep(20);
  server = await killAndRestart(server, dir);
  const answered = await Promise.all(inFlight);

  const approvals = (await api(server, 'GET', `/api/v1/rooms/${room}/approvals`, { token: owner.token })).body.approvals;
  const memberIds = async () => (await api(server, 'GET', `/api/v1/rooms/${room}/members?limit=200`, { token: owner.token })).body.members.map((m) => m.user_id);
  const before = await memberIds();
  for (const [i, aid] of aids.entries()) {
    const a = approvals.find((x) => x.id === aid);
    const acked = i === 0 || answered[i - 1]?.status === 200;
    if (acked || a.status !== 'pending') {
      assert.equal(a.status, 'approved', `${aid} was decided`);
      assert.equal(a.result?.status, 200, `approval ${aid} is approved, so its action ran and its result is kept: ${JSON.stringify(a)}`);
      assert.ok(!before.includes(targets[i].user.id), `the approved removal of ${targets[i].user.id} happened`);
    } else {
      assert.ok(before.includes(targets[i].user.id), 'a pending request has not run');
      assert.equal((await decide(server, aid)).status, 200, 'decided now, after the restart');
    }
  }
  // Deciding again runs nothing: each approval is closed.
  for (const aid of aids) assert.equal((await decide(server, aid)).body.error?.code, 'approval_closed');
  const after = await memberIds();
  for (const t of targets) assert.ok(!after.includes(t.user.id));
  const entries = await auditOf(server, room, owner);
  for (const aid of aids) {
    const ran = entries.filter((e) => e.action === 'remove_member' && e.result.approval === aid && e.result.decision === 'approved');
    assert.equal(ran.length, 1, `one audit entry for the approved run of ${aid}`);
  }
  // Which case the kill made: decisions it cut off before their result were
  // finished after the restart (request id `resume-…`).
  const resumed = entries.filter((e) => e.request_id?.startsWith('resume-')).length;
  t.diagnostic(`approvals: ${answered.filter((a) => a?.status === 200).length + 1} of ${aids.length} answered, ${resumed} finished after the restart`);
});

test('SIGKILL mid-burst of actions: every audit entry reaches D1 exactly once, with no further traffic', async () => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'tessera-kill-audit-'));
  let server = await startServer({ persistDir: dir });
  const owner = await register(server, 'Owner');
  const { room, people } = await roomWithMembers(server, owner, ['A0', 'A1', 'A2', 'A3']);
  // Eight streams of actions, each one after the other, killed mid-way.
  const N = 80;
  const answers = new Array(N).fill(null);
  let killed = false;
  const stream = async (j) => {
    for (let k = j; k < N && !killed; k += 8) {
      await api(server, 'POST', `/api/v1/rooms/${room}/actions/propose_activity`, {
        token: people[j % people.length].token, body: { title: `burst ${k}` }, headers: { 'x-request-id': `burst-${k}` },
      }).then((r) => { answers[k] = r.status; }, () => {});
    }
  };
  const streams = Array.from({ length: 8 }, (_, j) => stream(j));
  while (answers.filter((s) => s !== null).length < 20) await sleep(1);
  killed = true;
  server = await killAndRestart(server, dir);
  await Promise.all(streams);
  const acked = answers.flatMap((s, k) => (s === 200 ? [`burst-${k}`] : []));
  assert.ok(acked.length >= 20 && acked.length < N, `the kill landed mid-burst (${acked.length} of ${N} answered)`);

  // What the room holds: every stored activity was one attempt, audited in the same turn.
  const state = (await api(server, 'GET', `/api/v1/rooms/${room}/state`, { token: owner.token })).body;
  const stored = Object.values(state.activities).map((a) => a.title);
  for (const k of acked) assert.ok(stored.includes(`burst ${k.slice(6)}`), `acknowledged ${k} is stored`);
  // The room's outbox reaches D1 by itself (the object's alarm), each entry once.
  let entries = [];
  const deadline = Date.now() + 45_000;
  for (let polls = 0; ; polls += 1) {
    entries = (await auditOf(server, room, owner)).filter((e) => e.action === 'propose_activity');
    if (polls === 0) console.log(`audit: ${acked.length} of ${N} acknowledged, ${stored.length} stored, ${entries.length} in D1 at the restart`);
    if (entries.length >= stored.length || Date.now() > deadline) break;
    await sleep(1000);
  }
  const ids = entries.map((e) => e.request_id);
  assert.equal(new Set(ids).size, ids.length, 'no entry twice');
  assert.deepEqual(entries.map((e) => e.arguments.title).sort(), [...stored].sort(), 'one entry per stored activity, no more, no less');
  for (const k of acked) assert.ok(ids.includes(k), `the entry of acknowledged ${k} is in D1`);
});

test('SIGKILL during the daily check-in: one check-in per room per day', async () => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'tessera-kill-checkin-'));
  let server = await startServer({ persistDir: dir });
  const rooms = [];
  for (let i = 0; i < 6; i += 1) {
    const owner = await register(server, `Owner${i}`);
    const room = (await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: `Check ${i}`, kind: 'group' } })).body.id;
    const posted = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, {
      token: owner.token, body: { body: `Room ${i}: who reviews the plan?` }, headers: { 'idempotency-key': `m${i}` },
    });
    assert.equal(posted.status, 201);
    rooms.push({ owner, room });
  }
  const summaries = async (srv, { owner, room }) => (await api(srv, 'GET', `/api/v1/rooms/${room}/messages?limit=200`, { token: owner.token }))
    .body.messages.filter((m) => m.author === 'ai' && m.body.startsWith('Daily check-in for'));
  const cron = (srv) => fetch(`${srv.url}/__scheduled?cron=0+2+*+*+*`);
  await cron(server);
  // Killed as soon as the first room has its check-in: the batch is cut short.
  const killBy = Date.now() + 30_000;
  while ((await Promise.all(rooms.map((r) => summaries(server, r)))).every((s) => s.length === 0)) {
    assert.ok(Date.now() < killBy, 'the cron started the check-in');
    await sleep(20);
  }
  server = await killAndRestart(server, dir);
  await cron(server);
  // The owners ask as well: each room answers the check-in it keeps, or runs it once.
  for (const r of rooms) {
    const now = await api(server, 'POST', `/api/v1/rooms/${r.room}/checkin`, { token: r.owner.token });
    assert.ok([200, 201].includes(now.status), JSON.stringify(now.body));
  }
  for (const r of rooms) assert.equal((await summaries(server, r)).length, 1, `one check-in in room ${r.room}`);
});
