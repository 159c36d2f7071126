// A native profile of the server's workerd process with Linux `perf` (it must
// be installed: Debian's `linux-perf`; run as root or with
// kernel.perf_event_paranoid ≤ 1).
//
// Until 2026-12-04 this was V8's sampling profiler through the inspector that
// `tests/harness.mjs` opens for `wrangler dev` (`git show
// 5a36a2e:bench/profiler.mjs`). Since the rooms run in a Worker script of
// their own (objects/), that inspector reaches the Worker's isolate only, and
// workerd's own inspector closed a session to the objects' isolate at once.
// `perf` sees the whole process instead: workerd has its symbols, so the time
// in SQLite, V8's runtime and garbage collector, the WebSocket and storage
// APIs and the event loop is named; the JIT-compiled code (the wasm module
// and JavaScript) has no symbols and is reported as one share. Both scripts'
// isolates share the process: a share is the room's only when the Worker's
// routes are not on the path (a socket frame, unlike an HTTP request, reaches
// the room without the Worker).
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../tests/harness.mjs';
import { workerdPids } from './cpu.mjs';

/** What a symbol's time is spent on; the first pattern that matches names it. */
const KINDS = [
  ['zlib (permessage-deflate of the WebSocket frames)', /longest_match|deflate|build_tree|compress_block|send_bits|pqdownheap|fill_window|_tr_|slide_hash|inflate|adler32|crc32/],
  ['SQLite', /^sqlite|^wal|^pager|^btree|^vdbe|fts5/i],
  ['V8 compiling (the module tiering up)', /^v8::internal::(compiler|maglev|wasm::(Liftoff|.*Compil|.*Decoder))/],
  ["V8's garbage collector", /^v8::internal::(Heap|Scavenger|MarkCompact|Sweeper|Minor|Concurrent|GC|.*Marking)/],
  ["V8's runtime and builtins", /^v8::|^Builtins_|Runtime_/],
  ['the event loop and I/O (kj, capnp)', /^kj::|^capnp::|kj_rs|kj_hyper/],
  ["workerd's APIs", /^workerd::|^jsg::/],
  ['malloc and memcpy', /tcmalloc|TCMalloc|^malloc|^free|^cfree|^operator (new|delete)|^__mem(cpy|move|set)/],
];

/**
 * The recording's self time by kind (percent of the process's samples, the
 * JIT-compiled code and the kernel as kinds of their own), printed with the
 * native symbols that have the most.
 */
function summarise(file) {
  const out = execFileSync('perf', ['report', '-i', file, '--stdio', '--no-children', '-g', 'none',
    '--sort', 'dso,sym', '--percent-limit', '0'], { maxBuffer: 256 * 1024 * 1024 }).toString();
  const rows = [];
  for (const line of out.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\[JIT\] tid \d+|\S+)\s+\[([.k])\]\s+(.*)$/.exec(line);
    if (m) rows.push({ pct: Number(m[1]), dso: m[2], kernel: m[3] === 'k', sym: m[4].trim() });
  }
  const jit = (r) => r.dso.startsWith('[JIT]') || r.dso.startsWith('//anon') || r.dso === '[unknown]' || /^0x[0-9a-f]+$/.test(r.sym);
  const kind = (r) => {
    if (jit(r)) return 'JIT-compiled code (the wasm module and JavaScript)';
    if (r.kernel) return 'the kernel (sockets, scheduling, memory)';
    return KINDS.find(([, re]) => re.test(r.sym))?.[0] ?? 'other native';
  };
  const kinds = new Map();
  for (const r of rows) kinds.set(kind(r), (kinds.get(kind(r)) ?? 0) + r.pct);
  const sorted = [...kinds].sort((x, y) => y[1] - x[1]);
  console.log('self time by kind:');
  for (const [k, pct] of sorted) console.log(`  ${pct.toFixed(1).padStart(5)}%  ${k}`);
  console.log('top native symbols:');
  for (const r of rows.filter((x) => !jit(x)).slice(0, 25)) console.log(`  ${r.pct.toFixed(2).padStart(5)}%  ${r.sym.slice(0, 110)}`);
  return sorted;
}

/**
 * Runs `work` while `perf` samples the server's workerd (999 Hz), prints the
 * shares of self time by kind and the native symbols with the most, and
 * keeps the recording in bench/results/ (`perf report -i <file>`). Returns
 * what `work` returned and the shares by kind, `[kind, percent]`.
 */
export async function profiled(server, name, work) {
  const pids = workerdPids(server.pid);
  if (pids.length === 0) throw new Error(`${name}: no workerd process in the server's process group`);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/${name}-${Date.now()}.perf.data`);
  const perf = spawn('perf', ['record', '-F', '999', '-g', '-p', pids.join(','), '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  perf.stderr.on('data', (d) => { errors += d; });
  // Listened for at once: perf may exit (or fail to start) before the work ends.
  const exited = new Promise((r) => perf.once('exit', (c, signal) => r(signal === 'SIGINT' ? 0 : c)));
  const failed = new Promise((_, reject) => perf.once('error', (e) => reject(new Error(`${name}: perf did not start (${e.message}); install linux-perf`))));
  const started = new Promise((r) => setTimeout(r, 500));
  await Promise.race([started, failed]);
  failed.catch(() => {}); // a later failure shows as perf's exit code
  const result = await work();
  perf.kill('SIGINT');
  const code = await exited;
  if (code !== 0) throw new Error(`${name}: perf record failed (${code}):\n${errors}`);
  const kinds = summarise(file);
  console.log(`whole recording: ${file}`);
  return { result, kinds };
}
