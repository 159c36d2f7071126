// Two people chat in real browsers: register, create a room, invite by link,
// messages both ways live, a dropped socket resumes with exactly the missed
// messages, offline sends are delivered on reconnect, replies, reactions,
// edits and deletes reach the other side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRoom, log, person, registerInUi, send, setup, views } from './browser.mjs';

const { server, browser } = await setup();

const ada = await person(browser, server, 'Ada');
const bob = await person(browser, server, 'Bob');
let roomId;

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
