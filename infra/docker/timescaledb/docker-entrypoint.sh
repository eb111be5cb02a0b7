#!/usr/bin/env bash
# Entrypoint of the local TimescaleDB stand-in image: the official postgres image's first-start
# steps, in short. On an empty $PGDATA: initdb with POSTGRES_USER as superuser and
# POSTGRES_PASSWORD (scram-sha-256 over the network, trust on the local socket), TimescaleDB
# preloaded, POSTGRES_DB created, the extension created in it and in template1 (as the official
# timescaledb image's init script does). Then the server becomes PID 1's child (exec).
set -Eeuo pipefail

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

psql_as_owner() {
  psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password "$@"
}

first_start() {
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "db: POSTGRES_PASSWORD is not set; the database would take any password" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  local pwfile
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '/var/run/postgresql'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
timescaledb.max_background_workers = 16
max_worker_processes = 32
CONF
  # Set up on the socket only: no client of the network sees a half-made database.
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql_as_owner --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for db in template1 "$POSTGRES_DB"; do
    psql_as_owner --dbname "$db" -c 'CREATE EXTENSION IF NOT EXISTS timescaledb;'
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "db: initialised $POSTGRES_DB (owner $POSTGRES_USER) with TimescaleDB"
}

if [ "${1:-}" = postgres ]; then
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    first_start
  fi
  shift
  exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
