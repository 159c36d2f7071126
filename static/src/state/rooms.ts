/**
 * The rooms list with unread counts and mention badges. The per-person socket
 * (state/inbox.ts) keeps the counts live while it is open (`countsLive`), and
 * the list is re-read when it (re)opens and when the tab becomes visible;
 * while it is down, the list is re-read every 20 s as the fallback. The open
 * room's socket keeps its own entry current. The last list read is kept on
 * the device (per person, cleared at sign-out), so an offline start still
 * knows the rooms and the person's role in each (an offline document stays
 * editable).
 */
import { computed, effect, signal } from '@preact/signals-core';
import { api, ok } from '../api/client';
import type { Room, UserHit } from '../api/types';
import { onSignOut, status, user } from '../api/auth';
import { describe } from '../api/errors';
import { visible } from '../realtime/net';

export type { Room };
export type Kind = 'group' | 'project' | 'direct';

export const rooms = signal<readonly Room[]>([]);
export const loaded = signal(false);
export const listError = signal<string | null>(null);
/** The per-person socket is open and pushes every room's counts: no polling. */
export const countsLive = signal(false);

const POLL_MS = 20_000;
let timer: ReturnType<typeof setInterval> | undefined;

let reading: Promise<void> | null = null;
let queued: Promise<void> | null = null;
/** When the last read began, and how long it stands for a read asked for again. */
let readAt = -Infinity;
const FRESH_MS = 5_000;

/**
 * Reads the list. A read under way or begun in the last 5 s answers the
 * call (on every page load the socket opens just after the first read, and
 * would read it again), unless `fresh`: then a new read begins, after the
 * one under way (a room the socket names that the list does not have is
 * newer than the list).
 */
export function refresh(fresh = false): Promise<void> {
  if (reading) {
    if (!fresh) return reading;
    queued ??= reading.then(() => { queued = null; return refresh(true); });
    return queued;
  }
  if (!fresh && performance.now() - readAt < FRESH_MS) return Promise.resolve();
  readAt = performance.now();
  reading = read().finally(() => { reading = null; });
  return reading;
}

async function read(): Promise<void> {
  try {
    const r = await ok(api.GET('/api/v1/rooms', { params: { query: { limit: 200 } } }));
    rooms.value = r.rooms;
    keep(r.rooms);
    loaded.value = true;
    listError.value = null;
  } catch (e) {
    listError.value = describe(e);
  }
}

const KEPT = 'tessera.rooms.';
let kept = '';

function keep(list: readonly Room[]): void {
  const id = user.peek()?.id;
  const text = JSON.stringify(list);
  if (!id || text === kept) return;
  kept = text;
  try { localStorage.setItem(KEPT + id, text); } catch { /* full: the list lives in memory only */ }
}

function restore(id: string): void {
  try {
    const v = JSON.parse(localStorage.getItem(KEPT + id) ?? 'null') as unknown;
    if (Array.isArray(v) && !rooms.peek().length) rooms.value = v as Room[];
  } catch { /* a damaged copy is ignored */ }
}

onSignOut((id) => localStorage.removeItem(KEPT + id));

effect(() => {
  clearInterval(timer);
  if (status.value !== 'signed-in') {
    rooms.value = [];
    loaded.value = false;
    kept = '';
    readAt = -Infinity;
    return;
  }
  const id = user.value?.id;
  if (id) restore(id);
  // Read on sign-in, on coming back to the tab and when the per-person socket (re)opens
  // (names, roles and rooms joined elsewhere); polled only while that socket is down.
  if (!visible.value) return;
  void refresh();
  if (countsLive.value) return;
  timer = setInterval(() => void refresh(), POLL_MS);
});

export const byId = computed(() => new Map(rooms.value.map((r) => [r.id, r])));

/** Updates one room in the list (the open room: read, renamed). */
export function patch(id: string, p: Partial<Room>): void {
  rooms.value = rooms.value.map((r) => (r.id === id ? { ...r, ...p } : r));
}

export function upsert(room: Room): void {
  rooms.value = byId.value.has(room.id) ? rooms.value.map((r) => (r.id === room.id ? { ...r, ...room } : r)) : [room, ...rooms.value];
}

export function forget(id: string): void {
  rooms.value = rooms.value.filter((r) => r.id !== id);
}

export async function create(kind: Kind, name: string, topic: string, members: string[] = []): Promise<Room> {
  const body = kind === 'direct' ? { kind, members } : { kind, name, topic, members };
  const room = (await ok(api.POST('/api/v1/rooms', { body } )));
  upsert(room);
  return room;
}

export async function get(id: string): Promise<Room> {
  const room = (await ok(api.GET('/api/v1/rooms/{room_id}', { params: { path: { room_id: id } } })));
  upsert(room);
  return room;
}

/** People to start a direct room with: those sharing a room with the caller, or an exact email. */
export async function findPeople(q: string): Promise<UserHit[]> {
  return (await ok(api.GET('/api/v1/users', { params: { query: { q } } }))).users;
}
