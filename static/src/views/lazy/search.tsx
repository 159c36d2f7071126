/**
 * The search chunk: one dialog for Ctrl/Cmd+K. Rooms whose name matches come
 * first (Enter on a name switches room, as before), then hits across the
 * person's rooms as they type, filtered by room and kind, with the server's
 * snippets (matched runs in <mark>, built as text nodes). Opening a message
 * hit lands on the message in its room, with the history around it.
 */
import './initial';
import { useEffect } from 'preact/hooks';
import { useSignal } from '@preact/signals';
import { when } from '../../lib/format';
import { rooms, type Room } from '../../state/rooms';
import { navigate } from '../../state/route';
import { error, hits, KINDS, loadMore, MIN_CHARS, nextCursor, openHit, query, reset, roomMatches, semanticNote, set, state, type Hit, type HitKind, type Snippet } from '../../state/search';
import { Dialog } from '../ui/Dialog';
import { Icon } from '../ui/Icon';
import { FileIcon, Hash, MessageSquarePlus, Pencil, Sparkles, Check } from '../icons';
import { roomIcon } from '../rooms/RoomList';

const KIND_ICON = { message: MessageSquarePlus, document: Pencil, file: FileIcon, activity: Check, checkin: Sparkles } as const;

/** A snippet's runs as text and <mark> elements (never HTML). */
export function Marked({ s }: { s: Snippet }) {
  return <>{s.parts.map((p, i) => (p.mark ? <mark key={i}>{p.text}</mark> : p.text))}</>;
}

type Option = { room: Room } | { hit: Hit };

/**
 * The options for the query as it is now: rooms by name first, then hits.
 * Keys read them afresh, not from the last render: renders wait for the next
 * frame, and Enter right after typing (or a paste) must act on what was typed.
 */
function currentOptions(): Option[] {
  const q = query.value;
  const roomList = q.room ? [] : roomMatches(rooms.value, q.q, q.q.trim() ? 5 : 8);
  return [...roomList.map((room) => ({ room })), ...hits.value.map((hit) => ({ hit }))];
}

export function SearchDialog({ onClose }: { onClose: () => void }) {
  const active = useSignal(0);
  useEffect(() => reset, []);
  const q = query.value;
  const options = currentOptions();
  const go = (o: Option) => {
    onClose();
    if ('room' in o) navigate(`/rooms/${o.room.id}`);
    else openHit(o.hit);
  };
  const onKey = (e: KeyboardEvent) => {
    const now = currentOptions();
    if (e.key === 'ArrowDown') { e.preventDefault(); active.value = Math.min(now.length - 1, active.value + 1); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); active.value = Math.max(0, active.value - 1); }
    else if (e.key === 'Enter' && now[active.value]) { e.preventDefault(); go(now[active.value]!); }
  };
  const toggle = (k: HitKind) => set({ kinds: q.kinds.includes(k) ? q.kinds.filter((x) => x !== k) : [...q.kinds, k] });
  const searching = q.q.trim().length >= MIN_CHARS;
  const st = state.value;
  return (
    <Dialog title="Search" onClose={onClose} wide>
      <input
        class="switch-input"
        role="combobox"
        aria-label="Search rooms and messages"
        placeholder="Search rooms, messages, files…"
        aria-expanded="true"
        aria-controls="search-list"
        aria-autocomplete="list"
        aria-activedescendant={options.length ? `search-${active.value}` : undefined}
        value={q.q}
        onInput={(e) => { set({ q: e.currentTarget.value }); active.value = 0; }}
        onKeyDown={onKey}
        autoFocus
      />
      <div class="search-filters" role="group" aria-label="Filters">
        <select aria-label="In room" value={q.room ?? ''} onChange={(e) => { set({ room: e.currentTarget.value || null }); active.value = 0; }}>
          <option value="">All rooms</option>
          {rooms.value.map((r) => <option key={r.id} value={r.id}>{r.name}</option>)}
        </select>
        {KINDS.map((k) => (
          <button key={k.id} type="button" class="chip" aria-pressed={q.kinds.includes(k.id)} onClick={() => { toggle(k.id); active.value = 0; }}>{k.label}</button>
        ))}
      </div>
      <ul id="search-list" role="listbox" aria-label="Results" class="options search-results">
        {options.map((o, i) => (
          'room' in o ? (
            <li key={`r${o.room.id}`} id={`search-${i}`} role="option" aria-selected={i === active.value} class="option" onClick={() => go(o)}>
              <span class="hit-room"><Icon node={roomIcon(o.room.kind)} size={16} /><span>{o.room.name}</span></span>
              {(o.room.unread ?? 0) > 0 && <span class="badge">{o.room.unread}</span>}
            </li>
          ) : (
            <li key={`h${o.hit.room_id}:${o.hit.kind}:${o.hit.id}`} id={`search-${i}`} role="option" aria-selected={i === active.value} class="option hit" onClick={() => go(o)}>
              <Icon node={KIND_ICON[o.hit.kind]} size={16} />
              <span class="hit-main">
                <span class="hit-head"><strong><Marked s={o.hit.title} /></strong> <span class="muted small"><Icon node={Hash} size={12} />{o.hit.room_name} · {when(o.hit.at)}</span></span>
                {o.hit.snippet.parts.length > 0 && <span class="hit-snippet"><Marked s={o.hit.snippet} /></span>}
              </span>
            </li>
          )
        ))}
      </ul>
      <div class="search-status small" aria-live="polite">
        {!searching && q.q.trim() && <p class="muted">Type at least {MIN_CHARS} characters to search messages.</p>}
        {searching && st === 'loading' && <p class="muted" role="status">Searching…</p>}
        {searching && st === 'done' && hits.value.length === 0 && <p class="muted">Nothing found{q.room || q.kinds.length ? ' with these filters' : ''}.</p>}
        {st === 'error' && <p class="error" role="alert">{error.value}</p>}
        {searching && st === 'done' && semanticNote.value && <p class="muted" title={semanticNote.value}>Results match your words (search by meaning is not available here).</p>}
      </div>
      {nextCursor.value && <button type="button" class="btn small" onClick={loadMore}>More results</button>}
    </Dialog>
  );
}
