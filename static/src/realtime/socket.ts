/**
 * A WebSocket to the API that stays up: authenticates with the `tessera.v1` +
 * `bearer.<token>` subprotocols (no token in URLs), reconnects with jittered
 * backoff (at once when the browser comes online or the tab becomes visible),
 * closes a half-open connection that stops answering pings, stops for good
 * on 4003/4004 and drops a token the server ended (4001). Frames go to
 * `onFrame` only when `accept` vouches for them; nothing here knows about
 * views. The room socket and the per-person socket are both this.
 */
import { effect, signal } from '@preact/signals-core';
import { rejected, token } from '../api/auth';
import { backoff, online, visible } from './net';

export type SocketState = 'connecting' | 'open' | 'offline' | 'closed';

/** Close codes after which reconnecting is pointless. */
export const GONE = { removed: 4003, deleted: 4004 } as const;

/**
 * The socket's session ended (signed out everywhere, revoked): the token it
 * used is dropped and one refresh is tried, which signs the tab out when the
 * session is gone for good.
 */
export const SESSION_ENDED = 4001;

/**
 * What a close means for any socket of ours (the room, the person's and the
 * document's): `gone` ends it for good; otherwise it reconnects, after
 * dropping the token a 4001 refused.
 */
export function afterClose(code: number, usedToken: string): 'gone' | 'retry' {
  if (code === GONE.removed || code === GONE.deleted) return 'gone';
  if (code === SESSION_ENDED) rejected(usedToken);
  return 'retry';
}

const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;

export interface SocketHooks<In> {
  /** The URL to (re)connect to, asked before every attempt. */
  url(): string;
  /** Whether a parsed frame is one of `In` with the fields its handlers read. */
  accept(v: unknown): v is In;
  onFrame(f: In): void;
  /** The socket ended for good (removed from the room, room deleted). */
  onGone?(code: number): void;
}

/** `path` on this origin as a ws: or wss: URL. */
export function wsUrl(path: string): URL {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u;
}

export class Socket<In extends { type: string }, Out extends { type: string }> {
  readonly state = signal<SocketState>('connecting');
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ping: ReturnType<typeof setInterval> | undefined;
  private pongDue = 0;
  private stopped = false;
  private readonly unwatch: () => void;

  constructor(private readonly hooks: SocketHooks<In>) {
    let first = true;
    this.unwatch = effect(() => {
      const up = online.value && visible.value;
      if (first) { first = false; return; }
      // Coming back online or to the foreground: reconnect now, not at the next backoff tick.
      if (up && !this.ws && !this.stopped) { this.attempt = 0; this.schedule(0); }
    });
    this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.state.value = online.value ? 'connecting' : 'offline';
    let t: string;
    try {
      t = await token();
    } catch {
      this.retry();
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.hooks.url(), ['tessera.v1', `bearer.${t}`]);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.state.value = 'open';
      this.pongDue = 0;
      this.ping = setInterval(() => this.heartbeat(), PING_EVERY_MS);
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return;
      let f: unknown;
      try { f = JSON.parse(e.data); } catch { return; }
      if (!this.hooks.accept(f)) return;
      if (f.type === 'pong') this.pongDue = 0;
      this.hooks.onFrame(f);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.ping);
      if (afterClose(e.code, t) === 'gone') {
        this.stop();
        this.hooks.onGone?.(e.code);
        return;
      }
      this.retry();
    };
  }

  private heartbeat(): void {
    if (this.pongDue && Date.now() > this.pongDue) {
      // No pong: the connection is half-open (a phone changed networks). Start again.
      this.drop();
      return;
    }
    if (!this.pongDue) this.pongDue = Date.now() + PONG_WITHIN_MS;
    this.send({ type: 'ping' } as Out);
  }

  private retry(): void {
    if (this.stopped) return;
    this.state.value = online.value ? 'connecting' : 'offline';
    if (!online.value || !visible.value) return; // the effect reconnects when both are back
    this.schedule(backoff(this.attempt++));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (!this.ws) void this.connect(); }, ms);
  }

  /** Closes the connection and reconnects (resuming with `since`). */
  drop(): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    clearInterval(this.ping);
    ws.onclose = null;
    ws.close();
    this.retry();
  }

  /** Sends when open; answers whether it went out. */
  send(f: Out): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(f));
    return true;
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  stop(): void {
    this.stopped = true;
    this.state.value = 'closed';
    this.unwatch();
    clearTimeout(this.timer);
    clearInterval(this.ping);
    const ws = this.ws;
    this.ws = null;
    if (ws) { ws.onclose = null; ws.close(); }
  }
}
