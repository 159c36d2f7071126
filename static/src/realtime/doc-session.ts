/**
 * One open collaborative document: a Y.Doc cached in IndexedDB (y-indexeddb,
 * one database per user, room and document) and synced over the document
 * socket (y-websocket). It opens from the cache before the socket connects,
 * stays editable offline, and syncs what either side lacks on every
 * reconnect. The socket authenticates with the `tessera.v1` + `bearer.<token>`
 * subprotocols (a fresh token on each connection, no token in URLs) and
 * reconnects with the app's backoff; 4003 (removed from the room) and 4004
 * (the document was deleted) end it for good, and the cached copy is then
 * never sent anywhere.
 */
import { computed, effect, signal } from '@preact/signals-core';
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import { WebsocketProvider } from 'y-websocket';
import type { Awareness } from 'y-protocols/awareness';
import { token } from '../api/auth';
import { cacheName, forgetLocal, keptLocally } from './doc-cache';
import { backoff, online } from './net';
import { GONE, afterClose } from './socket';

/**
 * The Y.Text root that Tessera's editor edits: `ydoc.getText('content')`, the
 * server's `TEXT_ROOT` (docs/documents.md), which its text read uses by default.
 */
export const TEXT_ROOT = 'content';

/** What the header says: the cache is loading, edits are on their way, all sent, or kept here until the connection returns. */
export type SaveState = 'loading' | 'connecting' | 'saving' | 'saved' | 'offline';

/** A person in the document (several tabs of one person are one peer). */
export interface Peer { id: string; name: string; colour: number }

/** Remote carets take one of this many colours (classes `c0`…, chosen with enough contrast in both themes). */
export const COLOURS = 8;

export function colourOf(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i += 1) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % COLOURS;
}

/** How long after the last local change, with nothing left in the socket's buffer, the edit counts as sent. */
const SETTLE_MS = 300;

export class DocSession {
  readonly doc = new Y.Doc();
  readonly text: Y.Text = this.doc.getText(TEXT_ROOT);
  readonly cache: IndexeddbPersistence;
  readonly provider: WebsocketProvider;
  /** The cached copy has been read (the editor can show it). */
  readonly loaded = signal(false);
  readonly gone = signal<'deleted' | 'removed' | null>(null);
  readonly peers = signal<readonly Peer[]>([]);
  private readonly connected = signal(false);
  private readonly dirty = signal(false);
  private readonly failed = signal(false);
  readonly state = computed<SaveState>(() => {
    if (!this.loaded.value) return 'loading';
    if (!this.connected.value) return this.failed.value || !online.value ? 'offline' : 'connecting';
    return this.dirty.value ? 'saving' : 'saved';
  });
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private settleTimer: ReturnType<typeof setTimeout> | undefined;
  private lastLocal = 0;
  private stopped = false;
  private usedToken = '';
  private readonly unwatch: () => void;

  constructor(readonly roomId: string, readonly name: string, readonly me: { id: string; name: string }) {
    keptLocally(me.id, roomId, name);
    this.cache = new IndexeddbPersistence(cacheName(me.id, roomId, name), this.doc);
    const base = new URL(`/api/v1/rooms/${encodeURIComponent(roomId)}/docs`, location.href);
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    this.provider = new WebsocketProvider(base.toString(), name, this.doc, {
      connect: false,
      // Every close comes to `closed` below, which decides (with a fresh token) whether and when to reconnect.
      shouldReconnect: () => false,
      maxBackoffTime: 10_000,
    });
    this.provider.on('status', ({ status }) => {
      if (status === 'connected') { this.attempt = 0; this.failed.value = false; }
      if (status !== 'connected') this.connected.value = false;
    });
    this.provider.on('sync', (synced) => { this.connected.value = synced; this.check(); });
    this.provider.on('closed', ({ code }) => this.closed(code));
    this.awareness.setLocalStateField('user', { id: me.id, name: me.name, colour: colourOf(me.id) });
    this.awareness.on('change', () => this.listPeers());
    this.doc.on('update', (_u: Uint8Array, origin: unknown) => {
      if (origin === this.provider || origin === this.cache) return;
      this.lastLocal = Date.now();
      this.dirty.value = true;
      this.check();
    });
    let first = true;
    this.unwatch = effect(() => {
      const up = online.value;
      if (first) { first = false; return; }
      if (up && !this.stopped && !this.provider.wsconnected) this.reconnect(0);
      if (!up) this.provider.disconnect();
    });
    void this.cache.whenSynced.then(() => {
      if (this.stopped) return;
      this.loaded.value = true;
      this.reconnect(0);
    });
  }

  get awareness(): Awareness {
    return this.provider.awareness;
  }

  private reconnect(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped || this.gone.value) return;
    this.timer = setTimeout(async () => {
      if (this.stopped || !online.value) return;
      try {
        this.usedToken = await token();
        this.provider.protocols = ['tessera.v1', `bearer.${this.usedToken}`];
      } catch {
        this.failed.value = true;
        this.reconnect(backoff(this.attempt++));
        return;
      }
      if (!this.stopped && !this.gone.value) this.provider.connect();
    }, ms);
  }

  private closed(code: number): void {
    this.connected.value = false;
    if (afterClose(code, this.usedToken) === 'gone') {
      this.gone.value = code === GONE.deleted ? 'deleted' : 'removed';
      this.provider.disconnect();
      // The text stays in memory for the view to offer; the device keeps no
      // copy, which a name created anew would otherwise merge on connecting.
      void this.cache.destroy().then(() => forgetLocal(this.me.id, this.roomId, this.name));
      return;
    }
    this.failed.value = true;
    this.reconnect(backoff(this.attempt++));
  }

  /** "Saving…" until the socket's buffer is empty and no edit came for a moment. */
  private check(): void {
    clearTimeout(this.settleTimer);
    if (!this.dirty.peek()) return;
    const ws = this.provider.ws;
    const wait = SETTLE_MS - (Date.now() - this.lastLocal);
    if (this.connected.peek() && ws && ws.bufferedAmount === 0 && wait <= 0) {
      this.dirty.value = false;
      return;
    }
    this.settleTimer = setTimeout(() => this.check(), Math.max(50, wait));
  }

  private listPeers(): void {
    const byId = new Map<string, Peer>();
    for (const [client, st] of this.awareness.getStates()) {
      const u = (st as { user?: Partial<Peer> }).user;
      if (client === this.doc.clientID || !u || typeof u.id !== 'string' || u.id === this.me.id) continue;
      byId.set(u.id, { id: u.id, name: String(u.name ?? 'Someone'), colour: Number(u.colour ?? colourOf(u.id)) % COLOURS });
    }
    const next = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
    const prev = this.peers.peek();
    if (next.length !== prev.length || next.some((p, i) => p.id !== prev[i]?.id || p.name !== prev[i]?.name)) this.peers.value = next;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.settleTimer);
    this.unwatch();
    this.provider.destroy();
    void this.cache.destroy();
    this.doc.destroy();
  }
}
