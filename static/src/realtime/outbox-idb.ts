/** The outbox's IndexedDB store (object store `outbox`, indexed by user). */
import { byIndex, put, remove } from '../lib/idb';
import type { OutEntry, OutboxStore } from './outbox';

export const idbOutbox: OutboxStore = {
  load: (userId) => byIndex<OutEntry>('outbox', 'user', userId),
  put: (e) => put('outbox', e),
  delete: (id) => remove('outbox', id),
};
