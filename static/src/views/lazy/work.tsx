/**
 * The work chunk: a room's activities board (columns by life-cycle status,
 * propose, the named moves, edits that survive a 412 with "changed by X —
 * reload") and the approvals inbox across rooms (who or what asked, why, the
 * exact action and arguments; approve with A, reject with R, an optional
 * comment; the person's own requests with what became of them).
 */
import './initial';
import { useComputed, useSignal, useSignalEffect } from '@preact/signals';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { user } from '../../api/auth';
import { describe } from '../../api/errors';
import type { Activity, InboxItem } from '../../api/types';
import { when } from '../../lib/format';
import { columns, mayDecide, moves, requester, type Move } from '../../lib/workflow';
import { atLeast } from '../../state/room-admin';
import { Board, type EditDraft } from '../../state/activities';
import { decide, error as inboxError, items, load as loadInbox, loading, scope, type Decision, type Scope } from '../../state/approvals';
import { follow } from '../../state/route';
import { say } from '../../state/toasts';
import type { ScreenProps } from '../RoomScreens';
import { Icon } from '../ui/Icon';
import { ArrowLeft, Check, X } from '../icons';

const secs = (ms: number) => Math.floor(ms / 1000);
const day = (s: number | null) => (s ? when(s * 1000) : null);

export function ActivitiesBoard({ s, role }: ScreenProps) {
  const board = useMemo(() => new Board(s.roomId, s), [s]);
  useEffect(() => { void board.load(); return () => board.stop(); }, [board]);
  const writable = atLeast(role, 'member') && !s.archived.value;
  const cols = columns(board.activities.value);
  return (
    <section class="screen" aria-labelledby="screen-title">
      <header class="screen-head">
        <h2 id="screen-title">Activities</h2>
        {board.lastChange.value && <p class="muted small">Last change by {board.lastChange.value.changed_by.display_name}, {when(board.lastChange.value.changed_at * 1000)}</p>}
      </header>
      {board.error.value && <p class="error" role="alert">{board.error.value}</p>}
      {writable && <Propose board={board} />}
      {!board.loaded.value && !board.error.value && <p class="muted" role="status">Loading activities…</p>}
      <div class="board">
        {cols.map((c) => (
          <section key={c.status} class="column" aria-labelledby={`col-${c.status}`}>
            <h3 id={`col-${c.status}`}>{c.label} <span class="muted">{c.items.length}</span></h3>
            <ul aria-labelledby={`col-${c.status}`}>
              {c.items.map((a) => <li key={a.id}><Card a={a} board={board} role={role} writable={writable} /></li>)}
            </ul>
          </section>
        ))}
      </div>
    </section>
  );
}

function Propose({ board }: { board: Board }) {
  const title = useSignal('');
  const error = useSignal<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!title.value.trim()) return;
    error.value = null;
    const r = await board.act('propose_activity', { title: title.value.trim() });
    if (r.kind === 'done' || r.kind === 'approval') title.value = '';
    else error.value = r.text;
  };
  return (
    <form class="propose" onSubmit={submit}>
      <label class="grow">New activity<input value={title.value} onInput={(e) => { title.value = e.currentTarget.value; }} maxLength={200} placeholder="What should happen?" /></label>
      <button type="submit" class="btn primary" disabled={!title.value.trim()}>Propose</button>
      {error.value && <p class="error small" role="alert">{error.value}</p>}
    </form>
  );
}

function Card({ a, board, role, writable }: { a: Activity; board: Board; role: ScreenProps['role']; writable: boolean }) {
  const scheduling = useSignal(false);
  const error = useSignal<string | null>(null);
  const draft = board.drafts.value[a.id];
  const run = async (m: Move, extra: Record<string, unknown> = {}) => {
    error.value = null;
    const r = await board.act(m.action, { id: a.id, ...extra });
    if (r.kind === 'approval') say(`${m.label}: sent to the room's owners for approval.`);
    else if (r.kind !== 'done') error.value = r.text;
    else scheduling.value = false;
  };
  const offered = writable ? moves(a.status).filter((m) => atLeast(role, m.min)) : [];
  return (
    <article class={`card ${a.status}`} aria-label={a.title}>
      {draft ? <Edit a={a} d={draft} board={board} /> : (
        <>
          <h4>{a.title}</h4>
          {a.description && <p class="small">{a.description}</p>}
          <p class="muted small">
            {a.scheduled_at ? `Scheduled ${day(a.scheduled_at)}` : a.due_at ? `Due ${day(a.due_at)}` : `Changed ${when(a.updated_at * 1000)}`}
            {a.votes.length > 0 && ` · ${a.votes.length} ${a.votes.length === 1 ? 'vote' : 'votes'}`}
          </p>
        </>
      )}
      {error.value && <p class="error small" role="alert">{error.value}</p>}
      {scheduling.value && <Schedule onPick={(at) => void run(moves(a.status).find((m) => m.at)!, { at })} onCancel={() => { scheduling.value = false; }} title={a.title} />}
      {!draft && offered.length > 0 && (
        <div class="row card-actions">
          {offered.map((m) => (
            <button key={m.action} type="button" class={`btn small${m.action === 'cancel_activity' ? ' danger' : ''}`} aria-label={`${m.label} ${a.title}`}
              onClick={() => { if (m.at) scheduling.value = true; else void run(m); }}>{m.label}</button>
          ))}
          <button type="button" class="btn small" aria-label={`Edit ${a.title}`} onClick={() => board.edit(a)}>Edit</button>
        </div>
      )}
    </article>
  );
}

function Schedule({ onPick, onCancel, title }: { onPick: (at: number) => void; onCancel: () => void; title: string }) {
  const tomorrow = new Date(Date.now() + 86_400_000);
  tomorrow.setUTCHours(9, 0, 0, 0);
  const value = useSignal(tomorrow.toISOString().slice(0, 16));
  return (
    <form class="row" onSubmit={(e) => { e.preventDefault(); const t = Date.parse(`${value.value}Z`); if (Number.isFinite(t)) onPick(secs(t)); }}>
      <label class="small">When (UTC)<input type="datetime-local" value={value.value} onInput={(e) => { value.value = e.currentTarget.value; }} required aria-label={`When to schedule ${title}`} /></label>
      <button type="submit" class="btn small primary">Schedule</button>
      <button type="button" class="btn small" onClick={onCancel}>Cancel</button>
    </form>
  );
}

/**
 * The edit form: saving sends the version the edit started from as
 * If-Match, so someone else's change meanwhile is a 412 that names them.
 * "Reload" takes the state as it is now and keeps what was typed.
 */
function Edit({ a, d, board }: { a: Activity; d: EditDraft; board: Board }) {
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => { if (!first.current?.closest('form')?.contains(document.activeElement)) first.current?.focus(); }, []);
  return (
    <form class="form" onSubmit={(e) => { e.preventDefault(); void board.save(a.id); }} aria-label={`Edit ${a.title}`}>
      <label>Title<input ref={first} value={d.title} onInput={(e) => board.patch(a.id, { title: e.currentTarget.value })} maxLength={200} required /></label>
      <label>Description<textarea rows={3} value={d.description} onInput={(e) => board.patch(a.id, { description: e.currentTarget.value })} maxLength={4000} /></label>
      {d.conflict && (
        <p class="conflict small" role="alert">
          {d.conflict} — <button type="button" class="link-btn" onClick={() => void board.rebase(a.id)}>Reload</button>
        </p>
      )}
      {d.error && <p class="error small" role="alert">{d.error}</p>}
      <div class="row end">
        <button type="button" class="btn small" onClick={() => board.discard(a.id)}>Discard</button>
        <button type="submit" class="btn small primary" disabled={!!d.conflict}>Save</button>
      </div>
    </form>
  );
}

const SCOPES: readonly { scope: Scope; label: string }[] = [
  { scope: 'owner', label: 'To decide' },
  { scope: 'mine', label: 'My requests' },
];

/** The inbox: rooms' requests for their owners, newest first; A approves, R rejects the selected one. `request` (`<room>/<approval>`, from a link) is selected once it is listed. */
export function ApprovalsInbox({ request }: { request?: string | undefined }) {
  const me = user.value!.id;
  const selected = useSignal(0);
  const linked = useRef(request);
  useSignalEffect(() => {
    const at = linked.current ? items.value.findIndex((i) => `${i.room_id}/${i.approval.id}` === linked.current) : -1;
    if (at < 0) return;
    selected.value = at;
    linked.current = undefined;
  });
  useEffect(() => {
    void loadInbox('owner', true);
    // There is no per-person stream of requests yet: re-read while the tab is visible.
    const tick = () => { if (document.visibilityState === 'visible') void loadInbox(); };
    const t = setInterval(tick, 10_000);
    document.addEventListener('visibilitychange', tick);
    return () => { clearInterval(t); document.removeEventListener('visibilitychange', tick); };
  }, []);
  const list = items.value;
  const pending = useComputed(() => items.value.filter((i) => i.approval.status === 'pending').length);
  useSignalEffect(() => { if (selected.value >= items.value.length) selected.value = Math.max(0, items.value.length - 1); });
  const onKey = (e: KeyboardEvent) => {
    if (e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'j' || e.key === 'ArrowDown') { selected.value = Math.min(list.length - 1, selected.value + 1); e.preventDefault(); }
    if (e.key === 'k' || e.key === 'ArrowUp') { selected.value = Math.max(0, selected.value - 1); e.preventDefault(); }
  };
  return (
    <section class="screen approvals" aria-labelledby="inbox-title" onKeyDown={onKey}>
      <header class="screen-head">
        <a class="icon-btn back" href="/" onClick={follow} aria-label="All rooms"><Icon node={ArrowLeft} /></a>
        <h1 id="inbox-title">Approvals</h1>
        <div class="tabs" role="tablist" aria-label="Which requests">
          {SCOPES.map((x) => (
            <button key={x.scope} type="button" role="tab" class="tab" aria-selected={scope.value === x.scope} onClick={() => { selected.value = 0; void loadInbox(x.scope); }}>{x.label}</button>
          ))}
        </div>
      </header>
      <p class="muted small">{scope.value === 'owner' ? `${pending.value} waiting. Select a request, then press A to approve or R to reject.` : 'What you asked for, and what the owners decided.'}</p>
      {inboxError.value && <p class="error" role="alert">{inboxError.value}</p>}
      {!loading.value && list.length === 0 && <p class="muted">{scope.value === 'owner' ? 'Nothing waits for you.' : 'You have not asked for anything lately.'}</p>}
      <ul class="requests" role="list">
        {list.map((i, n) => <li key={`${i.room_id}/${i.approval.id}`}><Request item={i} me={me} selected={n === selected.value} onSelect={() => { selected.value = n; }} /></li>)}
      </ul>
    </section>
  );
}

const VERDICT: Record<string, string> = { pending: 'Waiting', approved: 'Approved', rejected: 'Rejected', expired: 'Expired' };

function Request({ item, me, selected, onSelect }: { item: InboxItem; me: string; selected: boolean; onSelect: () => void }) {
  const a = item.approval;
  const comment = useSignal('');
  const busy = useSignal(false);
  const error = useSignal<string | null>(null);
  const ref = useRef<HTMLElement>(null);
  useEffect(() => { if (selected && !ref.current?.contains(document.activeElement)) ref.current?.focus({ preventScroll: false }); }, [selected]);
  const can = mayDecide(item, me);
  const go = async (d: Decision) => {
    if (!can || busy.value) return;
    busy.value = true;
    error.value = null;
    try {
      await decide(item, d, comment.value);
      say(`${d === 'approve' ? 'Approved' : 'Rejected'}: ${a.action} in ${item.room_name}.`);
    } catch (e) {
      error.value = describe(e);
    } finally {
      busy.value = false;
    }
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.target instanceof HTMLTextAreaElement || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'a' || e.key === 'A') { e.preventDefault(); void go('approve'); }
    if (e.key === 'r' || e.key === 'R') { e.preventDefault(); void go('reject'); }
  };
  const outcome = a.result ? (a.result.status < 300 ? 'it ran' : `it failed (${a.result.status})`) : null;
  return (
    <article ref={ref} tabIndex={0} class={`request${selected ? ' selected' : ''} ${a.status}`} aria-label={`${a.action} in ${item.room_name}, asked by ${requester(a)}`}
      onFocusIn={onSelect} onClick={onSelect} onKeyDown={onKey}>
      <header class="request-head">
        <strong>{a.action}</strong>
        <span class="muted small">in <a href={`/rooms/${item.room_id}`} onClick={follow}>{item.room_name}</a></span>
        <span class={`verdict ${a.status}`}>{VERDICT[a.status] ?? a.status}</span>
      </header>
      <p class="small">Asked by <strong>{requester(a)}</strong>{a.requested_kind === 'ai' ? ' (AI)' : a.requested_kind === 'rule' ? ' (rule)' : ''}, {when(a.created_at * 1000)}</p>
      {a.reason && <p class="small">Reason: {a.reason}</p>}
      <pre class="args" aria-label="Arguments">{JSON.stringify(a.args, null, 2)}</pre>
      {a.status !== 'pending' && (
        <p class="small" role="status">
          {VERDICT[a.status]}{a.resolved_by_name ? ` by ${a.resolved_by_name}` : ''}{a.resolved_at ? `, ${when(a.resolved_at * 1000)}` : ''}{outcome ? ` — ${outcome}` : ''}
          {a.comment && <>: “{a.comment}”</>}
        </p>
      )}
      {can && (
        <div class="decide">
          <label class="small">Comment (optional)<textarea rows={1} maxLength={1000} value={comment.value} onInput={(e) => { comment.value = e.currentTarget.value; }} /></label>
          <div class="row">
            <button type="button" class="btn small primary" disabled={busy.value} onClick={() => void go('approve')}><Icon node={Check} size={14} /> Approve <kbd>A</kbd></button>
            <button type="button" class="btn small danger" disabled={busy.value} onClick={() => void go('reject')}><Icon node={X} size={14} /> Reject <kbd>R</kbd></button>
          </div>
        </div>
      )}
      {!can && a.status === 'pending' && a.requested_by === me && <p class="muted small">Your own request: another owner decides it.</p>}
      {error.value && <p class="error small" role="alert">{error.value}</p>}
    </article>
  );
}
