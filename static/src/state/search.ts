/**
 * Search across the person's rooms (GET /api/v1/search) as they type: the
 * query and its filters (one room or all, which kinds) as signals, debounced
 * and with stale requests aborted (lib/latest.ts), ranked hits with their
 * snippets as runs (`parts`: the server's escaped text split at its `<mark>`s,
 * so the view builds text nodes and never HTML), paged by cursor. Hybrid
 * ranking; when the server has no embedding provider it answers full-text
 * hits and says semantic search is unavailable, which the view says quietly.
 * Opening a hit goes to its room, at the message for messages and check-ins.
 */
import { batch, signal } from '@preact/signals-core';
import { api, ok } from '../api/client';
import type { components } from '../api/schema.gen';
import { describe } from '../api/errors';
import { latest } from '../lib/latest';
import type { Room } from './rooms';
import { navigate } from './route';

type S = components['schemas'];
export type Hit = S['SearchHit'];
export type HitKind = Hit['kind'];
export type Snippet = S['Snippet'];
type Results = S['SearchResults'];

export const KINDS: ReadonlyArray<{ id: HitKind; label: string }> = [
  { id: 'message', label: 'Messages' },
  { id: 'document', label: 'Documents' },
  { id: 'file', label: 'Files' },
  { id: 'activity', label: 'Activities' },
  { id: 'checkin', label: 'Check-ins' },
];

/** The server's prefix matching needs two characters of a word. */
export const MIN_CHARS = 2;
const DEBOUNCE_MS = 200;
const PAGE = 20;

export interface Query { q: string; room: string | null; kinds: readonly HitKind[] }

export const query = signal<Query>({ q: '', room: null, kinds: [] });
export const hits = signal<readonly Hit[]>([]);
export const state = signal<'idle' | 'loading' | 'done' | 'error'>('idle');
export const error = signal<string | null>(null);
/** Why semantic ranking did not take part, when it did not (null when it did). */
export const semanticNote = signal<string | null>(null);
export const nextCursor = signal<string | null>(null);
export const scope = signal<Results['scope'] | null>(null);

function fetchPage(q: Query, cursor: string | null, signal: AbortSignal): Promise<Results> {
  const kind = q.kinds.length ? q.kinds.join(',') : undefined;
  return ok(api.GET('/api/v1/search', {
    params: { query: { q: q.q.trim(), mode: 'hybrid', limit: PAGE, ...(q.room ? { room: q.room } : {}), ...(kind ? { kind } : {}), ...(cursor ? { cursor } : {}) } },
    signal,
  }));
}

const take = (r: Results, append: boolean) => batch(() => {
  hits.value = append ? [...hits.value, ...r.results] : r.results;
  nextCursor.value = r.next_cursor;
  scope.value = r.scope;
  semanticNote.value = r.semantic.available ? null : r.semantic.reason ?? 'Semantic search is unavailable.';
  state.value = 'done';
  error.value = null;
});

const failed = (e: unknown) => batch(() => { state.value = 'error'; error.value = describe(e); });

const first = latest<Query, Results>((q, s) => fetchPage(q, null, s), DEBOUNCE_MS, (r) => take(r, false), failed);
const more = latest<{ q: Query; cursor: string }, Results>((a, s) => fetchPage(a.q, a.cursor, s), 0, (r) => take(r, true), failed);

/** Changes the query or its filters; searches once typing pauses. */
export function set(p: Partial<Query>): void {
  const q = { ...query.value, ...p };
  query.value = q;
  more.cancel();
  if (q.q.trim().length < MIN_CHARS) {
    first.cancel();
    batch(() => { hits.value = []; state.value = 'idle'; nextCursor.value = null; error.value = null; });
    return;
  }
  state.value = 'loading';
  first.request(q);
}

export function loadMore(): void {
  const cursor = nextCursor.value;
  if (!cursor || state.value === 'loading') return;
  state.value = 'loading';
  more.now({ q: query.value, cursor });
}

/** Forgets the query and results (the dialog closed). */
export function reset(): void {
  first.cancel();
  more.cancel();
  batch(() => { query.value = { q: '', room: null, kinds: [] }; hits.value = []; state.value = 'idle'; error.value = null; nextCursor.value = null; semanticNote.value = null; });
}

/** Where a hit opens: its room, at the message when it names one. */
export function hitPath(h: Hit): string {
  const base = `/rooms/${encodeURIComponent(h.room_id)}`;
  return 'seq' in h.link ? `${base}?message=${h.link.seq}` : base;
}

export function openHit(h: Hit): void {
  navigate(hitPath(h));
}

/** Rooms whose name contains the query, unread first, then names that start with it. */
export function roomMatches(list: readonly Room[], q: string, max = 6): Room[] {
  const text = q.trim().toLowerCase();
  const starts = (r: Room) => Number(!r.name.toLowerCase().startsWith(text));
  return list
    .filter((r) => r.name.toLowerCase().includes(text))
    .sort((a, b) => (b.unread ?? 0) - (a.unread ?? 0) || starts(a) - starts(b))
    .slice(0, max);
}
