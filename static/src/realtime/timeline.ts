/**
 * A room's message window: a contiguous range of messages by id, kept sorted,
 * and the stream position `lastSeq` (the highest contiguous seq applied).
 * Stream frames apply exactly once and in order: a seq at or below `lastSeq`
 * is a duplicate, one beyond `lastSeq + 1` is a gap (the caller resumes with
 * `since`). The window holds at most `cap` messages: paging further back drops
 * the newest end (`hasNewer`), so a 10,000-message history never becomes a
 * 10,000-node DOM.
 */
import { signal } from '@preact/signals-core';
import type { Message, StreamFrame } from './protocol';

export type Applied = 'applied' | 'duplicate' | 'gap' | 'queued';

export class Timeline {
  readonly messages = signal<readonly Message[]>([]);
  readonly hasOlder = signal(true);
  readonly hasNewer = signal(false);
  /** Highest contiguous stream seq applied. */
  lastSeq = 0;
  private ready = false;
  private queue: StreamFrame[] = [];

  constructor(readonly cap = 400, readonly page = 50) {}

  get loaded(): boolean {
    return this.ready;
  }

  /** Starts over from a page of the newest messages and the head seq it was read at. */
  reset(newest: readonly Message[], head: number): void {
    this.messages.value = sorted(newest);
    this.hasOlder.value = newest.length >= this.page;
    this.hasNewer.value = false;
    this.lastSeq = head;
    this.ready = true;
    const queued = this.queue;
    this.queue = [];
    for (const f of queued) if (f.seq > this.lastSeq) this.apply(f);
  }

  /** Forgets the window until the next `reset`; frames meanwhile are kept for it. */
  suspend(): void {
    this.ready = false;
  }

  /** An older page (ascending) before the window's first message. */
  prepend(older: readonly Message[]): void {
    const first = this.messages.value[0]?.id ?? Infinity;
    const add = older.filter((m) => m.id < first);
    let next = [...sorted(add), ...this.messages.value];
    if (next.length > this.cap) {
      next = next.slice(0, this.cap);
      this.hasNewer.value = true;
    }
    this.hasOlder.value = older.length >= this.page;
    this.messages.value = next;
  }

  /**
   * A window around one message (`older` up to and including it, `newer`
   * after it), in place of the current one; the stream position stays. When
   * `newer` reached the newest message and the window it replaces was at the
   * live end, messages that arrived meanwhile are kept.
   */
  around(older: readonly Message[], newer: readonly Message[], hasOlder: boolean, atHead: boolean): void {
    let next = sorted([...older, ...newer]);
    const last = next.at(-1)?.id ?? 0;
    if (atHead && !this.hasNewer.value) next = [...next, ...this.messages.value.filter((m) => m.id > last)];
    this.hasOlder.value = hasOlder;
    this.hasNewer.value = !atHead;
    this.messages.value = next;
  }

  /** A newer page (ascending) after the window's last message; `atHead` when it reached the newest. */
  append(newer: readonly Message[], atHead: boolean): void {
    const last = this.messages.value.at(-1)?.id ?? 0;
    let next = [...this.messages.value, ...sorted(newer.filter((m) => m.id > last))];
    if (next.length > this.cap) {
      next = next.slice(next.length - this.cap);
      this.hasOlder.value = true;
    }
    this.hasNewer.value = !atHead;
    this.messages.value = next;
  }

  apply(f: StreamFrame): Applied {
    if (!this.ready) {
      this.queue.push(f);
      return 'queued';
    }
    if (f.seq <= this.lastSeq) return 'duplicate';
    if (f.seq > this.lastSeq + 1) return 'gap';
    this.lastSeq = f.seq;
    const list = this.messages.value;
    switch (f.type) {
      case 'message': {
        // While older history is shown the live end is not in the window; paging down fetches it.
        if (this.hasNewer.value || indexOf(list, f.message.id) >= 0) break;
        let next = insert(list, f.message);
        if (next.length > this.cap) {
          next = next.slice(next.length - this.cap);
          this.hasOlder.value = true;
        }
        this.messages.value = next;
        break;
      }
      case 'message_edited':
        this.update(f.id, (m) => ({ ...m, body: f.body, mentions: f.mentions, edited_at: f.edited_at }));
        break;
      case 'message_deleted':
        this.update(f.id, (m) => ({ ...m, body: '', attachments: [], mentions: [], deleted: true, reactions: {} }));
        break;
      case 'reaction':
        this.update(f.id, (m) => ({ ...m, reactions: react(m.reactions, f.emoji, f.user_id, f.added) }));
        break;
      case 'event':
        break;
    }
    return 'applied';
  }

  get(id: number): Message | undefined {
    const list = this.messages.value;
    return list[indexOf(list, id)];
  }

  private update(id: number, fn: (m: Message) => Message): void {
    const list = this.messages.value;
    const i = indexOf(list, id);
    if (i < 0) return;
    const next = list.slice();
    next[i] = fn(list[i]!);
    this.messages.value = next;
  }
}

function sorted(ms: readonly Message[]): Message[] {
  return [...ms].sort((a, b) => a.id - b.id);
}

/** Binary search by id; -1 when absent. */
export function indexOf(list: readonly Message[], id: number): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = list[mid]!.id;
    if (v === id) return mid;
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function insert(list: readonly Message[], m: Message): Message[] {
  const next = list.slice();
  let i = next.length;
  while (i > 0 && next[i - 1]!.id > m.id) i -= 1;
  next.splice(i, 0, m);
  return next;
}

function react(r: Record<string, string[]>, emoji: string, user: string, added: boolean): Record<string, string[]> {
  const who = (r[emoji] ?? []).filter((u) => u !== user);
  if (added) who.push(user);
  const next = { ...r };
  if (who.length) next[emoji] = who;
  else delete next[emoji];
  return next;
}
