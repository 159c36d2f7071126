// V8's sampling profiler on the room objects' isolate: not available since
// the objects run in a Worker script of their own (objects/, 2026-12-04).
//
// Until then the profile went through the inspector that `tests/harness.mjs`
// opens for `wrangler dev`, and the rooms ran in the Worker's isolate. That
// inspector proxies the first script of a session only, the Worker; workerd's
// own inspector lists the objects' isolate (`core:user:tessera-objects`) but
// closed a DevTools session to it at once. A profile through the proxy would
// time the Worker's routes and present them as the room's work, so this
// refuses instead. The last working version: `git show
// 5a36a2e:bench/profiler.mjs`. The `--runs` modes of the benchmarks do not
// need it.

/** Refuses: see above. */
export async function profiled(_server, name) {
  throw new Error(`${name}: the room objects cannot be profiled under wrangler dev since they run in the tessera-objects script (bench/profiler.mjs says why)`);
}
