// Signed file links: what <img src> and <a download> use, since they cannot
// send a bearer header. A link is made for one person, works for 10 minutes,
// and only while that person is still a member of the file's room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { api, JWT_SECRET, randomIp, register, startServer } from './harness.mjs';
import { checkResponse } from './openapi.mjs';

const server = await startServer();

const b64 = (s) => Buffer.from(s).toString('base64');
// The smallest PNG header the server sniffs as image/png.
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('not really pixels')]);

async function roomWith(owner, members = []) {
  const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Links', kind: 'group' } });
  assert.equal(r.status, 201);
  for (const [user, role] of members) {
    const add = await api(server, 'POST', `/api/v1/rooms/${r.body.id}/members`, { token: owner.token, body: { user_id: user.user.id, role } });
    assert.equal(add.status, 201);
  }
  return r.body.id;
}

/** A finished file: tus creation-with-upload of the whole body at once. */
async function upload(owner, roomId, data, filename) {
  const r = await api(server, 'POST', '/api/v1/uploads', {
    token: owner.token,
    raw: data,
    headers: {
      'tus-resumable': '1.0.0',
      'upload-length': String(data.length),
      'upload-metadata': `room_id ${b64(roomId)},filename ${b64(filename)}`,
      'content-type': 'application/offset+octet-stream',
    },
  });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('upload-offset'), String(data.length));
  const id = r.headers.get('location').split('/').pop();
  const meta = await api(server, 'GET', `/api/v1/files/${id}`, { token: owner.token });
  assert.equal(meta.status, 200);
  assert.equal(meta.body.status, 'ready');
  return id;
}

async function makeLink(user, fileId) {
  const r = await api(server, 'POST', `/api/v1/files/${fileId}/link`, { token: user.token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** A browser's request: no Authorization header. */
async function get(url, { method = 'GET', headers = {} } = {}) {
  const res = await fetch(server.url + url, { method, headers: { 'cf-connecting-ip': randomIp(), ...headers } });
  const body = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type');
  checkResponse(method, url, res.status, type, type?.startsWith('application/json') && body.length ? JSON.parse(body.toString()) : null);
  return { status: res.status, headers: res.headers, body };
}

const errorCode = (r) => JSON.parse(r.body.toString()).error.code;

/** A link signed the way the server signs (key derived from JWT_SECRET). */
function forge(fileId, uid, exp) {
  const key = createHmac('sha256', JWT_SECRET).update('tessera file link v1').digest();
  const sig = createHmac('sha256', key).update(`${fileId}\n${uid}\n${exp}`).digest('base64url');
  return `/api/v1/files/${fileId}/content?exp=${exp}&uid=${uid}&sig=${sig}`;
}

test('a link serves the file without a bearer token, with ranges, tags and downloads', async () => {
  const owner = await register(server, 'Linker');
  const roomId = await roomWith(owner);
  const fileId = await upload(owner, roomId, PNG, 'pixel.png');
  const before = Math.floor(Date.now() / 1000);
  const link = await makeLink(owner, fileId);
  assert.ok(link.url.startsWith(`/api/v1/files/${fileId}/content?`));
  assert.ok(link.expires_at >= before + 600 && link.expires_at <= before + 602, String(link.expires_at - before));
  const url = new URL(link.url, server.url);
  assert.equal(url.searchParams.get('uid'), owner.user.id);

  const whole = await get(link.url);
  assert.equal(whole.status, 200);
  assert.deepEqual(whole.body, PNG);
  assert.equal(whole.headers.get('content-type'), 'image/png');
  assert.match(whole.headers.get('content-disposition'), /^inline;/);
  const etag = whole.headers.get('etag');
  assert.ok(etag);

  const download = await get(`${link.url}&download=1`);
  assert.equal(download.status, 200);
  assert.match(download.headers.get('content-disposition'), /^attachment; filename="pixel.png"/);

  const part = await get(link.url, { headers: { range: 'bytes=1-3' } });
  assert.equal(part.status, 206);
  assert.deepEqual(part.body, PNG.subarray(1, 4));
  assert.equal(part.headers.get('content-range'), `bytes 1-3/${PNG.length}`);
  assert.equal((await get(link.url, { headers: { 'if-none-match': etag } })).status, 304);
  const head = await get(link.url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(PNG.length));

  // The bearer token still works, and download=1 applies to it too.
  const bearer = await get(`/api/v1/files/${fileId}/content?download=1`, { headers: { authorization: `Bearer ${owner.token}` } });
  assert.equal(bearer.status, 200);
  assert.match(bearer.headers.get('content-disposition'), /^attachment;/);
  // download is 1 or left out: another value is refused, not read as inline
  // (found by schema fuzzing), over a link and with the bearer token alike.
  for (const [url, headers] of [[`${link.url}&download=AAA`, {}], [`/api/v1/files/${fileId}/content?download=0`, { authorization: `Bearer ${owner.token}` }]]) {
    for (const method of ['GET', 'HEAD']) {
      const bad = await get(url, { method, headers });
      assert.equal(bad.status, 400, `${method} ${url}`);
      if (method === 'GET') assert.equal(errorCode(bad), 'invalid_input');
    }
  }
  // Without either: 401.
  assert.equal((await get(`/api/v1/files/${fileId}/content`)).status, 401);
});

test('expired and altered links are refused with 403 and a clear code', async () => {
  const owner = await register(server, 'Tamper');
  const other = await register(server, 'Other Member');
  const roomId = await roomWith(owner, [[other, 'member']]);
  const fileId = await upload(owner, roomId, Buffer.from('secret plans'), 'plans.txt');
  const otherFile = await upload(owner, roomId, Buffer.from('other'), 'other.txt');
  const link = await makeLink(owner, fileId);
  const url = new URL(link.url, server.url);
  const now = Math.floor(Date.now() / 1000);

  // The test signs as the server does: the signature scheme is what the docs say.
  const forged = await get(forge(fileId, owner.user.id, now + 60));
  assert.equal(forged.status, 200);
  assert.equal(forged.body.toString(), 'secret plans');
  const expired = await get(forge(fileId, owner.user.id, now - 5));
  assert.equal(expired.status, 403);
  assert.equal(errorCode(expired), 'link_expired');

  const altered = (name, value) => {
    const u = new URL(url);
    u.searchParams.set(name, value);
    return u.pathname + u.search;
  };
  for (const bad of [
    altered('exp', String(link.expires_at + 3600)),
    altered('uid', other.user.id),
    altered('sig', 'AAAA'),
    altered('sig', '!!'),
    altered('exp', 'soon'),
    `/api/v1/files/${otherFile}/content${url.search}`,
    `/api/v1/files/${fileId}/content?exp=${link.expires_at}&uid=${owner.user.id}`,
  ]) {
    const r = await get(bad);
    assert.equal(r.status, 403, bad);
    assert.equal(errorCode(r), 'link_invalid', bad);
  }
});

test('only members make links, and a removed member’s links stop at once', async () => {
  const owner = await register(server, 'Room Owner');
  const viewer = await register(server, 'Just Looking');
  const leaver = await register(server, 'Soon Gone');
  const stranger = await register(server, 'Outsider');
  const roomId = await roomWith(owner, [[viewer, 'viewer'], [leaver, 'member']]);
  const fileId = await upload(owner, roomId, Buffer.from('for members'), 'm.txt');

  const seen = await makeLink(viewer, fileId);
  assert.equal((await get(seen.url)).status, 200, 'viewers read files');
  const r = await api(server, 'POST', `/api/v1/files/${fileId}/link`, { token: stranger.token });
  assert.equal(r.status, 404);
  assert.equal((await api(server, 'POST', `/api/v1/files/${fileId}/link`)).status, 401);

  const leaving = await makeLink(leaver, fileId);
  assert.equal((await get(leaving.url)).status, 200);
  const removed = await api(server, 'DELETE', `/api/v1/rooms/${roomId}/members/${leaver.user.id}`, { token: owner.token });
  assert.equal(removed.status, 204);
  const after = await get(leaving.url);
  assert.equal(after.status, 404);
  assert.equal(errorCode(after), 'not_found');
  // A deleted file's links go with it.
  assert.equal((await api(server, 'DELETE', `/api/v1/files/${fileId}`, { token: owner.token })).status, 204);
  assert.equal((await get(seen.url)).status, 404);
});
