// Prints the raw and gzipped size of what `wrangler deploy --dry-run` bundled
// (the JavaScript and the wasm module it uploads; source maps and the README
// it writes next to them are not uploaded) and fails above the developers'
// guide's limit: 1,000,000 bytes gzipped (the platform allows 3 MB on the free
// plan; every byte also costs cold-start time).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const LIMIT_GZ = 1_000_000;
const dir = process.argv[2];
if (!dir) {
  console.error('usage: node scripts/bundle-size.mjs <wrangler --outdir>');
  process.exit(2);
}
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
if (gz === 0) {
  console.error(`no .js or .wasm under ${dir}: nothing was bundled`);
  process.exit(1);
}
console.log(`bundle: ${(raw / 1024).toFixed(0)} KiB raw, ${(gz / 1024).toFixed(0)} KiB gzipped (${gz} B; limit ${LIMIT_GZ} B)`);
if (gz > LIMIT_GZ) {
  console.error(`bundle exceeds the limit of ${LIMIT_GZ} bytes gzipped by ${gz - LIMIT_GZ} B`);
  process.exit(1);
}
