/**
 * Search as you type: of a burst of requests only the last runs, `delay` ms
 * after the burst ends; starting a new one aborts the one in flight (its
 * AbortSignal fires), and an answer that is no longer the newest is dropped
 * even if it arrives (a server that ignores the abort cannot show stale
 * results over fresh ones).
 */
export interface Latest<A> {
  /** Asks for `arg`; replaces whatever was waiting or running. */
  request(arg: A): void;
  /** Runs `arg` at once (Enter), aborting what was waiting or running. */
  now(arg: A): void;
  /** Drops whatever was waiting or running. */
  cancel(): void;
}

export function latest<A, R>(
  run: (arg: A, signal: AbortSignal) => Promise<R>,
  delay: number,
  done: (result: R, arg: A) => void,
  failed: (error: unknown, arg: A) => void,
): Latest<A> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight: AbortController | null = null;
  let generation = 0;

  const cancel = () => {
    generation += 1;
    clearTimeout(timer);
    timer = undefined;
    inflight?.abort();
    inflight = null;
  };

  const start = (arg: A) => {
    const mine = generation;
    const ctl = new AbortController();
    inflight = ctl;
    run(arg, ctl.signal).then(
      (r) => { if (mine === generation) { inflight = null; done(r, arg); } },
      (e: unknown) => { if (mine === generation && !ctl.signal.aborted) { inflight = null; failed(e, arg); } },
    );
  };

  return {
    request(arg) {
      cancel();
      const mine = generation;
      timer = setTimeout(() => { if (mine === generation) start(arg); }, delay);
    },
    now(arg) {
      cancel();
      start(arg);
    },
    cancel,
  };
}
