/**
 * The documents this device keeps offline: one IndexedDB database per user,
 * room and document (y-indexeddb's), listed per person in localStorage so
 * that signing out can erase every one. No Yjs here: the initial bundle
 * imports this for sign-out.
 */
const INDEX = 'tessera.docs.';

/** The IndexedDB database of one person's copy of one document. */
export const cacheName = (user: string, room: string, doc: string) => `tessera:${user}:${room}:${doc}`;

function cached(user: string): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(INDEX + user) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** Notes that this device now holds a copy (called when the editor opens a document). */
export function keptLocally(user: string, room: string, doc: string): void {
  const names = new Set(cached(user));
  names.add(cacheName(user, room, doc));
  localStorage.setItem(INDEX + user, JSON.stringify([...names]));
}

const drop = (name: string) => new Promise<void>((resolve) => {
  const req = indexedDB.deleteDatabase(name);
  req.onsuccess = req.onerror = req.onblocked = () => resolve();
});

/** Erases this device's copy of a document (deleted, or discarded). */
export async function forgetLocal(user: string, room: string, doc: string): Promise<void> {
  const name = cacheName(user, room, doc);
  await drop(name);
  localStorage.setItem(INDEX + user, JSON.stringify(cached(user).filter((n) => n !== name)));
}

/** Erases every offline document of a person (sign-out). */
export async function forgetAll(user: string): Promise<void> {
  for (const name of cached(user)) await drop(name);
  localStorage.removeItem(INDEX + user);
}
