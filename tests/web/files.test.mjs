// Files in real browsers: a 12 MiB upload with progress, pause and resume,
// seen live by the other person, downloaded with identical bytes; an image
// attachment shown as a preview; an AI analysis with its progress and summary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { crc32, deflateSync } from 'node:zlib';
import { createRoom, log, person, registerInUi, setup, views } from './browser.mjs';
import { until } from '../harness.mjs';

const { server, browser } = await setup();
const ada = await person(browser, server, 'Ada');
const bob = await person(browser, server, 'Bob');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A small real PNG (a colour gradient), so the preview has something to decode. */
function png(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < h; y += 1) {
    rows.push(0);
    for (let x = 0; x < w; x += 1) rows.push((x * 255) / w, (y * 255) / h, 160);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

// Ada's tus PATCHes pass a gate: each waits `patchDelay` ms, so progress,
// pause and the other side's "is uploading" are observable on a fast local server.
let patchDelay = 0;
await ada.page.route('**/api/v1/uploads/*', async (route) => {
  if (route.request().method() === 'PATCH' && patchDelay) await sleep(patchDelay);
  await route.continue().catch(() => undefined); // an aborted (paused) request is gone
});

test('Ada and Bob share a room', async () => {
  await ada.page.goto('/');
  await registerInUi(ada);
  await createRoom(ada, 'Design files');
  await ada.page.getByRole('button', { name: 'Invite people' }).click();
  await ada.page.getByRole('button', { name: 'Create invite link' }).click();
  const link = await ada.page.getByLabel(/Invite link/).inputValue();
  await ada.page.getByRole('button', { name: 'Close invite people' }).click();
  await bob.page.goto(new URL(link).pathname);
  await registerInUi(bob);
  await bob.page.getByRole('button', { name: 'Join room' }).click();
  await bob.page.getByRole('heading', { level: 1, name: 'Design files' }).waitFor();
});

const big = randomBytes(12 * 1024 * 1024);

test('a 12 MiB upload shows progress to 100 %, pauses and resumes; Bob sees it live', async () => {
  await ada.page.getByRole('button', { name: 'Files', exact: true }).click();
  const panel = ada.page.getByRole('complementary', { name: 'Files' });
  // The limits are shown before anything is uploaded: size, the room's quota, the person's share.
  await panel.getByText(/Up to 100 MiB per file\. 0 B of 1\.0 GiB used in this room; yours 0 B of 256 MiB\./).waitFor();
  await bob.page.getByRole('button', { name: 'Files', exact: true }).click();
  patchDelay = 700;
  await panel.getByLabel('Upload files').setInputFiles({ name: 'big.bin', mimeType: 'application/octet-stream', buffer: big });
  const bar = ada.page.getByRole('progressbar', { name: 'big.bin' });
  await ada.page.waitForFunction(() => Number(document.querySelector('progress[aria-label="big.bin"]')?.value) >= 40);
  await bob.page.getByText(/Ada is uploading big\.bin — \d+ %/).waitFor();

  await ada.page.getByRole('button', { name: 'Pause big.bin' }).click();
  await ada.page.getByText(/Paused · /).waitFor();
  const paused = Number(await bar.getAttribute('value'));
  assert.ok(paused >= 40 && paused < 100, `paused at ${paused} %`);
  await sleep(1500);
  assert.equal(Number(await bar.getAttribute('value')), paused, 'no progress while paused');

  patchDelay = 200;
  await ada.page.getByRole('button', { name: 'Resume big.bin' }).click();
  await ada.page.waitForFunction(() => Number(document.querySelector('progress[aria-label="big.bin"]')?.value) === 100);
  await ada.page.getByText(/Uploaded · 12 MiB of 12 MiB/).waitFor();
  patchDelay = 0;
  await bob.page.getByRole('complementary', { name: 'Files' }).getByText('big.bin').waitFor();
  await bob.page.getByRole('complementary', { name: 'Files' }).getByText(/12 MiB of 1\.0 GiB used in this room; yours 0 B of 256 MiB\./).waitFor();
  ada.check();
  bob.check();
});

test('Bob downloads identical bytes through a signed link', async () => {
  const downloading = bob.page.waitForEvent('download');
  await bob.page.getByRole('complementary', { name: 'Files' }).getByRole('button', { name: 'Download big.bin' }).click();
  const file = await (await downloading).path();
  assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), createHash('sha256').update(big).digest('hex'));
});

test('an attached image renders as a preview on the other side', async () => {
  await ada.page.getByLabel('Attach files').setInputFiles({ name: 'diagram.png', mimeType: 'image/png', buffer: png(96, 64) });
  await ada.page.getByRole('list', { name: 'Attachments' }).getByText(/Uploaded/).waitFor();
  const box = ada.page.getByRole('textbox', { name: /^Message / });
  await box.fill('the diagram');
  await box.press('Enter');
  const img = log(bob.page).getByRole('img', { name: 'diagram.png' });
  await img.waitFor();
  await bob.page.waitForFunction(() => document.querySelector('img[alt="diagram.png"]')?.naturalWidth === 96);
});

test('"Analyze" runs an AI job with progress and shows its summary to both', async () => {
  const notes = Buffer.from('# Launch notes\n\nThe launch moves to Friday. Marketing needs the final copy by Wednesday.\nQA signs off on Thursday after the regression run.\n'.repeat(20));
  const panel = ada.page.getByRole('complementary', { name: 'Files' });
  await panel.getByLabel('Upload files').setInputFiles({ name: 'notes.md', mimeType: 'text/markdown', buffer: notes });
  await panel.getByRole('button', { name: 'Analyze notes.md' }).click();
  const summary = panel.getByRole('region', { name: 'Summary of notes.md' });
  await summary.waitFor({ timeout: 30_000 });
  assert.match(await summary.innerText(), /launch|Friday/i);
  await bob.page.getByRole('complementary', { name: 'Files' }).getByRole('region', { name: 'Summary of notes.md' }).waitFor({ timeout: 30_000 });
  await views(ada.page, 'files-panel');
  ada.check();
  bob.check();
});

// Regressions of the analysis that vanished under load: a files list read
// before a file was added, answering after a newer read, hid that file (and
// its summary); the answer to "Analyze" arriving after the job's `job_done`
// put the finished job back to queued.
test('a files list that answers late does not hide a newer file', async () => {
  const panel = ada.page.getByRole('complementary', { name: 'Files' });
  const held = [];
  const list = /\/api\/v1\/rooms\/[^/]+\/files\?/;
  await ada.page.route(list, async (route) => {
    if (route.request().method() !== 'GET') return route.fallback();
    held.push({ route, response: await route.fetch() });
  });
  const text = (name) => ({ name, mimeType: 'text/plain', buffer: Buffer.from(`${name}\n`) });
  await panel.getByLabel('Upload files').setInputFiles(text('older.txt'));
  await until('the list read after older.txt', () => held.length >= 1);
  await panel.getByLabel('Upload files').setInputFiles(text('newer.txt'));
  await until('the list read after newer.txt', () => held.length >= 2);
  const [stale, fresh] = held;
  await ada.page.unroute(list);
  await fresh.route.fulfill({ response: fresh.response });
  await panel.getByRole('button', { name: 'Download newer.txt' }).waitFor();
  await stale.route.fulfill({ response: stale.response });
  await ada.page.evaluate(() => new Promise((r) => setTimeout(r, 500)));
  assert.ok(await panel.getByRole('button', { name: 'Download newer.txt' }).isVisible(), 'newer.txt is still listed');
  ada.check();
});

test('the answer to "Analyze" arriving after the job finished does not undo the summary', async () => {
  const panel = ada.page.getByRole('complementary', { name: 'Files' });
  await panel.getByLabel('Upload files').setInputFiles({ name: 'plan.md', mimeType: 'text/markdown', buffer: Buffer.from('# Plan\n\nThe launch moves to Friday.\n'.repeat(10)) });
  const summary = panel.getByRole('region', { name: 'Summary of plan.md' });
  await ada.page.route('**/api/v1/files/*/analyze', async (route) => {
    const response = await route.fetch();
    await summary.waitFor({ timeout: 30_000 });
    await route.fulfill({ response });
  });
  const answered = ada.page.waitForResponse('**/api/v1/files/*/analyze', { timeout: 60_000 });
  await panel.getByRole('button', { name: 'Analyze plan.md' }).click();
  await summary.waitFor({ timeout: 30_000 });
  await answered;
  await ada.page.evaluate(() => new Promise((r) => setTimeout(r, 500)));
  assert.ok(await summary.isVisible(), 'the summary is still shown');
  await ada.page.unroute('**/api/v1/files/*/analyze');
  ada.check();
});
