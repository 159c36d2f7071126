/** The person's name in the corner; opens the account dialog (lazy chunk). */
import { signal } from '@preact/signals';
import { user } from '../../api/auth';
import { hue, initials } from '../../lib/format';
import { manage } from '../lazy';

export function Avatar({ id, name, size = 28 }: { id: string; name: string; size?: number }) {
  // Initials are drawn by CSS (attr()), so a button holding an avatar is named by its label alone.
  return <span class="avatar" aria-hidden="true" data-initials={initials(name)} style={{ '--h': String(hue(id)), width: `${size}px`, height: `${size}px` }} />;
}

/** The account dialog is open (rendered by App, like the new-room dialog). */
const accountOpen = signal(false);

export function AccountButton() {
  const u = user.value!;
  return (
    <button type="button" class="account-btn" aria-label={`Account: ${u.display_name}`} onClick={() => { void manage.load(); accountOpen.value = true; }}>
      <Avatar id={u.id} name={u.display_name} />
    </button>
  );
}

export function AccountDialog() {
  const M = manage.value.value;
  return accountOpen.value && M ? <M.Account onClose={() => { accountOpen.value = false; }} /> : null;
}
