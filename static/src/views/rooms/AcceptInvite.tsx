/** An invite link opened by a signed-in person: join, then open the room. */
import { useSignal } from '@preact/signals';
import { describe } from '../../api/errors';
import { accept } from '../../state/room-admin';
import { navigate } from '../../state/route';

export function AcceptInvite({ code }: { code: string }) {
  const error = useSignal<string | null>(null);
  const busy = useSignal(false);
  const join = async () => {
    busy.value = true;
    try {
      const room = await accept(code);
      navigate(`/rooms/${room.id}`, true);
    } catch (e) {
      error.value = describe(e);
    } finally {
      busy.value = false;
    }
  };
  return (
    <section class="empty" aria-labelledby="invite-title">
      <h1 id="invite-title">You were invited to a room</h1>
      <p class="muted">Joining adds you as a member with the role the invite gives.</p>
      {error.value && <p class="error" role="alert">{error.value}</p>}
      <div class="row">
        <button type="button" class="btn primary" disabled={busy.value} onClick={join}>Join room</button>
        <a class="btn" href="/" onClick={(e) => { e.preventDefault(); navigate('/'); }}>Not now</a>
      </div>
    </section>
  );
}
