/**
 * What a person has typed but not sent, per room, written on every change to
 * localStorage (synchronous, so even a crash right after a keystroke keeps it).
 * Keys name the user, so another account on the same browser never sees it.
 */
const PREFIX = 'tessera.draft.';

export interface Draft { body: string; reply_to: number | null }

const key = (userId: string, roomId: string) => `${PREFIX}${userId}.${roomId}`;

export function load(userId: string, roomId: string): Draft {
  try {
    const d = JSON.parse(localStorage.getItem(key(userId, roomId)) ?? 'null') as Draft | null;
    if (d && typeof d.body === 'string') return { body: d.body, reply_to: typeof d.reply_to === 'number' ? d.reply_to : null };
  } catch { /* a damaged draft is dropped */ }
  return { body: '', reply_to: null };
}

export function save(userId: string, roomId: string, d: Draft): void {
  try {
    if (!d.body && d.reply_to === null) localStorage.removeItem(key(userId, roomId));
    else localStorage.setItem(key(userId, roomId), JSON.stringify(d));
  } catch { /* storage full or blocked: the draft lives in memory only */ }
}

/** Forgets every draft of a user (sign-out). */
export function clear(userId: string): void {
  for (let i = localStorage.length - 1; i >= 0; i -= 1) {
    const k = localStorage.key(i);
    if (k?.startsWith(`${PREFIX}${userId}.`)) localStorage.removeItem(k);
  }
}
