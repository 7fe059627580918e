using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// The storage tier this suite's server offers (plain PostgreSQL in CI: native partitions, retention and rollups
/// run by the daemon), the 1-second rollups against an independent computation, the views users query, and the
/// writer/reader roles. Everything goes through the real write path (binary COPY with the batch ledger).
/// </summary>
public sealed class StorageTierTests : DatabaseTest
{
    private static readonly DateTimeOffset Now = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    private Task<MigrationOutcome> Migrate(IngestorOptions? options = null, bool roles = false)
        => new SchemaMigrator(Db.DataSource, NullLogger.Instance, options).MigrateAsync(CancellationToken.None, roles);

    private StorageMaintainer Maintainer(TimeProvider time, MaintenanceStats? stats = null, NpgsqlDataSource? ds = null)
        => new(ds ?? Db.DataSource, time, NullLogger.Instance, stats ?? new MaintenanceStats(), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), TimeSpan.Zero);

    internal static async Task CommitAsync<T, TEncoder>(NpgsqlDataSource ds, IEnumerable<T> rows)
        where T : struct
        where TEncoder : IRowEncoder<T>
    {
        using var batch = new CopyBatch(1024);
        foreach (var row in rows)
        {
            TEncoder.Encode(batch, row);
        }

        Assert.That(await new BatchCommitter(ds).CommitAsync(BatchCommitter.TableId(TEncoder.Table), batch.Id, batch.Rows, batch.Payload(), CancellationToken.None), Is.True);
    }

    private static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    private static BookTickerEvent Book(int symbol, long id, DateTimeOffset t, double bid, double ask, double bidQty = 1, double askQty = 2, long latencyMs = 5)
        => new(symbol, id, Ms(t), Ms(t), (Ms(t) + latencyMs) * 1000, bid, bidQty, ask, askQty);

    private static TradeEvent Trade(int symbol, long id, DateTimeOffset t, double price, double qty, bool maker, long latencyMs = 5)
        => new(symbol, id, Ms(t), Ms(t), (Ms(t) + latencyMs) * 1000, price, qty, id * 3, (id * 3) + 2, maker);

    private async Task<int> RegisterAsync(string symbol)
        => (await new SymbolStore(Db.DataSource).RegisterAsync([new(symbol, symbol[..^4], "USDT", "TRADING", "PERPETUAL")], CancellationToken.None))[symbol];

    [Test]
    public async Task Migrate_ChoosesTheTierThisServerOffers_PartitionsByTime_AndRecordsIt()
    {
        var timescale = await Db.ScalarAsync<long>("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") > 0;
        var outcome = await Migrate();
        Assert.That(outcome.Applied, Is.EqualTo(SchemaMigrator.Migrations().Count));
        Assert.That(outcome.SetupApplied, Is.True);
        Assert.That(await Db.ScalarAsync<string>("SELECT marketdata.storage_tier()"), Is.EqualTo(outcome.Tier));
        if (timescale)
        {
            Assert.Ignore($"TimescaleDB is available here (tier {outcome.Tier}); the TimescaleDB tier tests cover it.");
        }

        Assert.That(outcome.Tier, Is.EqualTo(StorageTiers.Postgres));
        Assert.That(outcome.TierNote, Does.Contain("TimescaleDB is not installed"));
        foreach (var table in StorageLayout.Tables.Select(t => t.Table))
        {
            Assert.That(await Db.ScalarAsync<string>($"SELECT relkind::text FROM pg_class WHERE oid = 'marketdata.{table}'::regclass"), Is.EqualTo("p"), table);
            Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM pg_inherits WHERE inhparent = 'marketdata.{table}'::regclass"), Is.GreaterThanOrEqualTo(2), $"{table}: default + current partitions");
        }

        // A row now lands in a partition of its own range, not the default.
        var id = await RegisterAsync("BTCUSDT");
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1, DateTimeOffset.UtcNow, 100, 101)]);
        Assert.That(await Db.ScalarAsync<string>("SELECT tableoid::regclass::text FROM marketdata.book_ticker"), Does.Match(@"^marketdata\.book_ticker_p\d{8}t\d{4}$"));

        // Again: nothing to apply, and no DDL (the writer role relies on that).
        var again = await Migrate();
        Assert.That((again.Applied, again.SetupApplied, again.Tier), Is.EqualTo((0, false, StorageTiers.Postgres)));

        // Changed settings re-apply the setup and land in storage_tables.
        var changed = await Migrate(new IngestorOptions { RetentionDays = { ["book_ticker"] = 7 }, ChunkHours = { ["trades"] = 12 } });
        Assert.That(changed.SetupApplied, Is.True);
        Assert.That(await Db.ScalarAsync<string>("SELECT retention::text FROM marketdata.storage_tables WHERE table_name = 'book_ticker'"), Is.EqualTo("7 days"));
        Assert.That(await Db.ScalarAsync<string>("SELECT chunk_interval::text FROM marketdata.storage_tables WHERE table_name = 'trades'"), Is.EqualTo("12:00:00"));

        // A tier cannot change in place: asking for another one is refused with the reason.
        var refused = Assert.ThrowsAsync<ConfigurationException>(() => Migrate(new IngestorOptions { StorageTier = StorageTiers.Timescale }));
        Assert.That(refused!.Message, Does.Contain("set up as 'postgres'"));
    }

    [Test]
    public async Task TimescaleTier_HasHypertablesPoliciesAndContinuousAggregates_WhenTheExtensionIsThere()
    {
        if (await Db.ScalarAsync<long>("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == 0)
        {
            Assert.Ignore("TimescaleDB is not installed on this server (not in this machine's package registries); tier 1 and 2 SQL is checked where it is.");
        }

        var outcome = await Migrate();
        Assert.That(outcome.Tier, Is.AnyOf(StorageTiers.Timescale, StorageTiers.TimescaleApache), outcome.TierNote);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_schema = 'marketdata'"),
            Is.EqualTo(outcome.Tier == StorageTiers.Timescale ? 5 : 7));
        if (outcome.Tier == StorageTiers.Timescale)
        {
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'marketdata' AND view_name IN ('bt_1s', 'trade_1s')"), Is.EqualTo(2));
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')"), Is.GreaterThanOrEqualTo(5 + 5 + 2));
        }

        Assert.That((await Migrate()).SetupApplied, Is.False);
    }

    [Test]
    public async Task CitusTier_DistributesEventTablesBySymbol_WhenTheExtensionIsThere()
    {
        if (await Db.ScalarAsync<long>("SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'") == 0)
        {
            Assert.Ignore("Citus is not installed on this server (not in this machine's package registries).");
        }

        await using (var ext = Db.DataSource.CreateCommand("CREATE EXTENSION IF NOT EXISTS citus"))
        {
            await ext.ExecuteNonQueryAsync();
        }

        Assert.That((await Migrate()).Tier, Is.EqualTo(StorageTiers.Citus));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text IN ('marketdata.book_ticker', 'marketdata.trades', 'marketdata.depth_events', 'marketdata.bt_1s', 'marketdata.trade_1s') AND partmethod = 'h'"), Is.EqualTo(5));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'marketdata.symbols'::regclass AND partmethod = 'n'"), Is.EqualTo(1));
    }

    [Test]
    public async Task AskingForTimescale_WhereItIsNotInstalled_IsAClearError()
    {
        if (await Db.ScalarAsync<long>("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") > 0)
        {
            Assert.Ignore("TimescaleDB is available on this server.");
        }

        var ex = Assert.ThrowsAsync<ConfigurationException>(() => Migrate(new IngestorOptions { StorageTier = StorageTiers.Timescale }));
        Assert.That(ex!.Message, Does.Contain("StorageTier: timescaledb").And.Contain("not installed"));
        var citus = Assert.ThrowsAsync<ConfigurationException>(() => Migrate(new IngestorOptions { StorageTier = StorageTiers.Citus }));
        Assert.That(citus!.Message, Does.Contain("citus extension is not installed"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'marketdata'"), Is.Zero, "a refused migrate leaves nothing behind");
    }

    [Test]
    public async Task Maintenance_CreatesPartitionsAhead_AndDropsThemPastRetention_ByTheDaemonsClock()
    {
        if ((await Migrate()).Tier != StorageTiers.Postgres)
        {
            Assert.Ignore("plain PostgreSQL tier only");
        }

        var id = await RegisterAsync("BTCUSDT");
        var time = new ManualTimeProvider(Now);
        var stats = new MaintenanceStats();
        var maintainer = Maintainer(time, stats);
        await maintainer.MaintainOnceAsync(CancellationToken.None);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1, Now, 100, 101)]);
        await CommitAsync<TradeEvent, TradeRows>(Db.DataSource, [Trade(id, 1, Now, 100, 1, false)]);

        // 31 days on: book_ticker (30 days) loses the partition holding the row, trades (90 days) keep theirs,
        // and partitions reach two days past the new time.
        time.Advance(TimeSpan.FromDays(31));
        var actions = await maintainer.MaintainOnceAsync(CancellationToken.None);
        Assert.That(actions.Where(a => a.Action == "dropped").Select(a => a.Table).Distinct(), Does.Contain("book_ticker").And.Contain("depth_events").And.Not.Contain("trades"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker"), Is.Zero, "expired with its partition");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades"), Is.EqualTo(1));
        var later = Now.AddDays(31);
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'marketdata.book_ticker'::regclass AND c.relname = 'book_ticker_p{later.AddDays(2):yyyyMMdd}t0600'"), Is.EqualTo(1), "created ahead");
        Assert.That(stats.PartitionsDropped, Is.EqualTo(actions.Count(a => a.Action == "dropped")));
        Assert.That(stats.PartitionsCreated, Is.GreaterThan(0));

        // Nothing is left to do at the same moment.
        Assert.That(await maintainer.MaintainOnceAsync(CancellationToken.None), Is.Empty);
    }

    [Test]
    public async Task RowsNoPartitionCovers_WaitInTheDefaultPartition_AndMoveIntoTheirOwnOnTheNextPass()
    {
        if ((await Migrate()).Tier != StorageTiers.Postgres)
        {
            Assert.Ignore("plain PostgreSQL tier only");
        }

        var id = await RegisterAsync("BTCUSDT");
        var far = DateTimeOffset.UtcNow.AddDays(20);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1, far, 100, 101), Book(id, 2, far.AddSeconds(1), 100, 101)]);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker_default"), Is.EqualTo(2), "accepted, not refused");

        var actions = await Maintainer(TimeProvider.System).MaintainOnceAsync(CancellationToken.None);
        Assert.That(actions.Where(a => a.Action == "created for waiting rows").Select(a => a.Table), Does.Contain("book_ticker"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker_default"), Is.Zero);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker"), Is.EqualTo(2), "moved, none lost or doubled");
        Assert.That(await Db.ScalarAsync<string>("SELECT DISTINCT tableoid::regclass::text FROM marketdata.book_ticker"), Does.StartWith("marketdata.book_ticker_p"));
    }

    [Test]
    public async Task Rollups_EqualAnIndependentComputation_AndFollowLateBatches()
    {
        var tier = (await Migrate()).Tier;
        if (!StorageTiers.DaemonMaintained(tier))
        {
            Assert.Ignore("continuous aggregates on full TimescaleDB");
        }

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

        var maintainer = Maintainer(TimeProvider.System);
        Assert.That((await maintainer.RollupOnceAsync(CancellationToken.None)).Batches, Is.GreaterThan(0));
        await AssertBookRollupsAsync(books.Except(late));
        await AssertTradeRollupsAsync(trades);

        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, late);
        Assert.That(await maintainer.RollupOnceAsync(CancellationToken.None), Is.EqualTo((1, 0L)), "only the late batch was pending");
        await AssertBookRollupsAsync(books);
        Assert.That(await maintainer.RollupOnceAsync(CancellationToken.None), Is.EqualTo((0, 0L)), "nothing pending");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.ingest_batches WHERE rollup_pending"), Is.Zero);
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
        var tier = (await Migrate()).Tier;
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

        if (StorageTiers.DaemonMaintained(tier))
        {
            await Maintainer(TimeProvider.System).RollupOnceAsync(CancellationToken.None);
        }
        else
        {
            await using var refresh = Db.DataSource.CreateCommand("CALL refresh_continuous_aggregate('marketdata.bt_1s', NULL, NULL); CALL refresh_continuous_aggregate('marketdata.trade_1s', NULL, NULL)");
            await refresh.ExecuteNonQueryAsync();
        }

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

        // ingestion_stats: ETH's 50 live rows, of which those in the last 5 minutes; latency from ts_ingest − ts_exchange.
        await using (var s = Db.DataSource.CreateCommand("SELECT rows_5m, rows_1h, latency_ms_mean_5m, latency_ms_p99_5m, gaps_1h FROM marketdata.ingestion_stats WHERE symbol = 'ETHUSDT' AND table_name = 'book_ticker'"))
        await using (var r = await s.ExecuteReaderAsync())
        {
            Assert.That(await r.ReadAsync(), Is.True);
            Assert.That((r.GetInt64(0), r.GetInt64(1)), Is.EqualTo((50L, 50L)));
            Assert.That(r.GetDecimal(2), Is.EqualTo(44.5m), "mean of 20..69 ms");
            Assert.That(r.GetDecimal(3), Is.EqualTo(68.5m), "p99 of 20..69 ms, interpolated");
            Assert.That(r.GetInt64(4), Is.Zero);
        }

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.ingestion_stats WHERE symbol = 'BTCUSDT'"), Is.Zero, "nothing from BTC in the last hour");

        // The training grid: 86,400 seconds for BTC only (ETH had nothing yesterday), values on the seconds with
        // rows, gap flags on exactly the seconds the holes overlap.
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.get_yesterday_training_data()"), Is.EqualTo(86_400));
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.get_yesterday_training_data({eth})"), Is.Zero);
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(extract(epoch FROM ts - '{noon:yyyy-MM-dd HH:mm:ss}+00')::int || ':' || book_gap || trade_gap, ',' ORDER BY ts)
            FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}') WHERE in_gap
            """), Is.EqualTo("20:truefalse,21:truefalse,22:truefalse,30:falsetrue"));
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT mid_open || '/' || mid_close || '/' || book_updates || '/' || agg_trades || '/' || vwap || '/' || buy_volume || '/' || price_open || '/' || price_close
            FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}') WHERE ts = '{noon:yyyy-MM-dd HH:mm:ss}+00'
            """), Is.EqualTo(FormattableString.Invariant($"100.25/100.25/1/2/{(200.0 + 102) / 3}/2/100/102")));
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.get_yesterday_training_data({btc}, '{yesterday:yyyy-MM-dd}') WHERE book_updates IS NOT NULL"), Is.EqualTo(13));
        Assert.That(await Db.ScalarAsync<long>("SELECT gaps FROM marketdata.feed_gap_summary WHERE symbol = 'BTCUSDT' AND stream = 'bookTicker'"), Is.EqualTo(1));
    }

    [Test]
    public async Task Roles_WriterIngestsAndMaintainsWithoutDdlRights_ReaderOnlyReads()
    {
        var tier = (await Migrate(roles: true)).Tier;
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
            Assert.That((await maintainer.MaintainOnceAsync(CancellationToken.None)).Count, Is.GreaterThan(0), "creates and drops partitions through SECURITY DEFINER functions");
            await maintainer.RollupOnceAsync(CancellationToken.None);

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

            await using (var views = asReader.CreateCommand("SELECT count(*) FROM marketdata.ingestion_stats; SELECT count(*) FROM marketdata.data_quality_check; SELECT count(*) FROM marketdata.feed_gap_summary"))
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
