#!/usr/bin/env bash
# Builds the two Worker scripts: `functions` (routes → functions/build/) and
# `objects` (the Durable Objects → objects/build/); `bash scripts/build.sh
# objects` builds one. Each is skipped when its build is newer than every source
# file, so wrangler's build hooks cost nothing on restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# worker-build cannot download its wasm-opt here, so it runs without, and the
# module is optimised afterwards by binaryen's wasm-opt from npm (a JavaScript
# build: about a minute, for a module about 20% smaller gzipped — BENCHMARKS.md).
# Panic messages name their source files, a dependency's by its path in this
# machine's cargo registry: the bundle carries `yrs-0.28.1/src/…` instead,
# shorter and with nothing of the machine that built it (added to the stack
# flag of .cargo/config.toml, not replacing it).
remap=""
for index in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  remap+=" --remap-path-prefix=$index="
done
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap# }"

crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(functions objects)
for crate in "${crates[@]}"; do
  # The stamp is written last: a build interrupted before its wasm-opt
  # (wrangler stopped mid-build) leaves none, and the next run builds again.
  stamp=$crate/build/.complete
  if [ -f "$stamp" ] && [ -z "$(find core durable-objects "$crate/src" Cargo.toml Cargo.lock */Cargo.toml .cargo scripts/build.sh -newer "$stamp" -type f 2>/dev/null | head -1)" ]; then
    continue
  fi
  rm -f "$stamp"
  (cd "$crate" && worker-build --release --no-opt)
  wasm-opt -Oz --all-features "$crate/build/index_bg.wasm" -o "$crate/build/index_bg.opt.wasm"
  mv "$crate/build/index_bg.opt.wasm" "$crate/build/index_bg.wasm"
  touch "$stamp"
done
