// Workflows in real browsers, two people: an activity moves through its
// life-cycle on Ada's board and Bob's follows; Bob's edit after Ada's change
// is a 412 that names her and keeps his text; Bob's protected request reaches
// Ada's inbox, is approved with a key press, and Bob sees the outcome; the
// AI's check-in (built-in provider, run by the owner) shows as a digest whose
// proposal reaches the inbox; rules with a server error at its field and a
// dry run; the audit log filtered and exported. People, the room and its
// members are seeded through the API; only what is tested is clicked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { log, person, setup, signInUi, views } from './browser.mjs';
import { api, register, until } from '../harness.mjs';

const { server, browser } = await setup();

const [ada, bob, cid] = await Promise.all(['Ada', 'Bob', 'Cid'].map((n) => register(server, n)));
const roomId = (await api(server, 'POST', '/api/v1/rooms', { token: ada.token, body: { name: 'Launch', kind: 'project' } })).body.id;
for (const u of [bob, cid]) {
  const r = await api(server, 'POST', `/api/v1/rooms/${roomId}/members`, { token: ada.token, body: { user_id: u.user.id, role: 'member' } });
  assert.equal(r.status, 201);
}
const act = (who, name, args) => api(server, 'POST', `/api/v1/rooms/${roomId}/actions/${name}`, { token: who.token, body: args });

/** A browser person signed in as an account made through the API. */
async function signedIn(account, name) {
  const p = await person(browser, server, name);
  await signInUi(p, account);
  return p;
}
const [A, B] = await Promise.all([signedIn(ada, 'Ada'), signedIn(bob, 'Bob')]);

/** The board column of a status, and a card in it. */
const column = (page, label) => page.getByRole('region', { name: new RegExp(`^${label} \\d+$`) });
const card = (page, label, title) => column(page, label).getByRole('article', { name: title });
/** Goes to a room's screen inside the app (as a link would), keeping the page and its session. */
const open = (p, tab = '') => p.page.evaluate((to) => {
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}, `/rooms/${roomId}${tab ? `/${tab}` : ''}`);

test('an activity moves through its life-cycle on one screen and the other screen follows', async () => {
  await Promise.all([open(A, 'activities'), open(B, 'activities')]);
  await A.page.getByLabel('New activity').fill('Print posters');
  await A.page.getByRole('button', { name: 'Propose' }).click();
  await card(B.page, 'Proposed', 'Print posters').waitFor();

  await card(A.page, 'Proposed', 'Print posters').getByRole('button', { name: 'Schedule Print posters' }).click();
  await A.page.getByRole('button', { name: 'Schedule', exact: true }).click();
  await card(B.page, 'Scheduled', 'Print posters').getByText(/^Scheduled /).waitFor();
  await A.page.getByRole('button', { name: 'Start Print posters' }).click();
  await card(B.page, 'In progress', 'Print posters').waitFor();
  await A.page.getByRole('button', { name: 'Complete Print posters' }).click();
  await card(B.page, 'Done', 'Print posters').waitFor();
  assert.equal(await column(B.page, 'Proposed').getByRole('article').count(), 0);
  // Done is final: no move is offered, on either screen.
  assert.equal(await card(A.page, 'Done', 'Print posters').getByRole('button').count(), 0);
  await views(A.page, 'activities');
  A.check();
  B.check();
});

test("Bob's edit after Ada's change is a 412 naming her; his text survives the reload", async () => {
  assert.equal((await act(ada, 'propose_activity', { title: 'Book venue' })).status, 200);
  await card(B.page, 'Proposed', 'Book venue').getByRole('button', { name: 'Edit Book venue' }).click();
  const title = B.page.getByRole('form', { name: 'Edit Book venue' }).getByLabel('Title');
  await title.fill('Book the venue downtown');
  // Ada moves the card while Bob types: his card follows it to "In progress", his text with it.
  await card(A.page, 'Proposed', 'Book venue').getByRole('button', { name: 'Start Book venue' }).click();
  const form = card(B.page, 'In progress', 'Book venue').getByRole('form', { name: 'Edit Book venue' });
  await form.waitFor();
  assert.equal(await form.getByLabel('Title').inputValue(), 'Book the venue downtown');
  await form.getByRole('button', { name: 'Save' }).click();
  await form.getByRole('alert').filter({ hasText: 'Changed by Ada — reload' }).waitFor();
  await views(B.page, 'activity-conflict', { scan: false });
  assert.equal(await form.getByLabel('Title').inputValue(), 'Book the venue downtown', 'the conflict keeps what Bob typed');
  await form.getByRole('button', { name: 'Reload' }).click();
  await form.getByRole('button', { name: 'Save' }).click();
  await card(A.page, 'In progress', 'Book the venue downtown').waitFor();
  const state = (await api(server, 'GET', `/api/v1/rooms/${roomId}/state`, { token: ada.token })).body;
  assert.deepEqual(Object.values(state.activities).map((a) => [a.title, a.status]).sort(),
    [['Book the venue downtown', 'in_progress'], ['Print posters', 'done']]);
  A.check();
  B.check();
});

test("a member's protected request is approved in the owner's inbox with a key press; the member sees the outcome", async () => {
  await open(B);
  await log(B.page).waitFor();
  const asked = await act(bob, 'remove_member', { user_id: cid.user.id });
  assert.equal(asked.status, 202);
  // The owner's sidebar counts what waits for them, live.
  await A.page.getByRole('link', { name: 'Approvals 1 waiting', exact: true }).click();
  const request = A.page.getByRole('article', { name: 'remove_member in Launch, asked by Bob' });
  await request.getByLabel('Arguments').getByText(cid.user.id).waitFor();
  await request.getByLabel('Comment (optional)').fill('Cid moved teams');
  await views(A.page, 'approvals');
  await request.focus();
  await A.page.keyboard.press('a');
  await request.getByRole('status').filter({ hasText: 'Approved by Ada' }).waitFor();
  assert.equal(await request.getByRole('button', { name: /Approve/ }).count(), 0, 'a decided request offers no decision');
  await A.page.getByRole('link', { name: 'Approvals', exact: true }).waitFor();

  // Bob hears it live in the room, and finds it under his requests.
  await B.page.getByRole('status').filter({ hasText: 'Your request remove_member was approved by Ada: “Cid moved teams”' }).waitFor();
  await B.page.getByRole('link', { name: 'Approvals', exact: true }).click();
  await B.page.getByRole('tab', { name: 'My requests' }).click();
  const mine = B.page.getByRole('article', { name: 'remove_member in Launch, asked by Bob' });
  await mine.getByText('“Cid moved teams”').waitFor();
  assert.equal(await mine.getByRole('button', { name: /Approve|Reject/ }).count(), 0, 'nobody is offered their own request');
  const members = (await api(server, 'GET', `/api/v1/rooms/${roomId}/members`, { token: ada.token })).body.members.map((m) => m.display_name);
  assert.ok(!members.includes('Cid'), 'the approved action ran');
  A.check();
  B.check();
});

test("the AI's check-in is a digest with a proposal that reaches the inbox", async () => {
  assert.equal((await act(ada, 'complete_activity', { id: 'a2' })).status, 200);
  await open(B);
  await open(A, 'ai');
  await A.page.getByText(/^No check-in for /).waitFor();
  await A.page.getByRole('button', { name: 'Check in now' }).click();
  const digest = A.page.getByRole('article', { name: /^Daily check-in, \d{4}-\d\d-\d\d$/ });
  await digest.getByText(/^Daily check-in for /).waitFor();
  const proposal = digest.getByRole('listitem').filter({ hasText: 'archive_room' });
  await proposal.getByText('Approval request: waits for an owner').waitFor();
  await A.page.getByRole('region', { name: /^AI usage on / }).getByText(/tokens \(.* left\)/).waitFor();
  await views(A.page, 'ai-checkin');

  // The summary is in Bob's chat, marked as the AI's.
  const summary = log(B.page).getByRole('article', { name: /^AI teammate, / }).filter({ hasText: 'Daily check-in for' });
  await summary.getByText('AI', { exact: true }).waitFor();
  await summary.getByText(/Daily check-in · \d+ proposals?, 1 waiting for an owner/).waitFor();
  await views(B.page, 'chat-checkin', { scan: false });
  await summary.getByRole('link', { name: 'Open the digest' }).click();
  await B.page.getByRole('article', { name: /^Daily check-in, / }).getByText('Approval request: waits for an owner').waitFor();
  assert.equal(await B.page.getByRole('button', { name: 'Check in now' }).count(), 0, 'members read the check-in; owners run it');

  // A newer request waits too: the link must select the AI's, not the first.
  const newer = await act(bob, 'remove_member', { user_id: ada.user.id });
  assert.equal(newer.status, 202, JSON.stringify(newer.body));
  await proposal.getByRole('link', { name: 'Open in approvals' }).click();
  // (The inbox also shows the earlier test's request of that name, decided.)
  await A.page.getByRole('article', { name: 'remove_member in Launch, asked by Bob' }).filter({ hasText: 'Waiting' }).waitFor();
  const request = A.page.getByRole('article', { name: 'archive_room in Launch, asked by The AI' });
  await A.page.waitForFunction((name) => document.activeElement?.getAttribute('aria-label') === name, 'archive_room in Launch, asked by The AI');
  assert.match(await request.getAttribute('class'), /\bselected\b/);
  await request.getByText(/^Reason: .*done or cancelled/).waitFor();
  await request.getByLabel('Comment (optional)').fill('not yet');
  await request.focus();
  await A.page.keyboard.press('r');
  await request.getByRole('status').filter({ hasText: 'Rejected by Ada' }).waitFor();
  await open(A, 'ai');
  await A.page.getByRole('article', { name: /^Daily check-in/ }).getByText('Approval request: rejected (Ada: “not yet”)').waitFor();
  assert.equal((await api(server, 'POST', `/api/v1/rooms/${roomId}/approvals/${newer.body.approval.id}/reject`, { token: ada.token })).status, 200);
  A.check();
  B.check();
});

test('rules: the server refuses a condition at its field; a dry run shows what the rule would do', async () => {
  await open(A, 'rules');
  await A.page.getByRole('button', { name: 'New rule' }).click();
  const editor = A.page.getByRole('form', { name: 'New rule' });
  await editor.getByLabel('Name', { exact: true }).fill('Follow up urgent messages');
  const condition = editor.getByLabel(/^Condition/);
  await condition.fill('{"frobnicate": [1]}');
  await editor.getByRole('button', { name: 'Create rule' }).click();
  await A.page.locator('#rule-condition-error').filter({ hasText: /condition/ }).waitFor();
  assert.equal(await condition.getAttribute('aria-invalid'), 'true');
  await views(A.page, 'rule-error', { scan: false });

  await condition.fill('{"in": ["urgent", {"var": "event.data.message.body"}]}');
  await editor.getByRole('button', { name: 'Dry run' }).click();
  const dry = editor.getByRole('status', { name: 'Dry run result' });
  await dry.getByText('The condition matches this event.').waitFor();
  await dry.getByText('The effect propose_activity would run.').waitFor();
  await dry.getByText(/"title": "Follow up: urgent: the build is red"/).waitFor();
  assert.equal(await condition.getAttribute('aria-invalid'), null, 'the error left with the fix');
  await editor.getByRole('button', { name: 'Create rule' }).click();
  await A.page.getByRole('listitem').filter({ hasText: 'Follow up urgent messages' }).getByText('When message posted → propose_activity').waitFor();
  await views(A.page, 'rules');
  const rules = (await api(server, 'GET', `/api/v1/rooms/${roomId}/rules`, { token: ada.token })).body.rules;
  assert.deepEqual(rules.map((r) => r.name), ['Follow up urgent messages']);
  A.check();
});

test('audit: filtered by action, and the same filter exported as NDJSON', async () => {
  await open(A, 'audit');
  const filters = A.page.getByRole('form', { name: 'Filters' });
  await filters.getByLabel('Action').fill('propose_activity');
  await filters.getByRole('button', { name: 'Apply' }).click();
  const rows = A.page.getByRole('table').getByRole('row');
  const actions = () => A.page.locator('table.audit tbody tr td:nth-child(3)').allInnerTexts();
  await until('only the two proposals listed', async () => {
    const cells = await actions();
    return cells.length === 2 && cells.every((t) => t === 'propose_activity');
  }, 10_000).catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await actions())}`); });
  assert.equal(await rows.count(), 3, 'a header and the two proposals');
  await views(A.page, 'audit');
  const [download] = await Promise.all([A.page.waitForEvent('download'), A.page.getByRole('button', { name: 'Export NDJSON' }).click()]);
  const lines = readFileSync(await download.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((e) => [e.action, e.actor]), [['propose_activity', ada.user.id], ['propose_activity', ada.user.id]]);
  A.check();
});

test("a room's panels open beside its screens too, not only beside the chat", async () => {
  await open(A, 'activities');
  await column(A.page, 'Done').waitFor();
  await A.page.getByRole('button', { name: 'Documents', exact: true }).click();
  await A.page.getByRole('complementary', { name: 'Documents' }).waitFor({ timeout: 10_000 });
  assert.ok(await column(A.page, 'Done').isVisible(), 'the board stays');
  await A.page.getByRole('button', { name: 'Close documents' }).click();
  A.check();
});
