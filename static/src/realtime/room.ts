/**
 * One open room: its history window, socket, outbox share, who is here and
 * typing, read markers and the room's live events (uploads, files, AI jobs,
 * archiving). Opening reads the newest page over REST, then connects with
 * `since` = that page's head, so the socket replays whatever happened in
 * between: no gap and no duplicate, also across reconnects and `resync`.
 */
import { batch, computed, signal } from '@preact/signals-core';
import { api, ok } from '../api/client';
import { describe } from '../api/errors';
import { Outbox, type OutEntry } from './outbox';
import { RoomSocket } from './room-socket';
import { Timeline } from './timeline';
import { advance, type JobSeen } from './jobs';
import { isStream, type ClientFrame, type FileRef, type Hello, type Message, type PresenceEntry, type Role, type ServerFrame, type TypingEntry } from './protocol';

const TYPING_EVERY_MS = 3_000;
const READ_EVERY_MS = 1_000;

export interface UploadSeen { file_id: string; name: string; uploader: string; offset: number; length: number }

export type { JobSeen };

export type RoomEvent = { event: string; data: Record<string, unknown> };

export class RoomSession {
  readonly timeline: Timeline;
  private readonly sock = signal<RoomSocket | null>(null);
  /** The connection's state (`connecting` until the first page has loaded and the socket exists). */
  readonly connection = computed(() => this.sock.value?.state.value ?? 'connecting');
  /** Files this session saw announced (an upload's last answer can arrive after its `file_added`). */
  readonly added = new Map<string, FileRef>();
  readonly me = signal<Hello['you'] | null>(null);
  readonly typing = signal<readonly TypingEntry[]>([]);
  readonly presence = signal<ReadonlyMap<string, PresenceEntry>>(new Map());
  /** Everyone's read marker (seq) that this session has heard of. */
  readonly reads = signal<ReadonlyMap<string, number>>(new Map());
  readonly notice = signal<string | null>(null);
  readonly error = signal<string | null>(null);
  readonly gone = signal<'removed' | 'deleted' | null>(null);
  readonly uploads = signal<ReadonlyMap<string, UploadSeen>>(new Map());
  readonly jobs = signal<ReadonlyMap<string, JobSeen>>(new Map());
  readonly archived = signal(false);
  /** Incremented when membership changed (someone joined, a role moved): the members panel reloads. */
  readonly membersChanged = signal(0);
  readonly loadingOlder = signal(false);
  /** The message a jump landed on (a search hit, an inbox item): shown highlighted and scrolled into view (a new object per jump, so jumping to it again scrolls again). */
  readonly focus = signal<{ id: number } | null>(null);
  /** What this person sent here and the server has not shown yet. */
  readonly outgoing = computed(() => {
    const shown = new Set(this.timeline.messages.value.map((m) => m.client_msg_id).filter(Boolean));
    return this.outbox.entries.value.filter((e) => e.room_id === this.roomId && !shown.has(e.client_msg_id));
  });
  private readonly listeners = new Set<(e: RoomEvent) => void>();
  private typingSent = 0;
  private readSent = 0;
  private readWanted = 0;
  private readSentAt = 0;
  private readTimer: ReturnType<typeof setTimeout> | undefined;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private later: ClientFrame[] = [];
  private stopped = false;
  private firstPage: () => void = () => undefined;
  /** Resolves once the first page has loaded (a jump waits for it, so it is not replaced by the newest page). */
  private readonly started = new Promise<void>((resolve) => { this.firstPage = resolve; });

  constructor(readonly roomId: string, readonly userId: string, readonly outbox: Outbox, pageSize = 50) {
    this.timeline = new Timeline(400, pageSize);
  }

  /** Reads the newest page, then connects. Retries the page while offline. */
  async start(): Promise<void> {
    try {
      await this.loadNewest();
    } catch (e) {
      this.error.value = describe(e);
      if (!this.stopped) setTimeout(() => void this.start(), 3_000);
      return;
    }
    if (this.stopped) return;
    this.error.value = null;
    this.firstPage();
    this.sock.value = new RoomSocket(this.roomId, {
      since: () => (this.timeline.loaded ? this.timeline.lastSeq : undefined),
      onFrame: (f) => this.onFrame(f),
      onGone: (code) => { this.gone.value = code === 4003 ? 'removed' : 'deleted'; },
    });
  }

  get socket(): RoomSocket | null {
    return this.sock.peek();
  }

  private async page(q: { before?: number; after?: number }, limit = this.timeline.page): Promise<{ messages: Message[]; head_seq: number }> {
    const r = await ok(api.GET('/api/v1/rooms/{room_id}/messages', {
      params: { path: { room_id: this.roomId }, query: { ...q, limit } },
    }));
    return r;
  }

  private async loadNewest(): Promise<void> {
    const { messages, head_seq } = await this.page({});
    this.timeline.reset(messages, head_seq);
    this.settle();
  }

  async loadOlder(): Promise<void> {
    const first = this.timeline.messages.value[0];
    if (!first || this.loadingOlder.value || !this.timeline.hasOlder.value) return;
    this.loadingOlder.value = true;
    try {
      this.timeline.prepend((await this.page({ before: first.id })).messages);
    } catch (e) {
      this.error.value = describe(e);
    } finally {
      this.loadingOlder.value = false;
    }
  }

  async loadNewer(): Promise<void> {
    const last = this.timeline.messages.value.at(-1);
    if (!last || !this.timeline.hasNewer.value) return;
    const { messages } = await this.page({ after: last.id });
    this.timeline.append(messages, messages.length < this.timeline.page);
  }

  /** Back to the newest messages (after browsing far back in history). */
  async jumpToLatest(): Promise<void> {
    if (!this.timeline.hasNewer.value) return;
    this.timeline.suspend();
    await this.loadNewest();
  }

  /** Loads older pages until message `id` is in the window (jump to the first unread). */
  async reveal(id: number): Promise<boolean> {
    for (let i = 0; i < 40; i += 1) {
      const first = this.timeline.messages.value[0];
      if (!first || first.id <= id) return true;
      if (!this.timeline.hasOlder.value) return true;
      await this.loadOlder();
    }
    return false;
  }

  /**
   * Shows message `id` with context around it: in the window already, or a
   * window of half a page on each side read in place of it (paging on from
   * there works as always, and "Jump to latest" comes back).
   */
  async jumpTo(id: number): Promise<void> {
    await this.started;
    if (this.stopped) return;
    if (!this.timeline.get(id)) {
      const half = Math.ceil(this.timeline.page / 2);
      try {
        const [upTo, after] = await Promise.all([this.page({ before: id + 1 }, half), this.page({ after: id }, half)]);
        if (this.stopped) return;
        this.timeline.around(upTo.messages, after.messages, upTo.messages.length >= half, after.messages.length < half);
      } catch (e) {
        this.error.value = describe(e);
        return;
      }
    }
    this.focus.value = { id };
  }

  on(fn: (e: RoomEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private onFrame(f: ServerFrame): void {
    if (isStream(f)) {
      const r = this.timeline.apply(f);
      if (r === 'gap') {
        this.socket?.drop();
        return;
      }
      if (r === 'applied') {
        if (f.type === 'event') this.event(f.event, f.data);
        if (f.type === 'message') this.settle();
      }
      return;
    }
    switch (f.type) {
      case 'hello':
        this.hello(f);
        break;
      case 'ack':
        this.outbox.acked(f.client_msg_id, f.id);
        this.settle();
        break;
      case 'typing':
        this.setTyping(f.users);
        break;
      case 'presence': {
        const next = new Map(this.presence.value);
        for (const p of f.users) next.set(p.user_id, p);
        this.presence.value = next;
        break;
      }
      case 'read':
        this.setRead(f.user_id, f.seq);
        break;
      case 'event':
        this.event(f.event, f.data);
        break;
      case 'error':
        this.refused(f.code, f.message, f.ref, f.retry_after);
        break;
      case 'resync':
        void this.resync();
        break;
      default:
        break;
    }
  }

  private hello(h: Hello): void {
    batch(() => {
      this.me.value = h.you;
      this.presence.value = new Map(h.presence.map((p) => [p.user_id, p]));
      this.setTyping(h.typing);
      if (h.reads) for (const r of h.reads) this.setRead(r.user_id, r.seq);
      if (typeof h.read_seq === 'number') this.setRead(this.userId, h.read_seq);
    });
    // Everything this person wrote while away goes out again, oldest first; the
    // server's idempotency makes a repeat harmless.
    for (const e of this.outbox.forRoom(this.roomId)) if (e.state === 'pending') this.transmit(e);
    const queued = this.later;
    this.later = [];
    for (const f of queued) this.frame(f);
    if (this.readWanted > this.readSent) this.flushRead();
  }

  private async resync(): Promise<void> {
    this.timeline.suspend();
    this.notice.value = 'You were away for a while: showing the latest messages.';
    try {
      await this.loadNewest();
    } catch (e) {
      this.error.value = describe(e);
      this.socket?.drop();
    }
  }

  private refused(code: string, message: string, ref: string | undefined, retryAfter: number | undefined): void {
    const entry = ref ? this.outbox.entries.value.find((e) => e.client_msg_id === ref) : undefined;
    if (entry) {
      if (code === 'rate_limited') {
        setTimeout(() => this.transmit(entry), Math.max(100, (retryAfter ?? 0.5) * 1000));
      } else if (code !== 'ai_rate_limited') {
        this.outbox.failed(entry.client_msg_id, describe(new Error(message)));
      }
      return;
    }
    // A typing, presence or read frame over its limit is only dropped: nothing to tell the person.
    if (code === 'rate_limited' && !ref) return;
    this.error.value = describe(new Error(message));
  }

  private event(name: string, data: Record<string, unknown>): void {
    switch (name) {
      case 'upload_progress': {
        const u = data as unknown as UploadSeen;
        const next = new Map(this.uploads.value);
        if (u.offset >= u.length) next.delete(u.file_id);
        else next.set(u.file_id, u);
        this.uploads.value = next;
        break;
      }
      case 'file_added': {
        const file = data.file as FileRef | undefined;
        const id = file?.id;
        if (file && id) this.added.set(id, file);
        if (id && this.uploads.value.has(id)) {
          const next = new Map(this.uploads.value);
          next.delete(id);
          this.uploads.value = next;
        }
        break;
      }
      case 'job_progress': {
        this.setJob(data as unknown as JobSeen);
        break;
      }
      case 'job_done': {
        const job = data.job as { id: string; file_id: string; status: string; progress: number; result: JobSeen['result']; error: string | null };
        this.setJob({ job_id: job.id, file_id: job.file_id, progress: job.progress, status: job.status, result: job.result, error: job.error });
        break;
      }
      case 'member_changed': {
        const me = this.me.value;
        if (me && data.user_id === this.userId && typeof data.role === 'string') this.me.value = { ...me, role: data.role as Role };
        this.membersChanged.value += 1;
        break;
      }
      case 'member_joined':
        this.membersChanged.value += 1;
        break;
      case 'collaboration_updated': {
        const changes = (data.changes as Array<{ path: string; new: unknown }> | undefined) ?? [];
        for (const c of changes) if (c.path === 'settings.archived') this.archived.value = c.new === true;
        break;
      }
      default:
        break;
    }
    for (const fn of this.listeners) fn({ event: name, data });
  }

  /** News of a file's job, from the socket or an HTTP answer, in whatever order they come. */
  setJob(j: JobSeen): void {
    const next = new Map(this.jobs.value);
    next.set(j.file_id, advance(next.get(j.file_id), j));
    this.jobs.value = next;
  }

  private setTyping(users: readonly TypingEntry[]): void {
    clearTimeout(this.typingTimer);
    const now = Date.now();
    const live = users.filter((u) => u.user_id !== this.userId && u.until > now);
    this.typing.value = live;
    if (live.length) {
      const soonest = Math.min(...live.map((u) => u.until));
      this.typingTimer = setTimeout(() => this.setTyping(this.typing.value), soonest - now + 50);
    }
  }

  private setRead(userId: string, seq: number): void {
    if ((this.reads.value.get(userId) ?? 0) >= seq) return;
    const next = new Map(this.reads.value);
    next.set(userId, seq);
    this.reads.value = next;
  }

  private settle(): void {
    // Made only when something waits to settle: not for every message of a busy room.
    let shown: Set<string> | undefined;
    this.outbox.settle((id, cid) => {
      shown ??= new Set(this.timeline.messages.value.map((m) => m.client_msg_id));
      return shown.has(cid) || this.timeline.get(id) !== undefined || this.timeline.hasNewer.value;
    });
  }

  private transmit(e: OutEntry): void {
    this.socket?.send({
      type: 'send',
      client_msg_id: e.client_msg_id,
      body: e.body,
      reply_to: e.reply_to,
      attachments: e.attachments.map((a) => a.id),
    });
  }

  /** Sends or, while disconnected, queues a frame for the next connection. */
  private frame(f: ClientFrame): void {
    if (!this.socket?.send(f)) this.later.push(f);
  }

  /** A new message: shown at once as pending, kept on the device until the server acknowledges it. */
  send(body: string, replyTo: number | null = null, attachments: FileRef[] = []): OutEntry {
    const e = this.outbox.add(this.roomId, body, replyTo, attachments);
    this.typingSent = 0;
    this.transmit(e);
    return e;
  }

  retry(clientMsgId: string): void {
    const e = this.outbox.retry(clientMsgId);
    if (e) this.transmit(e);
  }

  discard(clientMsgId: string): void {
    this.outbox.remove(clientMsgId);
  }

  edit(id: number, body: string): void {
    this.frame({ type: 'edit', id, body });
  }

  remove(id: number): void {
    this.frame({ type: 'delete', id });
  }

  react(id: number, emoji: string, on: boolean): void {
    this.frame({ type: on ? 'react' : 'unreact', id, emoji });
  }

  /** Call on every keystroke in the composer: at most one `typing` frame per 3 s. */
  typingNow(): void {
    const now = Date.now();
    if (now - this.typingSent < TYPING_EVERY_MS) return;
    this.typingSent = now;
    this.socket?.send({ type: 'typing' });
  }

  /** The person has seen up to `seq`: moves the server's read marker (at most once a second). */
  markRead(seq: number): void {
    if (seq <= this.readWanted) return;
    this.readWanted = seq;
    if (this.readTimer) return;
    const wait = Math.max(0, READ_EVERY_MS - (Date.now() - this.readSentAt));
    this.readTimer = setTimeout(() => this.flushRead(), wait);
  }

  private flushRead(): void {
    clearTimeout(this.readTimer);
    this.readTimer = undefined;
    if (this.readWanted <= this.readSent) return;
    if (this.socket?.send({ type: 'read', seq: this.readWanted })) {
      this.readSent = this.readWanted;
      this.readSentAt = Date.now();
      this.setRead(this.userId, this.readWanted);
    }
  }

  /** People other than `me` whose read marker has reached `seq`. */
  seenBy(seq: number): string[] {
    const out: string[] = [];
    for (const [u, s] of this.reads.value) if (u !== this.userId && s >= seq) out.push(u);
    return out;
  }

  get role(): Role | null {
    return this.me.value?.role ?? null;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.readTimer);
    clearTimeout(this.typingTimer);
    this.socket?.stop();
    this.listeners.clear();
  }
}
