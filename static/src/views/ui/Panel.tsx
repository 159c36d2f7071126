/**
 * A side panel beside the chat or a document (files, documents, versions,
 * members, notifications): its heading names it, and its close button says
 * what it closes.
 */
import type { ComponentChildren } from 'preact';
import { useRef } from 'preact/hooks';
import { Icon } from './Icon';
import { X } from '../icons';

let counter = 0;

export function Panel({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const id = useRef(`panel-${++counter}`).current;
  return (
    <aside class="panel" aria-labelledby={id}>
      <header class="panel-head">
        <h2 id={id}>{title}</h2>
        <button type="button" class="icon-btn" aria-label={`Close ${title.toLowerCase()}`} onClick={onClose}><Icon node={X} /></button>
      </header>
      {children}
    </aside>
  );
}
