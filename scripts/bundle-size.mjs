// Prints the raw and gzipped size of what `wrangler deploy --dry-run` bundled.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dir = process.argv[2];
let raw = 0;
let gz = 0;
const walk = (d) => {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.(m?js|wasm)$/.test(name)) {
      const bytes = readFileSync(p);
      raw += bytes.length;
      gz += gzipSync(bytes, { level: 9 }).length;
    }
  }
};
walk(dir);
console.log(`bundle: ${(raw / 1024).toFixed(0)} KiB raw, ${(gz / 1024).toFixed(0)} KiB gzipped`);
if (gz > 3 * 1024 * 1024) {
  console.error('bundle exceeds the 3 MB free-plan limit');
  process.exit(1);
}
