#!/usr/bin/env bash
# Finds Redis and PostgreSQL for rcflow, or installs and starts them (Debian, as root).
# Sourced by demo.sh and test.sh. Exports REDIS_URL and, with --postgres, PG_ADMIN_URL.
# test.sh also installs Debian's chromium for the web console's browser tests.
# A service that already answers is used as it is and never reconfigured.

RCFLOW_STATE_DIR="${RCFLOW_STATE_DIR:-$PWD/.rcflow}"
mkdir -p "$RCFLOW_STATE_DIR" && chmod 700 "$RCFLOW_STATE_DIR"   # PGlite data, audit key, agent credentials: this user's alone

log() { printf '[rcflow] %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "need to install $* but not running as root; install it and re-run"; return 1
  fi
  if [ ! -f "$RCFLOW_STATE_DIR/.apt-updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 && touch "$RCFLOW_STATE_DIR/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

redis_answers() { # host port
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout 2 redis-cli -h "$1" -p "$2" ping 2>/dev/null)" = PONG ]
  else
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2 && printf 'PING\r\n' >&3 && head -c5 <&3 | grep -q PONG" 2>/dev/null
  fi
}

ensure_redis_binary() {
  command -v redis-server >/dev/null 2>&1 || { log "installing redis-server (apt-get)"; apt_install redis-server; }
}

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then log "using REDIS_URL from the environment"; return 0; fi
  ensure_redis_binary || return 1
  if redis_answers 127.0.0.1 6379; then
    export REDIS_URL="redis://127.0.0.1:6379"; log "using the Redis already answering on 127.0.0.1:6379"; return 0
  fi
  # Our own Redis on its own port: append-only file on, noeviction, loopback only.
  local port=6389 dir="$RCFLOW_STATE_DIR/redis"
  mkdir -p "$dir"
  if ! redis_answers 127.0.0.1 $port; then
    log "starting redis-server on 127.0.0.1:$port (data in $dir)"
    redis-server --daemonize yes --bind 127.0.0.1 --port $port --dir "$dir" --appendonly yes \
      --maxmemory-policy noeviction --save '' --logfile "$dir/redis.log" >&2
    for _ in $(seq 1 50); do redis_answers 127.0.0.1 $port && break; sleep 0.1; done
  fi
  redis_answers 127.0.0.1 $port || { log "Redis did not start; see $dir/redis.log"; return 1; }
  export REDIS_URL="redis://127.0.0.1:$port"
}

# Debian's chromium for the web console's browser tests (driven by playwright-core; never a downloaded browser).
ensure_chromium() {
  if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then return 0; fi
  [ -x /usr/bin/chromium ] || { log "installing chromium (apt-get)"; apt_install chromium; }
  [ -x /usr/bin/chromium ] || { log "no /usr/bin/chromium: install Debian's chromium package"; return 1; }
}

pg_answers() { timeout 3 psql "$1" -tAc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if [ -n "${PG_ADMIN_URL:-}" ]; then return 0; fi
  command -v psql >/dev/null 2>&1 || { log "installing postgresql (apt-get)"; apt_install postgresql; }
  local url="postgres://postgres@127.0.0.1:5432/postgres"
  if ! pg_answers "$url"; then
    if [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then :; else
      log "installing postgresql (apt-get)"; apt_install postgresql || return 1
    fi
    local pgver
    pgver=$(ls /etc/postgresql | sort -n | tail -1)
    log "starting PostgreSQL $pgver"
    pg_ctlcluster --skip-systemctl-redirect "$pgver" main start >&2 || true
    for _ in $(seq 1 50); do pg_answers "$url" && break; sleep 0.2; done
    if ! pg_answers "$url"; then
      # Fresh Debian cluster: peer auth only; connect as the postgres OS user through the socket.
      if su postgres -c "psql -tAc 'select 1'" >/dev/null 2>&1; then
        su postgres -c "psql -tAc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
        url="postgres://postgres:postgres@127.0.0.1:5432/postgres"
      fi
    fi
  fi
  pg_answers "$url" || { log "PostgreSQL does not answer on 127.0.0.1:5432"; return 1; }
  export PG_ADMIN_URL="$url"
}

# The fingerprint of everything `npm run build` reads: sources, configs and the installed lockfile.
source_fingerprint() {
  { find apps libs -type f \( -name '*.ts' -o -name '*.tsx' -o -name '*.mjs' -o -name '*.css' -o -name '*.json' \) \
      -not -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum
    sha256sum package.json package-lock.json tsconfig.json tsconfig.build.json; } | sha256sum | cut -d' ' -f1
}

# Builds dist/ unless it was built from exactly these sources (the demo restarts in seconds).
build_if_changed() {
  local stamp=dist/.source-fingerprint now
  now="$(source_fingerprint)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$now" ]; then
    log "dist/ is up to date with the sources: not rebuilding"
    return
  fi
  log "building (sources changed since the last build)"
  npm run -s build
  printf '%s\n' "$now" >"$stamp"
}
