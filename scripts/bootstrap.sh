#!/usr/bin/env bash
# Installs everything Tessera needs beyond Rust, Node 20, npm and Python 3. Idempotent and
# quick (a few seconds) when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  say "installing wasm-bindgen-cli $bindgen_version (about 3 minutes)"
  # Not --locked: its shipped lockfile pins a crate version the registry may not serve.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --force
fi

worker_build_version=$(awk '/^name = "worker"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ "$(worker-build --version 2>/dev/null)" != "$worker_build_version" ]; then
  say "installing worker-build $worker_build_version (about 3 minutes)"
  # Not --locked either: the same resolution as the one tested here.
  cargo install worker-build --version "$worker_build_version" --force
fi

# Installs the versions pinned in package-lock.json, only when it changed since
# the last install. `npm install` rather than `npm ci`: npm 11 writes lockfiles
# without the other platforms' optional workerd packages and then `npm ci`
# refuses them as out of sync; `npm install` honours the lockfile all the same.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm install --no-audit --no-fund
fi

# The browser tests drive Debian's headless Chromium (Playwright cannot download
# browsers here); the emoji font keeps reactions from rendering as boxes.
missing=()
[ -x /usr/bin/chromium-headless-shell ] || missing+=(chromium-headless-shell)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Schema fuzzing (tests/schema.test.mjs) runs schemathesis from a project-local
# virtualenv, with every package pinned; reinstalled when the pins change.
requirements=tests/schemathesis/requirements.txt
if [ ! -x .venv/bin/schemathesis ] || [ "$requirements" -nt .venv/.installed ]; then
  say "installing schemathesis into .venv (pinned in $requirements)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
  touch .venv/.installed
fi

# Local-only secrets for wrangler dev; deployed Workers get theirs from
# `wrangler secret put` and refuse to serve without them.
if [ ! -f .dev.vars ]; then
  say "writing .dev.vars with a random local JWT_SECRET"
  printf 'JWT_SECRET=%s\n' "$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')" > .dev.vars
fi
