// Browser tests' harness: one wrangler dev (tests/harness.mjs) and one headless
// Chromium for the whole run when the files share a process (scripts/test.sh
// runs them with --experimental-test-isolation=none), else one per file; one
// browser context per person (own storage, own client IP against the rate
// limits). Pages fail their test on any page error or console error;
// screenshots go to .tessera/screenshots/.
import { chromium } from 'playwright-core';
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT, randomIp, startServer } from '../harness.mjs';

export const SHOTS = join(ROOT, '.tessera/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium-headless-shell';

// The files share one Worker, so its vars serve them all. Writes per person are limited to
// 10/s by default (the chat history test seeds 130 messages at once); webhooks go to a
// receiver on loopback in the notifications test.
const VARS = { CHAT_RATE_PER_SEC: '1000', NOTIFY_ALLOW_PRIVATE_URLS: '1' };

let shared = null;

/** The Worker and the browser of this run; both stop when its tests end. Each file makes its own people. */
export function setup() {
  shared ??= Promise.all([
    startServer({ vars: VARS }),
    chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] }),
  ]).then(([server, browser]) => {
    after(() => browser.close());
    return { server, browser };
  });
  return shared;
}

let people = 0;
const EDITING_STYLE = 'tessera-test: the CSP refused an editing style in the editor';

/**
 * A person: a browser context with its own IP and a page on the app.
 * `errors` collects page errors and console errors; `check()` asserts none.
 */
export async function person(browser, server, name, { width = 1280, height = 800, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({
    baseURL: server.url,
    viewport: { width, height },
    colorScheme,
    locale: 'en-US',
    timezoneId: 'UTC',
    reducedMotion: 'reduce',
    extraHTTPHeaders: { 'cf-connecting-ip': randomIp() },
  });
  // Typing over a selection, Chrome's contenteditable gives the new text a style
  // attribute that keeps the look of what it replaced (a heading's size); the
  // CSP refuses it and CodeMirror redraws the line from its state. Each such
  // refusal, reported on the editor's host, excuses one inline-style error.
  await context.addInitScript((note) => document.addEventListener('securitypolicyviolation', (e) => {
    if (e.violatedDirective === 'style-src-attr' && e.target instanceof Element && e.target.classList.contains('editor-host')) console.info(note);
  }, true), EDITING_STYLE);
  const page = await context.newPage();
  const errors = [];
  const inlineStyle = [];
  let editingStyle = 0;
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    if (text === EDITING_STYLE) editingStyle += 1;
    if (m.type() !== 'error') return;
    // The browser logs refused requests and dropped sockets that the tests cause on purpose
    // (and a frame y-websocket answers on a socket the server is closing: signed out, deleted).
    if (/Failed to load resource|WebSocket connection to|net::ERR_INTERNET_DISCONNECTED|WebSocket is already in CLOSING or CLOSED state/.test(text)) return;
    if (/^Applying inline style violates/.test(text)) inlineStyle.push(`console: ${text}`);
    else errors.push(`console: ${text}`);
  });
  people += 1;
  const email = `${name.toLowerCase()}-${Date.now()}-${people}@example.org`;
  return {
    name,
    email,
    password: 'correct horse battery',
    context,
    page,
    errors,
    check() {
      assert.deepEqual([...errors, ...inlineStyle.slice(editingStyle)], [], `${name}'s page had errors`);
    },
  };
}

/**
 * A switch on a person's network. `down()` closes their sockets whose URL
 * matches `sockets` and refuses new ones (with `api`, every API request too:
 * the server is out of reach, while the app's own files still load as from the
 * browser's cache); `up()` lets everything through again. `context.setOffline`
 * alone does not close open WebSockets.
 */
export async function networkSwitch(p, sockets, { api = false } = {}) {
  const net = {
    blocked: false,
    open: new Set(),
    async down() {
      net.blocked = true;
      await p.context.setOffline(true);
      for (const ws of net.open) await ws.close({ code: 4000, reason: 'test: dropped' });
      net.open.clear();
    },
    async up() {
      net.blocked = false;
      await p.context.setOffline(false);
    },
  };
  await p.page.routeWebSocket(sockets, (ws) => {
    if (net.blocked) {
      ws.close({ code: 4000, reason: 'test: offline' });
      return;
    }
    ws.connectToServer();
    net.open.add(ws);
  });
  if (api) await p.page.route('**/api/v1/**', (route) => (net.blocked ? route.abort('internetdisconnected') : route.fallback()));
  return net;
}

/** Registers through the form and waits for the signed-in shell. */
export async function registerInUi(p) {
  const { page } = p;
  if (!page.url().startsWith('http')) await page.goto('/');
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Display name').fill(p.name);
  await page.getByLabel('Email').fill(p.email);
  await page.getByLabel('Password').fill(p.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Your rooms' }).waitFor();
}

/** The owner makes an invite link in the open room (with a role); the guest opens it, registers or signs in, and joins. */
export async function invite(owner, guest, roomName, { role = 'member', signIn = false } = {}) {
  const { page } = owner;
  await page.getByRole('button', { name: 'Invite people' }).click();
  const panel = page.getByRole('complementary', { name: 'Invite people' });
  if (role !== 'member') await panel.getByLabel('Role').selectOption(role);
  await panel.getByRole('button', { name: 'Create invite link' }).click();
  const link = await panel.getByLabel(new RegExp(`Invite link \\(${role}`)).first().inputValue();
  await page.getByRole('button', { name: 'Close invite people' }).click();
  await guest.page.goto(new URL(link).pathname);
  if (signIn) await signInUi(guest);
  else await registerInUi(guest);
  await guest.page.getByRole('button', { name: 'Join room' }).click();
  await guest.page.getByRole('heading', { level: 1, name: roomName }).waitFor();
}

/**
 * Signs in through the form and waits for the shell: as the person's own
 * account (made in the UI before) or as `account`, one made over the API
 * (`register` of tests/harness.mjs).
 */
export async function signInUi(p, account = p) {
  const { page } = p;
  if (!page.url().startsWith('http')) await page.goto('/');
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Your rooms' }).waitFor();
}

/** Creates a group room through the dialog and waits until it is open. */
export async function createRoom(p, name, kind = 'Group') {
  const { page } = p;
  await page.getByRole('button', { name: 'New room' }).click();
  const dialog = page.getByRole('dialog', { name: 'New room' });
  await dialog.getByRole('radio', { name: new RegExp(kind) }).check();
  await dialog.getByLabel('Name').fill(name);
  await dialog.getByRole('button', { name: 'Create room' }).click();
  await page.getByRole('heading', { level: 1, name }).waitFor();
  return page.url().split('/rooms/')[1];
}

/** The room's message log. */
export const log = (page) => page.getByRole('log', { name: 'Messages' });

/** Types and sends a message with Enter. */
export async function send(page, text) {
  const box = page.getByRole('textbox', { name: /^Message / });
  await box.fill(text);
  await box.press('Enter');
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * An axe-core scan (WCAG 2.2 A/AA rules); fails on serious or critical
 * violations and names them. axe is evaluated into the page once per document
 * (through the DevTools protocol, so the app's CSP does not apply to it).
 */
export async function axe(page, label) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const r = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] }, resultTypes: ['violations'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`), [], `axe on ${label}`);
}

/** A screenshot at the page's current size and scheme, into .tessera/screenshots/. */
export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), animations: 'disabled', caret: 'hide' });
}

/**
 * Screenshots of the current view at 1280 and 390 px, light and dark, and axe
 * scans of it at 1280 px light and 390 px dark (both themes' contrast, both
 * layouts). The page keeps its state; only viewport and scheme change.
 */
export async function views(page, name, { scan = true } = {}) {
  const size = page.viewportSize();
  for (const [w, h] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await shot(page, `${name}-${w}-${scheme}`);
      if (scan && (w === 1280) === (scheme === 'light')) await axe(page, `${name} ${w}px ${scheme}`);
    }
  }
  await page.setViewportSize(size);
  await page.emulateMedia({ colorScheme: 'light' });
}
