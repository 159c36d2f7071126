#!/usr/bin/env bash
# Builds the Worker (functions/ → functions/build/). Skips when the build is newer
# than every source file, so wrangler's build hook costs nothing on restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# The stamp is written last: a build interrupted before its wasm-opt (wrangler
# stopped mid-build) leaves none, and the next run builds again.
stamp=functions/build/.complete
if [ -f "$stamp" ] && [ -z "$(find core durable-objects functions/src Cargo.toml Cargo.lock */Cargo.toml .cargo scripts/build.sh -newer "$stamp" -type f 2>/dev/null | head -1)" ]; then
  exit 0
fi
rm -f "$stamp"
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
(cd functions && worker-build --release --no-opt)
wasm-opt -Oz --all-features functions/build/index_bg.wasm -o functions/build/index_bg.opt.wasm
mv functions/build/index_bg.opt.wasm functions/build/index_bg.wasm
touch "$stamp"
