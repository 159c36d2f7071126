/** Ctrl/Cmd+K and the sidebar's search box: the search dialog (rooms by name and hits across rooms, in the search chunk). */
import { signal } from '@preact/signals';
import { search as searchChunk } from '../lazy';
import { Dialog } from '../ui/Dialog';

const shown = signal(false);
export const openSwitcher = () => { void searchChunk.load(); shown.value = true; };

export function QuickSwitcher() {
  if (!shown.value) return null;
  const close = () => { shown.value = false; };
  const S = searchChunk.value.value;
  return S ? <S.SearchDialog onClose={close} /> : <Dialog title="Search" onClose={close}><p class="muted" role="status">Loading…</p></Dialog>;
}
