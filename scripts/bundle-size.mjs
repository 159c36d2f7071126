// Prints the raw and gzipped size of what `wrangler deploy --dry-run` bundled
// for each Worker script (the JavaScript and the wasm module it uploads;
// source maps and the README it writes next to them are not uploaded), and
// fails when a script is over the developers' guide's limit of 1,000,000 bytes
// gzipped. Tessera is two scripts, the Worker and its Durable Objects
// (objects/): one module holding both was about 1.160 MB ("Worker bundle" in
// BENCHMARKS.md).
//
//   node scripts/bundle-size.mjs <wrangler --outdir> [<another --outdir> …]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const LIMIT_GZ = 1_000_000;
const dirs = process.argv.slice(2);
if (!dirs.length) {
  console.error('usage: node scripts/bundle-size.mjs <wrangler --outdir> [<another --outdir> …]');
  process.exit(2);
}

/** Raw and gzipped bytes of the uploaded files under `dir`. */
function measure(dir) {
  let raw = 0;
  let gz = 0;
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(m?js|wasm)$/.test(name)) {
        const bytes = readFileSync(p);
        const packed = gzipSync(bytes, { level: 9 }).length;
        console.log(`  ${name}: ${bytes.length} B raw, ${packed} B gzipped`);
        raw += bytes.length;
        gz += packed;
      }
    }
  };
  walk(dir);
  return { raw, gz };
}

let failed = false;
for (const dir of dirs) {
  console.log(dir);
  const { raw, gz } = measure(dir);
  if (gz === 0) {
    console.error(`no .js or .wasm under ${dir}: nothing was bundled`);
    failed = true;
    continue;
  }
  console.log(`bundle: ${(raw / 1024).toFixed(0)} KiB raw, ${(gz / 1024).toFixed(0)} KiB gzipped (${gz} B; limit ${LIMIT_GZ} B)`);
  if (gz > LIMIT_GZ) {
    console.error(`OVER the limit of ${LIMIT_GZ} B gzipped by ${gz - LIMIT_GZ} B`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
