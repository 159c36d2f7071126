/** One message: author, time, quoted reply, body, attachments, reactions, actions; and a pending one. */
import { Component } from 'preact';
import { useSignal } from '@preact/signals';
import { clock, when } from '../../lib/format';
import { plain } from '../../lib/markdown';
import type { Message } from '../../realtime/protocol';
import type { OutEntry } from '../../realtime/outbox';
import type { JobSeen, RoomSession } from '../../realtime/room';
import { Avatar } from '../rooms/AccountButton';
import { Dialog } from '../ui/Dialog';
import { Icon } from '../ui/Icon';
import { onRovingKey, rovingIndex } from '../ui/roving';
import type { IconNode } from 'lucide';
import { CircleAlert, Pencil, Reply, RotateCw, Smile, Trash } from '../icons';
import { Attachment } from './Attachment';
import { CheckinCard } from './CheckinCard';
import { Body, type Person } from './Body';

/** Moves focus into a control when it appears (the reactions picker opened from the keyboard). */
const focusOnMount = (el: HTMLElement | null) => { if (el && el.ownerDocument.activeElement?.closest('.msg-actions')) el.focus(); };

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '👀', '✅'];

interface Props {
  m: Message;
  compact: boolean;
  /** The message a jump landed on. */
  focused: boolean;
  quoted: Message | null;
  me: string;
  people: ReadonlyMap<string, Person>;
  mayWrite: boolean;
  mayDelete: boolean;
  seenBy: string | null;
  job: ReadonlyMap<string, JobSeen>;
  s: RoomSession;
  onReply(id: number): void;
  onEdit(id: number, body: string): void;
}

const DATA: Array<keyof Props> = ['m', 'compact', 'focused', 'quoted', 'me', 'people', 'mayWrite', 'mayDelete', 'seenBy', 'job'];

/** Re-renders only when its data changed: a long timeline stays cheap when one message changes. */
export class MessageItem extends Component<Props> {
  override shouldComponentUpdate(next: Props): boolean {
    return DATA.some((k) => next[k] !== this.props[k]);
  }

  override render() {
    return <MessageView {...this.props} />;
  }
}

function MessageView({ m, compact, focused, quoted, me, people, mayWrite, mayDelete, seenBy, job, s, onReply, onEdit }: Props) {
  const picking = useSignal(false);
  const confirming = useSignal(false);
  const mine = m.author === me;
  const author = m.author === 'ai' ? 'AI teammate' : m.author_name;
  const label = `${author}, ${clock(m.created_at)}`;
  const mentioned = m.mentions.includes(me);
  const reactions = Object.entries(m.reactions);
  const actions: Array<{ label: string; icon: IconNode; run: () => void; expanded?: boolean }> = [
    { label: 'Add reaction', icon: Smile, run: () => { picking.value = !picking.value; }, expanded: picking.value },
    { label: 'Reply', icon: Reply, run: () => onReply(m.id) },
  ];
  if (mine) actions.push({ label: 'Edit', icon: Pencil, run: () => onEdit(m.id, m.body) });
  if (mayDelete) actions.push({ label: 'Delete', icon: Trash, run: () => { confirming.value = true; } });
  return (
    <article
      id={`m${m.id}`}
      class={`msg${compact ? ' compact' : ''}${mine ? ' mine' : ''}${mentioned ? ' mentioned' : ''}${m.deleted ? ' deleted' : ''}${focused ? ' focused' : ''}`}
      aria-label={label}
      aria-current={focused ? 'true' : undefined}
      data-seq={m.seq}
    >
      {!compact && <Avatar id={m.author} name={author} size={32} />}
      <div class="msg-main">
        {!compact && (
          <header class="msg-head">
            <strong class="author">{author}</strong>
            {m.author === 'ai' && <span class="ai-tag" title="Written by the AI, not a person">AI</span>}
            <time dateTime={new Date(m.created_at).toISOString()} title={when(m.created_at)}>{clock(m.created_at)}</time>
          </header>
        )}
        {m.reply_to !== null && (
          <button type="button" class="quote" onClick={() => void s.reveal(m.reply_to!).then(() => document.getElementById(`m${m.reply_to}`)?.scrollIntoView({ block: 'center' }))}>
            <Icon node={Reply} size={14} />
            {quoted ? <span><strong>{quoted.author_name}</strong> {quoted.deleted ? '(deleted)' : plain(quoted.body, 90)}</span> : <span>Reply to an earlier message</span>}
          </button>
        )}
        {m.deleted ? <p class="muted body">This message was deleted.</p> : (
          <>
            {m.body && <Body text={m.body} people={people} me={me} />}
            {m.edited_at !== null && <span class="edited muted small" title={when(m.edited_at)}>(edited)</span>}
            {m.author === 'ai' && <CheckinCard s={s} messageId={m.id} createdAt={m.created_at} />}
            {m.attachments.length > 0 && (
              <ul class="attachments" aria-label="Attachments">
                {m.attachments.map((a) => <li key={a.id}><Attachment f={a} s={s} job={job.get(a.id)} mayAnalyze={mayWrite} /></li>)}
              </ul>
            )}
          </>
        )}
        {reactions.length > 0 && (
          <div class="reactions" role="group" aria-label="Reactions">
            {reactions.map(([emoji, who]) => {
              const on = who.includes(me);
              return (
                <button key={emoji} type="button" class={`reaction${on ? ' on' : ''}`} aria-pressed={on} disabled={!mayWrite}
                  aria-label={`${emoji} ${who.length}${on ? ', including you' : ''}`}
                  onClick={() => s.react(m.id, emoji, !on)}>
                  <span aria-hidden="true">{emoji} {who.length}</span>
                </button>
              );
            })}
          </div>
        )}
        {seenBy && <p class="seen muted small">Seen by {seenBy}</p>}
      </div>
      {!m.deleted && mayWrite && (
        // One tab stop per message: arrow keys move between its actions (and the reactions picker's).
        <div class="msg-actions" role="toolbar" aria-label={`Actions for the message of ${label}`} onKeyDown={onRovingKey}>
          {actions.map((a, i) => (
            <button key={a.label} type="button" class="icon-btn" tabIndex={rovingIndex(i)} aria-label={a.label}
              aria-expanded={a.expanded} onClick={a.run}><Icon node={a.icon} size={16} /></button>
          ))}
          {picking.value && (
            <div class="picker" role="toolbar" aria-label="Reactions to add" onKeyDown={onRovingKey}>
              {QUICK_REACTIONS.map((e, i) => (
                <button key={e} type="button" class="icon-btn emoji" tabIndex={rovingIndex(i)} aria-label={`React with ${e}`}
                  ref={i === 0 ? focusOnMount : undefined}
                  onKeyDown={(k) => { if (k.key === 'Escape') { k.stopPropagation(); picking.value = false; k.currentTarget.closest('.msg-actions')?.querySelector('button')?.focus(); } }}
                  onClick={() => { picking.value = false; s.react(m.id, e, !(m.reactions[e] ?? []).includes(me)); }}>{e}</button>
              ))}
            </div>
          )}
        </div>
      )}
      {confirming.value && (
        <Dialog title="Delete this message?" onClose={() => { confirming.value = false; }}>
          <p class="muted">“{plain(m.body, 120) || 'Attachment'}” will be replaced by “This message was deleted” for everyone.</p>
          <div class="row end">
            <button type="button" class="btn" onClick={() => { confirming.value = false; }}>Cancel</button>
            <button type="button" class="btn danger" onClick={() => { confirming.value = false; s.remove(m.id); }}>Delete message</button>
          </div>
        </Dialog>
      )}
    </article>
  );
}

/** A message on its way (pending) or refused by the server (failed: Retry or Delete). */
export function PendingItem({ e, s, me, myName, people }: { e: OutEntry; s: RoomSession; me: string; myName: string; people: ReadonlyMap<string, Person> }) {
  const failed = e.state === 'failed';
  return (
    <article class={`msg mine pending${failed ? ' failed' : ''}`} aria-label={failed ? 'Message not sent' : 'Message sending'}>
      <Avatar id={me} name={myName} size={32} />
      <div class="msg-main">
        <header class="msg-head"><strong class="author">{myName}</strong></header>
        {e.body && <Body text={e.body} people={people} me={me} />}
        {e.attachments.length > 0 && <p class="muted small">{e.attachments.map((a) => a.name).join(', ')}</p>}
        {failed ? (
          <p class="send-state error small">
            <Icon node={CircleAlert} size={14} /> Not sent: {e.error}
            <button type="button" class="link-btn" onClick={() => s.retry(e.client_msg_id)}><Icon node={RotateCw} size={14} /> Retry</button>
            <button type="button" class="link-btn" onClick={() => s.discard(e.client_msg_id)}><Icon node={Trash} size={14} /> Delete</button>
          </p>
        ) : <p class="send-state muted small" role="status">Sending…</p>}
      </div>
    </article>
  );
}
