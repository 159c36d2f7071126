/**
 * The AI teammate's reads (docs/ai.md): a day's check-in as members read it,
 * the owner's "check in now", and the room's AI usage against its budget.
 */
import { api, ok } from '../api/client';
import { ApiError } from '../api/errors';
import type { CheckinView, UsageReport } from '../api/types';

/** Today as the server counts days (UTC). */
export const today = (): string => new Date().toISOString().slice(0, 10);

/** The day's check-in, or null for a day without one (404). */
export async function checkin(roomId: string, day: string): Promise<CheckinView | null> {
  try {
    return await ok(api.GET('/api/v1/rooms/{room_id}/checkin', { params: { path: { room_id: roomId }, query: { date: day } } }));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** Runs today's check-in (owners); a repeat the same day answers the stored one. */
export async function runCheckin(roomId: string): Promise<void> {
  await ok(api.POST('/api/v1/rooms/{room_id}/checkin', { params: { path: { room_id: roomId } } }));
}

export async function usage(roomId: string, day: string): Promise<UsageReport> {
  return ok(api.GET('/api/v1/rooms/{room_id}/ai/usage', { params: { path: { room_id: roomId }, query: { date: day } } }));
}

const days = new Map<string, Promise<CheckinView | null>>();

/**
 * The check-in that a message of the AI's is the summary of, if it is one: the
 * check-in of the message's UTC day. A finished one is kept for the session
 * until `fresh` asks again (a decision changed a proposal); one still running,
 * "none yet" and failures are asked again next time (the summary is posted
 * before its proposals run).
 */
export async function checkinOf(roomId: string, messageId: number, createdAtMs: number, fresh = false): Promise<CheckinView | null> {
  const day = new Date(createdAtMs).toISOString().slice(0, 10);
  const key = `${roomId}/${day}`;
  let p = fresh ? undefined : days.get(key);
  if (!p) {
    p = checkin(roomId, day);
    days.set(key, p);
    p.then((v) => { if (!v?.finished) days.delete(key); }, () => days.delete(key));
  }
  const v = await p;
  return v?.message_id === messageId ? v : null;
}
