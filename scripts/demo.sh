#!/usr/bin/env bash
# Brings rcflow up on embedded defaults with demo data: PGlite for PostgreSQL (data in .rcflow/),
# the API and workers in one process, loopback agents. Finds Redis, or installs and starts one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

[ -d node_modules ] || npm install --no-audit --no-fund
ensure_redis
build_if_changed
export PGLITE_DIR="${PGLITE_DIR:-$RCFLOW_STATE_DIR/pglite}"
export DEMO=true
# The banner and its live transition lines are what the demo shows; LOG_LEVEL=info adds the logs.
export LOG_LEVEL="${LOG_LEVEL:-warn}"
export PORT="${PORT:-3000}"
log "starting rcflow on http://127.0.0.1:$PORT (Redis $REDIS_URL, database $PGLITE_DIR)"
exec node dist/apps/api/src/main.js
