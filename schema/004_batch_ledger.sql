-- 004_batch_ledger: exactly-once commits. Every COPY batch inserts its id in the same transaction, so a
-- batch retried after an uncertain outcome (connection lost after the server committed) or replayed from
-- the disk spool is recognised and not stored twice. Ids are kept for a few days, then pruned by the daemon.
-- The ledger also says which time range each batch touched (ts_min/ts_max of the table's time column): on
-- tiers where the daemon maintains the 1-second rollups, a batch is rolled up once (rollup_pending), however
-- late it arrives (spool replay, backfill) and in whatever order concurrent transactions commit.
CREATE TABLE IF NOT EXISTS marketdata.ingest_batches (
    batch_id       uuid        PRIMARY KEY,
    table_name     text        NOT NULL,
    row_count      integer     NOT NULL,
    committed_at   timestamptz NOT NULL DEFAULT now(),
    ts_min         timestamptz,
    ts_max         timestamptz,
    rollup_pending boolean     NOT NULL DEFAULT false
);

CREATE INDEX IF NOT EXISTS ingest_batches_committed_idx ON marketdata.ingest_batches (committed_at);
CREATE INDEX IF NOT EXISTS ingest_batches_rollup_pending_idx ON marketdata.ingest_batches (committed_at) WHERE rollup_pending;
