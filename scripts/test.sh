#!/usr/bin/env bash
# The whole test suite: format, lints, native core tests, the Worker build, a
# deploy dry run (with the bundle size), then integration tests that drive the
# built Worker in workerd over real HTTP and WebSockets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy (native and wasm32)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p tessera-functions -p tessera-objects --target wasm32-unknown-unknown -- -D warnings
step "the two Worker scripts' shared settings agree"
node scripts/shared-vars.mjs
step "no import cycles between a crate's modules"
node scripts/module-cycles.mjs
step "cargo test"
cargo test --workspace
step "browser app: API types, tsc, build with budgets"
node scripts/gen-api.mjs --check
tsc -p static
tsc -p static/sw
node scripts/build-web.mjs --force
step "build the Worker and the objects' script"
bash scripts/build.sh
step "wrangler deploy --dry-run (both scripts)"
rm -rf .tessera/dry-run
wrangler deploy --dry-run --outdir .tessera/dry-run/worker
wrangler deploy -c objects/wrangler.toml --dry-run --outdir "$PWD/.tessera/dry-run/objects"
node scripts/bundle-size.mjs .tessera/dry-run/worker .tessera/dry-run/objects
step "integration tests (workerd)"
# A test that fails with a client still connected must not hold the run open
# until CI's deadline: the runner exits when done, and each file (a process of
# its own here, so the deadline is the file's) has 15 minutes.
node --test --test-concurrency=1 --test-force-exit --test-timeout=900000 tests/*.test.mjs
step "browser tests (headless Chromium)"
# One process for all files: they share one Worker and one browser (tests/web/browser.mjs).
node --test --experimental-test-isolation=none --test-concurrency=1 --test-force-exit --test-timeout=240000 tests/web/*.test.mjs
