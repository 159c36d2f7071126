/**
 * The service worker (`/sw.js`, scope `/`), registered only when a person
 * turns push notifications on. It shows each push (the payload of
 * core::notify::webpush::notification: title, body, url, tag) and, when the
 * notification is clicked, brings a Tessera tab forward at the room and
 * message (an open tab navigates in the app; otherwise a new window opens).
 * No fetch handler: it caches nothing.
 */
declare const self: ServiceWorkerGlobalScope;
export {};

interface Payload { title?: unknown; body?: unknown; url?: unknown; tag?: unknown }

/** Only a path of this origin is opened (never another site). */
const pathOf = (u: unknown): string => (typeof u === 'string' && u.startsWith('/') && !u.startsWith('//') ? u : '/');
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

self.addEventListener('install', () => { void self.skipWaiting(); });
self.addEventListener('activate', (e) => { e.waitUntil(self.clients.claim()); });

self.addEventListener('push', (e) => {
  let d: Payload = {};
  try { d = (e.data?.json() as Payload | null) ?? {}; } catch { /* not JSON: a plain notification */ }
  const tag = text(d.tag);
  e.waitUntil(self.registration.showNotification(text(d.title) ?? 'Tessera', {
    body: text(d.body) ?? '',
    icon: '/favicon.svg',
    data: { url: pathOf(d.url) },
    ...(tag ? { tag } : {}),
  }));
});

self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const url = pathOf((e.notification.data as { url?: unknown } | null)?.url);
  e.waitUntil((async () => {
    const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const tab = tabs.find((c) => new URL(c.url).origin === self.location.origin);
    if (tab) {
      await tab.focus();
      tab.postMessage({ type: 'open', url });
      return;
    }
    await self.clients.openWindow(url);
  })());
});
