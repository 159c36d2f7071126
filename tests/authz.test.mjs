// The authorization matrix, driven over real HTTP and WebSockets: every route
// of the route table × every kind of caller, every room socket frame type ×
// role, and the document socket, each against the status or frame that core's
// table (core/src/access.rs, kept in tests/authz-matrix.json) expects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import WebSocket from 'ws';
import { api, JWT_SECRET, randomIp, register, ROOT, startServer } from './harness.mjs';
import { join } from './ws.mjs';
import { freshMember, NEVER_RULE, OK, post, roomFor, seed, textUpdate, upload } from './seed.mjs';
import { awareness, kindOf, syncStep1, syncUpdate } from './ywire.mjs';

const matrix = JSON.parse(readFileSync(joinPath(ROOT, 'tests', 'authz-matrix.json'), 'utf8'));
// The matrix is about who may, not how often: chat writes are not throttled here.
const server = await startServer({ vars: { CHAT_RATE_PER_SEC: '1000' } });
const { people, ids, tokens } = await seed(server);
const { owner, member } = people;
const room = ids.room;

let unique = 0;
const fresh = (prefix) => `${prefix}-${Date.now()}-${(unique += 1)}`;
const sessionOf = async (who) => OK(await api(server, 'POST', '/api/v1/auth/login', {
  body: { email: who.email, password: who.password },
}), 200, 'login');
const tus = { 'tus-resumable': '1.0.0' };

/** A pending approval: the member asks to remove a new member. */
async function freshApproval() {
  const target = await freshMember(server, room, owner);
  const r = await api(server, 'POST', `/api/v1/rooms/${room}/actions/remove_member`, { token: member.token, body: { user_id: target } });
  return OK(r, 202, 'approval request').approval.id;
}

async function freshDoc() {
  const doc = fresh('doc');
  OK(await api(server, 'POST', `/api/v1/rooms/${room}/docs/${doc}/updates`, {
    token: member.token, raw: textUpdate('to delete'), headers: { 'content-type': 'application/octet-stream' },
  }), 200, 'doc');
  return doc;
}

/** A Web Push subscription body (RFC 8030 endpoint, RFC 8291 keys). */
function pushBody() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return {
    endpoint: `https://push.example.org/${fresh('sub')}`,
    expirationTime: null,
    keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };
}

/** The signed token of an email's unsubscribe link (core::notify::email::unsubscribe_token). */
function unsubscribeToken(userId) {
  const key = createHmac('sha256', JWT_SECRET).update('tessera unsubscribe v1').digest();
  const mac = createHmac('sha256', key).update(`${userId}\0email`).digest().subarray(0, 16).toString('base64url');
  return `${userId}.email.${mac}`;
}

const hooks = `/api/v1/rooms/${room}/webhooks`;
const freshWebhook = async () => OK(await api(server, 'POST', hooks, {
  token: owner.token, body: { url: 'https://hooks.example.org/in', events: ['message.posted'] },
}), 201, 'webhook').id;
const freshIncoming = async () => OK(await api(server, 'POST', `/api/v1/rooms/${room}/incoming-webhooks`, {
  token: owner.token, body: { name: 'matrix' },
}), 201, 'incoming webhook');
const freshInvite = async () => OK(await api(server, 'POST', `/api/v1/rooms/${room}/invites`, { token: owner.token, body: { role: 'member' } }), 201, 'invite').code;
const webhook = await freshWebhook();
const incomingToken = (await freshIncoming()).path.split('/').pop();
// Whose subscription a caller deletes: their own; callers without a valid token name the member's.
const personOf = (caller) => ({ non_member: people.stranger, removed: people.removed }[caller] ?? people[caller] ?? member);
const form = { 'content-type': 'application/x-www-form-urlencoded' };

/**
 * How to make each route's request so that only access decides the answer:
 * what it needs made first (fresh where a permitted call uses it up), its
 * parameters and body. `caller` is the row's caller; `after` undoes what a
 * permitted call changed that later rows rely on.
 */
const REQUESTS = {
  Health: () => ({}),
  OpenApi: () => ({}),
  Register: () => ({ body: { email: `${fresh('new')}@example.org`, password: 'correct horse battery', display_name: 'New' } }),
  Login: () => ({ body: { email: people.stranger.email, password: people.stranger.password } }),
  Refresh: async () => ({ body: { refresh_token: (await sessionOf(people.stranger)).refresh_token } }),
  Logout: async () => ({ body: { refresh_token: (await sessionOf(people.stranger)).refresh_token } }),
  GetMe: () => ({}),
  UpdateMe: () => ({ body: { display_name: 'Renamed' } }),
  ListRooms: () => ({}),
  SearchUsers: () => ({ query: `?q=${encodeURIComponent('Owner')}` }),
  CreateRoom: () => ({ body: { name: 'Another', kind: 'group' } }),
  GetRoom: () => ({}),
  UpdateRoom: () => ({ body: { topic: 'changed by the matrix' } }),
  DeleteRoom: async () => ({ params: { room_id: await roomFor(server, people) } }),
  ListMembers: () => ({}),
  AddMember: async () => ({ body: { user_id: (await register(server, 'Added')).user.id, role: 'member' } }),
  UpdateMember: async () => ({ params: { user_id: await freshMember(server, room, owner) }, body: { role: 'viewer' } }),
  RemoveMember: async () => ({ params: { user_id: await freshMember(server, room, owner) } }),
  CreateInvite: () => ({ body: { role: 'member' } }),
  AcceptInvite: (caller) => ({
    // Whoever joined leaves again: later rows need the room as it was.
    after: async (status) => {
      if (status !== 201) return;
      const who = caller === 'non_member' ? people.stranger : people.removed;
      OK(await api(server, 'DELETE', `/api/v1/rooms/${room}/members/${who.user.id}`, { token: owner.token }), 204, 'undo join');
    },
  }),
  RoomSocket: () => ({ socket: true }),
  ListMessages: () => ({}),
  PostMessage: () => ({ headers: { 'idempotency-key': fresh('key') }, body: { body: 'posted by the matrix' } }),
  GetMessage: () => ({}),
  ListDocs: () => ({}),
  GetDoc: () => ({}),
  DeleteDoc: async () => ({ params: { doc: await freshDoc() } }),
  PostDocUpdate: () => ({ raw: textUpdate('more'), headers: { 'content-type': 'application/octet-stream' } }),
  CreateDocVersion: () => ({ body: { label: 'matrix' } }),
  ListDocVersions: () => ({}),
  GetDocVersion: () => ({}),
  RestoreDocVersion: () => ({ body: { texts: ['t'] } }),
  CreateUpload: () => ({
    headers: { ...tus, 'upload-length': '3', 'upload-metadata': `filename ${Buffer.from('m.txt').toString('base64')},room_id ${Buffer.from(room).toString('base64')}` },
  }),
  UploadStatus: () => ({ headers: tus }),
  PatchUpload: async () => ({
    params: { upload_id: await upload(server, member.token, room, { data: 'abc', finish: false }) },
    headers: { ...tus, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
    raw: 'abc',
  }),
  TerminateUpload: async () => ({
    params: { upload_id: await upload(server, member.token, room, { data: 'abc', finish: false }) },
    headers: tus,
  }),
  ListFiles: () => ({}),
  GetFile: () => ({}),
  FileContent: () => ({}),
  FileContentHead: () => ({}),
  DeleteFile: async () => ({ params: { file_id: await upload(server, member.token, room) } }),
  CreateFileLink: () => ({}),
  GetState: () => ({}),
  ListActions: () => ({}),
  RunAction: () => ({ body: { title: 'proposed by the matrix' } }),
  ListRules: () => ({}),
  CreateRule: () => ({ body: NEVER_RULE }),
  UpdateRule: () => ({ body: { ...NEVER_RULE, name: 'renamed' } }),
  DeleteRule: async () => ({
    params: { rule_id: OK(await api(server, 'POST', `/api/v1/rooms/${room}/rules`, { token: owner.token, body: NEVER_RULE }), 200, 'rule').rule.id },
  }),
  ListApprovals: () => ({}),
  ApproveApproval: async () => ({ params: { approval_id: await freshApproval() } }),
  RejectApproval: async () => ({ params: { approval_id: await freshApproval() } }),
  ListAudit: () => ({}),
  ExportAudit: () => ({}),
  AnalyzeFile: async () => ({ params: { file_id: await upload(server, member.token, room) } }),
  AnalyzeBatch: async () => ({ body: { file_ids: [await upload(server, member.token, room)] } }),
  GetJob: () => ({}),
  RunCheckin: () => ({}),
  AuthConfig: () => ({}),
  // Without a provider's ID token: the body is refused whoever calls (oidc.test.mjs signs real ones).
  OidcSignIn: () => ({ body: {} }),
  ListInvites: () => ({}),
  RevokeInvite: async () => ({ params: { code: await freshInvite() } }),
  CreateDoc: () => ({ body: { name: fresh('doc') } }),
  DeleteDocVersion: async () => ({
    params: { version: OK(await api(server, 'POST', `/api/v1/rooms/${room}/docs/${ids.doc}/versions`, { token: member.token, body: { label: 'to delete' } }), 201, 'version').v },
  }),
  DryRunRule: () => ({ body: { ...NEVER_RULE, event: { data: {} } } }),
  ListApprovalInbox: () => ({}),
  MeSocket: () => ({ socket: true }),
  ListInbox: () => ({}),
  ReadInbox: () => ({ body: { all: true } }),
  GetPreferences: () => ({}),
  UpdatePreferences: () => ({ body: { level: 'all' } }),
  GetPush: () => ({}),
  CreatePushSubscription: () => ({ body: pushBody() }),
  DeletePushSubscription: async (caller) => ({
    params: {
      subscription_id: OK(await api(server, 'POST', '/api/v1/me/push/subscriptions', { token: personOf(caller).token, body: pushBody() }), 201, 'push subscription').id,
    },
  }),
  ListApiKeys: () => ({}),
  CreateApiKey: () => ({ body: { name: 'made by the matrix', scope: { access: 'read', resources: ['chat'] } } }),
  DeleteApiKey: async (caller) => ({
    params: {
      key_id: OK(await api(server, 'POST', '/api/v1/me/keys', { token: personOf(caller).token, body: { name: 'to revoke', scope: { access: 'read', resources: ['chat'] } } }), 201, 'API key').id,
    },
  }),
  UnsubscribePage: () => ({ params: { token: unsubscribeToken(people.stranger.user.id) } }),
  Unsubscribe: () => ({ params: { token: unsubscribeToken(people.stranger.user.id) }, raw: 'List-Unsubscribe=One-Click', headers: form }),
  ListWebhooks: () => ({}),
  CreateWebhook: () => ({ body: { url: 'https://hooks.example.org/new', events: ['message.posted'] } }),
  UpdateWebhook: () => ({ params: { hook_id: webhook }, body: { description: 'changed by the matrix' } }),
  DeleteWebhook: async () => ({ params: { hook_id: await freshWebhook() } }),
  TestWebhook: () => ({ params: { hook_id: webhook } }),
  ListWebhookDeliveries: () => ({ params: { hook_id: webhook } }),
  ListIncomingWebhooks: () => ({}),
  CreateIncomingWebhook: () => ({ body: { name: 'made by the matrix' } }),
  DeleteIncomingWebhook: async () => ({ params: { hook_id: (await freshIncoming()).id } }),
  PostIncomingWebhook: () => ({ params: { token: incomingToken }, body: { text: 'posted through a hook' } }),
  GetCheckin: () => ({}),
  GetAiUsage: () => ({}),
  Search: () => ({ query: `?q=${encodeURIComponent('hello')}` }),
};

const PARAMS = {
  room_id: room, user_id: owner.user.id, code: ids.invite, message_id: ids.message, doc: ids.doc,
  version: ids.version, upload_id: ids.upload, file_id: ids.file, action: 'propose_activity',
  rule_id: ids.rule, job_id: ids.job,
};

const fill = (path, params) => path.replace(/\{(\w+)\}/g, (_, k) => {
  if (params[k] === undefined) throw new Error(`no value for {${k}} in ${path}`);
  return encodeURIComponent(params[k]);
});

/** The status of a WebSocket upgrade: 101 when it opens. */
function upgrade(path, token) {
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}${path}${q}`, { headers: { 'cf-connecting-ip': randomIp() } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => { ws.close(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode); });
    ws.once('error', reject);
  });
}

async function call(route, caller) {
  const spec = await REQUESTS[route.endpoint](caller);
  const path = fill(route.path, { ...PARAMS, ...spec.params }) + (spec.query ?? '');
  const token = tokens[caller];
  const status = spec.socket
    ? await upgrade(path, token)
    : (await api(server, route.method, path, { token, body: spec.body, raw: spec.raw, headers: spec.headers })).status;
  await spec.after?.(status);
  return status;
}

test('every route of the table has its request here, and every caller a token', () => {
  assert.deepEqual(Object.keys(REQUESTS).sort(), matrix.routes.map((r) => r.endpoint).sort());
  assert.deepEqual(Object.keys(tokens).sort(), [...matrix.callers].sort());
});

for (const route of matrix.routes) {
  test(`${route.method} ${route.path} × every caller`, async () => {
    const wrong = [];
    for (const caller of matrix.callers) {
      const got = await call(route, caller);
      if (got !== route.expect[caller]) wrong.push(`${caller}: got ${got}, expected ${route.expect[caller]}`);
    }
    assert.deepEqual(wrong, []);
  });
}

// Authentication comes before the body: a bad body without a token is 401
// wherever the table wants a token (POST /ai/batch answered 400).
test('no token and a malformed body: 401 on every route that needs a token', async () => {
  const wrong = [];
  for (const route of matrix.routes.filter((r) => r.expect.no_token === 401 && !['GET', 'HEAD'].includes(r.method))) {
    const spec = await REQUESTS[route.endpoint]('no_token');
    const path = fill(route.path, { ...PARAMS, ...spec.params });
    const got = (await api(server, route.method, path, { raw: '{"', headers: { ...spec.headers, 'content-type': 'application/json' } })).status;
    if (got !== 401) wrong.push(`${route.method} ${route.path}: ${got}`);
  }
  assert.deepEqual(wrong, []);
});

test('the document socket × every caller', async () => {
  const wrong = [];
  for (const caller of matrix.callers) {
    const got = await upgrade(`/api/v1/rooms/${room}/docs/${ids.doc}`, tokens[caller]);
    if (got !== matrix.doc_socket[caller]) wrong.push(`${caller}: got ${got}, expected ${matrix.doc_socket[caller]}`);
  }
  assert.deepEqual(wrong, []);
});

const ROLES = ['viewer', 'member', 'admin', 'owner'];
const messageBody = async (id) => (await api(server, 'GET', `/api/v1/rooms/${room}/messages/${id}`, { token: owner.token })).body;

// Someone else in the room sees the broadcasts (not the owner: a person's
// presence is that of all their sockets).
const watcher = await register(server, 'Watcher');
OK(await api(server, 'POST', `/api/v1/rooms/${room}/members`, { token: owner.token, body: { user_id: watcher.user.id, role: 'member' } }), 201, 'watcher');

test('room socket: every frame type × role', async () => {
  const observer = await join(server, room, watcher.token);
  const wrong = [];
  for (const role of ROLES) {
    const who = people[role];
    const sender = await join(server, room, who.token);
    // The messages this row's frames name: the sender's own (the viewer's
    // from before the demotion) and someone else's.
    const own = role === 'viewer' ? ids.viewerMessages : [await post(server, room, who, 'own 1'), await post(server, room, who, 'own 2')];
    const other = await post(server, room, role === 'member' ? owner : member, 'someone else’s');
    const targets = { edit_own: own[0], delete_own: own[1], edit_others: other, delete_others: other, react: ids.message, unreact: ids.message };
    for (const row of matrix.frames) {
      const want = row.expect[role];
      const frame = { ...row.frame };
      if ('id' in frame) frame.id = targets[row.case];
      if (frame.type === 'send') frame.client_msg_id = fresh('c');
      if (frame.type === 'ping') frame.nonce = fresh('n');
      const before = await (frame.id ? messageBody(frame.id) : null);
      const [sent, seen] = [sender.frames.length, observer.frames.length];
      sender.send(frame);
      const ref = frame.client_msg_id ?? (frame.id === undefined ? undefined : String(frame.id));
      const sees = {
        ack: (f) => f.client_msg_id === frame.client_msg_id,
        pong: (f) => f.nonce === frame.nonce,
        message_edited: (f) => f.id === frame.id && f.body === frame.body,
        message_deleted: (f) => f.id === frame.id,
        reaction: (f) => f.id === frame.id && f.user_id === who.user.id && f.added === (frame.type === 'react'),
        typing: (f) => f.users.some((u) => u.user_id === who.user.id),
        presence: (f) => f.users.some((u) => u.user_id === who.user.id && u.status === frame.status),
        read: (f) => f.user_id === who.user.id,
      };
      try {
        if (want.reply) await sender.next((f) => f.type === want.reply && sees[want.reply](f), 5000, sent);
        if (want.broadcast) await observer.next((f) => f.type === want.broadcast && sees[want.broadcast](f), 5000, seen);
        if (want.error) {
          await sender.next((f) => f.type === 'error' && f.code === want.error && (ref === undefined || f.ref === ref), 5000, sent);
          // Refused: the message it named is as it was.
          if (before) assert.deepEqual(await messageBody(frame.id), before);
        }
      } catch (e) {
        wrong.push(`${role} ${row.case}: expected ${JSON.stringify(want)}; ${e.message}`);
      }
    }
    sender.close();
  }
  observer.close();
  // Refused sends stored nothing: only the rows that were acked are in the history.
  const sent = (await api(server, 'GET', `/api/v1/rooms/${room}/messages?limit=200`, { token: owner.token })).body.messages
    .filter((m) => m.body === 'matrix');
  const acked = ROLES.filter((r) => matrix.frames.find((f) => f.case === 'send').expect[r].reply).length;
  assert.equal(sent.length, acked, 'one stored message per acknowledged send');
  assert.deepEqual(wrong, []);
});

/** A raw document socket that keeps what it receives, by kind. */
async function docSocket(token) {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs/${ids.doc}?token=${token}`, {
    headers: { 'cf-connecting-ip': randomIp() },
  });
  const got = [];
  ws.on('message', (data) => got.push(kindOf(data)));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const waitFor = async (kind, from, ms) => {
    const deadline = Date.now() + ms;
    while (!got.slice(from).includes(kind)) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  };
  // The server opens with its sync step 1; answers are counted after it.
  assert.ok(await waitFor('sync_step1', 0, 5000), 'the server sends its sync step 1');
  return { ws, got, waitFor };
}

const docText = async () => (await fetch(`${server.url}/api/v1/rooms/${room}/docs/${ids.doc}?format=text&name=t`, {
  headers: { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp() },
})).text();

test('document socket: every message type × role (viewers’ writes are dropped)', async () => {
  const observer = await docSocket(watcher.token);
  const wrong = [];
  for (const role of ROLES) {
    const sender = await docSocket(people[role].token);
    for (const row of matrix.doc_messages) {
      const want = row.expect[role];
      const marker = `written by the ${role}`;
      const message = {
        sync_step1: () => syncStep1(Buffer.from([0])),
        update: () => syncUpdate(textUpdate(marker)),
        awareness: () => awareness(1000 + ROLES.indexOf(role), 1, { user: role }),
      }[row.case]();
      const [sent, seen] = [sender.got.length, observer.got.length];
      sender.ws.send(message);
      let ok;
      if (want.reply) ok = await sender.waitFor(want.reply, sent, 5000);
      if (want.broadcast) ok = await observer.waitFor(want.broadcast, seen, 5000);
      if (want.dropped) ok = !(await observer.waitFor('update', seen, 500));
      if (row.case === 'update') ok &&= (await docText()).includes(marker) === !want.dropped;
      if (!ok) wrong.push(`${role} ${row.case}: expected ${JSON.stringify(want)}; saw ${JSON.stringify(observer.got.slice(seen))}`);
    }
    sender.ws.close();
  }
  observer.ws.close();
  assert.deepEqual(wrong, []);
});
