/** Create a group or project room, or start a direct room with a person found by name or email. */
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import type { UserHit } from '../../api/types';
import { describe } from '../../api/errors';
import { create, findPeople, type Kind } from '../../state/rooms';
import { navigate } from '../../state/route';
import { Dialog } from '../ui/Dialog';

const KINDS: Array<{ kind: Kind; label: string; hint: string }> = [
  { kind: 'group', label: 'Group', hint: 'A room for a team or a topic.' },
  { kind: 'project', label: 'Project', hint: 'A room with activities, approvals and an AI check-in.' },
  { kind: 'direct', label: 'Direct', hint: 'A private conversation with one person.' },
];

export function NewRoom({ onClose }: { onClose: () => void }) {
  const kind = useSignal<Kind>('group');
  const busy = useSignal(false);
  const error = useSignal<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    busy.value = true;
    error.value = null;
    try {
      const room = await create(kind.value, String(f.get('name') ?? '').trim(), String(f.get('topic') ?? '').trim());
      onClose();
      navigate(`/rooms/${room.id}`);
    } catch (err) {
      error.value = describe(err);
    } finally {
      busy.value = false;
    }
  };
  return (
    <Dialog title="New room" onClose={onClose}>
      <fieldset class="kinds">
        <legend>Kind of room</legend>
        {KINDS.map((k) => (
          <label key={k.kind} class="kind">
            <input type="radio" name="kind" value={k.kind} checked={kind.value === k.kind} onChange={() => { kind.value = k.kind; error.value = null; }} />
            <span><strong>{k.label}</strong><span class="muted small">{k.hint}</span></span>
          </label>
        ))}
      </fieldset>
      {kind.value === 'direct' ? <Direct onClose={onClose} /> : (
        <form class="form" onSubmit={submit}>
          <label>Name<input name="name" required maxLength={100} autoFocus /></label>
          <label><span>Topic <span class="muted">(optional)</span></span><input name="topic" maxLength={500} /></label>
          {error.value && <p class="error" role="alert">{error.value}</p>}
          <div class="row end">
            <button type="button" class="btn" onClick={onClose}>Cancel</button>
            <button type="submit" class="btn primary" disabled={busy.value}>Create room</button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

function Direct({ onClose }: { onClose: () => void }) {
  const q = useSignal('');
  const hits = useSignal<UserHit[]>([]);
  const active = useSignal(0);
  const error = useSignal<string | null>(null);
  const searching = useSignal(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => {
    clearTimeout(timer.current);
    const text = q.value.trim();
    if (text.length < 2) { hits.value = []; return; }
    timer.current = setTimeout(() => {
      searching.value = true;
      findPeople(text)
        .then((h) => { hits.value = h; active.value = 0; error.value = null; })
        .catch((e) => { error.value = describe(e); })
        .finally(() => { searching.value = false; });
    }, 250);
  }, [q.value]);
  const start = async (u: UserHit) => {
    try {
      const room = await create('direct', '', '', [u.id]);
      onClose();
      navigate(`/rooms/${room.id}`);
    } catch (e) {
      error.value = describe(e);
    }
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); active.value = Math.min(hits.value.length - 1, active.value + 1); }
    if (e.key === 'ArrowUp') { e.preventDefault(); active.value = Math.max(0, active.value - 1); }
    if (e.key === 'Enter' && hits.value[active.value]) { e.preventDefault(); void start(hits.value[active.value]!); }
  };
  return (
    <div class="form">
      <label>Person
        <input
          role="combobox"
          aria-expanded={hits.value.length > 0}
          aria-controls="people-list"
          aria-autocomplete="list"
          aria-activedescendant={hits.value.length ? `person-${active.value}` : undefined}
          placeholder="Name of someone you share a room with, or an email"
          value={q.value}
          onInput={(e) => { q.value = e.currentTarget.value; }}
          onKeyDown={onKey}
          autoFocus
        />
      </label>
      <ul id="people-list" role="listbox" aria-label="People" class="options">
        {hits.value.map((u, i) => (
          <li key={u.id} id={`person-${i}`} role="option" aria-selected={i === active.value} class="option" onClick={() => void start(u)}>
            {u.display_name}
          </li>
        ))}
      </ul>
      <p class="muted small" role="status">{searching.value ? 'Searching…' : q.value.trim().length >= 2 && hits.value.length === 0 && !error.value ? 'Nobody found. People appear here once you share a room, or by their exact email.' : ''}</p>
      {error.value && <p class="error" role="alert">{error.value}</p>}
    </div>
  );
}
