-- 006_time_indexes: BRIN indexes on the time column of every event table. The (symbol_id, time) B-trees
-- serve per-symbol queries; queries over all symbols by time (the rollup passes every second,
-- ingestion_stats' last hour, data_quality_check) had only a sequential scan of the current partition, so
-- the rollup pass cost grew with the partition: a profile at 150,000 msg/s showed the rollups taking more
-- database CPU than the COPY itself. Rows arrive in time order, which is what BRIN needs; a block range
-- summary costs a few bytes and next to nothing at COPY time.
CREATE INDEX IF NOT EXISTS book_ticker_ts_brin ON marketdata.book_ticker USING brin (ts_exchange) WITH (pages_per_range = 16);
CREATE INDEX IF NOT EXISTS trades_ts_brin ON marketdata.trades USING brin (ts_exchange) WITH (pages_per_range = 16);
CREATE INDEX IF NOT EXISTS depth_events_ts_brin ON marketdata.depth_events USING brin (ts_exchange) WITH (pages_per_range = 16);
CREATE INDEX IF NOT EXISTS book_snapshots_ts_brin ON marketdata.book_snapshots USING brin (ts_exchange) WITH (pages_per_range = 16);
CREATE INDEX IF NOT EXISTS orderbook_top_ts_brin ON marketdata.orderbook_top USING brin (ts) WITH (pages_per_range = 16);
