-- Every storage table that is a plain table becomes a hypertable with the chunk width from
-- marketdata.storage_tables (included by both TimescaleDB tiers). On full TimescaleDB, bt_1s and trade_1s are
-- continuous aggregates (views), not tables, and are left alone.
DO $$
DECLARE
    t   marketdata.storage_tables;
    rel text;
    ext text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'timescaledb');
BEGIN
    FOR t IN SELECT * FROM marketdata.storage_tables LOOP
        rel := format('marketdata.%I', t.table_name);
        CONTINUE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(rel)) IS DISTINCT FROM 'r';
        -- No default time index: each table has its (symbol_id, time) B-tree and a BRIN on time (006_time_indexes).
        EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %I.by_range(%L, %L::interval), create_default_indexes => false, if_not_exists => true, migrate_data => true)',
                       ext, rel, ext, t.time_column, t.chunk_interval);
        -- Applies to chunks created from now on when the configuration changed.
        EXECUTE format('SELECT %I.set_chunk_time_interval(%L::regclass, %L::interval)', ext, rel, t.chunk_interval);
    END LOOP;
END $$;
