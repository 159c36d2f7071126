/** The bell beside the account button: unread inbox items as a badge, live; opens the inbox (notify chunk). */
import { signal } from '@preact/signals';
import { unreadItems } from '../../state/inbox';
import { notify as notifyChunk } from '../lazy';
import { Dialog } from '../ui/Dialog';
import { Icon } from '../ui/Icon';
import { Bell } from '../icons';

const shown = signal(false);

export function InboxButton() {
  const n = unreadItems.value;
  return (
    <button type="button" class="icon-btn inbox-btn" aria-label={n ? `Inbox, ${n} unread` : 'Inbox'} aria-haspopup="dialog"
      onClick={() => { void notifyChunk.load(); shown.value = true; }}>
      <Icon node={Bell} />
      {n > 0 && <span class="badge mention-badge dot" aria-hidden="true">{n > 99 ? '99+' : n}</span>}
    </button>
  );
}

export function InboxDialog() {
  if (!shown.value) return null;
  const close = () => { shown.value = false; };
  const N = notifyChunk.value.value;
  return N ? <N.InboxDialog onClose={close} /> : <Dialog title="Inbox" onClose={close}><p class="muted" role="status">Loading…</p></Dialog>;
}
