// External identity: a local JWKS server stands in for an OIDC provider; its
// RS256 and ES256 tokens are accepted, users provisioned on first sight, and key
// rotation (a new `kid`) is picked up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';
import { after } from 'node:test';
import { api, freePort, startServer } from './harness.mjs';

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

function sign(kid, claims) {
  const k = keys.get(kid);
  const now = Math.floor(Date.now() / 1000);
  const body = { iss: issuer, aud: audience, iat: now, exp: now + 300, ...claims };
  const head = `${Buffer.from(JSON.stringify({ alg: k.alg, typ: 'JWT', kid })).toString('base64url')}.${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
  const signer = createSign('SHA256').update(head);
  const sig = k.alg === 'RS256'
    ? signer.sign(k.privateKey)
    : signer.sign({ key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${head}.${sig.toString('base64url')}`;
}

const rsaKid = addKey('rsa');
const server = await startServer({
  vars: { OIDC_ISSUER: issuer, OIDC_AUDIENCE: audience, OIDC_JWKS_URL: `http://127.0.0.1:${jwksPort}/jwks.json` },
});

test('an RS256 provider token provisions a user once', async () => {
  const token = sign(rsaKid, { sub: 'ext-1', email: 'Ext.One@Example.org', name: 'External One' });
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
  const ext = await api(server, 'GET', '/api/v1/me', { token: sign(rsaKid, { sub: 'ext-4', email }) });
  assert.equal(ext.status, 200);
  assert.notEqual(ext.body.id, local.body.user.id);
  assert.equal(ext.body.email, null);
});
