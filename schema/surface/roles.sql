-- Two group roles (NOLOGIN): grant them to login roles, e.g.
--   CREATE ROLE ingestor LOGIN PASSWORD '...' IN ROLE orderbook_writer;
--   CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE orderbook_reader;
-- Applied by `orderbook-ingestor migrate --create-roles` (which needs CREATEROLE), idempotently.
--
-- orderbook_writer: what the daemon needs and nothing more. It reads everything it writes (continuity at
-- start), inserts events, registers symbols, records gaps and batch ids, and runs the maintenance and rollup
-- functions, which are SECURITY DEFINER so it needs no ownership, no CREATE and no DROP of its own; it cannot
-- change the schema. The daemon started with AutoMigrate under this role works as long as the schema is
-- current; run `migrate` as the schema's owner after an upgrade.
-- orderbook_reader: read-only analysts: SELECT on every table and view, and the query functions.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderbook_writer') THEN
        CREATE ROLE orderbook_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderbook_reader') THEN
        CREATE ROLE orderbook_reader NOLOGIN;
    END IF;
END $$;

GRANT USAGE ON SCHEMA marketdata TO orderbook_writer, orderbook_reader;
REVOKE CREATE ON SCHEMA marketdata FROM orderbook_writer, orderbook_reader;

GRANT SELECT ON ALL TABLES IN SCHEMA marketdata TO orderbook_reader, orderbook_writer;
GRANT INSERT ON marketdata.book_ticker, marketdata.trades, marketdata.depth_events, marketdata.book_snapshots,
                marketdata.orderbook_top, marketdata.mark_price, marketdata.liquidations, marketdata.open_interest,
                marketdata.feed_gaps TO orderbook_writer;
GRANT INSERT, UPDATE ON marketdata.symbols TO orderbook_writer;
GRANT INSERT, UPDATE, DELETE ON marketdata.ingest_batches TO orderbook_writer;
GRANT INSERT, UPDATE ON marketdata.recorder_sessions TO orderbook_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA marketdata TO orderbook_writer;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA marketdata FROM PUBLIC;
GRANT EXECUTE ON FUNCTION marketdata.storage_tier(), marketdata.rollup_tracked(text), marketdata.partition_start(timestamptz, interval), marketdata.partition_bounds(text),
                          marketdata.data_quality_report(timestamptz, timestamptz),
                          marketdata.get_yesterday_training_data(bigint, date), marketdata.training_day_symbol(integer, date),
                          marketdata.get_training_data_full(bigint, date),
                          marketdata.book_at(text, timestamptz, integer), marketdata.book_top_at(text, timestamptz)
                          TO orderbook_writer, orderbook_reader;
GRANT EXECUTE ON FUNCTION marketdata.run_maintenance(timestamptz, interval), marketdata.run_rollups(bigint, interval) TO orderbook_writer;
