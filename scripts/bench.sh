#!/usr/bin/env bash
# Runs a benchmark from bench/ against a fresh build: `bash scripts/bench.sh chat|docs|files|notify|search [args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
bash scripts/build.sh
which="$1"
shift
node "bench/$which/run.mjs" "$@"
