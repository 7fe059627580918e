-- 004_batch_ledger: exactly-once commits. Every COPY batch inserts its id in the same transaction, so a
-- batch retried after an uncertain outcome (connection lost after the server committed) or replayed from
-- the disk spool is recognised and not stored twice. Ids are kept for a few days, then pruned by the daemon.
CREATE TABLE IF NOT EXISTS marketdata.ingest_batches (
    batch_id     uuid        PRIMARY KEY,
    table_name   text        NOT NULL,
    row_count    integer     NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ingest_batches_committed_idx ON marketdata.ingest_batches (committed_at);
