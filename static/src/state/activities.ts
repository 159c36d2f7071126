/**
 * A room's activities board: the state read over REST, kept live by the
 * room socket's `collaboration_updated` (applied in version order; a gap
 * reloads), and the named actions that change it. An edit remembers the
 * version it started from and sends it as `If-Match`, so a change made
 * meanwhile answers 412 and the person is told who made it, keeping what
 * they typed.
 */
import { signal } from '@preact/signals-core';
import { api, ok } from '../api/client';
import { ApiError, describe } from '../api/errors';
import type { Activity, LastChange } from '../api/types';
import { applyChanges, conflictText, type Change } from '../lib/workflow';
import type { RoomSession } from '../realtime/room';

/** What an action answered: done, a request that waits for an owner, a conflict, or a refusal. */
export type Outcome =
  | { kind: 'done'; version: number }
  | { kind: 'approval' }
  | { kind: 'conflict'; text: string }
  | { kind: 'error'; text: string; field: string | null };

/**
 * An edit in progress: what the person typed and the version it started
 * from. Kept in the store, not the card, so it survives the card moving to
 * another column while they type.
 */
export interface EditDraft { title: string; description: string; base: number; conflict: string | null; error: string | null }

export class Board {
  readonly drafts = signal<Readonly<Record<string, EditDraft>>>({});
  readonly activities = signal<Record<string, Activity>>({});
  readonly version = signal(0);
  readonly lastChange = signal<LastChange | null>(null);
  readonly loaded = signal(false);
  readonly error = signal<string | null>(null);
  private readonly off: () => void;

  constructor(readonly roomId: string, session: RoomSession) {
    this.off = session.on((e) => {
      if (e.event === 'collaboration_updated') this.updated(e.data as { version: number; changes: Change[]; changed_by?: LastChange['changed_by']; changed_at?: number });
    });
  }

  async load(): Promise<void> {
    try {
      const s = await ok(api.GET('/api/v1/rooms/{room_id}/state', { params: { path: { room_id: this.roomId } } }));
      this.activities.value = s.activities;
      this.version.value = s.version;
      this.lastChange.value = s.last_change;
      this.error.value = null;
      this.loaded.value = true;
    } catch (e) {
      this.error.value = describe(e);
    }
  }

  private updated(d: { version: number; changes: Change[]; changed_by?: LastChange['changed_by']; changed_at?: number }): void {
    if (!this.loaded.peek() || d.version <= this.version.peek()) return;
    if (d.version !== this.version.peek() + 1) {
      void this.load();
      return;
    }
    const next = applyChanges(this.activities.peek(), d.changes);
    if (next) this.activities.value = next;
    this.version.value = d.version;
    if (d.changed_by) this.lastChange.value = { version: d.version, changed_by: d.changed_by, changed_at: d.changed_at ?? 0 };
  }

  /** Runs a named action; `base` (the version an edit started from) is sent as If-Match. */
  async act(action: string, args: Record<string, unknown>, base?: number): Promise<Outcome> {
    try {
      const r = await ok(api.POST('/api/v1/rooms/{room_id}/actions/{action}', {
        params: { path: { room_id: this.roomId, action }, header: base === undefined ? undefined : { 'If-Match': String(base) } },
        body: args,
      }));
      const body = r as { version?: number; approval?: unknown };
      if (body.approval) return { kind: 'approval' };
      return { kind: 'done', version: body.version ?? this.version.peek() };
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) return { kind: 'conflict', text: conflictText(e.details) };
      return { kind: 'error', text: describe(e), field: e instanceof ApiError ? e.field : null };
    }
  }

  edit(a: Activity): void {
    this.patch(a.id, { title: a.title, description: a.description, base: this.version.peek(), conflict: null, error: null });
  }

  /** Changes an edit's fields (what the person typed). */
  patch(id: string, p: Partial<EditDraft>): void {
    const d = this.drafts.peek()[id];
    if (!d && !('base' in p)) return;
    this.drafts.value = { ...this.drafts.peek(), [id]: { ...d!, ...p } };
  }

  discard(id: string): void {
    const { [id]: _, ...rest } = this.drafts.peek();
    this.drafts.value = rest;
  }

  /** Saves an edit with If-Match: its base version; a 412 keeps the draft and says who changed the room. */
  async save(id: string): Promise<void> {
    const d = this.drafts.peek()[id];
    if (!d) return;
    const r = await this.act('update_activity', { id, title: d.title.trim(), description: d.description }, d.base);
    if (r.kind === 'done' || r.kind === 'approval') this.discard(id);
    else if (r.kind === 'conflict') this.patch(id, { conflict: r.text, error: null });
    else this.patch(id, { error: r.text, conflict: null });
  }

  /** "Reload": the state as it is now becomes the edit's base; what was typed stays. */
  async rebase(id: string): Promise<void> {
    await this.load();
    this.patch(id, { base: this.version.peek(), conflict: null });
  }

  stop(): void {
    this.off();
  }
}
