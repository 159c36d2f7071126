// The browser app's plain TypeScript modules in Node (no browser): the
// Markdown-lite parser, the timeline's exactly-once stream, the outbox, the
// socket frame guards against docs/protocol.md, search-as-you-type's
// debounce and cancellation, the timeline's jump window, a page load's early
// requests (api/early.ts), and the layering rule that
// nothing below the views imports the view framework.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { ROOT } from '../harness.mjs';

const SRC = join(ROOT, 'static/src');

/** Bundles one module for Node and imports it. */
async function load(path) {
  const out = await esbuild.build({
    entryPoints: [join(SRC, path)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    write: false,
    logLevel: 'silent',
  });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].contents).toString('base64')}`);
}

const md = await load('lib/markdown.ts');
const { Timeline } = await load('realtime/timeline.ts');
const { Outbox } = await load('realtime/outbox.ts');
const { isServerFrame, isStream } = await load('realtime/protocol.ts');
const { sideBySide } = await load('lib/diff.ts');
const { advance } = await load('realtime/jobs.ts');
const { latest } = await load('lib/latest.ts');
const { isMeFrame } = await load('realtime/me-protocol.ts');

test('markdown-lite: inline marks, links, mentions', () => {
  const t = (s) => md.inline(s);
  assert.deepEqual(t('a **b** *c* _d_ ~~e~~ `f`'), [
    { t: 'text', v: 'a ' }, { t: 'b', c: [{ t: 'text', v: 'b' }] }, { t: 'text', v: ' ' },
    { t: 'i', c: [{ t: 'text', v: 'c' }] }, { t: 'text', v: ' ' }, { t: 'i', c: [{ t: 'text', v: 'd' }] }, { t: 'text', v: ' ' },
    { t: 's', c: [{ t: 'text', v: 'e' }] }, { t: 'text', v: ' ' }, { t: 'code', v: 'f' },
  ]);
  assert.deepEqual(t('see https://example.org/a_(b). ok'), [
    { t: 'text', v: 'see ' }, { t: 'link', href: 'https://example.org/a_(b)', c: [{ t: 'text', v: 'https://example.org/a_(b)' }] }, { t: 'text', v: '. ok' },
  ]);
  assert.deepEqual(t('[docs](https://x.test/d)'), [{ t: 'link', href: 'https://x.test/d', c: [{ t: 'text', v: 'docs' }] }]);
  assert.deepEqual(t('hi @Ada.'), [{ t: 'text', v: 'hi ' }, { t: 'mention', handle: 'ada' }, { t: 'text', v: '.' }]);
  // Not markup: a mail address, snake_case, 2*3*4, and links with other schemes.
  assert.deepEqual(t('ada@example.org snake_case_name 2*3*4'), [{ t: 'text', v: 'ada@example.org snake_case_name 2*3*4' }]);
  assert.deepEqual(t('[x](javascript:alert(1))'), [{ t: 'text', v: '[x](javascript:alert(1))' }]);
  assert.deepEqual(t('**bold with `code` inside**'), [{ t: 'b', c: [{ t: 'text', v: 'bold with ' }, { t: 'code', v: 'code' }, { t: 'text', v: ' inside' }] }]);
});

test('markdown-lite: fences, quotes, paragraphs', () => {
  assert.deepEqual(md.parse('one\ntwo\n\n> quoted **x**\n> more\n```js\nlet a = "**no**";\n```\nafter'), [
    { t: 'p', c: [{ t: 'text', v: 'one\ntwo' }] },
    { t: 'quote', c: [{ t: 'p', c: [{ t: 'text', v: 'quoted ' }, { t: 'b', c: [{ t: 'text', v: 'x' }] }, { t: 'text', v: '\nmore' }] }] },
    { t: 'pre', v: 'let a = "**no**";', lang: 'js' },
    { t: 'p', c: [{ t: 'text', v: 'after' }] },
  ]);
  assert.deepEqual(md.parse('```\nunclosed'), [{ t: 'pre', v: 'unclosed', lang: '' }]);
  assert.equal(md.plain('**Ship** it @ada\n> q', 20), 'Ship it @ada q');
  assert.equal(md.handleOf('Ada Lovelace'), 'adalovelace');
});

test('markdown-lite never loses text and stays bounded on hostile input', () => {
  const flat = (ns) => ns.map((n) => (n.t === 'text' || n.t === 'code' ? n.v : n.t === 'mention' ? `@${n.handle}` : flat(n.c))).join('');
  for (const s of ['***', '**a*b**c*', '`', '``', '[a](', '@', '@@@@', '_a_b_', '~~~~', '*'.repeat(5000), '**'.repeat(3000)]) {
    const started = performance.now();
    const out = md.inline(s);
    assert.ok(performance.now() - started < 500, `slow on ${s.slice(0, 20)}`);
    const strip = (x) => x.replace(/[*_~`]/g, '');
    assert.equal(strip(flat(out)), strip(s), 'only markup characters may disappear');
  }
});

const msg = (id, extra = {}) => ({
  id, seq: id, author: 'u1', author_name: 'Ada', body: `m${id}`, reply_to: null, mentions: [], attachments: [],
  created_at: id * 1000, edited_at: null, deleted: false, reactions: {}, ...extra,
});
const frame = (m) => ({ type: 'message', seq: m.id, message: m });

test('timeline: each stream frame applies once, in order; a gap is reported', () => {
  const tl = new Timeline(400, 50);
  assert.equal(tl.apply(frame(msg(1))), 'queued', 'frames before the first page wait for it');
  tl.reset([msg(1), msg(2)], 2);
  assert.deepEqual(tl.messages.value.map((m) => m.id), [1, 2], 'the queued frame was already in the page');
  assert.equal(tl.apply(frame(msg(2))), 'duplicate');
  assert.equal(tl.apply(frame(msg(4))), 'gap');
  assert.equal(tl.apply(frame(msg(3))), 'applied');
  assert.equal(tl.apply({ type: 'message_edited', seq: 4, id: 1, body: 'edited', mentions: [], edited_at: 9 }), 'applied');
  assert.equal(tl.apply({ type: 'reaction', seq: 5, id: 3, emoji: '👍', user_id: 'u2', added: true }), 'applied');
  assert.equal(tl.apply({ type: 'reaction', seq: 6, id: 3, emoji: '👍', user_id: 'u2', added: true }), 'applied');
  assert.equal(tl.apply({ type: 'event', event: 'file_added', seq: 7, data: {} }), 'applied');
  assert.equal(tl.apply({ type: 'message_deleted', seq: 8, id: 2, deleted_by: 'u1' }), 'applied');
  assert.equal(tl.lastSeq, 8);
  const [a, b, c] = tl.messages.value;
  assert.equal(a.body, 'edited');
  assert.equal(a.edited_at, 9);
  assert.equal(b.deleted, true);
  assert.equal(b.body, '');
  assert.deepEqual(c.reactions, { '👍': ['u2'] }, 'a repeated reaction by the same person counts once');
  assert.equal(tl.apply({ type: 'reaction', seq: 9, id: 3, emoji: '👍', user_id: 'u2', added: false }), 'applied');
  assert.deepEqual(tl.get(3).reactions, {});
});

test('timeline: paging keeps a bounded window and knows which end is cut', () => {
  const tl = new Timeline(100, 50);
  const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => msg(from + i));
  tl.reset(range(951, 1000), 1000);
  assert.equal(tl.hasOlder.value, true);
  tl.prepend(range(901, 950));
  tl.prepend(range(851, 900));
  assert.equal(tl.messages.value.length, 100);
  assert.equal(tl.messages.value[0].id, 851);
  assert.equal(tl.messages.value.at(-1).id, 950, 'the newest end was dropped');
  assert.equal(tl.hasNewer.value, true);
  // While the newest end is cut, live messages move the stream on but stay out of the window.
  assert.equal(tl.apply(frame(msg(1001))), 'applied');
  assert.equal(tl.messages.value.at(-1).id, 950);
  tl.append(range(951, 1000), false);
  tl.append(range(1001, 1001), true);
  assert.equal(tl.hasNewer.value, false);
  assert.equal(tl.messages.value.at(-1).id, 1001);
  assert.equal(tl.messages.value.length, 100);
  tl.prepend(range(1, 10));
  assert.equal(tl.hasOlder.value, false, 'a short page is the start of the room');
});

test('outbox: entries persist until acknowledged, failures wait for retry', async () => {
  const saved = new Map();
  const store = {
    load: async (u) => [...saved.values()].filter((e) => e.user_id === u),
    put: async (e) => { saved.set(e.client_msg_id, structuredClone(e)); },
    delete: async (id) => { saved.delete(id); },
  };
  const box = new Outbox(store, 'u1');
  const a = box.add('r1', 'first', null, []);
  const b = box.add('r1', 'second', 3, []);
  box.add('r2', 'elsewhere', null, []);
  await Promise.resolve();
  assert.match(a.client_msg_id, /^[A-Za-z0-9_:.-]{1,64}$/, 'a valid client_msg_id');
  assert.deepEqual(box.forRoom('r1').map((e) => e.body), ['first', 'second']);
  assert.equal(saved.size, 3);

  // A reload: a new outbox for the same person finds them all, in order.
  const again = new Outbox(store, 'u1');
  await again.load();
  assert.deepEqual(again.entries.value.map((e) => e.body), ['first', 'second', 'elsewhere']);
  const other = new Outbox(store, 'u2');
  await other.load();
  assert.deepEqual(other.entries.value, [], "another account on this browser sees none of them");

  box.acked(a.client_msg_id, 11);
  await Promise.resolve();
  assert.equal(saved.has(a.client_msg_id), false, 'acknowledged: gone from the device');
  assert.equal(box.forRoom('r1')[0].state, 'acked', 'still shown until the timeline has it');
  box.settle((id) => id === 11);
  assert.deepEqual(box.forRoom('r1').map((e) => e.body), ['second']);

  box.failed(b.client_msg_id, 'too long');
  await Promise.resolve();
  assert.equal(saved.get(b.client_msg_id).state, 'failed', 'a failure survives a reload');
  box.retry(b.client_msg_id);
  assert.equal(box.forRoom('r1')[0].state, 'pending');
  box.remove(b.client_msg_id);
  await box.clear();
  assert.equal(saved.size, 0);
});

test('line diff: both sides are rebuilt exactly from the rows; changes pair up side by side', () => {
  assert.deepEqual(sideBySide('a\nb\nc', 'a\nx\nc'), [
    { kind: 'same', left: 'a', right: 'a' },
    { kind: 'change', left: 'b', right: 'x' },
    { kind: 'same', left: 'c', right: 'c' },
  ]);
  assert.deepEqual(sideBySide('keep\ngone', 'keep'), [{ kind: 'same', left: 'keep', right: 'keep' }, { kind: 'change', left: 'gone', right: null }]);
  const side = (rows, k) => rows.map((r) => r[k]).filter((x) => x !== null).join('\n');
  let seed = 7;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  for (let t = 0; t < 500; t += 1) {
    const text = () => Array.from({ length: rnd(12) }, () => 'abcd'[rnd(4)]).join('\n');
    const [a, b] = [text(), text()];
    const rows = sideBySide(a, b);
    assert.equal(side(rows, 'left'), a);
    assert.equal(side(rows, 'right'), b);
    assert.ok(rows.filter((r) => r.kind === 'same').every((r) => r.left === r.right));
  }
});

test('every server frame in docs/protocol.md passes the guards; broken ones do not', () => {
  const doc = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
  const section = doc.split('## Server → client')[1].split('```json')[1].split('```')[0];
  const frames = [];
  let buf = '';
  for (const line of section.split('\n')) {
    buf += line;
    try { frames.push(JSON.parse(buf)); buf = ''; } catch { /* continues on the next line */ }
  }
  assert.ok(frames.length >= 20, `found ${frames.length} frames`);
  for (const f of frames) assert.ok(isServerFrame(f), JSON.stringify(f));
  const types = new Set(frames.map((f) => f.type));
  for (const t of ['hello', 'ack', 'message', 'message_edited', 'message_deleted', 'reaction', 'typing', 'presence', 'read', 'event', 'error', 'resync', 'pong']) {
    assert.ok(types.has(t), `docs show ${t}`);
  }
  assert.ok(isStream(frames.find((f) => f.type === 'message')));
  assert.ok(!isStream(frames.find((f) => f.event === 'upload_progress')), 'ephemeral events do not move the stream');
  assert.ok(!isStream(frames.find((f) => f.type === 'read')), 'a read marker carries a seq but is not an event');
  assert.ok(!isStream(frames.find((f) => f.type === 'ack')), 'nor is an ack');
  for (const bad of [null, 1, {}, { type: 'nope' }, { type: 'message', seq: '1', message: {} }, { type: 'ack', client_msg_id: 'x' }, { type: 'event', event: 'x', seq: 'a', data: {} }]) {
    assert.equal(isServerFrame(bad), false, JSON.stringify(bad));
  }
});

test('layering: realtime/, state/, api/, editor/ and lib/ never import the view framework; nothing uses innerHTML', () => {
  const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
  for (const file of walk(SRC)) {
    const text = readFileSync(file, 'utf8');
    const rel = file.slice(SRC.length + 1);
    if (/^(realtime|state|api|editor|lib)\//.test(rel)) {
      assert.doesNotMatch(text, /from ['"](preact|@preact\/signals['"])|from ['"]\.\.\/views/, `${rel} imports the view layer`);
    }
    assert.doesNotMatch(text, /innerHTML|dangerouslySetInnerHTML|insertAdjacentHTML|document\.write/, `${rel} writes HTML`);
  }
});

const wf = await load('lib/workflow.ts');

test('workflow: the moves a card offers follow core’s life-cycle (done and cancelled are final)', () => {
  const names = (s) => wf.moves(s).map((m) => m.action);
  assert.deepEqual(names('proposed'), ['schedule_activity', 'start_activity', 'cancel_activity']);
  assert.deepEqual(names('scheduled'), ['schedule_activity', 'start_activity', 'cancel_activity']);
  assert.deepEqual(names('in_progress'), ['complete_activity', 'cancel_activity']);
  assert.deepEqual(names('done'), []);
  assert.deepEqual(names('cancelled'), []);
  assert.equal(wf.moves('proposed').find((m) => m.action === 'cancel_activity').min, 'admin', 'cancelling is for admins');
  const cols = wf.columns({
    a1: { id: 'a1', status: 'done', updated_at: 5 }, a2: { id: 'a2', status: 'proposed', updated_at: 9 }, a3: { id: 'a3', status: 'proposed', updated_at: 7 },
  });
  assert.deepEqual(cols.map((c) => [c.status, c.items.map((a) => a.id)]),
    [['proposed', ['a2', 'a3']], ['scheduled', []], ['in_progress', []], ['done', ['a1']], ['cancelled', []]]);
});

test('workflow: collaboration_updated changes apply to the activities; other paths leave them alone', () => {
  const a1 = { id: 'a1', title: 'Posters', status: 'proposed', updated_at: 1 };
  const before = { a1 };
  const moved = wf.applyChanges(before, [
    { path: 'activities.a1.status', old: 'proposed', new: 'in_progress' },
    { path: 'activities.a1.updated_at', old: 1, new: 2 },
    { path: 'activities.a2', old: null, new: { id: 'a2', title: 'Venue', status: 'proposed', updated_at: 2 } },
  ]);
  assert.deepEqual(moved, { a1: { ...a1, status: 'in_progress', updated_at: 2 }, a2: { id: 'a2', title: 'Venue', status: 'proposed', updated_at: 2 } });
  assert.equal(before.a1.status, 'proposed', 'the old state is not mutated');
  assert.deepEqual(wf.applyChanges(moved, [{ path: 'activities.a2', old: {}, new: null }]), { a1: moved.a1 });
  assert.equal(wf.applyChanges(before, [{ path: 'settings.archived', old: false, new: true }, { path: 'rules.r1', old: null, new: {} }]), null);
  assert.deepEqual(wf.applyChanges(before, [{ path: 'activities.a9.status', old: null, new: 'done' }]), before, 'an unknown activity is not invented from one field');
});

test('workflow: a 412 names who changed the room; approvals are never offered to who asked', () => {
  const by = (kind, display_name = 'Ada') => ({ last_change: { version: 7, changed_at: 1, changed_by: { user_id: 'u1', display_name, kind } } });
  assert.equal(wf.conflictText(by('user')), 'Changed by Ada');
  assert.equal(wf.conflictText(by('ai', 'Tessera AI')), 'Changed by the AI');
  assert.equal(wf.conflictText(by('rule')), 'Changed by a rule by Ada');
  assert.equal(wf.conflictText({}), 'Changed by someone');
  const req = (requested_by, status = 'pending', requested_kind = 'user') => ({ requested_by, requested_by_name: 'Bob', requested_kind, rule_id: requested_kind === 'rule' ? 'r1' : null, status });
  assert.equal(wf.mayDecide({ may_decide: true, approval: req('bob') }, 'ada'), true);
  assert.equal(wf.mayDecide({ may_decide: true, approval: req('ada') }, 'ada'), false, 'own request, whatever the page says');
  assert.equal(wf.mayDecide({ may_decide: true, approval: req('ada', 'pending', 'rule') }, 'ada'), false, "a rule's request is its author's");
  assert.equal(wf.mayDecide({ may_decide: true, approval: req('bob', 'approved') }, 'ada'), false);
  assert.equal(wf.mayDecide({ may_decide: false, approval: req('bob') }, 'ada'), false);
  assert.equal(wf.requester(req('ai', 'pending', 'ai')), 'The AI');
  assert.equal(wf.requester(req('bob', 'pending', 'rule')), 'Rule r1 by Bob');
});

test('workflow: server error fields map to the rule editor; audit filters become a query', () => {
  const cases = {
    name: 'name', trigger: 'trigger', condition: 'condition', 'condition.if[0]': 'condition', 'rule.condition.and[1].in': 'condition',
    'effect.action': 'action', effect: 'action', 'effect.args.title': 'args', 'effect.args.user_ids[1]': 'args', 'event.data': 'event', comment: null,
  };
  for (const [field, want] of Object.entries(cases)) assert.equal(wf.ruleField(field), want, field);
  assert.equal(wf.ruleField(null), null);
  assert.deepEqual(wf.auditQuery({ actor: ' ai ', kind: '', action: 'propose_activity', from: '2026-05-01', to: '' }, { cursor: 'c1' }),
    { actor: 'ai', action: 'propose_activity', from: '2026-05-01', cursor: 'c1' });
  assert.equal(wf.parseJson('  ', 'x'), undefined);
  assert.throws(() => wf.parseJson('{', 'The condition'), /The condition is not valid JSON/);
});

test('search as you type: only the last of a burst runs, after the pause; a newer request aborts the older and its late answer is dropped', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const calls = [];
  const done = [];
  const failed = [];
  const l = latest((q, signal) => new Promise((resolve, reject) => {
    // Like a server that ignores the abort: the answer may still come.
    calls.push({ q, signal, resolve, reject });
  }), 200, (r, q) => done.push([q, r]), (e, q) => failed.push([q, e.message]));
  const flush = () => new Promise((r) => setImmediate(r));

  for (const q of ['l', 'la', 'lau', 'laun']) { l.request(q); t.mock.timers.tick(50); }
  assert.equal(calls.length, 0, 'nothing runs while typing goes on');
  t.mock.timers.tick(200);
  assert.deepEqual(calls.map((c) => c.q), ['laun'], 'one request, for the last text');

  l.request('launch');
  assert.equal(calls[0].signal.aborted, true, 'typing again aborts the request in flight');
  calls[0].resolve('stale');
  await flush();
  assert.deepEqual(done, [], 'an aborted answer that still arrives is dropped');

  t.mock.timers.tick(200);
  assert.deepEqual(calls.map((c) => c.q), ['laun', 'launch']);
  calls[1].resolve('fresh');
  await flush();
  assert.deepEqual(done, [['launch', 'fresh']]);

  l.now('x');
  assert.equal(calls.length, 3, 'now() runs at once');
  calls[2].reject(new Error('boom'));
  await flush();
  assert.deepEqual(failed, [['x', 'boom']], 'a real failure of the newest request is reported');

  l.request('z');
  t.mock.timers.tick(200);
  l.request('zz');
  calls[3].reject(new Error('aborted'));
  await flush();
  assert.deepEqual(failed, [['x', 'boom']], 'an aborted request failing is not a failure');

  l.request('y');
  l.cancel();
  t.mock.timers.tick(1000);
  assert.equal(calls.length, 4, 'a cancelled request never runs');
});

test('timeline: a jump replaces the window around a message; live messages that came meanwhile are kept at the head', () => {
  const msg = (id) => ({ id, seq: id, author: 'u', author_name: 'U', client_msg_id: `c${id}`, body: `m${id}`, reply_to: null, mentions: [], attachments: [], created_at: id, edited_at: null, deleted: false, reactions: {} });
  const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => msg(a + i));
  const tl = new Timeline(400, 50);
  tl.reset(range(951, 1000), 1000);
  // Far back: 25 up to and including 300, 25 after it; newer history remains to page down.
  tl.around(range(276, 300), range(301, 325), true, false);
  assert.deepEqual([tl.messages.value[0].id, tl.messages.value.at(-1).id], [276, 325]);
  assert.equal(tl.hasNewer.value, true);
  assert.equal(tl.hasOlder.value, true);
  assert.equal(tl.lastSeq, 1000, 'the stream position is not the window');
  assert.equal(tl.apply({ type: 'message', seq: 1001, message: msg(1001) }), 'applied');
  assert.equal(tl.get(1001), undefined, 'a live message is not added to a window of the past');

  // Near the head: the page after reaches the newest message, and one that arrived while it loaded stays.
  const t2 = new Timeline(400, 50);
  t2.reset(range(951, 1000), 1000);
  t2.apply({ type: 'message', seq: 1001, message: msg(1001) });
  t2.around(range(966, 990), range(991, 1000), true, true);
  assert.deepEqual(t2.messages.value.map((m) => m.id), [...range(966, 1001).map((m) => m.id)]);
  assert.equal(t2.hasNewer.value, false);
  assert.equal(t2.hasOlder.value, true);

  // The start of the room: nothing older.
  const t3 = new Timeline(400, 50);
  t3.reset(range(951, 1000), 1000);
  t3.around(range(1, 3), range(4, 28), false, false);
  assert.equal(t3.hasOlder.value, false);
});

test('per-person socket frames: the documented shapes pass the guard; broken ones do not', () => {
  const item = { id: 3, kind: 'mention', room_id: 'r1', subject: '12', actor: 'u1', actor_name: 'Ada', text: 'hi @bob', at: 1, link: '/rooms/r1?message=12', read: false };
  for (const f of [
    { type: 'hello', unread_items: 2, rooms: { r1: { unread: 3, mentions: 1 } } },
    { type: 'item', item, unread_items: 3 },
    { type: 'counts', room_id: 'r1', counts: { unread: 4, mentions: 1 } },
    { type: 'read', ids: [3], all: false, unread_items: 2 },
    { type: 'pong', nonce: null },
    { type: 'error', code: 'invalid_input', message: 'no' },
  ]) assert.equal(isMeFrame(f), true, JSON.stringify(f));
  for (const f of [
    null, 'hello', { type: 'nope' },
    { type: 'hello', unread_items: 2, rooms: { r1: { unread: '3', mentions: 1 } } },
    { type: 'item', item: { ...item, link: 5 }, unread_items: 3 },
    { type: 'counts', room_id: 'r1' },
    { type: 'read', ids: 'all', all: true, unread_items: 0 },
  ]) assert.equal(isMeFrame(f), false, JSON.stringify(f));
});

test('a file job never moves back: late news of the same job is ignored, another job replaces it', () => {
  const queued = { job_id: 'j1', file_id: 'f', progress: 0, status: 'queued', result: null, error: null };
  const done = { job_id: 'j1', file_id: 'f', progress: 100, status: 'done', result: { summary: 'ok' }, error: null };
  // The answer to POST …/analyze after the socket's job_done, and a progress frame after it.
  assert.equal(advance(done, queued), done);
  assert.equal(advance(done, { job_id: 'j1', file_id: 'f', progress: 40 }), done);
  // Progress merges into what is known and never shrinks.
  assert.deepEqual(advance({ ...queued, progress: 60 }, { job_id: 'j1', file_id: 'f', progress: 40 }), { ...queued, progress: 60 });
  assert.deepEqual(advance(queued, { job_id: 'j1', file_id: 'f', progress: 40 }), { ...queued, progress: 40 });
  assert.deepEqual(advance(queued, done), done);
  // Analysed again: a new job replaces the finished one.
  const again = { ...queued, job_id: 'j2' };
  assert.equal(advance(done, again), again);
  assert.equal(advance(undefined, again), again);
});

test("a returning person's first requests: the refresh, then the first reads with its token, each handed over once", async () => {
  const room = 'ab'.repeat(16);
  const sent = [];
  const saved = Object.fromEntries(['window', 'location', 'localStorage', 'navigator', 'fetch'].map((k) => [k, Object.getOwnPropertyDescriptor(globalThis, k)]));
  const stub = (granted) => {
    sent.length = 0;
    delete globalThis.tesseraEarly;
    Object.defineProperty(globalThis, 'window', { value: globalThis, configurable: true, writable: true });
    Object.defineProperty(globalThis, 'location', { value: new URL(`http://app.test/rooms/${room}`), configurable: true, writable: true });
    Object.defineProperty(globalThis, 'localStorage', { value: { getItem: (k) => (k === 'tessera.account' ? '{"id":"u1"}' : null) }, configurable: true, writable: true });
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    Object.defineProperty(globalThis, 'fetch', {
      configurable: true,
      writable: true,
      value: async (path, init = {}) => {
        sent.push({ path, method: init.method ?? 'GET', headers: init.headers ?? {} });
        if (path === '/api/v1/auth/refresh') return granted ? Response.json({ access_token: 't1', expires_in: 900 }) : Response.json({ code: 'unauthorized' }, { status: 401 });
        return Response.json({ path });
      },
    });
  };
  try {
    const early = await load('api/early.ts');
    stub(true);
    early.begin();
    const grant = early.takeGrant();
    assert.equal((await grant).status, 200);
    assert.equal(early.takeGrant(), null, 'the grant is handed over once');
    const rooms = new Request(`http://app.test${early.ROOMS_FIRST_READ}`);
    assert.deepEqual(await (await early.takeRead(rooms)).json(), { path: '/api/v1/rooms?limit=200' });
    assert.equal(early.takeRead(rooms), null, 'a read is handed over once');
    assert.equal(early.takeRead(new Request(`http://app.test/api/v1/rooms/${room}/messages?limit=50`, { method: 'POST', body: '{}' })), null, 'only a GET');
    assert.equal(early.takeRead(new Request(`http://app.test/api/v1/rooms/${room}/messages?limit=20`)), null, 'only the same URL');
    assert.ok(await early.takeRead(new Request(`http://app.test/api/v1/rooms/${room}/messages?limit=50`)));
    assert.deepEqual(sent.map((s) => [s.method, s.path]), [['POST', '/api/v1/auth/refresh'], ['GET', '/api/v1/rooms?limit=200'], ['GET', `/api/v1/rooms/${room}/messages?limit=50`]]);
    assert.equal(sent[0].headers['x-tessera-session'], 'cookie');
    assert.ok(sent.slice(1).every((s) => s.headers.authorization === 'Bearer t1'), 'the reads carry the token the refresh gave');

    // A refused refresh asks nothing more: the app's requests go out as usual.
    stub(false);
    early.begin();
    assert.equal((await early.takeGrant()).status, 401);
    assert.equal(await early.takeRead(rooms), null);
    assert.deepEqual(sent.map((s) => s.path), ['/api/v1/auth/refresh']);
    // Signed out: nothing is left to take.
    early.dropEarly();
    assert.equal(early.takeGrant(), null);

    // The app asked first (the script came late): the script then begins nothing.
    stub(true);
    delete globalThis.tesseraEarly;
    assert.equal(early.takeGrant(), null);
    early.begin();
    assert.deepEqual(sent, []);
    early.dropEarly();

    // Nobody was signed in here: nothing begins.
    stub(true);
    globalThis.localStorage = { getItem: () => null };
    early.begin();
    assert.equal(early.takeGrant(), null);
    assert.deepEqual(sent, []);
  } finally {
    for (const [k, d] of Object.entries(saved)) {
      if (d) Object.defineProperty(globalThis, k, d);
      else delete globalThis[k];
    }
  }
});
