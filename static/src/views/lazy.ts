/**
 * The lazy chunks: files (uploads with tus, the files panel), manage
 * (members, invites, room settings, the account), search (the Ctrl/Cmd+K
 * dialog) and notify (the inbox, notification settings, a room's webhooks).
 * Each loads on first use; files, manage and search are prefetched when the
 * browser is idle after a room opens.
 */
import { signal, type Signal } from '@preact/signals';
import { lazy } from '../state/version';
import { fail } from '../state/toasts';

export type FilesChunk = typeof import('./lazy/files');
export type ManageChunk = typeof import('./lazy/manage');

export const filesChunk = signal<FilesChunk | null>(null);
export const manageChunk = signal<ManageChunk | null>(null);

let files: Promise<FilesChunk> | null = null;
let manage: Promise<ManageChunk> | null = null;

export function loadFiles(): Promise<FilesChunk> {
  files ??= lazy(() => import('./lazy/files')).then((m) => (filesChunk.value = m));
  files.catch((e) => { files = null; fail(e); });
  return files;
}

export function loadManage(): Promise<ManageChunk> {
  manage ??= lazy(() => import('./lazy/manage')).then((m) => (manageChunk.value = m));
  manage.catch((e) => { manage = null; fail(e); });
  return manage;
}

export function prefetch(): void {
  const idle = (window as { requestIdleCallback?: (cb: () => void) => void }).requestIdleCallback ?? ((cb: () => void) => setTimeout(cb, 1500));
  idle(() => { void loadFiles().catch(() => undefined); void loadManage().catch(() => undefined); void searchChunk.load().catch(() => undefined); });
}

export type SearchChunk = typeof import('./lazy/search');
export type NotifyChunk = typeof import('./lazy/notify');

/** A lazy chunk's module as a signal, loaded once (a failed load may be tried again). */
function chunk<T>(load: () => Promise<T>): { module: Signal<T | null>; load: () => Promise<T> } {
  const module = signal<T | null>(null);
  let pending: Promise<T> | null = null;
  return {
    module,
    load() {
      pending ??= lazy(load).then((m) => (module.value = m));
      pending.catch((e) => { pending = null; fail(e); });
      return pending;
    },
  };
}

/** Search (Ctrl/Cmd+K): the dialog with rooms and hits. */
export const searchChunk = chunk(() => import('./lazy/search'));
/** Notifications: the inbox, preferences and push, a room's notifications and webhooks. */
export const notifyChunk = chunk(() => import('./lazy/notify'));
