-- Tier 3, plain PostgreSQL ≥ 14 (also the base of the Citus tier): native range partitions by time.
-- Partitions are created ahead and dropped past retention by marketdata.run_maintenance(), which the daemon
-- calls every few minutes; a default partition per table takes rows no partition covers yet (a far-off
-- timestamp, a replay of old data), and the next maintenance pass moves them into their own partition.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['book_ticker', 'trades', 'depth_events', 'book_snapshots', 'orderbook_top', 'mark_price', 'liquidations', 'open_interest'] LOOP
        IF (SELECT relkind FROM pg_class WHERE oid = format('marketdata.%I', t)::regclass) <> 'p' THEN
            RAISE EXCEPTION 'marketdata.% is not partitioned: this database was created by a pre-release build or for another storage tier; record into a new database', t;
        END IF;
    END LOOP;
END $$;

-- {{include rollup_tables.sql}}

-- {{include derivatives_1s.sql}}

-- A default partition per table takes rows no partition covers yet; Citus (13.2) distributes it with its parent,
-- and the move-then-attach of marketdata.ensure_partition works there too.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['book_ticker', 'trades', 'depth_events', 'book_snapshots', 'orderbook_top', 'mark_price', 'liquidations', 'open_interest', 'bt_1s', 'trade_1s', 'derivatives_1s'] LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS marketdata.%I PARTITION OF marketdata.%I DEFAULT', t || '_default', t);
    END LOOP;
END $$;

SELECT count(*) FROM marketdata.run_maintenance(now());
