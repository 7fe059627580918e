#!/usr/bin/env bash
# How fast `export` writes a recorded day, and how large its files are beside the tables they come from.
#
# Loads BENCH_EXPORT_ROWS rows (2/3 book_ticker, 1/3 trades, over BENCH_EXPORT_SYMBOLS symbols, from yesterday 00:00
# UTC to now) into a private PostgreSQL through the daemon's own write path (bench-storage), then exports yesterday
# as Parquet (zstd, then snappy) and as CSV (gzip), each into an empty directory, and once more to time a re-run that
# finds every file unchanged. Prints figures only.
#
#   ./scripts/bench-export.sh                          # 6 M rows over 50 symbols
#   BENCH_EXPORT_ROWS=30000000 ./scripts/bench-export.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$root/scripts/lib/pg.sh"
# shellcheck source=lib/build.sh
. "$root/scripts/lib/build.sh"

rows=${BENCH_EXPORT_ROWS:-6000000}
symbols=${BENCH_EXPORT_SYMBOLS:-50}
work="$root/.local/bench-export"
port=${BENCH_PG_PORT:-55498}

obi_publish "$root"; bin=$OBI_BIN
pg_start "$work/pg" "$port" fast
trap pg_stop_all EXIT
"$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc "DROP DATABASE IF EXISTS exportbench" >/dev/null
pg_ensure_db exportbench
db="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=exportbench"
psql_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d exportbench -v ON_ERROR_STOP=1 -Atq "$@"; }

echo "== loading $rows rows over $symbols symbols (bench-storage)"
"$bin" bench-storage --database "$db" --rows "$rows" --symbols "$symbols" >"$work/load.log"
day=$(date -u -d yesterday +%F)
# The table's share of the day: its partitions' total size (heap, indexes, TOAST) times the day's share of its rows.
for t in book_ticker trades; do
  psql_q -c "SELECT '$t: ' || d.n || ' rows on $day, ' || pg_size_pretty((s.bytes * d.n / greatest(a.n, 1))::bigint) || ' of table (heap + indexes, pro rata)'
             FROM (SELECT sum(pg_total_relation_size(i.inhrelid)) AS bytes FROM pg_inherits i WHERE i.inhparent = 'marketdata.$t'::regclass) s,
                  (SELECT count(*) AS n FROM marketdata.$t) a,
                  (SELECT count(*) AS n FROM marketdata.$t WHERE ts_exchange >= '$day' AND ts_exchange < '$day'::date + 1) d"
done

run_export() { # NAME FLAGS...
  local name=$1; shift
  rm -rf "$work/out-$name"
  local start end
  start=$(date +%s.%N)
  "$bin" export --database "$db" --from "$day" --tables book_ticker,trades --out "$work/out-$name" "$@" >"$work/export-$name.log"
  end=$(date +%s.%N)
  echo "$name: $(tail -1 "$work/export-$name.log" | sed -E 's/; manifest .*//'), $(du -sh "$work/out-$name" | cut -f1) on disk, wall $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s"
}
echo "== export $day (book_ticker, trades; every symbol)"
run_export parquet-zstd --format parquet --compression zstd
run_export parquet-zstd-fastest --format parquet --compression zstd --compression-level fastest
run_export parquet-snappy --format parquet --compression snappy
run_export csv-gzip --format csv --compression gzip
start=$(date +%s.%N)
"$bin" export --database "$db" --from "$day" --tables book_ticker,trades --out "$work/out-parquet-zstd" >"$work/export-rerun.log"
echo "re-run over the zstd files: $(tail -1 "$work/export-rerun.log" | sed -E 's/.*; ([0-9]+ unchanged).*/\1/'), wall $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
