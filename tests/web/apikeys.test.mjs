// API keys in a real browser: from the account dialog a person creates a key
// limited to one room and reading, sees it once (copy button), the key works
// over the API, the list never shows it again, and revoking (after a
// confirmation) stops it at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { person, setup, signInUi, views } from './browser.mjs';
import { api, register } from '../harness.mjs';

const { server, browser } = await setup();

test('a person creates an API key, sees it once, and revokes it', async () => {
  const acc = await register(server, 'Kay');
  const made = await api(server, 'POST', '/api/v1/rooms', { token: acc.token, body: { kind: 'group', name: 'Exports' } });
  assert.equal(made.status, 201);
  await api(server, 'POST', '/api/v1/rooms', { token: acc.token, body: { kind: 'group', name: 'Elsewhere' } });
  const kay = await person(browser, server, 'Kay');
  await kay.context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const { page } = kay;
  await signInUi(kay, acc);
  await page.getByRole('button', { name: /^Account: / }).click();
  const account = page.getByRole('dialog', { name: 'Your account' });
  await account.getByRole('heading', { name: 'API keys' }).waitFor();
  await account.getByLabel('Key name').fill('nightly export');
  await account.getByLabel('Access').selectOption({ label: 'Read only' });
  await account.getByRole('checkbox', { name: 'chat' }).check();
  await account.getByRole('checkbox', { name: 'Exports' }).check();
  await account.getByRole('button', { name: 'Create API key' }).click();

  // Shown once, to copy.
  const box = account.getByRole('textbox', { name: /^New key nightly export/ });
  const key = await box.inputValue();
  assert.match(key, /^tsk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
  // The secret's alphabet has '_', so it is everything after the id, not a split piece.
  const secret = key.slice('tsk_'.length + 32 + 1);
  await account.getByRole('button', { name: 'Copy key' }).click();
  await page.getByText('API key copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  await account.getByText('Read chat in Exports').waitFor();
  await views(page, 'api-key-created');

  // It reads its room, and only that.
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${made.body.id}/messages`, { token: key })).status, 200);
  assert.equal((await api(server, 'POST', `/api/v1/rooms/${made.body.id}/messages`, { token: key, body: { body: 'x' }, headers: { 'idempotency-key': 'k1' } })).status, 403);

  // Done: the key is gone from the page, and the list never shows it.
  await account.getByRole('button', { name: 'Done' }).click();
  await box.waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(secret), 'the secret is not on the page any more');
  await page.reload();
  await page.getByRole('button', { name: /^Account: / }).click();
  await account.getByText('nightly export').waitFor();
  assert.ok(!(await page.content()).includes(secret), 'a fresh list does not carry the secret');

  // Revoke, after saying yes.
  await account.getByRole('button', { name: 'Revoke' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke nightly export?' });
  await confirm.getByText('Scripts using this key stop working at once.').waitFor();
  await views(page, 'api-key-revoke', { scan: false });
  await confirm.getByRole('button', { name: 'Revoke' }).click();
  await page.getByText('API key revoked.').waitFor();
  await account.getByText('nightly export').waitFor({ state: 'detached' });
  assert.equal((await api(server, 'GET', `/api/v1/rooms/${made.body.id}/messages`, { token: key })).status, 401);
  assert.deepEqual((await api(server, 'GET', '/api/v1/me/keys', { token: acc.token })).body.keys, []);
  kay.check();
});
