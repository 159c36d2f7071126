#!/usr/bin/env bash
# Runs Tessera locally: wrangler dev on workerd with persistent local D1, R2 and
# Durable Objects under .wrangler/state; the Worker and the objects' script
# (objects/wrangler.toml) in one session.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
bash scripts/build.sh
wrangler d1 migrations apply DB --local
echo
echo "  Tessera: http://127.0.0.1:8787"
echo
exec wrangler dev -c wrangler.toml -c objects/wrangler.toml --ip 127.0.0.1 --port 8787 --test-scheduled "$@"
