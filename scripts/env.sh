# Sourced by the scripts: puts Node 22 (npm package `node`) and the project's
# tools first on PATH and points worker-build at local binaries, since it cannot
# download its own here.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export ESBUILD_BIN="$root/node_modules/.bin/esbuild"
export WRANGLER_SEND_METRICS=false
export NO_D1_WARNING=true
