/**
 * The room socket's frames (docs/protocol.md, core/src/protocol.rs). Written
 * by hand until core/openapi.json describes the frames; tests/web/unit.test.mjs
 * parses every example of docs/protocol.md through `isServerFrame`.
 */
import type { HelloReads } from '../api/pending';

export type Role = 'owner' | 'admin' | 'member' | 'viewer';
export type Status = 'online' | 'away' | 'offline';

export interface FileRef { id: string; name: string; content_type: string | null; size: number }

export interface Message {
  id: number;
  seq: number;
  author: string;
  author_name: string;
  client_msg_id?: string | null;
  body: string;
  reply_to: number | null;
  mentions: string[];
  attachments: FileRef[];
  created_at: number;
  edited_at: number | null;
  deleted: boolean;
  reactions: Record<string, string[]>;
}

export interface PresenceEntry { user_id: string; display_name: string; status: Status; last_seen: number }
export interface TypingEntry { user_id: string; display_name: string; until: number }

export type ClientFrame =
  | { type: 'send'; client_msg_id: string; body: string; reply_to?: number | null; attachments?: string[] }
  | { type: 'edit'; id: number; body: string }
  | { type: 'delete'; id: number }
  | { type: 'react' | 'unreact'; id: number; emoji: string }
  | { type: 'typing' }
  | { type: 'presence'; status: Status }
  | { type: 'read'; seq: number }
  | { type: 'ping'; nonce?: string };

export type Hello = {
  type: 'hello';
  room: string;
  you: { user_id: string; display_name: string; role: Role };
  head_seq: number;
  presence: PresenceEntry[];
  typing: TypingEntry[];
} & HelloReads;

export type StreamFrame =
  | { type: 'message'; seq: number; message: Message }
  | { type: 'message_edited'; seq: number; id: number; body: string; mentions: string[]; edited_at: number }
  | { type: 'message_deleted'; seq: number; id: number; deleted_by: string }
  | { type: 'reaction'; seq: number; id: number; emoji: string; user_id: string; added: boolean }
  | { type: 'event'; event: string; seq: number; data: Record<string, unknown> };

export type ServerFrame =
  | Hello
  | StreamFrame
  | { type: 'ack'; client_msg_id: string; id: number; seq: number; duplicate: boolean }
  | { type: 'typing'; users: TypingEntry[] }
  | { type: 'presence'; users: PresenceEntry[] }
  | { type: 'read'; user_id: string; seq: number }
  | { type: 'event'; event: string; seq?: undefined; data: Record<string, unknown> }
  | { type: 'error'; code: string; message: string; ref?: string; retry_after?: number }
  | { type: 'resync'; head_seq: number; oldest_seq: number }
  | { type: 'pong'; nonce: string | null; at: number };

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
export function isStream(f: ServerFrame): f is StreamFrame {
  return (f.type === 'message' || f.type === 'message_edited' || f.type === 'message_deleted' || f.type === 'reaction' || f.type === 'event') && typeof f.seq === 'number';
}
