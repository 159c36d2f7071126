/**
 * The first requests of a returning person's page load, begun by a small
 * script that index.html loads first (static/src/boot.ts, async) before the
 * app's modules have arrived: the session refresh, then the rooms list and
 * the open room's newest messages. On a slow phone the modules take about a
 * second, and these requests waited for them. The app takes each answer once
 * (`takeGrant`, `takeRead`); an answer it does not ask for is dropped. Should
 * the script run after the app has started, it does nothing.
 */

/** Held on `window` between the inline script and the app. */
interface Early {
  grant: Promise<Response> | null;
  reads: Map<string, Promise<Response | null>>;
}
declare global {
  interface Window { tesseraEarly?: Early }
}

/** The Web Lock the app refreshes under too (api/auth.ts), so tabs never present one refresh token twice. */
export const REFRESH_LOCK = 'tessera-refresh';
export const ACCOUNT_KEY = 'tessera.account';
export const SESSION_HEADERS = { 'x-tessera-session': 'cookie' };
/** The reads the app makes first, spelled as it spells them (state/rooms.ts, realtime/room.ts): a read spelled otherwise is not matched, and goes out as usual. */
export const ROOMS_FIRST_READ = '/api/v1/rooms?limit=200';
export const messagesFirstRead = (roomId: string) => `/api/v1/rooms/${roomId}/messages?limit=50`;

/** Run by the inline script: begins the refresh and the first reads when someone was signed in here. */
export function begin(): void {
  if (window.tesseraEarly !== undefined || !localStorage.getItem(ACCOUNT_KEY)) return;
  // Ahead of the modules the page preloads meanwhile: over HTTP/1.1 these wait for one of six connections.
  const ask = () => fetch('/api/v1/auth/refresh', { method: 'POST', credentials: 'same-origin', headers: SESSION_HEADERS, priority: 'high' });
  // The lock is held until the answer's headers (and with them the new cookie) arrive.
  const grant: Promise<Response> = typeof navigator.locks?.request === 'function' ? navigator.locks.request(REFRESH_LOCK, ask).then((r) => r) : ask();
  grant.catch(() => undefined); // the app's refresh reports it
  const token = grant.then((r) => (r.ok ? r.clone().json().then((g: { access_token?: unknown }) => (typeof g.access_token === 'string' ? g.access_token : null)) : null)).catch(() => null);
  const room = /^\/rooms\/([0-9a-f]{32})$/.exec(location.pathname)?.[1];
  const reads = new Map<string, Promise<Response | null>>();
  for (const path of room ? [ROOMS_FIRST_READ, messagesFirstRead(room)] : [ROOMS_FIRST_READ]) {
    reads.set(location.origin + path, token.then((t) => (t ? fetch(path, { headers: { authorization: `Bearer ${t}` }, priority: 'high' }) : null)).catch(() => null));
  }
  window.tesseraEarly = { grant, reads };
}

/** The refresh the inline script began, once. */
export function takeGrant(): Promise<Response> | null {
  const early = window.tesseraEarly;
  // Asked before the script ran: it is too late for it now.
  if (!early) window.tesseraEarly = { grant: null, reads: new Map() };
  const grant = early?.grant ?? null;
  if (early) early.grant = null;
  return grant;
}

/** The answer to `req` the inline script asked for, once (null: it asked nothing, or its refresh failed). */
export function takeRead(req: Request): Promise<Response | null> | null {
  const reads = window.tesseraEarly?.reads;
  if (!reads || req.method !== 'GET') return null;
  const read = reads.get(req.url) ?? null;
  reads.delete(req.url);
  return read;
}

/** Forgets what the inline script began (signed out: its answers are nobody's now). */
export function dropEarly(): void {
  delete window.tesseraEarly;
}
