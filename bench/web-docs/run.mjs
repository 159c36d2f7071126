// Documents in the browser: the automerge-paper editing trace (259,778 edits,
// its whole history in one Yjs document) opened in headless Chromium, in
// Tessera's app against the built Worker under local workerd, and — the peer,
// in the same run — in the same editor (CodeMirror 6 + y-codemirror.next, as
// the app sets it up: bench/web-docs/peer.ts) on y-websocket-server (Node).
//
//   node bench/web-docs/run.mjs [--runs 3] [--keys 500] [--minutes 10]
//
// Measures, for each, median of --runs:
//   * first editable frame, cold (a fresh browser profile: from the network)
//     and warm (the same profile again: Tessera opens from IndexedDB, the peer
//     has no offline copy), throttled as bench/web (Lighthouse's mobile profile);
//   * keystroke to the other person's screen: --keys keystrokes (10 a second)
//     at the start of the document in one browser, until the frame after the
//     other browser's editor shows each (p50, p99), unthrottled;
//   * the typing tab's JS heap after --minutes of both people typing (after a
//     forced GC), and the DOM's size.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import WebSocket from 'ws';
import { api, freePort, launch, randomIp, register, ROOT } from '../../tests/harness.mjs';
import { trace } from '../docs/replay.mjs';
import { arg } from '../args.mjs';
import { median, ms, openBrowser, pct, signedIn, sleep, throttle } from '../web/browser.mjs';

const RUNS = arg('runs', 3);
const KEYS = arg('keys', 500);
const MINUTES = arg('minutes', 10);
/** Each run types into its own copy of the document, opened cold and warm. */
const docOf = (run) => `paper-${run + 1}`;
const VIEWPORT = { width: 390, height: 844 };

// The document as an editor leaves it: every edit of the trace, history included.
const ydoc = new Y.Doc();
const text = ydoc.getText('content');
ydoc.transact(() => {
  for (const { patches } of trace.txns) {
    for (const [pos, del, ins] of patches) {
      if (del) text.delete(pos, del);
      if (ins) text.insert(pos, ins);
    }
  }
});
if (text.toString() !== trace.endContent) throw new Error('trace replay mismatch');
const state = Y.encodeStateAsUpdate(ydoc);
/** What the editor's first line must show for the document to count as open. */
const PREFIX = trace.endContent.split('\n')[0].slice(0, 30);
console.log(`document: ${trace.endContent.length} characters, ${(state.length / 1024).toFixed(0)} KiB as a Yjs update`);

const server = await launch({ vars: { DOC_RATE_PER_SEC: '1000' } });
const wsPort = await freePort();
const wsServer = spawn(process.execPath, [join(ROOT, 'node_modules/@y/websocket-server/src/server.js')], {
  env: { ...process.env, HOST: '127.0.0.1', PORT: String(wsPort) }, stdio: 'ignore',
});
const peer = await servePeer();
const browser = await openBrowser();
const seeders = [];
try {
  const ada = await register(server, 'Ada');
  const bob = await register(server, 'Bob');
  const room = (await api(server, 'POST', '/api/v1/rooms', { token: ada.token, body: { kind: 'group', name: 'Paper', members: [bob.user.id] } })).body.id;
  const wsUrl = `ws://127.0.0.1:${wsPort}`;
  for (let i = 0; i < 100; i += 1) {
    try { await new Promise((r, j) => { const w = new WebSocket(`${wsUrl}/probe`); w.once('open', () => { w.close(); r(); }); w.once('error', j); }); break; } catch { await sleep(100); }
  }
  for (let run = 0; run < RUNS; run += 1) {
    // Tessera: the document written over REST into a room of two.
    const put = await fetch(`${server.url}/api/v1/rooms/${room}/docs/${docOf(run)}/updates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ada.token}`, 'content-type': 'application/octet-stream', 'cf-connecting-ip': randomIp() },
      body: state,
    });
    if (put.status !== 200) throw new Error(`writing the document: ${put.status} ${await put.text()}`);
    // y-websocket-server keeps a document while a client holds it: these do, throughout.
    const copy = new Y.Doc();
    Y.applyUpdate(copy, state);
    const seeder = new WebsocketProvider(wsUrl, docOf(run), copy, { WebSocketPolyfill: WebSocket });
    seeders.push(seeder);
    await new Promise((r) => seeder.once('sync', r));
    const check = new Y.Doc();
    const reader = new WebsocketProvider(wsUrl, docOf(run), check, { WebSocketPolyfill: WebSocket });
    for (let i = 0; i < 200 && check.getText('content').length !== trace.endContent.length; i += 1) await sleep(50);
    if (check.getText('content').toString() !== trace.endContent) throw new Error('y-websocket-server does not hold the document');
    reader.destroy();
  }

  const targets = {
    tessera: {
      host: '.editor-host',
      url: (who, run) => `${server.url}/rooms/${room}/docs/${docOf(run)}`,
      async context(who) {
        const { context, cookie } = await signedIn(browser, server, who, VIEWPORT);
        if (!cookie) throw new Error('the server set no tessera_refresh cookie: a page load cannot be signed in');
        return context;
      },
    },
    'y-websocket-server': {
      host: '#host',
      url: (who, run) => `${peer.url}/?ws=${encodeURIComponent(wsUrl)}&doc=${docOf(run)}&name=${who.user.display_name}`,
      context: () => browser.newContext({ viewport: VIEWPORT }),
    },
  };

  const results = { date: new Date().toISOString(), runs: RUNS, keys: KEYS, minutes: MINUTES, bytes: state.length, targets: {} };
  for (const name of Object.keys(targets)) results.targets[name] = { cold: [], warm: [], coldKiB: [], warmKiB: [], coldSocketKiB: [], warmSocketKiB: [], p50: [], p99: [], missed: [] };
  // The targets take turns, run by run, so that a slow spell of the machine falls on both alike.
  for (let run = 0; run < RUNS; run += 1) {
    for (const [name, t] of Object.entries(targets)) {
      const r = results.targets[name];
      const ctx = await t.context(ada);
      for (const kind of ['cold', 'warm']) {
        const page = await ctx.newPage();
        const th = await throttle(page);
        r[kind].push(await firstEditable(page, t.url(ada, run), t.host));
        r[`${kind}KiB`].push(th.bytes() / 1024);
        r[`${kind}SocketKiB`].push(th.socketBytes() / 1024);
        await page.close();
      }
      const writer = await ctx.newPage();
      const otherCtx = await t.context(bob);
      const readerPage = await otherCtx.newPage();
      await firstEditable(writer, t.url(ada, run), t.host);
      await firstEditable(readerPage, t.url(bob, run), t.host);
      const lat = await keystrokes(writer, readerPage, t.host, run);
      r.p50.push(pct(lat.ms, 50));
      r.p99.push(pct(lat.ms, 99));
      r.missed.push(lat.missed);
      const kib = (kind) => `${r[`${kind}KiB`].at(-1).toFixed(0)} KiB over HTTP, ${r[`${kind}SocketKiB`].at(-1).toFixed(0)} KiB by socket`;
      console.log(`run ${run + 1}, ${name}: first editable frame cold ${ms(r.cold.at(-1))} (${kib('cold')}), warm ${ms(r.warm.at(-1))} (${kib('warm')}); keystroke to the other screen p50 ${ms(r.p50.at(-1))}, p99 ${ms(r.p99.at(-1))} (${lat.ms.length} seen, ${lat.missed} not)`);
      if (run === RUNS - 1) {
        r.memory = await typingTogether(writer, readerPage, t.host);
        console.log(`${name}: after ${MINUTES} min of two people typing, the tab's JS heap ${r.memory.heapMiB.toFixed(1)} MiB (at opening ${r.memory.heapAtOpenMiB.toFixed(1)}), ${r.memory.nodes} DOM nodes`);
      }
      await ctx.close();
      await otherCtx.close();
    }
  }

  console.log(`\n| median of ${RUNS} runs | first editable, cold (HTTP + socket) | warm | keystroke → other screen p50 | p99 | JS heap after ${MINUTES} min of typing |`);
  console.log('|---|---|---|---|---|---|');
  for (const [name, r] of Object.entries(results.targets)) {
    r.summary = {
      coldMs: median(r.cold), warmMs: median(r.warm), coldKiB: median(r.coldKiB), warmKiB: median(r.warmKiB),
      coldSocketKiB: median(r.coldSocketKiB), warmSocketKiB: median(r.warmSocketKiB), p50Ms: median(r.p50), p99Ms: median(r.p99), missed: Math.max(...r.missed),
    };
    const s = r.summary;
    const kib = (http, socket) => `${http.toFixed(0)} + ${socket.toFixed(0)} KiB`;
    console.log(`| ${name} | ${ms(s.coldMs)} (${kib(s.coldKiB, s.coldSocketKiB)}) | ${ms(s.warmMs)} (${kib(s.warmKiB, s.warmSocketKiB)}) | ${ms(s.p50Ms)} | ${ms(s.p99Ms)} | ${r.memory.heapMiB.toFixed(1)} MiB |`);
  }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/web-docs.json'), JSON.stringify(results, null, 2));
} finally {
  for (const seeder of seeders) seeder.destroy();
  await browser.close();
  peer.close();
  wsServer.kill();
  await server.cleanup();
}

/** Navigation start → the editor is editable and shows the document's first line. */
async function firstEditable(page, url, host) {
  const t0 = performance.now();
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForFunction(({ host, prefix }) => {
    const c = document.querySelector(host)?.shadowRoot?.querySelector('.cm-content');
    return !!c && c.getAttribute('contenteditable') === 'true' && (c.textContent ?? '').startsWith(prefix);
  }, { host, prefix: PREFIX }, { polling: 'raf', timeout: 120_000 })
    .catch(async (e) => { await page.screenshot({ path: join(ROOT, '.tessera/bench-web-docs-failure.png') }); throw e; });
  return performance.now() - t0;
}

/**
 * The writer types KEYS characters, 10 a second, at the start of the
 * document; for each, the time from its keydown to the frame after the
 * reader's editor shows it (the clocks of two tabs of one browser agree).
 */
async function keystrokes(writer, readerPage, host, run) {
  await readerPage.evaluate((host) => {
    const c = document.querySelector(host).shadowRoot.querySelector('.cm-content');
    // The first line's own text: remote carets are widgets inside it.
    const first = () => {
      const line = c.querySelector('.cm-line')?.cloneNode(true);
      if (!line) return 0;
      line.querySelectorAll('[class*="cm-ySelection"], .cm-widgetBuffer').forEach((e) => e.remove());
      return (line.textContent ?? '').length;
    };
    const base = first();
    window.__seen = [];
    new MutationObserver(() => {
      const n = first() - base;
      if (n <= window.__seen.length) return;
      requestAnimationFrame(() => {
        const at = performance.timeOrigin + performance.now();
        while (window.__seen.length < n) window.__seen.push(at);
      });
    }).observe(c, { childList: true, subtree: true, characterData: true });
  }, host);
  await writer.evaluate(() => {
    window.__keys = [];
    // Characters only: not the Control+Home that places the cursor.
    document.addEventListener('keydown', (e) => { if (e.key.length === 1) window.__keys.push(performance.timeOrigin + e.timeStamp); }, true);
  });
  await writer.locator(`${host} .cm-content`).click();
  await writer.keyboard.press('Control+Home');
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; i < KEYS; i += 1) await writer.keyboard.type(letters[(i + run) % 26], { delay: 100 });
  for (let i = 0; i < 100 && (await readerPage.evaluate(() => window.__seen.length)) < KEYS; i += 1) await sleep(100);
  const keys = await writer.evaluate(() => window.__keys);
  const seen = await readerPage.evaluate(() => window.__seen);
  const out = seen.slice(0, keys.length).map((t, i) => t - keys[i]);
  return { ms: out, missed: keys.length - out.length };
}

/** Both type for MINUTES (the writer at the start, the reader at the end); then the writer's heap after a GC. */
async function typingTogether(writer, readerPage, host) {
  const cdp = await writer.context().newCDPSession(writer);
  await cdp.send('HeapProfiler.enable');
  const heap = async () => { await cdp.send('HeapProfiler.collectGarbage'); return (await cdp.send('Runtime.getHeapUsage')).usedSize / 2 ** 20; };
  const heapAtOpenMiB = await heap();
  await readerPage.locator(`${host} .cm-content`).click();
  await readerPage.keyboard.press('Control+End');
  const until = Date.now() + MINUTES * 60_000;
  const type = async (page, words) => { while (Date.now() < until) await page.keyboard.type(words, { delay: 100 }); };
  await Promise.all([type(writer, 'the writer adds a few words '), type(readerPage, 'and the reader answers ')]);
  await sleep(2000);
  const heapMiB = await heap();
  const nodes = await writer.evaluate((host) => document.querySelectorAll('*').length + document.querySelector(host).shadowRoot.querySelectorAll('*').length, host);
  return { heapAtOpenMiB, heapMiB, nodes };
}

/** The peer's page: peer.ts bundled with esbuild, served as the app serves its assets (gzipped; HTML revalidated, scripts immutable). */
async function servePeer() {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-peer-'));
  await esbuild.build({
    absWorkingDir: ROOT, entryPoints: [join(ROOT, 'bench/web-docs/peer.ts')], bundle: true, format: 'esm', minify: true,
    target: ['chrome111'], outfile: join(dir, 'peer.js'), define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'warning',
  });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>peer</title><div id="host"></div><script type="module" src="/peer.js"></script>');
  const files = { '/': ['index.html', 'text/html', 'no-cache'], '/peer.js': ['peer.js', 'text/javascript', 'public, max-age=31536000, immutable'] };
  const http = createServer((req, res) => {
    const f = files[new URL(req.url, 'http://peer').pathname];
    if (!f) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': f[1], 'cache-control': f[2], 'content-encoding': 'gzip' });
    res.end(gzipSync(readFileSync(join(dir, f[0])), { level: 9 }));
  });
  const port = await freePort();
  await new Promise((r) => http.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, close: () => http.close() };
}
