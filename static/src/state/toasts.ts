/** Short notices for the person (errors in words, confirmations), read by a live region. */
import { signal } from '@preact/signals-core';
import { describe } from '../api/errors';

export interface Toast { id: number; text: string; kind: 'error' | 'info' }

export const toasts = signal<readonly Toast[]>([]);
let next = 1;

export function say(text: string, kind: Toast['kind'] = 'info', ms = kind === 'error' ? 10_000 : 4_000): void {
  const t = { id: next++, text, kind };
  toasts.value = [...toasts.value, t].slice(-4);
  setTimeout(() => dismiss(t.id), ms);
}

export function fail(e: unknown): void {
  say(describe(e), 'error');
}

export function dismiss(id: number): void {
  toasts.value = toasts.value.filter((t) => t.id !== id);
}
