-- The 1-second rollup of the derivatives tables (mark_price, liquidations, open_interest), on every tier: a table
-- the daemon maintains (marketdata.run_rollups → refresh_derivatives_1s). Full TimescaleDB's continuous aggregates
-- cannot do it: a value carried forward from an earlier second and a join of three hypertables are both outside
-- what a continuous aggregate may compute.
--
-- One row per symbol and second in which at least one of the three tables has a row (mark price comes every
-- second while recorded, so that is every recorded second). Values are what was known at the END of the second,
-- never anything later:
--   mark_price .. next_funding_time: the latest mark price row at or before the second's end (mark_at: its time;
--     older than the bucket when the second has none of its own; mark_backfilled: a REST minute bar);
--   open_interest: the latest answer at or before the second's end (open_interest_at: its time);
--   liq_*: the second's own liquidations per side (side is the liquidation order's: BUY closes a short), counts,
--     filled quantity and notional (average price × filled quantity); 0 when none. The stream is sampled: Binance
--     sends at most one liquidation per symbol and second (README).
-- Holes are in feed_gaps as for every stream; a carried value inside one is still the last one known.
CREATE TABLE IF NOT EXISTS marketdata.derivatives_1s (
    symbol_id         integer     NOT NULL,
    bucket            timestamptz NOT NULL,
    mark_price        float8,
    index_price       float8,
    est_settle_price  float8,
    funding_rate      float8,
    next_funding_time timestamptz,
    mark_at           timestamptz,
    mark_backfilled   boolean,
    mark_updates      integer     NOT NULL,
    open_interest     float8,
    open_interest_at  timestamptz,
    liq_buy_count     integer     NOT NULL,
    liq_sell_count    integer     NOT NULL,
    liq_buy_qty       float8      NOT NULL,
    liq_sell_qty      float8      NOT NULL,
    liq_buy_notional  float8      NOT NULL,
    liq_sell_notional float8      NOT NULL,
    -- The seed's name for the second, as on bt_1s and trade_1s. In the CREATE itself: full TimescaleDB refuses to add
    -- a generated column to a compressed hypertable, even one that exists already (IF NOT EXISTS).
    ts_second         timestamptz GENERATED ALWAYS AS (bucket) STORED,
    PRIMARY KEY (symbol_id, bucket)
) /*{{PARTITION BY RANGE (bucket)}}*/;

CREATE INDEX IF NOT EXISTS derivatives_1s_bucket_brin ON marketdata.derivatives_1s USING brin (bucket) WITH (pages_per_range = 16);
