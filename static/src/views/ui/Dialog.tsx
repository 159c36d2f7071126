/**
 * A modal dialog on the native <dialog> element: focus moves in and is kept
 * there, Escape closes, the page behind is inert, and the title names it.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { Icon } from './Icon';
import { X } from '../icons';

let counter = 0;

export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useRef(`dlg-${++counter}`).current;
  useEffect(() => {
    const d = ref.current!;
    const back = document.activeElement as HTMLElement | null;
    if (!d.open) d.showModal();
    return () => { if (d.open) d.close(); back?.focus?.(); };
  }, []);
  return (
    <dialog
      ref={ref}
      class={wide ? 'dialog wide' : 'dialog'}
      aria-labelledby={id}
      onCancel={(e) => { e.preventDefault(); onClose(); }}
      onClick={(e) => { if (e.target === ref.current) onClose(); }}
    >
      <div class="dialog-body">
        <header class="dialog-head">
          <h2 id={id}>{title}</h2>
          <button type="button" class="icon-btn" aria-label="Close" onClick={onClose}><Icon node={X} /></button>
        </header>
        {children}
      </div>
    </dialog>
  );
}
