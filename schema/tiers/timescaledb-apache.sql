-- Tier 2, TimescaleDB with only its Apache-2-licensed features (what most managed services offer):
-- hypertables with chunk widths from marketdata.storage_tables. Retention (drop_chunks) and the 1-second
-- rollups (tables, marketdata.run_rollups) are run by the daemon's maintenance loop, as on plain PostgreSQL.
-- Valid for TimescaleDB 2.13 or later (by_range dimension builder) on PostgreSQL 15 or later.

-- {{include rollup_tables.sql}}

DO $$
DECLARE
    t   marketdata.storage_tables;
    ext text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb');
BEGIN
    FOR t IN SELECT * FROM marketdata.storage_tables LOOP
        CONTINUE WHEN to_regclass(format('marketdata.%I', t.table_name)) IS NULL;
        -- No default time index: every table has its own (symbol_id, time) index, which serves every query here.
        EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %I.by_range(%L, %L::interval), create_default_indexes => false, if_not_exists => true, migrate_data => true)',
                       ext, format('marketdata.%I', t.table_name), ext, t.time_column, t.chunk_interval);
        -- Applies to chunks created from now on when the configuration changed.
        EXECUTE format('SELECT %I.set_chunk_time_interval(%L::regclass, %L::interval)', ext, format('marketdata.%I', t.table_name), t.chunk_interval);
    END LOOP;
END $$;
