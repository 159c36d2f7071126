/** An open room: header, timeline, who is typing or uploading, the composer, and the side panels. */
import { useSignal } from '@preact/signals';
import { useEffect, useMemo } from 'preact/hooks';
import { user } from '../../api/auth';
import { handleOf } from '../../lib/markdown';
import { names } from '../../lib/format';
import type { RoomSession } from '../../realtime/room';
import { members as loadMembers, atLeast, type Member } from '../../state/room-admin';
import { byId } from '../../state/rooms';
import { follow, navigate, type RoomTab } from '../../state/route';
import { current, open } from '../../state/session';
import { docs, files, manage, notify, prefetch } from '../lazy';
import { RoomScreen, RoomTabs, useOutcomes } from '../RoomScreens';
import { Icon } from '../ui/Icon';
import { ArrowLeft, Bell, FileText, Files, Link, Settings, Users } from '../icons';
import type { Person } from './Body';
import { Composer, type Editing } from './Composer';
import { Timeline } from './Timeline';

export type Panel = 'members' | 'files' | 'docs' | 'invite' | 'settings' | 'notify' | null;

export function RoomView({ roomId, tab = null, message }: { roomId: string; tab?: RoomTab | null; message?: number | undefined }) {
  const me = user.value!;
  const panel = useSignal<Panel>(null);
  const members = useSignal<Member[]>([]);
  const editing = useSignal<Editing | null>(null);
  const replyTo = useSignal<number | null>(null);
  const dragging = useSignal(false);
  useEffect(() => {
    open(roomId);
  }, [roomId]);
  const s = current.value?.roomId === roomId ? current.value : null;
  // Once the room is live (its socket said hello), not while it loads: the
  // chunks would take connections, bandwidth and the main thread from it.
  const live = s?.me.value != null;
  useEffect(() => { if (live) prefetch(); }, [live]);
  useOutcomes(s, me.id);
  // `?message=` (a search hit, an inbox item, a push): jump there once, then drop it from the URL so the same link works again.
  useEffect(() => {
    if (!s || message === undefined) return;
    void s.jumpTo(message);
    navigate(`/rooms/${roomId}`, true);
  }, [s, message]);
  const changed = s?.membersChanged.value ?? 0;
  useEffect(() => {
    loadMembers(roomId).then((m) => { members.value = m; }).catch(() => undefined);
  }, [roomId, changed]);
  const people = useMemo(() => {
    const map = new Map<string, Person>();
    for (const m of members.value) map.set(handleOf(m.display_name), { id: m.user_id, name: m.display_name });
    return map;
  }, [members.value]);
  const room = byId.value.get(roomId);
  if (!s) return null;
  if (s.gone.value) {
    return (
      <section class="empty" aria-labelledby="gone-title">
        <h1 id="gone-title">{s.gone.value === 'removed' ? 'You are no longer in this room' : 'This room was deleted'}</h1>
        <a class="btn" href="/" onClick={follow}>Back to your rooms</a>
      </section>
    );
  }
  // The socket knows the current role (its `hello`, then `member_changed`);
  // the rooms list is the fallback until it is connected.
  const role = s.me.value?.role ?? (room?.role as Member['role'] | undefined) ?? null;
  const writable = atLeast(role, 'member') && !s.archived.value;
  const online = [...s.presence.value.values()].filter((p) => p.status === 'online' && p.user_id !== me.id);
  const F = files.value.value;
  const M = manage.value.value;
  const D = docs.value.value;
  const N = notify.value.value;
  const show = (p: Panel) => {
    if (p === 'files') void files.load();
    else if (p === 'docs') void docs.load();
    else if (p === 'notify') void notify.load();
    else if (p) void manage.load();
    panel.value = panel.value === p ? null : p;
  };
  const drop = (e: DragEvent) => {
    e.preventDefault();
    dragging.value = false;
    const dropped = [...(e.dataTransfer?.files ?? [])];
    if (dropped.length && writable) void files.load().then((f) => f.upload(s, dropped, true));
  };
  return (
    <section
      class={`room${panel.value ? ' with-panel' : ''}`}
      aria-labelledby="room-title"
      onDragOver={(e) => { if (writable && e.dataTransfer?.types.includes('Files')) { e.preventDefault(); dragging.value = true; } }}
      onDragLeave={(e) => { if (e.currentTarget === e.target) dragging.value = false; }}
      onDrop={drop}
    >
      <header class="room-head">
        <a class="icon-btn back" href="/" onClick={follow} aria-label="All rooms"><Icon node={ArrowLeft} /></a>
        <div class="room-title">
          <h1 id="room-title">{room?.name ?? 'Room'}</h1>
          <p class="muted small">
            {s.archived.value ? 'Archived · read-only' : room?.topic || count(members.value.length || room?.member_count || 1)}
            {online.length > 0 && s.connection.value === 'open' && <> · <span class="online-dot" aria-hidden="true" />{online.length === 1 ? `${online[0]!.display_name} is here` : `${online.length} others here`}</>}
          </p>
        </div>
        <div class="room-tools">
          <button type="button" class="icon-btn" aria-label="Documents" aria-pressed={panel.value === 'docs'} onClick={() => show('docs')}><Icon node={FileText} /></button>
          <button type="button" class="icon-btn" aria-label="Files" aria-pressed={panel.value === 'files'} onClick={() => show('files')}><Icon node={Files} /></button>
          <button type="button" class="icon-btn" aria-label="Members" aria-pressed={panel.value === 'members'} onClick={() => show('members')}><Icon node={Users} /></button>
          {atLeast(role, 'admin') && room?.kind !== 'direct' && !s.archived.value && (
            <button type="button" class="icon-btn" aria-label="Invite people" aria-pressed={panel.value === 'invite'} onClick={() => show('invite')}><Icon node={Link} /></button>
          )}
          <button type="button" class="icon-btn" aria-label="Notifications and webhooks" aria-pressed={panel.value === 'notify'} onClick={() => show('notify')}><Icon node={Bell} /></button>
          <button type="button" class="icon-btn" aria-label="Room settings" aria-pressed={panel.value === 'settings'} onClick={() => show('settings')}><Icon node={Settings} /></button>
        </div>
      </header>
      <RoomTabs roomId={roomId} tab={tab} role={role} />
      <Connection s={s} />
      {s.notice.value && (
        <p class="notice" role="status">{s.notice.value} <button type="button" class="link-btn" onClick={() => { s.notice.value = null; }}>Dismiss</button></p>
      )}
      {s.error.value && <p class="notice error" role="alert">{s.error.value}</p>}
      <div class="room-body">
        {tab ? <RoomScreen tab={tab} s={s} role={role} me={me.id} /> : <div class="chat">
          <Timeline s={s} people={people} members={members.value} me={me.id} role={role} writable={writable}
            onReply={(id) => { replyTo.value = id; editing.value = null; }}
            onEdit={(id, body) => { editing.value = { id, body }; }} />
          <Activity s={s} me={me.id} />
          {F && panel.value !== 'files' && <F.Tray s={s} />}
          {writable ? (
            <Composer key={roomId} s={s} people={people} members={members.value} editing={editing} replyTo={replyTo} roomName={room?.name ?? 'this room'} />
          ) : (
            <p class="read-only" role="note">{s.archived.value ? 'This room is archived: it can be read but not written in.' : role === 'viewer' ? 'You are a viewer here: you can read but not write.' : 'Connecting…'}</p>
          )}
          {dragging.value && <div class="drop-hint" aria-hidden="true">Drop files to attach them</div>}
        </div>}
        {panel.value === 'files' && (F ? <F.FilesPanel s={s} writable={writable} onClose={() => { panel.value = null; }} /> : <PanelLoading />)}
        {panel.value === 'docs' && (D ? <D.DocsPanel roomId={roomId} role={role} writable={writable} s={s} onClose={() => { panel.value = null; }} /> : <PanelLoading />)}
        {panel.value === 'notify' && (N ? <N.RoomNotifyPanel roomId={roomId} room={room ?? null} role={role} onClose={() => { panel.value = null; }} /> : <PanelLoading />)}
        {panel.value && panel.value !== 'files' && panel.value !== 'docs' && panel.value !== 'notify' && (M ? (
          <M.RoomPanel which={panel.value} s={s} room={room ?? null} members={members} role={role} onClose={() => { panel.value = null; }} />
        ) : <PanelLoading />)}
      </div>
    </section>
  );
}

const count = (n: number) => `${n} ${n === 1 ? 'member' : 'members'}`;

function PanelLoading() {
  return <aside class="panel"><p class="muted" role="status">Loading…</p></aside>;
}

/** The socket's state in words, when it is not simply connected. */
function Connection({ s }: { s: RoomSession }) {
  const st = s.connection.value;
  const pending = s.outgoing.value.filter((e) => e.state === 'pending').length;
  if (st === 'open') return null;
  const text = st === 'offline' ? 'Offline.' : 'Reconnecting…';
  return (
    <p class="notice connection" role="status">
      {text} {pending > 0 && `${pending} ${pending === 1 ? 'message waits' : 'messages wait'} to be sent.`}
    </p>
  );
}

/** "Ada is typing…" and "Bob is uploading plan.pdf — 40 %". */
function Activity({ s, me }: { s: RoomSession; me: string }) {
  const typing = s.typing.value.map((t) => t.display_name);
  const names_ = new Map([...s.presence.value.values()].map((p) => [p.user_id, p.display_name]));
  const uploads = [...s.uploads.value.values()].filter((u) => u.uploader !== me);
  return (
    <div class="activity" aria-live="polite">
      {typing.length > 0 && <p class="typing">{names(typing)} {typing.length === 1 ? 'is' : 'are'} typing…</p>}
      {uploads.map((u) => (
        <p key={u.file_id} class="typing">
          {names_.get(u.uploader) ?? 'Someone'} is uploading {u.name} — {Math.floor((u.offset / Math.max(1, u.length)) * 100)} %
        </p>
      ))}
    </div>
  );
}
