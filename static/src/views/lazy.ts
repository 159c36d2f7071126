/**
 * The lazy chunks: files (uploads with tus, the files panel), manage
 * (members, invites, room settings, the account), docs (a room's documents,
 * versions and their diff), editor (CodeMirror, Yjs and the document socket),
 * search (the Ctrl/Cmd+K dialog), notify (the inbox, notification settings, a
 * room's webhooks) and the workflow screens: work (activities board,
 * approvals inbox), admin (rules, audit) and ai (check-in digest, usage).
 * Each loads on first use; files, manage, docs and search are prefetched when
 * the browser is idle after a room is live, the editor when the documents list
 * opens.
 */
import { signal, type Signal } from '@preact/signals';
import { lazy } from '../state/version';
import { fail } from '../state/toasts';
import { whenIdle } from '../lib/idle';

/** A lazy chunk's module as a signal, loaded once (a failed load may be tried again). */
export interface Chunk<T> {
  readonly value: Signal<T | null>;
  load(): Promise<T>;
}

function chunk<T>(importer: () => Promise<T>): Chunk<T> {
  const value = signal<T | null>(null);
  let pending: Promise<T> | null = null;
  return {
    value,
    load() {
      pending ??= lazy(importer).then((m) => (value.value = m));
      pending.catch((e) => { pending = null; fail(e); });
      return pending;
    },
  };
}

export const files = chunk(() => import('./lazy/files'));
export const manage = chunk(() => import('./lazy/manage'));
export const docs = chunk(() => import('./lazy/docs'));
export const editor = chunk(() => import('./lazy/editor'));
/** Search (Ctrl/Cmd+K): the dialog with rooms and hits. */
export const search = chunk(() => import('./lazy/search'));
/** Notifications: the inbox, preferences and push, a room's notifications and webhooks. */
export const notify = chunk(() => import('./lazy/notify'));
export const work = chunk(() => import('./lazy/work'));
export const admin = chunk(() => import('./lazy/admin'));
export const ai = chunk(() => import('./lazy/ai'));

export function prefetch(...which: ReadonlyArray<Chunk<unknown>>): void {
  whenIdle(() => { for (const c of which.length ? which : [files, manage, docs, search]) void c.load().catch(() => undefined); }, 1500);
}
