#!/usr/bin/env bash
# Generates a migration from the entities against a scratch PostgreSQL database:
#   npm run migration:generate -- AddSomething
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: npm run migration:generate -- Name}"
source scripts/services.sh
ensure_postgres
db="rcflow_migrate_$$"
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $db"
trap 'psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db"' EXIT
npm run -s build
url="${PG_ADMIN_URL%/*}/$db"
DATABASE_URL="$url" npx typeorm migration:run -d dist/libs/database/src/data-source.js
DATABASE_URL="$url" npx typeorm migration:generate -d dist/libs/database/src/data-source.js "libs/database/src/migrations/$name"
echo "Add the new class to libs/database/src/migrations/index.ts"
