// Two people chat in real browsers: register, create a room, invite by link,
// messages both ways live, a dropped socket resumes with exactly the missed
// messages, offline sends are delivered on reconnect, replies, reactions,
// edits and deletes reach the other side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRoom, log, networkSwitch, person, registerInUi, send, setup, signInUi, views } from './browser.mjs';
import { api, randomIp, register } from '../harness.mjs';

const { server, browser } = await setup();

const ada = await person(browser, server, 'Ada');
const bob = await person(browser, server, 'Bob');
let roomId;

// Bob's room sockets pass through a switch: `drop()` closes them and refuses
// new ones (the network is gone), `restore()` lets them through again.
const bobNet = await networkSwitch(bob, /\/api\/v1\/rooms\/[^/]+\/ws/);
const { down: drop, up: restore } = bobNet;

/** Waits until nothing the page sent is still pending. */
const settled = (page) => page.waitForFunction(() => !document.querySelector('[role="log"] article.pending'));

/** The bodies of the messages in a page's log, in order (delivered ones only). */
const bodies = (page) => log(page).locator('article:not(.pending) .body').allInnerTexts();

test('Ada registers and creates a room; Bob joins by an invite link', async () => {
  await ada.page.goto('/');
  await views(ada.page, 'sign-in');
  await registerInUi(ada);
  roomId = await createRoom(ada, 'Launch plan');
  await ada.page.getByRole('button', { name: 'Invite people' }).click();
  await ada.page.getByRole('button', { name: 'Create invite link' }).click();
  const link = await ada.page.getByLabel(/Invite link/).inputValue();
  assert.match(link, /\/invite\/[\w-]+$/);

  await bob.page.goto(new URL(link).pathname);
  await registerInUi(bob);
  await bob.page.getByRole('button', { name: 'Join room' }).click();
  await bob.page.getByRole('heading', { level: 1, name: 'Launch plan' }).waitFor();
  assert.equal(new URL(bob.page.url()).pathname, `/rooms/${roomId}`);
});

test('messages flow both ways live', async () => {
  await send(ada.page, 'Hello **Bob**, the plan is in `docs/plan.md`');
  await log(bob.page).getByText('the plan is in').waitFor();
  assert.equal(await log(bob.page).locator('strong', { hasText: 'Bob' }).count(), 1, 'bold rendered as an element');
  assert.equal(await log(bob.page).locator('code', { hasText: 'docs/plan.md' }).count(), 1);
  await send(bob.page, 'Hi Ada, reading it now');
  await log(ada.page).getByText('reading it now').waitFor();
  await ada.page.getByRole('button', { name: 'Members' }).click();
  await ada.page.getByRole('complementary', { name: 'Members' }).getByText('Bob').waitFor();
  await views(ada.page, 'room');
  await ada.page.getByRole('button', { name: 'Close members' }).click();
  ada.check();
  bob.check();
});

test('a dropped socket resumes with exactly the missed messages, once, in order', async () => {
  const before = await bodies(bob.page);
  await drop();
  await bob.page.getByRole('status').filter({ hasText: 'You are offline' }).waitFor();
  const five = [1, 2, 3, 4, 5].map((i) => `missed message ${i}`);
  for (const text of five) await send(ada.page, text);
  await log(ada.page).locator('article:not(.pending)', { hasText: 'missed message 5' }).waitFor();
  await settled(ada.page);
  assert.deepEqual(await bodies(bob.page), before, 'nothing arrives while the socket is down');
  await restore();
  await log(bob.page).getByText('missed message 5').waitFor();
  assert.deepEqual(await bodies(bob.page), [...before, ...five]);
  const seqs = (await log(bob.page).locator('article[data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq))));
  assert.equal(new Set(seqs).size, seqs.length, 'no message twice');
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in order');
});

test('a message sent offline shows as pending and is delivered on reconnect', async () => {
  await drop();
  await send(bob.page, 'written on the train');
  const pending = log(bob.page).getByRole('article', { name: 'Message sending' });
  await pending.getByText('written on the train').waitFor();
  await bob.page.getByRole('status').filter({ hasText: '1 message waits to be sent' }).waitFor();
  await views(bob.page, 'room-offline', { scan: false });
  await restore();
  await log(ada.page).getByText('written on the train').waitFor();
  await pending.waitFor({ state: 'detached' });
  assert.equal(await log(ada.page).getByText('written on the train').count(), 1);
  assert.equal(await log(bob.page).getByText('written on the train').count(), 1);
});

/** A delivered message in a page's log, by its text. */
const message = (page, text) => log(page).locator('article:not(.pending)').filter({ hasText: text });

test('a reply, a reaction, an edit and a delete reach the other side', async () => {
  await send(ada.page, 'Ship on Friday?');
  const question = message(bob.page, 'Ship on Friday?');
  await question.hover();
  await question.getByRole('button', { name: 'Reply' }).click();
  await bob.page.getByText('Replying to Ada').waitFor();
  await send(bob.page, 'Friday works');
  const reply = message(ada.page, 'Friday works');
  await reply.getByRole('button', { name: /Ada Ship on Friday\?/ }).waitFor();

  await reply.hover();
  await reply.getByRole('button', { name: 'Add reaction' }).click();
  await reply.getByRole('button', { name: 'React with 👍' }).click();
  await message(bob.page, 'Friday works').getByRole('button', { name: '👍 1' }).waitFor();

  // ↑ in the empty composer edits one's last message. The box holds its text
  // once it is named for the edit: what is typed at once is not overwritten.
  const box = ada.page.getByRole('textbox', { name: /^Message / });
  await box.click();
  const held = await box.evaluate((el) => new Promise((resolve) => {
    new MutationObserver((_, o) => { o.disconnect(); resolve({ name: el.getAttribute('aria-label'), value: el.value }); })
      .observe(el, { attributes: true, attributeFilter: ['aria-label'] });
    el.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowUp', bubbles: true, cancelable: true }));
  }));
  assert.deepEqual(held, { name: 'Edit message', value: 'Ship on Friday?' });
  const edit = ada.page.getByRole('textbox', { name: 'Edit message' });
  await edit.fill('Ship on Monday?');
  await edit.press('Enter');
  const edited = message(bob.page, 'Ship on Monday?');
  await edited.getByText('(edited)').waitFor();

  const mine = message(bob.page, 'Friday works');
  await mine.hover();
  await mine.getByRole('button', { name: 'Delete' }).click();
  await bob.page.getByRole('dialog', { name: 'Delete this message?' }).getByRole('button', { name: 'Delete message' }).click();
  await log(ada.page).getByText('This message was deleted.').waitFor();
  assert.equal(await log(ada.page).getByText('Friday works').count(), 0);
  ada.check();
  bob.check();
});

test('a message\'s actions are one tab stop; arrow keys move between them', async () => {
  const item = message(ada.page, 'Ship on Monday?');
  const tools = item.getByRole('toolbar', { name: /^Actions for the message of/ });
  const focused = () => ada.page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
  await tools.getByRole('button', { name: 'Add reaction' }).focus();
  await ada.page.keyboard.press('ArrowRight');
  assert.equal(await focused(), 'Reply');
  await ada.page.keyboard.press('End');
  assert.equal(await focused(), 'Delete');
  await ada.page.keyboard.press('ArrowRight');
  assert.equal(await focused(), 'Add reaction', 'wraps around');
  assert.deepEqual(await tools.getByRole('button').evaluateAll((bs) => bs.map((b) => b.tabIndex)), [0, -1, -1, -1], 'one tab stop');
  await ada.page.keyboard.press('Enter');
  // The picker renders, then takes focus (a frame later on a loaded machine).
  await ada.page.waitForFunction(() => document.activeElement?.getAttribute('aria-label') === 'React with 👍', null, { timeout: 2000 });
  await ada.page.keyboard.press('ArrowLeft');
  assert.equal(await focused(), 'React with ✅');
  await ada.page.keyboard.press('Escape');
  assert.equal(await focused(), 'Add reaction');
  await ada.page.keyboard.press('Shift+Tab');
  assert.notEqual(await focused(), 'Reply', 'Tab leaves the toolbar');
});

test('typing shows on the other side; @ offers members and the AI', async () => {
  const box = bob.page.getByRole('textbox', { name: /^Message / });
  await box.pressSequentially('Thanks @ad');
  await ada.page.getByText('Bob is typing…').waitFor();
  const list = bob.page.getByRole('listbox', { name: 'People to mention' });
  await list.getByRole('option', { name: /@ada/ }).waitFor();
  await box.press('Enter');
  await bob.page.waitForFunction(() => document.querySelector('textarea')?.value === 'Thanks @ada ');
  await box.pressSequentially('and @a');
  await list.getByRole('option', { name: /@ai/ }).waitFor();
  await box.press('Escape');
  await box.fill('Thanks @ada, see you Monday');
  await box.press('Enter');
  await message(ada.page, 'see you Monday').locator('.mention.me', { hasText: '@ada' }).waitFor();
});

test('Ctrl+K switches rooms by name', async () => {
  await createRoom(ada, 'Second room');
  await ada.page.keyboard.press('Control+k');
  const dialog = ada.page.getByRole('dialog', { name: 'Search' });
  await dialog.getByRole('combobox', { name: 'Search rooms and messages' }).fill('laun');
  await dialog.getByRole('listbox', { name: 'Results' }).getByRole('option', { name: 'Launch plan' }).waitFor();
  await dialog.getByRole('combobox', { name: 'Search rooms and messages' }).press('Enter');
  await ada.page.getByRole('heading', { level: 1, name: 'Launch plan' }).waitFor();
  // Enter in the same frame as the typing (a paste and Enter at once) opens
  // what was typed, not the option drawn for the text before it: the list is
  // drawn for "laun", then "second" and Enter arrive before the next frame.
  await ada.page.keyboard.press('Control+k');
  const box = dialog.getByRole('combobox', { name: 'Search rooms and messages' });
  await box.fill('laun');
  await dialog.getByRole('listbox', { name: 'Results' }).getByRole('option', { name: 'Second room' }).waitFor({ state: 'detached' });
  await box.evaluate((el) => {
    el.value = 'second';
    el.dispatchEvent(new InputEvent('input', { bubbles: true }));
    el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
  });
  await ada.page.getByRole('heading', { level: 1, name: 'Second room' }).waitFor();
  ada.check();
});

test('a direct room starts with a person found by name', async () => {
  await bob.page.getByRole('button', { name: 'New room' }).click();
  const dialog = bob.page.getByRole('dialog', { name: 'New room' });
  await dialog.getByRole('radio', { name: /Direct/ }).check();
  await dialog.getByRole('combobox', { name: 'Person' }).fill('ad');
  await dialog.getByRole('listbox', { name: 'People' }).getByRole('option', { name: /^Ada/ }).click();
  // A direct room is named for the other person, in its header and in the list.
  await bob.page.getByRole('heading', { level: 1, name: 'Ada' }).waitFor();
  await bob.page.getByRole('navigation', { name: 'Your rooms' }).getByRole('link', { name: 'Ada', exact: true }).waitFor();
  await send(bob.page, 'just between us');
  await log(bob.page).locator('article:not(.pending)', { hasText: 'just between us' }).waitFor();
  bob.check();
});

test('the app is served with its security headers; sources are not served', async () => {
  const home = await fetch(`${server.url}/rooms/anything`);
  assert.equal(home.status, 200);
  const csp = home.headers.get('content-security-policy') ?? '';
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(home.headers.get('x-content-type-options'), 'nosniff');
  const html = await home.text();
  const entry = /<script type="module" src="(\/assets\/main-[\w-]+\.js)"/.exec(html)?.[1];
  assert.ok(entry, 'index.html loads the hashed entry');
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, 'no inline script');
  // The first requests' head start (api/early.ts) is a hashed script of its own, loaded first.
  const boot = /<script async fetchpriority="high" src="(\/assets\/boot-[\w-]+\.js)">/.exec(html);
  assert.ok(boot && html.indexOf(boot[0]) < html.indexOf('<script type="module"'), 'the boot script comes first');
  assert.match((await fetch(server.url + boot[1])).headers.get('cache-control') ?? '', /immutable/);
  const asset = await fetch(server.url + entry);
  assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
  for (const path of ['/src/main.tsx', '/tsconfig.json', '/static/src/main.tsx', '/node_modules/preact/package.json', '/_headers', '/.build.json']) {
    const body = await (await fetch(server.url + path)).text();
    assert.doesNotMatch(body, /compilerOptions|from '\.\/api|"name": "preact"|Cache-Control: public|initialJs/, `${path} leaks a source or build file`);
  }
});

test('screenshots and accessibility of the other main views', async () => {
  const { page } = ada;
  await page.getByRole('button', { name: 'New room' }).click();
  await views(page, 'new-room');
  await page.getByRole('dialog', { name: 'New room' }).getByRole('button', { name: 'Close' }).click();
  await page.getByRole('button', { name: 'Invite people', exact: true }).click();
  await page.getByRole('button', { name: 'Create invite link' }).click();
  await page.getByRole('button', { name: 'Copy link' }).first().waitFor();
  await views(page, 'invite');
  await page.getByRole('button', { name: 'Room settings' }).click();
  await views(page, 'settings');
  await page.getByRole('button', { name: 'Close room settings' }).click();
  await page.getByRole('button', { name: /^Account: Ada/ }).click();
  const account = page.getByRole('dialog', { name: 'Your account' });
  await account.waitFor();
  await views(page, 'account');
  await account.getByLabel('Display name').fill('Ada L.');
  await account.getByRole('button', { name: 'Save name' }).click();
  await page.getByRole('status').filter({ hasText: 'Name saved.' }).waitFor();
  await page.getByRole('button', { name: 'Account: Ada L.' }).waitFor();
  await account.getByRole('button', { name: 'Close' }).click();
  await page.getByRole('link', { name: 'Launch plan' }).click();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('link', { name: 'All rooms' }).click();
  await views(page, 'rooms');
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByRole('link', { name: 'Launch plan' }).click();
  await page.getByRole('heading', { level: 1, name: 'Launch plan' }).waitFor();
  ada.check();
});

test('a message the server refuses shows why, with Retry and Delete', async () => {
  // 3,000 characters fit the box but are 9,000 bytes: over the 8 KiB body limit.
  await send(bob.page, '€'.repeat(3000));
  const failed = log(bob.page).getByRole('article', { name: 'Message not sent' });
  await failed.getByText(/Not sent: /).waitFor();
  await failed.getByRole('button', { name: 'Retry' }).waitFor();
  await failed.getByRole('button', { name: 'Delete' }).click();
  await failed.waitFor({ state: 'detached' });
  assert.equal(await log(ada.page).getByText('€€€').count(), 0);
});

test('an owner changes a member\'s role; an archived room is read-only', async () => {
  await ada.page.getByRole('button', { name: 'Members', exact: true }).click();
  const role = ada.page.getByRole('combobox', { name: 'Role of Bob' });
  const changed = ada.page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/members/'));
  await role.selectOption('admin');
  assert.equal((await changed).status(), 200);
  await ada.page.waitForResponse((r) => r.request().method() === 'GET' && r.url().includes('/members?'));
  await ada.page.getByRole('button', { name: 'Close members' }).click();
  await ada.page.getByRole('button', { name: 'Members', exact: true }).click();
  assert.equal(await role.inputValue(), 'admin', 'the server has the new role');
  // Bob's open room takes his new role at once (the rooms list is re-read
  // only every 20 s): as a viewer he has no composer, as a member again he has.
  await bob.page.getByRole('link', { name: 'Launch plan' }).click();
  await bob.page.getByRole('textbox', { name: /^Message / }).waitFor();
  await role.selectOption('viewer');
  await bob.page.getByRole('note').getByText('You are a viewer here').waitFor({ timeout: 5000 });
  assert.equal(await bob.page.getByRole('textbox', { name: /^Message / }).count(), 0);
  await role.selectOption('member');
  await bob.page.getByRole('textbox', { name: /^Message / }).waitFor({ timeout: 5000 });
  await ada.page.getByRole('button', { name: 'Close members' }).click();

  await ada.page.getByRole('link', { name: 'Second room' }).click();
  await ada.page.getByRole('button', { name: 'Room settings' }).click();
  await ada.page.getByRole('button', { name: 'Archive room' }).click();
  await ada.page.getByRole('dialog', { name: 'Archive Second room?' }).getByRole('button', { name: 'Archive room' }).click();
  await ada.page.getByRole('note').getByText('This room is archived').waitFor();
  assert.equal(await ada.page.getByRole('textbox', { name: /^Message / }).count(), 0);
  await ada.page.getByRole('button', { name: 'Close room settings' }).click();
  await ada.page.getByRole('link', { name: 'Launch plan' }).click();
  await ada.page.getByRole('textbox', { name: /^Message / }).waitFor();
});

test('a tab that sees a newer deploy offers to reload', async () => {
  await ada.page.route('**/version.json', (route) => route.fulfill({ json: { entry: '/assets/main-NEWER.js' } }));
  await ada.page.evaluate(() => window.dispatchEvent(new Event('online')));
  await ada.page.getByRole('status').filter({ hasText: 'A new version of Tessera is available' }).getByRole('button', { name: 'Reload' }).waitFor();
  await ada.page.unroute('**/version.json');
  ada.check();
  bob.check();
});

test('history pages in on scroll-up and the view stays where it was', async () => {
  const carol = await register(server, 'Carol');
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: carol.token, body: { kind: 'group', name: 'Archive of notes' } })).body.id;
  // One after another, so that note i is message i + 1 (sent at once, the room may take them in any order).
  for (let i = 0; i < 130; i += 1) {
    const posted = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, {
      token: carol.token, ip: randomIp(), body: { body: `note ${i}` }, headers: { 'idempotency-key': `h-${i}` },
    });
    assert.equal(posted.status, 201);
    assert.equal(posted.body.id, i + 1);
  }
  const c = await person(browser, server, 'Carol');
  await c.page.goto('/');
  await c.page.getByLabel('Email').fill(carol.email);
  await c.page.getByLabel('Password').fill(carol.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('link', { name: /Archive of notes/ }).click();
  const messages = log(c.page).getByRole('article');
  await log(c.page).getByText('note 129').waitFor();
  assert.equal(await messages.count(), 50, 'the newest page first');
  const scrollTop = async () => {
    // Scroll to the top of what is loaded, and note which message is at the top of the view.
    return c.page.evaluate(() => {
      const el = document.querySelector('[role="log"]');
      el.scrollTop = -(el.scrollHeight - el.clientHeight);
      return el.querySelector('article .body')?.textContent;
    });
  };
  const first = await scrollTop();
  assert.equal(first, 'note 80');
  await log(c.page).getByText('note 30', { exact: true }).waitFor();
  // The message that was at the top is still in view after the page above it arrived.
  const stillVisible = await c.page.evaluate(() => {
    const log = document.querySelector('[role="log"]').getBoundingClientRect();
    const el = [...document.querySelectorAll('[role="log"] article')].find((a) => a.textContent.includes('note 80'));
    const r = el.getBoundingClientRect();
    return r.bottom > log.top && r.top < log.bottom;
  });
  assert.ok(stillVisible, 'the view did not jump');
  await scrollTop();
  await log(c.page).getByText('This is the start of the room.').waitFor();
  await log(c.page).getByText('note 0', { exact: true }).waitFor();
  assert.equal(await messages.count(), 130);
  c.check();
  await c.context.close();
});

/** Reloads and expects to be signed in still (the refresh cookie); fails at once otherwise. */
async function reloadSignedIn(p) {
  await p.page.reload();
  const shell = p.page.getByRole('navigation', { name: 'Your rooms' });
  await shell.or(p.page.getByRole('tab', { name: 'Sign in' })).first().waitFor();
  assert.ok(await shell.isVisible(), `${p.name}'s session did not survive the reload`);
}

test('a reload keeps the session, the draft and the unread line', async () => {
  bob.page.setDefaultTimeout(3000);
  await bob.page.getByRole('link', { name: /Launch plan/ }).click();
  await bob.page.getByRole('textbox', { name: /^Message / }).fill('a half-written thought');
  await createRoom(bob, 'Bob notes');
  await send(ada.page, 'unread one');
  await send(ada.page, 'unread two');
  await settled(ada.page);
  await reloadSignedIn(bob);
  await bob.page.getByRole('link', { name: /Launch plan.*2 unread/ }).waitFor();
  await bob.page.getByRole('link', { name: /Launch plan/ }).click();
  const line = log(bob.page).getByRole('separator', { name: 'New messages' });
  await line.waitFor();
  const next = await line.evaluate((el) => el.nextElementSibling?.textContent ?? '');
  assert.match(next, /unread one/);
  assert.equal(await bob.page.getByRole('textbox', { name: /^Message / }).inputValue(), 'a half-written thought');
  await views(bob.page, 'room-unread');
  await reloadSignedIn(bob);
  await line.waitFor();
  assert.equal(await bob.page.getByRole('textbox', { name: /^Message / }).inputValue(), 'a half-written thought');
});

test('the outbox survives a reload and is delivered afterwards', async () => {
  bob.page.setDefaultTimeout(3000);
  bobNet.blocked = true;
  for (const ws of bobNet.open) await ws.close({ code: 4000, reason: 'test: dropped' });
  await send(bob.page, 'kept across a reload');
  await log(bob.page).getByRole('article', { name: 'Message sending' }).waitFor();
  await reloadSignedIn(bob);
  await log(bob.page).getByRole('article', { name: 'Message sending' }).getByText('kept across a reload').waitFor();
  bobNet.blocked = false;
  await bob.context.setOffline(true);
  await bob.context.setOffline(false);
  await log(ada.page).getByText('kept across a reload').waitFor();
  assert.equal(await log(ada.page).getByText('kept across a reload').count(), 1);
});

test('signing out everywhere ends the other device\'s session too; this one forgets its drafts', async () => {
  bob.page.setDefaultTimeout(5000);
  const laptop = await person(browser, server, 'Bob');
  Object.assign(laptop, { email: bob.email, password: bob.password });
  await laptop.page.goto('/');
  await signInUi(laptop);
  await laptop.page.getByRole('link', { name: /Launch plan/ }).click();
  await log(laptop.page).getByText('kept across a reload').waitFor();
  await bob.page.getByRole('textbox', { name: /^Message / }).fill('a draft to forget');
  await bob.page.getByRole('button', { name: /^Account: Bob/ }).click();
  await bob.page.getByRole('dialog', { name: 'Your account' }).getByRole('button', { name: 'Sign out everywhere' }).click();
  await bob.page.getByRole('tab', { name: 'Sign in' }).waitFor();
  // The laptop's room socket is closed (4001); its refresh is refused, so it shows the sign-in without a reload.
  await laptop.page.getByRole('tab', { name: 'Sign in' }).waitFor();
  await bob.page.reload();
  await bob.page.getByRole('tab', { name: 'Sign in' }).waitFor();
  assert.equal(await bob.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tessera.draft.')).length), 0, 'drafts are gone');
  laptop.check();
  await laptop.context.close();
});
