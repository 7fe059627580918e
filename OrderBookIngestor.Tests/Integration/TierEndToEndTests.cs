using System.Globalization;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// Simulator → daemon → database over real sockets, on every storage tier: every event sent is stored exactly once,
/// with identical values, by one daemon or two splitting the symbols, and the 1-second rollups equal the events.
/// </summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class TierEndToEndTests(string tier) : DatabaseTest(tier)
{
    [Test]
    public async Task EveryEventTheSimulatorSent_IsStoredExactlyOnceWithIdenticalValues()
    {
        var sim = new SimulatorOptions { Symbols = 6, Rate = 20_000, Events = 30_000, Seed = 42, WaitForStreams = 12, RecordEvents = true };
        await using (var h = await Harness.StartAsync(Db, sim, o => o.Shards = 2))
        {
            await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
            Assert.That(h.Simulator.Ledger.Delivered, Is.EqualTo(30_000));
            Assert.That(h.Metrics.TotalRejects, Is.Zero);
            Assert.That(h.Metrics.Shards, Has.Count.EqualTo(4), "2 shards per route");

            var ledger = h.Simulator.Ledger.Snapshot();
            await AssertAggregatesMatchAsync(ledger);
            await AssertRowsMatchAsync(ledger);
        }

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker"), Is.EqualTo(15_000));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades"), Is.EqualTo(15_000));
    }

    /// <summary>Per stream: count, id sums and exact decimal sums, computed independently in SQL and by the simulator.</summary>
    private async Task AssertAggregatesMatchAsync(IReadOnlyDictionary<string, SimLedger.StreamTotals> ledger)
    {
        const string sql = """
            SELECT lower(s.symbol) || '@bookTicker', count(*), count(DISTINCT b.update_id), sum(b.update_id)::numeric,
                   sum(b.best_bid::numeric), sum(b.bid_qty::numeric), sum(b.best_ask::numeric), sum(b.ask_qty::numeric),
                   sum((extract(epoch FROM b.ts_exchange) * 1000)::bigint), sum((extract(epoch FROM b.ts_transaction) * 1000)::bigint), 0::bigint
            FROM marketdata.book_ticker b JOIN marketdata.symbols s ON s.id = b.symbol_id GROUP BY s.symbol
            UNION ALL
            SELECT lower(s.symbol) || '@aggTrade', count(*), count(DISTINCT t.agg_trade_id), sum(t.agg_trade_id)::numeric,
                   sum(t.price::numeric), sum(t.qty::numeric), sum(t.first_trade_id)::numeric, sum(t.last_trade_id)::numeric,
                   sum((extract(epoch FROM t.ts_exchange) * 1000)::bigint), sum((extract(epoch FROM t.ts_trade) * 1000)::bigint),
                   count(*) FILTER (WHERE t.is_buyer_maker)
            FROM marketdata.trades t JOIN marketdata.symbols s ON s.id = t.symbol_id GROUP BY s.symbol
            """;
        var seen = new HashSet<string>();
        await using var cmd = Db.DataSource.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var stream = reader.GetString(0);
            seen.Add(stream);
            Assert.That(ledger.TryGetValue(stream, out var t), Is.True, $"{stream} stored but never sent");
            var bookTicker = stream.EndsWith("@bookTicker", StringComparison.Ordinal);
            Assert.Multiple(() =>
            {
                Assert.That(reader.GetInt64(1), Is.EqualTo(t!.Count), $"{stream} count");
                Assert.That(reader.GetInt64(2), Is.EqualTo(t.Count), $"{stream} duplicates");
                Assert.That(reader.GetDecimal(3), Is.EqualTo(t.SumId), $"{stream} ids");
                Assert.That(reader.GetDecimal(4), Is.EqualTo(t.SumPrice), $"{stream} prices");
                Assert.That(reader.GetDecimal(5), Is.EqualTo(t.SumQty), $"{stream} quantities");
                Assert.That(reader.GetDecimal(6), Is.EqualTo(bookTicker ? t.SumPrice2 : t.SumFirstId), $"{stream} ask / first ids");
                Assert.That(reader.GetDecimal(7), Is.EqualTo(bookTicker ? t.SumQty2 : t.SumLastId), $"{stream} ask qty / last ids");
                Assert.That(reader.GetInt64(8), Is.EqualTo(t.SumEventTimeMs), $"{stream} event times");
                Assert.That(reader.GetInt64(9), Is.EqualTo(t.SumTransactionTimeMs), $"{stream} transaction times");
                Assert.That(reader.GetInt64(10), Is.EqualTo(t.MakerCount), $"{stream} maker flags");
            });
        }

        Assert.That(seen, Is.EquivalentTo(ledger.Keys), "every stream that was sent is stored");
    }

    /// <summary>Row by row, the stored float8's shortest text parses to exactly the decimal the exchange sent.</summary>
    private async Task AssertRowsMatchAsync(IReadOnlyDictionary<string, SimLedger.StreamTotals> ledger)
    {
        var expected = ledger.Values.SelectMany(t => t.Events).Where(e => e.Channel == MarketChannel.BookTicker)
            .ToDictionary(e => (e.Symbol, e.Id));
        await using var cmd = Db.DataSource.CreateCommand("""
            SELECT s.symbol, b.update_id, b.best_bid::text, b.bid_qty::text, b.best_ask::text, b.ask_qty::text,
                   (extract(epoch FROM b.ts_exchange) * 1000)::bigint, b.ts_ingest >= b.ts_exchange - interval '1 minute'
            FROM marketdata.book_ticker b JOIN marketdata.symbols s ON s.id = b.symbol_id
            """);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = 0;
        while (await reader.ReadAsync())
        {
            rows++;
            var key = (reader.GetString(0), reader.GetInt64(1));
            Assert.That(expected.TryGetValue(key, out var e), Is.True, $"row {key} was never sent");
            if (Dec(reader.GetString(2)) != e!.Price || Dec(reader.GetString(3)) != e.Qty || Dec(reader.GetString(4)) != e.Price2
                || Dec(reader.GetString(5)) != e.Qty2 || reader.GetInt64(6) != e.EventTimeMs || !reader.GetBoolean(7))
            {
                Assert.Fail($"row {key}: stored {reader.GetString(2)}/{reader.GetString(3)}/{reader.GetString(4)}/{reader.GetString(5)}, sent {e.Price}/{e.Qty}/{e.Price2}/{e.Qty2}");
            }
        }

        Assert.That(rows, Is.EqualTo(expected.Count));
    }

    private static decimal Dec(string pgText) => decimal.Parse(pgText, NumberStyles.Float, CultureInfo.InvariantCulture);

    [Test]
    public async Task TwoInstances_SplitTheSymbols_AndTogetherStoreEveryEventExactlyOnce()
    {
        var sim = new SimulatorOptions { Symbols = 8, Rate = 10_000, Events = 16_000, Seed = 11, WaitForStreams = 16, RecordEvents = true };
        await using var h = await Harness.StartAsync(Db, sim, o => o.Instance = "0/2");
        var secondOptions = new OrderBookIngestor.Configuration.IngestorOptions
        {
            Database = Db.ConnectionString, Symbols = h.Options.Symbols, WsUrl = h.Simulator.WsUrl, RestUrl = h.Simulator.RestUrl,
            Http = $"127.0.0.1:{Harness.FreePort()}", SummaryIntervalSeconds = 0, Instance = "1/2",
            SpoolDirectory = Path.Combine(Path.GetTempPath(), "obi-test-spool-" + Guid.NewGuid().ToString("N")),
        };
        using var second = OrderBookIngestor.Hosting.IngestorHost.Build(secondOptions, new TestContextLoggerProvider(), null, _ => null);
        await second.StartAsync();
        try
        {
            var secondMetrics = (OrderBookIngestor.Observability.IngestorMetrics)second.Services.GetService(typeof(OrderBookIngestor.Observability.IngestorMetrics))!;
            long Committed(OrderBookIngestor.Observability.IngestorMetrics m) => m.BookTicker.RowsCommitted + m.Trades.RowsCommitted;
            await h.Simulator.Finished.WaitAsync(TimeSpan.FromSeconds(60));
            await Harness.WaitUntilAsync(() => Committed(h.Metrics) + Committed(secondMetrics) >= h.Simulator.Ledger.Delivered, TimeSpan.FromSeconds(60),
                () => $"{Committed(h.Metrics)} + {Committed(secondMetrics)} of {h.Simulator.Ledger.Delivered}");

            var split0 = h.Options.Symbols.Where(s => OrderBookIngestor.Configuration.InstanceSplit.InstanceOf(s, 2) == 0).ToList();
            Assert.That(split0, Is.Not.Empty.And.Count.LessThan(h.Options.Symbols.Count), "the seed's symbols fall to both instances");
            Assert.That(Committed(h.Metrics), Is.GreaterThan(0));
            Assert.That(Committed(secondMetrics), Is.GreaterThan(0));
            Assert.That(h.Metrics.Shards.SelectMany(sh => sh.PlannedStreams).Select(st => st.Split('@')[0].ToUpperInvariant()).Distinct(), Is.EquivalentTo(split0));
            await AssertAggregatesMatchAsync(h.Simulator.Ledger.Snapshot());
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.symbols WHERE is_active"), Is.EqualTo(8), "each registers its own share; both shares active");
        }
        finally
        {
            await second.StopAsync();
            if (Directory.Exists(secondOptions.SpoolDirectory))
            {
                Directory.Delete(secondOptions.SpoolDirectory, recursive: true);
            }
        }
    }

    [Test]
    public async Task Rollups_EqualTheSimulatorsEventsPerSecond()
    {
        var sim = new SimulatorOptions { Symbols = 3, Rate = 6_000, Events = 18_000, Seed = 23, WaitForStreams = 6, RecordEvents = true };
        await using var h = await Harness.StartAsync(Db, sim, o => o.RollupIntervalMs = 200);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        Assert.That(h.Metrics.StorageTier, Is.EqualTo(Tier));
        if (OrderBookIngestor.Configuration.StorageTiers.DaemonMaintained(Tier))
        {
            await Harness.WaitUntilAsync(() => h.Parts.Maintenance.RollupBatches >= h.Metrics.BookTicker.Batches + h.Metrics.Trades.Batches, TimeSpan.FromSeconds(30),
                () => $"rolled up {h.Parts.Maintenance.RollupBatches} of {h.Metrics.BookTicker.Batches + h.Metrics.Trades.Batches} batches");
        }
        else
        {
            // Continuous aggregates: what their refresh policy would do, now.
            await Db.RefreshContinuousAggregatesAsync();
        }

        var events = h.Simulator.Ledger.Snapshot().Values.SelectMany(t => t.Events).ToList();
        var books = events.Where(e => e.Channel == MarketChannel.BookTicker).GroupBy(e => (e.Symbol, e.EventTimeMs / 1000)).ToDictionary(g => g.Key, g =>
        {
            var o = g.OrderBy(e => e.EventTimeMs).ThenBy(e => e.Id).Select(e => ((double)e.Price + (double)e.Price2) / 2).ToList();
            return FormattableString.Invariant($"{o[0]}/{o.Max()}/{o.Min()}/{o[^1]}/{o.Count}");
        });
        var trades = events.Where(e => e.Channel == MarketChannel.AggTrade).GroupBy(e => (e.Symbol, e.EventTimeMs / 1000)).ToDictionary(g => g.Key, g =>
        {
            var o = g.OrderBy(e => e.Id).ToList();
            return FormattableString.Invariant($"{o.Count}/{o.Sum(e => e.LastId - e.FirstId + 1)}/{o.Sum(e => e.Qty)}/{o.Where(e => !e.Maker).Sum(e => e.Qty)}/{o[0].Price}/{o[^1].Price}");
        });
        Assert.That(await StoredAsync("""
            SELECT s.symbol, extract(epoch FROM b.bucket)::bigint, b.mid_open::float8, b.mid_high, b.mid_low, b.mid_close, b.updates
            FROM marketdata.bt_1s b JOIN marketdata.symbols s ON s.id = b.symbol_id
            """, r => FormattableString.Invariant($"{r.GetDouble(2)}/{r.GetDouble(3)}/{r.GetDouble(4)}/{r.GetDouble(5)}/{r.GetInt64(6)}")), Is.EquivalentTo(books));
        // Volumes compared as the exchange's decimals: the float8 sum of a second's quantities, rounded to the
        // quantity precision, is that decimal sum.
        Assert.That(await StoredAsync("""
            SELECT s.symbol, extract(epoch FROM t.bucket)::bigint, t.agg_trades, t.trades, round(t.volume::numeric, 8), round(t.buy_volume::numeric, 8), t.price_open::numeric, t.price_close::numeric
            FROM marketdata.trade_1s t JOIN marketdata.symbols s ON s.id = t.symbol_id
            """, r => FormattableString.Invariant($"{r.GetInt64(2)}/{r.GetInt64(3)}/{Trim(r.GetDecimal(4))}/{Trim(r.GetDecimal(5))}/{Trim(r.GetDecimal(6))}/{Trim(r.GetDecimal(7))}")),
            Is.EquivalentTo(trades.ToDictionary(kv => kv.Key, kv => Normalize(kv.Value))));
    }

    private static string Normalize(string parts) => string.Join('/', parts.Split('/').Select(p => Trim(decimal.Parse(p, CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture)));

    /// <summary>The same decimal without trailing zeros (1.500 → 1.5), so values compare as text.</summary>
    private static decimal Trim(decimal d) => d / 1.000000000000000000000000000000000m;

    private async Task<Dictionary<(string, long), string>> StoredAsync(string sql, Func<Npgsql.NpgsqlDataReader, string> describe)
    {
        var stored = new Dictionary<(string, long), string>();
        await using var cmd = Db.DataSource.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            stored[(reader.GetString(0), reader.GetInt64(1))] = describe(reader);
        }

        return stored;
    }
}
