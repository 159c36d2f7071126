/**
 * Messages a person sent that the server has not acknowledged yet, kept on
 * the device (IndexedDB) so that neither a dropped connection nor a reload
 * nor a crash loses one. Each has a `client_msg_id`, which makes resending
 * safe: a repeat gets the original ack (`duplicate: true`) and creates
 * nothing. `pending` entries are (re)sent whenever the room's socket opens;
 * `failed` ones (the server refused them) wait for Retry or Delete.
 */
import { signal } from '@preact/signals-core';
import type { FileRef } from './protocol';

export type OutState = 'pending' | 'failed' | 'acked';

export interface OutEntry {
  client_msg_id: string;
  user_id: string;
  room_id: string;
  body: string;
  reply_to: number | null;
  attachments: FileRef[];
  created_at: number;
  state: OutState;
  error?: string;
  /** The message id once acknowledged (kept in memory until the message shows in the timeline). */
  id?: number;
}

/** Where entries persist; IndexedDB in the browser, a Map in unit tests. */
export interface OutboxStore {
  load(userId: string): Promise<OutEntry[]>;
  put(e: OutEntry): Promise<void>;
  delete(clientMsgId: string): Promise<void>;
}

export class Outbox {
  readonly entries = signal<readonly OutEntry[]>([]);

  constructor(private readonly store: OutboxStore, readonly userId: string) {}

  async load(): Promise<void> {
    const saved = (await this.store.load(this.userId)).filter((e) => e.state !== 'acked');
    const known = new Set(this.entries.value.map((e) => e.client_msg_id));
    this.entries.value = [...this.entries.value, ...saved.filter((e) => !known.has(e.client_msg_id))]
      .sort((a, b) => a.created_at - b.created_at);
  }

  forRoom(roomId: string): OutEntry[] {
    return this.entries.value.filter((e) => e.room_id === roomId);
  }

  add(roomId: string, body: string, replyTo: number | null, attachments: FileRef[], now = Date.now()): OutEntry {
    const e: OutEntry = {
      client_msg_id: `w-${crypto.randomUUID()}`,
      user_id: this.userId,
      room_id: roomId,
      body,
      reply_to: replyTo,
      attachments,
      created_at: now,
      state: 'pending',
    };
    this.entries.value = [...this.entries.value, e];
    void this.store.put(e);
    return e;
  }

  private set(id: string, patch: Partial<OutEntry>): OutEntry | undefined {
    let found: OutEntry | undefined;
    this.entries.value = this.entries.value.map((e) => (e.client_msg_id === id ? (found = { ...e, ...patch }) : e));
    return found;
  }

  /** The server has it: forget it on the device; it stays shown until `settle` sees it in the timeline. */
  acked(clientMsgId: string, id: number): void {
    if (this.set(clientMsgId, { state: 'acked', id })) void this.store.delete(clientMsgId);
  }

  failed(clientMsgId: string, error: string): void {
    const e = this.set(clientMsgId, { state: 'failed', error });
    if (e) void this.store.put(e);
  }

  retry(clientMsgId: string): OutEntry | undefined {
    const e = this.set(clientMsgId, { state: 'pending', error: undefined });
    if (e) void this.store.put(e);
    return e;
  }

  remove(clientMsgId: string): void {
    this.entries.value = this.entries.value.filter((e) => e.client_msg_id !== clientMsgId);
    void this.store.delete(clientMsgId);
  }

  /** Drops acknowledged entries whose message the timeline now shows. */
  settle(shown: (id: number, clientMsgId: string) => boolean): void {
    const keep = this.entries.value.filter((e) => !(e.state === 'acked' && shown(e.id!, e.client_msg_id)));
    if (keep.length !== this.entries.value.length) this.entries.value = keep;
  }

  /** Forgets everything (sign-out). */
  async clear(): Promise<void> {
    this.entries.value = [];
    for (const e of await this.store.load(this.userId)) await this.store.delete(e.client_msg_id);
  }
}
