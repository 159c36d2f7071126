/**
 * The approvals inbox across the person's rooms (`GET /api/v1/approvals`):
 * the requests of rooms they own (scope owner) and their own requests with
 * what became of them (scope mine), the decision with a comment, and how
 * many wait for this person (the sidebar's count, read again when the
 * person's socket says a request came or was decided).
 */
import { signal } from '@preact/signals-core';
import { onSignOut, status } from '../api/auth';
import { api, ok } from '../api/client';
import { describe } from '../api/errors';
import type { InboxItem } from '../api/types';

export type Scope = 'owner' | 'mine';
export type Decision = 'approve' | 'reject';

export const items = signal<InboxItem[]>([]);
export const scope = signal<Scope>('owner');
export const loading = signal(false);
export const error = signal<string | null>(null);
/** Pending requests this person may decide (of the first page: at most 100). */
export const waiting = signal(0);

const waitingIn = (list: readonly InboxItem[]) => list.filter((i) => i.may_decide && i.approval.status === 'pending').length;

let asked = 0;

/**
 * Reads the first page of a scope (pending and recently settled requests,
 * newest first). Another scope than the one shown starts from an empty list,
 * so nothing of another scope (or of whoever was signed in before) is shown
 * as this one's.
 */
export async function load(which: Scope = scope.peek(), fresh = false): Promise<void> {
  const mine = ++asked;
  if (fresh || which !== scope.peek()) items.value = [];
  scope.value = which;
  loading.value = true;
  try {
    const r = await ok(api.GET('/api/v1/approvals', { params: { query: { scope: which, limit: 100 } } }));
    if (mine !== asked) return;
    items.value = r.approvals;
    if (which === 'owner') waiting.value = waitingIn(r.approvals);
    error.value = null;
  } catch (e) {
    if (mine === asked) error.value = describe(e);
  } finally {
    if (mine === asked) loading.value = false;
  }
}

/** Approves or rejects one request; the list shows the decided request as the server answered it. */
export async function decide(item: InboxItem, decision: Decision, comment: string): Promise<void> {
  const params = { path: { room_id: item.room_id, approval_id: item.approval.id } };
  const body = comment.trim() ? { comment: comment.trim() } : {};
  const r = decision === 'approve'
    ? await ok(api.POST('/api/v1/rooms/{room_id}/approvals/{approval_id}/approve', { params, body }))
    : await ok(api.POST('/api/v1/rooms/{room_id}/approvals/{approval_id}/reject', { params, body }));
  items.value = items.peek().map((i) => (i.approval.id === item.approval.id && i.room_id === item.room_id ? { ...i, may_decide: false, approval: r.approval } : i));
  if (scope.peek() === 'owner') waiting.value = waitingIn(items.peek());
}

let counting: Promise<void> | null = null;
onSignOut(() => { waiting.value = 0; });
// Another owner's decision reaches this person's socket only as a room event
// (of the open room): coming back to the tab reads the count again.
if (typeof document !== 'undefined') {
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && status.peek() === 'signed-in') void countWaiting();
  });
}

/** Reads how many requests wait for this person (a failed read keeps the last count). */
export function countWaiting(): Promise<void> {
  counting ??= ok(api.GET('/api/v1/approvals', { params: { query: { scope: 'owner', limit: 100 } } }))
    .then((r) => { waiting.value = waitingIn(r.approvals); }, () => undefined)
    .finally(() => { counting = null; });
  return counting;
}
