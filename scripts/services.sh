#!/usr/bin/env bash
# Bring up what the test suite needs and print the environment for it (`eval "$(scripts/services.sh)"`).
#
# - PostgreSQL with Q3C: the server at DATABASE_URL when it answers; otherwise the machine's
#   local cluster on 127.0.0.1:5432, installed and started when missing. q3c is created in
#   template1 so every test database inherits it (q3c needs a superuser to create).
# - Redis: the server at REDIS_URL when it answers; otherwise a throwaway local one.
# - The science peers the tests compare against: solve-field with the Tycho-2 indexes,
#   source-extractor, siril-cli, the INDI simulators.
# Progress goes to stderr; only `export` lines go to stdout.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then log "need root to install $*; install them and re-run"; exit 1; fi
  if [ $apt_updated = 0 ]; then apt-get update -qq >&2; apt_updated=1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- science peers ----------------------------------------------------------------------
missing=()
have solve-field || missing+=(astrometry.net)
[ -e /usr/share/astrometry/index-tycho2-10.littleendian.fits ] || \
  [ -e /usr/share/astrometry/index-tycho2-10.bigendian.fits ] || missing+=(astrometry-data-tycho2)
have source-extractor || missing+=(source-extractor)
have siril-cli || missing+=(siril)
have indiserver || missing+=(indi-bin)
# libfaketime: the suite runs a second time with the clock moved ahead (scripts/test.sh).
have faketime || missing+=(faketime)
# Debian's Chromium: the portal's browser tests drive it with Playwright (never `playwright install`).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# wrk: bench/api_load.py drives the API with it from loopback.
have wrk || missing+=(wrk)
# dbus-python (under pyindi-client) builds from source against these.
for pkg in libdbus-1-dev libglib2.0-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

# --- PostgreSQL + Q3C -------------------------------------------------------------------
export PGOPTIONS="-c client_min_messages=warning"
pg_answers() { psql "$1" -XAtqc 'select 1' >/dev/null 2>&1; }
if [ -n "${DATABASE_URL:-}" ] && [[ "$DATABASE_URL" == postgres* ]] && pg_answers "$DATABASE_URL"; then
  db_url="$DATABASE_URL"
  log "using PostgreSQL at DATABASE_URL"
else
  if ! have pg_ctlcluster; then apt_install postgresql-15; fi
  cluster=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
    log "starting PostgreSQL $cluster"
    pg_ctlcluster --skip-systemctl-redirect "$cluster" main start >&2
  fi
  db_url="postgres://postgres@127.0.0.1:5432/${DATAS_PG_DB:-datas}"
fi
pg_admin_url="${db_url%/*}/postgres"
available=$(psql "$pg_admin_url" -XAtqc "select count(*) from pg_available_extensions where name='q3c'")
if [ "$available" = 0 ]; then
  major=$(psql "$pg_admin_url" -XAtqc "show server_version_num" | cut -c1-2)
  apt_install "postgresql-${major}-q3c"
fi
psql "${db_url%/*}/template1" -XAtqc 'create extension if not exists q3c' >/dev/null
db_name="${db_url##*/}"
if [ "$(psql "$pg_admin_url" -XAtqc "select count(*) from pg_database where datname='$db_name'")" = 0 ]; then
  psql "$pg_admin_url" -XAtqc "create database \"$db_name\"" >/dev/null
fi

# --- Redis ------------------------------------------------------------------------------
redis_answers() { have redis-cli && [ "$(redis-cli -u "$1" ping 2>/dev/null)" = PONG ]; }
redis_url="${REDIS_URL:-redis://127.0.0.1:6379/${DATAS_REDIS_DB:-0}}"
if ! redis_answers "$redis_url"; then
  have redis-server || apt_install redis-server
  log "starting a throwaway Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/datas-redis.log >&2
  for _ in $(seq 50); do redis_answers "$redis_url" && break; sleep 0.1; done
  redis_answers "$redis_url" || { log "Redis did not start (see /tmp/datas-redis.log)"; exit 1; }
fi

echo "export DATABASE_URL='$db_url'"
echo "export REDIS_URL='$redis_url'"
