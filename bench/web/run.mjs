// Browser app benchmark: the built app in headless Chromium against the built
// Worker under local workerd (wrangler dev), throttled like Lighthouse's
// mobile profile — 150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up, 4× CPU
// slowdown — applied through the DevTools protocol (per request, as DevTools
// does; Lighthouse's own "simulated" throttling models packets instead).
//
//   node bench/web/run.mjs [--runs 5] [--rooms 20] [--history 10000] [--rate 50] [--seconds 10]
//
// Measures, median of --runs:
//   * load: navigation to `/rooms/<last room>` until the room list shows every
//     room and the room's newest messages are on screen, cold (empty cache) and
//     warm (same browser profile again), with the bytes transferred;
//   * history: opening a room of --history messages, then scrolling up to its
//     first message page by page (time per page, total, DOM size at the end);
//   * input: delay from each keystroke in the composer to the next frame while
//     another person sends --rate messages/s into the same room.
// Also prints the bundle per chunk (.tessera/web-build.json, written by the build).
import WebSocket from 'ws';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, launch, randomIp, register, ROOT } from '../../tests/harness.mjs';
import { arg } from '../args.mjs';
import { median, ms, openBrowser, pct, PROFILE, signedIn as signIn, throttle } from './browser.mjs';

const RUNS = arg('runs', 5);
const ROOMS = arg('rooms', 20);
const HISTORY = arg('history', 10_000);
const RATE = arg('rate', 50);
const SECONDS = arg('seconds', 10);

const server = await launch({ vars: { CHAT_RATE_PER_SEC: '100000' } });
const browser = await openBrowser();
try {
  const ada = await register(server, 'Ada');
  const bob = await register(server, 'Bob');
  let keys = 0;
  const post = async (token, room, body, ip) => {
    const r = await api(server, 'POST', `/api/v1/rooms/${room}/messages`, { token, body: { body }, ip, headers: { 'idempotency-key': `seed-${++keys}` } });
    if (r.status !== 201) throw new Error(`seeding a message: ${r.status} ${JSON.stringify(r.body)}`);
  };

  // Rooms for the list; the last one created is the one opened, with a day's chat in it.
  let last = null;
  for (let i = 0; i < ROOMS; i += 1) {
    const r = await api(server, 'POST', '/api/v1/rooms', { token: ada.token, body: { kind: 'group', name: `Room ${i + 1}`, members: [bob.user.id] } });
    if (r.status !== 201) throw new Error(`room: ${r.status} ${JSON.stringify(r.body)}`);
    last = r.body.id;
  }
  for (let i = 0; i < 60; i += 1) await post(i % 2 ? bob.token : ada.token, last, `message ${i}: **status** update with a \`code\` span and a link https://example.org/${i}`);
  const big = (await api(server, 'POST', '/api/v1/rooms', { token: ada.token, body: { kind: 'group', name: 'History', members: [bob.user.id] } })).body.id;
  const started = performance.now();
  for (let i = 0; i < HISTORY; i += 16) {
    await Promise.all(Array.from({ length: Math.min(16, HISTORY - i) }, (_, k) => post(ada.token, big, `history ${i + k}: the quick brown fox jumps over the lazy dog`, randomIp())));
  }
  console.log(`seeded ${ROOMS} rooms, 60 messages, and ${HISTORY} in one room in ${ms(performance.now() - started)}`);

  // Without the cookie session page loads cannot be signed in: only history and input are measured.
  const signedIn = () => signIn(browser, server, ada);

  /** Signs in through the form (no cookie session): the page is then on the app, unthrottled. */
  async function formSignIn(page) {
    await page.goto('/');
    await page.getByLabel('Email').fill(ada.email);
    await page.getByLabel('Password').fill(ada.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Your rooms' }).waitFor();
  }

  /** The room's newest message: the seeded chat's last, then each run's last flood message. */
  let newest = 'message 59:';

  /** Navigation start → the list shows every room and the room's newest message is on screen. */
  async function load(page, room, rooms) {
    await page.goto(`/rooms/${room}`, { waitUntil: 'commit' });
    await page.waitForFunction(({ n, last }) => {
      const links = document.querySelectorAll('nav[aria-label="Your rooms"] a').length;
      const msgs = [...document.querySelectorAll('[role="log"] article .body')].some((b) => (b.textContent ?? '').startsWith(last));
      return links >= n && msgs;
    }, { n: rooms, last: newest }, { polling: 'raf', timeout: 60_000 });
    return page.evaluate(() => performance.now());
  }

  const results = { profile: PROFILE, runs: RUNS, load: { cold: [], warm: [], coldBytes: [], warmBytes: [] }, history: [], input: [] };
  for (let run = 0; run < RUNS; run += 1) {
    const { context, cookie } = await signedIn();
    const page = await context.newPage();
    let page2;
    if (cookie) {
      const t = await throttle(page);
      results.load.cold.push(await load(page, last, ROOMS + 1));
      results.load.coldBytes.push(t.bytes());
      // Closed first: left open in the room, it would share the CPU with the warm page and what follows.
      await page.close();
      page2 = await context.newPage();
      const t2 = await throttle(page2);
      results.load.warm.push(await load(page2, last, ROOMS + 1));
      results.load.warmBytes.push(t2.bytes());
    } else {
      if (run === 0) console.log('load: not measured: the server sets no tessera_refresh cookie, so a page load cannot be signed in (the cookie session is needed)');
      page2 = page;
      await formSignIn(page2);
      await throttle(page2);
    }

    // History: open the big room (in-app navigation), then page up to its start.
    const open = performance.now();
    if (cookie) await page2.getByRole('link', { name: 'All rooms' }).click();
    await page2.getByRole('link', { name: /^History/ }).click();
    await page2.waitForFunction(() => /history \d+:/.test(document.querySelector('[role="log"] article:last-of-type')?.textContent ?? ''), null, { polling: 'raf', timeout: 60_000 })
      .catch(async (e) => { await page2.screenshot({ path: join(ROOT, '.tessera/bench-web-failure.png') }); throw e; });
    const opened = performance.now() - open;
    const scroll = await page2.evaluate(async () => {
      const log = document.querySelector('[role="log"]');
      const begin = performance.now();
      let pages = 0;
      const times = [];
      while (!document.querySelector('.start')) {
        const first = log.querySelector('article')?.id;
        const t0 = performance.now();
        // The log scrolls from the bottom (a reversed column): its top is at minus its scroll range.
        log.scrollTop = -(log.scrollHeight - log.clientHeight);
        for (let i = 0; i < 600 && log.querySelector('article')?.id === first; i += 1) await new Promise((r) => requestAnimationFrame(r));
        if (log.querySelector('article')?.id === first) break;
        times.push(performance.now() - t0);
        pages += 1;
      }
      return { total: performance.now() - begin, pages, perPage: times, nodes: document.querySelectorAll('*').length, articles: log.querySelectorAll('article').length };
    });
    results.history.push({ opened, ...scroll, medianPage: median(scroll.perPage) });

    // Input latency while Bob sends RATE messages/s.
    await page2.getByRole('link', { name: 'All rooms' }).click();
    await page2.getByRole('link', { name: new RegExp(`^Room ${ROOMS}`) }).click();
    const box = page2.getByRole('textbox', { name: /^Message / });
    await box.waitFor();
    await page2.evaluate(() => {
      window.__lat = [];
      document.addEventListener('keydown', (e) => {
        const at = e.timeStamp;
        requestAnimationFrame(() => setTimeout(() => window.__lat.push(performance.now() - at), 0));
      }, true);
    });
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/rooms/${last}/ws?token=${bob.token}`, { headers: { 'cf-connecting-ip': randomIp() } });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    let sent = 0;
    const flood = setInterval(() => { ws.send(JSON.stringify({ type: 'send', client_msg_id: `f-${run}-${sent}`, body: `flood ${run}-${sent}` })); sent += 1; }, 1000 / RATE);
    const until = Date.now() + SECONDS * 1000;
    await box.click();
    while (Date.now() < until) {
      await page2.keyboard.type('typing while messages arrive ', { delay: 100 });
      // Cleared from the keyboard: a locator here would query every element's
      // role on the page's main thread, and its long task would count as input delay.
      await page2.keyboard.press('ControlOrMeta+A');
      await page2.keyboard.press('Backspace');
    }
    clearInterval(flood);
    newest = `flood ${run}-${sent - 1}`;
    ws.close();
    const lat = await page2.evaluate(() => window.__lat);
    results.input.push({ keys: lat.length, median: median(lat), p95: pct(lat, 95), max: Math.max(...lat), messages: sent });
    await context.close();
    const loadText = cookie ? `cold ${ms(results.load.cold.at(-1))} (${(results.load.coldBytes.at(-1) / 1024).toFixed(0)} KiB), warm ${ms(results.load.warm.at(-1))} (${(results.load.warmBytes.at(-1) / 1024).toFixed(0)} KiB); ` : '';
    console.log(`run ${run + 1}: ${loadText}history open ${ms(opened)}, ${scroll.pages} pages, median ${ms(median(scroll.perPage))}/page, ${scroll.articles} messages in the DOM; input median ${ms(median(lat))}, p95 ${ms(pct(lat, 95))} with ${sent} messages arriving`);
  }

  const build = JSON.parse(readFileSync(join(ROOT, '.tessera/web-build.json'), 'utf8'));
  const summary = {
    coldMs: median(results.load.cold),
    warmMs: median(results.load.warm),
    coldKiB: median(results.load.coldBytes) / 1024,
    warmKiB: median(results.load.warmBytes) / 1024,
    historyOpenMs: median(results.history.map((h) => h.opened)),
    historyScrollMs: median(results.history.map((h) => h.total)),
    historyPageMs: median(results.history.map((h) => h.medianPage)),
    historyPages: median(results.history.map((h) => h.pages)),
    domMessagesAtEnd: median(results.history.map((h) => h.articles)),
    inputMedianMs: median(results.input.map((i) => i.median)),
    inputP95Ms: median(results.input.map((i) => i.p95)),
  };
  console.log('\nmedian of', RUNS, 'runs:', JSON.stringify(summary, null, 2));
  console.log('\nbundle (gzip -9):');
  for (const c of build.chunks) console.log(`  ${c.kind.padEnd(7)} ${(c.name ?? '').padEnd(7)} ${(c.gzip / 1024).toFixed(1).padStart(6)} KiB  ${c.file}`);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/web.json'), JSON.stringify({ summary, results, build }, null, 2));
} finally {
  await browser.close();
  await server.cleanup();
}
