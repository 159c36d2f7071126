/**
 * Notices a new deploy while a tab is open: the build names itself by its
 * entry script, and version.json (never cached) names the deployed one. A
 * lazy chunk that fails to load (old hashes gone) says the same.
 */
import { signal } from '@preact/signals-core';

export const updateReady = signal(false);
let mine = '';

export function watchDeploys(entryUrl: string): void {
  mine = new URL(entryUrl).pathname;
  const check = async () => {
    try {
      const r = await fetch('/version.json', { cache: 'no-store' });
      if (!r.ok) return;
      const { entry } = (await r.json()) as { entry?: string };
      if (entry && entry !== mine) updateReady.value = true;
    } catch { /* offline: try later */ }
  };
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') void check(); });
  window.addEventListener('online', () => void check());
  setInterval(check, 10 * 60_000);
}

/** Loads a lazy chunk; a failure after a deploy offers the reload instead of a blank view. */
export async function lazy<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    updateReady.value = true;
    throw e;
  }
}
