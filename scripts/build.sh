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
# wasm-opt is skipped: it is not on the registries this project can reach as a
# native binary, and opt-level="z" + LTO already keep the bundle far below the
# limits (see BENCHMARKS.md for the measured size).
(cd functions && worker-build --release --no-opt)
