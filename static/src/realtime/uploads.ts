/**
 * Uploads over tus (tus-js-client, loaded lazily with the files views): a
 * queue per person with two running at once, per-file and total progress
 * with speed and time left, pause (abort keeping the upload), resume, cancel
 * (tus termination). The fingerprint names the person and the room, so the
 * same file dropped into two rooms never resumes into the wrong one, and a
 * file dropped again after a reload or a crash resumes where the server has
 * it. Every request gets a token fresh from the auth module first: an expired
 * token must never make a resume start over from byte 0.
 */
import { computed, signal } from '@preact/signals-core';
import { Upload, defaultOptions, type DetailedError, type PreviousUpload } from 'tus-js-client';
import { token } from '../api/auth';
import { describe, fromResponse } from '../api/errors';
import { online } from './net';
import type { FileRef } from './protocol';

export type UpState = 'queued' | 'uploading' | 'paused' | 'waiting' | 'finishing' | 'done' | 'error';

export interface Up {
  key: string;
  room: string;
  name: string;
  type: string;
  size: number;
  state: UpState;
  sent: number;
  /** Bytes per second, smoothed. */
  speed: number;
  attach: boolean;
  error?: string;
  /** The finished file, once the room has announced it. */
  file?: FileRef;
  /** Resumed from an earlier session of this upload. */
  resumed?: boolean;
}

/** An unfinished upload of this person found in storage after a reload. */
export interface Leftover { key: string; name: string; room: string; size: number; created: string; storageKey: string }

const CHUNK = 5 * 1024 * 1024;
const RUNNING_MAX = 2;
const DONE_SHOWN_MS = 15_000;
let seq = 0;

export class Uploads {
  readonly list = signal<readonly Up[]>([]);
  readonly leftovers = signal<readonly Leftover[]>([]);
  /** The server's largest file (`Tus-Max-Size`), once known. */
  readonly maxBytes = signal<number | null>(null);
  private readonly tus = new Map<string, Upload>();
  private readonly files = new Map<string, File>();
  private readonly clock = new Map<string, { t: number; sent: number }>();

  constructor(readonly userId: string, private readonly finished: (room: string, fileId: string) => Promise<FileRef>) {
    void this.limits();
    void this.findLeftovers();
    online.subscribe((up) => { if (up) this.list.value.filter((u) => u.state === 'waiting').forEach((u) => this.resume(u.key)); });
  }

  private async limits(): Promise<void> {
    try {
      const r = await fetch('/api/v1/uploads', { method: 'OPTIONS' });
      const max = Number(r.headers.get('tus-max-size'));
      if (max > 0) this.maxBytes.value = max;
    } catch { /* unknown until online */ }
  }

  private prefix(room?: string): string {
    return ['tessera', this.userId, ...(room ? [room] : [])].join('/');
  }

  private async findLeftovers(): Promise<void> {
    const all = await defaultOptions.urlStorage.findAllUploads().catch(() => [] as PreviousUpload[]);
    const mine = all.filter((p) => p.urlStorageKey.startsWith(`tus::${this.prefix()}/`) && p.metadata.room_id);
    this.leftovers.value = mine.map((p) => ({
      key: p.urlStorageKey,
      name: p.metadata.filename ?? 'file',
      room: p.metadata.room_id!,
      size: p.size ?? 0,
      created: p.creationTime,
      storageKey: p.urlStorageKey,
    }));
  }

  roomTotals(room: string) {
    return computed(() => {
      const active = this.list.value.filter((u) => u.room === room && u.state !== 'done' && u.state !== 'error');
      const size = active.reduce((n, u) => n + u.size, 0);
      const sent = active.reduce((n, u) => n + u.sent, 0);
      const speed = active.reduce((n, u) => n + (u.state === 'uploading' ? u.speed : 0), 0);
      return { count: active.length, size, sent, speed, eta: speed > 0 ? (size - sent) / speed : Infinity };
    });
  }

  private set(key: string, patch: Partial<Up>): void {
    this.list.value = this.list.value.map((u) => (u.key === key ? { ...u, ...patch } : u));
  }

  private get(key: string): Up | undefined {
    return this.list.value.find((u) => u.key === key);
  }

  /** Queues files for a room; `attach` marks them for the next message. */
  add(room: string, files: readonly File[], attach: boolean): void {
    const max = this.maxBytes.value;
    const added: Up[] = [];
    for (const f of files) {
      const key = `u${++seq}`;
      const tooBig = max !== null && f.size > max;
      added.push({ key, room, name: f.name, type: f.type, size: f.size, sent: 0, speed: 0, attach, state: tooBig ? 'error' : 'queued', ...(tooBig ? { error: `Larger than the ${Math.floor(max / 1048576)} MiB limit for one file.` } : {}) });
      if (!tooBig) this.files.set(key, f);
    }
    this.list.value = [...this.list.value, ...added];
    this.pump();
  }

  private pump(): void {
    const running = this.list.value.filter((u) => u.state === 'uploading' || u.state === 'finishing').length;
    const next = this.list.value.filter((u) => u.state === 'queued').slice(0, Math.max(0, RUNNING_MAX - running));
    for (const u of next) void this.begin(u);
  }

  private async begin(u: Up): Promise<void> {
    const file = this.files.get(u.key);
    if (!file) return;
    this.set(u.key, { state: 'uploading', error: undefined });
    const up = new Upload(file, {
      endpoint: `${location.origin}/api/v1/uploads`,
      chunkSize: CHUNK,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream', room_id: u.room },
      // Kept on the device only: this person's upload of this file into this room.
      fingerprint: async (f: File) => [this.prefix(u.room), f.name, f.type, f.size, f.lastModified].join('|'),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onBeforeRequest: async (req) => {
        req.setHeader('Authorization', `Bearer ${await token()}`);
      },
      onShouldRetry: (err: DetailedError, attempt: number) => {
        const status = err.originalResponse?.getStatus() ?? 0;
        // 401: the next attempt carries a refreshed token. 409/423/5xx/network: as tus does.
        if (status === 401) return attempt < 2;
        return (status < 400 || status >= 500 || status === 409 || status === 423) && navigator.onLine;
      },
      onProgress: (sent, total) => this.progress(u.key, sent, total),
      onSuccess: () => void this.complete(u.key, up),
      onError: (err) => this.failed(u.key, err),
    });
    this.tus.set(u.key, up);
    const previous = await up.findPreviousUploads().catch(() => []);
    const last = previous.at(-1);
    if (last) {
      up.resumeFromPreviousUpload(last);
      this.set(u.key, { resumed: true });
      this.leftovers.value = this.leftovers.value.filter((l) => l.storageKey !== last.urlStorageKey);
    }
    this.clock.set(u.key, { t: performance.now(), sent: 0 });
    up.start();
  }

  private progress(key: string, sent: number, total: number): void {
    const now = performance.now();
    const last = this.clock.get(key) ?? { t: now, sent };
    const dt = (now - last.t) / 1000;
    const u = this.get(key);
    if (!u) return;
    let speed = u.speed;
    if (dt >= 0.25) {
      const instant = Math.max(0, sent - last.sent) / dt;
      speed = speed ? speed * 0.7 + instant * 0.3 : instant;
      this.clock.set(key, { t: now, sent });
    }
    this.set(key, { sent, size: total, speed, state: sent >= total ? 'finishing' : 'uploading' });
  }

  private async complete(key: string, up: Upload): Promise<void> {
    const u = this.get(key);
    const id = up.url?.split('/').pop();
    if (!u || !id) return;
    this.set(key, { state: 'finishing', sent: u.size });
    try {
      const file = await this.finished(u.room, id);
      this.set(key, { state: 'done', file });
      // Uploads into the room leave the tray a little after they finish; attachments wait for the message.
      if (!u.attach) setTimeout(() => this.dismiss(key), DONE_SHOWN_MS);
    } catch (e) {
      this.set(key, { state: 'error', error: describe(e) });
    }
    this.tus.delete(key);
    this.files.delete(key);
    this.pump();
  }

  private failed(key: string, err: Error): void {
    const res = (err as DetailedError).originalResponse;
    if (!res && !navigator.onLine) {
      this.set(key, { state: 'waiting', speed: 0 });
      return;
    }
    let message = err.message;
    if (res) {
      let body: unknown = null;
      try { body = JSON.parse(res.getBody()); } catch { /* not JSON */ }
      const status = res.getStatus();
      const fake = new Response(null, { status: status >= 200 && status <= 599 ? status : 500, headers: { 'x-request-id': res.getHeader('x-request-id') ?? '' } });
      message = describe(fromResponse(fake, body));
    }
    this.set(key, { state: 'error', error: message, speed: 0 });
    this.pump();
  }

  pause(key: string): void {
    const up = this.tus.get(key);
    if (!up) return;
    void up.abort(false);
    this.set(key, { state: 'paused', speed: 0 });
    this.pump();
  }

  resume(key: string): void {
    const u = this.get(key);
    const up = this.tus.get(key);
    if (!u) return;
    if (up && (u.state === 'paused' || u.state === 'waiting')) {
      this.set(key, { state: 'uploading', error: undefined });
      this.clock.set(key, { t: performance.now(), sent: u.sent });
      up.start();
    } else if (u.state === 'error' && this.files.has(key)) {
      this.tus.delete(key);
      this.set(key, { state: 'queued', error: undefined });
      this.pump();
    }
  }

  /** Stops and deletes the upload on the server (tus termination). */
  async cancel(key: string): Promise<void> {
    const up = this.tus.get(key);
    this.list.value = this.list.value.filter((u) => u.key !== key);
    this.tus.delete(key);
    this.files.delete(key);
    if (up) await up.abort(true).catch(() => undefined);
    this.pump();
  }

  dismiss(key: string): void {
    this.list.value = this.list.value.filter((u) => u.key !== key);
  }

  /** Forgets an upload left from an earlier session (its server side expires by itself). */
  async forget(l: Leftover): Promise<void> {
    await defaultOptions.urlStorage.removeUpload(l.storageKey).catch(() => undefined);
    this.leftovers.value = this.leftovers.value.filter((x) => x.storageKey !== l.storageKey);
  }

  /** Finished attachments of a room for the next message; `take` removes them from the list. */
  attachments(room: string) {
    return computed(() => this.list.value.filter((u) => u.room === room && u.attach));
  }

  take(room: string): FileRef[] {
    const done = this.list.value.filter((u) => u.room === room && u.attach && u.state === 'done' && u.file);
    this.list.value = this.list.value.filter((u) => !done.includes(u));
    return done.map((u) => u.file!);
  }
}
