-- The order book at any instant, rebuilt in the database: the latest stored snapshot at or before the instant
-- (a REST snapshot a book was synced from, or the daemon's own synced book, stored every BookSnapshotSeconds),
-- then the stored diffs after it up to the instant, as the daemon's sequencer applies them (DepthSequencer): the
-- diffs with u >= the snapshot's last_update_id, the first joining it (U <= it, or pu = it), each later one
-- continuing the one before (pu = its u). A level's quantity is the last one sent for its price; 0 removes it.
--
-- Never a silently wrong book: status says whether the levels can be trusted, and the level arrays are NULL unless
-- it is 'ok':
--   ok            the book as of as_of (the exchange time of the last diff applied, or of the snapshot);
--   no_snapshot   no snapshot at or before the instant (before the first one recorded for the symbol);
--   gap           the instant is inside a recorded hole of the symbol's depth stream (feed_gaps), or the stored
--                 chain is broken between the snapshot and the instant (detail says where);
--   unknown_symbol.
-- Levels beyond the snapshot's depth (SnapshotLimit for REST, the same for the daemon's) are not known: the top
-- `levels` of a book are right as long as the price stays within that depth of where the snapshot was taken.
-- One row: arrays ordered best first, like orderbook_top.
DROP FUNCTION IF EXISTS marketdata.book_at(text, timestamptz, integer);
CREATE FUNCTION marketdata.book_at(p_symbol text, p_at timestamptz, p_levels integer DEFAULT 20)
RETURNS TABLE (symbol text, at timestamptz, status text, detail text, as_of timestamptz, last_update_id bigint,
               snapshot_at timestamptz, snapshot_source text, diffs_applied integer,
               bid_prices float8[], bid_qtys float8[], ask_prices float8[], ask_qtys float8[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_sym   integer;
    s       record;
    d       record;
    v_last  bigint;
    v_upto  bigint;
    v_asof  timestamptz;
    v_n     integer := 0;
    v_next  bigint;
BEGIN
    symbol := upper(p_symbol); at := p_at;
    IF p_levels IS NULL OR p_levels < 1 OR p_levels > 5000 THEN
        RAISE EXCEPTION 'book_at: levels must be between 1 and 5000 (got %)', p_levels USING ERRCODE = '22023';
    END IF;
    SELECT x.id INTO v_sym FROM marketdata.symbols x WHERE x.symbol = upper(p_symbol);
    IF v_sym IS NULL THEN
        status := 'unknown_symbol'; detail := format('%s is not a recorded symbol', p_symbol);
        RETURN NEXT; RETURN;
    END IF;
    SELECT x.ts_exchange, x.last_update_id, x.source, x.bid_prices, x.bid_qtys, x.ask_prices, x.ask_qtys INTO s
      FROM marketdata.book_snapshots x
     WHERE x.symbol_id = v_sym AND x.ts_exchange <= p_at
     ORDER BY x.last_update_id DESC LIMIT 1;
    IF NOT FOUND THEN
        status := 'no_snapshot'; detail := 'no stored snapshot at or before this instant';
        RETURN NEXT; RETURN;
    END IF;
    snapshot_at := s.ts_exchange; snapshot_source := coalesce(s.source, 'rest');
    SELECT format('inside a %s hole of %s from %s to %s', g.reason, g.stream, g.gap_start, g.gap_end) INTO detail
      FROM marketdata.feed_gaps g
     WHERE g.symbol_id = v_sym AND regexp_replace(g.stream, '^[^@]*@', '') LIKE 'depth%' AND g.gap_start <= p_at AND g.gap_end >= p_at
     ORDER BY g.gap_start LIMIT 1;
    IF detail IS NOT NULL THEN
        status := 'gap'; RETURN NEXT; RETURN;
    END IF;
    -- A later snapshot's update id bounds the walk's index range from above: without it the scan of (symbol_id,
    -- final_update_id) ran on to the end of the partition, filtering by time (p50 144 ms, p95 260 ms for a liquid
    -- symbol-day at 100 ms diffs, measured with scripts/bench-book-at.sh). One taken more than 10 s after the instant
    -- (the same allowance as below): a snapshot can be a diff behind its own time, so the first one after the
    -- instant could stop the walk short of a diff sent before the instant.
    SELECT x.last_update_id INTO v_next FROM marketdata.book_snapshots x
     WHERE x.symbol_id = v_sym AND x.last_update_id > s.last_update_id AND x.ts_exchange > p_at + interval '10 seconds'
     ORDER BY x.last_update_id LIMIT 1;
    -- Walk the chain up to the instant, in update-id order. The time bounds let partitions and chunks outside
    -- [snapshot - 10 s, instant] be skipped (a REST snapshot's time is when it was answered, which can follow the
    -- first diffs after it by a little).
    v_last := s.last_update_id; v_upto := s.last_update_id; v_asof := s.ts_exchange;
    FOR d IN SELECT x.ts_exchange, x.first_update_id, x.final_update_id, x.prev_final_update_id
               FROM marketdata.depth_events x
              WHERE x.symbol_id = v_sym AND x.final_update_id >= s.last_update_id AND x.final_update_id <= coalesce(v_next, 9223372036854775807)
                AND x.ts_exchange >= s.ts_exchange - interval '10 seconds' AND x.ts_exchange <= p_at
              ORDER BY x.final_update_id
    LOOP
        IF v_n = 0 THEN
            IF NOT (d.first_update_id <= s.last_update_id OR d.prev_final_update_id = s.last_update_id) THEN
                status := 'gap';
                detail := format('the first stored diff after the snapshot (U %s, pu %s) does not join its last_update_id %s',
                                 d.first_update_id, d.prev_final_update_id, s.last_update_id);
                RETURN NEXT; RETURN;
            END IF;
        ELSIF d.prev_final_update_id <> v_last THEN
            status := 'gap';
            detail := format('diffs missing between u %s and pu %s (at %s)', v_last, d.prev_final_update_id, d.ts_exchange);
            RETURN NEXT; RETURN;
        END IF;
        v_last := d.final_update_id; v_asof := greatest(v_asof, d.ts_exchange); v_n := v_n + 1;
    END LOOP;
    v_upto := v_last;
    status := 'ok'; as_of := v_asof; last_update_id := v_upto; diffs_applied := v_n;
    -- The book: per side and price the quantity of the latest update. The snapshot counts as update last_update_id, below a
    -- diff with that same u: a snapshot whose lastUpdateId is the next diff's U (U <= lastUpdateId <= u) has not seen it.
    -- Within one diff the later of two entries for a price wins, as the daemon applies them in order.
    WITH lv AS (
        SELECT 0 AS side, l.p, l.q, s.last_update_id AS k, 0 AS r, l.o FROM unnest(s.bid_prices, s.bid_qtys) WITH ORDINALITY AS l(p, q, o)
        UNION ALL
        SELECT 1, l.p, l.q, s.last_update_id, 0, l.o FROM unnest(s.ask_prices, s.ask_qtys) WITH ORDINALITY AS l(p, q, o)
        UNION ALL
        SELECT 0, l.p, l.q, x.final_update_id, 1, l.o
          FROM marketdata.depth_events x CROSS JOIN LATERAL unnest(x.bid_prices, x.bid_qtys) WITH ORDINALITY AS l(p, q, o)
         WHERE x.symbol_id = v_sym AND x.final_update_id >= s.last_update_id AND x.final_update_id <= v_upto
           AND x.ts_exchange >= s.ts_exchange - interval '10 seconds' AND x.ts_exchange <= p_at
        UNION ALL
        SELECT 1, l.p, l.q, x.final_update_id, 1, l.o
          FROM marketdata.depth_events x CROSS JOIN LATERAL unnest(x.ask_prices, x.ask_qtys) WITH ORDINALITY AS l(p, q, o)
         WHERE x.symbol_id = v_sym AND x.final_update_id >= s.last_update_id AND x.final_update_id <= v_upto
           AND x.ts_exchange >= s.ts_exchange - interval '10 seconds' AND x.ts_exchange <= p_at
    ), book AS MATERIALIZED (
        SELECT DISTINCT ON (lv.side, lv.p) lv.side, lv.p, lv.q FROM lv ORDER BY lv.side, lv.p, lv.k DESC, lv.r DESC, lv.o DESC
    )
    SELECT (SELECT array_agg(b.p ORDER BY b.p DESC) FROM (SELECT y.p FROM book y WHERE y.side = 0 AND y.q > 0 ORDER BY y.p DESC LIMIT p_levels) b),
           (SELECT array_agg(b.q ORDER BY b.p DESC) FROM (SELECT y.p, y.q FROM book y WHERE y.side = 0 AND y.q > 0 ORDER BY y.p DESC LIMIT p_levels) b),
           (SELECT array_agg(b.p ORDER BY b.p) FROM (SELECT y.p FROM book y WHERE y.side = 1 AND y.q > 0 ORDER BY y.p LIMIT p_levels) b),
           (SELECT array_agg(b.q ORDER BY b.p) FROM (SELECT y.p, y.q FROM book y WHERE y.side = 1 AND y.q > 0 ORDER BY y.p LIMIT p_levels) b)
      INTO bid_prices, bid_qtys, ask_prices, ask_qtys;
    bid_prices := coalesce(bid_prices, '{}'); bid_qtys := coalesce(bid_qtys, '{}');
    ask_prices := coalesce(ask_prices, '{}'); ask_qtys := coalesce(ask_qtys, '{}');
    RETURN NEXT;
END $$;

COMMENT ON FUNCTION marketdata.book_at(text, timestamptz, integer) IS
    'The order book of a symbol at an instant: the latest stored snapshot at or before it plus the stored diffs up to it. status ok, no_snapshot, gap or unknown_symbol; the level arrays (best first) only when ok.';

-- The best bid and ask at an instant, with mid and spread: book_at's first level.
CREATE OR REPLACE FUNCTION marketdata.book_top_at(p_symbol text, p_at timestamptz)
RETURNS TABLE (symbol text, at timestamptz, status text, as_of timestamptz, best_bid float8, bid_qty float8,
               best_ask float8, ask_qty float8, mid float8, spread float8)
LANGUAGE sql STABLE AS $$
    SELECT b.symbol, b.at, b.status, b.as_of, b.bid_prices[1], b.bid_qtys[1], b.ask_prices[1], b.ask_qtys[1],
           (b.bid_prices[1] + b.ask_prices[1]) / 2, b.ask_prices[1] - b.bid_prices[1]
    FROM marketdata.book_at(p_symbol, p_at, 1) b
$$;
