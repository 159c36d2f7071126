// External identity: a local JWKS server stands in for an OIDC provider; its
// RS256 and ES256 tokens are accepted as bearer tokens, its ID tokens are
// exchanged for sessions, users are provisioned on first sight, and key
// rotation (a new `kid`) is picked up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';
import { after } from 'node:test';
import { api, freePort, register, startServer } from './harness.mjs';

const issuer = 'https://id.example';
const audience = 'tessera-test';
const keys = new Map();
function addKey(type) {
  const kid = randomUUID();
  const pair = type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  keys.set(kid, { ...pair, alg: type === 'rsa' ? 'RS256' : 'ES256' });
  return kid;
}
let jwksHits = 0;
const jwksPort = await freePort();
const jwks = createServer((req, res) => {
  jwksHits += 1;
  const list = [...keys].map(([kid, k]) => ({ ...k.publicKey.export({ format: 'jwk' }), kid, alg: k.alg, use: 'sig' }));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ keys: list }));
});
await new Promise((r) => jwks.listen(jwksPort, '127.0.0.1', r));
after(() => jwks.close());

function sign(kid, claims, { drop = [] } = {}) {
  const k = keys.get(kid);
  const now = Math.floor(Date.now() / 1000);
  const body = { iss: issuer, aud: audience, iat: now, exp: now + 300, ...claims };
  for (const name of drop) delete body[name];
  const head = `${Buffer.from(JSON.stringify({ alg: k.alg, typ: 'JWT', kid })).toString('base64url')}.${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
  const signer = createSign('SHA256').update(head);
  const sig = k.alg === 'RS256'
    ? signer.sign(k.privateKey)
    : signer.sign({ key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${head}.${sig.toString('base64url')}`;
}

const clientId = 'tessera-web';
const rsaKid = addKey('rsa');
const server = await startServer({
  vars: {
    OIDC_ISSUER: issuer,
    OIDC_AUDIENCE: audience,
    OIDC_JWKS_URL: `http://127.0.0.1:${jwksPort}/jwks.json`,
    OIDC_CLIENT_ID: clientId,
    OIDC_AUTHORIZATION_ENDPOINT: `${issuer}/authorize`,
    OIDC_TOKEN_ENDPOINT: `${issuer}/oauth/token`,
  },
});
/** An ID token for the browser app's client. */
const idToken = (claims, opts) => sign(rsaKid, { aud: clientId, ...claims }, opts);
const exchange = (id_token, { headers, nonce } = {}) =>
  api(server, 'POST', '/api/v1/auth/oidc', { headers, body: nonce === undefined ? { id_token } : { id_token, nonce } });

test('an RS256 provider token provisions a user once', async () => {
  const token = sign(rsaKid, { sub: 'ext-1', email: 'Ext.One@Example.org', email_verified: true, name: 'External One' });
  const me = await api(server, 'GET', '/api/v1/me', { token });
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.equal(me.body.display_name, 'External One');
  assert.equal(me.body.email, 'ext.one@example.org');
  const again = await api(server, 'GET', '/api/v1/me', { token: sign(rsaKid, { sub: 'ext-1' }) });
  assert.equal(again.body.id, me.body.id);
  // The provisioned user is a full user: it can create rooms.
  const room = await api(server, 'POST', '/api/v1/rooms', { token, body: { name: 'Ext', kind: 'group' } });
  assert.equal(room.status, 201);
});

test('wrong audience, wrong issuer, expired and forged provider tokens are refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const forged = (() => {
    const t = sign(rsaKid, { sub: 'ext-2' }).split('.');
    const sig = createSign('SHA256').update(`${t[0]}.${t[1]}`).sign(other.privateKey).toString('base64url');
    return `${t[0]}.${t[1]}.${sig}`;
  })();
  for (const [name, token] of Object.entries({
    audience: sign(rsaKid, { sub: 'ext-2', aud: 'other' }),
    issuer: sign(rsaKid, { sub: 'ext-2', iss: 'https://evil.example' }),
    expired: sign(rsaKid, { sub: 'ext-2', iat: now - 7200, exp: now - 3600 }),
    forged,
    unknownKid: sign(rsaKid, { sub: 'ext-2' }).replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'nope' })).toString('base64url')),
  })) {
    const r = await api(server, 'GET', '/api/v1/me', { token });
    assert.equal(r.status, 401, name);
    assert.equal(r.body.error.code, 'invalid_token', name);
  }
});

test('key rotation: a token signed by a new ES256 key is accepted after a re-fetch', async () => {
  // Let the re-fetch back-off of the previous test's unknown kid pass.
  await new Promise((r) => setTimeout(r, 10_500));
  const ecKid = addKey('ec');
  const before = jwksHits;
  const me = await api(server, 'GET', '/api/v1/me', { token: sign(ecKid, { sub: 'ext-3', preferred_username: 'ec-user' }) });
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.equal(me.body.display_name, 'ec-user');
  assert.ok(jwksHits > before, 'JWKS was fetched again');
});

test('an email already used by a password account is not linked', async () => {
  const email = `taken-${Date.now()}@example.org`;
  const local = await api(server, 'POST', '/api/v1/auth/register', { body: { email, password: 'local password', display_name: 'Local' } });
  const ext = await api(server, 'GET', '/api/v1/me', { token: sign(rsaKid, { sub: 'ext-4', email, email_verified: true }) });
  assert.equal(ext.status, 200);
  assert.notEqual(ext.body.id, local.body.user.id);
  assert.equal(ext.body.email, null);
});

test('provider tokens without an expiry, or claiming to live more than a day, are refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  for (const [name, token] of Object.entries({
    noExp: sign(rsaKid, { sub: 'ext-5' }, { drop: ['exp'] }),
    farExp: sign(rsaKid, { sub: 'ext-5', exp: now + 400 * 24 * 3600 }),
    noExpIdToken: idToken({ sub: 'ext-5' }, { drop: ['exp'] }),
  })) {
    const r = name.endsWith('IdToken') ? await exchange(token) : await api(server, 'GET', '/api/v1/me', { token });
    assert.equal(r.status, 401, name);
    assert.equal(r.body.error.code, 'invalid_token', name);
    assert.match(r.body.error.message, /expir/, name);
  }
});

test('an email the provider did not verify is not taken', async () => {
  const email = `unverified-${Date.now()}@example.org`;
  for (const [i, verified] of [[6, undefined], [7, false], [8, 'false']].entries()) {
    const claims = { sub: `ext-unverified-${i}`, email };
    if (verified !== undefined) claims.email_verified = verified;
    const me = await api(server, 'GET', '/api/v1/me', { token: sign(rsaKid, claims) });
    assert.equal(me.status, 200);
    assert.equal(me.body.email, null, `email_verified: ${verified}`);
  }
  // So it stays free for whoever owns it.
  const owner = await api(server, 'POST', '/api/v1/auth/register', { body: { email, password: 'i own this address', display_name: 'Owner' } });
  assert.equal(owner.status, 201);
  const verified = await api(server, 'GET', '/api/v1/me', { token: sign(rsaKid, { sub: 'ext-verified-9', email: `v-${email}`, email_verified: 'true' }) });
  assert.equal(verified.body.email, `v-${email}`);
});

test('an account of the provider sets a password only with a fresh ID token of its own', async () => {
  const email = `ext-pw-${Date.now()}@example.org`;
  const token = sign(rsaKid, { sub: 'ext-pw', email, email_verified: true });
  const me = await api(server, 'GET', '/api/v1/me', { token });
  assert.equal(me.body.email, email);
  const bare = await api(server, 'PATCH', '/api/v1/me', { token, body: { password: 'taken over now' } });
  assert.equal(bare.status, 403);
  assert.match(bare.body.error.message, /id_token/);
  const now = Math.floor(Date.now() / 1000);
  for (const [name, proof] of Object.entries({
    someoneElse: idToken({ sub: 'ext-other' }),
    stale: idToken({ sub: 'ext-pw', iat: now - 3600, exp: now + 300 }),
    accessToken: sign(rsaKid, { sub: 'ext-pw' }),
  })) {
    const r = await api(server, 'PATCH', '/api/v1/me', { token, body: { password: 'taken over now', id_token: proof } });
    assert.equal(r.status, 403, name);
    assert.equal(r.body.error.code, 'forbidden', name);
  }
  assert.equal((await api(server, 'POST', '/api/v1/auth/login', { body: { email, password: 'taken over now' } })).status, 401);
  const proven = await api(server, 'PATCH', '/api/v1/me', { token, body: { password: 'my own password', id_token: idToken({ sub: 'ext-pw' }) } });
  assert.equal(proven.status, 200, JSON.stringify(proven.body));
  assert.equal((await api(server, 'POST', '/api/v1/auth/login', { body: { email, password: 'my own password' } })).status, 200);
});

test('GET /auth/config describes the provider for the browser', async () => {
  const r = await api(server, 'GET', '/api/v1/auth/config');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {
    password: true,
    oidc: {
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/oauth/token`,
      client_id: clientId,
      scopes: ['openid', 'email', 'profile'],
    },
  });
});

test('an ID token is exchanged for a session (JSON or cookie); wrong client, stale, wrong nonce and access tokens are refused', async () => {
  const first = await exchange(idToken({ sub: 'web-1', email: `web-1-${Date.now()}@example.org`, email_verified: true, name: 'Web One', nonce: 'n-1' }), { nonce: 'n-1' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.user.display_name, 'Web One');
  assert.ok(first.body.refresh_token);
  const me = await api(server, 'GET', '/api/v1/me', { token: first.body.access_token });
  assert.equal(me.body.id, first.body.user.id);
  // The same identity as a bearer token is the same user.
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: sign(rsaKid, { sub: 'web-1' }) })).body.id, first.body.user.id);
  const cookie = await exchange(idToken({ sub: 'web-1' }), { headers: { 'x-tessera-session': 'cookie' } });
  assert.equal(cookie.status, 200);
  assert.equal(cookie.body.refresh_token, undefined);
  assert.ok(cookie.headers.getSetCookie().some((c) => /^tessera_refresh=[^;]+; Path=\/api\/v1\/auth\/refresh;.*HttpOnly; Secure; SameSite=Strict/.test(c)));
  // The rules of provider tokens hold on this path too: the email only when
  // verified, and a password only with a fresh ID token.
  const unverified = await exchange(idToken({ sub: 'web-3', email: `web-3-${Date.now()}@example.org`, email_verified: false }));
  assert.equal(unverified.status, 200);
  assert.equal(unverified.body.user.email, null);
  const setPassword = await api(server, 'PATCH', '/api/v1/me', { token: unverified.body.access_token, body: { password: 'no proof given' } });
  assert.equal(setPassword.status, 403);
  const now = Math.floor(Date.now() / 1000);
  for (const [name, token, nonce] of [
    ['other client', sign(rsaKid, { sub: 'web-1', aud: 'another-app' })],
    ['bearer audience', sign(rsaKid, { sub: 'web-1' })],
    ['stale', idToken({ sub: 'web-1', iat: now - 3600, exp: now + 300 })],
    ['wrong nonce', idToken({ sub: 'web-1', nonce: 'n-1' }), 'n-2'],
    ['missing nonce', idToken({ sub: 'web-1' }), 'n-3'],
    ['other azp', idToken({ sub: 'web-1', aud: [clientId, 'x'], azp: 'x' })],
    ['other issuer', idToken({ sub: 'web-1', iss: 'https://evil.example' })],
  ]) {
    const r = await exchange(token, { nonce });
    assert.equal(r.status, 401, name);
    assert.equal(r.body.error.code, 'invalid_token', name);
  }
});

test("signing out everywhere also refuses the provider's tokens issued before", async () => {
  const session = await exchange(idToken({ sub: 'web-2' }));
  const earlier = sign(rsaKid, { sub: 'web-2', iat: Math.floor(Date.now() / 1000) - 5 });
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: earlier })).status, 200);
  const out = await api(server, 'POST', '/api/v1/auth/logout', { token: session.body.access_token, body: { everywhere: true } });
  assert.equal(out.status, 204);
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: earlier })).status, 401);
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: session.body.access_token })).status, 401);
  // A token issued afterwards is fine again.
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: sign(rsaKid, { sub: 'web-2' }) })).status, 200);
  // Password accounts are untouched by another person's sign-out.
  const local = await register(server, 'Local');
  assert.equal((await api(server, 'GET', '/api/v1/me', { token: local.token })).status, 200);
});
