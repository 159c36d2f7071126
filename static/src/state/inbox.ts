/**
 * The signed-in person's inbox and live badges, over the per-person socket
 * (`/api/v1/me/ws`): its `hello` and `counts` frames keep every room's unread
 * and mention counts current (so the rooms list stops polling while it is
 * open: `countsLive`), `item` frames add to the inbox, `read` frames (from any
 * device) mark items read. The list itself is read over REST when the inbox
 * is opened, and paged.
 */
import { effect, signal } from '@preact/signals-core';
import { status } from '../api/auth';
import { api, ok } from '../api/client';
import { isMeFrame, type Counts, type InboxItem, type MeClientFrame, type MeFrame } from '../realtime/me-protocol';
import { Socket, wsUrl } from '../realtime/socket';
import { countWaiting } from './approvals';
import { byId, countsLive, loaded, patch, refresh } from './rooms';
import { navigate, parse } from './route';
import { current } from './session';
export type { InboxItem };

export const unreadItems = signal(0);
/** The newest items, once the inbox was opened (null before). */
export const items = signal<readonly InboxItem[] | null>(null);
export const nextBefore = signal<number | null>(null);

const sock = signal<Socket<MeFrame, MeClientFrame> | null>(null);
/** Counts the socket brought before the list's first read answered: that read may be older than they are. */
const beforeList = new Map<string, Counts>();

effect(() => {
  const signedIn = status.value === 'signed-in';
  const s = sock.peek();
  if (signedIn && !s) {
    sock.value = new Socket<MeFrame, MeClientFrame>({ url: () => wsUrl('/api/v1/me/ws').toString(), accept: isMeFrame, onFrame });
  } else if (!signedIn && s) {
    s.stop();
    sock.value = null;
    unreadItems.value = 0;
    beforeList.clear();
    items.value = null;
    nextBefore.value = null;
  }
});

// While the socket is open the counts come live and the rooms list stops polling; when it drops, polling is the fallback.
effect(() => { countsLive.value = sock.value?.state.value === 'open'; });

effect(() => {
  if (!loaded.value) return;
  const pending = [...beforeList];
  beforeList.clear();
  for (const [id, c] of pending) setCounts(id, c);
});

function setCounts(roomId: string, c: Counts): void {
  const room = byId.value.get(roomId);
  if (!room) {
    // A room this list has not seen (added to it elsewhere): read the list again.
    if (loaded.value) void refresh(true);
    else beforeList.set(roomId, c);
    return;
  }
  // The open room's badge is cleared as it is read (session.read); its ticks would only flicker.
  if (current.value?.roomId === roomId && document.visibilityState === 'visible') return;
  if (room.unread !== c.unread || room.mentions !== c.mentions) patch(roomId, { unread: c.unread, mentions: c.mentions });
}

function onFrame(f: MeFrame): void {
  switch (f.type) {
    case 'hello':
      unreadItems.value = f.unread_items;
      // Requests may have come or been decided while the socket was down.
      void countWaiting();
      // The list itself is re-read when the socket opens (state/rooms.ts).
      for (const [id, c] of Object.entries(f.rooms)) setCounts(id, c);
      break;
    case 'item':
      unreadItems.value = f.unread_items;
      if (f.item.kind === 'approval_requested' || f.item.kind === 'approval_decided') void countWaiting();
      if (items.value && !items.value.some((i) => i.id === f.item.id)) items.value = [f.item, ...items.value];
      break;
    case 'counts':
      setCounts(f.room_id, f.counts);
      break;
    case 'read': {
      unreadItems.value = f.unread_items;
      const ids = new Set(f.ids);
      if (items.value) items.value = items.value.map((i) => (f.all || ids.has(i.id) ? { ...i, read: true } : i));
      break;
    }
    default:
      break;
  }
}

const PAGE = 30;

/** Reads the newest page (or the next older one with `more`). */
export async function loadInbox(more = false): Promise<void> {
  const before = more ? nextBefore.value ?? undefined : undefined;
  if (more && before === undefined) return;
  const r = await ok(api.GET('/api/v1/me/inbox', { params: { query: { limit: PAGE, ...(before !== undefined ? { before } : {}) } } }));
  const have = more ? items.value ?? [] : [];
  const seen = new Set(have.map((i) => i.id));
  items.value = [...have, ...r.items.filter((i) => !seen.has(i.id))];
  nextBefore.value = r.next_before;
  unreadItems.value = r.unread_items;
}

/** Marks items read (or all of them); the socket tells the other devices. */
export async function markRead(ids: number[] | 'all'): Promise<void> {
  const body = ids === 'all' ? { all: true } : { ids };
  if (items.value) {
    const set = new Set(ids === 'all' ? [] : ids);
    items.value = items.value.map((i) => (ids === 'all' || set.has(i.id) ? { ...i, read: true } : i));
  }
  const r = await ok(api.POST('/api/v1/me/inbox/read', { body }));
  unreadItems.value = r.unread_items;
}

// A clicked push notification (static/sw/sw.ts) asks an open tab to show its room and message.
if (typeof navigator !== 'undefined' && 'serviceWorker' in navigator) {
  navigator.serviceWorker.addEventListener('message', (e: MessageEvent) => {
    const d = e.data as { type?: unknown; url?: unknown } | null;
    if (d?.type === 'open' && typeof d.url === 'string' && parse(d.url).name !== 'missing') navigate(d.url);
  });
}
