// Accounts and tokens over real HTTP against the Worker in workerd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, register, signHs256, startServer, randomIp } from './harness.mjs';

const server = await startServer();
const now = () => Math.floor(Date.now() / 1000);
const claims = (sub, extra = {}) => ({
  sub, iss: 'tessera', aud: 'tessera-api', iat: now(), exp: now() + 600, jti: 'x', ...extra,
});

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
  const good = signHs256(claims(u.user.id));
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
  const twice = await api(server, 'POST', '/api/v1/auth/logout', { body: { refresh_token: u.refresh_token } });
  assert.equal(twice.status, 401);
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
