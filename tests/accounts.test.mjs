// Accounts and tokens over real HTTP against the Worker in workerd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { api, register, signHs256, startServer, randomIp } from './harness.mjs';
import { join } from './ws.mjs';

const server = await startServer();
const now = () => Math.floor(Date.now() / 1000);
const claims = (sub, extra = {}) => ({
  sub, iss: 'tessera', aud: 'tessera-api', iat: now(), exp: now() + 600, jti: 'x', ...extra,
});
/** The session (`sid`) an access token of ours names. */
const sidOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).sid;

test('register returns the user and a session', async () => {
  const r = await api(server, 'POST', '/api/v1/auth/register', {
    body: { email: 'Grace.Hopper@Example.org', password: 'cobol-forever-1959', display_name: ' Grace ' },
  });
  assert.equal(r.status, 201);
  assert.equal(r.body.user.email, 'grace.hopper@example.org');
  assert.equal(r.body.user.display_name, 'Grace');
  assert.match(r.body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.ok(r.body.refresh_token.length >= 40);
  assert.equal(r.body.expires_in, 900);
  const payload = JSON.parse(Buffer.from(r.body.access_token.split('.')[1], 'base64url'));
  assert.equal(payload.sub, r.body.user.id);
  assert.ok(payload.exp - payload.iat <= 900);
  for (const k of ['iss', 'aud', 'jti', 'iat']) assert.ok(payload[k], k);
  assert.equal(r.body.user.password_hash, undefined);
});

test('duplicate email is refused case-insensitively', async () => {
  const u = await register(server, 'Dup');
  const r = await api(server, 'POST', '/api/v1/auth/register', {
    body: { email: u.email.toUpperCase(), password: 'another password', display_name: 'Dup2' },
  });
  assert.equal(r.status, 409);
  assert.equal(r.body.error.code, 'email_taken');
});

test('registration input is validated', async () => {
  const cases = [
    [{ email: 'not-an-email', password: 'long enough pw', display_name: 'A' }, 400, 'invalid_input'],
    [{ email: 'a@b.org', password: 'short', display_name: 'A' }, 400, 'invalid_input'],
    [{ email: 'a@b.org', password: 'x'.repeat(257), display_name: 'A' }, 400, 'invalid_input'],
    [{ email: 'a@b.org', password: 'long enough pw', display_name: '   ' }, 400, 'invalid_input'],
    [{ email: 'a@b.org', password: 'long enough pw', display_name: 'A', admin: true }, 400, 'invalid_input'],
    [{ email: 'a@b.org', password: 'long enough pw' }, 400, 'invalid_input'],
  ];
  for (const [body, status, code] of cases) {
    const r = await api(server, 'POST', '/api/v1/auth/register', { body });
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.body.error.code, code);
    assert.ok(r.body.error.message.length > 0);
  }
  const unknown = await api(server, 'POST', '/api/v1/auth/register', {
    body: { email: 'u@b.org', password: 'long enough pw', display_name: 'A', role: 'owner' },
  });
  assert.match(unknown.body.error.message, /unknown field/);
});

test('malformed JSON, wrong content type and oversized bodies', async () => {
  const malformed = await api(server, 'POST', '/api/v1/auth/register', {
    raw: '{"email": ', headers: { 'content-type': 'application/json' },
  });
  assert.equal(malformed.status, 400);
  assert.equal(malformed.body.error.code, 'malformed_json');
  const wrongType = await api(server, 'POST', '/api/v1/auth/login', {
    raw: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(wrongType.status, 415);
  assert.equal(wrongType.body.error.code, 'unsupported_media_type');
  const big = await api(server, 'POST', '/api/v1/auth/register', {
    body: { email: 'big@b.org', password: 'long enough pw', display_name: 'x'.repeat(70_000) },
  });
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, 'payload_too_large');
});

test('login: right password, wrong password, unknown email', async () => {
  const u = await register(server, 'Login');
  const ok = await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.user.id, u.user.id);
  const wrong = await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: 'wrong password!' } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.error.code, 'invalid_credentials');
  const unknown = await api(server, 'POST', '/api/v1/auth/login', { body: { email: 'nobody@example.org', password: 'whatever pw' } });
  assert.equal(unknown.status, 401);
  assert.equal(unknown.body.error.code, 'invalid_credentials');
});

test('GET /me needs a valid token', async () => {
  const u = await register(server, 'Me');
  const ok = await api(server, 'GET', '/api/v1/me', { token: u.token });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.id, u.user.id);
  const none = await api(server, 'GET', '/api/v1/me');
  assert.equal(none.status, 401);
  assert.equal(none.body.error.code, 'unauthenticated');
  const basic = await api(server, 'GET', '/api/v1/me', { headers: { authorization: 'Basic YTpi' } });
  assert.equal(basic.status, 401);
});

test('expired, tampered, alg:none, wrong-audience and wrong-secret tokens are refused', async () => {
  const u = await register(server, 'Tokens');
  const good = signHs256(claims(u.user.id, { sid: sidOf(u.token) }));
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: good })).status, 200);
  const bad = {
    expired: signHs256(claims(u.user.id, { iat: now() - 3600, exp: now() - 1800 })),
    tampered: (() => {
      const [h, , s] = u.token.split('.');
      const p = Buffer.from(JSON.stringify(claims('someone-else'))).toString('base64url');
      return `${h}.${p}.${s}`;
    })(),
    algNone: `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims(u.user.id))).toString('base64url')}.`,
    wrongAudience: signHs256(claims(u.user.id, { aud: 'someone-else' })),
    noSession: signHs256(claims(u.user.id)),
    noExpiry: signHs256((({ exp, ...c }) => c)(claims(u.user.id, { sid: sidOf(u.token) }))),
    wrongIssuer: signHs256(claims(u.user.id, { iss: 'evil' })),
    wrongSecret: signHs256(claims(u.user.id), 'x'.repeat(64)),
    garbage: 'not.a.jwt',
    externalWithoutOidc: `${Buffer.from('{"alg":"RS256","kid":"k"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims(u.user.id))).toString('base64url')}.c2ln`,
  };
  for (const [name, token] of Object.entries(bad)) {
    const r = await api(server, 'GET', '/api/v1/me', { token });
    assert.equal(r.status, 401, name);
    assert.equal(r.body.error.code, 'invalid_token', name);
  }
});

test('refresh rotates; reusing a spent token revokes the whole family', async () => {
  const u = await register(server, 'Refresh');
  const first = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refresh_token } });
  assert.equal(first.status, 200);
  assert.notEqual(first.body.refresh_token, u.refresh_token);
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: first.body.access_token })).status, 200);
  // The original token again: theft detected.
  const reuse = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refresh_token } });
  assert.equal(reuse.status, 401);
  assert.equal(reuse.body.error.code, 'refresh_token_reused');
  // Its successor died with the family.
  const successor = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: first.body.refresh_token } });
  assert.equal(successor.status, 401);
  assert.equal(successor.body.error.code, 'invalid_token');
  const unknown = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: 'nope' } });
  assert.equal(unknown.status, 401);
});

test('logout revokes the session but not other sign-ins', async () => {
  const u = await register(server, 'Logout');
  const other = await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } });
  const out = await api(server, 'POST', '/api/v1/auth/logout', { body: { refresh_token: u.refresh_token } });
  assert.equal(out.status, 204);
  const again = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refresh_token } });
  assert.equal(again.status, 401);
  const stillIn = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: other.body.refresh_token } });
  assert.equal(stillIn.status, 200);
  // Signing out an ended session again succeeds (and tells its rooms again).
  const twice = await api(server, 'POST', '/api/v1/auth/logout', { body: { refresh_token: u.refresh_token } });
  assert.equal(twice.status, 204);
  const unknown = await api(server, 'POST', '/api/v1/auth/logout', { body: { refresh_token: 'nope' } });
  assert.equal(unknown.status, 401);
  const nothing = await api(server, 'POST', '/api/v1/auth/logout', { body: {} });
  assert.equal(nothing.status, 400);
});

test('PATCH /me changes the name; a password change needs the current one and ends sessions', async () => {
  const u = await register(server, 'Patch');
  const renamed = await api(server, 'PATCH', '/api/v1/me', { token: u.token, body: { display_name: 'Patched' } });
  assert.equal(renamed.status, 200);
  assert.equal(renamed.body.display_name, 'Patched');
  const empty = await api(server, 'PATCH', '/api/v1/me', { token: u.token, body: {} });
  assert.equal(empty.status, 400);
  const noCurrent = await api(server, 'PATCH', '/api/v1/me', { token: u.token, body: { password: 'a brand new one' } });
  assert.equal(noCurrent.status, 403);
  // A bad name with a good password change changes nothing.
  const mixed = await api(server, 'PATCH', '/api/v1/me', {
    token: u.token, body: { display_name: '', password: 'a brand new one', current_password: u.password },
  });
  assert.equal(mixed.status, 400);
  assert.equal((await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } })).status, 200);
  const changed = await api(server, 'PATCH', '/api/v1/me', {
    token: u.token, body: { password: 'a brand new one', current_password: u.password },
  });
  assert.equal(changed.status, 200);
  assert.equal((await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refresh_token } })).status, 401);
  assert.equal((await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: 'a brand new one' } })).status, 200);
  assert.equal((await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } })).status, 401);
});

test('SQL-injection strings are stored verbatim', async () => {
  const name = "Robert'); DROP TABLE users;--";
  const u = await register(server, name);
  const me = await api(server, 'GET', '/api/v1/me', { token: u.token });
  assert.equal(me.body.display_name, name);
  const login = await api(server, 'POST', '/api/v1/auth/login', { body: { email: "x' OR '1'='1@x.org", password: "' OR 1=1 --" } });
  assert.equal(login.status, 401);
});

test('sign-in attempts are rate limited per IP and email', async () => {
  const u = await register(server, 'Limited');
  const ip = randomIp();
  const statuses = [];
  for (let i = 0; i < 12; i += 1) {
    const r = await api(server, 'POST', '/api/v1/auth/login', { ip, body: { email: u.email, password: 'wrong password!' } });
    statuses.push(r.status);
    if (r.status === 429) {
      assert.equal(r.body.error.code, 'rate_limited');
      assert.ok(Number(r.headers.get('retry-after')) > 0);
    }
  }
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
  assert.deepEqual(statuses.slice(10), [429, 429]);
  // Another email from the same IP is not affected.
  const other = await api(server, 'POST', '/api/v1/auth/login', { ip, body: { email: 'other@example.org', password: 'wrong password!' } });
  assert.equal(other.status, 401);
});

test("signing out refuses the session's access tokens at once; other sessions keep theirs", async () => {
  const u = await register(server, 'Revoked');
  const other = await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } });
  const refreshed = await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refresh_token } });
  assert.equal(refreshed.status, 200);
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: u.token })).status, 200, 'rotation keeps the session');
  const out = await api(server, 'POST', '/api/v1/auth/logout', { body: { refresh_token: refreshed.body.refresh_token } });
  assert.equal(out.status, 204);
  for (const token of [u.token, refreshed.body.access_token]) {
    const r = await api(server, 'GET', '/api/v1/me', { token });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'invalid_token');
    assert.match(r.body.error.message, /signed out/);
  }
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: other.body.access_token })).status, 200);
});

test('a password change refuses every earlier access token at once', async () => {
  const u = await register(server, 'Rekeyed');
  const other = await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } });
  const changed = await api(server, 'PATCH', '/api/v1/me', { token: u.token, body: { password: 'a whole new secret', current_password: u.password } });
  assert.equal(changed.status, 200);
  for (const token of [u.token, other.body.access_token]) {
    assert.equal((await api(server, 'GET', '/api/v1/me', { token })).status, 401);
  }
  const fresh = await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: 'a whole new secret' } });
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: fresh.body.access_token })).status, 200);
});

/** A raw document socket (y-websocket's URL); resolves once open. */
function docSocket(roomId, doc, token) {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/rooms/${roomId}/docs/${doc}?token=${token}`, {
    headers: { 'cf-connecting-ip': randomIp() },
  });
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

// Under wrangler dev a client sees a server's close about 10 s after it was
// sent (the removal close of tests/chat.test.mjs takes as long), hence 20 s.
const CLOSE_MS = 20_000;
const within = (p, ms, what) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms))]);

async function roomOf(u) {
  const r = await api(server, 'POST', '/api/v1/rooms', { token: u.token, body: { name: 'Sockets', kind: 'group' } });
  assert.equal(r.status, 201);
  return r.body.id;
}

test("signing out closes that session's chat and document sockets (4001); another session's stay open", async () => {
  const u = await register(server, 'Sockets');
  const roomA = await roomOf(u);
  const roomB = await roomOf(u);
  const other = (await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } })).body;
  const chat = await join(server, roomA, u.token);
  const doc = await docSocket(roomB, 'notes', u.token);
  const keptChat = await join(server, roomA, other.access_token);
  const keptDoc = await docSocket(roomB, 'notes', other.access_token);
  const out = await api(server, 'POST', '/api/v1/auth/logout', { body: { refresh_token: u.refresh_token } });
  assert.equal(out.status, 204);
  assert.equal((await within(chat.closedPromise, CLOSE_MS, 'chat close')).code, 4001);
  assert.equal((await within(doc.closed, CLOSE_MS, 'document close')).code, 4001);
  // The other session's sockets still work.
  keptChat.send({ type: 'send', client_msg_id: 'still-here', body: 'still here' });
  const ack = await keptChat.next((f) => f.type === 'ack');
  assert.equal(ack.client_msg_id, 'still-here');
  assert.equal(keptDoc.ws.readyState, WebSocket.OPEN);
  // A new socket with the ended session's token is refused.
  await assert.rejects(join(server, roomA, u.token), /401/);
  keptChat.close();
  keptDoc.ws.close();
});

test('sign out everywhere ends every session and closes every socket of the person', async () => {
  const u = await register(server, 'Everywhere');
  const bystander = await register(server, 'Bystander');
  const roomId = await roomOf(u);
  await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: u.token, body: { user_id: bystander.user.id, role: 'member' } });
  const other = (await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } })).body;
  const chat1 = await join(server, roomId, u.token);
  const chat2 = await join(server, roomId, other.access_token);
  const doc = await docSocket(roomId, 'plan', other.access_token);
  const theirs = await join(server, roomId, bystander.token);
  const noBearer = await api(server, 'POST', '/api/v1/auth/logout', { body: { everywhere: true } });
  assert.equal(noBearer.status, 401);
  const out = await api(server, 'POST', '/api/v1/auth/logout', { token: u.token, body: { everywhere: true } });
  assert.equal(out.status, 204);
  for (const closed of [chat1.closedPromise, chat2.closedPromise, doc.closed]) {
    assert.equal((await within(closed, CLOSE_MS, 'close')).code, 4001);
  }
  for (const token of [u.token, other.access_token]) {
    assert.equal((await api(server, 'GET', '/api/v1/me', { token })).status, 401);
  }
  for (const refresh_token of [u.refresh_token, other.refresh_token]) {
    assert.equal((await api(server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token } })).status, 401);
  }
  assert.equal(theirs.closed, null, 'other people keep their sockets');
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: bystander.token })).status, 200);
  theirs.close();
});

/** The person's `/me` socket; resolves once its `hello` arrived. */
function meSocket(token) {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/me/ws?token=${token}`, {
    headers: { 'cf-connecting-ip': randomIp() },
  });
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.on('message', (d) => { if (JSON.parse(d.toString()).type === 'hello') resolve({ ws, closed }); });
    ws.once('error', reject);
  });
}

test("signing out closes that session's /me socket (4001) as it does room sockets; another session's stays open", async () => {
  const u = await register(server, 'Inbox watcher');
  const other = (await api(server, 'POST', '/api/v1/auth/login', { body: { email: u.email, password: u.password } })).body;
  const mine = await meSocket(u.token);
  const kept = await meSocket(other.access_token);
  const out = await api(server, 'POST', '/api/v1/auth/logout', { body: { refresh_token: u.refresh_token } });
  assert.equal(out.status, 204);
  assert.equal((await within(mine.closed, CLOSE_MS, '/me close')).code, 4001);
  assert.equal(kept.ws.readyState, WebSocket.OPEN);
  // The kept socket still answers.
  const pong = new Promise((resolve) => kept.ws.on('message', (d) => { const f = JSON.parse(d.toString()); if (f.type === 'pong') resolve(f); }));
  kept.ws.send(JSON.stringify({ type: 'ping', nonce: 'n1' }));
  assert.equal((await within(pong, CLOSE_MS, 'pong')).nonce, 'n1');
  // Signing out everywhere closes the rest.
  const everywhere = await api(server, 'POST', '/api/v1/auth/logout', { token: other.access_token, body: { everywhere: true } });
  assert.equal(everywhere.status, 204);
  assert.equal((await within(kept.closed, CLOSE_MS, '/me close everywhere')).code, 4001);
});

test('failed sign-ins to one account from many addresses lock it for a while (429 sign_in_locked)', async () => {
  const u = await register(server, 'Targeted');
  for (let i = 0; i < 10; i += 1) {
    const r = await api(server, 'POST', '/api/v1/auth/login', { ip: randomIp(), body: { email: u.email, password: `guess number ${i}` } });
    assert.equal(r.status, 401, `attempt ${i}`);
  }
  // Even the right password waits: otherwise the lock would tell when a guess was right.
  const locked = await api(server, 'POST', '/api/v1/auth/login', { ip: randomIp(), body: { email: u.email.toUpperCase(), password: u.password } });
  assert.equal(locked.status, 429);
  assert.equal(locked.body.error.code, 'sign_in_locked');
  assert.match(locked.body.error.message, /failed sign-ins/);
  const retry = Number(locked.headers.get('retry-after'));
  assert.ok(retry > 0 && retry <= 900, `retry-after ${retry}`);
  // Other accounts, and the account's existing sessions, are not affected.
  const other = await register(server, 'Bystander');
  assert.equal((await api(server, 'POST', '/api/v1/auth/login', { body: { email: other.email, password: other.password } })).status, 200);
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: u.token })).status, 200);
  // Unknown emails are counted the same way, so the lock reveals no account.
  const ghost = `ghost-${Date.now()}@example.org`;
  const statuses = [];
  for (let i = 0; i < 11; i += 1) {
    statuses.push((await api(server, 'POST', '/api/v1/auth/login', { body: { email: ghost, password: 'whatever pw' } })).status);
  }
  assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
});

const cookieMode = { 'x-tessera-session': 'cookie' };

/** The `tessera_refresh` cookies of a response: [{ value, attributes }] by path. */
function refreshCookies(res) {
  const found = {};
  for (const c of res.headers.getSetCookie()) {
    const [pair, ...attrs] = c.split(';').map((x) => x.trim());
    const [name, value] = pair.split('=');
    if (name !== 'tessera_refresh') continue;
    const attributes = Object.fromEntries(attrs.map((a) => { const [k, v] = a.split('='); return [k.toLowerCase(), v ?? true]; }));
    found[attributes.path] = { value, attributes };
  }
  return found;
}

test('cookie sessions: the refresh token travels only in an HttpOnly, Secure, SameSite=Strict cookie of the refresh and logout routes', async () => {
  const email = `cookie-${Date.now()}@example.org`;
  const reg = await api(server, 'POST', '/api/v1/auth/register', {
    headers: cookieMode, body: { email, password: 'cookie jar secret', display_name: 'Cookie' },
  });
  assert.equal(reg.status, 201);
  assert.equal(reg.body.refresh_token, undefined, 'the JSON has no refresh token');
  assert.ok(reg.body.access_token && reg.body.user.email === email);
  const cookies = refreshCookies(reg);
  assert.deepEqual(Object.keys(cookies).sort(), ['/api/v1/auth/logout', '/api/v1/auth/refresh']);
  for (const { value, attributes } of Object.values(cookies)) {
    assert.ok(value.length >= 40);
    assert.equal(attributes.httponly, true);
    assert.equal(attributes.secure, true);
    assert.equal(attributes.samesite, 'Strict');
    assert.equal(attributes['max-age'], String(30 * 24 * 3600));
  }
  const token = cookies['/api/v1/auth/refresh'].value;
  const send = (path, extra = {}) => api(server, 'POST', path, { headers: { ...cookieMode, cookie: `tessera_refresh=${extra.cookie ?? token}` }, ...extra });

  // Refresh with no body reads the cookie and rotates it.
  const r1 = await send('/api/v1/auth/refresh');
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  assert.equal(r1.body.refresh_token, undefined);
  const next = refreshCookies(r1)['/api/v1/auth/refresh'].value;
  assert.notEqual(next, token);
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: r1.body.access_token })).status, 200);
  // A body with a token is refused in cookie mode; a missing cookie is 401.
  assert.equal((await send('/api/v1/auth/refresh', { cookie: next, body: { refresh_token: next } })).status, 400);
  const none = await api(server, 'POST', '/api/v1/auth/refresh', { headers: cookieMode });
  assert.equal(none.status, 401);
  // Replaying the spent cookie ends the session and clears the cookie.
  const replay = await send('/api/v1/auth/refresh', { cookie: token });
  assert.equal(replay.status, 401);
  assert.equal(replay.body.error.code, 'refresh_token_reused');
  assert.equal(refreshCookies(replay)['/api/v1/auth/refresh'].attributes['max-age'], '0');
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: r1.body.access_token })).status, 401);

  // Login in cookie mode; logout revokes the cookie's session and clears the cookie.
  const login = await api(server, 'POST', '/api/v1/auth/login', { headers: cookieMode, body: { email, password: 'cookie jar secret' } });
  assert.equal(login.status, 200);
  assert.equal(login.body.refresh_token, undefined);
  const loginToken = refreshCookies(login)['/api/v1/auth/logout'].value;
  const out = await send('/api/v1/auth/logout', { cookie: loginToken });
  assert.equal(out.status, 204);
  const cleared = refreshCookies(out);
  assert.equal(cleared['/api/v1/auth/logout'].value, '');
  assert.equal(cleared['/api/v1/auth/refresh'].attributes['max-age'], '0');
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: login.body.access_token })).status, 401);
  assert.equal((await send('/api/v1/auth/refresh', { cookie: loginToken })).status, 401);
  // Signing out without a cookie still clears it; an unknown mode is refused.
  assert.equal((await api(server, 'POST', '/api/v1/auth/logout', { headers: cookieMode })).status, 204);
  const odd = await api(server, 'POST', '/api/v1/auth/login', { headers: { 'x-tessera-session': 'jar' }, body: { email, password: 'cookie jar secret' } });
  assert.equal(odd.status, 400);
  // The JSON flow is unchanged for other clients.
  const json = await api(server, 'POST', '/api/v1/auth/login', { body: { email, password: 'cookie jar secret' } });
  assert.ok(json.body.refresh_token);
  assert.deepEqual(json.headers.getSetCookie(), []);
});

test('GET /auth/config: passwords, and no identity provider here', async () => {
  const r = await api(server, 'GET', '/api/v1/auth/config');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { password: true, oidc: null });
  const exchange = await api(server, 'POST', '/api/v1/auth/oidc', { body: { id_token: 'x.y.z' } });
  assert.equal(exchange.status, 401);
});
