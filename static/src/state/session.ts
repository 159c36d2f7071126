/**
 * The signed-in person's device state: their outbox (loaded once per sign-in)
 * and the one room that is open, with what the room view needs besides the
 * socket (its read marker at opening, archived flag). Signing out clears the
 * outbox, the drafts, stored uploads and offline documents of that person on
 * this device.
 */
import { effect, signal } from '@preact/signals-core';
import { onSignOut, user } from '../api/auth';
import { Outbox } from '../realtime/outbox';
import { idbOutbox } from '../realtime/outbox-idb';
import { RoomSession } from '../realtime/room';
import * as drafts from './drafts';
import { forgetAll as forgetDocs } from '../realtime/doc-cache';
import { countWaiting } from './approvals';
import { archived } from './room-admin';
import { byId, get, patch, type Room } from './rooms';
import { fail } from './toasts';

export const outbox = signal<Outbox | null>(null);
export const current = signal<RoomSession | null>(null);
/** The seq after which the open room's messages are new to this person (the "New messages" line). */
export const unreadAfter = signal<number | null>(null);

effect(() => {
  const u = user.value;
  if (outbox.value?.userId === u?.id) return;
  close();
  if (!u) {
    outbox.value = null;
    return;
  }
  const box = new Outbox(idbOutbox, u.id);
  outbox.value = box;
  box.load().catch(fail);
});

onSignOut(async (userId) => {
  close();
  await new Outbox(idbOutbox, userId).clear().catch(() => undefined);
  drafts.clear(userId);
  await forgetDocs(userId).catch(() => undefined);
  for (let i = localStorage.length - 1; i >= 0; i -= 1) {
    const k = localStorage.key(i);
    if (k?.startsWith('tus::')) localStorage.removeItem(k);
  }
});

const LINE_KEY = 'tessera.unread-line.';

export function open(roomId: string): RoomSession | null {
  const box = outbox.value;
  const me = user.value;
  if (!box || !me) return null;
  if (current.value?.roomId === roomId) return current.value;
  close();
  const s = new RoomSession(roomId, me.id, box);
  current.value = s;
  // The line stays where it was when the room was opened, also across a reload of this tab.
  const kept = sessionStorage.getItem(LINE_KEY + roomId);
  unreadAfter.value = kept === null ? byId.value.get(roomId)?.read_seq ?? null : Number(kept);
  get(roomId)
    .then((room) => {
      if (current.value !== s) return;
      if (unreadAfter.value === null && typeof room.read_seq === 'number') unreadAfter.value = room.read_seq;
      if (unreadAfter.value !== null) sessionStorage.setItem(LINE_KEY + roomId, String(unreadAfter.value));
    })
    .catch(fail);
  archived(roomId).then((a) => { if (current.value === s && a) s.archived.value = true; }).catch(() => undefined);
  // The rooms list (which other views read) learns the person's new role at once.
  s.on(({ event, data }) => {
    if (event === 'member_changed' && data.user_id === me.id && typeof data.role === 'string') patch(roomId, { role: data.role as Room['role'] });
    if (event === 'approval_requested' || event === 'approval_resolved') void countWaiting();
  });
  void s.start();
  return s;
}

export function close(): void {
  const s = current.value;
  if (!s) return;
  sessionStorage.removeItem(LINE_KEY + s.roomId);
  s.stop();
  current.value = null;
  unreadAfter.value = null;
}

/** The open room was read up to `seq`: tell the server and clear its badge. */
export function read(seq: number): void {
  const s = current.value;
  if (!s) return;
  s.markRead(seq);
  const room = byId.value.get(s.roomId);
  if (room && (room.unread || room.mentions)) patch(s.roomId, { unread: 0, mentions: 0, read_seq: seq });
}
