// Files: resumable uploads with the real tus-js-client into R2 through the
// Worker in workerd, downloads with ranges, attachments and room events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as tus from 'tus-js-client';
import { api, randomIp, register, startServer } from './harness.mjs';
import { join } from './ws.mjs';

const MiB = 1024 * 1024;
const server = await startServer({
  vars: {
    FILE_MAX_BYTES: String(30 * MiB),
    ROOM_QUOTA_BYTES: String(64 * MiB),
    MEMBER_QUOTA_BYTES: String(48 * MiB),
    AI_MEMBER_DAILY_TOKENS: '3000',
  },
});

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const b64 = (s) => Buffer.from(s).toString('base64');
const metadata = (m) => Object.entries(m).map(([k, v]) => `${k} ${b64(v)}`).join(',');

async function room(owner, name = 'Files') {
  const r = await api(server, 'POST', '/api/v1/rooms', { token: owner.token, body: { name, kind: 'group' } });
  assert.equal(r.status, 201);
  return r.body.id;
}

async function addMember(owner, roomId, user, role) {
  const r = await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: owner.token, body: { user_id: user.user.id, role } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/** Uploads `data` with tus-js-client; resolves with the upload URL. */
function tusUpload(srv, token, data, meta, { chunkSize = MiB, uploadUrl, onProgress, stopAfter } = {}) {
  const ip = randomIp();
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `${srv.url}/api/v1/uploads`,
      uploadUrl,
      chunkSize,
      metadata: meta,
      headers: { authorization: `Bearer ${token}`, 'cf-connecting-ip': ip },
      retryDelays: [],
      onProgress: (sent, total) => {
        onProgress?.(sent, total);
      },
      onChunkComplete: (_chunk, accepted) => {
        if (stopAfter && accepted >= stopAfter) {
          upload.abort().then(() => resolve({ url: upload.url, aborted: true }), reject);
        }
      },
      onError: reject,
      onSuccess: () => resolve({ url: upload.url, aborted: false }),
    });
    upload.start();
  });
}

const idOf = (url) => url.split('/').pop();

async function download(token, fileId, headers = {}) {
  const res = await fetch(`${server.url}/api/v1/files/${fileId}/content`, {
    headers: { authorization: `Bearer ${token}`, 'cf-connecting-ip': randomIp(), ...headers },
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

function tusRequest(method, path, token, headers = {}, body) {
  return fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'cf-connecting-ip': randomIp(), 'tus-resumable': '1.0.0', ...headers },
    body,
  });
}

test('OPTIONS announces the tus capabilities', async () => {
  const res = await fetch(`${server.url}/api/v1/uploads`, { method: 'OPTIONS' });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('tus-version'), '1.0.0');
  assert.equal(res.headers.get('tus-resumable'), '1.0.0');
  assert.equal(res.headers.get('tus-max-size'), String(30 * MiB));
  for (const ext of ['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum']) {
    assert.ok(res.headers.get('tus-extension').split(',').includes(ext), ext);
  }
  assert.match(res.headers.get('tus-checksum-algorithm'), /sha1/);
});

test('tus-js-client uploads 20 MiB in 1 MiB chunks; progress and file_added reach the room; the bytes come back exact', async () => {
  const owner = await register(server, 'Uploader');
  const roomId = await room(owner);
  const watcher = await join(server, roomId, owner.token);
  const data = randomBytes(20 * MiB);
  const { url } = await tusUpload(server, owner.token, data, { filename: 'dir/../big data.bin', filetype: 'image/png', room_id: roomId });
  const fileId = idOf(url);
  const added = await watcher.next((f) => f.type === 'event' && f.event === 'file_added', 10_000);
  assert.equal(added.data.file.id, fileId);
  assert.equal(added.data.file.size, 20 * MiB);
  assert.equal(added.data.file.name, 'big data.bin');
  assert.ok(added.seq > 0, 'file_added is in the replayable stream');
  const progress = watcher.frames.filter((f) => f.type === 'event' && f.event === 'upload_progress');
  assert.ok(progress.length >= 1, 'at least one upload_progress event');
  assert.ok(progress.every((p) => p.data.file_id === fileId && p.data.length === 20 * MiB));
  assert.ok(progress.length < 20, `progress is throttled (${progress.length} events for 21 requests)`);
  watcher.close();

  const meta = await api(server, 'GET', `/api/v1/files/${fileId}`, { token: owner.token });
  assert.equal(meta.status, 200);
  assert.equal(meta.body.sha256, sha256(data));
  assert.equal(meta.body.status, 'ready');
  assert.equal(meta.body.declared_type, 'image/png');
  assert.equal(meta.body.content_type, 'application/octet-stream', 'typed by its bytes, not its claim');
  const got = await download(owner.token, fileId);
  assert.equal(got.status, 200);
  assert.equal(sha256(got.body), sha256(data));
  assert.equal(got.headers.get('x-content-type-options'), 'nosniff');
  assert.match(got.headers.get('content-disposition'), /^attachment; filename="big data.bin"/);

  // Range requests return exactly the bytes asked for.
  for (const [range, start, end] of [['bytes=0-99', 0, 99], ['bytes=5242870-5242889', 5242870, 5242889], ['bytes=-10', data.length - 10, data.length - 1], [`bytes=${data.length - 5}-`, data.length - 5, data.length - 1]]) {
    const part = await download(owner.token, fileId, { range });
    assert.equal(part.status, 206, range);
    assert.equal(part.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`);
    assert.deepEqual(part.body, data.subarray(start, end + 1), range);
  }
  const outside = await download(owner.token, fileId, { range: `bytes=${data.length}-` });
  assert.equal(outside.status, 416);
  assert.equal(outside.headers.get('content-range'), `bytes */${data.length}`);
  const cached = await download(owner.token, fileId, { 'if-none-match': got.headers.get('etag') });
  assert.equal(cached.status, 304);
  assert.equal(cached.body.length, 0);
  const head = await fetch(`${server.url}/api/v1/files/${fileId}/content`, { method: 'HEAD', headers: { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp() } });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(data.length));

  const list = await api(server, 'GET', `/api/v1/rooms/${roomId}/files`, { token: owner.token });
  assert.deepEqual(list.body.files.map((f) => f.id), [fileId]);
});

test('an upload aborted midway resumes from the server offset and completes intact', async () => {
  const owner = await register(server, 'Resumer');
  const roomId = await room(owner);
  const data = randomBytes(12 * MiB + 12345);
  const meta = { filename: 'resume.bin', room_id: roomId };
  const first = await tusUpload(server, owner.token, data, meta, { stopAfter: 7 * MiB });
  assert.ok(first.aborted);
  const head = await tusRequest('HEAD', new URL(first.url).pathname, owner.token);
  assert.equal(head.status, 200);
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset >= 7 * MiB && offset < data.length, `server kept ${offset} bytes`);
  assert.equal(head.headers.get('upload-length'), String(data.length));
  assert.ok(head.headers.get('upload-expires'));
  let firstReported = null;
  await tusUpload(server, owner.token, data, meta, {
    uploadUrl: first.url,
    onProgress: (sent) => { firstReported ??= sent; },
  });
  assert.ok(firstReported >= offset, `the resumed upload went on from ${offset} (first progress ${firstReported})`);
  const fileId = idOf(first.url);
  const got = await download(owner.token, fileId);
  assert.equal(sha256(got.body), sha256(data));
  const metaRow = await api(server, 'GET', `/api/v1/files/${fileId}`, { token: owner.token });
  assert.equal(metaRow.body.sha256, sha256(data));
});

test('the chunks of an upload are not counted as API calls (120 PATCHes from one address)', async () => {
  const owner = await register(server, 'Chunky');
  const roomId = await room(owner);
  const data = randomBytes(120 * 1024);
  const { url } = await tusUpload(server, owner.token, data, { filename: 'many.bin', room_id: roomId }, { chunkSize: 1024 });
  const got = await download(owner.token, idOf(url));
  assert.equal(sha256(got.body), sha256(data));
});

async function create(token, roomId, length, extra = {}) {
  return tusRequest('POST', '/api/v1/uploads', token, {
    'upload-length': String(length),
    'upload-metadata': metadata({ filename: 'x.txt', room_id: roomId }),
    ...extra,
  });
}

test('wrong offset is 409, bad checksum is 460, and neither changes the upload', async () => {
  const owner = await register(server, 'Strict');
  const roomId = await room(owner);
  const created = await create(owner.token, roomId, 10);
  assert.equal(created.status, 201);
  assert.equal(created.headers.get('tus-resumable'), '1.0.0');
  const path = new URL(created.headers.get('location')).pathname;
  const patch = (offset, body, headers = {}) => tusRequest('PATCH', path, owner.token, {
    'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), ...headers,
  }, body);
  const sha1 = (b) => createHash('sha1').update(b).digest('base64');

  assert.equal((await patch(3, Buffer.from('abc'))).status, 409);
  const bad = await patch(0, Buffer.from('hello'), { 'upload-checksum': `sha1 ${sha1(Buffer.from('HELLO'))}` });
  assert.equal(bad.status, 460);
  assert.equal((await bad.json()).error.code, 'checksum_mismatch');
  assert.equal((await tusRequest('HEAD', path, owner.token)).headers.get('upload-offset'), '0');
  const good = await patch(0, Buffer.from('hello'), { 'upload-checksum': `sha1 ${sha1(Buffer.from('hello'))}` });
  assert.equal(good.status, 204);
  assert.equal(good.headers.get('upload-offset'), '5');
  assert.equal((await patch(5, Buffer.from('x'), { 'upload-checksum': 'md5 AAAA' })).status, 400);
  assert.equal((await patch(5, Buffer.from('x'), { 'content-type': 'text/plain' })).status, 415);
  assert.equal((await patch(5, Buffer.from('x'), { 'tus-resumable': '0.2.0' })).status, 412);
  assert.equal((await patch(5, Buffer.from('too many bytes'))).status, 400);
  assert.equal((await tusRequest('HEAD', path, owner.token)).headers.get('upload-offset'), '5');
  const last = await patch(5, Buffer.from('world'));
  assert.equal(last.status, 204);
  assert.equal(last.headers.get('upload-offset'), '10');
  assert.equal((await patch(10, Buffer.from(''))).status, 409, 'a finished upload takes no more');
  // Termination of another upload: it is gone afterwards.
  const other = await create(owner.token, roomId, 10);
  const otherPath = new URL(other.headers.get('location')).pathname;
  assert.equal((await tusRequest('DELETE', otherPath, owner.token)).status, 204);
  assert.equal((await tusRequest('HEAD', otherPath, owner.token)).status, 404);
});

test('creation-with-upload stores the first bytes with the creation', async () => {
  const owner = await register(server, 'Eager');
  const roomId = await room(owner);
  const empty = await create(owner.token, roomId, 8, { 'content-type': 'application/offset+octet-stream' });
  assert.equal(empty.status, 201);
  assert.equal(empty.headers.get('upload-offset'), '0');
  const withBody = await tusRequest('POST', '/api/v1/uploads', owner.token, {
    'upload-length': '8',
    'upload-metadata': metadata({ filename: 'pic.png', room_id: roomId }),
    'content-type': 'application/offset+octet-stream',
  }, Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'));
  assert.equal(withBody.status, 201);
  assert.equal(withBody.headers.get('upload-offset'), '8');
  const fileId = idOf(withBody.headers.get('location'));
  const got = await download(owner.token, fileId);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.match(got.headers.get('content-disposition'), /^inline;/);
});

test('non-members and viewers cannot upload; only the uploader reaches an upload; size and quota are enforced', async () => {
  const owner = await register(server, 'Owner');
  const viewer = await register(server, 'Viewer');
  const stranger = await register(server, 'Stranger');
  const roomId = await room(owner);
  await addMember(owner, roomId, viewer, 'viewer');
  const byStranger = await create(stranger.token, roomId, 10);
  assert.equal(byStranger.status, 404);
  const byViewer = await create(viewer.token, roomId, 10);
  assert.equal(byViewer.status, 403);
  assert.equal((await create('not-a-token', roomId, 10)).status, 401);
  const tooBig = await create(owner.token, roomId, 30 * MiB + 1);
  assert.equal(tooBig.status, 413);
  assert.equal((await tooBig.json()).error.code, 'file_too_large');
  assert.equal((await create(owner.token, roomId, 10, { 'upload-metadata': metadata({ filename: 'a' }) })).status, 400);

  const mine = await create(owner.token, roomId, 10);
  const path = new URL(mine.headers.get('location')).pathname;
  assert.equal((await tusRequest('HEAD', path, stranger.token)).status, 404);
  assert.equal((await tusRequest('PATCH', path, viewer.token, { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, Buffer.from('x'))).status, 404);

  // Quota (64 MiB here): 30 + 30 MiB reserved by two members' running uploads, 5 more refused.
  const quotaRoom = await room(owner, 'Quota');
  const other = await register(server, 'Other');
  await addMember(owner, quotaRoom, other, 'member');
  assert.equal((await create(owner.token, quotaRoom, 30 * MiB)).status, 201);
  assert.equal((await create(other.token, quotaRoom, 30 * MiB)).status, 201);
  const over = await create(owner.token, quotaRoom, 5 * MiB);
  assert.equal(over.status, 413);
  const refusal = (await over.json()).error;
  assert.equal(refusal.code, 'quota_exceeded');
  assert.match(refusal.message, /room past its quota/);
  // The files list says what is held, for the app to show before an upload.
  const { body } = await api(server, 'GET', `/api/v1/rooms/${quotaRoom}/files`, { token: other.token });
  assert.deepEqual(body.usage, {
    room_bytes: 60 * MiB, room_quota_bytes: 64 * MiB, my_bytes: 30 * MiB, member_quota_bytes: 48 * MiB, max_file_bytes: 30 * MiB,
  });
});

test('attachments: files of the room, shown with name, type and size; a file of another room is refused', async () => {
  const owner = await register(server, 'Attacher');
  const roomA = await room(owner, 'A');
  const roomB = await room(owner, 'B');
  const { url } = await tusUpload(server, owner.token, Buffer.from('%PDF-1.7 tiny'), { filename: 'plan.pdf', room_id: roomA });
  const fileId = idOf(url);
  const sock = await join(server, roomB, owner.token);
  sock.send({ type: 'send', client_msg_id: 'x1', body: 'look', attachments: [fileId] });
  const err = await sock.next((f) => f.type === 'error');
  assert.equal(err.code, 'invalid_input');
  assert.equal(err.ref, 'x1');
  const rest = await api(server, 'POST', `/api/v1/rooms/${roomB}/messages`, { token: owner.token, headers: { 'idempotency-key': 'k1' }, body: { body: 'look', attachments: [fileId] } });
  assert.equal(rest.status, 400);
  sock.close();
  const posted = await api(server, 'POST', `/api/v1/rooms/${roomA}/messages`, { token: owner.token, headers: { 'idempotency-key': 'k2' }, body: { body: '', attachments: [fileId] } });
  assert.equal(posted.status, 201, JSON.stringify(posted.body));
  assert.deepEqual(posted.body.attachments, [{ id: fileId, name: 'plan.pdf', content_type: 'application/pdf', size: 13 }]);
});

test('deleting a file: not by another member; by an admin; the bytes and the listing go, the room hears it', async () => {
  const owner = await register(server, 'Boss');
  const member = await register(server, 'Member');
  const roomId = await room(owner);
  await addMember(owner, roomId, member, 'member');
  const { url } = await tusUpload(server, owner.token, Buffer.from('<html><script>alert(1)</script>'), { filename: 'x.html', filetype: 'text/html', room_id: roomId });
  const fileId = idOf(url);
  const served = await download(member.token, fileId);
  assert.equal(served.headers.get('content-type'), 'text/plain; charset=utf-8', 'HTML is never served as HTML');
  assert.match(served.headers.get('content-disposition'), /^attachment;/);
  assert.equal((await api(server, 'DELETE', `/api/v1/files/${fileId}`, { token: member.token })).status, 403);
  const sock = await join(server, roomId, member.token);
  assert.equal((await api(server, 'DELETE', `/api/v1/files/${fileId}`, { token: owner.token })).status, 204);
  const gone = await sock.next((f) => f.type === 'event' && f.event === 'file_deleted');
  assert.equal(gone.data.id, fileId);
  sock.close();
  assert.equal((await download(owner.token, fileId)).status, 404);
  assert.equal((await api(server, 'GET', `/api/v1/files/${fileId}`, { token: owner.token })).status, 404);
  const list = await api(server, 'GET', `/api/v1/rooms/${roomId}/files`, { token: owner.token });
  assert.deepEqual(list.body.files, []);
});

test('an expired upload is aborted and its storage and quota are freed', async () => {
  // 10 s: a 6 MiB PATCH took up to 5 s on this shared 2-core machine under load.
  const short = await startServer({ vars: { UPLOAD_EXPIRY_SECS: '10', ROOM_QUOTA_BYTES: String(12 * MiB) } });
  const owner = await register(short, 'Slow');
  const r = await api(short, 'POST', '/api/v1/rooms', { token: owner.token, body: { name: 'Expiring', kind: 'group' } });
  const roomId = r.body.id;
  const req = (method, path, headers = {}, body) => fetch(short.url + path, {
    method, headers: { authorization: `Bearer ${owner.token}`, 'cf-connecting-ip': randomIp(), 'tus-resumable': '1.0.0', ...headers }, body,
  });
  const createIt = (len) => req('POST', '/api/v1/uploads', { 'upload-length': String(len), 'upload-metadata': metadata({ filename: 'slow.bin', room_id: roomId }) });
  const created = await createIt(10 * MiB);
  assert.equal(created.status, 201);
  assert.ok(created.headers.get('upload-expires'));
  const path = new URL(created.headers.get('location')).pathname;
  assert.equal((await createIt(4 * MiB)).status, 413, 'the running upload holds its quota');
  // 6 MiB: one part in R2 and 1 MiB buffered in the upload's object.
  const patched = await req('PATCH', path, { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, randomBytes(6 * MiB));
  assert.equal(patched.status, 204);
  assert.equal((await createIt(4 * MiB)).status, 413, 'it still does with bytes stored');
  const deadline = Date.now() + 30_000;
  let status;
  do {
    await new Promise((res) => setTimeout(res, 500));
    status = (await req('HEAD', path)).status;
  } while (status !== 410 && Date.now() < deadline);
  assert.equal(status, 410, 'the expired upload answers 410 Gone');
  const late = await req('PATCH', path, { 'content-type': 'application/offset+octet-stream', 'upload-offset': String(6 * MiB) }, Buffer.from('x'));
  assert.equal(late.status, 410);
  assert.equal((await createIt(10 * MiB)).status, 201, 'the quota it held is free again');
});

test("one member cannot take more than their share of a room's storage (48 of 64 MiB here), running uploads included", async () => {
  const owner = await register(server, 'Hoarder');
  const member = await register(server, 'Sharer');
  const roomId = await room(owner, 'Shares');
  await addMember(owner, roomId, member, 'member');
  assert.equal((await create(owner.token, roomId, 30 * MiB)).status, 201);
  const mine = await create(owner.token, roomId, 20 * MiB);
  assert.equal(mine.status, 413);
  const refusal = (await mine.json()).error;
  assert.equal(refusal.code, 'quota_exceeded');
  assert.match(refusal.message, /your share/);
  // The room still has room for the others.
  assert.equal((await create(member.token, roomId, 20 * MiB)).status, 201);
});

test('tus DELETE of a finished upload deletes the file everywhere: listing, metadata, bytes, the room', async () => {
  const owner = await register(server, 'Finisher');
  const roomId = await room(owner);
  const { url } = await tusUpload(server, owner.token, Buffer.from('finished bytes'), { filename: 'done.txt', room_id: roomId });
  const fileId = idOf(url);
  assert.equal((await api(server, 'GET', `/api/v1/files/${fileId}`, { token: owner.token })).status, 200);
  const sock = await join(server, roomId, owner.token);
  const del = await tusRequest('DELETE', new URL(url).pathname, owner.token);
  assert.equal(del.status, 204);
  const gone = await sock.next((f) => f.type === 'event' && f.event === 'file_deleted');
  assert.equal(gone.data.id, fileId);
  sock.close();
  assert.equal((await api(server, 'GET', `/api/v1/files/${fileId}`, { token: owner.token })).status, 404);
  assert.deepEqual((await api(server, 'GET', `/api/v1/rooms/${roomId}/files`, { token: owner.token })).body.files, []);
  assert.equal((await download(owner.token, fileId)).status, 404);
  assert.equal((await tusRequest('HEAD', new URL(url).pathname, owner.token)).status, 404);
});

test('a demoted uploader can delete their finished file neither over REST nor over tus', async () => {
  const owner = await register(server, 'Demoter');
  const uploader = await register(server, 'Demoted');
  const roomId = await room(owner);
  await addMember(owner, roomId, uploader, 'member');
  const data = Buffer.from('keep me');
  const { url } = await tusUpload(server, uploader.token, data, { filename: 'keep.txt', room_id: roomId });
  const fileId = idOf(url);
  const demoted = await api(server, 'PATCH', `/api/v1/rooms/${roomId}/members/${uploader.user.id}`, { token: owner.token, body: { role: 'viewer' } });
  assert.equal(demoted.status, 200);
  assert.equal((await api(server, 'DELETE', `/api/v1/files/${fileId}`, { token: uploader.token })).status, 403);
  const tusDelete = await tusRequest('DELETE', new URL(url).pathname, uploader.token);
  assert.equal(tusDelete.status, 403);
  const got = await download(owner.token, fileId);
  assert.equal(got.status, 200);
  assert.equal(sha256(got.body), sha256(data));
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${roomId}/files`, { token: owner.token })).body.files.length, 1);
});

async function analysed(token, fileId) {
  const started = await api(server, 'POST', `/api/v1/files/${fileId}/analyze`, { token });
  if (started.status !== 202) return started;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const job = (await api(server, 'GET', `/api/v1/jobs/${started.body.job.id}`, { token })).body.job;
    if (job.status === 'done' || job.status === 'failed') return { status: 202, job };
    if (Date.now() > deadline) throw new Error('analysis did not finish');
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("one member cannot spend more than their share of the room's AI budget (3,000 tokens here)", async () => {
  const owner = await register(server, 'Asker');
  const member = await register(server, 'Colleague');
  const roomId = await room(owner, 'Budget');
  await addMember(owner, roomId, member, 'member');
  const text = 'The launch is planned for spring and the venue is booked. '.repeat(70);
  const files = [];
  for (const name of ['a.txt', 'b.txt', 'c.txt']) {
    files.push(idOf((await tusUpload(server, owner.token, Buffer.from(text), { filename: name, room_id: roomId })).url));
  }
  // About 1,000 tokens read, and 2,500 expected for each analysis.
  const first = await analysed(owner.token, files[0]);
  assert.equal(first.job.status, 'done');
  const second = await analysed(owner.token, files[1]);
  assert.equal(second.status, 429);
  assert.equal(second.body.error.code, 'ai_budget_exhausted');
  assert.match(second.body.error.message, /your share/);
  // Another member still has their share of the room's budget.
  const theirs = await analysed(member.token, files[2]);
  assert.equal(theirs.job.status, 'done');
});
