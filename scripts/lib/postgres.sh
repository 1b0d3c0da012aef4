# Postgres helpers shared by scripts/test, scripts/chaos and scripts/bench.
# Requires a `say` function. Sets PG_BIN, PG_DIR, PG_PORT and PG_URL.

PG_DIR=""
pg_cleanup() {
  if [ -n "$PG_DIR" ]; then
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

pg_answers() { # url
  if command -v psql >/dev/null 2>&1; then
    psql "$1" -Atqc 'select 1' >/dev/null 2>&1
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

find_pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/bin /usr/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

PG_USER=""
# Runs a Postgres tool as the cluster's owner (initdb refuses to run as root).
pg_run() {
  if [ -n "$PG_USER" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

# Starts a throwaway cluster (installing Debian's postgresql package first when root
# and none is there). Returns non-zero when no Postgres can be had.
start_throwaway_cluster() {
  PG_BIN=$(find_pg_bin) || {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "no Postgres found; installing Debian's postgresql package"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      PG_BIN=$(find_pg_bin) || return 1
    else
      return 1
    fi
  }
  PG_DIR=$(mktemp -d /tmp/customer-list-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    PG_USER=postgres
    id "$PG_USER" >/dev/null 2>&1 || PG_USER=nobody
    chown -R "$PG_USER" "$PG_DIR"
  fi
  PG_PORT=55432
  while (exec 3<>/dev/tcp/127.0.0.1/$PG_PORT) 2>/dev/null; do PG_PORT=$((PG_PORT + 1)); done
  pg_run "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust >/dev/null
  pg_start
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  say "started a throwaway Postgres cluster on port $PG_PORT"
}

pg_start() {
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
}

pg_stop() {
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
}

# Runs psql (from PATH, else the machine's Postgres binaries) against a URL.
pg_psql() { # url args...
  local url=$1 psql
  shift
  psql=$(command -v psql || echo "$(find_pg_bin)/psql")
  "$psql" "$url" -qAt "$@"
}

# The URL of a database on the same server as $1, named $2.
pg_url_with_db() { # url name
  echo "${1%/*}/$2"
}
