/** The start view on wide screens (on phones the room list is the start view). */
import { user } from '../../api/auth';
import { rooms } from '../../state/rooms';

export function Home() {
  const unread = rooms.value.filter((r) => (r.unread ?? 0) > 0).length;
  return (
    <section class="empty home" aria-labelledby="home-title">
      <h1 id="home-title">Welcome, {user.value?.display_name}</h1>
      <p class="muted">{unread ? `${unread} ${unread === 1 ? 'room has' : 'rooms have'} new messages.` : 'Pick a room on the left, or create one.'}</p>
    </section>
  );
}
