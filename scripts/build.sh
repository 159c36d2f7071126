#!/usr/bin/env bash
# Builds the Worker (functions/ → functions/build/). Skips when the build is newer
# than every source file, so wrangler's build hook costs nothing on restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

out=functions/build/worker/shim.mjs
if [ -f "$out" ] && [ -z "$(find core durable-objects functions/src Cargo.toml Cargo.lock */Cargo.toml -newer "$out" -type f 2>/dev/null | head -1)" ]; then
  exit 0
fi
# worker-build cannot download its wasm-opt here, so it runs without, and the
# module is optimised afterwards by binaryen's wasm-opt from npm (a JavaScript
# build: about a minute, for a module about 20% smaller gzipped — BENCHMARKS.md).
(cd functions && worker-build --release --no-opt)
wasm-opt -Oz --all-features functions/build/index_bg.wasm -o functions/build/index_bg.opt.wasm
mv functions/build/index_bg.opt.wasm functions/build/index_bg.wasm
