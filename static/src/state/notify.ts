/**
 * Notification settings and a room's integrations, as calls the views make:
 * the person's preferences (a level per person and per room, quiet hours,
 * email), Web Push on this device (the service worker `/sw.js`, the VAPID key
 * from the server, the subscription handed to the API), and a room's
 * outgoing and incoming webhooks (admins).
 */
import { signal } from '@preact/signals-core';
import { api, ok } from '../api/client';
import type { components, paths } from '../api/schema.gen';

type S = components['schemas'];
export type Preferences = S['Preferences'];
export type Level = Preferences['level'];
export type QuietHours = NonNullable<Preferences['quiet_hours']>;
export type Webhook = S['Webhook'];
export type WebhookEvent = Webhook['events'][number];
export type Delivery = S['WebhookDelivery'];
export type IncomingHook = S['IncomingWebhook'];
export type PrefsPatch = NonNullable<paths['/api/v1/me/preferences']['patch']['requestBody']>['content']['application/json'];

export const prefs = signal<Preferences | null>(null);

export async function loadPrefs(): Promise<Preferences> {
  const p = await ok(api.GET('/api/v1/me/preferences'));
  prefs.value = p;
  return p;
}

export async function savePrefs(patch: PrefsPatch): Promise<Preferences> {
  const p = await ok(api.PATCH('/api/v1/me/preferences', { body: patch }));
  prefs.value = p;
  return p;
}

/** A room's level: its own, or null when it follows the default. */
export const roomLevel = (p: Preferences, roomId: string): Level | null => p.rooms[roomId] ?? null;

/** `HH:MM` ↔ minutes after midnight (quiet hours are kept in local minutes with the UTC offset). */
export const toMinutes = (hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number);
  return ((h ?? 0) * 60 + (m ?? 0)) % 1440;
};
export const toClock = (min: number): string => `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;

// ---- Web Push on this device

export type PushState = 'unsupported' | 'unconfigured' | 'denied' | 'off' | 'on';

export const push = signal<PushState | null>(null);

const supported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

/** The VAPID key is base64url; PushManager wants its bytes. */
export function keyBytes(b64url: string): Uint8Array<ArrayBuffer> {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(b64url.length / 4) * 4, '=');
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out;
}

async function subscription(): Promise<PushSubscription | null> {
  const reg = await navigator.serviceWorker.getRegistration('/');
  return (await reg?.pushManager.getSubscription()) ?? null;
}

/** Whether this device can get pushes and already does (asks the server for its key and list). */
export async function pushStatus(): Promise<PushState> {
  if (!supported()) return (push.value = 'unsupported');
  const cfg = await ok(api.GET('/api/v1/me/push'));
  if (!cfg.public_key) return (push.value = 'unconfigured');
  if (Notification.permission === 'denied') return (push.value = 'denied');
  const sub = await subscription();
  return (push.value = sub && cfg.subscriptions.some((s) => s.endpoint === sub.endpoint) ? 'on' : 'off');
}

/** Asks for permission, registers the service worker, subscribes with the server's key and tells the server. */
export async function enablePush(): Promise<PushState> {
  const cfg = await ok(api.GET('/api/v1/me/push'));
  if (!cfg.public_key) return (push.value = 'unconfigured');
  if ((await Notification.requestPermission()) !== 'granted') return (push.value = Notification.permission === 'denied' ? 'denied' : 'off');
  const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  await navigator.serviceWorker.ready;
  const sub = (await reg.pushManager.getSubscription()) ?? await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(cfg.public_key) });
  const json = sub.toJSON();
  const keys = json.keys ?? {};
  if (!json.endpoint || !keys.p256dh || !keys.auth) throw new Error('The browser gave a push subscription without keys.');
  await ok(api.POST('/api/v1/me/push/subscriptions', { body: { endpoint: json.endpoint, expirationTime: json.expirationTime ?? null, keys: { p256dh: keys.p256dh, auth: keys.auth } } }));
  return (push.value = 'on');
}

/** Unsubscribes this device, at the push service and at the server. */
export async function disablePush(): Promise<PushState> {
  const sub = await subscription();
  const cfg = await ok(api.GET('/api/v1/me/push'));
  const mine = sub && cfg.subscriptions.find((s) => s.endpoint === sub.endpoint);
  if (mine) await ok(api.DELETE('/api/v1/me/push/subscriptions/{subscription_id}', { params: { path: { subscription_id: mine.id } } }));
  await sub?.unsubscribe();
  return (push.value = 'off');
}

// ---- A room's webhooks (admins)

export const EVENTS: ReadonlyArray<{ id: WebhookEvent; label: string }> = [
  { id: 'message.posted', label: 'Message posted' },
  { id: 'file.added', label: 'File added' },
  { id: 'activity.changed', label: 'Activity changed' },
  { id: 'approval.requested', label: 'Approval requested' },
  { id: 'approval.decided', label: 'Approval decided' },
  { id: 'checkin.done', label: 'Check-in done' },
];

const room = (room_id: string) => ({ params: { path: { room_id } } });
const hook = (room_id: string, hook_id: string) => ({ params: { path: { room_id, hook_id } } });

export const webhooks = async (roomId: string): Promise<Webhook[]> => (await ok(api.GET('/api/v1/rooms/{room_id}/webhooks', room(roomId)))).webhooks;

export const createWebhook = (roomId: string, url: string, events: WebhookEvent[], description: string): Promise<Webhook> =>
  ok(api.POST('/api/v1/rooms/{room_id}/webhooks', { ...room(roomId), body: { url, events, description } }));

export const updateWebhook = (roomId: string, id: string, body: { events?: WebhookEvent[]; enabled?: boolean; rotate_secret?: boolean }): Promise<Webhook> =>
  ok(api.PATCH('/api/v1/rooms/{room_id}/webhooks/{hook_id}', { ...hook(roomId, id), body }));

export const deleteWebhook = (roomId: string, id: string): Promise<unknown> => ok(api.DELETE('/api/v1/rooms/{room_id}/webhooks/{hook_id}', hook(roomId, id)));

export const testWebhook = (roomId: string, id: string): Promise<{ msg_id: string }> => ok(api.POST('/api/v1/rooms/{room_id}/webhooks/{hook_id}/test', hook(roomId, id)));

export const deliveries = async (roomId: string, id: string): Promise<Delivery[]> =>
  (await ok(api.GET('/api/v1/rooms/{room_id}/webhooks/{hook_id}/deliveries', hook(roomId, id)))).deliveries;

export const incomingHooks = async (roomId: string): Promise<IncomingHook[]> =>
  (await ok(api.GET('/api/v1/rooms/{room_id}/incoming-webhooks', room(roomId)))).incoming_webhooks;

export const createIncoming = (roomId: string, name: string): Promise<IncomingHook> =>
  ok(api.POST('/api/v1/rooms/{room_id}/incoming-webhooks', { ...room(roomId), body: { name } }));

export const revokeIncoming = (roomId: string, id: string): Promise<unknown> =>
  ok(api.DELETE('/api/v1/rooms/{room_id}/incoming-webhooks/{hook_id}', hook(roomId, id)));

/** The full URL of an incoming hook's secret path (only in the answer that created it). */
export const hookUrl = (path: string): string => new URL(path, location.origin).toString();
