-- Tier 1, TimescaleDB with its full (Community-licensed) feature set: hypertables, native compression
-- (segment by symbol_id, order by time), retention policies, and the 1-second rollups as continuous
-- aggregates with refresh policies and real-time aggregation (the newest seconds are computed on read).
-- TimescaleDB's background workers do all of it, except derivatives_1s: the daemon's rollup pass keeps that one.
-- Valid for TimescaleDB 2.13 or later (by_range dimension builder; inserts into compressed chunks, which a
-- spool replay or a trade backfill may need) on PostgreSQL 15 or later.

-- The derivatives' rollup is a table here too, kept by the daemon (see the file).
-- {{include derivatives_1s.sql}}

-- {{include hypertables.sql}}

-- Compression and retention for the raw tables (the rollups are continuous aggregates, below).
DO $$
DECLARE
    t      marketdata.storage_tables;
    ext    text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb');
    rel    text;
    v_compressed boolean;
BEGIN
    FOR t IN SELECT * FROM marketdata.storage_tables WHERE table_name NOT IN ('bt_1s', 'trade_1s') LOOP
        rel := format('marketdata.%I', t.table_name);
        CONTINUE WHEN to_regclass(rel) IS NULL;
        -- Compression settings cannot change once chunks are compressed; set them once.
        SELECT h.compression_enabled INTO v_compressed FROM timescaledb_information.hypertables h
         WHERE h.hypertable_schema = 'marketdata' AND h.hypertable_name = t.table_name;
        IF NOT coalesce(v_compressed, false) THEN
            EXECUTE format('ALTER TABLE %s SET (timescaledb.compress, timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
                           rel, 'symbol_id', t.time_column || ' DESC');
        END IF;
        -- Late rows (backfill after downtime, spool replay after an outage) arrive within hours: compress after
        -- two chunk widths, at least one day.
        EXECUTE format('SELECT %I.add_compression_policy(%L::regclass, compress_after => %L::interval, if_not_exists => true)',
                       ext, rel, greatest(t.chunk_interval * 2, interval '1 day'));
        EXECUTE format('SELECT %I.remove_retention_policy(%L::regclass, if_exists => true)', ext, rel);
        IF t.retention IS NOT NULL THEN
            EXECUTE format('SELECT %I.add_retention_policy(%L::regclass, drop_after => %L::interval)', ext, rel, t.retention);
        END IF;
    END LOOP;
END $$;

-- A continuous aggregate cannot change its query. Rather than drop rollups whose raw rows may be gone, one made by
-- an older build is renamed to the first free <name>_vN (kept, readable, its refresh policy removed, its retention
-- kept) and the new one is created beside it; the new one computes from the raw rows still kept (see README). So are:
-- * one made before the seed's column names (ts_second, spread_std, ...);
-- * a bt_1s ordering its open and close by ROW(ts_exchange, update_id), which fails over a chunk boundary (below).
DO $$
DECLARE
    ext  text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb');
    v    text;
    why  text;
    kept text;
    idx  regclass;
BEGIN
    FOREACH v IN ARRAY ARRAY['bt_1s', 'trade_1s'] LOOP
        CONTINUE WHEN to_regclass('marketdata.' || v) IS NULL;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('marketdata.' || v) AND attname = 'ts_second' AND NOT attisdropped) THEN
            why := 'the new one has the seed''s column names';
        ELSIF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                       WHERE view_schema = 'marketdata' AND view_name = v AND view_definition ~ 'ROW\(') THEN
            why := 'its newest seconds and its refresh could fail over a chunk boundary';
        ELSE
            CONTINUE;
        END IF;
        SELECT v || '_v' || n INTO kept FROM generate_series(1, 1000) n WHERE to_regclass('marketdata.' || v || '_v' || n) IS NULL ORDER BY n LIMIT 1;
        EXECUTE format('SELECT %I.remove_continuous_aggregate_policy(%L::regclass, if_exists => true)', ext, 'marketdata.' || v);
        EXECUTE format('ALTER MATERIALIZED VIEW marketdata.%I RENAME TO %I', v, kept);
        -- Its covering index (marketdata.cover_rollup_keys) goes with it under its new name: the name is how that
        -- function knows an aggregate is covered, and the new one needs its own.
        FOR idx IN SELECT c.oid::regclass FROM pg_class c WHERE c.relname = v || '_training_cover' AND c.relkind = 'i' LOOP
            EXECUTE format('ALTER INDEX %s RENAME TO %I', idx, kept || '_training_cover');
        END LOOP;
        RAISE WARNING 'marketdata.% kept as marketdata.%: %. The new % materialises the last 2 days; for older seconds whose raw rows are kept, run once: CALL refresh_continuous_aggregate(''marketdata.%'', NULL, now() - interval ''2 days'')',
            v, kept, why, v, v;
    END LOOP;
END $$;

-- Open and close break ties within a millisecond by update id, as the daemon's rollups on the other tiers do. The
-- ordering is one number, the exchange time in microseconds × 10^20 + the update id: every bigint is smaller than
-- 10^20 in size, so it orders exactly as (ts_exchange, update_id). Not ROW(ts_exchange, update_id): over rows in more
-- than one chunk TimescaleDB aggregates each chunk apart and passes the partial states on in binary, and a partial
-- first()/last() state cannot read an anonymous record back ("input of anonymous composite types is not
-- implemented", timescale/timescaledb#9919). A read of the real-time part over a chunk boundary then failed, and so,
-- at times, did a refresh.
-- (The epoch is taken from an interval: extract() from a timestamptz is only stable, and TimescaleDB warns that
-- such a function in a continuous aggregate may give inconsistent results when it materialises again.)
CREATE MATERIALIZED VIEW IF NOT EXISTS marketdata.bt_1s
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT b.symbol_id,
       time_bucket(interval '1 second', b.ts_exchange)                                      AS bucket,
       first((b.best_bid + b.best_ask) / 2, extract(epoch FROM b.ts_exchange - timestamptz 'epoch') * 1e26 + b.update_id) AS mid_open,
       max((b.best_bid + b.best_ask) / 2)                                                    AS mid_high,
       min((b.best_bid + b.best_ask) / 2)                                                    AS mid_low,
       last((b.best_bid + b.best_ask) / 2, extract(epoch FROM b.ts_exchange - timestamptz 'epoch') * 1e26 + b.update_id) AS mid_close,
       avg(b.best_ask - b.best_bid)                                                          AS spread_mean,
       min(b.best_ask - b.best_bid)                                                          AS spread_min,
       max(b.best_ask - b.best_bid)                                                          AS spread_max,
       avg(b.bid_qty)                                                                        AS bid_qty_mean,
       avg(b.ask_qty)                                                                        AS ask_qty_mean,
       count(*)                                                                              AS updates,
       count(*) FILTER (WHERE b.best_bid >= b.best_ask)                                      AS crossed,
       count(*) FILTER (WHERE b.best_bid <= 0 OR b.best_ask <= 0 OR b.bid_qty <= 0 OR b.ask_qty <= 0) AS non_positive,
       count(*) FILTER (WHERE b.ts_ingest < b.ts_exchange)                                   AS negative_latency,
       stddev_samp(b.best_ask - b.best_bid)                                                  AS spread_std,
       avg(extract(epoch FROM b.ts_ingest - b.ts_exchange) * 1000)::float8                   AS avg_latency_ms,
       -- The seed's names for the same figures.
       time_bucket(interval '1 second', b.ts_exchange)                                      AS ts_second,
       avg(b.bid_qty + b.ask_qty)                                                            AS total_qty_mean,
       count(*)                                                                              AS update_count
FROM marketdata.book_ticker b
GROUP BY b.symbol_id, time_bucket(interval '1 second', b.ts_exchange)
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS marketdata.trade_1s
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT t.symbol_id,
       time_bucket(interval '1 second', t.ts_exchange)                     AS bucket,
       count(*)                                                            AS agg_trades,
       sum(t.last_trade_id - t.first_trade_id + 1)::bigint                 AS trades,
       sum(t.qty)                                                          AS volume,
       sum(t.price * t.qty)                                                AS quote_volume,
       sum(t.price * t.qty) / nullif(sum(t.qty), 0)                        AS vwap,
       coalesce(sum(t.qty) FILTER (WHERE NOT t.is_buyer_maker), 0)         AS buy_volume,
       coalesce(sum(t.qty) FILTER (WHERE t.is_buyer_maker), 0)             AS sell_volume,
       first(t.price, t.agg_trade_id)                                      AS price_open,
       max(t.price)                                                        AS price_high,
       min(t.price)                                                        AS price_low,
       last(t.price, t.agg_trade_id)                                       AS price_close,
       count(*) FILTER (WHERE t.price <= 0 OR t.qty <= 0)                  AS non_positive,
       count(*) FILTER (WHERE t.ts_ingest < t.ts_exchange AND NOT t.is_backfilled) AS negative_latency,
       -- The seed's names for the same figures.
       time_bucket(interval '1 second', t.ts_exchange)                     AS ts_second,
       count(*)                                                            AS trade_count,
       sum(t.qty)                                                          AS vol_sum,
       coalesce(sum(t.qty) FILTER (WHERE NOT t.is_buyer_maker), 0)         AS buy_vol,
       coalesce(sum(t.qty) FILTER (WHERE t.is_buyer_maker), 0)             AS sell_vol
FROM marketdata.trades t
GROUP BY t.symbol_id, time_bucket(interval '1 second', t.ts_exchange)
WITH NO DATA;

-- Refresh every 30 s over a window reaching back far enough for late rows (capped below raw retention, so a
-- refresh never recomputes seconds whose raw rows are gone); seconds newer than the last refresh are
-- computed on read (materialized_only = false).
DO $$
DECLARE
    ext  text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb');
    v    record;
    back interval;
BEGIN
    FOR v IN SELECT * FROM (VALUES ('bt_1s', 'book_ticker'), ('trade_1s', 'trades')) AS x(cagg, raw) LOOP
        SELECT least(interval '2 days', coalesce((SELECT retention - chunk_interval FROM marketdata.storage_tables WHERE table_name = v.raw), interval '2 days'))
          INTO back;
        -- The materialisation's chunks otherwise come out at ten times the raw table's width (60 h, 240 h).
        EXECUTE format('SELECT %I.set_chunk_time_interval(%L::regclass, %L::interval)', ext, 'marketdata.' || v.cagg,
                       (SELECT chunk_interval FROM marketdata.storage_tables WHERE table_name = v.cagg));
        EXECUTE format('SELECT %I.remove_continuous_aggregate_policy(%L::regclass, if_exists => true)', ext, 'marketdata.' || v.cagg);
        EXECUTE format('SELECT %I.add_continuous_aggregate_policy(%L::regclass, start_offset => %L::interval, end_offset => %L::interval, schedule_interval => %L::interval)',
                       ext, 'marketdata.' || v.cagg, back, interval '5 seconds', interval '30 seconds');
        EXECUTE format('SELECT %I.remove_retention_policy(%L::regclass, if_exists => true)', ext, 'marketdata.' || v.cagg);
        IF (SELECT retention FROM marketdata.storage_tables WHERE table_name = v.cagg) IS NOT NULL THEN
            EXECUTE format('SELECT %I.add_retention_policy(%L::regclass, drop_after => %L::interval)', ext, 'marketdata.' || v.cagg,
                           (SELECT retention FROM marketdata.storage_tables WHERE table_name = v.cagg));
        END IF;
    END LOOP;
END $$;

-- get_yesterday_training_data reads its rollup columns from these indexes (see marketdata.cover_rollup_keys).
SELECT marketdata.cover_rollup_keys(50000000);
