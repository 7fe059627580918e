#!/usr/bin/env bash
# Measures the recorder on this machine with everything co-located: a private PostgreSQL, the simulator
# and the daemon. Prints and writes (results/bench-<time>.md, .csv, .png):
#   - the parser and COPY-encoder micro-benchmarks (messages/s on one thread, bytes allocated per message);
#   - case a: 50 symbols x bookTicker+aggTrade; case b: 200 symbols x bookTicker+aggTrade+depth@100ms.
#     Each ramps the offered rate until loss or lag appears (a fresh database per step) and reports
#     throughput, exchange-to-commit p50/p99/p99.9, CPU s per million messages, peak RSS, rows/s per
#     table and start-to-ready time;
#   - PostgreSQL's own COPY of the same rows from a file (psql), so throughput reads as a fraction of it.
#
#   ./scripts/bench.sh                        # both cases, default ramps
#   BENCH_CASES=a BENCH_SECONDS=20 ./scripts/bench.sh
#   BENCH_RATES_A="50000 100000" BENCH_RATES_B="10000 20000" ./scripts/bench.sh
#   BENCH_CASES=b BENCH_B_CHANNELS=bookTicker,aggTrade,depth@100ms,markPrice,forceOrder,openInterest ./scripts/bench.sh
#   BENCH_CASES="" BENCH_SOAK_SECONDS=600 BENCH_SOAK_RATE=50000 ./scripts/bench.sh   # memory over a long run
#   BENCH_BDN=1 ./scripts/bench.sh            # also the BenchmarkDotNet micro-benchmarks
#   BENCH_CASES="" BENCH_STORAGE_ROWS=30000000 ./scripts/bench.sh   # storage at scale: write rate as tables grow, view timings
#   BENCH_CASES="" BENCH_REPLAY_SECONDS=60 ./scripts/bench.sh   # spool a database outage of 60 s at BENCH_REPLAY_RATE, then time its replay and its peak RSS
#   BENCH_CASES="" BENCH_COST_RATES="0 2000 20000 100000" ./scripts/bench.sh   # cost at the rates users run (0: idle, connections open)
#   BENCH_TIER=timescaledb ./scripts/bench.sh  # the storage tier: postgres (default), timescaledb, timescaledb-apache, citus
#                                             # (needs the extension installed; citus runs a coordinator and two workers here)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$root/scripts/lib/pg.sh"
# shellcheck source=lib/build.sh
. "$root/scripts/lib/build.sh"

cases=${BENCH_CASES-"a b"}   # set but empty (BENCH_CASES="") runs no ramp, e.g. for a soak only
seconds=${BENCH_SECONDS:-10}
rates_a=${BENCH_RATES_A:-"20000 50000 100000 150000 200000 250000"}
rates_b=${BENCH_RATES_B:-"5000 10000 20000 40000 80000"}
work="$root/.local/bench"; mkdir -p "$work"
results="$root/results"; mkdir -p "$results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report="$results/bench-$stamp.md"; csv="$results/bench-$stamp.csv"; chart="$results/bench-$stamp.png"
sim_port=${BENCH_SIM_PORT:-9481}; http_port=${BENCH_HTTP_PORT:-9480}

obi_publish "$root"; bin=$OBI_BIN
# The daemon runs as the systemd unit runs it: two malloc arenas (see systemd/orderbook-ingestor.service).
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
# And with its 4 MB first GC generation (see the unit file).
export DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x400000}
# The tier's server(s), durable (synchronous_commit and fsync on), one data directory per tier.
tier=${BENCH_TIER:-postgres}
pg_port=${BENCH_PG_PORT:-54349}
timescale=("shared_preload_libraries = 'timescaledb'" "timescaledb.telemetry_level = off" "max_worker_processes = 32")
citus=("shared_preload_libraries = 'citus'" "citus.node_conninfo = 'sslmode=prefer'" "max_connections = 300")
citus_workers=()
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pg_stop_all; }
trap cleanup EXIT
case "$tier" in
  postgres) pg_start "$work/pg" "$pg_port" ;;
  timescaledb) pg_start "$work/pg-timescaledb" "$pg_port" "" "${timescale[@]}" ;;
  timescaledb-apache) pg_start "$work/pg-timescaledb-apache" "$pg_port" "" "${timescale[@]}" "timescaledb.license = 'apache'" ;;
  citus)
    for w in 1 2; do pg_start "$work/pg-citus-worker-$w" $((pg_port + w)) "" "${citus[@]}"; citus_workers+=($((pg_port + w))); done
    pg_start "$work/pg-citus" "$pg_port" "" "${citus[@]}" ;;
  *) echo "BENCH_TIER: '$tier' is not postgres, timescaledb, timescaledb-apache or citus" >&2; exit 2 ;;
esac
psql_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -Atqc "$2"; }
# fresh_db NAME: an empty database of this run's tier (on Citus: on every node, with the extension and the workers added).
fresh_db() {
  local port
  for port in "${citus_workers[@]}" "$PG_PORT"; do
    "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1
    "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc "CREATE DATABASE $1" >/dev/null
    [ "$tier" = citus ] && "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$1" -Atqc "CREATE EXTENSION citus" >/dev/null
  done
  if [ "$tier" = citus ]; then
    psql_q "$1" "SELECT citus_set_coordinator_host('127.0.0.1', $PG_PORT)" >/dev/null
    for port in "${citus_workers[@]}"; do psql_q "$1" "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null; done
  fi
  return 0
}
ledger() { curl -fs "http://127.0.0.1:$sim_port/sim/ledger" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Quantile q of the exchange-to-commit histogram, summed over tables: the upper edge of the bucket that holds it.
quantile() {
  awk -v q="$1" '/^orderbook_exchange_to_commit_seconds_bucket/{
      match($0, /,le="[^"]*"/); le=substr($0, RSTART+5, RLENGTH-6); c[le]+=$NF; if(!(le in seen)){order[n++]=le; seen[le]=1} }
    END{total=c["+Inf"]; if(total==0){print "-"; exit}
        for(i=0;i<n;i++) if(c[order[i]] >= q*total){ if(order[i]=="+Inf") print "> 30 s"; else printf "<= %g ms\n", order[i]*1000; exit } }'
}

# The same over a window: the histogram at its end ($3) less the histogram at its start ($2).
quantile_between() {
  { echo "$2" | sed 's/^orderbook_exchange_to_commit_seconds_bucket\(.*\) \([0-9.e+]*\)$/orderbook_exchange_to_commit_seconds_bucket\1 -\2/'; echo "$3"; } | quantile "$1"
}

{
  echo "# orderbook-ingestor benchmark, $stamp"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)."
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on the same host (durable commit: synchronous_commit and fsync on); simulator, daemon and database co-located."
  echo "Storage tier: **$tier**$([ "$tier" = citus ] && echo " (a coordinator and two workers on this host, $(psql_q postgres "SHOW citus.shard_count") shards per table)")."
  echo "Command: \`BENCH_CASES=\"$cases\" BENCH_SECONDS=$seconds ./scripts/bench.sh\`. $seconds s per step, a fresh database per step."
  echo
  echo '```'
  "$bin" bench --seconds 3
  echo '```'
} | tee "$report"
echo "case,offered,achieved,p50_ms,p99_ms,p999_ms,result" >"$csv"

# rows_written: from /metrics on stdin, the event rows committed (book_ticker, trades, depth_events).
rows_written() { awk '/^orderbook_rows_written_total\{table="(book_ticker|trades|depth_events|mark_price|liquidations)"/{s+=$2} END{print s+0}'; }

# start_simulator LOG ARGS... → the simulator in the background (its pid in $sim, killed at exit) on $sim_port,
# once it answers its ping.
start_simulator() {
  local log=$1; shift
  "$bin" simulate --port "$sim_port" "$@" >"$log" 2>&1 &
  sim=$!; pids+=("$sim")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$sim_port/fapi/v1/ping" >/dev/null 2>&1 && break; sleep 0.1; done
}

# run_step CASE RATE SYMBOLS CHANNELS → one table row; returns 1 on loss or lag.
run_step() {
  local case=$1 rate=$2 symbols=$3 channels=$4
  local events=$((rate * seconds)) streams
  # Subscriptions the simulator waits for: one per symbol and stream channel; with --symbols ALL forceOrder is the
  # single all-market stream, and openInterest is a REST poll.
  local per_symbol; per_symbol=$(echo "$channels" | tr ',' '\n' | grep -cvx 'forceOrder\|openInterest' || true)
  streams=$(( symbols * per_symbol ))
  if echo "$channels" | tr ',' '\n' | grep -qx forceOrder; then streams=$((streams + 1)); fi
  fresh_db bench
  rm -rf "$work/spool"
  start_simulator "$work/sim.log" --symbols "$symbols" --rate "$rate" --events "$events" --wait-streams "$streams"
  # Migrate first so that start-to-ready measures the start of a daemon whose database is reachable.
  ORDERBOOK_DATABASE="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench" "$bin" migrate --storage-tier "$tier" >/dev/null
  local launched; launched=$(date +%s%N)
  ORDERBOOK_DATABASE="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench" ORDERBOOK_SPOOL_DIRECTORY="$work/spool" \
    "$bin" --symbols ALL --channels "$channels" --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" \
    --http "127.0.0.1:$http_port" --summary-interval 0 --log-level Warning >"$work/daemon-$case-$rate.log" 2>&1 &
  local daemon=$!; pids+=("$daemon")
  local ready_ms="?"
  # orderbook_ready flips to 1 exactly when READY=1 goes to systemd: pipeline reading and flushing.
  for _ in $(seq 1 1000); do
    if curl -fs "http://127.0.0.1:$http_port/metrics" 2>/dev/null | grep -q '^orderbook_ready 1$'; then ready_ms=$(( ($(date +%s%N) - launched) / 1000000 )); break; fi
    sleep 0.01
  done
  for _ in $(seq 1 600); do [ "$(ledger generated || echo 0)" -gt 0 ] && break; sleep 0.1; done
  # Read load (the A/B below): one curl process keeping N requests in flight (no process per request, so the
  # harness's own CPU stays small), each asking the read API for 1000 rows of BTCUSDT from 30 s ago, bookTicker
  # and trades alternately, over and over until the step ends.
  local readers=()
  : >"$work/reads.log"
  if [ "${step_readers:-0}" -gt 0 ]; then
    local since; since=$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%SZ)
    : >"$work/reads.cfg"
    for i in $(seq 1 2000); do
      local type=book_ticker; [ $((i % 2)) = 0 ] && type=trades
      printf 'url = "http://127.0.0.1:%s/data/BTCUSDT?type=%s&from=%s&limit=1000"\noutput = /dev/null\n' "$http_port" "$type" "$since" >>"$work/reads.cfg"
    done
    # A polite client: a 429 is retried after its Retry-After (1 s), as curl --retry does.
    ( while :; do curl -s --no-progress-meter --retry 30 --retry-max-time 60 -Z --parallel-max "$step_readers" -K "$work/reads.cfg" \
        -w '%{http_code}\n' >>"$work/reads.log" 2>/dev/null; done ) &
    readers+=("$!"); pids+=("$!")
  fi
  local cpu0 t0 t1; cpu0=$(cpu_ticks "$daemon"); t0=$(date +%s.%N)
  # A deadline: three times the step's own length and 30 s more (a stuck simulator ends the step, not the run).
  local gen_deadline=$(( $(date +%s) + 3 * seconds + 30 ))
  while [ "$(ledger generated || echo 0)" -lt "$events" ] && [ "$(date +%s)" -lt "$gen_deadline" ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  local delivered stored=0 drain="> 10 s"
  delivered=$(ledger delivered || echo 0)
  for _ in $(seq 1 200); do
    stored=$(curl -fs "http://127.0.0.1:$http_port/metrics" | rows_written)
    if [ "$stored" -ge "$delivered" ]; then drain=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f s", b-a}'); break; fi
    sleep 0.05
  done
  local cpu1 metrics dropped p50 p99 p999 rss per_table achieved cpu_per_m ok per_second
  cpu1=$(cpu_ticks "$daemon")
  # Read again after the drain: a simulator behind its own rate may still have been sending. markPrice and
  # forceOrder run on its one-second clock, outside --events: what it generated of them is delivered too.
  delivered=$(ledger delivered || echo 0)
  per_second=$(ledger generatedPerSecond || echo 0)
  metrics=$(curl -fs "http://127.0.0.1:$http_port/metrics")
  dropped=$(ledger droppedSlowClients || echo "?")
  p50=$(echo "$metrics" | quantile 0.5); p99=$(echo "$metrics" | quantile 0.99); p999=$(echo "$metrics" | quantile 0.999)
  rss=$(awk '/VmHWM/{printf "%.0f MB", $2/1024}' "/proc/$daemon/status")
  per_table=$(echo "$metrics" | awk -v d="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
    '/^orderbook_rows_written_total\{table="(book_ticker|trades|depth_events|mark_price|liquidations)"/{match($0,/table="[^"]*"/); t=substr($0,RSTART+7,RLENGTH-8); printf "%s%s %.0f", sep, t, $2/d; sep=", "}')
  if [ "${#readers[@]}" -gt 0 ]; then
    pkill -P "${readers[0]}" curl 2>/dev/null; kill "${readers[@]}" 2>/dev/null; wait "${readers[@]}" 2>/dev/null || true
    reads_ok=$(grep -c '^200$' "$work/reads.log"); reads_busy=$(grep -c '^429$' "$work/reads.log")  # still 429 after the retries; reads_other=$(grep -vc '^200$\|^429$' "$work/reads.log")
  fi
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
  kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true
  local rows
  rows=$(psql_q bench "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades) + (SELECT count(*) FROM marketdata.depth_events)
                        + (SELECT count(*) FROM marketdata.mark_price) + (SELECT count(*) FROM marketdata.liquidations)")
  achieved=$(awk -v e="$events" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", e/(b-a)}')
  cpu_per_m=$(awk -v c0="$cpu0" -v c1="$cpu1" -v e="$events" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (c1-c0)/hz/(e/1e6)}')
  ok="zero loss"
  if [ "$rows" != "$delivered" ] || [ "$delivered" != "$((events + per_second))" ] || [ "$dropped" != 0 ] || [ "$drain" = "> 10 s" ]; then ok="LOSS/LAG"; fi
  if [ "$ok" = "zero loss" ] && awk -v d="$drain" 'BEGIN{split(d,a," "); exit !(a[1] > 2.0)}'; then ok="LAG"; fi
  # The simulator could not offer the rate (it shares the cores): not the daemon's limit; the ramp ends here.
  if [ "$ok" = "zero loss" ] && awk -v a="$achieved" -v r="$rate" 'BEGIN{exit !(a < 0.9 * r)}'; then ok="zero loss, simulator-bound"; fi
  printf '| %s | %s | %s/%s | %s | %s | %s | %s | %s | %s | %s | %s ms | %s | %s |\n' \
    "$rate" "$achieved" "$rows" "$events" "$dropped" "$drain" "$p50" "$p99" "$p999" "$cpu_per_m" "$rss" "$ready_ms" "$per_table" "$ok" | tee -a "$report"
  last_achieved=$achieved
  echo "$case,$rate,$achieved,${p50//[^0-9.]/},${p99//[^0-9.]/},${p999//[^0-9.]/},$ok" >>"$csv"
  [ "$ok" = "zero loss" ] || [ "$ok" = "zero loss, simulator-bound" ]
}

# PostgreSQL's own COPY of the same rows (case a's last database), from binary files, into empty
# tables shaped and indexed like the daemon's: the physical limit the daemon is compared with.
raw_copy() {
  # The same rows, exported from the last step's database, into a freshly migrated one: the same partitions
  # and indexes the daemon writes to (without the daemon's batch ledger and rollups, so this is the ceiling).
  psql_q bench "\\copy (SELECT * FROM marketdata.book_ticker) TO '$work/book_ticker.bin' WITH (FORMAT binary)" >/dev/null
  psql_q bench "\\copy (SELECT * FROM marketdata.trades) TO '$work/trades.bin' WITH (FORMAT binary)" >/dev/null
  fresh_db bench_raw
  "$bin" migrate --database "Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench_raw" --storage-tier "$tier" --log-level Warning >/dev/null
  raw_rows=$(psql_q bench "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)")
  t0=$(date +%s.%N)
  psql_q bench_raw "\\copy marketdata.book_ticker FROM '$work/book_ticker.bin' WITH (FORMAT binary)" >/dev/null
  psql_q bench_raw "\\copy marketdata.trades FROM '$work/trades.bin' WITH (FORMAT binary)" >/dev/null
  t1=$(date +%s.%N)
  raw_rate=$(awk -v r="$raw_rows" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", r/(b-a)}')
  fraction=$(awk -v d="${best_a:-0}" -v r="$raw_rate" 'BEGIN{printf "%.0f", 100*d/r}')
  {
    echo
    echo "## PostgreSQL's own COPY of the same rows"
    echo
    echo "psql \`\\copy ... FROM file (FORMAT binary)\` of $raw_rows book_ticker+trades rows into a freshly migrated database of the same tier ($tier: the same partitions, hypertables or distributed tables and indexes; no batch ledger or rollups): **$raw_rate rows/s**."
    echo "The daemon's highest achieved zero-loss rate in case a (${best_a:-0} msg/s, one row per message, while also receiving and parsing) is **$fraction %** of it."
  } | tee -a "$report"
}

for c in $cases; do
  if [ "$c" = a ]; then symbols=50; channels=bookTicker,aggTrade; rates=$rates_a; title="Case a: 50 symbols × bookTicker+aggTrade"
  else symbols=200; channels=${BENCH_B_CHANNELS:-bookTicker,aggTrade,depth@100ms}; rates=$rates_b; title="Case b: 200 symbols × ${channels//,/+}"; fi
  {
    echo; echo "## $title"; echo
    echo "| offered msg/s | achieved msg/s | stored/events | dropped | drain after last event | p50 | p99 | p99.9 | daemon CPU s / M msgs | peak RSS | start to READY | rows/s per table | result |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  } | tee -a "$report"
  best=0; best_achieved=0
  for rate in $rates; do
    if run_step "$c" "$rate" "$symbols" "$channels"; then best=$rate; best_achieved=$last_achieved; else break; fi
  done
  echo | tee -a "$report"
  echo "Highest offered rate with zero loss and no lag: **$best msg/s** (achieved $best_achieved msg/s)." | tee -a "$report"
  if [ "$c" = a ]; then best_a=$best_achieved; raw_copy; fi
  if [ "$c" = a ] && [ "${BENCH_READERS:-20}" -gt 0 ]; then
    # Reads never slow ingestion: the same step without and with concurrent /data readers (their own pool of 4, 429 beyond).
    read_rate=${BENCH_READ_RATE:-20000}
    {
      echo; echo "## Read load: case a at $read_rate msg/s, without and with ${BENCH_READERS:-20} concurrent /data readers"; echo
      echo 'One curl process keeps the readers'"'"' requests in flight: `/data/BTCUSDT?from=<30 s before the step>&limit=1000`, bookTicker and trades alternately, back to back for the whole step; a 429 is retried after its Retry-After (1 s).'; echo
      echo "| readers | offered msg/s | achieved msg/s | stored/events | dropped | drain after last event | p50 | p99 | p99.9 | daemon CPU s / M msgs | peak RSS | start to READY | rows/s per table | result |"
      echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    } | tee -a "$report"
    for n in 0 "${BENCH_READERS:-20}"; do
      step_readers=$n; reads_ok=0; reads_busy=0; reads_other=0
      printf '| %s ' "$n" | tee -a "$report"
      run_step a-readers-$n "$read_rate" 50 bookTicker,aggTrade || true
      [ "$n" -gt 0 ] && echo "Reads completed during the step: $reads_ok answered 200, $reads_busy still 429 after retrying, $reads_other other." | tee -a "$report"
    done
    step_readers=0
  fi
done

# Cost at the rates users actually run (case a's shape, default settings): daemon and PostgreSQL CPU over a steady
# window after a warm-up, per million rows, commits per second and exchange-to-commit latency. Rate 0 is idle:
# the market has stopped, connections stay open. BENCH_COST_RATES="" skips it.
cost_rates=${BENCH_COST_RATES-"0 2000 20000 100000"}
cost_window=${BENCH_COST_SECONDS:-20}
# Tiered compilation still recompiles hot methods for the first ~20 s (the JIT's methods counted at 2,000 msg/s);
# the window starts after it, as a daemon that runs for months is measured.
cost_warmup=${BENCH_COST_WARMUP:-30}
cost_csv="$results/bench-$stamp-cost.csv"; cost_chart="$results/bench-$stamp-cost.png"
# CPU ticks of the tier's server: the postmaster and its children (backends, walwriter, checkpointer, ...).
pg_ticks() {
  local pm; pm=$(head -1 "$PG_DATA/postmaster.pid")
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" '{ pid = $1; sub(/^.*\) /, ""); split($0, f, " ");
    if (f[2] == pm || pid == pm) s += f[12] + f[13] } END{print s+0}'
}
batches_total() { awk '/^orderbook_copy_batches_total\{table="(book_ticker|trades|depth_events)"/{s+=$2} END{print s+0}'; }
if [ -n "$cost_rates" ]; then
  {
    echo; echo "## Cost at the rates users run: 50 symbols × bookTicker+aggTrade, default settings"; echo
    echo "CPU over a ${cost_window} s window after a ${cost_warmup} s warm-up, from \`/proc/PID/stat\` (daemon) and the PostgreSQL cluster's processes. Rate 0: the simulator has stopped, connections open."; echo
    echo "| offered msg/s | rows/s | daemon CPU (% of a core) | daemon CPU-s / M rows | PostgreSQL CPU (% of a core) | PostgreSQL CPU-s / M rows | COPY commits/s | p50 | p99 |"
    echo "|---|---|---|---|---|---|---|---|---|"
  } | tee -a "$report"
  echo "offered,rows_per_s,daemon_pct,daemon_cpu_s_per_m,pg_pct,pg_cpu_s_per_m,commits_per_s,p50_ms,p99_ms" >"$cost_csv"
  for rate in $cost_rates; do
    fresh_db bench; rm -rf "$work/spool"
    gen_rate=$rate; gen_events=$((rate * (cost_window + cost_warmup + 30)))
    [ "$rate" = 0 ] && { gen_rate=2000; gen_events=4000; }
    start_simulator "$work/sim-cost.log" --symbols 50 --rate "$gen_rate" --events "$gen_events" --wait-streams 100
    ORDERBOOK_DATABASE="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench" "$bin" migrate --storage-tier "$tier" >/dev/null
    ORDERBOOK_DATABASE="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench" ORDERBOOK_SPOOL_DIRECTORY="$work/spool" \
      "$bin" --symbols ALL --channels bookTicker,aggTrade --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" \
      --http "127.0.0.1:$http_port" --summary-interval 0 --log-level Warning >"$work/daemon-cost-$rate.log" 2>&1 &
    daemon=$!; pids+=("$daemon")
    sleep "$cost_warmup"
    m0=$(curl -fs "http://127.0.0.1:$http_port/metrics" || true)
    c0=$(cpu_ticks "$daemon"); p0=$(pg_ticks); t0=$(date +%s.%N)
    sleep "$cost_window"
    c1=$(cpu_ticks "$daemon"); p1=$(pg_ticks); t1=$(date +%s.%N)
    m1=$(curl -fs "http://127.0.0.1:$http_port/metrics" || true)
    kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
    kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true
    line=$(awk -v r="$rate" -v c0="$c0" -v c1="$c1" -v p0="$p0" -v p1="$p1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
      -v w0="$(echo "$m0" | rows_written)" -v w1="$(echo "$m1" | rows_written)" -v b0="$(echo "$m0" | batches_total)" -v b1="$(echo "$m1" | batches_total)" \
      -v p50="$(quantile_between 0.5 "$m0" "$m1")" -v p99="$(quantile_between 0.99 "$m0" "$m1")" 'BEGIN{
        d = t1 - t0; rows = w1 - w0; dc = (c1 - c0) / hz; pc = (p1 - p0) / hz;
        dm = (rows > 0 ? sprintf("%.1f", dc / (rows / 1e6)) : "-"); pm = (rows > 0 ? sprintf("%.1f", pc / (rows / 1e6)) : "-");
        if (rows == 0) { p50 = "-"; p99 = "-" }
        printf "%s|%.0f|%.1f|%s|%.1f|%s|%.0f|%s|%s", r, rows / d, 100 * dc / d, dm, 100 * pc / d, pm, (b1 - b0) / d, p50, p99 }')
    IFS='|' read -r c_rate c_rows c_dpct c_dm c_ppct c_pm c_commits c_p50 c_p99 <<<"$line"
    echo "| $c_rate | $c_rows | $c_dpct % | $c_dm | $c_ppct % | $c_pm | $c_commits | $c_p50 | $c_p99 |" | tee -a "$report"
    echo "$c_rate,$c_rows,$c_dpct,$c_dm,$c_ppct,$c_pm,$c_commits,${c_p50//[^0-9.]/},${c_p99//[^0-9.]/}" >>"$cost_csv"
  done
  echo | tee -a "$report"
  echo "p50/p99 are over the same window, to the bucket's upper edge. Idle has no rows in the window, so its per-row figures are empty." | tee -a "$report"
fi

# Memory over a long run at a fixed rate (case a's shape): RSS and managed heap sampled every 30 s.
soak_seconds=${BENCH_SOAK_SECONDS:-0}
if [ "$soak_seconds" -gt 0 ]; then
  soak_rate=${BENCH_SOAK_RATE:-50000}
  fresh_db bench
  rm -rf "$work/spool"
  start_simulator "$work/sim-soak.log" --symbols 50 --rate "$soak_rate" --wait-streams 100
  ORDERBOOK_DATABASE="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench" ORDERBOOK_SPOOL_DIRECTORY="$work/spool" \
    "$bin" --symbols ALL --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" \
    --http "127.0.0.1:$http_port" --summary-interval 0 --log-level Warning >"$work/daemon-soak.log" 2>&1 &
  daemon=$!; pids+=("$daemon")
  {
    echo; echo "## Memory over ${soak_seconds} s at $soak_rate msg/s (50 symbols × bookTicker+aggTrade)"; echo
    echo "| elapsed | RSS | of which anonymous | of which file-backed | of which shared (JIT code) | managed heap | GC committed | JIT-compiled methods | rows written | buffered | buffer memory |"; echo "|---|---|---|---|---|---|---|---|---|---|---|"
  } | tee -a "$report"
  start=$(date +%s); samples=()
  while [ $(( $(date +%s) - start )) -lt "$soak_seconds" ]; do
    sleep 30
    m=$(curl -fs "http://127.0.0.1:$http_port/metrics" || true)
    rss=$(awk '/VmRSS/{print int($2/1024)}' "/proc/$daemon/status")
    anon=$(awk '/RssAnon/{print int($2/1024)}' "/proc/$daemon/status")
    file=$(awk '/RssFile/{print int($2/1024)}' "/proc/$daemon/status")
    shmem=$(awk '/RssShmem/{print int($2/1024)}' "/proc/$daemon/status")
    committed=$(echo "$m" | awk '/^orderbook_gc_committed_bytes/{printf "%d", $2/1048576}')
    jitted=$(echo "$m" | awk '/^orderbook_jit_compiled_methods_total/{printf "%d", $2}')
    heap=$(echo "$m" | awk '/^orderbook_gc_heap_bytes/{printf "%d", $2/1048576}')
    rows=$(echo "$m" | awk '/^orderbook_rows_written_total/{s+=$2} END{printf "%d", s}')
    buffered=$(echo "$m" | awk '/^orderbook_buffer_depth/{s+=$2} END{printf "%d", s}')
    buffer_mb=$(echo "$m" | awk '/^orderbook_buffer_bytes/{s+=$2} END{printf "%.1f", s/1048576}')
    samples+=("$rss")
    echo "| $(( $(date +%s) - start )) s | $rss MB | $anon MB | $file MB | $shmem MB | $heap MB | $committed MB | $jitted | $rows | $buffered | $buffer_mb MB |" | tee -a "$report"
  done
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true; kill "$sim" 2>/dev/null || true
  n=${#samples[@]}
  if [ "$n" -ge 4 ]; then
    # Flat: after the first third (warm-up), RSS grows by less than 0.2 MB per minute (least-squares slope);
    # 0.2 MB/min is ~290 MB a day, still too much for months, so the slope is printed as well.
    verdict=$(printf '%s\n' "${samples[@]}" | awk -v n="$n" '{v[NR]=$1} END{t=int(n/3); m=0; sx=0; sy=0; sxx=0; sxy=0;
      for(i=t+1;i<=n;i++){x=i*0.5; sx+=x; sy+=v[i]; sxx+=x*x; sxy+=x*v[i]; m++}
      slope=(m*sxy-sx*sy)/(m*sxx-sx*sx);
      printf "%s (%.2f MB per minute after the first third; %d MB to %d MB)", (slope < 0.2 ? "flat" : "GROWING"), slope, v[t+1], v[n]}')
    echo; echo "RSS over the run: **$verdict**." | tee -a "$report"
  fi
fi

# Spool replay: the database goes away for BENCH_REPLAY_SECONDS under load, the daemon spools it and stops; then a
# fresh daemon replays the spool with the database back. Reported: spool size, replay time and rate, peak RSS.
replay_seconds=${BENCH_REPLAY_SECONDS:-0}
if [ "$replay_seconds" -gt 0 ]; then
  replay_rate=${BENCH_REPLAY_RATE:-50000}
  fresh_db bench
  rm -rf "$work/spool"
  replay_db="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench;Timeout=3"
  ORDERBOOK_DATABASE=$replay_db "$bin" migrate --storage-tier "$tier" >/dev/null
  start_simulator "$work/sim-replay.log" --symbols 50 --rate "$replay_rate" --wait-streams 100
  ORDERBOOK_DATABASE=$replay_db ORDERBOOK_SPOOL_DIRECTORY="$work/spool" "$bin" --symbols ALL --ws-url "ws://127.0.0.1:$sim_port" \
    --rest-url "http://127.0.0.1:$sim_port" --http "127.0.0.1:$http_port" --summary-interval 0 --log-level Warning >"$work/daemon-replay-1.log" 2>&1 &
  daemon=$!; pids+=("$daemon")
  for _ in $(seq 1 600); do [ "$(ledger delivered || echo 0)" -gt 100000 ] && break; sleep 0.1; done
  pg_pause
  sleep "$replay_seconds"
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
  kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true
  spool_mb=$(du -sm "$work/spool" | cut -f1)
  pg_resume
  before=$(psql_q bench "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)")
  # Nothing to record now (the simulator is gone): the start replays the spool before it asks the exchange anything.
  ORDERBOOK_DATABASE=$replay_db ORDERBOOK_SPOOL_DIRECTORY="$work/spool" "$bin" --symbols BTCUSDT --ws-url "ws://127.0.0.1:1" \
    --rest-url "http://127.0.0.1:1" --http "127.0.0.1:$http_port" --summary-interval 0 --log-level Information >"$work/daemon-replay-2.log" 2>&1 &
  daemon=$!; pids+=("$daemon")
  t0=$(date +%s.%N)
  while ! grep -q "Spool replayed" "$work/daemon-replay-2.log"; do
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.2
  done
  t1=$(date +%s.%N)
  peak=$(awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$daemon/status" 2>/dev/null || echo "?")
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
  after=$(psql_q bench "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)")
  {
    echo; echo "## Spool replay after a ${replay_seconds} s database outage at $replay_rate msg/s offered"; echo
    echo "Command: \`BENCH_CASES=\"\" BENCH_REPLAY_SECONDS=$replay_seconds BENCH_REPLAY_RATE=$replay_rate ./scripts/bench.sh\`."; echo
    echo "| spool on disk | rows replayed | replay time | rows/s | daemon peak RSS while replaying |"; echo "|---|---|---|---|---|"
    awk -v mb="$spool_mb" -v r="$((after - before))" -v a="$t0" -v b="$t1" -v p="$peak" 'BEGIN{printf "| %d MB | %d | %.1f s | %.0f | %s MB |\n", mb, r, b-a, r/(b-a), p}'
  } | tee -a "$report"
fi

# Storage at scale: tens of millions of rows through the write path, then the views users query.
storage_rows=${BENCH_STORAGE_ROWS:-0}
if [ "$storage_rows" -gt 0 ]; then
  fresh_db bench_storage
  {
    echo; echo "## Storage at scale: $storage_rows rows (${BENCH_STORAGE_SYMBOLS:-200} symbols), through the daemon's write path"; echo
    echo "Command: \`BENCH_CASES=\"\" BENCH_STORAGE_ROWS=$storage_rows ./scripts/bench.sh\` (runs \`orderbook-ingestor bench-storage\`)."; echo
  } | tee -a "$report"
  "$bin" bench-storage --database "Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench_storage" \
    --rows "$storage_rows" --symbols "${BENCH_STORAGE_SYMBOLS:-200}" 2>&1 | tee -a "$report"
  psql_q postgres "DROP DATABASE IF EXISTS bench_storage WITH (FORCE)" >/dev/null 2>&1 || true
fi

# BenchmarkDotNet micro-benchmarks of the parser and the COPY row encoder (per message: time and bytes allocated).
if [ "${BENCH_BDN:-0}" = 1 ]; then
  { echo; echo "## BenchmarkDotNet"; echo; echo '```'; } >>"$report"
  dotnet run -c Release --project "$root/OrderBookIngestor.Benchmarks" -- --filter '*' 2>&1 | tee "$work/bdn.log" \
    | sed -n '/^| *Method/,/^$/p' | tee -a "$report"
  echo '```' >>"$report"
fi

# Throughput against p99 latency, one line per case.
if ! command -v gnuplot >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 || true
fi
drew_chart=0
if command -v gnuplot >/dev/null 2>&1 && [ "$(wc -l <"$csv")" -gt 1 ]; then
  # Only the cases that ran: an empty data file is a gnuplot warning in the report.
  plots=()
  for c in a b; do
    { grep "^$c," "$csv" || true; } | awk -F, '$5 != "" {print $3, $5}' >"$work/plot-$c.dat"
    [ -s "$work/plot-$c.dat" ] || continue
    case $c in
      a) title='case a: 50 symbols, bookTicker+aggTrade' ;;
      b) title='case b: 200 symbols, +depth@100ms' ;;
    esac
    plots+=("'$work/plot-$c.dat' with linespoints title '$title'")
  done
  if [ "${#plots[@]}" -gt 0 ]; then
    gnuplot <<EOF2
set terminal png size 900,500 noenhanced
set output '$chart'
set title 'orderbook-ingestor: throughput vs p99 exchange-to-commit latency ($(nproc) cores, all co-located)'
set xlabel 'achieved messages/s'; set ylabel 'p99 latency (ms, bucket upper edge)'
set grid; set key left top
plot $(IFS=,; echo "${plots[*]}")
EOF2
    echo | tee -a "$report"; echo "![throughput vs latency]($(basename "$chart"))" | tee -a "$report"
    drew_chart=1
  fi
fi
if command -v gnuplot >/dev/null 2>&1 && [ -n "$cost_rates" ] && [ "$(wc -l <"$cost_csv")" -gt 2 ]; then
  awk -F, 'NR > 1 && $4 != "-" && $2 > 0 {print $2, $4, $6}' "$cost_csv" >"$work/plot-cost.dat"
  gnuplot <<EOF3
set terminal png size 900,500 noenhanced
set output '$cost_chart'
set title 'orderbook-ingestor: CPU per million rows vs rate ($(nproc) cores, all co-located, default settings)'
set xlabel 'rows/s (log)'; set ylabel 'CPU seconds per million rows (log)'
set logscale xy; set grid; set key right top
plot '$work/plot-cost.dat' using 1:2 with linespoints title 'daemon', '$work/plot-cost.dat' using 1:3 with linespoints title 'PostgreSQL'
EOF3
  echo | tee -a "$report"; echo "![cost vs rate]($(basename "$cost_chart"))" | tee -a "$report"
fi
if [ "$drew_chart" = 0 ]; then
  echo "(no chart: gnuplot not available, or no ramp was run)" | tee -a "$report"
fi
echo; echo "written: $report, $csv${chart:+, $chart}"
