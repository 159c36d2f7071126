// Search and notifications in real browsers, two people: search across rooms
// as you type and open a hit at its message with the history around it; a
// mention by Ada reaches Bob's inbox badge and the room's badge live over
// the per-person socket, and the inbox opens at the message; notification
// settings; a room admin's outgoing webhook (secret once, test event,
// delivery log) and incoming webhook (URL once, posts, revoked).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { log, person, send, setup, signInUi, views } from './browser.mjs';
import { api, randomIp, register, until } from '../harness.mjs';

const { server, browser } = await setup();

// A webhook receiver on loopback.
const received = [];
const receiver = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => { received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() }); res.writeHead(200).end('ok'); });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
test.after(() => receiver.close());

// Seeded over the API: Ada's room with Bob in it and 56 messages, one of them about a zebra.
const adaAcc = await register(server, 'Ada');
const bobAcc = await register(server, 'Bob');
const mk = async (name) => {
  const r = await api(server, 'POST', '/api/v1/rooms', { token: adaAcc.token, body: { kind: 'group', name } });
  assert.equal(r.status, 201);
  const added = await api(server, 'POST', `/api/v1/rooms/${r.body.id}/members`, { token: adaAcc.token, body: { user_id: bobAcc.user.id, role: 'member' } });
  assert.equal(added.status, 201);
  return r.body.id;
};
const roomId = await mk('Rocket plans');
await mk('Side room');
const body = (i) => (i === 3 ? 'The zebra crossing is at the north gate' : `note ${i}`);
// 56: the newest page (50) leaves the hit out, so landing on it means the window was read around it.
// One after another: sent at once, the room may store them in another order, and a hit
// that lands among the newest 50 has no window read around it (and no "Jump to latest").
const posted = [];
for (let i = 0; i < 56; i += 1) {
  posted.push(await api(server, 'POST', `/api/v1/rooms/${roomId}/messages`, {
    token: adaAcc.token, ip: randomIp(), body: { body: body(i) }, headers: { 'idempotency-key': `seed-${i}` },
  }));
}
assert.deepEqual(posted.map((r) => r.status), Array(56).fill(201));
assert.deepEqual(posted.map((r) => r.body.id), Array.from({ length: 56 }, (_, i) => i + 1), 'stored in the order sent');

const ada = await person(browser, server, 'Ada');
const bob = await person(browser, server, 'Bob');
await Promise.all([signInUi(ada, adaAcc), signInUi(bob, bobAcc)]);

/** The message a jump landed on: highlighted (aria-current) and inside the log's visible area. */
async function landed(page, text) {
  const hit = log(page).locator('article[aria-current="true"]', { hasText: text });
  await hit.waitFor();
  await page.waitForFunction((t) => {
    const box = document.querySelector('[role="log"]').getBoundingClientRect();
    const el = document.querySelector('[role="log"] article[aria-current="true"]');
    if (!el || !el.textContent.includes(t)) return false;
    const r = el.getBoundingClientRect();
    return r.top >= box.top && r.bottom <= box.bottom;
  }, text);
  assert.match(await hit.getAttribute('class'), /\bfocused\b/);
  return hit;
}

test('search across rooms as you type; opening a hit lands on the message with the history around it', async () => {
  const { page } = bob;
  await page.keyboard.press('Control+k');
  const dialog = page.getByRole('dialog', { name: 'Search' });
  const box = dialog.getByRole('combobox', { name: 'Search rooms and messages' });
  await box.pressSequentially('zebr');
  // The cross-room index is current within seconds of the send (docs/search.md).
  const hit = dialog.getByRole('option', { name: /zebra crossing/ });
  await hit.waitFor({ timeout: 15_000 });
  assert.equal(await hit.locator('mark').first().textContent(), 'zebra', 'the matched word is marked');
  assert.match(await hit.textContent(), /Rocket plans/, 'the hit names its room');
  await views(page, 'search');
  // Filters: only files finds nothing; back to every kind finds it again.
  await dialog.getByRole('button', { name: 'Files' }).click();
  await dialog.getByText('Nothing found with these filters.').waitFor();
  await dialog.getByRole('button', { name: 'Files' }).click();
  await dialog.getByLabel('In room').selectOption({ label: 'Rocket plans' });
  await hit.click();

  await page.getByRole('heading', { level: 1, name: 'Rocket plans' }).waitFor();
  await landed(page, 'zebra crossing');
  // Context on both sides of it.
  await log(page).getByText('note 2', { exact: true }).waitFor();
  await log(page).getByText('note 4', { exact: true }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/rooms/${roomId}`);
  await views(page, 'search-landed', { scan: false });
  await page.getByRole('button', { name: /^(Jump to latest|\d+ new messages?)$/ }).click();
  await log(page).getByText('note 55', { exact: true }).waitFor();
  bob.check();
});

test('a mention by Ada reaches Bob\'s inbox badge and the room\'s badge live; the inbox opens at the message', async () => {
  await bob.page.getByRole('link', { name: /Side room/ }).click();
  await bob.page.getByRole('heading', { level: 1, name: 'Side room' }).waitFor();
  const inboxBtn = bob.page.getByRole('button', { name: /^Inbox/ });
  assert.equal(await inboxBtn.getAttribute('aria-label'), 'Inbox');

  await ada.page.getByRole('link', { name: /Rocket plans/ }).click();
  await send(ada.page, 'Please check the gate, @bob thanks');
  // Live over /me (the list's fallback polling is every 20 s, far beyond these waits).
  await bob.page.getByRole('button', { name: 'Inbox, 1 unread' }).waitFor({ timeout: 8_000 });
  await bob.page.getByRole('link', { name: /Rocket plans/ }).getByLabel('1 mention').waitFor({ timeout: 8_000 });

  await inboxBtn.click();
  const dialog = bob.page.getByRole('dialog', { name: 'Inbox' });
  const item = dialog.getByRole('link', { name: /Ada mentioned you/ });
  await item.waitFor();
  assert.match(await item.textContent(), /Please check the gate/);
  await views(bob.page, 'inbox');
  await item.click();
  await landed(bob.page, 'Please check the gate');
  await bob.page.getByRole('button', { name: 'Inbox', exact: true }).waitFor();
  bob.check();
  ada.check();
});

test('Bob\'s notification settings; Ada manages the room\'s outgoing and incoming webhooks', async () => {
  await bob.page.getByRole('button', { name: /^Inbox/ }).click();
  const dialog = bob.page.getByRole('dialog', { name: 'Inbox' });
  await dialog.getByRole('tab', { name: 'Settings' }).click();
  await dialog.getByRole('radio', { name: /Mentions only/ }).check();
  await until('the level saved', async () => (await api(server, 'GET', '/api/v1/me/preferences', { token: bobAcc.token })).body.level === 'mentions');
  // No VAPID key in this server: the app says push is off and why.
  await dialog.getByText(/no push key configured|cannot receive push/).waitFor();
  await views(bob.page, 'notify-settings');
  // The service worker push needs is same-origin, allowed by the CSP, and never cached stale.
  const sw = await fetch(`${server.url}/sw.js`);
  assert.equal(sw.status, 200);
  assert.match(sw.headers.get('content-type'), /javascript/);
  assert.equal(sw.headers.get('cache-control'), 'no-cache');
  assert.equal(await bob.page.evaluate(async () => {
    const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    const ok = reg.scope === `${location.origin}/`;
    await reg.unregister();
    return ok;
  }), true);
  await dialog.getByRole('button', { name: 'Close' }).click();

  const { page } = ada;
  await page.getByRole('button', { name: 'Notifications and webhooks' }).click();
  const panel = page.getByRole('complementary', { name: 'Notifications' });
  await panel.getByLabel('Notify me in this room').selectOption('muted');
  await until('the room muted', async () => (await api(server, 'GET', '/api/v1/me/preferences', { token: adaAcc.token })).body.rooms[roomId] === 'muted');

  const out = panel.getByRole('form', { name: 'New outgoing webhook' });
  await out.getByLabel('URL').fill(`http://127.0.0.1:${receiver.address().port}/hook`);
  await out.getByLabel('Description').fill('CI listener');
  await out.getByRole('checkbox', { name: 'File added' }).check();
  await out.getByRole('button', { name: 'Add webhook' }).click();
  const secret = panel.getByRole('group', { name: 'Signing secret' }).getByRole('textbox');
  assert.match(await secret.inputValue(), /^whsec_/, 'the secret is shown once, at creation');
  await panel.getByRole('group', { name: 'Actions for CI listener' }).getByRole('button', { name: 'Send test event' }).click();
  await until('the test event delivered', () => received.find((r) => r.body.includes('webhook.test') && r.headers['webhook-signature']));
  const [hook] = (await api(server, 'GET', `/api/v1/rooms/${roomId}/webhooks`, { token: adaAcc.token })).body.webhooks;
  await until('the delivery logged', async () => (await api(server, 'GET', `/api/v1/rooms/${roomId}/webhooks/${hook.id}/deliveries`, { token: adaAcc.token })).body.deliveries.length > 0);
  await panel.getByRole('button', { name: 'Delivery log' }).click();
  await panel.getByRole('table', { name: 'Deliveries to CI listener' }).getByRole('cell', { name: /^200/ }).waitFor();

  const inc = panel.getByRole('form', { name: 'New incoming webhook' });
  await inc.getByLabel('Bot name').fill('Builds');
  await inc.getByRole('button', { name: 'Create URL' }).click();
  const url = await panel.getByRole('group', { name: 'Webhook URL' }).getByRole('textbox').inputValue();
  assert.match(url, /\/api\/v1\/hooks\/[^/]+$/);
  const posted = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'cf-connecting-ip': randomIp() }, body: JSON.stringify({ text: 'build 42 passed' }) });
  assert.equal(posted.status, 200);
  await log(bob.page).getByText('build 42 passed').waitFor();
  await views(page, 'room-webhooks');
  await panel.getByRole('button', { name: 'Revoke Builds' }).click();
  await panel.getByText('No incoming webhooks yet.').waitFor();
  const after = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'cf-connecting-ip': randomIp() }, body: JSON.stringify({ text: 'late' }) });
  assert.notEqual(after.status, 200, 'a revoked URL posts nothing');
  ada.check();
  bob.check();
});
