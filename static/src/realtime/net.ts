/** Whether the browser believes it is online and the page is visible, as signals; and the reconnect backoff. */
import { signal } from '@preact/signals-core';

export const online = signal(typeof navigator === 'undefined' ? true : navigator.onLine);
export const visible = signal(typeof document === 'undefined' ? true : document.visibilityState === 'visible');

if (typeof window !== 'undefined') {
  window.addEventListener('online', () => { online.value = true; });
  window.addEventListener('offline', () => { online.value = false; });
  document.addEventListener('visibilitychange', () => { visible.value = document.visibilityState === 'visible'; });
}

/** Full-jitter exponential backoff: attempt 0 waits up to 0.5 s, doubling to at most 30 s. */
export function backoff(attempt: number, base = 500, cap = 30_000): number {
  return Math.random() * Math.min(cap, base * 2 ** attempt);
}
