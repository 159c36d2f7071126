// The seeded room of core's authorization table (core/src/access.rs): one
// person per kind of caller, and the things the table speaks of. Used by the
// suites that exercise the whole surface: the authorization matrix, schema
// fuzzing and frame fuzzing.
import * as Y from 'yjs';
import { api, randomIp, register, signHs256 } from './harness.mjs';

const b64 = (s) => Buffer.from(s).toString('base64');
const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());

export const OK = (r, status, what) => {
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};

/** A Yjs update that writes `text` into the Y.Text root `t`. */
export function textUpdate(text) {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  return Buffer.from(Y.encodeStateAsUpdate(doc));
}

/** tus creation of `data` as `name` in `room`; with `finish` the body is sent along (creation-with-upload). */
export async function upload(server, token, room, { name = 'notes.txt', data = 'hello tessera', finish = true } = {}) {
  const headers = {
    'cf-connecting-ip': randomIp(),
    'tus-resumable': '1.0.0',
    'upload-length': String(Buffer.byteLength(data)),
    'upload-metadata': `filename ${b64(name)},room_id ${b64(room)}`,
  };
  if (token) headers.authorization = `Bearer ${token}`;
  if (finish) headers['content-type'] = 'application/offset+octet-stream';
  const res = await fetch(`${server.url}/api/v1/uploads`, { method: 'POST', headers, body: finish ? data : undefined });
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return res.headers.get('location').split('/').pop();
}

/** A message posted over REST; returns its id. */
export async function post(server, room, who, body) {
  const r = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, {
    token: who.token, body: { body }, headers: { 'idempotency-key': `k-${Math.random()}` },
  });
  return OK(r, 201, 'post').id;
}

/**
 * A room in which `people` hold their roles: the owner creates it, admin,
 * member, viewer and removed join as members, then the admin and viewer get
 * their roles and `removed` is removed. `beforeRoles(room)` runs while the
 * viewer is still a member (to write the viewer's own things).
 */
export async function roomFor(server, people, beforeRoles = async () => {}) {
  const { owner, admin, member, viewer, removed } = people;
  const room = OK(await api(server, 'POST', '/api/v1/rooms', {
    token: owner.token,
    body: { name: 'Seeded', kind: 'project', members: [admin, member, viewer, removed].map((p) => p.user.id) },
  }), 201, 'create room').id;
  await beforeRoles(room);
  for (const [who, role] of [[admin, 'admin'], [viewer, 'viewer']]) {
    OK(await api(server, 'PATCH', `/api/v1/rooms/${room}/members/${who.user.id}`, { token: owner.token, body: { role } }), 200, `make ${role}`);
  }
  const gone = await api(server, 'DELETE', `/api/v1/rooms/${room}/members/${removed.user.id}`, { token: owner.token });
  OK(gone, 204, 'remove');
  return room;
}

/** A new account that the owner adds to `room` as a member; returns its id. */
export async function freshMember(server, room, owner) {
  const u = await register(server, 'Extra');
  OK(await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: u.user.id, role: 'member' } }), 201, 'add member');
  return u.user.id;
}

/**
 * Seeds everything: the people, the room, and in it a message of the member
 * and two of the viewer (written before the demotion), the member's finished
 * text file and unfinished upload, a document `notes` with a version, a rule
 * that never fires, an analysis job and an invite. Returns the people, the
 * ids and one token per caller of the table (`null` for no token).
 */
export async function seed(server) {
  const people = {};
  for (const name of ['owner', 'admin', 'member', 'viewer', 'removed', 'stranger']) {
    people[name] = await register(server, name[0].toUpperCase() + name.slice(1));
  }
  const ids = {};
  ids.room = await roomFor(server, people, async (room) => {
    ids.viewerMessages = [await post(server, room, people.viewer, 'mine, from before'), await post(server, room, people.viewer, 'also mine')];
  });
  const { owner, member } = people;
  const room = ids.room;
  ids.message = await post(server, room, member, 'hello from the member');
  ids.file = await upload(server, member.token, room);
  // Unfinished, with room for the chunks the schema suite sends (its bodies
  // are up to a few KiB): a body past Upload-Length is refused whatever its shape.
  ids.upload = await upload(server, member.token, room, { name: 'later.bin', data: 'x'.repeat(1 << 20), finish: false });
  ids.doc = 'notes';
  const raw = textUpdate('seeded text');
  OK(await api(server, 'POST', `/api/v1/rooms/${room}/docs/${ids.doc}/updates`, {
    token: member.token, raw, headers: { 'content-type': 'application/octet-stream' },
  }), 200, 'doc update');
  ids.version = OK(await api(server, 'POST', `/api/v1/rooms/${room}/docs/${ids.doc}/versions`, { token: member.token, body: { label: 'v1' } }), 201, 'version').v;
  ids.rule = OK(await api(server, 'POST', `/api/v1/rooms/${room}/rules`, { token: owner.token, body: NEVER_RULE }), 200, 'rule').rule.id;
  ids.job = OK(await api(server, 'POST', `/api/v1/files/${ids.file}/analyze`, { token: member.token }), 202, 'analyze').job.id;
  ids.invite = OK(await api(server, 'POST', `/api/v1/rooms/${room}/invites`, { token: owner.token, body: { role: 'member', max_uses: 1000 } }), 201, 'invite').code;

  const claims = claimsOf(member.token);
  const now = Math.floor(Date.now() / 1000);
  const [head, , signature] = member.token.split('.');
  const tampered = `${head}.${Buffer.from(JSON.stringify({ ...claims, sub: owner.user.id })).toString('base64url')}.${signature}`;
  const tokens = {
    no_token: null,
    expired: signHs256({ ...claims, iat: now - 7200, exp: now - 3600 }),
    tampered,
    other_issuer: signHs256({ ...claims, iss: 'https://issuer.example' }),
    non_member: people.stranger.token,
    removed: people.removed.token,
    viewer: people.viewer.token,
    member: member.token,
    admin: people.admin.token,
    owner: owner.token,
  };
  return { people, ids, tokens };
}

/** A rule whose condition never holds: it exists to be read and changed. */
export const NEVER_RULE = {
  name: 'never', trigger: 'file_added', condition: { '==': [1, 2] },
  effect: { action: 'send_message', args: { body: 'never sent' } },
};
