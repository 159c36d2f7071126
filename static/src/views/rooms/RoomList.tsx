/** The rooms of the signed-in person, with unread counts and mention badges. */
import { signal } from '@preact/signals';
import { listError, loaded, rooms, type Room } from '../../state/rooms';
import { follow, route } from '../../state/route';
import { Icon } from '../ui/Icon';
import { AtSign, Check, Hash, MessageSquarePlus, Search, UserIcon, Users } from '../icons';
import { openSwitcher } from './QuickSwitcher';
import { waiting } from '../../state/approvals';

/** The new-room dialog is open (rendered by App, outside the list, which phones hide inside a room). */
export const creating = signal(false);

export function roomIcon(kind: string) {
  return kind === 'direct' ? UserIcon : kind === 'project' ? Users : Hash;
}

function Badges({ r }: { r: Room }) {
  const unread = r.unread ?? 0;
  const mentions = r.mentions ?? 0;
  return (
    <>
      {mentions > 0 && <span class="badge mention-badge" aria-label={`${mentions} ${mentions === 1 ? 'mention' : 'mentions'}`}><Icon node={AtSign} size={12} />{mentions}</span>}
      {unread > 0 && <span class="badge" aria-label={`${unread} unread`}>{unread > 99 ? '99+' : unread}</span>}
    </>
  );
}

export function RoomList() {
  const r = route.value;
  const current = r.name === 'room' || r.name === 'doc' ? r.id : null;
  return (
    <nav class="rooms" aria-label="Your rooms">
      <button type="button" class="search-box" onClick={openSwitcher}>
        <Icon node={Search} size={16} /> <span>Search</span> <kbd aria-hidden="true">{/Mac|iP/.test(navigator.platform) ? '⌘' : 'Ctrl'} K</kbd>
      </button>
      <button type="button" class="btn new-room" onClick={() => { creating.value = true; }}>
        <Icon node={MessageSquarePlus} /> New room
      </button>
      <a href="/approvals" onClick={follow} class="room-link" aria-current={r.name === 'approvals' ? 'page' : undefined}>
        <Icon node={Check} size={16} /><span class="room-name">Approvals</span>
        {waiting.value > 0 && <span class="badge" aria-label={`${waiting.value} waiting`}>{waiting.value > 99 ? '99+' : waiting.value}</span>}
      </a>
      {listError.value && <p class="error small" role="alert">{listError.value}</p>}
      {!loaded.value && !listError.value && <p class="muted small" role="status">Loading rooms…</p>}
      {loaded.value && rooms.value.length === 0 && <p class="muted small">No rooms yet. Create one, or open an invite link.</p>}
      <ul>
        {rooms.value.map((room) => (
          <li key={room.id}>
            <a
              href={`/rooms/${room.id}`}
              onClick={follow}
              class={`room-link${(room.unread ?? 0) > 0 ? ' unread' : ''}`}
              aria-current={room.id === current ? 'page' : undefined}
            >
              <Icon node={roomIcon(room.kind)} size={16} />
              <span class="room-name">{room.name}</span>
              <Badges r={room} />
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
