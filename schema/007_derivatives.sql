-- 007_derivatives: what perpetual futures models need besides the book and the tape: mark price and funding,
-- liquidations, open interest. Same shape as the other event tables: float8 values, no primary key (dedupe is in
-- memory, the batch ledger makes each COPY exactly-once), a (symbol_id, time) B-tree and a BRIN on time.

-- markPriceUpdate, once a second per symbol (<symbol>@markPrice@1s). funding_rate and next_funding_time are NULL on
-- contracts without funding. Rows with is_backfilled come from GET /fapi/v1/markPriceKlines after downtime: one per
-- minute (the bar's close), without index or settle price; the live rows are one per second.
CREATE TABLE IF NOT EXISTS marketdata.mark_price (
    ts_exchange       timestamptz NOT NULL,
    ts_ingest         timestamptz NOT NULL,
    symbol_id         integer     NOT NULL,
    mark_price        float8      NOT NULL,
    index_price       float8,
    est_settle_price  float8,
    funding_rate      float8,
    next_funding_time timestamptz,
    is_backfilled     boolean     NOT NULL DEFAULT false
) /*{{PARTITION BY RANGE (ts_exchange)}}*/;

-- The training day reads a symbol-day of mark prices (86,400 rows, one per heap page: rows of all symbols arrive
-- interleaved) from this index alone: 106 s → 48 s for 200 symbol-days when it read the heap (measured, see README).
CREATE INDEX IF NOT EXISTS mark_price_symbol_ts_idx ON marketdata.mark_price (symbol_id, ts_exchange) INCLUDE (mark_price, index_price, funding_rate);
CREATE INDEX IF NOT EXISTS mark_price_ts_brin ON marketdata.mark_price USING brin (ts_exchange) WITH (pages_per_range = 16);

-- forceOrder: liquidation orders. Binance pushes at most the latest liquidation of a symbol per 1000 ms, so the
-- stream is sampled: a row means "at least this one in that second". Text columns hold the exchange's words
-- (side BUY/SELL, order_type LIMIT, time_in_force IOC, status FILLED ...). ts_exchange is the event time E,
-- ts_trade the order's trade time T.
CREATE TABLE IF NOT EXISTS marketdata.liquidations (
    ts_exchange     timestamptz NOT NULL,
    ts_trade        timestamptz NOT NULL,
    ts_ingest       timestamptz NOT NULL,
    symbol_id       integer     NOT NULL,
    side            text        NOT NULL,
    order_type      text        NOT NULL,
    time_in_force   text        NOT NULL,
    status          text        NOT NULL,
    orig_qty        float8      NOT NULL,
    price           float8      NOT NULL,
    avg_price       float8      NOT NULL,
    last_filled_qty float8      NOT NULL,
    filled_qty      float8      NOT NULL
) /*{{PARTITION BY RANGE (ts_exchange)}}*/;

CREATE INDEX IF NOT EXISTS liquidations_symbol_ts_idx ON marketdata.liquidations (symbol_id, ts_exchange);
CREATE INDEX IF NOT EXISTS liquidations_ts_brin ON marketdata.liquidations USING brin (ts_exchange) WITH (pages_per_range = 16);

-- GET /fapi/v1/openInterest, polled every OpenInterestSeconds per symbol: the exchange's time and the open
-- interest in contracts (base asset). A poll that failed or was skipped is a feed_gaps row (poll_missed).
CREATE TABLE IF NOT EXISTS marketdata.open_interest (
    ts_exchange   timestamptz NOT NULL,
    ts_ingest     timestamptz NOT NULL,
    symbol_id     integer     NOT NULL,
    open_interest float8      NOT NULL
) /*{{PARTITION BY RANGE (ts_exchange)}}*/;

CREATE INDEX IF NOT EXISTS open_interest_symbol_ts_idx ON marketdata.open_interest (symbol_id, ts_exchange);
CREATE INDEX IF NOT EXISTS open_interest_ts_brin ON marketdata.open_interest USING brin (ts_exchange) WITH (pages_per_range = 16);
