-- Citus (distributed PostgreSQL), applied after the plain PostgreSQL tier: the symbol registry and the small
-- bookkeeping tables are reference tables (a copy on every node), the event tables and the rollups are
-- distributed by symbol_id and co-located with book_ticker, so one symbol's rows of every table live on one
-- node and per-symbol joins (get_yesterday_training_data) run there. Time partitioning is kept: Citus
-- distributes each partition with its parent. Written against the Citus 12 documentation
-- (create_reference_table, create_distributed_table with colocate_with); every test run has a coordinator and two
-- workers (scripts/test.sh).

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['symbols', 'feed_gaps', 'ingest_batches', 'storage_settings', 'storage_tables', 'schema_migrations', 'recorder_sessions'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = format('marketdata.%I', t)::regclass) THEN
            PERFORM create_reference_table(format('marketdata.%I', t));
        END IF;
    END LOOP;
    FOREACH t IN ARRAY ARRAY['book_ticker', 'trades', 'depth_events', 'book_snapshots', 'orderbook_top', 'mark_price', 'liquidations', 'open_interest', 'bt_1s', 'trade_1s', 'derivatives_1s'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = format('marketdata.%I', t)::regclass) THEN
            PERFORM create_distributed_table(format('marketdata.%I', t), 'symbol_id',
                colocate_with => CASE WHEN t = 'book_ticker' THEN 'default' ELSE 'marketdata.book_ticker' END);
        END IF;
    END LOOP;
END $$;
