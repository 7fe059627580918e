#!/usr/bin/env bash
# How fast marketdata.book_at rebuilds a book, and what the daemon's own book snapshots cost on disk.
#
# Builds one UTC day in a private PostgreSQL (plain tier): a liquid symbol with a depth diff every 100 ms (10 bid and
# 10 ask levels each, 864,000 diffs) beside BENCH_BOOK_OTHERS quieter symbols at one diff a second (interleaved in
# time, as the daemon writes them), a REST snapshot at the day's start and the daemon's own book every
# BENCH_BOOK_SNAPSHOT_SECONDS (default 300) with 1000 levels per side. Then times book_at at BENCH_BOOK_CALLS random
# instants of the liquid symbol (20 levels), and at the worst instant (just before a snapshot). Prints figures only.
#
#   ./scripts/bench-book-at.sh                     # defaults: 19 other symbols, 300 s, 200 calls, plain PostgreSQL
#   BENCH_BOOK_SNAPSHOT_SECONDS=60 ./scripts/bench-book-at.sh
#   BENCH_TIER=timescaledb ./scripts/bench-book-at.sh   # hypertables; timed again after compressing the day's chunks
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$root/scripts/lib/pg.sh"
# shellcheck source=lib/build.sh
. "$root/scripts/lib/build.sh"

others=${BENCH_BOOK_OTHERS:-19}
every=${BENCH_BOOK_SNAPSHOT_SECONDS:-300}
calls=${BENCH_BOOK_CALLS:-200}
tier=${BENCH_TIER:-postgres}
work="$root/.local/bench-book"
port=${BENCH_PG_PORT:-55499}

obi_publish "$root"; bin=$OBI_BIN
case $tier in
  postgres) pg_start "$work/pg" "$port" fast ;;
  timescaledb) pg_start "$work/pg-timescaledb" "$port" fast "shared_preload_libraries = 'timescaledb'" "timescaledb.telemetry_level = off" "max_worker_processes = 32" ;;
  *) echo "BENCH_TIER: postgres or timescaledb" >&2; exit 2 ;;
esac
trap pg_stop_all EXIT
pg_ensure_db bookbench
db="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=bookbench"
"$bin" migrate --database "$db" --storage-tier "$tier" --log-level Warning >/dev/null
psql_q() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d bookbench -v ON_ERROR_STOP=1 -Atq "$@"; }

day=$(date -u -d yesterday +%F)
echo "== one day ($day): BTCUSDT diffs every 100 ms, $others other symbols every second, the daemon's book every $every s"
start=$(date +%s)
psql_q <<SQL
INSERT INTO marketdata.symbols (exchange, symbol, base_asset, quote_asset)
SELECT 'binance_usdm', s, s, 'USDT' FROM (SELECT 'BTCUSDT' UNION ALL SELECT 'S' || i || 'USDT' FROM generate_series(1, $others) i) x(s)
ON CONFLICT DO NOTHING;
SELECT count(*) FROM marketdata.run_maintenance('$day'::date + interval '12 hours');
-- Levels: 10 per side around a mid that drifts; a quarter of them removals. Update ids step by 1 per diff.
INSERT INTO marketdata.depth_events (ts_exchange, ts_transaction, ts_ingest, symbol_id, first_update_id, final_update_id, prev_final_update_id,
                                     bid_prices, bid_qtys, ask_prices, ask_qtys)
SELECT t, t, t, y.id, n, n, n - 1,
       -- (j in each expression: an aggregate over only the outer row's columns would belong to the outer query)
       (SELECT array_agg(round((60000 + 50 * sin(n / 50000.0) - 0.1 * (j + floor(random() * 200)))::numeric, 1)::float8) FROM generate_series(1, k) j),
       (SELECT array_agg(CASE WHEN random() < 0.25 THEN 0 ELSE round((j * 0 + random() * 5)::numeric, 3)::float8 END) FROM generate_series(1, k) j),
       (SELECT array_agg(round((60000 + 50 * sin(n / 50000.0) + 0.1 * (j + floor(random() * 200)))::numeric, 1)::float8) FROM generate_series(1, k) j),
       (SELECT array_agg(CASE WHEN random() < 0.25 THEN 0 ELSE round((j * 0 + random() * 5)::numeric, 3)::float8 END) FROM generate_series(1, k) j)
FROM generate_series(0, 863999) AS g(i)
CROSS JOIN LATERAL (SELECT '$day'::timestamptz + g.i * interval '100 ms' AS t, 1000000 + g.i AS n) v
CROSS JOIN LATERAL (SELECT s.id, CASE WHEN s.symbol = 'BTCUSDT' THEN 10 ELSE 3 END AS k FROM marketdata.symbols s
                    WHERE s.symbol = 'BTCUSDT' OR g.i % 10 = 0) y
ORDER BY t, y.id;
-- A REST snapshot at the start, then the daemon's own book every $every s: 1000 levels per side, at that diff's update id.
INSERT INTO marketdata.book_snapshots (ts_exchange, ts_ingest, symbol_id, last_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys, source)
SELECT d.ts_exchange, d.ts_exchange, d.symbol_id, d.final_update_id,
       (SELECT array_agg(round((60000 - 0.1 * j)::numeric, 1)::float8 ORDER BY j) FROM generate_series(1, 1000) j),
       (SELECT array_agg(round((j * 0 + random() * 5)::numeric, 3)::float8) FROM generate_series(1, 1000) j),
       (SELECT array_agg(round((60000 + 0.1 * j)::numeric, 1)::float8 ORDER BY j) FROM generate_series(1, 1000) j),
       (SELECT array_agg(round((j * 0 + random() * 5)::numeric, 3)::float8) FROM generate_series(1, 1000) j),
       CASE WHEN d.ts_exchange = '$day'::timestamptz THEN 'rest' ELSE 'daemon' END
FROM marketdata.depth_events d
WHERE extract(epoch FROM d.ts_exchange - '$day'::timestamptz)::numeric % $every = 0;
ANALYZE marketdata.depth_events; ANALYZE marketdata.book_snapshots;
SQL
echo "generated in $(( $(date +%s) - start )) s: $(psql_q -c "SELECT count(*) FROM marketdata.depth_events") diffs, $(psql_q -c "SELECT count(*) FROM marketdata.book_snapshots") snapshots"

echo "== storage of the daemon's own books (one symbol-day)"
psql_q -c "SELECT count(*) || ' rows, ' || pg_size_pretty(sum(pg_column_size(b.*))) || ' per symbol-day as stored (arrays TOAST-compressed), ' || pg_size_pretty(sum(pg_column_size(b.*)) / count(*)) || ' a row'
           FROM marketdata.book_snapshots b JOIN marketdata.symbols s ON s.id = b.symbol_id WHERE s.symbol = 'BTCUSDT' AND b.source = 'daemon'"
psql_q -c "SELECT 'depth_events for the day: ' || pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'marketdata.depth_events'::regclass"

time_book_at() {
echo "== book_at('BTCUSDT', at, 20): $calls random instants, then the worst instant ($every s of diffs), each call timed in the server"
psql_q <<SQL
DO \$\$
DECLARE
    v_ms   float8[] := '{}';
    v_t    timestamptz;
    v_s    timestamptz;
    v_st   text;
    v_n    integer;
    v_bad  integer := 0;
BEGIN
    PERFORM setseed(0.42);
    -- Warm the cache once, as a session that has read the day before would be.
    PERFORM marketdata.book_at('BTCUSDT', '$day'::timestamptz + interval '1 hour', 20);
    FOR i IN 1 .. $calls LOOP
        v_t := '$day'::timestamptz + random() * interval '86399 seconds';
        v_s := clock_timestamp();
        SELECT status, diffs_applied INTO v_st, v_n FROM marketdata.book_at('BTCUSDT', v_t, 20);
        v_ms := v_ms || extract(epoch FROM clock_timestamp() - v_s) * 1000;
        IF v_st <> 'ok' THEN v_bad := v_bad + 1; END IF;
    END LOOP;
    RAISE NOTICE 'random instants: p50 % ms, p95 % ms, max % ms (% not ok)',
        (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 1) FROM unnest(v_ms) x),
        (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x)::numeric, 1) FROM unnest(v_ms) x),
        (SELECT round(max(x)::numeric, 1) FROM unnest(v_ms) x), v_bad;
    v_ms := '{}';
    FOR i IN 1 .. 20 LOOP
        v_t := '$day'::timestamptz + (i * 3 * $every - 0.1) * interval '1 second';
        v_s := clock_timestamp();
        SELECT status, diffs_applied INTO v_st, v_n FROM marketdata.book_at('BTCUSDT', v_t, 20);
        v_ms := v_ms || extract(epoch FROM clock_timestamp() - v_s) * 1000;
    END LOOP;
    RAISE NOTICE 'worst instants (% diffs after the snapshot): p50 % ms, max % ms', v_n,
        (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 1) FROM unnest(v_ms) x),
        (SELECT round(max(x)::numeric, 1) FROM unnest(v_ms) x);
END \$\$;
SQL
}

time_book_at
if [ "$tier" = timescaledb ]; then
  echo "== the same after compressing the day's chunks (as the compression policy does after a day)"
  psql_q -c "SELECT count(compress_chunk(c, if_not_compressed => true)) || ' chunks compressed' FROM show_chunks('marketdata.depth_events') c"
  psql_q -c "SELECT count(compress_chunk(c, if_not_compressed => true)) || ' chunks compressed' FROM show_chunks('marketdata.book_snapshots') c"
  psql_q -c "SELECT 'depth_events compressed: ' || pg_size_pretty(sum(after_compression_total_bytes)) FROM chunk_compression_stats('marketdata.depth_events')"
  time_book_at
fi
