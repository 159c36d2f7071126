/**
 * One room's WebSocket: authenticates with the `tessera.v1` + `bearer.<token>`
 * subprotocols (no token in URLs), resumes with `?since=` the highest
 * contiguous seq its owner applied, reconnects with jittered backoff (at once
 * when the browser comes online or the tab becomes visible), and closes a
 * half-open connection that stops answering pings. Frames go to `onFrame`
 * already validated; nothing here knows about views.
 */
import { effect, signal } from '@preact/signals-core';
import { rejected, token } from '../api/auth';
import { backoff, online, visible } from './net';
import { isServerFrame, type ClientFrame, type ServerFrame } from './protocol';

export type SocketState = 'connecting' | 'open' | 'offline' | 'closed';

/** Close codes after which reconnecting is pointless. */
export const GONE = { removed: 4003, deleted: 4004 } as const;

/**
 * The socket's session ended (signed out everywhere, revoked): the token it
 * used is dropped and one refresh is tried, which signs the tab out when the
 * session is gone for good.
 */
export const SESSION_ENDED = 4001;

const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;

export interface SocketHooks {
  /** The seq to resume after, or undefined for a fresh start. */
  since(): number | undefined;
  onFrame(f: ServerFrame): void;
  /** The socket ended for good (removed from the room, room deleted). */
  onGone(code: number): void;
}

export class RoomSocket {
  readonly state = signal<SocketState>('connecting');
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ping: ReturnType<typeof setInterval> | undefined;
  private pongDue = 0;
  private stopped = false;
  private readonly unwatch: () => void;

  constructor(private readonly roomId: string, private readonly hooks: SocketHooks) {
    let first = true;
    this.unwatch = effect(() => {
      const up = online.value && visible.value;
      if (first) { first = false; return; }
      // Coming back online or to the foreground: reconnect now, not at the next backoff tick.
      if (up && !this.ws && !this.stopped) { this.attempt = 0; this.schedule(0); }
    });
    this.connect();
  }

  private url(): string {
    const since = this.hooks.since();
    const u = new URL(`/api/v1/rooms/${encodeURIComponent(this.roomId)}/ws`, location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    if (since !== undefined) u.searchParams.set('since', String(since));
    return u.toString();
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
    const ws = new WebSocket(this.url(), ['tessera.v1', `bearer.${t}`]);
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
      if (!isServerFrame(f)) return;
      if (f.type === 'pong') this.pongDue = 0;
      this.hooks.onFrame(f);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.ping);
      if (e.code === GONE.removed || e.code === GONE.deleted) {
        this.stop();
        this.hooks.onGone(e.code);
        return;
      }
      if (e.code === SESSION_ENDED) rejected(t);
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
    this.send({ type: 'ping' });
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
  send(f: ClientFrame): boolean {
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
