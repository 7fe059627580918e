-- Tier 2, TimescaleDB with only its Apache-2-licensed features (what most managed services offer):
-- hypertables with chunk widths from marketdata.storage_tables. Retention (drop_chunks) and the 1-second
-- rollups (tables, marketdata.run_rollups; derivatives_1s too) are run by the daemon's maintenance loop, as on plain PostgreSQL.
-- Valid for TimescaleDB 2.13 or later (by_range dimension builder) on PostgreSQL 15 or later.

-- {{include rollup_tables.sql}}

-- {{include derivatives_1s.sql}}

-- {{include hypertables.sql}}
