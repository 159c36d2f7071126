/**
 * The lazy chunks: files (uploads with tus, the files panel), manage
 * (members, invites, room settings, the account), docs (a room's documents,
 * versions and their diff), editor (CodeMirror, Yjs and the document socket)
 * and work (activities, approvals, rules, audit, the AI's digest). Each loads
 * on first use; the small ones are prefetched when the browser is idle after
 * a room opens, the editor when the documents list opens.
 */
import { signal, type Signal } from '@preact/signals';
import { lazy } from '../state/version';
import { fail } from '../state/toasts';

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

const idle = (cb: () => void) => ((window as { requestIdleCallback?: (cb: () => void) => void }).requestIdleCallback ?? ((f: () => void) => setTimeout(f, 1500)))(cb);

export function prefetch(...which: ReadonlyArray<Chunk<unknown>>): void {
  idle(() => { for (const c of which.length ? which : [files, manage, docs]) void c.load().catch(() => undefined); });
}
