#!/usr/bin/env bash
# Measures the recorder on this machine, everything co-located: a private PostgreSQL, the simulator and
# the daemon. Prints the parser/encoder micro-benchmarks, then ramps the offered rate for 50 symbols x
# bookTicker+aggTrade and reports, per step, whether every event was stored with no loss and no lag.
#   ./scripts/bench.sh                 # default ramp
#   BENCH_RATES="50000 100000" BENCH_SECONDS=20 ./scripts/bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$root/scripts/lib/pg.sh"
# shellcheck source=lib/build.sh
. "$root/scripts/lib/build.sh"

rates=${BENCH_RATES:-"20000 50000 80000 100000 130000 160000 200000"}
seconds=${BENCH_SECONDS:-10}
symbols=${BENCH_SYMBOLS:-50}
work="$root/.local/bench"; mkdir -p "$work"
sim_port=${BENCH_SIM_PORT:-9481}; http_port=${BENCH_HTTP_PORT:-9480}

obi_publish "$root"; bin=$OBI_BIN
pg_start "$work/pg" "${BENCH_PG_PORT:-54349}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pg_stop; }
trap cleanup EXIT
psql_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -Atqc "$2"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on the same host (synchronous_commit=off, fsync on)"
echo
"$bin" bench --seconds 3
echo
printf '| offered msg/s | achieved msg/s | events | stored | dropped | drain after last event | p99 exchange→commit | daemon CPU s / M msgs | daemon peak RSS | result |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'

ledger() { curl -fs "http://127.0.0.1:$sim_port/sim/ledger" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for rate in $rates; do
  events=$((rate * seconds))
  psql_q postgres "DROP DATABASE IF EXISTS bench WITH (FORCE)" >/dev/null 2>&1; psql_q postgres "CREATE DATABASE bench" >/dev/null
  "$bin" simulate --port "$sim_port" --symbols "$symbols" --rate "$rate" --events "$events" --wait-streams $((symbols * 2)) >"$work/sim.log" 2>&1 &
  sim=$!; pids+=("$sim")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$sim_port/fapi/v1/ping" >/dev/null 2>&1 && break; sleep 0.1; done
  ORDERBOOK_DATABASE="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bench" ORDERBOOK_SPOOL_DIRECTORY="$work/spool" \
    "$bin" --symbols ALL --ws-url "ws://127.0.0.1:$sim_port" --rest-url "http://127.0.0.1:$sim_port" \
    --http "127.0.0.1:$http_port" --summary-interval 0 --log-level Warning >"$work/daemon-$rate.log" 2>&1 &
  daemon=$!; pids+=("$daemon")
  # Wait for the market to start, then for the simulator to finish generating.
  for _ in $(seq 1 300); do [ "$(ledger generated || echo 0)" -gt 0 ] && break; sleep 0.1; done
  cpu0=$(cpu_ticks "$daemon"); t0=$(date +%s.%N)
  while [ "$(ledger generated || echo 0)" -lt "$events" ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  stored=0; drain="> 10 s"
  for i in $(seq 1 200); do
    stored=$(curl -fs "http://127.0.0.1:$http_port/metrics" | awk '/^orderbook_rows_written_total/{s+=$2} END{print s+0}')
    if [ "$stored" -ge "$events" ]; then drain=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f s", b-a}'); break; fi
    sleep 0.05
  done
  cpu1=$(cpu_ticks "$daemon")
  dropped=$(ledger droppedSlowClients || echo "?")
  metrics=$(curl -fs "http://127.0.0.1:$http_port/metrics")
  # p99 from the cumulative histogram buckets of both tables, as the upper edge of the bucket that holds it.
  p99=$(echo "$metrics" | awk '/^orderbook_exchange_to_commit_seconds_bucket/{
        match($0, /,le="[^"]*"/); le=substr($0, RSTART+5, RLENGTH-6); c[le]+=$NF; if(!(le in seen)){order[n++]=le; seen[le]=1} }
      END{total=c["+Inf"]; for(i=0;i<n;i++) if(c[order[i]] >= 0.99*total){ if(order[i]=="+Inf") print "> 30 s"; else printf "<= %g ms\n", order[i]*1000; exit } }')
  rss=$(awk '/VmHWM/{printf "%.0f MB", $2/1024}' "/proc/$daemon/status")
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null || true
  kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true
  rows=$(psql_q bench "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)")
  achieved=$(awk -v e="$events" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", e/(b-a)}')
  cpu_per_m=$(awk -v c0="$cpu0" -v c1="$cpu1" -v e="$events" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (c1-c0)/hz/(e/1e6)}')
  ok="zero loss"
  if [ "$rows" != "$events" ] || [ "$dropped" != 0 ] || [ "$drain" = "> 10 s" ]; then ok="LOSS/LAG"; fi
  if [ "$ok" = "zero loss" ] && awk -v d="$drain" 'BEGIN{split(d,a," "); exit !(a[1] > 2.0)}'; then ok="LAG"; fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$rate" "$achieved" "$events" "$rows" "$dropped" "$drain" "${p99:-?}" "$cpu_per_m" "$rss" "$ok"
done
