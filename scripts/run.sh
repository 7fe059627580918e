#!/usr/bin/env bash
# Builds the daemon and runs it. With no --database (and no ORDERBOOK_DATABASE) it starts a private
# PostgreSQL cluster under ./.local/pg (database "marketdata"). With --simulate it records from the
# built-in fake exchange into a database "simulated" that is recreated on every run.
#
#   ./scripts/run.sh --simulate                                      # offline demo
#   ./scripts/run.sh --symbols BTCUSDT,ETHUSDT --channels bookTicker,aggTrade   # live Binance USD-M
#   ./scripts/run.sh --stop                                          # stop the private cluster
# Every other flag goes to the daemon (see: ./scripts/run.sh --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$root/scripts/lib/pg.sh"
# shellcheck source=lib/build.sh
. "$root/scripts/lib/build.sh"

simulate=0; database=${ORDERBOOK_DATABASE:-}; have_symbols=0; args=()
sim_rate=${SIM_RATE:-2000}; sim_symbols=${SIM_SYMBOLS:-20}
pg_port=${ORDERBOOK_PG_PORT:-54329}; sim_port=${SIM_PORT:-9471}
while [ $# -gt 0 ]; do
  case "$1" in
    --simulate) simulate=1 ;;
    --database) database=$2; shift ;;
    --database=*) database=${1#*=} ;;
    --symbols|--symbols=*) have_symbols=1; args+=("$1") ;;
    --stop) pg_find_bin && PG_USER_OS=$(pg_server_user) && PG_DATA="$root/.local/pg" && pg_stop; echo "stopped"; exit 0 ;;
    --help|-h|--version) obi_publish "$root"; exec "$OBI_BIN" "$1" ;;
    *) args+=("$1") ;;
  esac
  shift
done

echo "building the trimmed single-file binary..." >&2
obi_publish "$root"

if [ -z "$database" ]; then
  pg_start "$root/.local/pg" "$pg_port"
  # Simulated data gets its own database, fresh each run: a restarted simulator reuses its ids, which a
  # real exchange never does, and live recordings in "marketdata" must not meet demo data.
  dbname=marketdata
  if [ "$simulate" = 1 ]; then
    dbname=simulated
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS simulated WITH (FORCE)" >/dev/null 2>&1
  fi
  pg_ensure_db "$dbname"
  database=$(pg_conn "$dbname")
  psql_hint="psql -h 127.0.0.1 -p $PG_PORT -U postgres $dbname"
else
  psql_hint="psql <your database>"
fi
# The connection string travels in the environment, never on the command line (ps shows flags).
export ORDERBOOK_DATABASE=$database
# The disk spool (used while the database is unavailable) lives with the rest of the local state.
export ORDERBOOK_SPOOL_DIRECTORY=${ORDERBOOK_SPOOL_DIRECTORY:-$root/.local/spool}

sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true; }
trap cleanup EXIT
if [ "$simulate" = 1 ]; then
  "$OBI_BIN" simulate --port "$sim_port" --symbols "$sim_symbols" --rate "$sim_rate" &
  sim_pid=$!
  for _ in $(seq 1 50); do
    curl -fs "http://127.0.0.1:$sim_port/fapi/v1/ping" >/dev/null 2>&1 && break
    sleep 0.1
  done
  args+=(--ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port")
  [ "$have_symbols" = 1 ] || args+=(--symbols ALL)
fi

cat >&2 <<EOF2
----------------------------------------------------------------------------
 orderbook-ingestor is starting${simulate:+ }$([ "$simulate" = 1 ] && echo "(simulated exchange on port $sim_port, $sim_rate events/s)")
 Look at the data:   $psql_hint
   e.g. SELECT s.symbol, count(*), max(b.ts_exchange) FROM marketdata.book_ticker b
        JOIN marketdata.symbols s ON s.id = b.symbol_id GROUP BY 1 ORDER BY 1;
 Health and metrics: curl -s 127.0.0.1:9470/health ; curl -s 127.0.0.1:9470/metrics
 Stop with Ctrl-C (buffers are flushed first); ./scripts/run.sh --stop stops the private database.
----------------------------------------------------------------------------
EOF2
# As the systemd unit does: two malloc arenas and a 4 MB first GC generation keep the resident set from creeping up
# or moving in steps (see the unit file).
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x400000} "$OBI_BIN" run "${args[@]}"
