/**
 * The per-person socket's frames (`/api/v1/me/ws`, docs/notifications.md) and
 * the run-time guard that a frame has the fields its handler reads.
 */
import type { components } from '../api/schema.gen';

export type InboxItem = components['schemas']['InboxItem'];
export type Counts = { unread: number; mentions: number };

/** Server → client frames of the per-person socket (docs/notifications.md). */
export type MeFrame =
  | { type: 'hello'; unread_items: number; rooms: Record<string, Counts> }
  | { type: 'item'; item: InboxItem; unread_items: number }
  | { type: 'counts'; room_id: string; counts: Counts }
  | { type: 'read'; ids: number[]; all: boolean; unread_items: number }
  | { type: 'pong' }
  | { type: 'error'; code: string; message: string };
export type MeClientFrame = { type: 'ping' } | { type: 'read'; ids?: number[]; all?: boolean };

const isCounts = (c: unknown): c is Counts => !!c && typeof (c as Counts).unread === 'number' && typeof (c as Counts).mentions === 'number';

/** A frame with the fields its handler reads (anything else is dropped). */
export function isMeFrame(v: unknown): v is MeFrame {
  const f = v as Record<string, unknown> | null;
  if (!f || typeof f !== 'object') return false;
  switch (f.type) {
    case 'hello': return typeof f.unread_items === 'number' && !!f.rooms && typeof f.rooms === 'object' && Object.values(f.rooms).every(isCounts);
    case 'item': return typeof f.unread_items === 'number' && !!f.item && typeof (f.item as InboxItem).id === 'number' && typeof (f.item as InboxItem).link === 'string';
    case 'counts': return typeof f.room_id === 'string' && isCounts(f.counts);
    case 'read': return typeof f.unread_items === 'number' && Array.isArray(f.ids) && typeof f.all === 'boolean';
    case 'pong': return true;
    case 'error': return typeof f.code === 'string' && typeof f.message === 'string';
    default: return false;
  }
}
