/**
 * The room socket's frames, typed from core/openapi.json (`ClientFrame`,
 * `ServerFrame`), and the run-time guard that a frame has the fields its
 * handler reads (tests/web/unit.test.mjs runs every example of docs/protocol.md
 * through it).
 */
import type { components } from '../api/schema.gen';

type S = components['schemas'];

export type Role = S['Identity']['role'];
export type Status = S['PresenceEntry']['status'];
export type FileRef = S['FileRef'];
export type Message = S['Message'];
export type PresenceEntry = S['PresenceEntry'];
export type TypingEntry = S['TypingEntry'];
export type ClientFrame = S['ClientFrame'];
export type Hello = S['ServerHello'];
export type ServerFrame = S['ServerFrame'];
type Event = S['RoomEvent'];

/** The frames of the gap-free stream: they carry a `seq` (events too, when they are part of it). */
export type StreamFrame = S['ServerMessage'] | S['ServerMessageEdited'] | S['ServerMessageDeleted'] | S['ServerReaction'] | Extract<Event, { seq: number }>;

const TYPES = new Set(['hello', 'ack', 'message', 'message_edited', 'message_deleted', 'reaction', 'typing', 'presence', 'read', 'event', 'error', 'resync', 'pong']);

/** A frame of a known type with the fields its handlers read (a bad frame is dropped, never trusted). */
export function isServerFrame(v: unknown): v is ServerFrame {
  const f = v as Record<string, unknown> | null;
  if (!f || typeof f !== 'object' || typeof f.type !== 'string' || !TYPES.has(f.type)) return false;
  const num = (k: string) => typeof f[k] === 'number';
  switch (f.type) {
    case 'hello': return num('head_seq') && Array.isArray(f.presence) && Array.isArray(f.typing) && typeof f.you === 'object';
    case 'ack': return typeof f.client_msg_id === 'string' && num('id') && num('seq');
    case 'message': return num('seq') && typeof f.message === 'object' && f.message !== null;
    case 'message_edited': return num('seq') && num('id') && typeof f.body === 'string';
    case 'message_deleted': return num('seq') && num('id');
    case 'reaction': return num('seq') && num('id') && typeof f.emoji === 'string' && typeof f.user_id === 'string';
    case 'typing': case 'presence': return Array.isArray(f.users);
    case 'read': return typeof f.user_id === 'string' && num('seq');
    case 'event': return typeof f.event === 'string' && typeof f.data === 'object' && f.data !== null && (f.seq === undefined || num('seq'));
    case 'error': return typeof f.code === 'string' && typeof f.message === 'string';
    case 'resync': return num('head_seq') && num('oldest_seq');
    default: return true;
  }
}

/** Frames that belong to the gap-free stream: they carry a `seq`. */
const STREAM = new Set(['message', 'message_edited', 'message_deleted', 'reaction', 'event']);

export function isStream(f: ServerFrame): f is StreamFrame {
  // `ack` and `read` carry a seq too, but are not events of the stream.
  return STREAM.has(f.type) && typeof (f as { seq?: unknown }).seq === 'number';
}
