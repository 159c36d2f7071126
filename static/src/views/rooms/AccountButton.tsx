/** The person's name in the corner; opens the account dialog (lazy chunk). */
import { useSignal } from '@preact/signals';
import { user } from '../../api/auth';
import { hue, initials } from '../../lib/format';
import { loadManage, manageChunk } from '../lazy';

export function Avatar({ id, name, size = 28 }: { id: string; name: string; size?: number }) {
  return <span class="avatar" aria-hidden="true" style={{ '--h': String(hue(id)), width: `${size}px`, height: `${size}px` }}>{initials(name)}</span>;
}

export function AccountButton() {
  const open = useSignal(false);
  const u = user.value!;
  const M = manageChunk.value;
  return (
    <>
      <button type="button" class="account-btn" aria-label={`Account: ${u.display_name}`} onClick={() => { void loadManage(); open.value = true; }}>
        <Avatar id={u.id} name={u.display_name} />
      </button>
      {open.value && M && <M.Account onClose={() => { open.value = false; }} />}
    </>
  );
}
