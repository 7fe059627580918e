using System.Globalization;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>The book rebuilt from the stored snapshot plus the stored diffs equals the exchange's own book.</summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class DepthBookTests(string tier) : DatabaseTest(tier)
{
    private static Task<Harness> Start(TestDatabase db, SimulatorOptions sim) => Harness.StartAsync(db, sim, o =>
    {
        o.Channels = ["bookTicker", "aggTrade", "depth@100ms"];
        o.TopIntervalMs = 100;
        o.TopLevels = 5;
    });

    private static long DepthDelivered(Harness h) => h.Simulator.Ledger.Snapshot().Where(kv => kv.Key.Contains("@depth", StringComparison.Ordinal)).Sum(kv => kv.Value.Count);

    [Test]
    public async Task StoredSnapshotPlusStoredDiffs_RebuildTheExchangesBook()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 6_000, Events = 12_000, Seed = 21, WaitForStreams = 6 };
        await using var h = await Start(Db, sim);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.Depth.RowsCommitted == DepthDelivered(h), TimeSpan.FromSeconds(20), () => $"{h.Metrics.Depth.RowsCommitted} depth rows");
        Assert.That(h.Metrics.Books().Synced, Is.EqualTo(2));
        Assert.That(h.Metrics.TotalRejects, Is.Zero);

        foreach (var symbol in new[] { "BTCUSDT", "ETHUSDT" })
        {
            await AssertRebuiltBookMatchesAsync(symbol, h.Simulator.Book(symbol)!, fromLatestSnapshot: false);
        }

        await Harness.WaitUntilAsync(() => h.Metrics.Tops.RowsCommitted > 0, TimeSpan.FromSeconds(10), () => "no orderbook_top rows");
        Assert.That(await Db.ScalarAsync<long>("""
            SELECT count(*) FROM marketdata.orderbook_top
            WHERE NOT (bid_prices[1] < ask_prices[1] AND microprice BETWEEN bid_prices[1] AND ask_prices[1]
                       AND imbalance_l1 BETWEEN -1 AND 1 AND cardinality(bid_prices) = 5 AND spread > 0)
            """), Is.Zero, "every sampled top of book is uncrossed and its features are in range");
    }

    [Test]
    public async Task SkippedDiff_IsAGapRow_TheSymbolResyncs_AndTheBookStillMatches()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 6_000, Events = 12_000, Seed = 22, WaitForStreams = 6 };
        await using var h = await Start(Db, sim);
        await Harness.WaitUntilAsync(() => h.Metrics.Books().Synced == 2, Harness.StartTimeout, () => "books not synced");
        h.Simulator.WithholdNext("btcusdt@depth@100ms", 1);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(async () => h.Metrics.Depth.RowsCommitted == DepthDelivered(h) && h.Metrics.Books().Synced == 2,
            TimeSpan.FromSeconds(20), () => $"{h.Metrics.Depth.RowsCommitted} depth rows, {h.Metrics.Books().Synced} synced");
        var skipped = h.Simulator.Ledger.Withheld()["btcusdt@depth"].Single();

        await Harness.WaitUntilAsync(async () => (await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps")) == 1, TimeSpan.FromSeconds(10), () => "gap row");
        Assert.That(await Db.ScalarAsync<string>("SELECT stream || ' ' || reason || ' ' || first_missing_id || '..' || last_missing_id FROM marketdata.feed_gaps"),
            Is.EqualTo($"btcusdt@depth@100ms depth_sequence {skipped.FirstId}..{skipped.Id}"), "the gap names exactly the update ids of the lost diff");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_snapshots s JOIN marketdata.symbols y ON y.id = s.symbol_id WHERE y.symbol = 'BTCUSDT' AND s.source = 'rest'"),
            Is.EqualTo(2), "initial sync and one resync; ETHUSDT untouched");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_snapshots s JOIN marketdata.symbols y ON y.id = s.symbol_id WHERE y.symbol = 'ETHUSDT' AND s.source = 'rest'"), Is.EqualTo(1));

        await AssertRebuiltBookMatchesAsync("BTCUSDT", h.Simulator.Book("BTCUSDT")!, fromLatestSnapshot: true);
        await AssertRebuiltBookMatchesAsync("ETHUSDT", h.Simulator.Book("ETHUSDT")!, fromLatestSnapshot: false);
    }

    [TestCase(SnapshotJoin.OneDiffBehind)]
    [TestCase(SnapshotJoin.InsideNextDiff)]
    public async Task EitherRelationJoinsTheSnapshotToTheStream_WithOneSnapshotPerSymbol(SnapshotJoin join)
    {
        // Slow depth (a few diffs a second per stream): the snapshot, fetched on a symbol's first diff, is served
        // before its next one. One diff behind, it is continued by the only diff buffered (pu = lastUpdateId,
        // U > lastUpdateId): a sequencer that knew only U <= lastUpdateId <= u fetched again until a second diff came.
        var sim = new SimulatorOptions { Symbols = 3, Rate = 45, Events = 180, Seed = 24, WaitForStreams = 9, SnapshotJoin = join };
        await using var h = await Start(Db, sim);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.Depth.RowsCommitted == DepthDelivered(h) && h.Metrics.Books().Synced == 3,
            TimeSpan.FromSeconds(20), () => $"{h.Metrics.Depth.RowsCommitted} depth rows, {h.Metrics.Books().Synced} synced");
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(DISTINCT symbol_id) FROM marketdata.book_snapshots WHERE source = 'rest'") == 3,
            TimeSpan.FromSeconds(10), () => "snapshots not stored");

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_snapshots WHERE source = 'rest'"), Is.EqualTo(3), "one REST snapshot per symbol: none fetched again");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps"), Is.Zero);
        // The relation each stored snapshot met: continued by a diff (pu = lastUpdateId) or inside one (U <= lastUpdateId <= u).
        var joined = join == SnapshotJoin.OneDiffBehind
            ? "d.prev_final_update_id = s.last_update_id AND d.first_update_id > s.last_update_id"
            : "d.first_update_id <= s.last_update_id AND d.final_update_id >= s.last_update_id";
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.book_snapshots s WHERE s.source = 'rest' AND EXISTS (SELECT 1 FROM marketdata.depth_events d WHERE d.symbol_id = s.symbol_id AND {joined})"),
            Is.EqualTo(3));
        var symbols = (await Db.ScalarAsync<string>("SELECT string_agg(symbol, ',') FROM marketdata.symbols")).Split(',');
        Assert.That(symbols, Has.Length.EqualTo(3));
        foreach (var symbol in symbols)
        {
            await AssertRebuiltBookMatchesAsync(symbol, h.Simulator.Book(symbol)!, fromLatestSnapshot: false);
        }
    }

    [Test]
    public async Task Restart_TheDiffsMissedWhileDownAreAGapRow_AndTheBookIsResynced()
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 3_000, Events = 15_000, Seed = 23, WaitForStreams = 3, AllStreamsActive = true };
        await using var h = await Start(Db, sim);
        await Harness.WaitUntilAsync(() => h.Metrics.Books().Synced == 1 && h.Metrics.Depth.RowsCommitted > 300, Harness.StartTimeout, () => "first run");
        await h.RestartDaemonAsync(TimeSpan.FromSeconds(1));
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Generated == 15_000, TimeSpan.FromSeconds(60), () => "generation");
        var generatedDepth = h.Simulator.Ledger.GeneratedPerStream()["btcusdt@depth"];
        await Harness.WaitUntilAsync(async () => h.Metrics.Books().Synced == 1 && (await Db.ScalarAsync<long>(
                "SELECT count(*) FROM marketdata.feed_gaps WHERE stream = 'btcusdt@depth@100ms'")) == 1,
            TimeSpan.FromSeconds(20), () => "no resync or no gap row");

        Assert.That(await Db.ScalarAsync<string>("SELECT reason FROM marketdata.feed_gaps WHERE stream = 'btcusdt@depth@100ms'"), Is.EqualTo("daemon_down"));
        Assert.That(await Db.ScalarAsync<long>("""
            SELECT count(*) FROM marketdata.depth_events d, marketdata.feed_gaps g
            WHERE g.stream = 'btcusdt@depth@100ms' AND d.final_update_id BETWEEN g.first_missing_id AND g.last_missing_id
            """), Is.Zero, "nothing stored inside the recorded hole");
        Assert.That(await Db.ScalarAsync<long>("""
            SELECT count(*) FROM marketdata.depth_events d, marketdata.feed_gaps g
            WHERE g.stream = 'btcusdt@depth@100ms' AND (d.final_update_id = g.first_missing_id - 1 OR d.first_update_id = g.last_missing_id + 1)
            """), Is.EqualTo(2), "the hole is bounded exactly by the last diff before and the first diff after");
        // Drained when the newest stored diff is the exchange's last one.
        var last = h.Simulator.Book("BTCUSDT")!.Exact().LastUpdateId;
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT coalesce(max(final_update_id), 0) FROM marketdata.depth_events") == last,
            TimeSpan.FromSeconds(10), () => "last diff not stored");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) - count(DISTINCT final_update_id) FROM marketdata.depth_events"), Is.Zero, "no diff stored twice");
        Assert.That(generatedDepth, Is.GreaterThan(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.depth_events")), "the downtime really missed diffs");
        await AssertRebuiltBookMatchesAsync("BTCUSDT", h.Simulator.Book("BTCUSDT")!, fromLatestSnapshot: true);
    }

    [Test]
    public async Task BookAt_EqualsTheExchangesBookAtRandomInstants_AndNeverGivesABookInsideAHole()
    {
        // 2 symbols for ~10 s; the daemon stores its own book every second. A withheld diff (a depth_sequence hole, then a
        // resync) and a restart (a daemon_down hole) on the way.
        var sim = new SimulatorOptions { Symbols = 2, Rate = 1_500, Events = 15_000, Seed = 31, WaitForStreams = 6, AllStreamsActive = true, RecordEvents = true };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Channels = ["bookTicker", "aggTrade", "depth@100ms"];
            o.BookSnapshotSeconds = 1;
        });
        await Harness.WaitUntilAsync(async () => h.Metrics.Books().Synced == 2
                && await Db.ScalarAsync<long>("SELECT count(DISTINCT symbol_id) FROM marketdata.book_snapshots WHERE source = 'daemon'") == 2,
            Harness.StartTimeout, () => "the daemon's own books stored");
        h.Simulator.WithholdNext("btcusdt@depth@100ms", 1);
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'depth_sequence'") == 1
                && h.Metrics.Books().Synced == 2, TimeSpan.FromSeconds(30), () => "the withheld diff's hole and the resync");
        await h.RestartDaemonAsync(TimeSpan.FromSeconds(1));
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Generated == 15_000, TimeSpan.FromSeconds(60), () => "generation");
        foreach (var symbol in new[] { "BTCUSDT", "ETHUSDT" })
        {
            var last = h.Simulator.Book(symbol)!.Exact().LastUpdateId;
            await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>($"SELECT coalesce(max(final_update_id), 0) FROM marketdata.depth_events d JOIN marketdata.symbols y ON y.id = d.symbol_id WHERE y.symbol = '{symbol}'") == last,
                TimeSpan.FromSeconds(20), () => $"{symbol}: last diff not stored");
        }

        var random = new Random(31);
        var outcomes = new Dictionary<string, int>();
        foreach (var symbol in new[] { "BTCUSDT", "ETHUSDT" })
        {
            var book = h.Simulator.Book(symbol)!;
            var range = (await Db.ScalarAsync<string>($"""
                SELECT (extract(epoch FROM min(ts_exchange)) * 1000)::bigint || ' ' || (extract(epoch FROM max(ts_exchange)) * 1000)::bigint
                FROM marketdata.depth_events d JOIN marketdata.symbols y ON y.id = d.symbol_id WHERE y.symbol = '{symbol}'
                """)).Split(' ');
            var (from, to) = (long.Parse(range[0], CultureInfo.InvariantCulture), long.Parse(range[1], CultureInfo.InvariantCulture));
            for (var i = 0; i < 60; i++)
            {
                var at = from - 500 + random.NextInt64(to - from + 1_000);
                await using var cmd = Db.DataSource.CreateCommand($"""
                    SELECT b.status, concat_ws(' ', b.detail, 'from', b.snapshot_source, b.snapshot_at, 'u', b.last_update_id), b.bid_prices, b.bid_qtys, b.ask_prices, b.ask_qtys,
                           EXISTS (SELECT 1 FROM marketdata.feed_gaps g JOIN marketdata.symbols y ON y.id = g.symbol_id
                                   WHERE y.symbol = '{symbol}' AND g.stream LIKE '%@depth%' AND to_timestamp({at} / 1000.0) BETWEEN g.gap_start AND g.gap_end)
                    FROM marketdata.book_at('{symbol}', to_timestamp({at} / 1000.0), 1000) b
                    """);
                await using var r = await cmd.ExecuteReaderAsync();
                Assert.That(await r.ReadAsync(), Is.True);
                var (status, detail, inHole) = (r.GetString(0), r.GetString(1), r.GetBoolean(6));
                outcomes[status] = outcomes.GetValueOrDefault(status) + 1;
                if (inHole)
                {
                    Assert.That(status, Is.EqualTo("gap"), $"{symbol} at {at}: inside a recorded hole");
                }

                if (status != "ok")
                {
                    Assert.That(r.IsDBNull(2), Is.True, $"{symbol} at {at}: no levels with status {status}");
                    Assert.That(status, Is.AnyOf("gap", "no_snapshot"), detail);
                    continue;
                }

                // Whatever book_at calls ok is the exchange's book at that instant, level for level.
                var expected = book.At(at);
                Assert.That(expected, Is.Not.Null, $"{symbol} at {at}: ok before the exchange's first diff");
                Assert.That(Levels(r.GetFieldValue<double[]>(2), r.GetFieldValue<double[]>(3)), Is.EqualTo(expected!.Value.Bids), $"{symbol} at {at}: bids ({detail}; the exchange at u {expected.Value.LastUpdateId})");
                Assert.That(Levels(r.GetFieldValue<double[]>(4), r.GetFieldValue<double[]>(5)), Is.EqualTo(expected.Value.Asks), $"{symbol} at {at}: asks ({detail}; the exchange at u {expected.Value.LastUpdateId})");
            }
        }

        TestContext.Out.WriteLine($"book_at outcomes over 120 instants: {string.Join(", ", outcomes.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.That(outcomes.GetValueOrDefault("ok"), Is.GreaterThanOrEqualTo(80), "most instants are rebuilt");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'daemon_down' AND stream LIKE '%@depth%'"), Is.EqualTo(2), "the restart is a hole per symbol");
    }

    private static List<(decimal Price, decimal Qty)> Levels(double[] prices, double[] qtys) => prices.Zip(qtys, (p, q) => (Exact(p), Exact(q))).ToList();

    /// <summary>Replays as a user would: one stored snapshot, then the stored diffs after it in update-id order, checking the pu chain.</summary>
    private async Task AssertRebuiltBookMatchesAsync(string symbol, SimBook exchange, bool fromLatestSnapshot)
    {
        var bids = new SortedDictionary<decimal, decimal>();
        var asks = new SortedDictionary<decimal, decimal>();
        long lastUpdateId;
        await using (var cmd = Db.DataSource.CreateCommand($"""
            SELECT last_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys FROM marketdata.book_snapshots s
            JOIN marketdata.symbols y ON y.id = s.symbol_id WHERE y.symbol = '{symbol}'
            ORDER BY last_update_id {(fromLatestSnapshot ? "DESC" : "ASC")} LIMIT 1
            """))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            Assert.That(await r.ReadAsync(), Is.True, $"{symbol}: no snapshot stored");
            lastUpdateId = r.GetInt64(0);
            Apply(bids, r.GetFieldValue<double[]>(1), r.GetFieldValue<double[]>(2));
            Apply(asks, r.GetFieldValue<double[]>(3), r.GetFieldValue<double[]>(4));
        }

        var applied = 0;
        long previous = -1;
        await using (var cmd = Db.DataSource.CreateCommand($"""
            SELECT first_update_id, final_update_id, prev_final_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys FROM marketdata.depth_events d
            JOIN marketdata.symbols y ON y.id = d.symbol_id WHERE y.symbol = '{symbol}' AND d.final_update_id >= {lastUpdateId}
            ORDER BY final_update_id
            """))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                if (applied == 0)
                {
                    Assert.That(r.GetInt64(0) <= lastUpdateId || r.GetInt64(2) == lastUpdateId, Is.True,
                        $"{symbol}: the first diff straddles the snapshot or continues it");
                }
                else
                {
                    Assert.That(r.GetInt64(2), Is.EqualTo(previous), $"{symbol}: pu chain after the snapshot");
                }

                previous = r.GetInt64(1);
                Apply(bids, r.GetFieldValue<double[]>(3), r.GetFieldValue<double[]>(4));
                Apply(asks, r.GetFieldValue<double[]>(5), r.GetFieldValue<double[]>(6));
                applied++;
            }
        }

        var (exchangeLast, exchangeBids, exchangeAsks) = exchange.Exact();
        Assert.That(applied, Is.GreaterThan(0));
        Assert.That(previous, Is.EqualTo(exchangeLast), $"{symbol}: replayed up to the exchange's last update");
        Assert.That(bids.Reverse().Select(kv => (kv.Key, kv.Value)), Is.EqualTo(exchangeBids), $"{symbol}: bids");
        Assert.That(asks.Select(kv => (kv.Key, kv.Value)), Is.EqualTo(exchangeAsks), $"{symbol}: asks");
    }

    private static void Apply(SortedDictionary<decimal, decimal> side, double[] prices, double[] qtys)
    {
        for (var i = 0; i < prices.Length; i++)
        {
            var price = Exact(prices[i]);
            if (qtys[i] == 0)
            {
                side.Remove(price);
            }
            else
            {
                side[price] = Exact(qtys[i]);
            }
        }
    }

    /// <summary>The stored float8 read back through its shortest text, as psql shows it.</summary>
    private static decimal Exact(double value) => decimal.Parse(value.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
}
