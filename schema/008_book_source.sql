-- 008_book_source: where a stored book snapshot comes from. 'rest': GET /fapi/v1/depth, the snapshot a book was
-- (re)synced from (every row before this column existed); 'daemon': the daemon's own synced book, stored every
-- BookSnapshotSeconds so that marketdata.book_at never replays more than that many seconds of diffs. Nullable with
-- a default: full TimescaleDB adds such a column to a compressed hypertable in place.
ALTER TABLE marketdata.book_snapshots ADD COLUMN IF NOT EXISTS source text DEFAULT 'rest';
