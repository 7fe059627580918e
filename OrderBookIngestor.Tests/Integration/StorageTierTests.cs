using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// Each storage tier on a real server of its own: its layout (native partitions, hypertables with policies and
/// continuous aggregates, Citus distribution), its retention and partition upkeep, the 1-second rollups against an
/// independent computation, the views and functions users query, and the writer/reader roles. Everything goes
/// through the real write path (binary COPY with the batch ledger).
/// </summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class StorageTierTests(string tier) : StorageTest(tier)
{
    private static bool Partitioned(string tier) => tier is StorageTiers.Postgres or StorageTiers.Citus;

    [Test]
    public async Task Migrate_LaysOutTheTier_AndRunsTheSetupAgainOnlyWhenSettingsChange()
    {
        var outcome = await Migrate();
        Assert.That(outcome.Tier, Is.EqualTo(Tier), outcome.TierNote);
        Assert.That(outcome.Applied, Is.EqualTo(SchemaMigrator.Migrations().Count));
        Assert.That(await Db.ScalarAsync<string>("SELECT marketdata.storage_tier()"), Is.EqualTo(Tier));
        if (Partitioned(Tier))
        {
            foreach (var table in StorageLayout.Tables.Select(t => t.Table))
            {
                Assert.That(await Db.ScalarAsync<string>($"SELECT relkind::text FROM pg_class WHERE oid = 'marketdata.{table}'::regclass"), Is.EqualTo("p"), table);
                Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM pg_inherits WHERE inhparent = 'marketdata.{table}'::regclass"), Is.GreaterThanOrEqualTo(2), $"{table}: default + current partitions");
                Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM pg_class WHERE oid = to_regclass('marketdata.{table}_default')"), Is.EqualTo(1), $"{table}: a default partition");
            }

            // A row now lands in a partition of its own range, not the default.
            var id = await RegisterAsync("BTCUSDT");
            await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1, DateTimeOffset.UtcNow, 100, 101)]);
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker_default"), Is.Zero);
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker"), Is.EqualTo(1));
        }

        // Mark price, liquidations and open interest go through the same COPY path on every tier, NULLs and text included.
        var sym = await RegisterAsync("ETHUSDT");
        var nowMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await CommitAsync<MarkPriceEvent, MarkPriceRows>(Db.DataSource, [new MarkPriceEvent(sym, nowMs, nowMs * 1000, 3000.5, 3000.25, 3000.1, double.NaN, 0),
            new MarkPriceEvent(sym, nowMs + 1000, nowMs * 1000, 3000.5, 3000.25, 3000.1, -0.0001, nowMs + 3_600_000)]);
        await CommitAsync<LiquidationEvent, LiquidationRows>(Db.DataSource, [new LiquidationEvent(sym, nowMs, nowMs - 1, nowMs * 1000, "SELL", "LIMIT", "IOC", "FILLED", 2, 2999, 2999.5, 2, 2)]);
        await CommitAsync<OpenInterestRow, OpenInterestRows>(Db.DataSource, [new OpenInterestRow(sym, nowMs, nowMs * 1000, 12345.678)]);
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT concat_ws('|', (SELECT count(*) || ',' || count(funding_rate) || ',' || sum(funding_rate) || ',' || count(next_funding_time) FROM marketdata.mark_price WHERE symbol_id = {sym}),
                                  (SELECT side || ',' || status || ',' || avg_price FROM marketdata.liquidations WHERE symbol_id = {sym}),
                                  (SELECT open_interest::text FROM marketdata.open_interest WHERE symbol_id = {sym}))
            """), Is.EqualTo("2,1,-0.0001,1|SELL,FILLED,2999.5|12345.678"));
        if (Partitioned(Tier))
        {
            Assert.That(await Db.ScalarAsync<long>("SELECT (SELECT count(*) FROM marketdata.mark_price_default) + (SELECT count(*) FROM marketdata.liquidations_default) + (SELECT count(*) FROM marketdata.open_interest_default)"), Is.Zero);
        }

        if (Tier == StorageTiers.Citus)
        {
            Assert.That(await Db.ScalarAsync<long>("""
                SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h' AND colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'marketdata.book_ticker'::regclass)
                  AND logicalrelid::text IN ('marketdata.book_ticker', 'marketdata.trades', 'marketdata.depth_events', 'marketdata.book_snapshots', 'marketdata.orderbook_top',
                                          'marketdata.mark_price', 'marketdata.liquidations', 'marketdata.open_interest', 'marketdata.bt_1s', 'marketdata.trade_1s', 'marketdata.derivatives_1s')
                """), Is.EqualTo(11), "event tables and rollups distributed by symbol_id, co-located");
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'marketdata.book_ticker_default'::regclass"), Is.EqualTo(1), "the default partition is distributed too");
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'n' AND logicalrelid::text IN ('marketdata.symbols', 'marketdata.feed_gaps', 'marketdata.ingest_batches', 'marketdata.storage_settings')"), Is.EqualTo(4), "reference tables");
            Assert.That(await Db.ScalarAsync<long>("SELECT count(DISTINCT nodename || nodeport) FROM pg_dist_shard_placement p JOIN pg_dist_shard s USING (shardid) WHERE s.logicalrelid = 'marketdata.trades'::regclass"), Is.EqualTo(2), "shards on both workers");
        }

        if (Tier is StorageTiers.Timescale or StorageTiers.TimescaleApache)
        {
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_schema = 'marketdata'"), Is.EqualTo(Tier == StorageTiers.Timescale ? 9 : 11),
                "every event table and the rollup tables (full TimescaleDB: derivatives_1s only, bt_1s and trade_1s are continuous aggregates)");
            Assert.That(await Db.ScalarAsync<string>("SELECT time_interval::text FROM timescaledb_information.dimensions WHERE hypertable_schema = 'marketdata' AND hypertable_name = 'book_ticker'"), Is.EqualTo("06:00:00"));
        }

        if (Tier == StorageTiers.Timescale)
        {
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'marketdata' AND view_name IN ('bt_1s', 'trade_1s')"), Is.EqualTo(2));
            Assert.That(await Db.ScalarAsync<string>("""
                SELECT string_agg(d.time_interval::text, ',') FROM timescaledb_information.continuous_aggregates c
                JOIN timescaledb_information.dimensions d ON d.hypertable_schema = c.materialization_hypertable_schema AND d.hypertable_name = c.materialization_hypertable_name
                WHERE c.view_schema = 'marketdata'
                """), Is.EqualTo("7 days,7 days"), "the aggregates' chunks are the configured 168 h");
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_schema = 'marketdata' AND proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')"),
                Is.EqualTo(9 + 11 + 2), "compression for 9 tables (with derivatives_1s), retention for 11, refresh for 2");
        }

        // Again: nothing to apply, and no DDL (the writer role relies on that).
        var again = await Migrate();
        Assert.That((again.Applied, again.SetupApplied, again.Tier), Is.EqualTo((0, false, Tier)));

        // Changed settings re-apply the setup and land in storage_tables.
        var changed = await Migrate(new IngestorOptions { RetentionDays = { ["book_ticker"] = 7 }, ChunkHours = { ["trades"] = 12 } });
        Assert.That(changed.SetupApplied, Is.True);
        Assert.That(await Db.ScalarAsync<string>("SELECT retention::text FROM marketdata.storage_tables WHERE table_name = 'book_ticker'"), Is.EqualTo("7 days"));
        Assert.That(await Db.ScalarAsync<string>("SELECT chunk_interval::text FROM marketdata.storage_tables WHERE table_name = 'trades'"), Is.EqualTo("12:00:00"));

        // A tier cannot change in place: asking for another one is refused with the reason.
        var other = Tier == StorageTiers.Postgres ? StorageTiers.Citus : StorageTiers.Postgres;
        var refused = Assert.ThrowsAsync<ConfigurationException>(() => Migrate(new IngestorOptions { StorageTier = other }));
        Assert.That(refused!.Message, Does.Contain($"set up as '{Tier}'"));
    }

    [Test]
    public async Task ACommitSession_KeepsItsConnection_UntilItFails_OrHasBeenIdle()
    {
        await Migrate();
        var id = await RegisterAsync("BTCUSDT");
        var name = "session-" + Guid.NewGuid().ToString("N")[..8];
        await using var own = new NpgsqlDataSourceBuilder(new NpgsqlConnectionStringBuilder(Db.DataSource.ConnectionString) { ApplicationName = name }.ConnectionString).Build();
        var time = new ManualTimeProvider();
        await using var session = new BatchCommitter(own, citus: Tier == StorageTiers.Citus).OpenSession(time);
        var table = BatchCommitter.TableId(BookTickerRows.Table);
        var next = 0;
        Task<bool> Commit()
        {
            using var batch = new CopyBatch(10);
            BookTickerRows.Encode(batch, Book(id, ++next, DateTimeOffset.UtcNow, 100, 101));
            return session.CommitAsync(table, batch.Id, batch.Rows, batch.Payload().ToArray(), CancellationToken.None);
        }

        Task Kill() => Db.ExecuteAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'");

        Assert.That(await Commit(), Is.True);
        Assert.That(await Commit(), Is.True);
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}'"), Is.EqualTo(1), "one connection, kept");

        // Its connection dies: the next commit fails on it (it was kept, not taken fresh from a pool), the one after opens a new one.
        await Kill();
        var failed = Assert.CatchAsync(Commit);
        Assert.That(DatabaseErrors.IsUnavailable(failed!), Is.True, failed!.ToString());
        Assert.That(await Commit(), Is.True, "a fresh connection after the failure");

        // Idle longer than MaxIdle: the connection is given back before use, so a dropped one is never met.
        await Kill();
        time.Advance(CommitSession.MaxIdle + TimeSpan.FromSeconds(1));
        Assert.That(await Commit(), Is.True, "after an idle spell");
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.book_ticker WHERE symbol_id = {id}"), Is.EqualTo(4), "the failed batch was not stored");
    }

    [Test]
    public async Task ABatchCommittedAgain_IsRolledBackWhole_AndTheLedgerSaysSo()
    {
        // A retry after a lost answer, or a spool replay: the same batch id a second time stores nothing, on every tier.
        await Migrate();
        var id = await RegisterAsync("BTCUSDT");
        var committer = new BatchCommitter(Db.DataSource, citus: Tier == StorageTiers.Citus);
        var table = BatchCommitter.TableId(BookTickerRows.Table);
        using var batch = new CopyBatch(10);
        for (var i = 1; i <= 3; i++)
        {
            BookTickerRows.Encode(batch, Book(id, i, DateTimeOffset.UtcNow.AddMilliseconds(i), 100, 101));
        }

        Assert.That(await committer.CommitAsync(table, batch.Id, batch.Rows, batch.Payload(), CancellationToken.None), Is.True, "first time");
        Assert.That(await committer.CommitAsync(table, batch.Id, batch.Rows, batch.Payload(), CancellationToken.None), Is.False, "again");
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.book_ticker WHERE symbol_id = {id}"), Is.EqualTo(3));
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.ingest_batches WHERE batch_id = '{batch.Id}'"), Is.EqualTo(1));

        // The connection it used went back to the pool clean: the next batch commits.
        using var next = new CopyBatch(10);
        BookTickerRows.Encode(next, Book(id, 10, DateTimeOffset.UtcNow, 100, 101));
        Assert.That(await committer.CommitAsync(table, next.Id, next.Rows, next.Payload(), CancellationToken.None), Is.True, "next batch");
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.book_ticker WHERE symbol_id = {id}"), Is.EqualTo(4));
    }

    [Test]
    public async Task Rollups_EqualAnIndependentComputation_AndFollowLateBatches()
    {
        await Migrate();

        var btc = await RegisterAsync("BTCUSDT");
        var eth = await RegisterAsync("ETHUSDT");
        var random = new Random(7);
        var start = DateTimeOffset.UtcNow.AddMinutes(-10);
        var books = new List<BookTickerEvent>();
        var trades = new List<TradeEvent>();
        long id = 0;
        foreach (var symbol in new[] { btc, eth })
        {
            for (var i = 0; i < 3_000; i++)
            {
                // Several rows share a millisecond now and then: open/close break ties by update id.
                var t = start.AddMilliseconds(random.Next(0, 20_000));
                var bid = Math.Round(100 + (random.NextDouble() * 10), 2);
                books.Add(Book(symbol, ++id, t, bid, bid + 0.01 + Math.Round(random.NextDouble(), 2), 0.001 + Math.Round(random.NextDouble() * 5, 3), 0.001 + Math.Round(random.NextDouble() * 5, 3)));
                trades.Add(Trade(symbol, id, t, bid, Math.Round(0.001 + random.NextDouble(), 3), random.Next(2) == 0));
            }
        }

        // Committed in many batches out of time order, as concurrent flushers and replays do; the last batch is "late".
        var late = books.Where(b => b.EventTimeMs < Ms(start.AddSeconds(3))).ToList();
        foreach (var chunk in books.Except(late).OrderBy(_ => random.Next()).Chunk(700))
        {
            await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, chunk);
        }

        foreach (var chunk in trades.OrderBy(_ => random.Next()).Chunk(900))
        {
            await CommitAsync<TradeEvent, TradeRows>(Db.DataSource, chunk);
        }

        var first = await RefreshRollupsAsync();
        Assert.That(first?.Batches ?? 1, Is.GreaterThan(0));
        await AssertBookRollupsAsync(books.Except(late));
        await AssertTradeRollupsAsync(trades);

        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, late);
        var second = await RefreshRollupsAsync();
        await AssertBookRollupsAsync(books);
        if (second is not null)
        {
            Assert.That(second, Is.EqualTo((1, 0L)), "only the late batch was pending");
            Assert.That(await RefreshRollupsAsync(), Is.EqualTo((0, 0L)), "nothing pending");
        }

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.ingest_batches WHERE rollup_pending"), Is.Zero, "the continuous aggregates need no ledger");
    }

    /// <summary>
    /// The daemon runs across chunk boundaries every few hours. An aggregate over rows in two chunks is where
    /// TimescaleDB aggregates chunk by chunk and passes partial states on, which first()/last() with an anonymous
    /// ROW() ordering cannot do ("input of anonymous composite types is not implemented"): bt_1s's real-time part
    /// failed to read over a boundary, and so, at times, did its refresh.
    /// </summary>
    [Test]
    public async Task BookRollups_OverAChunkBoundary_ReadAndRefresh_WithTiesBrokenByUpdateId()
    {
        await Migrate();
        if (Tier == StorageTiers.Timescale)
        {
            await Db.PauseTimescaleJobsAsync();
        }

        var btc = await RegisterAsync("BTCUSDT");
        var boundary = await ChunkBoundaryAsync("book_ticker");
        var random = new Random(5);
        var books = new List<BookTickerEvent>();
        for (var i = 0; i < 2_000; i++)
        {
            // Four rows per millisecond, over 1.5 s either side: open and close are decided by update id alone.
            var bid = Math.Round(100 + (random.NextDouble() * 10), 2);
            books.Add(Book(btc, 1_000_000 - i, boundary.AddMilliseconds(-1_500 + (i / 4 * 6)), bid, bid + 0.01 + Math.Round(random.NextDouble(), 2)));
        }

        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, books);
        if (Tier is StorageTiers.Timescale or StorageTiers.TimescaleApache)
        {
            Assert.That(await Db.ScalarAsync<long>("SELECT count(DISTINCT tableoid) FROM marketdata.book_ticker"), Is.EqualTo(2), "the rows straddle two chunks");
        }

        if (Tier == StorageTiers.Timescale)
        {
            // Nothing materialised yet: the whole read is the continuous aggregate's real-time part.
            await AssertBookRollupsAsync(books);
        }

        await RefreshRollupsAsync();
        await AssertBookRollupsAsync(books);
    }

    [Test]
    public async Task RollupPass_CountsAsBacklogOnlyTheBatchesOldEnoughToTake()
    {
        await Migrate();
        if (!StorageTiers.DaemonMaintained(Tier))
        {
            // The continuous aggregates roll up by themselves: no batch is ever left pending for a pass here.
            Assert.That(await Db.ScalarAsync<bool>("SELECT marketdata.rollup_tracked('trades')"), Is.False);
            return;
        }

        // Two settled batches and one that committed just now. A budget of one row takes one settled batch: the
        // other settled one is backlog (the daemon goes again at once); the fresh one is pending but not backlog
        // (going again for it re-rolled the same seconds hundreds of times a second once batches got small).
        await using (var seed = Db.DataSource.CreateCommand("""
            INSERT INTO marketdata.ingest_batches (batch_id, table_name, row_count, committed_at, ts_min, ts_max, rollup_pending) VALUES
              (gen_random_uuid(), 'trades', 1, now() - interval '1 minute', now() - interval '61 seconds', now() - interval '60 seconds', true),
              (gen_random_uuid(), 'trades', 1, now() - interval '50 seconds', now() - interval '51 seconds', now() - interval '50 seconds', true),
              (gen_random_uuid(), 'trades', 1, now(), now() - interval '1 second', now(), true)
            """))
        {
            await seed.ExecuteNonQueryAsync();
        }

        async Task<string> Pass(long maxRows) => await Db.ScalarAsync<string>(
            $"SELECT batches || '/' || pending_after || '/' || backlog FROM marketdata.run_rollups({maxRows}, interval '2 seconds')");

        Assert.That(await Pass(1), Is.EqualTo("1/2/1"), "taken / pending / backlog after a pass cut by its budget");
        Assert.That(await Pass(200_000), Is.EqualTo("1/1/0"), "the fresh batch is pending, not backlog");
    }

    [Test]
    public async Task TrainingColumns_RideInTheRollupKeys_AndAnOldKeyIsRebuiltOnlyWithinTheLimit()
    {
        await Migrate();
        // What get_yesterday_training_data reads, per rollup: in the key's INCLUDE (tables) or a covering index (aggregates).
        const string Covered = """
            SELECT coalesce(string_agg(a.attname, ',' ORDER BY k.n), 'none') FROM pg_index i
            JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(att, n) ON k.n > i.indnkeyatts
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att
            WHERE i.indexrelid = (SELECT c.oid FROM pg_class c WHERE c.relname = '{0}' AND c.relkind IN ('i', 'I') ORDER BY c.relkind DESC LIMIT 1)
            """;
        var (bt, trade) = Tier == StorageTiers.Timescale ? ("bt_1s_training_cover", "trade_1s_training_cover") : ("bt_1s_pkey", "trade_1s_pkey");
        Assert.That(await Db.ScalarAsync<string>(string.Format(CultureInfo.InvariantCulture, Covered, bt)), Is.EqualTo("mid_close,spread_mean"));
        Assert.That(await Db.ScalarAsync<string>(string.Format(CultureInfo.InvariantCulture, Covered, trade)), Is.EqualTo("agg_trades,vwap,buy_volume,sell_volume"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.cover_rollup_keys()"), Is.Zero, "nothing left to do");
        if (Tier == StorageTiers.Timescale)
        {
            return;
        }

        // A database from before: the plain key. Over the row limit it is left alone; within it, rebuilt.
        await Db.ExecuteAsync("""
            ALTER TABLE marketdata.bt_1s DROP CONSTRAINT bt_1s_pkey;
            ALTER TABLE marketdata.bt_1s ADD PRIMARY KEY (symbol_id, bucket);
            INSERT INTO marketdata.bt_1s (symbol_id, bucket, mid_open, mid_high, mid_low, mid_close, spread_mean, spread_min, spread_max,
                                          bid_qty_mean, ask_qty_mean, updates, crossed, non_positive, negative_latency)
            SELECT 1, now() - i * interval '1 second', 1, 1, 1, 1, 0.1, 0.1, 0.1, 1, 1, 1, 0, 0, 0 FROM generate_series(1, 1000) i;
            ANALYZE marketdata.bt_1s;
            """);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.cover_rollup_keys(10)"), Is.Zero, "1,000 rows is over a limit of 10");
        Assert.That(await Db.ScalarAsync<string>(string.Format(CultureInfo.InvariantCulture, Covered, bt)), Is.EqualTo("none"));
        // Citus's coordinator has no row estimate: any row there counts as over a limit, and only a call without one rebuilds.
        var rebuild = Tier == StorageTiers.Citus ? "cover_rollup_keys()" : "cover_rollup_keys(5000)";
        Assert.That(await Db.ScalarAsync<string>($"SELECT string_agg(t, ',') FROM marketdata.{rebuild} t"), Is.EqualTo("bt_1s"));
        Assert.That(await Db.ScalarAsync<string>(string.Format(CultureInfo.InvariantCulture, Covered, bt)), Is.EqualTo("mid_close,spread_mean"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.bt_1s"), Is.EqualTo(1000));
    }

    [Test]
    public async Task LedgerPrune_KeepsBatchesAwaitingRollup_ButNotForever()
    {
        await Migrate();
        await using (var seed = Db.DataSource.CreateCommand("""
            INSERT INTO marketdata.ingest_batches (batch_id, table_name, row_count, committed_at, rollup_pending) VALUES
              (gen_random_uuid(), 'trades', 1, now() - interval '4 days', false),
              (gen_random_uuid(), 'trades', 1, now() - interval '4 days', true),
              (gen_random_uuid(), 'trades', 1, now() - interval '8 days', true),
              (gen_random_uuid(), 'trades', 1, now() - interval '1 day', false)
            """))
        {
            await seed.ExecuteNonQueryAsync();
        }

        await new BatchCommitter(Db.DataSource).PruneAsync(TimeSpan.FromDays(3), CancellationToken.None);
        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(extract(day FROM now() - committed_at)::int || ':' || rollup_pending, ',' ORDER BY committed_at) FROM marketdata.ingest_batches"),
            Is.EqualTo("4:true,1:false"), "a retry window's ids and a pending rollup stay; a week-old pending id goes");
    }

    private async Task AssertBookRollupsAsync(IEnumerable<BookTickerEvent> rows)
    {
        var expected = rows.GroupBy(r => (r.SymbolId, Second: r.EventTimeMs / 1000)).ToDictionary(g => g.Key, g =>
        {
            var ordered = g.OrderBy(r => r.EventTimeMs).ThenBy(r => r.UpdateId).ToList();
            var mids = ordered.Select(r => (r.BestBid + r.BestAsk) / 2).ToList();
            var spreads = ordered.Select(r => r.BestAsk - r.BestBid).ToList();
            return (Open: mids[0], High: mids.Max(), Low: mids.Min(), Close: mids[^1], SpreadMean: spreads.Average(), SpreadMin: spreads.Min(), SpreadMax: spreads.Max(),
                BidQty: ordered.Average(r => r.BidQty), AskQty: ordered.Average(r => r.AskQty), Count: (long)ordered.Count);
        });
        var seen = 0;
        await using var cmd = Db.DataSource.CreateCommand("""
            SELECT symbol_id, (extract(epoch FROM bucket))::bigint, mid_open, mid_high, mid_low, mid_close, spread_mean, spread_min, spread_max,
                   bid_qty_mean, ask_qty_mean, updates, crossed, non_positive, negative_latency FROM marketdata.bt_1s
            """);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            seen++;
            Assert.That(expected.TryGetValue((reader.GetInt32(0), reader.GetInt64(1)), out var e), Is.True, "a bucket with no rows");
            Assert.Multiple(() =>
            {
                Assert.That(reader.GetDouble(2), Is.EqualTo(e.Open), "open");
                Assert.That(reader.GetDouble(3), Is.EqualTo(e.High), "high");
                Assert.That(reader.GetDouble(4), Is.EqualTo(e.Low), "low");
                Assert.That(reader.GetDouble(5), Is.EqualTo(e.Close), "close");
                Assert.That(reader.GetDouble(6), Is.EqualTo(e.SpreadMean).Within(1e-9), "spread mean");
                Assert.That(reader.GetDouble(7), Is.EqualTo(e.SpreadMin), "spread min");
                Assert.That(reader.GetDouble(8), Is.EqualTo(e.SpreadMax), "spread max");
                Assert.That(reader.GetDouble(9), Is.EqualTo(e.BidQty).Within(1e-9), "bid qty mean");
                Assert.That(reader.GetDouble(10), Is.EqualTo(e.AskQty).Within(1e-9), "ask qty mean");
                Assert.That(reader.GetInt64(11), Is.EqualTo(e.Count), "updates");
                Assert.That(reader.GetInt64(12) + reader.GetInt64(13) + reader.GetInt64(14), Is.Zero, "clean rows break no rule");
            });
        }

        Assert.That(seen, Is.EqualTo(expected.Count), "one bucket per symbol-second with rows");
    }

    private async Task AssertTradeRollupsAsync(IEnumerable<TradeEvent> rows)
    {
        var expected = rows.GroupBy(r => (r.SymbolId, Second: r.EventTimeMs / 1000)).ToDictionary(g => g.Key, g =>
        {
            var byId = g.OrderBy(r => r.AggTradeId).ToList();
            var volume = byId.Sum(r => r.Qty);
            return (Count: (long)byId.Count, Trades: byId.Sum(r => r.LastTradeId - r.FirstTradeId + 1), Volume: volume,
                Vwap: byId.Sum(r => r.Price * r.Qty) / volume, Buy: byId.Where(r => !r.IsBuyerMaker).Sum(r => r.Qty),
                Sell: byId.Where(r => r.IsBuyerMaker).Sum(r => r.Qty), Open: byId[0].Price, High: byId.Max(r => r.Price), Low: byId.Min(r => r.Price), Close: byId[^1].Price);
        });
        var seen = 0;
        await using var cmd = Db.DataSource.CreateCommand("""
            SELECT symbol_id, (extract(epoch FROM bucket))::bigint, agg_trades, trades, volume, vwap, buy_volume, sell_volume,
                   price_open, price_high, price_low, price_close FROM marketdata.trade_1s
            """);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            seen++;
            Assert.That(expected.TryGetValue((reader.GetInt32(0), reader.GetInt64(1)), out var e), Is.True, "a bucket with no trades");
            Assert.Multiple(() =>
            {
                Assert.That(reader.GetInt64(2), Is.EqualTo(e.Count), "agg trades");
                Assert.That(reader.GetInt64(3), Is.EqualTo(e.Trades), "trades");
                Assert.That(reader.GetDouble(4), Is.EqualTo(e.Volume).Within(1e-9), "volume");
                Assert.That(reader.GetDouble(5), Is.EqualTo(e.Vwap).Within(1e-9), "vwap");
                Assert.That(reader.GetDouble(6), Is.EqualTo(e.Buy).Within(1e-9), "taker buy volume");
                Assert.That(reader.GetDouble(7), Is.EqualTo(e.Sell).Within(1e-9), "taker sell volume");
                Assert.That((reader.GetDouble(8), reader.GetDouble(9), reader.GetDouble(10), reader.GetDouble(11)), Is.EqualTo((e.Open, e.High, e.Low, e.Close)), "OHLC");
            });
        }

        Assert.That(seen, Is.EqualTo(expected.Count));
    }

    [Test]
    public async Task Views_CountQualityProblems_Gaps_AndBuildYesterdaysTrainingGrid()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var eth = await RegisterAsync("ETHUSDT");
        var yesterday = new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-1), TimeSpan.Zero);
        var noon = yesterday.AddHours(12);

        // BTC yesterday: 10 clean seconds, then one crossed book, one zero quantity, one row stamped before the
        // exchange sent it (clock skew), and a 3-second disconnect recorded in the gap ledger.
        var books = Enumerable.Range(0, 10).Select(i => Book(btc, i + 1, noon.AddSeconds(i), 100 + i, 100.5 + i)).ToList();
        books.Add(Book(btc, 11, noon.AddSeconds(10), 101, 100.9));
        books.Add(Book(btc, 12, noon.AddSeconds(11), 101, 101.5, bidQty: 0));
        books.Add(Book(btc, 13, noon.AddSeconds(12), 101, 101.5, latencyMs: -40));
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, books);
        await CommitAsync<TradeEvent, TradeRows>(Db.DataSource, [Trade(btc, 1, noon.AddMilliseconds(100), 100, 2, false), Trade(btc, 2, noon.AddMilliseconds(900), 102, 1, true), Trade(btc, 3, noon.AddSeconds(5), -1, 1, true)]);
        await using (var gap = Db.DataSource.CreateCommand("""
            INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, reason) VALUES
              ($1, 'bookTicker', $2, $3, 'disconnect'), ($1, 'aggTrade', $4, $4, 'trade_ids_missing')
            """))
        {
            gap.Parameters.Add(new NpgsqlParameter { Value = btc });
            gap.Parameters.Add(new NpgsqlParameter { Value = noon.AddSeconds(20.5) });
            gap.Parameters.Add(new NpgsqlParameter { Value = noon.AddSeconds(22.2) });
            gap.Parameters.Add(new NpgsqlParameter { Value = noon.AddSeconds(30) });
            await gap.ExecuteNonQueryAsync();
        }

        // ETH today only, live: shows in ingestion_stats.
        var now = DateTimeOffset.UtcNow;
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, Enumerable.Range(0, 50).Select(i => Book(eth, i + 1, now.AddSeconds(-i), 10, 10.1, latencyMs: 20 + i)));

        await RefreshRollupsAsync();

        // data_quality_report over yesterday: exactly the injected problems.
        await using (var q = Db.DataSource.CreateCommand("""
            SELECT book_updates, agg_trades, non_positive_book, non_positive_trades, crossed_books, negative_latency, gaps, gap_seconds
            FROM marketdata.data_quality_report($1, $2) WHERE symbol = 'BTCUSDT'
            """))
        {
            q.Parameters.Add(new NpgsqlParameter { Value = yesterday });
            q.Parameters.Add(new NpgsqlParameter { Value = yesterday.AddDays(1) });
            await using var r = await q.ExecuteReaderAsync();
            Assert.That(await r.ReadAsync(), Is.True);
            Assert.That(
                (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetDecimal(7)),
                Is.EqualTo((13L, 3L, 1L, 1L, 1L, 1L, 2L, 1.7m)));
        }

        // ingestion_stats_by_table: ETH's 50 live rows, of which those in the last 5 minutes; latency from ts_ingest − ts_exchange.
        await using (var s = Db.DataSource.CreateCommand("SELECT rows_5m, rows_1h, latency_ms_mean_5m, latency_ms_p99_5m, gaps_1h FROM marketdata.ingestion_stats_by_table WHERE symbol = 'ETHUSDT' AND table_name = 'book_ticker'"))
        await using (var r = await s.ExecuteReaderAsync())
        {
            Assert.That(await r.ReadAsync(), Is.True);
            Assert.That((r.GetInt64(0), r.GetInt64(1)), Is.EqualTo((50L, 50L)));
            Assert.That(r.GetDecimal(2), Is.EqualTo(44.5m), "mean of 20..69 ms");
            Assert.That(r.GetDecimal(3), Is.EqualTo(68.5m), "p99 of 20..69 ms, interpolated");
            Assert.That(r.GetInt64(4), Is.Zero);
        }

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.ingestion_stats_by_table WHERE symbol = 'BTCUSDT'"), Is.Zero, "nothing from BTC in the last hour");

        // The training grid: 86,400 seconds for BTC only (ETH had nothing yesterday), values on the seconds with
        // rows, gap flags on exactly the seconds the holes overlap.
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.get_yesterday_training_data()"), Is.EqualTo(86_400));
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.get_yesterday_training_data({eth})"), Is.Zero);
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(extract(epoch FROM ts_second - '{noon:yyyy-MM-dd HH:mm:ss}+00')::int || ':' || book_gap || trade_gap, ',' ORDER BY ts_second)
            FROM marketdata.get_training_data_full({btc}, '{yesterday:yyyy-MM-dd}') WHERE in_gap
            """), Is.EqualTo("20:truefalse,21:truefalse,22:truefalse,30:falsetrue"));
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(extract(epoch FROM ts_second - '{noon:yyyy-MM-dd HH:mm:ss}+00')::int || ':' || gap, ',' ORDER BY ts_second)
            FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}') WHERE gap IS NOT NULL
            """), Is.EqualTo("20:book,21:book,22:book,30:trade"));
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT mid_open || '/' || mid_close || '/' || update_count || '/' || trade_count || '/' || vwap || '/' || buy_vol || '/' || price_open || '/' || price_close
            FROM marketdata.get_training_data_full({btc}, '{yesterday:yyyy-MM-dd}') WHERE ts_second = '{noon:yyyy-MM-dd HH:mm:ss}+00'
            """), Is.EqualTo(FormattableString.Invariant($"100.25/100.25/1/2/{(200.0 + 102) / 3}/2/100/102")));
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.get_training_data_full({btc}, '{yesterday:yyyy-MM-dd}') WHERE update_count IS NOT NULL"), Is.EqualTo(13));
        // A trade hole over a second of the book's: both streams named.
        await Db.ExecuteAsync($"INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, reason) VALUES ({btc}, 'aggTrade', '{noon.AddSeconds(21.3):yyyy-MM-dd HH:mm:ss.fff}+00', '{noon.AddSeconds(21.4):yyyy-MM-dd HH:mm:ss.fff}+00', 'trade_ids_missing')");
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(extract(epoch FROM ts_second - '{noon:yyyy-MM-dd HH:mm:ss}+00')::int || ':' || gap, ',' ORDER BY ts_second)
            FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}') WHERE gap IS NOT NULL
            """), Is.EqualTo("20:book,21:book,trade,22:book,30:trade"));
        // The seed's function (read from the rollups' keys) and the full one (from their rows) agree on every second.
        Assert.That(await Db.ScalarAsync<long>($"""
            SELECT count(*) FROM (
                SELECT ts_second, symbol_id, mid_close, spread_mean, trade_count, vwap, buy_sell_imbalance, gap
                FROM marketdata.get_yesterday_training_data(NULL, '{yesterday:yyyy-MM-dd}')
                EXCEPT ALL
                SELECT ts_second, symbol_id, mid_close, spread_mean, trade_count, vwap, buy_sell_imbalance,
                       nullif(concat_ws(',', CASE WHEN book_gap THEN 'book' END, CASE WHEN trade_gap THEN 'trade' END), '')
                FROM marketdata.get_training_data_full(NULL, '{yesterday:yyyy-MM-dd}')) x
            """), Is.Zero);
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.get_training_data_full(NULL, '{yesterday:yyyy-MM-dd}')"), Is.EqualTo(86_400));
        // Every symbol's day comes out whole, symbol after symbol in id order, each in second order, as it streams
        // (no ORDER BY of the caller's): ETH gets a day through a hole, and BTC's registry row is moved to the end
        // of its table so that reading the registry as stored would put ETH first.
        await Db.ExecuteAsync($"INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, reason) VALUES ({eth}, 'bookTicker', '{noon:yyyy-MM-dd HH:mm:ss}+00', '{noon.AddSeconds(5):yyyy-MM-dd HH:mm:ss}+00', 'disconnect')");
        await Db.ExecuteAsync($"UPDATE marketdata.symbols SET is_active = is_active WHERE id = {btc}");
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE (symbol_id, ts_second) <= (prev_symbol, prev_second)) || ' out of order, first ' || min(first_symbol)
            FROM (SELECT symbol_id, ts_second, lag(symbol_id) OVER w AS prev_symbol, lag(ts_second) OVER w AS prev_second, first_value(symbol_id) OVER w AS first_symbol
                  FROM marketdata.get_yesterday_training_data(NULL, '{yesterday:yyyy-MM-dd}') WINDOW w AS ()) x
            """), Is.EqualTo($"172800 rows, 0 out of order, first {Math.Min(btc, eth)}"));
        Assert.That(await Db.ScalarAsync<long>("SELECT gaps FROM marketdata.feed_gap_summary WHERE symbol = 'BTCUSDT' AND stream = 'bookTicker'"), Is.EqualTo(1));
    }

    [Test]
    public async Task TrainingDay_CarriesFundingOpenInterestAndLiquidations_AsOfEachSecond_AndTheDaemonsGapNames()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var yesterday = new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-1), TimeSpan.Zero);
        var noon = yesterday.AddHours(12);
        long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();
        // Known before the day: funding 0.0001 / mark 100, open interest 5000. During it: a mark price inside second 0
        // and one at the very end of second 2, open interest inside second 1, liquidations in seconds 1 and 3.
        await CommitAsync<MarkPriceEvent, MarkPriceRows>(Db.DataSource, [
            new MarkPriceEvent(btc, Ms(yesterday.AddSeconds(-10)), 0, 100, 99.9, 99.8, 0.0001, 0),
            new MarkPriceEvent(btc, Ms(noon.AddMilliseconds(500)), 0, 101, 100.9, 100.8, 0.0002, 0),
            new MarkPriceEvent(btc, Ms(noon.AddMilliseconds(2_999)), 0, 102, 101.9, 101.8, -0.0003, 0)]);
        await CommitAsync<OpenInterestRow, OpenInterestRows>(Db.DataSource, [
            new OpenInterestRow(btc, Ms(yesterday.AddSeconds(-30)), 0, 5000), new OpenInterestRow(btc, Ms(noon.AddMilliseconds(1_200)), 0, 5100)]);
        await CommitAsync<LiquidationEvent, LiquidationRows>(Db.DataSource, [
            new LiquidationEvent(btc, Ms(noon.AddMilliseconds(1_500)), 1, 0, "BUY", "LIMIT", "IOC", "FILLED", 2, 100, 101, 2, 2),
            new LiquidationEvent(btc, Ms(noon.AddMilliseconds(1_700)), 1, 0, "SELL", "LIMIT", "IOC", "FILLED", 3, 100, 100, 3, 3),
            new LiquidationEvent(btc, Ms(noon.AddMilliseconds(3_200)), 1, 0, "SELL", "LIMIT", "IOC", "FILLED", 1, 99, 99, 1, 1)]);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(btc, 1, noon, 100, 101)]);
        // Gap rows as the daemon writes them (symbol@channel), and one as the seed's collector did (the bare channel).
        await Db.ExecuteAsync($"""
            INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, reason) VALUES
              ({btc}, 'btcusdt@markPrice@1s', '{noon.AddSeconds(5.5):yyyy-MM-dd HH:mm:ss.fff}+00', '{noon.AddSeconds(7.2):yyyy-MM-dd HH:mm:ss.fff}+00', 'missed_seconds'),
              ({btc}, 'btcusdt@bookTicker', '{noon.AddSeconds(20.5):yyyy-MM-dd HH:mm:ss.fff}+00', '{noon.AddSeconds(21.2):yyyy-MM-dd HH:mm:ss.fff}+00', 'disconnected'),
              ({btc}, 'btcusdt@openInterest', '{noon.AddSeconds(21):yyyy-MM-dd HH:mm:ss}+00', '{noon.AddSeconds(21):yyyy-MM-dd HH:mm:ss}+00', 'poll_missed'),
              ({btc}, 'aggTrade', '{noon.AddSeconds(30):yyyy-MM-dd HH:mm:ss}+00', '{noon.AddSeconds(30):yyyy-MM-dd HH:mm:ss}+00', 'agg_trade_ids')
            """);
        await RefreshRollupsAsync();

        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(concat_ws('/', extract(epoch FROM ts_second - '{noon:yyyy-MM-dd HH:mm:ss}+00')::int, funding_rate, mark_price, index_price, open_interest,
                                        liq_buy_count, liq_buy_notional, liq_sell_count, liq_sell_notional), ' ' ORDER BY ts_second)
            FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}')
            WHERE ts_second IN ('{yesterday:yyyy-MM-dd} 00:00:00+00', '{noon.AddSeconds(-1):yyyy-MM-dd HH:mm:ss}+00') OR ts_second BETWEEN '{noon:yyyy-MM-dd HH:mm:ss}+00' AND '{noon.AddSeconds(4):yyyy-MM-dd HH:mm:ss}+00'
            """), Is.EqualTo("-43200/0.0001/100/99.9/5000/0/0/0/0 -1/0.0001/100/99.9/5000/0/0/0/0 0/0.0002/101/100.9/5000/0/0/0/0 "
                             + "1/0.0002/101/100.9/5100/1/202/1/300 2/-0.0003/102/101.9/5100/0/0/0/0 3/-0.0003/102/101.9/5100/0/0/1/99 4/-0.0003/102/101.9/5100/0/0/0/0"),
            "last known at the end of each second, from before the day at its start; liquidations in their second");
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(extract(epoch FROM ts_second - '{noon:yyyy-MM-dd HH:mm:ss}+00')::int || ':' || gap, ',' ORDER BY ts_second)
            FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}') WHERE gap IS NOT NULL
            """), Is.EqualTo("5:mark,6:mark,7:mark,20:book,21:book,oi,30:trade"));
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(extract(epoch FROM ts_second - '{noon:yyyy-MM-dd HH:mm:ss}+00')::int || ':' || book_gap || trade_gap, ',' ORDER BY ts_second)
            FROM marketdata.get_training_data_full({btc}, '{yesterday:yyyy-MM-dd}') WHERE in_gap
            """), Is.EqualTo("20:truefalse,21:truefalse,30:falsetrue"), "the full function reads the daemon's gap names too");
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}')"), Is.EqualTo(86_400));
    }

    [Test]
    public async Task BookSnapshots_CarryTheirSource_AndABatchSpooledByAnOlderBuildStillCommits()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await CommitAsync<SnapshotRow, SnapshotRows>(Db.DataSource, [new SnapshotRow(btc, 10, ms, ms * 1000, [100, 1], [101, 1]),
            new SnapshotRow(btc, 20, ms + 1, (ms + 5) * 1000, [100, 2], [101, 2], FromDaemon: true)]);

        // The layout before the source column, under its own spool table id (4), as a segment written before the upgrade holds it.
        using var old = new CopyBatch(16);
        old.BeginRow(8, ms + 2, 2 + 24 + 8 + 12);
        old.WriteTimestampMillis(ms + 2);
        old.WriteTimestampMicros((ms + 2) * 1000);
        old.WriteInt32(btc);
        old.WriteInt64(30);
        double[] bids = [100, 3], asks = [101, 3];
        old.WriteDoubleArray(bids, 0, 2);
        old.WriteDoubleArray(bids, 1, 2);
        old.WriteDoubleArray(asks, 0, 2);
        old.WriteDoubleArray(asks, 1, 2);
        Assert.That(BatchCommitter.TableId("book_snapshots"), Is.Not.EqualTo((byte)4), "new rows go under the new layout's id");
        Assert.That(await new BatchCommitter(Db.DataSource).CommitAsync(4, old.Id, old.Rows, old.Payload(), CancellationToken.None), Is.True);

        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(last_update_id || ':' || source, ',' ORDER BY last_update_id) FROM marketdata.book_snapshots"),
            Is.EqualTo("10:rest,20:daemon,30:rest"));
    }

    [Test]
    public async Task Derivatives1s_HoldsWhatWasKnownAtEachSecondsEnd_AndFollowsALateAnswer()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var t0 = new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-1), TimeSpan.Zero).AddHours(12);
        long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();
        // Open interest 30 s before, a mark price 10 s before; in the window: mark prices inside second 0 and at the very end of
        // second 2 (none in seconds 1 and 3), liquidations in seconds 1 (one per side) and 3.
        await CommitAsync<OpenInterestRow, OpenInterestRows>(Db.DataSource, [new OpenInterestRow(btc, Ms(t0.AddSeconds(-30)), 0, 5000)]);
        await CommitAsync<MarkPriceEvent, MarkPriceRows>(Db.DataSource, [
            new MarkPriceEvent(btc, Ms(t0.AddSeconds(-10)), 0, 100, 99.9, 99.8, 0.0001, 0),
            new MarkPriceEvent(btc, Ms(t0.AddMilliseconds(500)), 0, 101, 100.9, 100.8, 0.0002, 0),
            new MarkPriceEvent(btc, Ms(t0.AddMilliseconds(2_999)), 0, 102, 101.9, 101.8, -0.0003, 0)]);
        await CommitAsync<LiquidationEvent, LiquidationRows>(Db.DataSource, [
            new LiquidationEvent(btc, Ms(t0.AddMilliseconds(1_500)), 1, 0, "BUY", "LIMIT", "IOC", "FILLED", 2, 100, 101, 2, 2),
            new LiquidationEvent(btc, Ms(t0.AddMilliseconds(1_700)), 1, 0, "SELL", "LIMIT", "IOC", "FILLED", 3, 100, 100, 3, 3),
            new LiquidationEvent(btc, Ms(t0.AddMilliseconds(3_200)), 1, 0, "SELL", "LIMIT", "IOC", "FILLED", 1, 99, 99, 1, 1)]);
        await RefreshRollupsAsync();

        var rows = $"""
            SELECT string_agg(concat_ws('/', extract(epoch FROM bucket - '{t0:yyyy-MM-dd HH:mm:ss}+00')::int,
                                        coalesce(mark_price::text, '-'), coalesce(funding_rate::text, '-'),
                                        coalesce((extract(epoch FROM mark_at - '{t0:yyyy-MM-dd HH:mm:ss}+00') * 1000)::int::text, '-'), mark_updates,
                                        coalesce(open_interest::text, '-'), coalesce(extract(epoch FROM open_interest_at - '{t0:yyyy-MM-dd HH:mm:ss}+00')::numeric(10,1)::text, '-'),
                                        liq_buy_count, liq_buy_qty, liq_buy_notional, liq_sell_count, liq_sell_qty, liq_sell_notional), ' ' ORDER BY bucket)
            FROM marketdata.derivatives_1s WHERE symbol_id = {btc}
            """;
        Assert.That(await Db.ScalarAsync<string>(rows), Is.EqualTo(
            "-30/-/-/-/0/5000/-30.0/0/0/0/0/0/0 -10/100/0.0001/-10000/1/5000/-30.0/0/0/0/0/0/0 0/101/0.0002/500/1/5000/-30.0/0/0/0/0/0/0 "
            + "1/101/0.0002/500/0/5000/-30.0/1/2/202/1/3/300 2/102/-0.0003/2999/1/5000/-30.0/0/0/0/0/0/0 3/102/-0.0003/2999/0/5000/-30.0/0/0/0/1/1/99"),
            "one row per second with a row of any of the three tables; values as of the second's end, never later");

        // An answer for second 1 rolled up after the seconds that follow it: they carry it from then on.
        await CommitAsync<OpenInterestRow, OpenInterestRows>(Db.DataSource, [new OpenInterestRow(btc, Ms(t0.AddMilliseconds(1_200)), 0, 5100)]);
        await RefreshRollupsAsync();
        Assert.That(await Db.ScalarAsync<string>(rows), Is.EqualTo(
            "-30/-/-/-/0/5000/-30.0/0/0/0/0/0/0 -10/100/0.0001/-10000/1/5000/-30.0/0/0/0/0/0/0 0/101/0.0002/500/1/5000/-30.0/0/0/0/0/0/0 "
            + "1/101/0.0002/500/0/5100/1.2/1/2/202/1/3/300 2/102/-0.0003/2999/1/5100/1.2/0/0/0/0/0/0 3/102/-0.0003/2999/0/5100/1.2/0/0/0/1/1/99"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.ingest_batches WHERE rollup_pending"), Is.Zero, "every derivatives batch rolled up, on every tier");
    }

    [Test]
    public async Task Roles_WriterIngestsAndMaintainsWithoutDdlRights_ReaderOnlyReads()
    {
        var tier = (await Migrate(roles: true)).Tier;
        Assert.That(tier, Is.EqualTo(Tier));
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var writer = $"obi_w_{suffix}";
        var reader = $"obi_r_{suffix}";
        await using (var create = Db.DataSource.CreateCommand($"CREATE ROLE {writer} LOGIN IN ROLE orderbook_writer; CREATE ROLE {reader} LOGIN IN ROLE orderbook_reader"))
        {
            await create.ExecuteNonQueryAsync();
        }

        try
        {
            await using var asWriter = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(Db.ConnectionString) { Username = writer }.ConnectionString);
            await using var asReader = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(Db.ConnectionString) { Username = reader }.ConnectionString);

            // The daemon's start-up and write path as the writer.
            var outcome = await new SchemaMigrator(asWriter, NullLogger.Instance).MigrateAsync(CancellationToken.None);
            Assert.That((outcome.Applied, outcome.SetupApplied, outcome.Tier), Is.EqualTo((0, false, tier)), "a current schema needs no DDL");
            var id = (await new SymbolStore(asWriter).RegisterAsync([new("BTCUSDT", "BTC", "USDT", "TRADING", "PERPETUAL")], CancellationToken.None))["BTCUSDT"];
            await CommitAsync<BookTickerEvent, BookTickerRows>(asWriter, [Book(id, 1, DateTimeOffset.UtcNow, 100, 101)]);
            await CommitAsync<TradeEvent, TradeRows>(asWriter, [Trade(id, 1, DateTimeOffset.UtcNow, 100, 1, false)]);
            await new SymbolStore(asWriter).DeactivateAsync([id], CancellationToken.None);
            await new BatchCommitter(asWriter).PruneAsync(TimeSpan.FromDays(3), CancellationToken.None);
            var maintainer = Maintainer(new ManualTimeProvider(DateTimeOffset.UtcNow.AddDays(40)), ds: asWriter);
            var actions = await maintainer.MaintainOnceAsync(CancellationToken.None);
            if (Tier == StorageTiers.Timescale)
            {
                Assert.That(actions, Is.Empty, "TimescaleDB's own policies keep this tier; the daemon's pass has nothing to do");
            }
            else
            {
                // Partitions created and dropped (postgres, citus), or the expired chunk dropped (timescaledb-apache).
                Assert.That(actions.Select(a => a.Action), Does.Contain("dropped"), "through SECURITY DEFINER functions");
            }

            await maintainer.RollupOnceAsync(CancellationToken.None);

            if (Tier == StorageTiers.Timescale)
            {
                // TimescaleDB locks a hypertable for DROP before it checks the privilege: against a running refresh
                // policy that was a deadlock (40P01, seen once in CI-like runs) instead of the refusal asserted here.
                await Db.PauseTimescaleJobsAsync();
            }

            await AssertDeniedAsync(asWriter, "DROP TABLE marketdata.trades");
            await AssertDeniedAsync(asWriter, "CREATE TABLE marketdata.sneaky (x int)");
            await AssertDeniedAsync(asWriter, "DELETE FROM marketdata.trades");
            await AssertDeniedAsync(asWriter, "SELECT marketdata.refresh_rollups('trades', now(), now())");

            await using (var read = asReader.CreateCommand("SELECT count(*) FROM marketdata.symbols"))
            {
                Assert.That(await read.ExecuteScalarAsync(), Is.EqualTo(1L));
            }

            await using (var grid = asReader.CreateCommand("SELECT count(*) FROM marketdata.get_yesterday_training_data()"))
            {
                Assert.That(await grid.ExecuteScalarAsync(), Is.TypeOf<long>());
            }

            await using (var book = asReader.CreateCommand("SELECT (SELECT status FROM marketdata.book_at('BTCUSDT', now())) || '/' || (SELECT status FROM marketdata.book_top_at('BTCUSDT', now()))"))
            {
                Assert.That(await book.ExecuteScalarAsync(), Is.EqualTo("no_snapshot/no_snapshot"), "the reader may rebuild books");
            }

            await using (var views = asReader.CreateCommand("SELECT count(*) FROM marketdata.ingestion_stats; SELECT count(*) FROM marketdata.ingestion_stats_by_table; SELECT count(*) FROM marketdata.data_quality_check; SELECT count(*) FROM marketdata.data_quality_24h; SELECT count(*) FROM marketdata.feed_gap_summary"))
            {
                await views.ExecuteNonQueryAsync();
            }

            await AssertDeniedAsync(asReader, "INSERT INTO marketdata.symbols (exchange, symbol, base_asset, quote_asset) VALUES ('x', 'ABCUSDT', 'ABC', 'USDT')");
            await AssertDeniedAsync(asReader, "SELECT * FROM marketdata.run_rollups()");
            await AssertDeniedAsync(asReader, "UPDATE marketdata.symbols SET is_active = true");
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var drop = Db.DataSource.CreateCommand($"DROP OWNED BY {writer}, {reader}; DROP ROLE {writer}; DROP ROLE {reader}");
            await drop.ExecuteNonQueryAsync();
        }
    }

    private static async Task AssertDeniedAsync(NpgsqlDataSource ds, string sql)
    {
        await using var cmd = ds.CreateCommand(sql);
        var ex = Assert.ThrowsAsync<PostgresException>(async () => await cmd.ExecuteNonQueryAsync(), sql);
        Assert.That(ex!.SqlState, Is.EqualTo(PostgresErrorCodes.InsufficientPrivilege), sql);
    }
}
