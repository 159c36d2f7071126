// Builds the browser app: static/src → static/dist (wrangler's [assets]
// directory; sources and node_modules are never published). esbuild bundles
// with code splitting and content-hashed names, writes index.html with the
// entry's preloads, copies static/public, and fails when a budget is broken.
//
//   node scripts/build-web.mjs            build when a source is newer than the last build
//   node scripts/build-web.mjs --force    build anyway
//   node scripts/build-web.mjs --watch    rebuild on change (npm run dev:web)
//   node scripts/build-web.mjs --report   print every chunk's size (BENCHMARKS.md)
import * as esbuild from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'static/src');
const PUBLIC = join(ROOT, 'static/public');
/** The service worker: its own script at the root (scope `/`), never hashed, built apart from the app. */
const SW = join(ROOT, 'static/sw');
const DIST = join(ROOT, 'static/dist');
/** What the last build measured (the benchmark prints it); outside dist/, which is public. */
const STAMP = join(ROOT, '.tessera/web-build.json');
const args = new Set(process.argv.slice(2));

/**
 * Gzipped budgets in bytes. The initial closure is what a first visit must
 * load before the room list is interactive (docs/app.md has the 3G arithmetic);
 * lazy chunks are named by their entry module.
 */
const BUDGETS = {
  initialJs: 60 * 1024,
  css: 12 * 1024,
  // A lazy entry's budget covers what opening it loads: its chunk and the
  // shared chunks it imports that the initial closure does not already hold.
  // work (activities board, approvals inbox), admin (rules, audit) and ai (check-in, usage) share the
  // study's 30 KB for the workflow screens, split so each screen loads only its own code.
  chunks: {
    files: 20 * 1024, manage: 12 * 1024, docs: 12 * 1024, editor: 160 * 1024, lang: 12 * 1024,
    work: 10 * 1024, admin: 8 * 1024, ai: 6 * 1024, search: 4 * 1024, notify: 8 * 1024,
  },
  otherChunk: 8 * 1024,
  serviceWorker: 2 * 1024,
};

const newest = (dir) => {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, name.name);
    t = Math.max(t, name.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
};

const upToDate = () => {
  if (!existsSync(STAMP) || !existsSync(join(DIST, 'index.html'))) return false;
  const built = statSync(STAMP).mtimeMs;
  const inputs = [SRC, PUBLIC, SW].map(newest);
  inputs.push(...['package-lock.json', 'scripts/build-web.mjs', 'wrangler.toml', 'core/openapi.json'].map((f) => statSync(join(ROOT, f)).mtimeMs));
  return inputs.every((t) => t < built);
};

/** Extra CSP `connect-src` origins: the OIDC issuer (the app fetches its discovery and token endpoints) and TESSERA_CONNECT_SRC. */
function connectOrigins() {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  const issuer = process.env.OIDC_ISSUER ?? /^OIDC_ISSUER\s*=\s*"([^"]*)"/m.exec(toml)?.[1] ?? '';
  const extra = (process.env.TESSERA_CONNECT_SRC ?? '').split(/\s+/).filter(Boolean);
  const origins = [];
  for (const u of [issuer, ...extra]) {
    if (!u) continue;
    try { origins.push(new URL(u).origin); } catch { throw new Error(`not a URL for connect-src: ${u}`); }
  }
  return [...new Set(origins)];
}

const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;

/** Sizes per output file and the initial closure of the entry, from esbuild's metafile. */
function measure(metafile, outdir = DIST) {
  const outputs = metafile.outputs;
  const size = (f) => gz(readFileSync(join(ROOT, f)));
  const entry = Object.keys(outputs).find((f) => outputs[f].entryPoint === 'static/src/main.tsx');
  const initial = new Set();
  const walk = (f) => {
    if (initial.has(f)) return;
    initial.add(f);
    for (const imp of outputs[f].imports) if (imp.kind === 'import-statement' && !imp.external) walk(imp.path);
  };
  walk(entry);
  /** A lazy chunk with the non-initial chunks it imports statically (loaded together). */
  const closure = (f, seen = new Set()) => {
    if (seen.has(f) || initial.has(f)) return seen;
    seen.add(f);
    for (const imp of outputs[f].imports) if (imp.kind === 'import-statement' && !imp.external) closure(imp.path, seen);
    return seen;
  };
  const chunks = [];
  for (const [f, o] of Object.entries(outputs)) {
    if (!/\.(js|css)$/.test(f)) continue;
    // Lazy entries are views/lazy/<name>.tsx; a code language of the editor is `lang`.
    const lazyEntry = Object.keys(o.inputs).map((i) => /views\/lazy\/([a-z-]+)\.tsx?$/.exec(i)?.[1] ?? (/legacy-modes\/mode\//.test(i) ? 'lang' : null)).find(Boolean);
    const kind = f.endsWith('.css') ? 'css' : initial.has(f) ? 'initial' : 'lazy';
    const gzip = size(f);
    const loads = kind === 'lazy' && lazyEntry ? [...closure(f)].reduce((n, c) => n + (c === f ? gzip : size(c)), 0) : gzip;
    chunks.push({ file: relative(outdir, join(ROOT, f)), kind, name: lazyEntry ?? null, raw: o.bytes, gzip, loads });
  }
  return { entry, initial, chunks };
}

function checkBudgets(chunks) {
  const failures = [];
  const initialJs = chunks.filter((c) => c.kind === 'initial').reduce((n, c) => n + c.gzip, 0);
  const css = chunks.filter((c) => c.kind === 'css').reduce((n, c) => n + c.gzip, 0);
  if (initialJs > BUDGETS.initialJs) failures.push(`initial JS ${initialJs} B gz > ${BUDGETS.initialJs}`);
  if (css > BUDGETS.css) failures.push(`CSS ${css} B gz > ${BUDGETS.css}`);
  for (const c of chunks.filter((x) => x.kind === 'lazy')) {
    const limit = c.name ? BUDGETS.chunks[c.name] ?? BUDGETS.otherChunk : BUDGETS.otherChunk;
    if (c.loads > limit) failures.push(`lazy chunk ${c.file} (${c.name ?? 'shared'}) loads ${c.loads} B gz > ${limit}`);
  }
  return { initialJs, css, failures };
}

/** Writes index.html, loading the `boot` script first; returns the entry's URL, which names this build (an open tab compares it with version.json). */
function writeIndex(metafile, boot) {
  const outputs = metafile.outputs;
  const url = (f) => '/' + relative(DIST, join(ROOT, f)).split('\\').join('/');
  const entry = Object.keys(outputs).find((f) => outputs[f].entryPoint === 'static/src/main.tsx');
  const css = outputs[entry].cssBundle;
  const preloads = [];
  const seen = new Set();
  const walk = (f) => {
    for (const imp of outputs[f].imports) {
      if (imp.kind !== 'import-statement' || seen.has(imp.path)) continue;
      seen.add(imp.path);
      preloads.push(imp.path);
      walk(imp.path);
    }
  };
  walk(entry);
  const head = [
    `<script async fetchpriority="high" src="${boot}"></script>`,
    css ? `<link rel="stylesheet" href="${url(css)}">` : '',
    `<script type="module" src="${url(entry)}"></script>`,
    ...preloads.map((p) => `<link rel="modulepreload" href="${url(p)}">`),
  ].filter(Boolean).join('\n    ');
  // The icon inline: a request less while the first page loads (img-src allows data:).
  const icon = `data:image/svg+xml,${encodeURIComponent(readFileSync(join(PUBLIC, 'favicon.svg'), 'utf8').trim())}`;
  const html = readFileSync(join(SRC, 'index.html'), 'utf8')
    .replace('<!-- assets -->', head)
    .replace('href="/favicon.svg"', `href="${icon}"`);
  writeFileSync(join(DIST, 'index.html'), html);
  return url(entry);
}

const TARGET = ['es2022', 'chrome111', 'firefox115', 'safari16.4'];

/** A classic script, one file without modules: the service worker, the inline boot script. */
const classic = (entry, options) => esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: [entry],
  bundle: true,
  format: 'iife',
  minify: true,
  target: TARGET,
  legalComments: 'none',
  logLevel: 'warning',
  ...options,
});

async function build() {
  const started = performance.now();
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  mkdirSync(dirname(STAMP), { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: [join(SRC, 'main.tsx')],
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    // Maps carry the sources, and sources are not published: only watch builds (local dev) write them.
    sourcemap: args.has('--watch') ? 'linked' : false,
    target: TARGET,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: DIST,
    entryNames: 'assets/[name]-[hash]',
    chunkNames: 'assets/c/[name]-[hash]',
    assetNames: 'assets/[name]-[hash]',
    metafile: true,
    legalComments: 'none',
    loader: { '.svg': 'dataurl' },
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  if (existsSync(PUBLIC)) cpSync(PUBLIC, DIST, { recursive: true });
  const origins = connectOrigins();
  if (origins.length) {
    const headersFile = join(DIST, '_headers');
    const text = readFileSync(headersFile, 'utf8').replace(/connect-src 'self'/, `connect-src 'self' ${origins.join(' ')}`);
    writeFileSync(headersFile, text);
  }
  // The script that begins a returning person's first requests
  // (static/src/api/early.ts): a classic script of its own, content-hashed,
  // which index.html loads first, async.
  const bootJs = (await classic(join(SRC, 'boot.ts'), { write: false })).outputFiles[0].contents;
  const boot = `assets/boot-${createHash('sha256').update(bootJs).digest('hex').slice(0, 8).toUpperCase()}.js`;
  writeFileSync(join(DIST, boot), bootJs);
  await classic(join(SW, 'sw.ts'), { outfile: join(DIST, 'sw.js') });
  const serviceWorker = gz(readFileSync(join(DIST, 'sw.js')));
  const entry = writeIndex(result.metafile, `/${boot}`);
  writeFileSync(join(DIST, 'version.json'), JSON.stringify({ entry }) + '\n');
  // The Worker serves /api/v1/openapi.json from here rather than carry it in its bundle.
  writeFileSync(join(DIST, 'openapi.json'), JSON.stringify(JSON.parse(readFileSync(join(ROOT, 'core/openapi.json'), 'utf8'))));
  const { chunks } = measure(result.metafile);
  chunks.push({ file: boot, kind: 'initial', name: 'boot', raw: bootJs.length, gzip: gz(bootJs), loads: gz(bootJs) });
  const { initialJs, css, failures } = checkBudgets(chunks);
  if (serviceWorker > BUDGETS.serviceWorker) failures.push(`service worker ${serviceWorker} B gz > ${BUDGETS.serviceWorker}`);
  writeFileSync(STAMP, JSON.stringify({ entry, initialJs, css, serviceWorker, chunks }, null, 2));
  const kb = (n) => (n / 1024).toFixed(1);
  console.log(`[build-web] ${entry} in ${(performance.now() - started).toFixed(0)} ms: initial JS ${kb(initialJs)} KiB gz (≤ ${kb(BUDGETS.initialJs)}), CSS ${kb(css)} KiB gz (≤ ${kb(BUDGETS.css)}), service worker ${kb(serviceWorker)} KiB gz (≤ ${kb(BUDGETS.serviceWorker)})`);
  if (args.has('--report')) {
    for (const c of chunks.sort((a, b) => a.kind.localeCompare(b.kind) || b.gzip - a.gzip)) {
      const with_ = c.loads !== c.gzip ? ` (${kb(c.loads)} with its shared chunks)` : '';
      console.log(`  ${c.kind.padEnd(7)} ${(c.name ?? '').padEnd(7)} ${kb(c.raw).padStart(7)} KiB  ${kb(c.gzip).padStart(6)} KiB gz  ${c.file}${with_}`);
    }
  }
  if (failures.length) {
    rmSync(STAMP, { force: true });
    throw new Error(`over budget:\n  ${failures.join('\n  ')}`);
  }
}

if (args.has('--watch')) {
  let timer = null;
  const rebuild = () => build().catch((e) => console.error(`[build-web] ${e.message}`));
  await rebuild();
  const { watch } = await import('node:fs');
  for (const dir of [SRC, PUBLIC, SW]) {
    watch(dir, { recursive: true }, () => { clearTimeout(timer); timer = setTimeout(rebuild, 100); });
  }
} else if (args.has('--force') || args.has('--report') || !upToDate()) {
  try {
    await build();
  } catch (e) {
    console.error(`[build-web] ${e.message}`);
    process.exit(1);
  }
}
