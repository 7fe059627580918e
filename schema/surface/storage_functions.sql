-- The maintenance the daemon runs where TimescaleDB's background jobs are not available: time partitions
-- created ahead and dropped past retention (plain PostgreSQL, Citus), chunks dropped past retention
-- (TimescaleDB with Apache-licensed features only), and 1-second rollups kept up to date incrementally from
-- the batch ledger (both). The daemon calls run_maintenance() every few minutes and run_rollups() every
-- second; both are safe to call from several daemons at once (one wins an advisory lock, the others return)
-- and from psql by hand. Applied before the tier's setup by every migrate whose SQL changed.

CREATE OR REPLACE FUNCTION marketdata.storage_tier() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT value FROM marketdata.storage_settings WHERE key = 'tier' $$;

-- Whether a batch written to this table must be rolled up by the daemon (tiers without continuous aggregates).
CREATE OR REPLACE FUNCTION marketdata.rollup_tracked(p_table text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (p_table IN ('book_ticker', 'trades') AND coalesce(marketdata.storage_tier(), 'postgres') <> 'timescaledb')
        OR p_table IN ('mark_price', 'liquidations', 'open_interest')
$$;

-- Partitions are aligned to their width from the Unix epoch (UTC), so every daemon computes the same bounds.
CREATE OR REPLACE FUNCTION marketdata.partition_start(p_ts timestamptz, p_width interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_timestamp(floor(extract(epoch FROM p_ts) / extract(epoch FROM p_width)) * extract(epoch FROM p_width))
$$;

-- The partitions of p_table with their bounds (the default partition has none and is left out).
CREATE OR REPLACE FUNCTION marketdata.partition_bounds(p_table text)
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = format('marketdata.%I', p_table)::regclass
      AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
$$;

-- Creates the partition of p_table that holds p_ts, unless one covers it. Bounds are aligned to the table's
-- width; after a width change they are clipped to what existing partitions leave free. Rows that arrived
-- before it existed (they wait in the table's default partition, so nothing is ever refused) are moved in.
-- SECURITY DEFINER: the daemon's writer role may create partitions without owning the tables.
CREATE OR REPLACE FUNCTION marketdata.ensure_partition(p_table text, p_ts timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg       marketdata.storage_tables;
    v_start   timestamptz;
    v_end     timestamptz;
    v_name    text;
    v_default text := p_table || '_default';
    v_columns text;
    b         record;
BEGIN
    SELECT * INTO cfg FROM marketdata.storage_tables WHERE table_name = p_table;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'marketdata.storage_tables has no row for %', p_table;
    END IF;
    v_start := marketdata.partition_start(p_ts, cfg.chunk_interval);
    v_end := v_start + cfg.chunk_interval;
    FOR b IN SELECT * FROM marketdata.partition_bounds(p_table) x WHERE x.range_start < v_end AND x.range_end > v_start ORDER BY x.range_start LOOP
        IF b.range_start <= v_start THEN
            v_start := greatest(v_start, b.range_end);
        ELSE
            v_end := least(v_end, b.range_start);
        END IF;
    END LOOP;
    IF v_start >= v_end THEN
        RETURN NULL;
    END IF;
    v_name := p_table || '_p' || to_char(v_start AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MI');
    IF to_regclass(format('marketdata.%I', v_default)) IS NULL THEN
        EXECUTE format('CREATE TABLE marketdata.%I PARTITION OF marketdata.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, p_table, v_start, v_end);
    ELSE
        -- ATTACH refuses while the default partition holds rows of the new range: move them first.
        EXECUTE format('CREATE TABLE marketdata.%I (LIKE marketdata.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)', v_name, p_table);
        -- Stored columns only: generated ones (the rollups' seed aliases) are computed again on insert.
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_columns FROM pg_attribute a
         WHERE a.attrelid = format('marketdata.%I', p_table)::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
        EXECUTE format('WITH moved AS (DELETE FROM marketdata.%I WHERE %I >= $1 AND %I < $2 RETURNING %s) INSERT INTO marketdata.%I (%s) SELECT %s FROM moved',
                       v_default, cfg.time_column, cfg.time_column, v_columns, v_name, v_columns, v_columns) USING v_start, v_end;
        EXECUTE format('ALTER TABLE marketdata.%I ATTACH PARTITION marketdata.%I FOR VALUES FROM (%L) TO (%L)',
                       p_table, v_name, v_start, v_end);
        -- ATTACH distributed the moved rows to the workers; Citus keeps the coordinator's local copy on disk until told.
        -- (Not yet distributed during the first migrate: citus.sql distributes every partition afterwards.) Nested, so
        -- that pg_dist_partition is only named where Citus is installed.
        IF marketdata.storage_tier() = 'citus' THEN
            IF EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = format('marketdata.%I', v_name)::regclass) THEN
                PERFORM truncate_local_data_after_distributing_table(format('marketdata.%I', v_name)::regclass);
            END IF;
        END IF;
    END IF;
    RETURN v_name;
END $$;

-- Drops p_table's partitions that end at or before p_now - retention, and expired rows still in its default partition.
CREATE OR REPLACE FUNCTION marketdata.drop_expired_partitions(p_table text, p_now timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg    marketdata.storage_tables;
    part   record;
    v_cut  timestamptz;
BEGIN
    SELECT * INTO cfg FROM marketdata.storage_tables WHERE table_name = p_table;
    IF NOT FOUND OR cfg.retention IS NULL THEN
        RETURN;
    END IF;
    v_cut := p_now - cfg.retention;
    FOR part IN SELECT * FROM marketdata.partition_bounds(p_table) x WHERE x.range_end <= v_cut LOOP
        EXECUTE format('DROP TABLE marketdata.%I', part.partition_name);
        RETURN NEXT part.partition_name;
    END LOOP;
    IF to_regclass(format('marketdata.%I', p_table || '_default')) IS NOT NULL THEN
        EXECUTE format('DELETE FROM marketdata.%I WHERE %I < $1', p_table || '_default', cfg.time_column) USING v_cut;
    END IF;
END $$;

-- One maintenance pass at p_now (the daemon passes its clock). Returns what it did, one row per action.
-- Plain PostgreSQL and Citus: partitions from one width back to p_ahead ahead, partitions for rows waiting in
-- a default partition, and retention. TimescaleDB without its Community features: retention via drop_chunks.
-- Full TimescaleDB: nothing; its own policies do this.
CREATE OR REPLACE FUNCTION marketdata.run_maintenance(p_now timestamptz DEFAULT now(), p_ahead interval DEFAULT interval '2 days')
RETURNS TABLE (action text, table_name text, object text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    t       marketdata.storage_tables;
    v_tier  text := coalesce(marketdata.storage_tier(), 'postgres');
    v_ts    timestamptz;
    v_made  text;
BEGIN
    -- 'OBIM': one maintainer at a time across daemons; the others skip this pass.
    IF NOT pg_try_advisory_xact_lock(1329744205) THEN
        RETURN;
    END IF;
    FOR t IN SELECT * FROM marketdata.storage_tables ORDER BY storage_tables.table_name LOOP
        CONTINUE WHEN to_regclass(format('marketdata.%I', t.table_name)) IS NULL;
        IF v_tier IN ('postgres', 'citus') THEN
            v_ts := marketdata.partition_start(p_now - t.chunk_interval, t.chunk_interval);
            WHILE v_ts <= p_now + greatest(p_ahead, t.chunk_interval) LOOP
                v_made := marketdata.ensure_partition(t.table_name, v_ts);
                IF v_made IS NOT NULL THEN
                    action := 'created'; table_name := t.table_name; object := v_made; RETURN NEXT;
                END IF;
                v_ts := v_ts + t.chunk_interval;
            END LOOP;
            IF to_regclass(format('marketdata.%I', t.table_name || '_default')) IS NOT NULL THEN
                FOR v_ts IN EXECUTE format('SELECT DISTINCT marketdata.partition_start(%I, $1) FROM marketdata.%I WHERE %I >= $2',
                                           t.time_column, t.table_name || '_default', t.time_column)
                            USING t.chunk_interval, p_now - coalesce(t.retention, interval '100 years')
                LOOP
                    v_made := marketdata.ensure_partition(t.table_name, v_ts);
                    IF v_made IS NOT NULL THEN
                        action := 'created for waiting rows'; table_name := t.table_name; object := v_made; RETURN NEXT;
                    END IF;
                END LOOP;
            END IF;
            FOR v_made IN SELECT marketdata.drop_expired_partitions(t.table_name, p_now) LOOP
                action := 'dropped'; table_name := t.table_name; object := v_made; RETURN NEXT;
            END LOOP;
        ELSIF v_tier = 'timescaledb-apache' AND t.retention IS NOT NULL THEN
            FOR v_made IN EXECUTE format('SELECT %I.drop_chunks($1, older_than => $2)::text',
                                         (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                                          WHERE e.extname = 'timescaledb'))
                          USING format('marketdata.%I', t.table_name)::regclass, p_now - t.retention
            LOOP
                action := 'dropped'; table_name := t.table_name; object := v_made; RETURN NEXT;
            END LOOP;
        END IF;
    END LOOP;
END $$;

-- Recomputes the 1-second rollups of every symbol over [p_from, p_to] (whole seconds) from the raw rows.
-- Idempotent; usable by hand after loading rows outside the daemon.
-- enable_seqscan is off inside: the range is always narrow, but the cached plan of a pass is made while the
-- current partition is young (nearly empty, not analysed yet) and would keep scanning all of it as it grows.
-- A profile at 250,000 msg/s offered showed exactly that: sequential scans made the rollups cost more database
-- CPU than the COPY. With it off, the BRIN time index is used.
CREATE OR REPLACE FUNCTION marketdata.refresh_rollups(p_table text, p_from timestamptz, p_to timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_from timestamptz := date_trunc('second', p_from);
    v_to   timestamptz := date_trunc('second', p_to) + interval '1 second';
    v_rows bigint;
BEGIN
    IF p_table = 'book_ticker' THEN
        INSERT INTO marketdata.bt_1s AS r (symbol_id, bucket, mid_open, mid_high, mid_low, mid_close,
                                          spread_mean, spread_min, spread_max, bid_qty_mean, ask_qty_mean, updates,
                                          crossed, non_positive, negative_latency, spread_std, avg_latency_ms)
        SELECT b.symbol_id, date_trunc('second', b.ts_exchange),
               (array_agg((b.best_bid + b.best_ask) / 2 ORDER BY b.ts_exchange, b.update_id))[1],
               max((b.best_bid + b.best_ask) / 2), min((b.best_bid + b.best_ask) / 2),
               (array_agg((b.best_bid + b.best_ask) / 2 ORDER BY b.ts_exchange DESC, b.update_id DESC))[1],
               avg(b.best_ask - b.best_bid), min(b.best_ask - b.best_bid), max(b.best_ask - b.best_bid),
               avg(b.bid_qty), avg(b.ask_qty), count(*),
               count(*) FILTER (WHERE b.best_bid >= b.best_ask),
               count(*) FILTER (WHERE b.best_bid <= 0 OR b.best_ask <= 0 OR b.bid_qty <= 0 OR b.ask_qty <= 0),
               count(*) FILTER (WHERE b.ts_ingest < b.ts_exchange),
               stddev_samp(b.best_ask - b.best_bid), avg(extract(epoch FROM b.ts_ingest - b.ts_exchange) * 1000)
        FROM marketdata.book_ticker b
        WHERE b.ts_exchange >= v_from AND b.ts_exchange < v_to
        GROUP BY 1, 2
        ON CONFLICT (symbol_id, bucket) DO UPDATE SET
            mid_open = EXCLUDED.mid_open, mid_high = EXCLUDED.mid_high, mid_low = EXCLUDED.mid_low, mid_close = EXCLUDED.mid_close,
            spread_mean = EXCLUDED.spread_mean, spread_min = EXCLUDED.spread_min, spread_max = EXCLUDED.spread_max,
            bid_qty_mean = EXCLUDED.bid_qty_mean, ask_qty_mean = EXCLUDED.ask_qty_mean, updates = EXCLUDED.updates,
            crossed = EXCLUDED.crossed, non_positive = EXCLUDED.non_positive, negative_latency = EXCLUDED.negative_latency,
            spread_std = EXCLUDED.spread_std, avg_latency_ms = EXCLUDED.avg_latency_ms;
    ELSIF p_table = 'trades' THEN
        INSERT INTO marketdata.trade_1s AS r (symbol_id, bucket, agg_trades, trades, volume, quote_volume, vwap,
                                             buy_volume, sell_volume, price_open, price_high, price_low, price_close,
                                             non_positive, negative_latency)
        SELECT t.symbol_id, date_trunc('second', t.ts_exchange), count(*), sum(t.last_trade_id - t.first_trade_id + 1),
               sum(t.qty), sum(t.price * t.qty), sum(t.price * t.qty) / nullif(sum(t.qty), 0),
               coalesce(sum(t.qty) FILTER (WHERE NOT t.is_buyer_maker), 0), coalesce(sum(t.qty) FILTER (WHERE t.is_buyer_maker), 0),
               (array_agg(t.price ORDER BY t.agg_trade_id))[1], max(t.price), min(t.price),
               (array_agg(t.price ORDER BY t.agg_trade_id DESC))[1],
               count(*) FILTER (WHERE t.price <= 0 OR t.qty <= 0),
               count(*) FILTER (WHERE t.ts_ingest < t.ts_exchange AND NOT t.is_backfilled)
        FROM marketdata.trades t
        WHERE t.ts_exchange >= v_from AND t.ts_exchange < v_to
        GROUP BY 1, 2
        ON CONFLICT (symbol_id, bucket) DO UPDATE SET
            agg_trades = EXCLUDED.agg_trades, trades = EXCLUDED.trades, volume = EXCLUDED.volume,
            quote_volume = EXCLUDED.quote_volume, vwap = EXCLUDED.vwap, buy_volume = EXCLUDED.buy_volume,
            sell_volume = EXCLUDED.sell_volume, price_open = EXCLUDED.price_open, price_high = EXCLUDED.price_high,
            price_low = EXCLUDED.price_low, price_close = EXCLUDED.price_close,
            non_positive = EXCLUDED.non_positive, negative_latency = EXCLUDED.negative_latency;
    ELSIF p_table IN ('mark_price', 'liquidations', 'open_interest') THEN
        RETURN marketdata.refresh_derivatives_1s(p_table, p_from, p_to);
    ELSE
        RAISE EXCEPTION 'no rollup for table %', p_table;
    END IF;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END $$;

-- Recomputes derivatives_1s (schema/tiers/derivatives_1s.sql) for the seconds of [p_from, p_to] in which any of
-- mark_price, liquidations or open_interest has a row, and, for a batch of p_table = mark_price or open_interest,
-- the later rows of the same symbols that carry a value from before p_to: a late row (a spool replay, a backfilled
-- minute bar, an answer rolled up after the seconds that follow it) may be the newer value for them. Idempotent.
-- On Citus one statement per symbol, each filtered by its id so it runs on that symbol's node: a lateral lookup
-- over distributed tables is a join Citus only takes within one shard.
CREATE OR REPLACE FUNCTION marketdata.refresh_derivatives_1s(p_table text, p_from timestamptz, p_to timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_from  timestamptz := date_trunc('second', p_from);
    v_to    timestamptz := date_trunc('second', p_to) + interval '1 second';
    v_rows  bigint := 0;
    v_n     bigint;
    v_sym   integer;
    v_sql   text;
BEGIN
    -- %1$s and %2$s: a symbol filter on the rows of x and y (empty, or "AND x.symbol_id = N").
    v_sql := $q$
        WITH src AS (
            SELECT x.symbol_id, date_trunc('second', x.ts_exchange) AS bucket FROM marketdata.mark_price x
             WHERE x.ts_exchange >= $1 AND x.ts_exchange < $2 %1$s
            UNION
            SELECT x.symbol_id, date_trunc('second', x.ts_exchange) FROM marketdata.liquidations x
             WHERE x.ts_exchange >= $1 AND x.ts_exchange < $2 %1$s
            UNION
            SELECT x.symbol_id, date_trunc('second', x.ts_exchange) FROM marketdata.open_interest x
             WHERE x.ts_exchange >= $1 AND x.ts_exchange < $2 %1$s
        ), later AS (
            SELECT x.symbol_id, x.bucket FROM marketdata.derivatives_1s x
             WHERE x.bucket >= $2 %1$s AND x.symbol_id IN (SELECT s.symbol_id FROM src s)
               AND (($3 = 'mark_price' AND (x.mark_at IS NULL OR x.mark_at < $2))
                 OR ($3 = 'open_interest' AND (x.open_interest_at IS NULL OR x.open_interest_at < $2)))
        ), k AS (SELECT * FROM src UNION SELECT * FROM later)
        INSERT INTO marketdata.derivatives_1s AS r (symbol_id, bucket, mark_price, index_price, est_settle_price, funding_rate,
                                                   next_funding_time, mark_at, mark_backfilled, mark_updates, open_interest,
                                                   open_interest_at, liq_buy_count, liq_sell_count, liq_buy_qty, liq_sell_qty,
                                                   liq_buy_notional, liq_sell_notional)
        SELECT k.symbol_id, k.bucket, m.mark_price, m.index_price, m.est_settle_price, m.funding_rate, m.next_funding_time,
               m.ts_exchange, m.is_backfilled, n.updates, o.open_interest, o.ts_exchange,
               l.buy_count, l.sell_count, l.buy_qty, l.sell_qty, l.buy_notional, l.sell_notional
        FROM k
        LEFT JOIN LATERAL (SELECT y.mark_price, y.index_price, y.est_settle_price, y.funding_rate, y.next_funding_time,
                                  y.ts_exchange, y.is_backfilled
                             FROM marketdata.mark_price y
                            WHERE y.symbol_id = k.symbol_id %2$s AND y.ts_exchange < k.bucket + interval '1 second'
                            ORDER BY y.ts_exchange DESC, y.is_backfilled LIMIT 1) m ON true
        CROSS JOIN LATERAL (SELECT count(*)::integer AS updates FROM marketdata.mark_price y
                             WHERE y.symbol_id = k.symbol_id %2$s AND y.ts_exchange >= k.bucket
                               AND y.ts_exchange < k.bucket + interval '1 second') n
        LEFT JOIN LATERAL (SELECT y.open_interest, y.ts_exchange FROM marketdata.open_interest y
                            WHERE y.symbol_id = k.symbol_id %2$s AND y.ts_exchange < k.bucket + interval '1 second'
                            ORDER BY y.ts_exchange DESC LIMIT 1) o ON true
        CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE y.side = 'BUY')::integer AS buy_count,
                                   count(*) FILTER (WHERE y.side = 'SELL')::integer AS sell_count,
                                   coalesce(sum(y.filled_qty) FILTER (WHERE y.side = 'BUY'), 0) AS buy_qty,
                                   coalesce(sum(y.filled_qty) FILTER (WHERE y.side = 'SELL'), 0) AS sell_qty,
                                   coalesce(sum(y.avg_price * y.filled_qty) FILTER (WHERE y.side = 'BUY'), 0) AS buy_notional,
                                   coalesce(sum(y.avg_price * y.filled_qty) FILTER (WHERE y.side = 'SELL'), 0) AS sell_notional
                              FROM marketdata.liquidations y
                             WHERE y.symbol_id = k.symbol_id %2$s AND y.ts_exchange >= k.bucket
                               AND y.ts_exchange < k.bucket + interval '1 second') l
        ON CONFLICT (symbol_id, bucket) DO UPDATE SET
            mark_price = EXCLUDED.mark_price, index_price = EXCLUDED.index_price, est_settle_price = EXCLUDED.est_settle_price,
            funding_rate = EXCLUDED.funding_rate, next_funding_time = EXCLUDED.next_funding_time, mark_at = EXCLUDED.mark_at,
            mark_backfilled = EXCLUDED.mark_backfilled, mark_updates = EXCLUDED.mark_updates,
            open_interest = EXCLUDED.open_interest, open_interest_at = EXCLUDED.open_interest_at,
            liq_buy_count = EXCLUDED.liq_buy_count, liq_sell_count = EXCLUDED.liq_sell_count,
            liq_buy_qty = EXCLUDED.liq_buy_qty, liq_sell_qty = EXCLUDED.liq_sell_qty,
            liq_buy_notional = EXCLUDED.liq_buy_notional, liq_sell_notional = EXCLUDED.liq_sell_notional
    $q$;
    IF marketdata.storage_tier() = 'citus' THEN
        FOR v_sym IN SELECT x.symbol_id FROM marketdata.mark_price x WHERE x.ts_exchange >= v_from AND x.ts_exchange < v_to
                     UNION SELECT x.symbol_id FROM marketdata.liquidations x WHERE x.ts_exchange >= v_from AND x.ts_exchange < v_to
                     UNION SELECT x.symbol_id FROM marketdata.open_interest x WHERE x.ts_exchange >= v_from AND x.ts_exchange < v_to
        LOOP
            EXECUTE format(v_sql, format('AND x.symbol_id = %s', v_sym), format('AND y.symbol_id = %s', v_sym)) USING v_from, v_to, p_table;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            v_rows := v_rows + v_n;
        END LOOP;
    ELSE
        EXECUTE format(v_sql, '', '') USING v_from, v_to, p_table;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
    END IF;
    RETURN v_rows;
END $$;

-- Rolls up the batches committed since the last call: each batch's time range (merged where they touch)
-- is recomputed, then the batches are marked done, in one transaction. A batch that commits while this runs
-- is still pending afterwards and is taken by the next call. One call takes at most p_max_rows rows' worth of
-- batches (at least one batch), so a backlog is worked off in short transactions; pending_after says how
-- many batches are still waiting, backlog how many of them this pass could have taken but its budget left (the
-- caller calls again at once only for those: looping while anything was pending re-rolled the same seconds many
-- times a second once batches got small, issue 17).
-- Returns nothing when another session holds the turn.
-- A batch is taken once it is p_settle old: by then the other batches holding rows of the same seconds
-- (a second's rows arrive in several 100 ms batches) have committed too, so each second is computed about
-- once instead of once per pass that saw part of it (measured: rollups had cost more CPU than the COPY).
-- The result gained backlog (2026-12-02): a function's result columns cannot change in place.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'marketdata' AND p.proname = 'run_rollups' AND NOT ('backlog' = ANY (p.proargnames))) THEN
        DROP FUNCTION marketdata.run_rollups(bigint, interval);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION marketdata.run_rollups(p_max_rows bigint DEFAULT 200000, p_settle interval DEFAULT interval '2 seconds')
RETURNS TABLE (batches integer, ranges integer, buckets bigint, pending_after bigint, backlog bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    b       record;
    v_ids   uuid[] := '{}';
    v_table text;
    v_from  timestamptz;
    v_to    timestamptz;
    -- One cutoff for the whole pass: backlog is what this pass's budget left, not what settled while it ran.
    v_cutoff timestamptz := clock_timestamp() - p_settle;
BEGIN
    -- 'OBIR': one roller at a time across daemons.
    IF NOT pg_try_advisory_xact_lock(1329744210) THEN
        RETURN;
    END IF;
    batches := 0; ranges := 0; buckets := 0;
    FOR b IN
        SELECT p.batch_id, p.table_name AS tname, p.ts_min, p.ts_max FROM (
            SELECT l.*, sum(l.row_count) OVER (ORDER BY l.committed_at, l.batch_id) - l.row_count AS rows_before FROM (
                SELECT i.batch_id, i.table_name, i.ts_min, i.ts_max, i.row_count, i.committed_at FROM marketdata.ingest_batches i
                WHERE i.rollup_pending AND i.committed_at <= v_cutoff
                ORDER BY i.committed_at LIMIT 5000 FOR UPDATE SKIP LOCKED) l) p
        WHERE p.rows_before < p_max_rows
        ORDER BY p.table_name, p.ts_min NULLS FIRST
    LOOP
        v_ids := v_ids || b.batch_id;
        batches := batches + 1;
        CONTINUE WHEN b.ts_min IS NULL;
        IF v_table IS DISTINCT FROM b.tname OR b.ts_min > v_to + interval '1 second' THEN
            IF v_table IS NOT NULL THEN
                ranges := ranges + 1;
                buckets := buckets + marketdata.refresh_rollups(v_table, v_from, v_to);
            END IF;
            v_table := b.tname; v_from := b.ts_min; v_to := b.ts_max;
        ELSE
            v_to := greatest(v_to, b.ts_max);
        END IF;
    END LOOP;
    IF v_table IS NOT NULL THEN
        ranges := ranges + 1;
        buckets := buckets + marketdata.refresh_rollups(v_table, v_from, v_to);
    END IF;
    UPDATE marketdata.ingest_batches i SET rollup_pending = false WHERE i.batch_id = ANY (v_ids);
    SELECT count(*), count(*) FILTER (WHERE i.committed_at <= v_cutoff)
      INTO pending_after, backlog FROM marketdata.ingest_batches i WHERE i.rollup_pending;
    RETURN NEXT;
END $$;

-- The columns get_yesterday_training_data reads (bt_1s mid_close and spread_mean; trade_1s agg_trades, vwap,
-- buy_volume, sell_volume) ride in the rollups' primary key, so a symbol's day is read from the key alone, in
-- symbol and second order. From the heap it is 86,400 scattered rows: the rollups are written in time order,
-- so one symbol's seconds are spread over every page of the day. On tables made before this, the key is rebuilt
-- (about 13 s per 200 symbol-days measured); p_max_rows (estimated rollup rows) keeps a migrate from doing that
-- to a large database, which gets a warning instead and can call this without a limit at a quiet time. Full
-- TimescaleDB: the rollups are continuous aggregates; a covering index goes on each. Returns what it changed.
CREATE OR REPLACE FUNCTION marketdata.cover_rollup_keys(p_max_rows bigint DEFAULT NULL) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r       record;
    v_rel   regclass;
    v_cagg  boolean;
    v_key   text;
    v_rows  float8;
BEGIN
    FOR r IN SELECT * FROM (VALUES ('bt_1s', 'mid_close, spread_mean'),
                                   ('trade_1s', 'agg_trades, vwap, buy_volume, sell_volume')) AS x(t, cols) LOOP
        v_rel := to_regclass('marketdata.' || r.t);
        CONTINUE WHEN v_rel IS NULL;
        -- What is left to do, and how many rows it must index (estimated).
        v_cagg := (SELECT c.relkind FROM pg_class c WHERE c.oid = v_rel) = 'v';
        IF v_cagg THEN
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = r.t || '_training_cover' AND c.relkind = 'i');
            SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) INTO v_rows
              FROM _timescaledb_catalog.continuous_agg a
              JOIN _timescaledb_catalog.hypertable h ON h.id = a.mat_hypertable_id
              JOIN pg_inherits i ON i.inhparent = format('%I.%I', h.schema_name, h.table_name)::regclass
              JOIN pg_class c ON c.oid = i.inhrelid
             WHERE a.user_view_schema = 'marketdata' AND a.user_view_name = r.t;
        ELSE
            SELECT c.conname INTO v_key FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid
             WHERE c.conrelid = v_rel AND c.contype = 'p' AND i.indnatts = i.indnkeyatts;
            CONTINUE WHEN v_key IS NULL;
            -- Partitions or chunks, and a plain table itself. Citus's coordinator holds no rows to count: any row
            -- at all counts as over the limit there.
            IF marketdata.storage_tier() = 'citus' THEN
                EXECUTE format('SELECT CASE WHEN EXISTS (SELECT 1 FROM marketdata.%I) THEN float8 %L ELSE 0 END', r.t, 'Infinity') INTO v_rows;
            ELSE
                SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) INTO v_rows FROM pg_class c
                 WHERE (c.oid = v_rel AND c.relkind = 'r') OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = v_rel);
            END IF;
        END IF;
        IF p_max_rows IS NOT NULL AND v_rows > p_max_rows THEN
            RAISE WARNING 'marketdata.% has no index carrying the training columns yet (about % rows to index): get_yesterday_training_data reads them from the table, much slower; run SELECT marketdata.cover_rollup_keys() at a quiet time (the table is locked while its index is built)',
                r.t, CASE WHEN v_rows = 'Infinity' THEN 'unknown' ELSE round(v_rows)::text END;
            CONTINUE;
        END IF;
        IF v_cagg THEN
            EXECUTE format('CREATE INDEX %I ON marketdata.%I (symbol_id, bucket) INCLUDE (%s)', r.t || '_training_cover', r.t, r.cols);
        ELSE
            EXECUTE format('ALTER TABLE marketdata.%I DROP CONSTRAINT %I', r.t, v_key);
            EXECUTE format('ALTER TABLE marketdata.%I ADD PRIMARY KEY (symbol_id, bucket) INCLUDE (%s)', r.t, r.cols);
        END IF;
        RETURN NEXT r.t;
    END LOOP;
END $$;

-- Re-created functions start with PUBLIC's EXECUTE: give back what roles.sql gives (once it has run).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderbook_writer') THEN
        REVOKE EXECUTE ON FUNCTION marketdata.run_rollups(bigint, interval) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION marketdata.run_rollups(bigint, interval) TO orderbook_writer;
    END IF;
END $$;
