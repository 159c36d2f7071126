// Fails when the top-level modules of a crate import each other in a cycle
// (issue #16: a newcomer reads the modules in one order, leaves first).
// An edge is any `crate::<module>` path, including `use crate::{a, b::c}`
// groups, in a module's non-test code (a file's `#[cfg(test)] mod tests`
// block and everything after it are left out: tests may reach across).
// A module's files are `src/<module>.rs` and everything under `src/<module>/`.
//
//   node scripts/module-cycles.mjs [crate-dir ...]   (default: the workspace's three)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const crates = process.argv.slice(2);
if (crates.length === 0) crates.push('core', 'durable-objects', 'functions');

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return name.endsWith('.rs') ? [path] : [];
  });
}

/** The code a module's file runs in production: no comments, no test module. */
function productionCode(text) {
  const tests = text.search(/#\[cfg\(test\)\]\s*mod tests\b/);
  const code = tests === -1 ? text : text.slice(0, tests);
  return code.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

/** The top-level modules named by `crate::` paths in `code`. */
function referenced(code) {
  const names = new Set();
  for (const m of code.matchAll(/\bcrate::([a-z_][a-z0-9_]*)/g)) names.add(m[1]);
  // `crate::{a, b::{c, d}, e}`: the names at the group's first level.
  for (const m of code.matchAll(/\bcrate::\{/g)) {
    let depth = 1;
    let atItem = true;
    for (let i = m.index + m[0].length; i < code.length && depth > 0; i++) {
      const c = code[i];
      if (c === '{') depth++;
      else if (c === '}') depth--;
      else if (c === ',' && depth === 1) atItem = true;
      else if (depth === 1 && atItem && /[a-z_]/.test(c)) {
        const name = /^[a-z_][a-z0-9_]*/.exec(code.slice(i))[0];
        names.add(name);
        atItem = false;
        i += name.length - 1;
      }
    }
  }
  return names;
}

/** Tarjan's strongly connected components with more than one module. */
function cycles(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

let failed = false;
for (const crate of crates) {
  const src = join(crate, 'src');
  const graph = new Map();
  const refs = new Map();
  for (const path of files(src)) {
    const top = relative(src, path).split(sep)[0].replace(/\.rs$/, '');
    if (top === 'lib' || top === 'main') continue;
    if (!refs.has(top)) refs.set(top, new Set());
    for (const name of referenced(productionCode(readFileSync(path, 'utf8')))) {
      if (name !== top) refs.get(top).add(name);
    }
  }
  for (const [module, names] of refs) {
    graph.set(module, [...names].filter((n) => refs.has(n)));
  }
  const found = cycles(graph);
  for (const component of found) {
    failed = true;
    console.error(`${crate}: modules import each other in a cycle: ${component.join(', ')}`);
    for (const module of component) {
      const inCycle = graph.get(module).filter((n) => component.includes(n));
      console.error(`  ${module} → ${inCycle.join(', ')}`);
    }
  }
  if (found.length === 0) console.log(`${crate}: ${graph.size} modules, no import cycle`);
}
process.exit(failed ? 1 : 0);
