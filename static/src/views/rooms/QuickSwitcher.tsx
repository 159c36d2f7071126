/** Ctrl/Cmd+K: jump to a room by typing part of its name. */
import { signal } from '@preact/signals';
import { useSignal } from '@preact/signals';
import { rooms } from '../../state/rooms';
import { navigate } from '../../state/route';
import { Dialog } from '../ui/Dialog';

const shown = signal(false);
export const openSwitcher = () => { shown.value = true; };

export function QuickSwitcher() {
  if (!shown.value) return null;
  return <Switcher onClose={() => { shown.value = false; }} />;
}

function Switcher({ onClose }: { onClose: () => void }) {
  const q = useSignal('');
  const active = useSignal(0);
  const text = q.value.trim().toLowerCase();
  const list = rooms.value
    .filter((r) => r.name.toLowerCase().includes(text))
    .sort((a, b) => (b.unread ?? 0) - (a.unread ?? 0) || Number(!a.name.toLowerCase().startsWith(text)) - Number(!b.name.toLowerCase().startsWith(text)))
    .slice(0, 12);
  const go = (id: string) => { onClose(); navigate(`/rooms/${id}`); };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); active.value = Math.min(list.length - 1, active.value + 1); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); active.value = Math.max(0, active.value - 1); }
    else if (e.key === 'Enter' && list[active.value]) { e.preventDefault(); go(list[active.value]!.id); }
  };
  return (
    <Dialog title="Switch room" onClose={onClose}>
      <input
        class="switch-input"
        role="combobox"
        aria-label="Room name"
        aria-expanded="true"
        aria-controls="switch-list"
        aria-autocomplete="list"
        aria-activedescendant={list.length ? `switch-${active.value}` : undefined}
        value={q.value}
        onInput={(e) => { q.value = e.currentTarget.value; active.value = 0; }}
        onKeyDown={onKey}
        autoFocus
      />
      <ul id="switch-list" role="listbox" aria-label="Rooms" class="options">
        {list.map((r, i) => (
          <li key={r.id} id={`switch-${i}`} role="option" aria-selected={i === active.value} class="option" onClick={() => go(r.id)}>
            <span>{r.name}</span>
            {(r.unread ?? 0) > 0 && <span class="badge">{r.unread}</span>}
          </li>
        ))}
        {list.length === 0 && <li class="muted small" role="presentation">No room matches.</li>}
      </ul>
    </Dialog>
  );
}
