#!/usr/bin/env bash
# rcflow benchmarks (issue 4): `npm run bench`, or `BENCH_QUICK=1 npm run bench` for a short run.
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG_URL to override) and redis-server on the PATH (a
# private one is started on a free port). Parameters: see the top of bench/bench.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "bench: redis-server is not installed" >&2; exit 1; }
# Builds when dist/ is missing or BENCH_BUILD=1; only warns when sources are newer (others may be
# mid-edit, and a build replaces dist/ under running tests).
if [ ! -f dist/apps/api/src/main.js ] || [ "${BENCH_BUILD:-0}" = 1 ]; then
  echo "bench: building rcflow (npm run build)" >&2
  npm run -s build
elif [ -n "$(find apps libs -name '*.ts' ! -name '*.spec.ts' -newer dist/apps/api/src/main.js -print -quit)" ]; then
  echo "bench: note: some sources are newer than dist/ (BENCH_BUILD=1 rebuilds first)" >&2
fi
exec node bench/bench.mjs "$@"
