// The settings both Worker scripts read (wrangler.toml and objects/wrangler.toml
// each carry them) must have one value: fails when a var named in both
// [vars] tables differs, or when a shared var is missing from either.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = ['CHAT_BODY_LIMIT', 'NOTIFY_ALLOW_PRIVATE_URLS', 'VAPID_PUBLIC_KEY'];

/** The `KEY = "value"` lines of a file's [vars] table. */
function vars(file) {
  const toml = readFileSync(join(ROOT, file), 'utf8');
  const table = /^\[vars\]$([\s\S]*?)(?=^\[)/m.exec(toml)?.[1] ?? '';
  return new Map([...table.matchAll(/^([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)].map((m) => [m[1], m[2]]));
}

const worker = vars('wrangler.toml');
const objects = vars('objects/wrangler.toml');
const problems = [];
for (const name of SHARED) {
  if (!worker.has(name) || !objects.has(name)) problems.push(`${name} must be in both files' [vars]`);
}
for (const [name, value] of worker) {
  if (objects.has(name) && objects.get(name) !== value) {
    problems.push(`${name} is "${value}" in wrangler.toml but "${objects.get(name)}" in objects/wrangler.toml`);
  }
}
for (const p of problems) console.error(p);
if (problems.length) process.exit(1);
console.log(`shared vars agree: ${SHARED.join(', ')}`);
