# Shared by run.sh, test.sh and bench.sh: find or install PostgreSQL and run a private cluster.
# A private cluster listens on 127.0.0.1 only with trust auth for local connections; it is for this
# checkout's own use (demo, tests, benchmarks), never exposed.
# shellcheck shell=bash

pg_log() { printf '[pg] %s\n' "$*" >&2; }

# Sets PG_BIN to a directory holding initdb, pg_ctl and postgres; installs the distribution's server if needed.
pg_find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then PG_BIN=$d; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
    PG_BIN=$(dirname "$(command -v initdb)"); return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    pg_log "No PostgreSQL server binaries found. Install them (Debian: sudo apt-get install -y postgresql) or pass --database."
    return 1
  fi
  pg_log "No PostgreSQL server binaries found; installing the distribution's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2 || { pg_log "apt-get install postgresql failed"; return 1; }
  # The package starts a system cluster we do not use; leave it be, ours listens on its own port.
  pg_find_bin
}

# The OS user the server runs as: ourselves, or (as root, which PostgreSQL refuses) an unprivileged user.
pg_server_user() {
  if [ "$(id -u)" -ne 0 ]; then id -un; return; fi
  if id postgres >/dev/null 2>&1; then echo postgres; return; fi
  if ! id orderbook-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin orderbook-pg >&2 || return 1
  fi
  echo orderbook-pg
}

pg_as() {
  local user=$1; shift
  if [ "$(id -un)" = "$user" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

# pg_start DATADIR PORT [fast] [CONFIG_LINE...]  → starts (or reuses) a cluster; sets PG_DATA, PG_PORT, PG_USER_OS.
# "fast" is for throwaway test clusters only: starts empty, with fsync off (a crash of the OS could lose data;
# a crash of PostgreSQL itself cannot, since commits still wait for their WAL write). Every cluster keeps
# PostgreSQL's durable commit (synchronous_commit on): with it off, a PostgreSQL crash forgets the last batches
# the daemon already counted as committed. CONFIG_LINEs go into postgresql.conf when the cluster is created
# (shared_preload_libraries and the like). Several clusters can run at once; pg_stop_all stops them all.
PG_STARTED=()
pg_start() {
  local data=$1 port=$2 fast=${3:-}
  shift 2; [ $# -gt 0 ] && shift
  pg_find_bin || return 1
  PG_USER_OS=$(pg_server_user) || return 1
  mkdir -p "$data"
  data=$(cd "$data" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    chown "$PG_USER_OS" "$data"
    chmod 700 "$data"
    if ! pg_as "$PG_USER_OS" test -w "$data"; then
      # A parent directory (e.g. /root) is closed to the server's user: use a directory it can reach.
      local alt="/var/tmp/orderbook-ingestor/$(echo "$data" | md5sum | cut -c1-12)"
      pg_log "$data is not reachable by $PG_USER_OS; using $alt instead"
      mkdir -p "$alt"; chown "$PG_USER_OS" "$alt"; chmod 700 "$alt"; data=$alt
    fi
  fi
  PG_DATA=$data
  PG_PORT=$port
  if [ "$fast" = fast ] && [ -f "$data/PG_VERSION" ]; then
    # Throwaway (test) clusters start empty every time, wherever they live.
    pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    find "$data" -mindepth 1 -delete
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    pg_log "initialising a private cluster in $data"
    pg_as "$PG_USER_OS" "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >"$data.initdb.log" 2>&1 \
      || { cat "$data.initdb.log" >&2; return 1; }
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = ''"
      echo "max_connections = 100"
      if [ "$fast" = fast ]; then echo "shared_buffers = 128MB"; echo "fsync = off"; echo "full_page_writes = off"
      else echo "shared_buffers = 256MB"; fi
      echo "max_wal_size = 4GB"
      local line
      for line in "$@"; do echo "$line"; done
    } >>"$data/postgresql.conf"
  fi
  if grep -qx "synchronous_commit = off" "$data/postgresql.conf"; then
    # Written by earlier versions of this script; durable commit is what the daemon's exactly-once counts on.
    pg_log "turning durable commit back on in $data (synchronous_commit)"
    sed -i '/^synchronous_commit = off$/d' "$data/postgresql.conf"
    pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$data" reload >/dev/null 2>&1 || true
  fi
  if pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    pg_log "cluster in $data already running"
  else
    pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$data" -o "-p $port" -l "$data/server.log" -w -t 60 start >/dev/null \
      || { pg_log "PostgreSQL failed to start; its log:"; tail -n 30 "$data/server.log" >&2; return 1; }
  fi
  PG_STARTED+=("$data")
}

# Whether Debian's PostgreSQL has an extension's files (pg_available_extensions would list it).
pg_has_extension() {
  local major
  major=$("$PG_BIN/postgres" --version | awk '{print $3}' | cut -d. -f1)
  [ -f "/usr/share/postgresql/$major/extension/$1.control" ]
}

pg_stop_all() {
  local d
  for d in "${PG_STARTED[@]}"; do
    pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
  done
}

pg_stop() {
  [ -n "${PG_DATA:-}" ] || return 0
  pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
}

# pg_ensure_db NAME → creates the database if missing.
pg_ensure_db() {
  local name=$1
  if ! "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE \"$name\"" >/dev/null
  fi
}

pg_conn() { echo "Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$1"; }

# Stop and start the running cluster (outage tests).
pg_pause() { pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null; }
pg_resume() { pg_as "$PG_USER_OS" "$PG_BIN/pg_ctl" -D "$PG_DATA" -o "-p $PG_PORT" -l "$PG_DATA/server.log" -w -t 60 start >/dev/null; }
