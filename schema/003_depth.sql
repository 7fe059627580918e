-- 003_depth: order-book diffs, the REST snapshots they replay from, and the sampled top of book.

-- Levels are typed float8 arrays, one pair per side (prices, quantities), in the order the exchange
-- sent them. Measured with pg_column_size against JSONB holding the exchange's [["price","qty"],...]
-- text (both sides): 1 level/side 116 vs 92 bytes, 3 levels 180 vs 204, 10 levels 404 vs 596,
-- 50 levels 1696 vs 2836. The fixed array headers lose on one-level diffs and win from three levels
-- on, which is where liquid symbols' diffs live; arrays also need no parsing to query (unnest,
-- subscripts) and binary COPY writes them without formatting text.
CREATE TABLE IF NOT EXISTS marketdata.depth_events (
    ts_exchange          timestamptz NOT NULL,
    ts_transaction       timestamptz NOT NULL,
    ts_ingest            timestamptz NOT NULL,
    symbol_id            integer     NOT NULL,
    first_update_id      bigint      NOT NULL,
    final_update_id      bigint      NOT NULL,
    prev_final_update_id bigint      NOT NULL,
    bid_prices           float8[]    NOT NULL,
    bid_qtys             float8[]    NOT NULL,
    ask_prices           float8[]    NOT NULL,
    ask_qtys             float8[]    NOT NULL
) /*{{PARTITION BY RANGE (ts_exchange)}}*/;

-- Replays walk one symbol's diffs in update-id order from a snapshot.
CREATE INDEX IF NOT EXISTS depth_events_symbol_update_idx ON marketdata.depth_events (symbol_id, final_update_id);

-- GET /fapi/v1/depth responses that a book was (re)synced from: replay = snapshot + diffs with
-- final_update_id >= last_update_id, the first with first_update_id <= last_update_id or (as the live stream
-- often has it) prev_final_update_id = last_update_id.
CREATE TABLE IF NOT EXISTS marketdata.book_snapshots (
    ts_exchange    timestamptz NOT NULL,
    ts_ingest      timestamptz NOT NULL,
    symbol_id      integer     NOT NULL,
    last_update_id bigint      NOT NULL,
    bid_prices     float8[]    NOT NULL,
    bid_qtys       float8[]    NOT NULL,
    ask_prices     float8[]    NOT NULL,
    ask_qtys       float8[]    NOT NULL
) /*{{PARTITION BY RANGE (ts_exchange)}}*/;

CREATE INDEX IF NOT EXISTS book_snapshots_symbol_update_idx ON marketdata.book_snapshots (symbol_id, last_update_id);

-- The in-memory book sampled at a fixed cadence: top N levels and the features models use.
-- microprice = (bid·ask_qty + ask·bid_qty) / (bid_qty + ask_qty); imbalance = (bid_qty − ask_qty) / (bid_qty + ask_qty)
-- at level 1, and over levels 1..5 summed.
CREATE TABLE IF NOT EXISTS marketdata.orderbook_top (
    ts             timestamptz NOT NULL,
    symbol_id      integer     NOT NULL,
    last_update_id bigint      NOT NULL,
    bid_prices     float8[]    NOT NULL,
    bid_qtys       float8[]    NOT NULL,
    ask_prices     float8[]    NOT NULL,
    ask_qtys       float8[]    NOT NULL,
    mid            float8,
    spread         float8,
    microprice     float8,
    imbalance_l1   float8,
    imbalance_l5   float8
) /*{{PARTITION BY RANGE (ts)}}*/;

CREATE INDEX IF NOT EXISTS orderbook_top_symbol_ts_idx ON marketdata.orderbook_top (symbol_id, ts);
