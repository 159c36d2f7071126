/** A minimal promise wrapper over IndexedDB: one database, object stores by name. */
const NAME = 'tessera';
const VERSION = 1;
let db: Promise<IDBDatabase> | null = null;

function open(): Promise<IDBDatabase> {
  db ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(NAME, VERSION);
    req.onupgradeneeded = () => {
      const outbox = req.result.createObjectStore('outbox', { keyPath: 'client_msg_id' });
      outbox.createIndex('user', 'user_id');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return db;
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function store(name: string, mode: IDBTransactionMode): Promise<IDBObjectStore> {
  return (await open()).transaction(name, mode).objectStore(name);
}

export async function byIndex<T>(name: string, index: string, key: IDBValidKey): Promise<T[]> {
  return done((await store(name, 'readonly')).index(index).getAll(key)) as Promise<T[]>;
}

export async function put(name: string, value: unknown): Promise<void> {
  await done((await store(name, 'readwrite')).put(value));
}

export async function remove(name: string, key: IDBValidKey): Promise<void> {
  await done((await store(name, 'readwrite')).delete(key));
}
