/**
 * The session: the access token lives in this module's memory only; the
 * refresh token is an HttpOnly cookie that script never sees (the server sets
 * it when a request says `x-tessera-session: cookie`). Refreshes run under a
 * cross-tab Web Lock, so two tabs never present the same single-use refresh
 * token (a reuse revokes the whole family); tabs share fresh tokens and
 * sign-outs over a BroadcastChannel. What survives a reload is the cookie and,
 * in localStorage, who is signed in (not a secret) — so a reload knows to ask
 * for a token, and an offline start can still show the person's outbox.
 */
import { signal } from '@preact/signals-core';
import type { User } from './types';
import { ApiError, OFFLINE, networkError, readError } from './errors';
import { ACCOUNT_KEY, REFRESH_LOCK, SESSION_HEADERS, dropEarly, takeGrant } from './early';

export type { User };
interface Grant { access_token: string; expires_in: number }
interface SignedIn extends Grant { user: User }

/** Refresh this long before expiry, so a request never leaves with a token about to lapse. */
const EARLY_MS = 60_000;

export type Status = 'starting' | 'signed-out' | 'signed-in';
export const status = signal<Status>('starting');
export const user = signal<User | null>(null);

let access: { token: string; exp: number } | null = null;
let refreshing: Promise<string> | null = null;
const cleanups: Array<(userId: string) => unknown> = [];

type Note =
  | { type: 'token'; token: string; exp: number }
  | { type: 'signed-in'; user: User; token: string; exp: number }
  | { type: 'user'; user: User }
  | { type: 'signed-out' };
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('tessera-auth') : null;
const tell = (n: Note) => channel?.postMessage(n);
if (channel) {
  channel.onmessage = (e: MessageEvent<Note>) => {
    const n = e.data;
    if (n.type === 'token' || n.type === 'signed-in') {
      if (!access || access.exp < n.exp) access = { token: n.token, exp: n.exp };
      if (n.type === 'signed-in') enter(n.user);
    } else if (n.type === 'user') {
      if (user.value?.id === n.user.id) user.value = n.user;
    } else if (n.type === 'signed-out') {
      void leave(true);
    }
  };
}

/**
 * Registers work to do when a person signs out (outbox, drafts, stored
 * uploads, offline documents). It runs only when they chose to sign out: a
 * session that ended by itself (expired, revoked) keeps what this device has
 * not sent yet for when the same person signs in again.
 */
export function onSignOut(fn: (userId: string) => unknown): void {
  cleanups.push(fn);
}

async function post<T>(path: string, body?: unknown, bearer?: string): Promise<T> {
  const headers: Record<string, string> = { ...SESSION_HEADERS };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  return answer<T>(fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers,
    body: body === undefined ? null : JSON.stringify(body),
  }));
}

/** The body of a session route's answer, or its `ApiError`. */
async function answer<T>(sent: Promise<Response>): Promise<T> {
  let res: Response;
  try {
    res = await sent;
  } catch (e) {
    throw networkError(e);
  }
  if (!res.ok) throw await readError(res);
  return (res.status === 204 ? null : await res.json()) as T;
}

function keep(g: Grant): string {
  access = { token: g.access_token, exp: Date.now() + g.expires_in * 1000 };
  return access.token;
}

function saved(): User | null {
  try {
    const v = JSON.parse(localStorage.getItem(ACCOUNT_KEY) ?? 'null') as User | null;
    return v && typeof v.id === 'string' ? v : null;
  } catch {
    return null;
  }
}

function enter(u: User): void {
  localStorage.setItem(ACCOUNT_KEY, JSON.stringify(u));
  user.value = u;
  status.value = 'signed-in';
}

/** Signs out this tab without asking the server (another tab did, or the session is gone); `wipe` when the person chose to. */
async function leave(wipe = false): Promise<void> {
  const was = user.value?.id ?? saved()?.id;
  access = null;
  dropEarly();
  localStorage.removeItem(ACCOUNT_KEY);
  user.value = null;
  status.value = 'signed-out';
  if (was && wipe) for (const fn of cleanups) await Promise.resolve(fn(was)).catch(() => undefined);
}

/** At boot: resume the session from the refresh cookie when someone was signed in here. */
export async function start(): Promise<void> {
  const u = saved();
  if (!u) {
    status.value = 'signed-out';
    return;
  }
  user.value = u;
  try {
    await token();
    status.value = 'signed-in';
  } catch (e) {
    // Offline: stay signed in with what this device knows; requests retry when online.
    if (e instanceof ApiError && e.code === OFFLINE) status.value = 'signed-in';
    else await leave();
  }
}

/** A valid access token, refreshed first when it is missing or about to expire. */
export function token(): Promise<string> {
  if (access && access.exp - Date.now() > EARLY_MS) return Promise.resolve(access.token);
  refreshing ??= refresh().finally(() => { refreshing = null; });
  return refreshing;
}

async function refresh(): Promise<string> {
  const run = async (): Promise<string> => {
    // While this tab waited for the lock, another one may have refreshed and told us.
    if (access && access.exp - Date.now() > EARLY_MS) return access.token;
    try {
      // The page's first refresh may have begun before this module loaded (api/early.ts).
      const early = takeGrant();
      const t = keep(await (early ? answer<Grant>(early) : post<Grant>('/api/v1/auth/refresh')));
      tell({ type: 'token', token: t, exp: access!.exp });
      return t;
    } catch (e) {
      // Any refusal but "slow down" means this device holds no usable session (a
      // server without the cookie session answered 415 here and the tab waited forever).
      if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) await leave();
      throw e;
    }
  };
  return typeof navigator.locks?.request === 'function' ? navigator.locks.request(REFRESH_LOCK, run) : run();
}

/** The server refused a token this module thought valid (revoked elsewhere): try one refresh. */
export function rejected(t: string): void {
  if (access?.token === t) access = null;
  token().catch(() => undefined);
}

function signedIn(s: SignedIn): User {
  keep(s);
  enter(s.user);
  tell({ type: 'signed-in', user: s.user, token: s.access_token, exp: access!.exp });
  return s.user;
}

export async function signIn(email: string, password: string): Promise<User> {
  return signedIn(await post<SignedIn>('/api/v1/auth/login', { email, password }));
}

export async function register(email: string, password: string, display_name: string): Promise<User> {
  return signedIn(await post<SignedIn>('/api/v1/auth/register', { email, password, display_name }));
}

/** Exchanges an OIDC provider's ID token (see api/oidc.ts) for a session. */
export async function signInWithIdToken(id_token: string): Promise<User> {
  return signedIn(await post<SignedIn>('/api/v1/auth/oidc', { id_token }));
}

/**
 * Signs out (every session of the account with `everywhere`). The device is
 * signed out even when the server cannot be reached; the answer says whether
 * the server confirmed it.
 */
export async function signOut(everywhere = false): Promise<boolean> {
  let confirmed = true;
  try {
    // One session ends by its cookie; every session only on the word of a current access token.
    if (everywhere) await post<null>('/api/v1/auth/logout', { everywhere: true }, await token());
    else await post<null>('/api/v1/auth/logout');
  } catch {
    confirmed = false;
  }
  tell({ type: 'signed-out' });
  await leave(true);
  return confirmed;
}

/** The profile changed (display name): every tab shows the new one. */
export function updated(u: User): void {
  enter(u);
  tell({ type: 'user', user: u });
}
