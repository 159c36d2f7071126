/** Runs `cb` when the main thread is idle (after `fallbackMs` where the browser has no requestIdleCallback). */
export function whenIdle(cb: () => void, fallbackMs: number): void {
  const ric = (window as { requestIdleCallback?: (cb: () => void) => void }).requestIdleCallback;
  if (ric) ric(cb);
  else setTimeout(cb, fallbackMs);
}
