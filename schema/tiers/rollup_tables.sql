-- The 1-second rollups as tables, for the tiers where the daemon maintains them (marketdata.run_rollups):
-- plain PostgreSQL and Citus (range-partitioned by bucket) and TimescaleDB's Apache-licensed features
-- (hypertables). Full TimescaleDB has continuous aggregates of the same name and columns instead.
-- Buckets are the exchange event time truncated to the second (UTC).

-- Per symbol and second of bookTicker: mid (best_bid+best_ask)/2 open/high/low/close, spread best_ask-best_bid
-- mean/min/max, mean top-of-book quantities and the update count. The last three columns count rows that fail
-- marketdata.data_quality_check's rules in that second.
CREATE TABLE IF NOT EXISTS marketdata.bt_1s (
    symbol_id        integer     NOT NULL,
    bucket           timestamptz NOT NULL,
    mid_open         float8      NOT NULL,
    mid_high         float8      NOT NULL,
    mid_low          float8      NOT NULL,
    mid_close        float8      NOT NULL,
    spread_mean      float8      NOT NULL,
    spread_min       float8      NOT NULL,
    spread_max       float8      NOT NULL,
    bid_qty_mean     float8      NOT NULL,
    ask_qty_mean     float8      NOT NULL,
    updates          bigint      NOT NULL,
    crossed          bigint      NOT NULL,
    non_positive     bigint      NOT NULL,
    negative_latency bigint      NOT NULL,
    PRIMARY KEY (symbol_id, bucket) INCLUDE (mid_close, spread_mean)
) /*{{PARTITION BY RANGE (bucket)}}*/;

-- Per symbol and second of aggTrades: aggregate trades and the trades they stand for, volume (base and quote),
-- VWAP, taker-buy volume (buyer not the maker) and taker-sell volume, price open/high/low/close by trade id.
CREATE TABLE IF NOT EXISTS marketdata.trade_1s (
    symbol_id        integer     NOT NULL,
    bucket           timestamptz NOT NULL,
    agg_trades       bigint      NOT NULL,
    trades           bigint      NOT NULL,
    volume           float8      NOT NULL,
    quote_volume     float8      NOT NULL,
    vwap             float8,
    buy_volume       float8      NOT NULL,
    sell_volume      float8      NOT NULL,
    price_open       float8      NOT NULL,
    price_high       float8      NOT NULL,
    price_low        float8      NOT NULL,
    price_close      float8      NOT NULL,
    non_positive     bigint      NOT NULL,
    negative_latency bigint      NOT NULL,
    PRIMARY KEY (symbol_id, bucket) INCLUDE (agg_trades, vwap, buy_volume, sell_volume)
) /*{{PARTITION BY RANGE (bucket)}}*/;

-- Databases made before the keys carried the seed's training columns get them here while the rollups are small
-- (rebuilding the keys takes about 13 s per 200 symbol-days); larger ones are left as they are, with a warning
-- naming the call that does it (marketdata.cover_rollup_keys, in storage_functions.sql).
SELECT marketdata.cover_rollup_keys(50000000);

-- The seed's column names (the Python collector this replaces: its queries and loaders read these), on the
-- same rows: aliases as generated columns, and two statistics the rollup computes since then. Rows rolled up
-- before these columns existed have NULL spread_std and avg_latency_ms (their raw rows may be gone).
ALTER TABLE marketdata.bt_1s ADD COLUMN IF NOT EXISTS spread_std float8;
ALTER TABLE marketdata.bt_1s ADD COLUMN IF NOT EXISTS avg_latency_ms float8;
ALTER TABLE marketdata.bt_1s ADD COLUMN IF NOT EXISTS ts_second timestamptz GENERATED ALWAYS AS (bucket) STORED;
ALTER TABLE marketdata.bt_1s ADD COLUMN IF NOT EXISTS total_qty_mean float8 GENERATED ALWAYS AS (bid_qty_mean + ask_qty_mean) STORED;
ALTER TABLE marketdata.bt_1s ADD COLUMN IF NOT EXISTS update_count bigint GENERATED ALWAYS AS (updates) STORED;
ALTER TABLE marketdata.trade_1s ADD COLUMN IF NOT EXISTS ts_second timestamptz GENERATED ALWAYS AS (bucket) STORED;
ALTER TABLE marketdata.trade_1s ADD COLUMN IF NOT EXISTS trade_count bigint GENERATED ALWAYS AS (agg_trades) STORED;
ALTER TABLE marketdata.trade_1s ADD COLUMN IF NOT EXISTS vol_sum float8 GENERATED ALWAYS AS (volume) STORED;
ALTER TABLE marketdata.trade_1s ADD COLUMN IF NOT EXISTS buy_vol float8 GENERATED ALWAYS AS (buy_volume) STORED;
ALTER TABLE marketdata.trade_1s ADD COLUMN IF NOT EXISTS sell_vol float8 GENERATED ALWAYS AS (sell_volume) STORED;

-- Range scans over all symbols (data_quality_report, get_yesterday_training_data for every symbol).
CREATE INDEX IF NOT EXISTS bt_1s_bucket_brin ON marketdata.bt_1s USING brin (bucket) WITH (pages_per_range = 16);
CREATE INDEX IF NOT EXISTS trade_1s_bucket_brin ON marketdata.trade_1s USING brin (bucket) WITH (pages_per_range = 16);
