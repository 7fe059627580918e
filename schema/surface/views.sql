-- What users query from psql, the same on every storage tier (bt_1s and trade_1s are tables the daemon
-- maintains, or TimescaleDB continuous aggregates with the same columns). Re-created by every `migrate`.

-- The seed's names win where one object cannot serve both shapes (README, "The seed's queries"): the views
-- below changed shape, so a database set up before gets the old ones dropped first (their richer shapes
-- live on as ingestion_stats_by_table and data_quality_24h; grants are given back at the end).
DO $$
BEGIN
    IF to_regclass('marketdata.ingestion_stats') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('marketdata.ingestion_stats') AND attname = 'book_ticker_count_1h') THEN
        DROP VIEW marketdata.ingestion_stats;
    END IF;
    IF to_regclass('marketdata.data_quality_check') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('marketdata.data_quality_check') AND attname = 'total_records') THEN
        DROP VIEW marketdata.data_quality_check;
    END IF;
    -- Its first shape (ts, agg_trades, ...), and the one with every rollup column (now get_training_data_full).
    IF EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'marketdata' AND p.proname = 'get_yesterday_training_data'
                 AND (NOT ('ts_second' = ANY (coalesce(p.proargnames, '{}'))) OR 'book_gap' = ANY (coalesce(p.proargnames, '{}')))) THEN
        DROP FUNCTION marketdata.get_yesterday_training_data(bigint, date);
    END IF;
END $$;

-- The seed's ingestion_stats: one row per active symbol over the last hour: rows of book_ticker and trades,
-- the newest of each (NULL: none in the last hour), and the mean of ts_ingest − ts_exchange in ms over both
-- (live rows only: backfilled trades are fetched late on purpose). Run every minute, so it reads only the last
-- hour of each table through its time index.
CREATE OR REPLACE VIEW marketdata.ingestion_stats AS
WITH b AS MATERIALIZED (
    SELECT x.symbol_id, count(*) AS n, max(x.ts_exchange) AS last,
           sum(extract(epoch FROM x.ts_ingest - x.ts_exchange) * 1000) AS latency_sum, count(*) AS latency_n
    FROM marketdata.book_ticker x WHERE x.ts_exchange > now() - interval '1 hour'
    GROUP BY x.symbol_id
), t AS MATERIALIZED (
    SELECT x.symbol_id, count(*) AS n, max(x.ts_exchange) AS last,
           sum(extract(epoch FROM x.ts_ingest - x.ts_exchange) * 1000) FILTER (WHERE NOT x.is_backfilled) AS latency_sum,
           count(*) FILTER (WHERE NOT x.is_backfilled) AS latency_n
    FROM marketdata.trades x WHERE x.ts_exchange > now() - interval '1 hour'
    GROUP BY x.symbol_id
)
SELECT s.symbol,
       coalesce(b.n, 0)  AS book_ticker_count_1h,
       coalesce(t.n, 0)  AS trades_count_1h,
       b.last            AS last_book_ticker,
       t.last            AS last_trade,
       round(((coalesce(b.latency_sum, 0) + coalesce(t.latency_sum, 0))
              / nullif(coalesce(b.latency_n, 0) + coalesce(t.latency_n, 0), 0))::numeric, 3)::float8 AS avg_latency_ms,
       s.id              AS symbol_id
FROM marketdata.symbols s
LEFT JOIN b ON b.symbol_id = s.id
LEFT JOIN t ON t.symbol_id = s.id
WHERE s.is_active;

COMMENT ON VIEW marketdata.ingestion_stats IS
    'The seed''s per-symbol view: book_ticker and trades rows in the last hour, newest of each, mean ts_ingest - ts_exchange (ms). Per table, with p99 and gaps: ingestion_stats_by_table.';

-- Per symbol and table: rows in the last 5 minutes and the last hour, the newest event, the mean and p99 of
-- ts_ingest − ts_exchange over the last 5 minutes (ms; live rows only: backfilled trades are fetched late on
-- purpose), and the feed_gaps rows of the last hour, of which "open" ones have had no row since they ended.
CREATE OR REPLACE VIEW marketdata.ingestion_stats_by_table AS
WITH recent AS (
    SELECT 'book_ticker'::text AS table_name, symbol_id, ts_exchange, ts_ingest FROM marketdata.book_ticker WHERE ts_exchange > now() - interval '1 hour'
    UNION ALL
    SELECT 'trades', symbol_id, ts_exchange, CASE WHEN is_backfilled THEN NULL ELSE ts_ingest END FROM marketdata.trades WHERE ts_exchange > now() - interval '1 hour'
    UNION ALL
    SELECT 'depth_events', symbol_id, ts_exchange, ts_ingest FROM marketdata.depth_events WHERE ts_exchange > now() - interval '1 hour'
    UNION ALL
    SELECT 'book_snapshots', symbol_id, ts_exchange, ts_ingest FROM marketdata.book_snapshots WHERE ts_exchange > now() - interval '1 hour'
    UNION ALL
    SELECT 'orderbook_top', symbol_id, ts, NULL FROM marketdata.orderbook_top WHERE ts > now() - interval '1 hour'
    UNION ALL
    SELECT 'mark_price', symbol_id, ts_exchange, CASE WHEN is_backfilled THEN NULL ELSE ts_ingest END FROM marketdata.mark_price WHERE ts_exchange > now() - interval '1 hour'
    UNION ALL
    SELECT 'liquidations', symbol_id, ts_exchange, ts_ingest FROM marketdata.liquidations WHERE ts_exchange > now() - interval '1 hour'
    UNION ALL
    SELECT 'open_interest', symbol_id, ts_exchange, ts_ingest FROM marketdata.open_interest WHERE ts_exchange > now() - interval '1 hour'
), per_table AS (
    SELECT r.symbol_id, r.table_name,
           count(*) FILTER (WHERE r.ts_exchange > now() - interval '5 minutes') AS rows_5m,
           count(*)                                                             AS rows_1h,
           max(r.ts_exchange)                                                   AS last_event,
           avg(extract(epoch FROM r.ts_ingest - r.ts_exchange) * 1000)
               FILTER (WHERE r.ts_exchange > now() - interval '5 minutes')      AS latency_ms_mean_5m,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.ts_ingest - r.ts_exchange) * 1000)
               FILTER (WHERE r.ts_exchange > now() - interval '5 minutes')      AS latency_ms_p99_5m
    FROM recent r
    GROUP BY r.symbol_id, r.table_name
), gaps AS (
    SELECT g.symbol_id,
           CASE split_part(regexp_replace(g.stream, '^[^@]*@', ''), '@', 1)
                WHEN 'bookTicker' THEN 'book_ticker' WHEN 'aggTrade' THEN 'trades' WHEN 'markPrice' THEN 'mark_price'
                WHEN 'forceOrder' THEN 'liquidations' WHEN 'openInterest' THEN 'open_interest' ELSE 'depth_events' END AS table_name,
           count(*) AS gaps_1h, max(g.gap_end) AS last_gap_end
    FROM marketdata.feed_gaps g
    WHERE g.gap_end > now() - interval '1 hour'
    GROUP BY 1, 2
)
SELECT s.symbol, coalesce(p.table_name, g.table_name) AS table_name,
       coalesce(p.rows_5m, 0) AS rows_5m, coalesce(p.rows_1h, 0) AS rows_1h, p.last_event,
       round(p.latency_ms_mean_5m::numeric, 1) AS latency_ms_mean_5m,
       round(p.latency_ms_p99_5m::numeric, 1) AS latency_ms_p99_5m,
       coalesce(g.gaps_1h, 0) AS gaps_1h,
       CASE WHEN g.last_gap_end IS NOT NULL AND (p.last_event IS NULL OR p.last_event <= g.last_gap_end) THEN 1 ELSE 0 END AS open_gaps,
       s.id AS symbol_id, s.is_active
FROM per_table p
FULL JOIN gaps g ON g.symbol_id = p.symbol_id AND g.table_name = p.table_name
JOIN marketdata.symbols s ON s.id = coalesce(p.symbol_id, g.symbol_id);

COMMENT ON VIEW marketdata.ingestion_stats_by_table IS
    'Per symbol and table: rows in the last 5 min and 1 h, last event, ts_ingest - ts_exchange mean and p99 over 5 min (ms), gaps in the last hour and whether one is still open.';

-- Data quality per symbol over [p_from, p_to): rows breaking a rule, counted from the 1-second rollups (so it
-- stays fast over long ranges), plus the gap ledger. Rules: non-positive prices or quantities, crossed book
-- (best_bid >= best_ask), negative latency (ts_ingest < ts_exchange: this host's clock behind the exchange's).
-- PL/pgSQL, not SQL: Citus cannot plan a parameterised SQL-language function over distributed tables.
CREATE OR REPLACE FUNCTION marketdata.data_quality_report(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (symbol_id integer, symbol text, book_updates bigint, agg_trades bigint, non_positive_book bigint,
               non_positive_trades bigint, crossed_books bigint, negative_latency bigint, gaps bigint, gap_seconds numeric)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH b AS (
        SELECT x.symbol_id, sum(x.updates) AS updates, sum(x.non_positive) AS non_positive, sum(x.crossed) AS crossed,
               sum(x.negative_latency) AS negative_latency
        FROM marketdata.bt_1s x WHERE x.bucket >= p_from AND x.bucket < p_to GROUP BY x.symbol_id
    ), t AS (
        SELECT x.symbol_id, sum(x.agg_trades) AS agg_trades, sum(x.non_positive) AS non_positive, sum(x.negative_latency) AS negative_latency
        FROM marketdata.trade_1s x WHERE x.bucket >= p_from AND x.bucket < p_to GROUP BY x.symbol_id
    ), g AS (
        SELECT x.symbol_id, count(*) AS gaps,
               sum(extract(epoch FROM least(x.gap_end, p_to) - greatest(x.gap_start, p_from))) AS gap_seconds
        FROM marketdata.feed_gaps x WHERE x.gap_end >= p_from AND x.gap_start < p_to GROUP BY x.symbol_id
    )
    SELECT s.id, s.symbol, coalesce(b.updates, 0)::bigint, coalesce(t.agg_trades, 0)::bigint,
           coalesce(b.non_positive, 0)::bigint, coalesce(t.non_positive, 0)::bigint, coalesce(b.crossed, 0)::bigint,
           (coalesce(b.negative_latency, 0) + coalesce(t.negative_latency, 0))::bigint,
           coalesce(g.gaps, 0), round(coalesce(g.gap_seconds, 0)::numeric, 3)
    FROM marketdata.symbols s
    LEFT JOIN b ON b.symbol_id = s.id
    LEFT JOIN t ON t.symbol_id = s.id
    LEFT JOIN g ON g.symbol_id = s.id
    WHERE b.symbol_id IS NOT NULL OR t.symbol_id IS NOT NULL OR g.symbol_id IS NOT NULL;
END $$;

-- The last 24 hours from the rollups (was data_quality_check before the seed's shape took that name).
-- For another range: SELECT * FROM marketdata.data_quality_report(from, to).
CREATE OR REPLACE VIEW marketdata.data_quality_24h AS
SELECT * FROM marketdata.data_quality_report(now() - interval '24 hours', now());

-- The seed's data_quality_check: per active symbol, the last hour of book_ticker rows and how many break each
-- rule: a price or quantity not positive (or not finite), spread best_ask − best_bid ≤ 0, and ts_ingest before
-- ts_exchange (this host's clock behind the exchange's).
CREATE OR REPLACE VIEW marketdata.data_quality_check AS
WITH b AS MATERIALIZED (
    SELECT x.symbol_id,
           count(*)                                                                  AS total_records,
           count(*) FILTER (WHERE NOT (x.best_bid > 0 AND x.best_bid < 'Infinity'))  AS invalid_bid_price,
           count(*) FILTER (WHERE NOT (x.best_ask > 0 AND x.best_ask < 'Infinity'))  AS invalid_ask_price,
           count(*) FILTER (WHERE NOT (x.bid_qty > 0 AND x.bid_qty < 'Infinity'))    AS invalid_bid_qty,
           count(*) FILTER (WHERE NOT (x.ask_qty > 0 AND x.ask_qty < 'Infinity'))    AS invalid_ask_qty,
           count(*) FILTER (WHERE NOT (x.best_ask - x.best_bid > 0))                 AS invalid_spread,
           count(*) FILTER (WHERE x.ts_ingest < x.ts_exchange)                       AS invalid_latency
    FROM marketdata.book_ticker x WHERE x.ts_exchange > now() - interval '1 hour'
    GROUP BY x.symbol_id
)
SELECT s.symbol,
       coalesce(b.total_records, 0)     AS total_records,
       coalesce(b.invalid_bid_price, 0) AS invalid_bid_price,
       coalesce(b.invalid_ask_price, 0) AS invalid_ask_price,
       coalesce(b.invalid_bid_qty, 0)   AS invalid_bid_qty,
       coalesce(b.invalid_ask_qty, 0)   AS invalid_ask_qty,
       coalesce(b.invalid_spread, 0)    AS invalid_spread,
       coalesce(b.invalid_latency, 0)   AS invalid_latency,
       s.id                             AS symbol_id
FROM marketdata.symbols s
LEFT JOIN b ON b.symbol_id = s.id
WHERE s.is_active;

-- The gap ledger summarised per symbol, stream and reason.
CREATE OR REPLACE VIEW marketdata.feed_gap_summary AS
SELECT s.symbol, g.stream, g.reason, count(*) AS gaps,
       round(sum(extract(epoch FROM g.gap_end - g.gap_start))::numeric, 3) AS gap_seconds,
       sum(g.last_missing_id - g.first_missing_id + 1) AS missing_ids,
       count(*) FILTER (WHERE g.gap_end > now() - interval '24 hours') AS gaps_24h,
       min(g.gap_start) AS first_gap, max(g.gap_end) AS last_gap, g.symbol_id
FROM marketdata.feed_gaps g
JOIN marketdata.symbols s ON s.id = g.symbol_id
GROUP BY s.symbol, g.symbol_id, g.stream, g.reason;

-- The seed's training day: one row per symbol and second of a UTC day (86,400 per symbol, a regular grid for
-- models), by its column names: ts_second, symbol_id, mid_close, spread_mean, trade_count (0 when none), vwap,
-- buy_sell_imbalance ((buy − sell) / (buy + sell) of taker volume, 0 when no trades). Then gap: the streams with
-- a recorded hole overlapping the second ('book', 'trade', 'mark', 'liq', 'oi', comma-separated; NULL when none),
-- so "no trade" is not confused with "not recorded". Then the derivatives columns (see training_day_symbol). One column, NULL on almost every row, because each column costs time on every
-- one of a day's 17 million rows; get_training_data_full has book_gap / trade_gap / in_gap as booleans. Book
-- columns are NULL in a second without a bookTicker update. Symbols with no rollup row and
-- no gap that day are left out. p_symbol_id NULL: every symbol. Ordered by symbol_id, then second. Every rollup
-- column: get_training_data_full.
-- Built for a whole day of every symbol (the seed promised 200 symbols in under 30 s). One symbol's day is
-- marketdata.training_day_symbol: a merge of the day's seconds with both rollups read from their primary keys
-- alone (which carry these columns, marketdata.cover_rollup_keys), in second order. Hash joins and nested loops
-- are switched off there because the planner cannot count generate_series' rows and would otherwise probe the
-- keys once per second. PL/pgSQL: Citus cannot plan a parameterised SQL-language query over distributed tables;
-- each symbol's query goes to the one node that holds it (the symbol filters sit in subqueries, where Citus
-- prunes shards by them). It returns nothing for a symbol with no rollup row and no gap that day.
-- The derivatives columns come after the seed's and the gap column: funding_rate, mark_price, index_price and
-- open_interest are the last value known at the end of the second (the latest row with ts_exchange before the
-- next second, from before the day if need be: never from the future); liq_* count and sum (avg_price × filled_qty)
-- the liquidations of the second per side (BUY: a short position closed by force; 0 when none, and Binance sends at
-- most one per symbol and second). The gap column also names mark, liq and oi holes. No window function (a running
-- "last known" over the day cost a third of the time): mark price comes once a second, so the second's own row
-- serves and only a second without one looks back (an index probe); each open interest answer is spread over the
-- seconds until the next. A symbol-day without any of the three (not recorded) skips them.
-- feed_gaps.stream holds the daemon's stream names (btcusdt@bookTicker) or, from the seed's collector, the bare
-- channel (bookTicker): both are matched by the part after the symbol.
DROP FUNCTION IF EXISTS marketdata.get_yesterday_training_data(bigint, date);
DROP FUNCTION IF EXISTS marketdata.training_day_symbol(integer, date);
CREATE FUNCTION marketdata.training_day_symbol(p_symbol_id integer, p_date date)
RETURNS TABLE (ts_second timestamptz, symbol_id integer, mid_close float8, spread_mean float8, trade_count bigint,
               vwap float8, buy_sell_imbalance float8, gap text,
               funding_rate float8, mark_price float8, index_price float8, open_interest float8,
               liq_buy_count bigint, liq_sell_count bigint, liq_buy_notional float8, liq_sell_notional float8)
LANGUAGE plpgsql STABLE
-- jit off: the open interest spread is a nested loop, whose disabled-path cost estimate would otherwise buy a JIT
-- compile of ~0.3 s per symbol (measured: 446 ms against 153 ms for one symbol-day).
SET enable_hashjoin = off SET enable_nestloop = off SET enable_material = off SET work_mem = '64MB' SET jit = off AS $$
#variable_conflict use_column
DECLARE
    d0      timestamptz := p_date::timestamp AT TIME ZONE 'UTC';
    d1      timestamptz := (p_date + 1)::timestamp AT TIME ZONE 'UTC';
    v_book  tstzmultirange;
    v_trade tstzmultirange;
    v_mark  tstzmultirange;
    v_liq   tstzmultirange;
    v_oi    tstzmultirange;
    v_gaps  boolean;
    v_oi0   timestamptz;
BEGIN
    -- The seconds each stream's holes overlap: from the second a hole starts in to the one it ends in.
    SELECT coalesce(range_agg(r) FILTER (WHERE k = 'bookTicker'), '{}'), coalesce(range_agg(r) FILTER (WHERE k = 'aggTrade'), '{}'),
           coalesce(range_agg(r) FILTER (WHERE k LIKE 'markPrice%'), '{}'), coalesce(range_agg(r) FILTER (WHERE k = 'forceOrder'), '{}'),
           coalesce(range_agg(r) FILTER (WHERE k = 'openInterest'), '{}')
      INTO v_book, v_trade, v_mark, v_liq, v_oi
      FROM (SELECT regexp_replace(g.stream, '^[^@]*@', '') AS k, tstzrange(date_trunc('second', g.gap_start), g.gap_end, '[]') AS r
              FROM marketdata.feed_gaps g
             WHERE g.symbol_id = p_symbol_id AND g.gap_end >= d0 AND g.gap_start < d1) x;
    -- Each test a query of its own (on Citus, one node's): a correlated test over the distributed rollups is a
    -- join Citus refuses.
    v_gaps := NOT (isempty(v_book) AND isempty(v_trade) AND isempty(v_mark) AND isempty(v_liq) AND isempty(v_oi));
    IF NOT v_gaps
       AND NOT EXISTS (SELECT 1 FROM marketdata.bt_1s x WHERE x.symbol_id = p_symbol_id AND x.bucket >= d0 AND x.bucket < d1)
       AND NOT EXISTS (SELECT 1 FROM marketdata.trade_1s x WHERE x.symbol_id = p_symbol_id AND x.bucket >= d0 AND x.bucket < d1)
       AND NOT EXISTS (SELECT 1 FROM marketdata.mark_price x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange >= d0 AND x.ts_exchange < d1)
       AND NOT EXISTS (SELECT 1 FROM marketdata.open_interest x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange >= d0 AND x.ts_exchange < d1) THEN
        RETURN;
    END IF;
    -- Where the open interest known at the day's start comes from: the last answer before it.
    SELECT max(x.ts_exchange) INTO v_oi0 FROM marketdata.open_interest x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange < d0;
    IF v_oi0 IS NULL
       AND NOT EXISTS (SELECT 1 FROM marketdata.mark_price x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange < d1)
       AND NOT EXISTS (SELECT 1 FROM marketdata.open_interest x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange >= d0 AND x.ts_exchange < d1)
       AND NOT EXISTS (SELECT 1 FROM marketdata.liquidations x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange >= d0 AND x.ts_exchange < d1) THEN
        RETURN QUERY
        SELECT g.ts, p_symbol_id, b.mid_close, b.spread_mean, coalesce(t.agg_trades, 0)::bigint, t.vwap,
               CASE WHEN t.buy_volume + t.sell_volume > 0
                    THEN (t.buy_volume - t.sell_volume) / (t.buy_volume + t.sell_volume) ELSE 0 END::float8,
               CASE WHEN v_gaps THEN
                   nullif(concat_ws(',', CASE WHEN v_book @> g.ts THEN 'book' END, CASE WHEN v_trade @> g.ts THEN 'trade' END,
                                         CASE WHEN v_mark @> g.ts THEN 'mark' END, CASE WHEN v_liq @> g.ts THEN 'liq' END,
                                         CASE WHEN v_oi @> g.ts THEN 'oi' END), '') END,
               NULL::float8, NULL::float8, NULL::float8, NULL::float8, 0::bigint, 0::bigint, 0::float8, 0::float8
        FROM generate_series(d0, d1 - interval '1 second', interval '1 second') AS g(ts)
        LEFT JOIN (SELECT x.bucket, x.mid_close, x.spread_mean FROM marketdata.bt_1s x
                   WHERE x.symbol_id = p_symbol_id AND x.bucket >= d0 AND x.bucket < d1 ORDER BY x.bucket) b ON b.bucket = g.ts
        LEFT JOIN (SELECT x.bucket, x.agg_trades, x.vwap, x.buy_volume, x.sell_volume FROM marketdata.trade_1s x
                   WHERE x.symbol_id = p_symbol_id AND x.bucket >= d0 AND x.bucket < d1 ORDER BY x.bucket) t ON t.bucket = g.ts
        ORDER BY g.ts;
        RETURN;
    END IF;
    -- Most symbol-days have no hole: one test of v_gaps a row, no range lookups.
    RETURN QUERY
    SELECT q.ts, p_symbol_id, q.mid_close, q.spread_mean, q.trade_count, q.vwap, q.imbalance, q.gap,
           CASE WHEN q.m_at IS NOT NULL THEN q.funding ELSE q.probe[1] END,
           CASE WHEN q.m_at IS NOT NULL THEN q.mark ELSE q.probe[2] END,
           CASE WHEN q.m_at IS NOT NULL THEN q.idx ELSE q.probe[3] END,
           q.oi, q.liq_buy_count, q.liq_sell_count, q.liq_buy_notional, q.liq_sell_notional
    FROM (
        SELECT g.ts, b.mid_close, b.spread_mean, coalesce(t.agg_trades, 0)::bigint AS trade_count, t.vwap,
               CASE WHEN t.buy_volume + t.sell_volume > 0
                    THEN (t.buy_volume - t.sell_volume) / (t.buy_volume + t.sell_volume) ELSE 0 END::float8 AS imbalance,
               CASE WHEN v_gaps THEN
                   nullif(concat_ws(',', CASE WHEN v_book @> g.ts THEN 'book' END, CASE WHEN v_trade @> g.ts THEN 'trade' END,
                                         CASE WHEN v_mark @> g.ts THEN 'mark' END, CASE WHEN v_liq @> g.ts THEN 'liq' END,
                                         CASE WHEN v_oi @> g.ts THEN 'oi' END), '') END AS gap,
               m.bucket AS m_at, m.funding_rate AS funding, m.mark_price AS mark, m.index_price AS idx,
               -- A second without its own mark price: the latest before its end.
               CASE WHEN m.bucket IS NULL THEN
                   (SELECT ARRAY[y.funding_rate, y.mark_price, y.index_price] FROM marketdata.mark_price y
                     WHERE y.symbol_id = p_symbol_id AND y.ts_exchange < g.ts + interval '1 second'
                     ORDER BY y.ts_exchange DESC LIMIT 1) END AS probe,
               o.v AS oi,
               coalesce(l.buy_count, 0) AS liq_buy_count, coalesce(l.sell_count, 0) AS liq_sell_count,
               coalesce(l.buy_notional, 0) AS liq_buy_notional, coalesce(l.sell_notional, 0) AS liq_sell_notional
        FROM generate_series(d0, d1 - interval '1 second', interval '1 second') AS g(ts)
        LEFT JOIN (SELECT x.bucket, x.mid_close, x.spread_mean FROM marketdata.bt_1s x
                   WHERE x.symbol_id = p_symbol_id AND x.bucket >= d0 AND x.bucket < d1 ORDER BY x.bucket) b ON b.bucket = g.ts
        LEFT JOIN (SELECT x.bucket, x.agg_trades, x.vwap, x.buy_volume, x.sell_volume FROM marketdata.trade_1s x
                   WHERE x.symbol_id = p_symbol_id AND x.bucket >= d0 AND x.bucket < d1 ORDER BY x.bucket) t ON t.bucket = g.ts
        LEFT JOIN (SELECT DISTINCT ON (1) date_trunc('second', x.ts_exchange) AS bucket, x.funding_rate, x.mark_price, x.index_price
                   FROM marketdata.mark_price x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange >= d0 AND x.ts_exchange < d1
                   ORDER BY 1, x.ts_exchange DESC) m ON m.bucket = g.ts
        -- Each answer holds from its second to the second before the next answer's (the last one: to the day's end).
        LEFT JOIN (SELECT s.sec AS bucket, o.v
                   FROM (SELECT date_trunc('second', greatest(x.ts_exchange, d0)) AS s0,
                                coalesce(date_trunc('second', lead(x.ts_exchange) OVER (ORDER BY x.ts_exchange)) - interval '1 second',
                                         d1 - interval '1 second') AS s1,
                                x.open_interest AS v
                           FROM marketdata.open_interest x
                          WHERE x.symbol_id = p_symbol_id AND x.ts_exchange >= coalesce(v_oi0, d0) AND x.ts_exchange < d1) o
                   CROSS JOIN LATERAL generate_series(o.s0, o.s1, interval '1 second') AS s(sec)
                   ORDER BY 1) o ON o.bucket = g.ts
        LEFT JOIN (SELECT date_trunc('second', x.ts_exchange) AS bucket,
                          count(*) FILTER (WHERE x.side = 'BUY') AS buy_count, count(*) FILTER (WHERE x.side = 'SELL') AS sell_count,
                          coalesce(sum(x.avg_price * x.filled_qty) FILTER (WHERE x.side = 'BUY'), 0) AS buy_notional,
                          coalesce(sum(x.avg_price * x.filled_qty) FILTER (WHERE x.side = 'SELL'), 0) AS sell_notional
                   FROM marketdata.liquidations x WHERE x.symbol_id = p_symbol_id AND x.ts_exchange >= d0 AND x.ts_exchange < d1
                   GROUP BY 1 ORDER BY 1) l ON l.bucket = g.ts
    ) q
    ORDER BY q.ts;
END $$;

COMMENT ON FUNCTION marketdata.training_day_symbol(integer, date) IS
    'One symbol''s day for get_yesterday_training_data: 86,400 rows in second order, or none when the symbol has no rollup row and no gap that day.';

-- The day of every symbol, symbol after symbol. A plain SQL function, so PostgreSQL inlines it into the
-- caller's query and streams each symbol's rows as they come: a PL/pgSQL function would first write all of a
-- day's 17 million rows to a temporary file (it returns its result whole), which cost about a third of the
-- time. Rows come out in symbol order because the symbols are sorted before the join, and each symbol's
-- rows in second order as training_day_symbol returns them (a join to a function of the row before it is
-- always a nested loop, which keeps both orders).
CREATE OR REPLACE FUNCTION marketdata.get_yesterday_training_data(
    p_symbol_id bigint DEFAULT NULL,
    p_date date DEFAULT ((now() AT TIME ZONE 'UTC')::date - 1))
RETURNS TABLE (ts_second timestamptz, symbol_id integer, mid_close float8, spread_mean float8, trade_count bigint,
               vwap float8, buy_sell_imbalance float8, gap text,
               funding_rate float8, mark_price float8, index_price float8, open_interest float8,
               liq_buy_count bigint, liq_sell_count bigint, liq_buy_notional float8, liq_sell_notional float8)
LANGUAGE sql STABLE AS $$
    SELECT d.*
    FROM (SELECT s.id FROM marketdata.symbols s WHERE p_symbol_id IS NULL OR s.id = p_symbol_id ORDER BY s.id OFFSET 0) s
    CROSS JOIN LATERAL marketdata.training_day_symbol(s.id, p_date) d
$$;

-- Citus refuses to plan a SQL function over its tables (even inlined, the symbol registry is a reference
-- table): there the same loop is PL/pgSQL, whose result PostgreSQL collects whole before the first row goes out.
DO $citus$
BEGIN
    -- Nested, not one condition: PL/pgSQL plans the test below (which names Citus' catalog) only when it runs.
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = 'marketdata.symbols'::regclass) THEN
        CREATE OR REPLACE FUNCTION marketdata.get_yesterday_training_data(
            p_symbol_id bigint DEFAULT NULL,
            p_date date DEFAULT ((now() AT TIME ZONE 'UTC')::date - 1))
        RETURNS TABLE (ts_second timestamptz, symbol_id integer, mid_close float8, spread_mean float8, trade_count bigint,
                       vwap float8, buy_sell_imbalance float8, gap text,
                       funding_rate float8, mark_price float8, index_price float8, open_interest float8,
                       liq_buy_count bigint, liq_sell_count bigint, liq_buy_notional float8, liq_sell_notional float8)
        LANGUAGE plpgsql STABLE AS $$
        #variable_conflict use_column
        DECLARE
            v_id integer;
        BEGIN
            FOR v_id IN SELECT s.id FROM marketdata.symbols s WHERE p_symbol_id IS NULL OR s.id = p_symbol_id ORDER BY s.id LOOP
                RETURN QUERY SELECT * FROM marketdata.training_day_symbol(v_id, p_date);
            END LOOP;
        END $$;
    END IF;
END $citus$;

COMMENT ON FUNCTION marketdata.get_yesterday_training_data(bigint, date) IS
    'One row per symbol and second of a UTC day (default yesterday), the seed''s columns (ts_second, symbol_id, mid_close, spread_mean, trade_count, vwap, buy_sell_imbalance), then gap (book, trade, mark, liq, oi, comma-separated; NULL when none) for seconds inside recorded holes, then funding_rate, mark_price, index_price, open_interest (last known at the end of the second) and liq_buy/sell_count/notional (the second''s liquidations). Every rollup column: get_training_data_full.';

-- get_yesterday_training_data with every column of both rollups: one row per symbol and second of a UTC day
-- (86,400 per symbol), the seed's seven columns first, then the rest. Book columns are NULL in a second without
-- a bookTicker update; book_gap / trade_gap say the second overlaps a recorded hole in that stream, in_gap is
-- either. Symbols with no rollup row and no gap that day are left out. p_symbol_id NULL: every symbol. Ordered
-- by symbol_id, then second. It reads the rollups' rows: minutes for a day of 200 symbols.
CREATE OR REPLACE FUNCTION marketdata.get_training_data_full(
    p_symbol_id bigint DEFAULT NULL,
    p_date date DEFAULT ((now() AT TIME ZONE 'UTC')::date - 1))
RETURNS TABLE (ts_second timestamptz, symbol_id integer, mid_close float8, spread_mean float8, trade_count bigint,
               vwap float8, buy_sell_imbalance float8,
               symbol text, mid_open float8, mid_high float8, mid_low float8, spread_min float8, spread_max float8,
               spread_std float8, total_qty_mean float8, bid_qty_mean float8, ask_qty_mean float8, update_count bigint,
               avg_latency_ms float8, trades bigint, vol_sum float8, quote_volume float8, buy_vol float8, sell_vol float8,
               price_open float8, price_high float8, price_low float8, price_close float8,
               book_gap boolean, trade_gap boolean, in_gap boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    -- PL/pgSQL, not SQL: Citus cannot plan a parameterised SQL-language function over distributed tables.
    -- Each input is cut to the day first and materialised, so the grid joins them by hash instead of probing
    -- per second (the planner cannot estimate generate_series rows and would otherwise nest loops).
    RETURN QUERY
    WITH day AS MATERIALIZED (
        SELECT (p_date::timestamp AT TIME ZONE 'UTC') AS d0, ((p_date + 1)::timestamp AT TIME ZONE 'UTC') AS d1
    ), b AS MATERIALIZED (
        SELECT x.symbol_id, x.bucket, x.mid_open, x.mid_high, x.mid_low, x.mid_close, x.spread_mean, x.spread_min,
               x.spread_max, x.spread_std, x.bid_qty_mean, x.ask_qty_mean, x.updates, x.avg_latency_ms
        FROM marketdata.bt_1s x, day
        WHERE x.bucket >= day.d0 AND x.bucket < day.d1 AND (p_symbol_id IS NULL OR x.symbol_id = p_symbol_id)
    ), t AS MATERIALIZED (
        SELECT x.symbol_id, x.bucket, x.agg_trades, x.trades, x.volume, x.quote_volume, x.vwap, x.buy_volume,
               x.sell_volume, x.price_open, x.price_high, x.price_low, x.price_close
        FROM marketdata.trade_1s x, day
        WHERE x.bucket >= day.d0 AND x.bucket < day.d1 AND (p_symbol_id IS NULL OR x.symbol_id = p_symbol_id)
    ), gaps AS MATERIALIZED (
        SELECT g.symbol_id, CASE regexp_replace(g.stream, '^[^@]*@', '') WHEN 'bookTicker' THEN 'book' WHEN 'aggTrade' THEN 'trade' END AS kind,
               greatest(date_trunc('second', g.gap_start), day.d0) AS s0, least(g.gap_end, day.d1 - interval '1 microsecond') AS s1
        FROM marketdata.feed_gaps g, day
        WHERE regexp_replace(g.stream, '^[^@]*@', '') IN ('bookTicker', 'aggTrade') AND g.gap_end >= day.d0 AND g.gap_start < day.d1
          AND (p_symbol_id IS NULL OR g.symbol_id = p_symbol_id)
    ), gap_seconds AS MATERIALIZED (
        -- Every second a gap overlaps, per symbol and stream kind.
        SELECT DISTINCT x.symbol_id, x.kind, sec.ts FROM gaps x, generate_series(x.s0, x.s1, interval '1 second') AS sec(ts)
    ), syms AS MATERIALIZED (
        SELECT s.id, s.symbol FROM marketdata.symbols s
        WHERE s.id IN (SELECT symbol_id FROM b UNION SELECT symbol_id FROM t UNION SELECT symbol_id FROM gaps)
    ), grid AS MATERIALIZED (
        SELECT syms.id, syms.symbol, g.ts
        FROM syms, day, generate_series(day.d0, day.d1 - interval '1 second', interval '1 second') AS g(ts)
    )
    SELECT grid.ts, grid.id, b.mid_close, b.spread_mean, coalesce(t.agg_trades, 0)::bigint, t.vwap,
           CASE WHEN coalesce(t.buy_volume, 0) + coalesce(t.sell_volume, 0) > 0
                THEN (t.buy_volume - t.sell_volume) / (t.buy_volume + t.sell_volume) ELSE 0 END::float8,
           grid.symbol, b.mid_open, b.mid_high, b.mid_low, b.spread_min, b.spread_max, b.spread_std,
           b.bid_qty_mean + b.ask_qty_mean, b.bid_qty_mean, b.ask_qty_mean, b.updates, b.avg_latency_ms,
           t.trades, t.volume, t.quote_volume, t.buy_volume, t.sell_volume,
           t.price_open, t.price_high, t.price_low, t.price_close,
           gb.ts IS NOT NULL, gt.ts IS NOT NULL, gb.ts IS NOT NULL OR gt.ts IS NOT NULL
    FROM grid
    LEFT JOIN b ON b.symbol_id = grid.id AND b.bucket = grid.ts
    LEFT JOIN t ON t.symbol_id = grid.id AND t.bucket = grid.ts
    LEFT JOIN gap_seconds gb ON gb.symbol_id = grid.id AND gb.kind = 'book' AND gb.ts = grid.ts
    LEFT JOIN gap_seconds gt ON gt.symbol_id = grid.id AND gt.kind = 'trade' AND gt.ts = grid.ts
    ORDER BY grid.id, grid.ts;
END $$;

COMMENT ON FUNCTION marketdata.get_training_data_full(bigint, date) IS
    'get_yesterday_training_data with every rollup column: one row per symbol and second of a UTC day (default yesterday); reads the rollups'' heap, so a day of many symbols takes minutes.';

-- Views and functions re-created above lose their grants; give the roles back what roles.sql gives them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderbook_reader') AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderbook_writer') THEN
        GRANT SELECT ON marketdata.ingestion_stats, marketdata.ingestion_stats_by_table, marketdata.data_quality_check,
                        marketdata.data_quality_24h, marketdata.feed_gap_summary TO orderbook_reader, orderbook_writer;
        REVOKE EXECUTE ON FUNCTION marketdata.get_yesterday_training_data(bigint, date) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION marketdata.get_yesterday_training_data(bigint, date) TO orderbook_reader, orderbook_writer;
        REVOKE EXECUTE ON FUNCTION marketdata.training_day_symbol(integer, date) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION marketdata.training_day_symbol(integer, date) TO orderbook_reader, orderbook_writer;
        REVOKE EXECUTE ON FUNCTION marketdata.get_training_data_full(bigint, date) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION marketdata.get_training_data_full(bigint, date) TO orderbook_reader, orderbook_writer;
    END IF;
END $$;
