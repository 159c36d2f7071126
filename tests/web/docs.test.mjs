// Collaborative documents in real browsers: two people edit one document at
// once and converge, each seeing the other's caret and name; an edit made
// offline survives a reload and syncs afterwards; a viewer cannot type; a
// version is saved, compared and restored for everyone; a document deleted
// while someone was offline is not brought back by their copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRoom, invite, networkSwitch, person, registerInUi, setup, signInUi, views } from './browser.mjs';
import { register } from '../harness.mjs';

const { server, browser } = await setup();
const ada = await person(browser, server, 'Ada');
const bob = await person(browser, server, 'Bob');

const DOC = 'plan.md';

// Bob's network passes a switch: `goOffline()` closes his document sockets and
// refuses new ones and every API request (the server is out of reach, as on a
// train); the app's own files still load, as from the browser's cache.
const { down: goOffline, up: goOnline } = await networkSwitch(bob, /\/api\/v1\/rooms\/[^/]+\/docs\//, { api: true });

const textbox = (page) => page.getByRole('textbox', { name: `Text of ${DOC}` });

/** The editor's text as shown, without other people's caret widgets (their names sit inside the text's DOM). */
const shown = (page) => page.evaluate(() => {
  const host = document.querySelector('.editor-host');
  const lines = [...(host?.shadowRoot?.querySelectorAll('.cm-content > .cm-line') ?? [])];
  return lines.map((l) => {
    const c = l.cloneNode(true);
    for (const w of c.querySelectorAll('.cm-ySelectionCaret, .cm-widgetBuffer')) w.remove();
    return c.textContent.replace(/\u2060/g, '');
  }).join('\n');
});

/** Waits until the page's editor shows `text` (or matches it). */
async function shows(page, text, timeout = 10_000) {
  const until = Date.now() + timeout;
  let last;
  while (Date.now() < until) {
    last = await shown(page);
    if (typeof text === 'string' ? last === text : text.test(last)) return last;
    await page.waitForTimeout(50);
  }
  assert.fail(`the editor shows ${JSON.stringify(last)}, not ${text}`);
}

const saved = (page) => page.getByRole('status').filter({ hasText: /^Saved$/ }).waitFor();

/** Opens a document from the room's documents panel. */
async function openDoc(page, name) {
  await page.getByRole('button', { name: 'Documents', exact: true }).click();
  await page.getByRole('complementary', { name: 'Documents' }).getByRole('link', { name }).click();
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

test('Ada creates a document in a room; Bob opens it from the list', async () => {
  await ada.page.goto('/');
  await registerInUi(ada);
  await createRoom(ada, 'Writing room');
  await invite(ada, bob, 'Writing room');
  await ada.page.getByRole('button', { name: 'Documents', exact: true }).click();
  const panel = ada.page.getByRole('complementary', { name: 'Documents' });
  await panel.getByText('No documents yet.').waitFor();
  await panel.getByRole('button', { name: 'New document' }).click();
  const dialog = ada.page.getByRole('dialog', { name: 'New document' });
  await dialog.getByLabel('Name').fill('plan with spaces');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await dialog.getByRole('alert').getByText(/no spaces/).waitFor();
  await dialog.getByLabel('Name').fill(DOC);
  await dialog.getByRole('button', { name: 'Create' }).click();
  await ada.page.getByRole('heading', { level: 1, name: DOC }).waitFor();
  await textbox(ada.page).click();
  await ada.page.keyboard.type('# Plan\n\nAda writes here.');
  await saved(ada.page);
  await openDoc(bob.page, DOC);
  await shows(bob.page, '# Plan\n\nAda writes here.');
  ada.check();
  bob.check();
});

test('two people type at once and converge; each sees the other\'s caret with their name', async () => {
  await textbox(bob.page).click();
  await bob.page.keyboard.press('Control+End');
  await ada.page.keyboard.press('Control+Home');
  await ada.page.keyboard.press('End');
  await Promise.all([
    ada.page.keyboard.type(' (draft)', { delay: 15 }),
    bob.page.keyboard.type('\nBob adds a line.', { delay: 15 }),
  ]);
  const both = '# Plan (draft)\n\nAda writes here.\nBob adds a line.';
  await shows(ada.page, both);
  await shows(bob.page, both);
  await ada.page.locator('.cm-ySelectionInfo', { hasText: 'Bob' }).waitFor({ state: 'attached' });
  await bob.page.locator('.cm-ySelectionInfo', { hasText: 'Ada' }).waitFor({ state: 'attached' });
  await ada.page.getByRole('list', { name: 'Also here' }).getByText('Bob').waitFor({ state: 'attached' });
  await saved(ada.page);
  await views(ada.page, 'doc');
  ada.check();
  bob.check();
});

test('find and replace reaches the other editor; undo takes back only one\'s own change', async () => {
  await ada.page.getByRole('button', { name: 'Find and replace' }).click();
  await ada.page.getByRole('textbox', { name: 'Find' }).fill('Ada writes');
  await ada.page.getByRole('textbox', { name: 'Replace' }).fill('Ada wrote');
  await ada.page.getByRole('button', { name: 'replace all', exact: true }).click();
  await shows(bob.page, '# Plan (draft)\n\nAda wrote here.\nBob adds a line.');
  await views(ada.page, 'doc-find');
  await ada.page.getByRole('button', { name: 'close', exact: true }).click();
  await bob.page.keyboard.press('Control+Home');
  await bob.page.keyboard.press('End');
  await bob.page.keyboard.type(' v2');
  await shows(ada.page, '# Plan (draft) v2\n\nAda wrote here.\nBob adds a line.');
  await ada.page.getByRole('button', { name: 'Undo' }).click();
  const undone = '# Plan (draft) v2\n\nAda writes here.\nBob adds a line.';
  await shows(ada.page, undone);
  await shows(bob.page, undone);
  ada.check();
  bob.check();
});

test('an edit made offline survives a reload and reaches the other person when back online', async () => {
  await goOffline();
  await bob.page.getByRole('status').filter({ hasText: 'Offline — changes will sync' }).waitFor();
  await textbox(bob.page).click();
  await bob.page.keyboard.press('Control+End');
  await bob.page.keyboard.type('\nWritten offline.');
  await views(bob.page, 'doc-offline', { scan: false });
  // The page itself reloads (as from the browser's cache); the server stays out of reach.
  await bob.context.setOffline(false);
  await bob.page.reload();
  await bob.page.getByRole('heading', { level: 1, name: DOC }).waitFor();
  await shows(bob.page, /Bob adds a line\.\nWritten offline\.$/);
  await bob.page.getByRole('status').filter({ hasText: 'Offline — changes will sync' }).waitFor();
  assert.doesNotMatch(await shown(ada.page), /Written offline/, 'nothing left Bob\'s device while offline');
  await bob.context.setOffline(true);
  await goOnline();
  await shows(ada.page, /Bob adds a line\.\nWritten offline\.$/);
  await saved(bob.page);
  assert.equal(await shown(bob.page), await shown(ada.page));
  ada.check();
});

test('a viewer gets a read-only editor: their keystrokes are never applied or kept', async () => {
  const carol = await person(browser, server, 'Carol');
  const account = await register(server, 'Carol');
  Object.assign(carol, { email: account.email, password: account.password });
  await ada.page.getByRole('link', { name: /^Back to Writing room/ }).click();
  await invite(ada, carol, 'Writing room', { role: 'viewer', signIn: true });
  await openDoc(carol.page, DOC);
  const before = await shows(carol.page, /Written offline\.$/);
  assert.equal(await textbox(carol.page).getAttribute('aria-readonly'), 'true');
  await carol.page.getByRole('note').getByText('You are a viewer here').waitFor();
  await textbox(carol.page).click();
  await carol.page.keyboard.type('VIEWERTYPED');
  await carol.page.keyboard.press('Enter');
  assert.equal(await shown(carol.page), before, 'nothing typed shows');
  // Nothing reached the device's copy either (the IndexedDB updates of this document).
  const kept = await carol.page.evaluate(async () => {
    const name = (await indexedDB.databases()).map((d) => d.name).find((n) => n?.endsWith(':plan.md'));
    const db = await new Promise((resolve, reject) => { const r = indexedDB.open(name); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
    const all = await new Promise((resolve) => { const r = db.transaction('updates').objectStore('updates').getAll(); r.onsuccess = () => resolve(r.result); });
    db.close();
    return all.map((u) => new TextDecoder().decode(u)).join('');
  });
  assert.match(kept, /Written offline/, 'the cache holds the document');
  assert.doesNotMatch(kept, /VIEWERTYPED/);
  await views(carol.page, 'doc-viewer');
  assert.doesNotMatch(await shown(ada.page), /VIEWERTYPED/);
  carol.check();
  await carol.context.close();
});

test('a version is saved, compared with now and restored; both editors show the restored text', async () => {
  await openDoc(ada.page, DOC);
  const version = await shows(ada.page, /Written offline\.$/);
  await ada.page.getByRole('button', { name: 'Versions' }).click();
  const panel = ada.page.getByRole('complementary', { name: 'Versions' });
  await panel.getByLabel('Name this version').fill('Before the rewrite');
  await panel.getByRole('button', { name: 'Save version' }).click();
  await panel.getByText('Before the rewrite').waitFor();
  await panel.getByText(/^Ada · /).waitFor();

  await textbox(ada.page).click();
  await ada.page.keyboard.press('Control+a');
  await ada.page.keyboard.type('Completely new text.');
  await shows(bob.page, 'Completely new text.');
  await saved(ada.page);

  await panel.getByRole('button', { name: 'Compare Before the rewrite with now' }).click();
  const diff = ada.page.getByRole('dialog', { name: '“Before the rewrite” compared with now' });
  const table = diff.getByRole('table');
  await table.getByRole('cell', { name: 'Completely new text.' }).waitFor();
  await table.getByRole('cell', { name: 'Bob adds a line.' }).waitFor();
  await views(ada.page, 'doc-diff');
  await diff.getByRole('button', { name: 'Close' }).click();

  await panel.getByRole('button', { name: 'Restore Before the rewrite' }).click();
  await ada.page.getByRole('dialog', { name: 'Restore “Before the rewrite”?' }).getByRole('button', { name: 'Restore version' }).click();
  await shows(ada.page, version);
  await shows(bob.page, version);
  await views(ada.page, 'doc-versions');
  ada.check();
  bob.check();
});

test('signing out erases the documents this device kept', async () => {
  const kept = () => bob.page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith('tessera:')));
  assert.equal((await kept()).length, 1, 'Bob\'s device keeps plan.md');
  await bob.page.getByRole('button', { name: /^Account: Bob/ }).click();
  await bob.page.getByRole('dialog', { name: 'Your account' }).getByRole('button', { name: 'Sign out', exact: true }).click();
  await bob.page.getByRole('tab', { name: 'Sign in' }).waitFor();
  assert.deepEqual(await kept(), []);
  await signInUi(bob);
  await bob.page.getByRole('link', { name: /Writing room/ }).click();
  await openDoc(bob.page, DOC);
  await shows(bob.page, /Written offline\.$/);
  bob.check();
});

test('a document deleted while someone is offline is not brought back by their copy; they may save it anew', async () => {
  bob.page.setDefaultTimeout(5000);
  await goOffline();
  await textbox(bob.page).click();
  await bob.page.keyboard.press('Control+End');
  await bob.page.keyboard.type(' Bob, offline again.');
  await ada.page.getByRole('link', { name: /^Back to Writing room/ }).click();
  await ada.page.getByRole('button', { name: 'Documents', exact: true }).click();
  const panel = ada.page.getByRole('complementary', { name: 'Documents' });
  await panel.getByRole('button', { name: `Delete ${DOC}` }).click();
  await ada.page.getByRole('dialog', { name: `Delete ${DOC}?` }).getByRole('button', { name: 'Delete document' }).click();
  await panel.getByText('No documents yet.').waitFor();
  await goOnline();
  const gone = bob.page.getByRole('alert').filter({ hasText: 'This document was deleted' });
  await gone.waitFor();
  await gone.getByRole('button', { name: 'Save my copy as a file' }).waitFor();
  await views(bob.page, 'doc-deleted');
  // Ada's list, read again after Bob's copy reconnected, still has no such document.
  await ada.page.getByRole('button', { name: 'Close documents' }).click();
  await ada.page.getByRole('button', { name: 'Documents', exact: true }).click();
  await panel.getByText('No documents yet.').waitFor();
  assert.equal(await bob.page.evaluate(async () => (await indexedDB.databases()).filter((d) => d.name.startsWith('tessera:')).length), 0, 'Bob\'s device dropped its copy');

  await gone.getByLabel('Save it as a new document').fill('plan-bob.md');
  await gone.getByRole('button', { name: 'Save as new document' }).click();
  await bob.page.getByRole('heading', { level: 1, name: 'plan-bob.md' }).waitFor();
  await shows(bob.page, /Written offline\. Bob, offline again\.$/);
  await panel.getByRole('link', { name: 'plan-bob.md' }).waitFor();
  assert.equal(await panel.getByRole('link', { name: DOC, exact: true }).count(), 0);
  bob.check();
  ada.check();
});
