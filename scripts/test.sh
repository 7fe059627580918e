#!/usr/bin/env bash
# The whole test suite, from a clean clone: starts private PostgreSQL servers (as an unprivileged OS user when
# run as root), runs the NUnit unit and integration tests against them, publishes the trimmed single-file
# binary and smoke-tests that binary end to end. Ends with one line: "N passed, N failed, N skipped".
#
# Servers: a plain PostgreSQL (the postgres tier; where TimescaleDB and Citus are installed, they are installed
# but not preloaded there, which is a case of its own), and, where the extension files are installed, one with
# TimescaleDB preloaded, one with TimescaleDB's Apache-only edition, and a Citus coordinator with two workers.
# With CI=true, a tier whose server is missing fails its tests instead of skipping them.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$root/scripts/lib/pg.sh"
# shellcheck source=lib/build.sh
. "$root/scripts/lib/build.sh"

work="$root/.local/test"
passed=0; failed=0; skipped=0
totals() { echo "$passed passed, $failed failed, $skipped skipped"; }

free_port() {
  local p
  for _ in $(seq 1 100); do
    # Below Linux's ephemeral range (32768+): a client connecting to a stopped server's port there can be
    # handed that same port as its own and connect to itself, and the server then cannot restart.
    p=$(( 20000 + RANDOM % 12000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo 0
}

rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pg_stop_all
}
trap cleanup EXIT

conn_at() { echo "Host=127.0.0.1;Port=$1;Username=postgres;Database=${2:-postgres}"; }
# start_server VAR DIR [CONFIG_LINE...]: a throwaway cluster whose admin connection goes into VAR.
start_server() {
  local var=$1 dir=$2 port; shift 2
  port=$(free_port)
  pg_start "$dir" "$port" fast "$@" || { echo "could not start the PostgreSQL server for $var"; failed=$((failed + 1)); return 1; }
  export "$var=$(conn_at "$port")"
  echo "  $var: 127.0.0.1:$port (data $PG_DATA)"
}

echo "== PostgreSQL servers for the tests"
citus_ports=()
if pg_find_bin && pg_has_extension timescaledb; then
  timescale=("shared_preload_libraries = 'timescaledb'" "timescaledb.telemetry_level = off" "max_worker_processes = 32")
  start_server ORDERBOOK_TEST_TIMESCALE "$work/pg-timescale" "${timescale[@]}"
  start_server ORDERBOOK_TEST_TIMESCALE_APACHE "$work/pg-timescale-apache" "${timescale[@]}" "timescaledb.license = 'apache'"
fi
if pg_find_bin && pg_has_extension citus; then
  # Four shards per table instead of 32: the first migrate distributes every partition of every table.
  citus=("shared_preload_libraries = 'citus'" "citus.node_conninfo = 'sslmode=prefer'" "max_connections = 300")
  for w in 1 2; do
    start_server CITUS_WORKER_$w "$work/pg-citus-worker-$w" "${citus[@]}" && citus_ports+=("127.0.0.1:$PG_PORT")
  done
  start_server ORDERBOOK_TEST_CITUS "$work/pg-citus" "${citus[@]}" "citus.shard_count = 4"
  export ORDERBOOK_TEST_CITUS_WORKERS
  ORDERBOOK_TEST_CITUS_WORKERS=$(IFS=,; echo "${citus_ports[*]}")
fi
# The plain server last: PG_PORT and PG_DATA name it for the smoke tests below.
if ! start_server ORDERBOOK_TEST_ADMIN "$work/pg"; then
  totals; exit 1
fi
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data $PG_DATA, OS user $PG_USER_OS)"

# --- NUnit: unit and integration -------------------------------------------------------------
echo "== dotnet test"
dotnet test "$root/OrderBookIngestor.Tests/OrderBookIngestor.Tests.csproj" -nologo \
  --logger "console;verbosity=normal" --logger "trx;LogFileName=tests.trx" --results-directory "$work/results" 2>&1 \
  | tee "$work/dotnet-test.log" | grep -E '^\s+(Passed|Failed|Skipped) |Error Message|Expected|But was|error' || true
trx="$work/results/tests.trx"
if [ ! -f "$trx" ]; then
  echo "dotnet test produced no results (build failure?); last lines of $work/dotnet-test.log:"
  tail -n 40 "$work/dotnet-test.log"
  failed=$((failed + 1))
else
  counter() { grep -o "<Counters [^>]*" "$trx" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  passed=$((passed + $(counter passed)))
  failed=$((failed + $(counter failed) + $(counter error) + $(counter timeout) + $(counter aborted)))
  # NUnit's ignored tests (a tier whose extension is not installed) are in "total" but not "executed";
  # TRX's notExecuted counter stays 0 for them, so count what was neither passed nor failed.
  not_run=$(( $(counter total) - $(counter executed) + $(counter notExecuted) ))
  skipped=$((skipped + not_run))
  echo "dotnet test: $(counter total) tests, $(counter passed) passed, $(counter failed) failed, $not_run skipped (a test that skips says why in the log above)"
fi

# --- Smoke test of the published binary ------------------------------------------------------
echo "== smoke test of the published single-file binary"
# Every check appends one line to checks.log ("ok", "FAIL" or "skip" and its name): scenarios run in subshells
# (each with its own deadline and its own processes), and the totals are counted from this file at the end.
checks_log="$work/checks.log"; : >"$checks_log"
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@" >>"$work/smoke.log" 2>&1; then echo "  ok   $name"; echo "ok $name" >>"$checks_log"
  else echo "  FAIL $name (see $work/smoke.log)"; echo "FAIL $name" >>"$checks_log"; fi
}
fail_check() { echo "  FAIL $1"; echo "FAIL $1" >>"$checks_log"; }
skip_check() { echo "  skip $1"; echo "skip $1" >>"$checks_log"; }
if ! obi_publish "$root"; then
  echo "  FAIL publish"; failed=$((failed + 1)); totals; exit 1
fi
bin=$OBI_BIN
psql_db() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d smoke -Atqc "$1"; }
pg_ensure_db smoke
export ORDERBOOK_DATABASE ORDERBOOK_SPOOL_DIRECTORY
ORDERBOOK_DATABASE=$(pg_conn smoke)
# Every daemon of the smoke test keeps its spool under the test's work directory, never in the checkout.
ORDERBOOK_SPOOL_DIRECTORY="$work/spool-smoke"

# start_simulator LOG ARGS...: the simulator on $sim_port (log in $work/LOG), its pid in SIM_PID; waits at most
# 10 s for it to answer a ping, and counts a failure when it does not.
start_simulator() {
  local log=$1; shift
  "$bin" simulate --port "$sim_port" "$@" >"$work/$log" 2>&1 &
  SIM_PID=$!; pids+=("$SIM_PID")
  wait_for 10 curl -fs "http://127.0.0.1:$sim_port/fapi/v1/ping" && return 0
  fail_check "the simulator did not answer on port $sim_port within 10 s ($work/$log)"; return 1
}
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds (0) or SECONDS pass (1). Output discarded.
wait_for() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}
# Trades of every symbol form one unbroken id range (0), or -1 when there are none.
contiguous="SELECT coalesce(sum(n), -1) FROM (SELECT max(agg_trade_id) - min(agg_trade_id) + 1 - count(*) AS n FROM marketdata.trades GROUP BY symbol_id) x"

scenario_cli() {
  size=$(stat -c %s "$bin")
  check "single file is at most 40 MB ($((size / 1024 / 1024)) MB)" test "$size" -le $((40 * 1024 * 1024))
  check "--version prints the version" bash -c "'$bin' --version | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+'"
  check "--help documents the flags (and every channel)" bash -c "'$bin' --help | grep -q -- '--symbols' && '$bin' --help | grep -q -- '--database' && '$bin' --help | grep -q 'depth@100ms'"
  check "a bad flag value exits non-zero with the setting named" bash -c "! '$bin' check --shards zero 2>'$work/bad.txt' && grep -q -- '--shards' '$work/bad.txt'"
  check "an unknown channel exits non-zero" bash -c "! '$bin' check --channels depth@1ms 2>/dev/null"
  check "migrate applies the schema" bash -c "'$bin' migrate | grep -q 'schema up to date'"
  check "migrate again is a no-op" bash -c "'$bin' migrate | grep -q '0 migration'"
  tier_named() { # hypertables are plain relations; partitioned tables are relkind p
    local out; out=$("$bin" migrate) || return 1
    echo "$out" | grep -Eq 'storage tier timescaledb' && return 0
    echo "$out" | grep -Eq 'storage tier (postgres|citus)' && [ "$(psql_db "SELECT relkind FROM pg_class WHERE oid = 'marketdata.book_ticker'::regclass")" = p ]
  }
  roles_granted() { "$bin" migrate --create-roles | grep -q 'roles orderbook_writer' && [ "$(psql_db "SELECT count(*) FROM pg_roles WHERE rolname IN ('orderbook_writer', 'orderbook_reader')")" = 2 ]; }
  tier_fixed() { ! "$bin" migrate --storage-tier timescaledb 2>"$work/tier.txt" && grep -q 'cannot change in place' "$work/tier.txt"; }
  check "migrate names the storage tier, and the event tables are partitioned or hypertables" tier_named
  check "migrate --create-roles grants orderbook_writer and orderbook_reader" roles_granted
  check "a database's tier cannot change in place (refused, reason given)" tier_fixed
}

scenario_end_to_end() {
  sim_port=$(free_port); http_port=$(free_port)
  start_simulator sim.log --symbols 3 --rate 5000 --events 10000 --seed 7 --wait-streams 6
  "$bin" --symbols BTCUSDT,ETHUSDT,BNBUSDT --shards 1 --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" \
    --http "127.0.0.1:$http_port" --summary-interval 1 >"$work/daemon.log" 2>&1 &
  daemon=$!; pids+=("$daemon")
  rows=0
  for _ in $(seq 1 600); do
    rows=$(psql_db "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)" 2>/dev/null || echo 0)
    [ "$rows" = 10000 ] && break
    sleep 0.1
  done
  check "daemon stored all 10000 simulated events (got $rows)" test "$rows" = 10000
  check "no duplicates" test "$(psql_db "SELECT count(*) - count(DISTINCT (symbol_id, update_id)) FROM marketdata.book_ticker")" = 0
  check "/health answers 200 with status" bash -c "curl -fs http://127.0.0.1:$http_port/health | grep -q '\"status\"'"
  check "/metrics exposes rows written" bash -c "curl -fs http://127.0.0.1:$http_port/metrics | grep -q '^orderbook_rows_written_total{table=\"trades\"} 5000$'"
  curl -fs "http://127.0.0.1:$http_port/metrics" >"$work/metrics.txt" || true
  missing_metrics=""
  for name in $(grep -ohE 'orderbook_[a-z_]+' "$root/monitoring/alerts.yml" "$root/monitoring/grafana-dashboard.json" | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
    grep -q "^# TYPE $name " "$work/metrics.txt" || missing_metrics="$missing_metrics $name"
  done
  check "every metric the dashboard and alerts use is exported${missing_metrics:+ (missing:$missing_metrics)}" test -z "$missing_metrics"
  check "the password never reaches the command line" bash -c "! tr '\0' ' ' </proc/$daemon/cmdline | grep -q 'Host='"
  # Socket completions inline (Hosting/SocketCompletions.cs): .NET then runs one epoll thread per core instead of
  # one per 30 cores, so on two or more cores there is more than one. One core cannot tell the two apart.
  epoll_threads=$(grep -lxF '.NET Sockets' /proc/"$daemon"/task/*/comm 2>/dev/null | wc -l)
  if [ "$(nproc)" -ge 2 ]; then
    check "socket completions run on the epoll threads ($epoll_threads of them on $(nproc) cores)" test "$epoll_threads" -ge 2
  else
    skip_check "socket completions run on the epoll threads (one core: one epoll thread either way)"
  fi
  rss_kb=$(awk '/VmHWM/{print $2}' "/proc/$daemon/status" 2>/dev/null || echo 0)
  # Judged only for a daemon that was recording: a daemon that never ran has a small RSS and may well exit 0.
  check "peak RSS stays small ($((rss_kb / 1024)) MB at 5000 msg/s, after recording all $rows events)" bash -c "[ '$rows' = 10000 ] && [ '$rss_kb' -lt $((200 * 1024)) ]"
  kill -TERM "$daemon"
  code=0; wait "$daemon" || code=$?
  check "SIGTERM drains and exits 0 (exit $code, after recording all $rows events)" bash -c "[ '$rows' = 10000 ] && [ '$code' = 0 ]"
  check "the log shows the ordered drain" grep -q "Stopped: 5000 book_ticker rows and 5000 trades" "$work/daemon.log"
  check "the periodic summary line is logged" grep -q "msgs .* rows book_ticker" "$work/daemon.log"
  # export from the trimmed binary (Parquet.Net inside it): a day still being recorded is refused, then exported partial.
  local from to
  from=$(psql_db "SELECT min(ts_exchange)::date FROM marketdata.book_ticker")
  to=$(psql_db "SELECT max(ts_exchange)::date + 1 FROM marketdata.book_ticker")
  check "export refuses a day still being recorded (exit 1, --allow-partial named)" bash -c \
    "'$bin' export --from $from --to $to --out '$work/export' >/dev/null 2>'$work/export.err'; [ \$? = 1 ] && grep -q -- '--allow-partial' '$work/export.err'"
  check "export --allow-partial writes every book_ticker row to Parquet, counted in the manifest" bash -c \
    "'$bin' export --from $from --to $to --out '$work/export' --allow-partial >'$work/export.log' 2>&1 \
     && [ \"\$(grep -A3 '\"table\": \"book_ticker\"' '$work/export/manifest.json' | grep -o '\"rows\": [0-9]*' | awk '{s+=\$2} END {print s}')\" = 5000 ]"
}

scenario_failed_starts() {
  # A start that cannot succeed ends at once, with one clear line and exit 2 (a setting to change), never a stack
  # trace and never exit 0 (systemd would count a clean exit).
  failed_start() { # failed_start NAME EXPECTED_TEXT ARGS... : exit 2, the text on one "Startup failed" line, no stack trace
    local name=$1 text=$2; shift 2
    local out="$work/failed-start-$name.log" code=0
    timeout 60 "$bin" --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" --summary-interval 0 "$@" >"$out" 2>&1 || code=$?
    [ "$code" = 2 ] && [ "$(grep -c 'Startup failed' "$out")" = 1 ] && grep -q -- "$text" "$out" && ! grep -qE '^\s+at |Unhandled exception' "$out"
  }
  sim_port=$(free_port)
  start_simulator sim-failed-start.log --symbols 3 --rate 100 --seed 7
  sim_failed=$SIM_PID
  pg_ensure_db failedstart
  check "a tier the server cannot give stops the start: exit 2, one line naming the fix" env ORDERBOOK_DATABASE="$(pg_conn failedstart)" bash -c \
    "$(declare -f failed_start); work='$work' bin='$bin' sim_port=$sim_port failed_start tier 'shared_preload_libraries\|not installed' --symbols BTCUSDT --http none --storage-tier citus"
  check "a database that does not exist stops the start: exit 2, one line with the SQLSTATE" env ORDERBOOK_DATABASE="$(pg_conn no_such_database)" bash -c \
    "$(declare -f failed_start); work='$work' bin='$bin' sim_port=$sim_port failed_start nodb '3D000' --symbols BTCUSDT --http none"
  check "a symbol the exchange does not list stops the start: exit 2, the symbol named" bash -c \
    "$(declare -f failed_start); work='$work' bin='$bin' sim_port=$sim_port failed_start symbol 'NOPEUSDT' --symbols BTCUSDT,NOPEUSDT --http none"
  check "an HTTP port in use stops the start: exit 2, one line" bash -c \
    "$(declare -f failed_start); work='$work' bin='$bin' sim_port=$sim_port failed_start port 'cannot listen' --symbols BTCUSDT --http 127.0.0.1:$sim_port"
  check "a read API on a public address without a token stops the start: exit 2, naming ORDERBOOK_API_TOKEN" env ORDERBOOK_DATABASE="$(pg_conn failedstart)" ORDERBOOK_API_TOKEN= bash -c \
    "$(declare -f failed_start); work='$work' bin='$bin' sim_port=$sim_port failed_start token 'ORDERBOOK_API_TOKEN' --symbols BTCUSDT --http 0.0.0.0:$(free_port)"
  check "an unknown flag exits 2" bash -c "'$bin' --no-such-flag >/dev/null 2>&1; [ \$? = 2 ]"
  kill "$sim_failed" 2>/dev/null || true
}

scenario_reload() {
  # SIGHUP: a running daemon re-reads its config file and starts recording a symbol it did not have.
  echo '{ "Ingestor": { "Symbols": ["BTCUSDT"], "Channels": ["bookTicker", "aggTrade"] } }' >"$work/reload.json"
  sim_port=$(free_port); http_port=$(free_port)
  pg_ensure_db reload
  start_simulator sim-reload.log --symbols 3 --rate 2000 --seed 8
  # --default-signal: a suite started under nohup (as CI may be) passes SIGHUP on ignored, and .NET then never
  # delivers it to the daemon's handler (a systemd service starts with default dispositions).
  ORDERBOOK_DATABASE=$(pg_conn reload) ORDERBOOK_SPOOL_DIRECTORY="$work/spool-reload" env --default-signal=HUP "$bin" --config "$work/reload.json" --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" \
    --http "127.0.0.1:$http_port" --summary-interval 0 >"$work/daemon-reload.log" 2>&1 &
  daemon=$!; pids+=("$daemon")
  reload_rows() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d reload -Atqc \
    "SELECT count(*) FROM marketdata.book_ticker b JOIN marketdata.symbols s ON s.id = b.symbol_id WHERE s.symbol = '$1'" 2>/dev/null || echo 0; }
  for _ in $(seq 1 200); do [ "$(reload_rows BTCUSDT)" -gt 0 ] && break; sleep 0.1; done
  sed -i 's/\["BTCUSDT"\]/["BTCUSDT", "ETHUSDT"]/' "$work/reload.json"
  kill -HUP "$daemon"
  for _ in $(seq 1 200); do [ "$(reload_rows ETHUSDT)" -gt 0 ] && break; sleep 0.1; done
  # The daemon's own account of the reload goes into the check's line: a failure then says how far it got.
  check "SIGHUP adds a symbol on the running daemon ($(reload_rows ETHUSDT) ETHUSDT rows; log: $(grep -o 'Reload.*' "$work/daemon-reload.log" | tail -1 | cut -c1-100))" \
    bash -c "[ $(reload_rows ETHUSDT) -gt 0 ] && kill -0 $daemon"
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
}

scenario_daemon_killed() {
  # SIGKILL while the market keeps trading: the next start backfills the trades and records the rest as gaps.
  sim_port=$(free_port); http_port=$(free_port)
  pg_ensure_db crash
  crash_db=$(pg_conn crash)
  crash_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d crash -Atqc "$1" 2>/dev/null || echo 0; }
  start_simulator sim-crash.log --symbols 2 --rate 2000 --seed 9 --all-streams
  start_crash_daemon() {
    ORDERBOOK_DATABASE=$crash_db ORDERBOOK_SPOOL_DIRECTORY="$work/spool-crash" "$bin" --symbols BTCUSDT,ETHUSDT --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" \
      --http "127.0.0.1:$http_port" --summary-interval 0 >>"$work/daemon-crash.log" 2>&1 &
    daemon=$!; pids+=("$daemon")
  }
  start_crash_daemon
  for _ in $(seq 1 200); do [ "$(crash_q "SELECT count(*) FROM marketdata.trades")" -gt 1000 ] && break; sleep 0.1; done
  kill -KILL "$daemon"; wait "$daemon" 2>/dev/null || true
  sleep 1
  start_crash_daemon
  for _ in $(seq 1 300); do
    [ "$(crash_q "SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'daemon_down'")" -ge 2 ] && [ "$(crash_q "$contiguous")" = 0 ] \
      && [ "$(crash_q "SELECT count(*) FROM marketdata.trades WHERE is_backfilled")" -gt 0 ] && break
    sleep 0.1
  done
  check "after SIGKILL, the trades missed while down are backfilled ($(crash_q "SELECT count(*) FROM marketdata.trades WHERE is_backfilled") rows) and ids are contiguous" \
    test "$(crash_q "$contiguous")" = 0
  check "after SIGKILL, each bookTicker stream has a daemon_down gap and nothing is stored inside it" bash -c "[ \"$(crash_q "SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'daemon_down' AND stream LIKE '%@bookTicker'")\" = 2 ] \
    && [ \"$(crash_q "SELECT count(*) FROM marketdata.feed_gaps g JOIN marketdata.book_ticker b ON b.symbol_id = g.symbol_id AND b.ts_exchange > g.gap_start AND b.ts_exchange < g.gap_end WHERE g.reason = 'daemon_down'")\" = 0 ]"
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
}

scenario_database_outage() {
  # The database stopped for 30 s under load, the daemon SIGTERM'd during the outage and started again:
  # what the database could not take goes to the disk spool, the stop is quick and clean, the restart replays it.
  sim_port=$(free_port); http_port=$(free_port)
  pg_ensure_db outage
  out_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d outage -Atqc "$1" 2>/dev/null || echo 0; }
  start_simulator sim-outage.log --symbols 3 --rate 5000 --seed 10
  spool_dir="$work/spool-outage"
  start_outage_daemon() {
    ORDERBOOK_DATABASE="$(pg_conn outage);Timeout=3" ORDERBOOK_SPOOL_DIRECTORY=$spool_dir "$bin" --symbols ALL --ws-url "ws://127.0.0.1:$sim_port" \
      --rest-url "http://127.0.0.1:$sim_port" --http "127.0.0.1:$http_port" --summary-interval 5 >>"$work/daemon-outage.log" 2>&1 &
    daemon=$!; pids+=("$daemon")
  }
  start_outage_daemon
  for _ in $(seq 1 200); do [ "$(out_q "SELECT count(*) FROM marketdata.trades")" -gt 3000 ] && break; sleep 0.1; done
  pg_pause
  outage_start=$(date +%s)
  sleep 5
  stop_start=$(date +%s%N)
  kill -TERM "$daemon"; code=0; wait "$daemon" || code=$?
  stop_ms=$(( ($(date +%s%N) - stop_start) / 1000000 ))
  spooled=$(find "$spool_dir" -name '*.spool' -size +0 | wc -l)
  check "SIGTERM during a database outage exits 0 in ${stop_ms} ms with the unwritten batches spooled ($spooled segments)" \
    bash -c "[ $code = 0 ] && [ $stop_ms -lt 30000 ] && [ $spooled -gt 0 ]"
  remaining=$(( 30 - ($(date +%s) - outage_start) ))
  [ "$remaining" -gt 0 ] && sleep "$remaining"
  pg_resume
  restarted=$(date +%s.%N)
  start_outage_daemon
  # Settled: the spool replayed, live trades of every symbol stored, and the ids contiguous again. The live trades
  # after the stop's gap are stored before its backfill, so the ids are briefly not contiguous; right after the
  # replay, before the first live batch, they are. One run's wait ended in that window and its check failed, with
  # the ids, looked at afterwards, contiguous and unique.
  for _ in $(seq 1 300); do
    [ -z "$(find "$spool_dir" -name '*.spool' -size +0)" ] \
      && [ "$(out_q "SELECT count(DISTINCT symbol_id) FROM marketdata.trades WHERE ts_ingest > to_timestamp($restarted)")" = 3 ] \
      && [ "$(out_q "$contiguous")" = 0 ] && break
    sleep 0.1
  done
  check "after the outage the spool is replayed and removed" test -z "$(find "$spool_dir" -name '*.spool' -size +0)"
  check "trades stay contiguous and unique across the outage and the restart" bash -c "[ \"$(out_q "$contiguous")\" = 0 ] \
    && [ \"$(out_q "SELECT count(*) - count(DISTINCT (symbol_id, agg_trade_id)) FROM marketdata.trades")\" = 0 ] \
    && [ \"$(out_q "SELECT count(*) - count(DISTINCT (symbol_id, update_id)) FROM marketdata.book_ticker")\" = 0 ]"
  check "the replay is in the log" grep -q "Spool replayed" "$work/daemon-outage.log"
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
}

scenario_postgres_killed() {
  # PostgreSQL itself killed with SIGKILL (postmaster and every backend) in the middle of the load, then restarted
  # (crash recovery): with durable commit, every batch the daemon counted as committed survived, and what failed
  # went to the spool and was replayed: every event the simulator sent is stored exactly once.
  sim_port=$(free_port); http_port=$(free_port)
  pg_ensure_db pgcrash
  crash_pg_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d pgcrash -Atqc "$1" 2>/dev/null || echo 0; }
  start_simulator sim-pgcrash.log --symbols 3 --rate 4000 --events 60000 --seed 12 --wait-streams 6
  ORDERBOOK_DATABASE="$(pg_conn pgcrash);Timeout=3" ORDERBOOK_SPOOL_DIRECTORY="$work/spool-pgcrash" "$bin" --symbols ALL --ws-url "ws://127.0.0.1:$sim_port" \
    --rest-url "http://127.0.0.1:$sim_port" --http "127.0.0.1:$http_port" --summary-interval 5 >"$work/daemon-pgcrash.log" 2>&1 &
  daemon=$!; pids+=("$daemon")
  for _ in $(seq 1 300); do [ "$(crash_pg_q "SELECT count(*) FROM marketdata.trades")" -gt 5000 ] && break; sleep 0.1; done
  postmaster=$(head -n 1 "$PG_DATA/postmaster.pid")
  pkill -KILL -P "$postmaster"; kill -KILL "$postmaster"
  sleep 3
  pg_resume 2>/dev/null   # crash recovery; pg_ctl notes the stale postmaster.pid
  delivered=0
  for _ in $(seq 1 600); do
    delivered=$(curl -fs "http://127.0.0.1:$sim_port/sim/ledger" | grep -o '"delivered":[0-9]*' | cut -d: -f2)
    [ "${delivered:-0}" = 60000 ] && [ "$(crash_pg_q "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)")" = 60000 ] && break
    sleep 0.1
  done
  check "PostgreSQL killed with SIGKILL mid-load and restarted: all $delivered events stored exactly once" bash -c "[ '$delivered' = 60000 ] \
    && [ \"$(crash_pg_q "SELECT (SELECT count(DISTINCT (symbol_id, update_id)) FROM marketdata.book_ticker) + (SELECT count(DISTINCT (symbol_id, agg_trade_id)) FROM marketdata.trades)")\" = 60000 ] \
    && [ \"$(crash_pg_q "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)")\" = 60000 ]"
  check "the daemon rode out the crash (still running, spooled and replayed)" bash -c "kill -0 $daemon && grep -q 'Spool replayed' '$work/daemon-pgcrash.log'"
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
}

scenario_tools() {
  check "quarantine list on an empty quarantine says so" bash -c "ORDERBOOK_QUARANTINE_DIRECTORY='$work/quarantine-empty' '$bin' quarantine list | grep -q '^0 batch(es), 0 rows'"
  if command -v promtool >/dev/null 2>&1; then
    check "promtool accepts the alert rules" promtool check rules "$root/monitoring/alerts.yml"
    check "promtool accepts the /metrics exposition (no lint either)" bash -c "promtool check metrics <'$work/metrics.txt'"
  else
    skip_check "promtool accepts the alert rules (Debian's prometheus package is not installed)"
    skip_check "promtool accepts the /metrics exposition (Debian's prometheus package is not installed)"
  fi
}

scenario_install() {
  stage="$work/install-root"
  check "install.sh stages binary, unit, config and a 0640 secrets file" bash -c "'$root/scripts/install.sh' --root '$stage' --binary '$bin' --no-systemctl >/dev/null \
    && test -x '$stage/usr/local/bin/orderbook-ingestor' && test -f '$stage/etc/systemd/system/orderbook-ingestor.service' \
    && test -f '$stage/etc/orderbook-ingestor/appsettings.json' && test \$(stat -c %a '$stage/etc/orderbook-ingestor/environment') = 640"
  echo '{"Ingestor":{"Shards":3}}' >"$stage/etc/orderbook-ingestor/appsettings.json" 2>/dev/null || true
  check "install.sh again is idempotent and keeps the operator's config" bash -c "'$root/scripts/install.sh' --root '$stage' --binary '$bin' --no-systemctl >/dev/null \
    && grep -q '\"Shards\":3' '$stage/etc/orderbook-ingestor/appsettings.json'"
  check "uninstall.sh removes the service and keeps configuration" bash -c "'$root/scripts/uninstall.sh' --root '$stage' --no-systemctl >/dev/null \
    && test ! -e '$stage/usr/local/bin/orderbook-ingestor' && test -f '$stage/etc/orderbook-ingestor/environment'"
  check "uninstall.sh --purge removes configuration too" bash -c "'$root/scripts/uninstall.sh' --root '$stage' --no-systemctl --purge >/dev/null && test ! -e '$stage/etc/orderbook-ingestor'"
  if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$work/unit"
    sed "s|/usr/local/bin/orderbook-ingestor|$bin|" "$root/systemd/orderbook-ingestor.service" >"$work/unit/orderbook-ingestor.service"
    check "systemd-analyze verify accepts the unit" systemd-analyze verify "$work/unit/orderbook-ingestor.service"
  else
    skip_check "systemd-analyze verify (systemd not installed)"
  fi
}

# run_scenario NAME SECONDS: scenario_NAME in a subshell of its own process group, so that a scenario over its
# deadline is stopped whole (daemons and simulators included) and counted as one failure.
run_scenario() {
  local name=$1 limit=$2 pid deadline
  echo "-- $name (deadline ${limit}s)"
  set -m
  ( set +m; trap 'kill $(jobs -p) 2>/dev/null' EXIT; "scenario_$name" ) &
  pid=$!
  set +m
  deadline=$(( $(date +%s) + limit ))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      kill -TERM -- "-$pid" 2>/dev/null; sleep 2; kill -KILL -- "-$pid" 2>/dev/null
      fail_check "scenario $name went over its ${limit}s deadline"
      break
    fi
    sleep 0.5
  done
  wait "$pid" 2>/dev/null || true
}

run_scenario cli 120
run_scenario end_to_end 180
run_scenario failed_starts 180
run_scenario reload 90
run_scenario daemon_killed 150
run_scenario database_outage 240
run_scenario postgres_killed 240
run_scenario tools 60
run_scenario install 60

smoke_ok=$(grep -c '^ok ' "$checks_log"); smoke_failed=$(grep -c '^FAIL ' "$checks_log"); smoke_skipped=$(grep -c '^skip ' "$checks_log")
passed=$((passed + smoke_ok)); failed=$((failed + smoke_failed)); skipped=$((skipped + smoke_skipped))
# CI keeps only the tail of this output, so the failures are repeated here, each test with the first lines
# of its message, just above the totals.
if [ "$failed" -gt 0 ]; then
  echo
  echo "== failures"
  [ -f "$work/dotnet-test.log" ] && awk '
    /^[[:space:]]+Failed / { show = 1; lines = 0; print; next }
    /^[[:space:]]+(Passed|Skipped) |Stack Trace:|Standard Output Messages:/ { show = 0 }
    show && lines < 12 { print; lines++ }' "$work/dotnet-test.log"
  grep '^FAIL ' "$checks_log" || true
fi
echo
totals
[ "$failed" -eq 0 ]
