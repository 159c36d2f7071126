// What the browser benchmarks share: headless Chromium, Lighthouse's mobile
// profile applied through the DevTools protocol, a person signed in as after
// an earlier visit, and the statistics.
import { chromium } from 'playwright-core';
import { randomIp } from '../../tests/harness.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium-headless-shell';
/** 150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up (90 % usable, as Lighthouse), 4× CPU. */
export const PROFILE = { latency: 150, downloadThroughput: (1.6e6 / 8) * 0.9, uploadThroughput: (750e3 / 8) * 0.9, cpu: 4 };

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const ms = (x) => `${Math.round(x)} ms`;

export function openBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
}

/**
 * A browser context signed in as `who` after an earlier visit: the refresh
 * cookie and the stored account. `cookie` is false when the server sets no
 * cookie (then page loads cannot be signed in).
 */
export async function signedIn(browser, server, who, viewport = { width: 390, height: 844 }) {
  const context = await browser.newContext({ baseURL: server.url, viewport, extraHTTPHeaders: { 'cf-connecting-ip': randomIp() } });
  const login = await context.request.post('/api/v1/auth/login', { headers: { 'x-tessera-session': 'cookie' }, data: { email: who.email, password: who.password } });
  if (!login.ok()) throw new Error(`login ${login.status()}`);
  const me = await login.json();
  await context.addInitScript((u) => localStorage.setItem('tessera.account', u), JSON.stringify(me.user));
  const cookie = (await context.cookies()).some((c) => c.name === 'tessera_refresh');
  return { context, cookie };
}

/**
 * Applies PROFILE to `page`. `bytes()` counts what it has loaded over HTTP
 * since (encoded, as on the wire); `socketBytes()` the WebSocket payloads it
 * has received (as delivered: after any compression is undone).
 */
export async function throttle(page, profile = PROFILE) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: profile.latency, downloadThroughput: profile.downloadThroughput, uploadThroughput: profile.uploadThroughput });
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: profile.cpu });
  let bytes = 0;
  let socketBytes = 0;
  cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
  // Binary payloads come base64-encoded.
  cdp.on('Network.webSocketFrameReceived', ({ response: r }) => { socketBytes += r.opcode === 2 ? Math.floor((r.payloadData.length * 3) / 4) : r.payloadData.length; });
  return { cdp, bytes: () => bytes, socketBytes: () => socketBytes };
}
