#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (real PostgreSQL and Redis) and end to end
# (real api and worker processes). Each run gets its own database and Redis key prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

[ -d node_modules ] || npm install --no-audit --no-fund
ensure_redis
ensure_redis_binary   # tests start private redis-servers to kill them
ensure_postgres
ensure_chromium       # the web console's end-to-end tests drive headless Chromium
npm run -s typecheck  # jest (swc) strips types without checking them
npm run -s build      # e2e tests start the compiled apps, as a user would

export RCFLOW_TEST_RUN="t$(date +%s)_$$"
export NODE_OPTIONS="${NODE_OPTIONS:-} --max-old-space-size=4096"
# The last guard: a run that hangs (a hook stuck past its timeout, a child holding jest) ends
# with exit 124 instead of keeping CI waiting. Leaked handles after the run are the exit guard's
# (test/support/exit-guard-reporter.js); this bounds everything else.
exec timeout --kill-after=30 "${RCFLOW_TEST_TIMEOUT_SECONDS:-3600}" npx jest --runInBand "$@"
