-- 005_storage: the storage tier's settings. The maintenance functions that use them are in
-- schema/surface/storage_functions.sql, re-applied by every migrate whose SQL changed.

CREATE TABLE IF NOT EXISTS marketdata.storage_settings (
    key        text PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per time-partitioned table: its time column, partition (or chunk) width and how long rows are
-- kept (NULL: forever). Written by `migrate` from the configuration; widths divide a day or are whole days.
CREATE TABLE IF NOT EXISTS marketdata.storage_tables (
    table_name     text PRIMARY KEY,
    time_column    text     NOT NULL,
    chunk_interval interval NOT NULL,
    retention      interval,
    CONSTRAINT storage_tables_chunk CHECK (chunk_interval >= interval '1 hour'),
    CONSTRAINT storage_tables_retention CHECK (retention IS NULL OR retention >= chunk_interval)
);
