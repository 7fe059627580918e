-- 009_recorder_sessions: one row per daemon run, so that the next run knows what its predecessor recorded and until
-- when. A stream that can stay quiet for hours (forceOrder) leaves no row to date the daemon's downtime by, so its
-- daemon_down hole runs from the previous run's end (stopped_at after a clean stop, else its last heartbeat) to
-- the first acknowledged SUBSCRIBE. The daemon refreshes last_seen_at, channels and symbol_ids every 10 s.
CREATE TABLE IF NOT EXISTS marketdata.recorder_sessions (
    session_id   uuid        PRIMARY KEY,
    instance     text        NOT NULL,
    channels     text[]      NOT NULL,
    symbol_ids   integer[]   NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    stopped_at   timestamptz
);

CREATE INDEX IF NOT EXISTS recorder_sessions_instance_idx ON marketdata.recorder_sessions (instance, last_seen_at DESC);
