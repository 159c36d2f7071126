/**
 * The message list: day separators, the "New messages" line from the server's
 * read marker, pending and failed messages at the end, history paging on
 * scroll-up, and read marking while the newest message is in view.
 *
 * The scroller is a reversed flex column, so its scroll origin is the bottom:
 * the browser keeps the newest message in view as messages arrive and keeps
 * the view still when older pages are added above, with no script reading
 * the layout (a forced layout per arriving message was most of the cost of a
 * busy room on a slow phone). `scrollTop` is 0 at the bottom, negative above.
 */
import { Component, type JSX } from 'preact';
import { useSignal } from '@preact/signals';
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import { dayLabel, names } from '../../lib/format';
import type { Message, Role } from '../../realtime/protocol';
import type { JobSeen, RoomSession } from '../../realtime/room';
import { atLeast, type Member } from '../../state/room-admin';
import { read, unreadAfter } from '../../state/session';
import { Icon } from '../ui/Icon';
import { ArrowDown } from '../icons';
import type { Person } from './Body';
import { MessageItem, PendingItem } from './MessageItem';

const NEAR_PX = 120;
const OFFSET_MS = new Date().getTimezoneOffset() * 60_000;
/** The local day of a time, as a number (cheap enough to compare for every message on every render). */
const dayOf = (ms: number) => Math.floor((ms - OFFSET_MS) / 86_400_000);
const GROUP_MS = 5 * 60_000;
/** Message ids per rendered block. */
const BLOCK = 25;

interface Props {
  s: RoomSession;
  people: ReadonlyMap<string, Person>;
  members: readonly Member[];
  me: string;
  role: Role | null;
  writable: boolean;
  onReply(id: number): void;
  onEdit(id: number, body: string): void;
}

export function Timeline({ s, people, members, me, role, writable, onReply, onEdit }: Props) {
  const ref = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const placed = useRef(false);
  const below = useSignal(0);
  const messages = s.timeline.messages.value;
  const outgoing = s.outgoing.value;
  const hasNewer = s.timeline.hasNewer.value;
  const line = unreadAfter.value;
  const firstUnread = line === null ? undefined : messages.find((m) => m.seq > line && m.author !== me);
  const lastSeen = useRef(0);
  const focus = s.focus.value;
  const shownFocus = useRef<{ id: number } | null>(null);

  // On opening, show the first unread message if it is above the fold (the bottom needs nothing).
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || placed.current || !s.timeline.loaded || !messages.length) return;
    placed.current = true;
    const target = firstUnread && el.querySelector<HTMLElement>('.unread-line');
    if (target && target.getBoundingClientRect().top < el.getBoundingClientRect().top) {
      target.scrollIntoView({ block: 'start' });
      atBottom.current = el.scrollTop > -NEAR_PX;
    }
  }, [messages]);

  // A jump (search hit, inbox item): bring the message to the middle once it is in the window.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || focus === null || shownFocus.current === focus) return;
    const target = document.getElementById(`m${focus.id}`);
    if (!target) return;
    shownFocus.current = focus;
    placed.current = true;
    target.scrollIntoView({ block: 'center' });
    atBottom.current = !hasNewer && el.scrollTop > -NEAR_PX;
  }, [focus, messages]);

  // New messages from others while scrolled up: count them for the "jump" button.
  useEffect(() => {
    const last = messages.at(-1);
    if (!last) return;
    if (atBottom.current && document.visibilityState === 'visible') {
      below.value = 0;
      if (last.seq > lastSeen.current) { lastSeen.current = last.seq; read(s.timeline.lastSeq); }
    } else if (last.seq > lastSeen.current && last.author !== me) {
      below.value = messages.filter((m) => m.seq > lastSeen.current && m.author !== me).length;
    }
  }, [messages]);

  useEffect(() => {
    const onVisible = () => { if (document.visibilityState === 'visible' && atBottom.current) read(s.timeline.lastSeq); };
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [s]);

  const onScroll = () => {
    const el = ref.current!;
    atBottom.current = !hasNewer && el.scrollTop > -NEAR_PX;
    if (atBottom.current && below.value) {
      below.value = 0;
      lastSeen.current = messages.at(-1)?.seq ?? 0;
      read(s.timeline.lastSeq);
    }
    const fromTop = el.scrollHeight - el.clientHeight + el.scrollTop;
    if (fromTop < 400 && s.timeline.hasOlder.value && !s.loadingOlder.value) void s.loadOlder();
    if (hasNewer && el.scrollTop > -400) void s.loadNewer();
  };

  const jumpToUnread = async () => {
    if (line === null) return;
    await s.reveal(line + 1);
    requestAnimationFrame(() => ref.current?.querySelector<HTMLElement>('.unread-line')?.scrollIntoView({ block: 'center' }));
  };
  const jumpToLatest = async () => {
    s.focus.value = null;
    await s.jumpToLatest();
    atBottom.current = true;
    below.value = 0;
    requestAnimationFrame(() => { const el = ref.current; if (el) el.scrollTop = 0; });
  };
  const unreadAbove = line !== null && (messages[0]?.seq ?? 0) > line + 1 && s.timeline.hasOlder.value;

  const authors = new Map(members.map((m) => [m.user_id, m.display_name]));
  const mineLast = [...messages].reverse().find((m) => m.author === me && !m.deleted);
  const seen = mineLast ? s.seenBy(mineLast.seq).map((u) => authors.get(u) ?? s.presence.value.get(u)?.display_name ?? 'someone') : [];
  const moderator = atLeast(role, 'admin');
  const myName = authors.get(me) ?? s.me.value?.display_name ?? 'You';

  // Blocks of messages by id: a message arriving, changed or read re-renders
  // its block alone, not every message of a busy room's 400-message window.
  const blocks = [];
  const seenBy = seen.length ? names(seen) : null;
  const job = s.jobs.value;
  for (let i = 0; i < messages.length;) {
    const bucket = Math.floor(messages[i]!.id / BLOCK);
    let j = i + 1;
    while (j < messages.length && Math.floor(messages[j]!.id / BLOCK) === bucket) j += 1;
    const msgs = messages.slice(i, j);
    const has = (m: Message | undefined) => (m && msgs.includes(m) ? m : undefined);
    blocks.push(
      <Block
        key={bucket}
        msgs={msgs}
        prev={messages[i - 1]}
        firstUnread={has(firstUnread)}
        focusId={focus && msgs.some((m) => m.id === focus.id) ? focus.id : null}
        mineLast={has(mineLast)}
        seenBy={has(mineLast) ? seenBy : null}
        me={me}
        people={people}
        writable={writable}
        moderator={moderator}
        job={job}
        s={s}
        onReply={onReply}
        onEdit={onEdit}
      />,
    );
    i = j;
  }

  return (
    <div class="timeline-wrap">
      {unreadAbove && (
        <button type="button" class="jump top" onClick={jumpToUnread}>Jump to first unread</button>
      )}
      <div ref={ref} class="timeline" role="log" aria-label="Messages" tabIndex={0} onScroll={onScroll}>
        <div class="timeline-inner">
        {s.loadingOlder.value && <p class="muted small center" role="status">Loading older messages…</p>}
        {s.timeline.loaded && !s.timeline.hasOlder.value && (
          <p class="muted small center start">This is the start of the room.</p>
        )}
        {!s.timeline.loaded && <p class="muted small center" role="status">Loading messages…</p>}
        {blocks}
        {!hasNewer && outgoing.map((e) => <PendingItem key={e.client_msg_id} e={e} s={s} me={me} myName={myName} people={people} />)}
        </div>
      </div>
      {(below.value > 0 || hasNewer) && (
        <button type="button" class="jump bottom" onClick={jumpToLatest}>
          <Icon node={ArrowDown} size={16} /> {below.value > 0 ? `${below.value} new ${below.value === 1 ? 'message' : 'messages'}` : 'Jump to latest'}
        </button>
      )}
    </div>
  );
}

interface BlockProps {
  msgs: readonly Message[];
  /** The message before the block: the first one's day line and grouping depend on it. */
  prev: Message | undefined;
  firstUnread: Message | undefined;
  focusId: number | null;
  mineLast: Message | undefined;
  seenBy: string | null;
  me: string;
  people: ReadonlyMap<string, Person>;
  writable: boolean;
  moderator: boolean;
  job: ReadonlyMap<string, JobSeen>;
  s: RoomSession;
  onReply(id: number): void;
  onEdit(id: number, body: string): void;
}

const BLOCK_DATA: Array<keyof BlockProps> = ['prev', 'firstUnread', 'focusId', 'mineLast', 'seenBy', 'me', 'people', 'writable', 'moderator', 'job'];

/** Consecutive messages with their day lines and the "New messages" line, re-rendered only when one of them changed. */
class Block extends Component<BlockProps> {
  /** The quoted message of each, as last rendered: an edit of a quoted message elsewhere shows here too. */
  private quoted: Array<Message | null> = [];

  override shouldComponentUpdate(next: BlockProps): boolean {
    const { msgs } = this.props;
    if (msgs.length !== next.msgs.length || msgs.some((m, i) => m !== next.msgs[i])) return true;
    if (BLOCK_DATA.some((k) => next[k] !== this.props[k])) return true;
    return next.msgs.some((m, i) => quotedOf(next.s, m) !== this.quoted[i]);
  }

  override render({ msgs, prev, firstUnread, focusId, mineLast, seenBy, me, people, writable, moderator, job, s, onReply, onEdit }: BlockProps) {
    const items: JSX.Element[] = [];
    this.quoted = msgs.map((m) => quotedOf(s, m));
    let before = prev;
    msgs.forEach((m, i) => {
      const newDay = !before || dayOf(before.created_at) !== dayOf(m.created_at);
      if (newDay) items.push(<div key={`d${m.id}`} class="day" role="separator" aria-label={dayLabel(m.created_at)}><span>{dayLabel(m.created_at)}</span></div>);
      const isFirstUnread = m === firstUnread;
      if (isFirstUnread) items.push(<div key="unread" class="unread-line" role="separator" aria-label="New messages"><span>New messages</span></div>);
      const compact = !newDay && !isFirstUnread && !!before && before.author === m.author && !before.deleted && m.created_at - before.created_at < GROUP_MS && m.reply_to === null;
      items.push(
        <MessageItem
          key={m.id}
          m={m}
          compact={compact}
          focused={m.id === focusId}
          quoted={this.quoted[i] ?? null}
          me={me}
          people={people}
          mayWrite={writable}
          mayDelete={writable && (m.author === me || moderator)}
          seenBy={m === mineLast ? seenBy : null}
          job={job}
          s={s}
          onReply={onReply}
          onEdit={onEdit}
        />,
      );
      before = m;
    });
    return <>{items}</>;
  }
}

const quotedOf = (s: RoomSession, m: Message): Message | null => (m.reply_to !== null ? s.timeline.get(m.reply_to) ?? null : null);
