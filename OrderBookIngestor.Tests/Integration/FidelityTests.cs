using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>Faults from the simulator: every event it generated is stored exactly once or covered by a feed_gaps row.</summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class FidelityTests(string tier) : DatabaseTest(tier)
{
    private static async Task StartedAsync(Harness h) =>
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Delivered > 100, Harness.StartTimeout, () => "market did not start");

    private async Task<long> TradeRows(string symbol, string filter = "true")
        => await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.trades t JOIN marketdata.symbols s ON s.id = t.symbol_id WHERE s.symbol = '{symbol}' AND {filter}");

    [Test]
    public async Task WithheldAggTrades_AreBackfilledFromRest_StoredOnceAndMarked()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 6_000, Events = 12_000, Seed = 11, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim);
        await StartedAsync(h);
        h.Simulator.WithholdNext("btcusdt@aggTrade", 25);
        h.Simulator.WithholdNext("ethusdt@aggTrade", 1_500);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        var withheld = h.Simulator.Ledger.Withheld();
        Assert.That(withheld["btcusdt@aggTrade"], Has.Count.EqualTo(25));
        Assert.That(withheld["ethusdt@aggTrade"], Has.Count.EqualTo(1_500), "more than one REST page (1000)");
        await Harness.WaitUntilAsync(() => h.Metrics.TradesBackfilled == 1_525, TimeSpan.FromSeconds(30), () => $"{h.Metrics.TradesBackfilled} backfilled");
        await Harness.WaitUntilAsync(() => h.Metrics.Trades.RowsCommitted == h.Simulator.Ledger.Snapshot().Where(kv => kv.Key.EndsWith("@aggTrade", StringComparison.Ordinal)).Sum(kv => kv.Value.Count) + 1_525,
            TimeSpan.FromSeconds(30), () => $"{h.Metrics.Trades.RowsCommitted} trade rows");

        foreach (var symbol in new[] { "BTCUSDT", "ETHUSDT" })
        {
            var stream = MarketChannels.StreamName(symbol, MarketChannel.AggTrade);
            var generated = h.Simulator.Ledger.Snapshot()[stream].Count + withheld[stream].Count;
            Assert.That(await TradeRows(symbol), Is.EqualTo(generated), $"{symbol}: every generated trade stored");
            Assert.That(await Db.ScalarAsync<long>($"SELECT max(agg_trade_id) - min(agg_trade_id) + 1 - count(DISTINCT agg_trade_id) FROM marketdata.trades t JOIN marketdata.symbols s ON s.id = t.symbol_id WHERE s.symbol = '{symbol}'"),
                Is.Zero, $"{symbol}: ids contiguous and unique");
            Assert.That(await TradeRows(symbol, "is_backfilled"), Is.EqualTo(withheld[stream].Count));
            var first = withheld[stream][0];
            Assert.That(await TradeRows(symbol, $"is_backfilled AND agg_trade_id = {first.Id} AND price::numeric = {first.Price} AND qty::numeric = {first.Qty} AND first_trade_id = {first.FirstId}"),
                Is.EqualTo(1), "backfilled values are the exchange's");
        }

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'agg_trade_ids'"), Is.Zero, "everything was recovered");
    }

    [Test]
    public async Task AggTradesRestCannotReturn_AreWrittenToTheGapLedgerWithTheirIds()
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 2_000, Events = 3_000, Seed = 12, WaitForStreams = 2, RestForgetsWithheld = true };
        await using var h = await Harness.StartAsync(Db, sim);
        await StartedAsync(h);
        h.Simulator.WithholdNext("btcusdt@aggTrade", 10);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Parts.Gaps!.Count(GapReason.AggTradeIds) == 1, TimeSpan.FromSeconds(30), () => "no gap recorded");
        var missing = h.Simulator.Ledger.Withheld()["btcusdt@aggTrade"];
        await Harness.WaitUntilAsync(async () => (await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps")) == 1, TimeSpan.FromSeconds(10), () => "gap row not written");
        Assert.That(await Db.ScalarAsync<string>("SELECT stream || ' ' || first_missing_id || '..' || last_missing_id || ' ' || reason FROM marketdata.feed_gaps"),
            Is.EqualTo($"btcusdt@aggTrade {missing[0].Id}..{missing[^1].Id} agg_trade_ids"));
        Assert.That(await Db.ScalarAsync<bool>("SELECT gap_start <= gap_end AND gap_end - gap_start < interval '1 minute' FROM marketdata.feed_gaps"), Is.True);
        Assert.That(await TradeRows("BTCUSDT"), Is.EqualTo(h.Simulator.Ledger.Snapshot()["btcusdt@aggTrade"].Count), "nothing invented for the hole");
    }

    [Test]
    public async Task DuplicatedFrames_AreStoredOnce()
    {
        var sim = new SimulatorOptions { Symbols = 3, Rate = 6_000, Events = 6_000, Seed = 13, WaitForStreams = 6, DuplicateEvery = 3 };
        await using var h = await Harness.StartAsync(Db, sim);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.Duplicates(MarketChannel.BookTicker, false) + h.Metrics.Duplicates(MarketChannel.AggTrade, false) >= 1_990,
            TimeSpan.FromSeconds(10), () => "duplicates not all seen");
        Assert.That(h.RowsCommitted, Is.EqualTo(6_000));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) - count(DISTINCT (symbol_id, update_id)) FROM marketdata.book_ticker"), Is.Zero);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) - count(DISTINCT (symbol_id, agg_trade_id)) FROM marketdata.trades"), Is.Zero);
    }

    [Test]
    public async Task Disconnect_TradesAreBackfilled_BookTickerWindowIsInTheGapLedger()
    {
        // The market trades on while the recorder is disconnected, as the real one does.
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Seed = 14, WaitForStreams = 4, AllStreamsActive = true };
        await using var h = await Harness.StartAsync(Db, sim, o => o.ReconnectMinDelayMs = 300);
        await StartedAsync(h);
        h.Simulator.DisconnectAll();
        await Harness.WaitUntilAsync(() => h.Metrics.Shards.All(s => s.Reconnects >= 1 && s.State == Observability.ConnectionState.Streaming) && h.RowsCommitted > 2_000,
            TimeSpan.FromSeconds(30), () => "no reconnect");
        await Harness.WaitUntilAsync(() => h.Parts.Gaps!.Count(GapReason.Disconnected) == 2, TimeSpan.FromSeconds(10), () => "no disconnect gap");
        Assert.That(h.Metrics.TradesBackfilled, Is.GreaterThan(0), "trades generated while disconnected came back from REST");
        await Harness.WaitUntilAsync(async () => (await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'disconnected'")) == 2,
            TimeSpan.FromSeconds(10), () => "gap rows not written");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'disconnected' AND stream LIKE '%@bookTicker' AND gap_end > gap_start"), Is.EqualTo(2));
        foreach (var symbol in new[] { "BTCUSDT", "ETHUSDT" })
        {
            Assert.That(await Db.ScalarAsync<long>($"SELECT max(agg_trade_id) - min(agg_trade_id) + 1 - count(*) FROM marketdata.trades t JOIN marketdata.symbols s ON s.id = t.symbol_id WHERE s.symbol = '{symbol}'"),
                Is.Zero, $"{symbol}: no trade lost across the disconnect");
        }
    }

    [Test]
    public async Task Restart_DowntimeTradesAreBackfilled_AndTheBookTickerHoleIsRecorded()
    {
        // The market goes on while the recorder is down, as the real one does.
        var sim = new SimulatorOptions { Symbols = 1, Rate = 1_000, Seed = 15, WaitForStreams = 2, AllStreamsActive = true };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 500, TimeSpan.FromSeconds(30), () => "first run");
        await h.RestartDaemonAsync(TimeSpan.FromSeconds(1));
        await Harness.WaitUntilAsync(async () => h.RowsCommitted > 500 && h.Metrics.TradesBackfilled > 0 && h.Parts.Gaps!.Count(GapReason.DaemonDown) == 1,
            TimeSpan.FromSeconds(30), () => $"second run: {h.RowsCommitted} rows, {h.Metrics.TradesBackfilled} backfilled");
        await Harness.WaitUntilAsync(async () => (await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps")) == 1, TimeSpan.FromSeconds(10), () => "gap row");

        Assert.That(await Db.ScalarAsync<string>("SELECT stream || ' ' || reason FROM marketdata.feed_gaps"), Is.EqualTo("btcusdt@bookTicker daemon_down"));
        // A join rather than a correlated subquery: Citus plans no correlated subquery over a reference table (feed_gaps).
        Assert.That(await Db.ScalarAsync<bool>("SELECT gap_end - gap_start >= interval '900 milliseconds' FROM marketdata.feed_gaps"), Is.True, "the recorded window is the downtime");
        Assert.That(await Db.ScalarAsync<long>("""
            SELECT count(*) FROM marketdata.feed_gaps g JOIN marketdata.book_ticker b ON b.symbol_id = g.symbol_id AND b.ts_exchange > g.gap_start AND b.ts_exchange < g.gap_end
            """), Is.Zero, "nothing is stored inside the recorded window");
        Assert.That(await Db.ScalarAsync<long>("SELECT max(agg_trade_id) - min(agg_trade_id) + 1 - count(DISTINCT agg_trade_id) FROM marketdata.trades"),
            Is.Zero, "trades stay contiguous across the restart");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades WHERE is_backfilled"), Is.EqualTo(h.Metrics.TradesBackfilled));
    }

    [Test]
    public async Task PlannedRotation_BeforeTheExchangesCutoff_LeavesNoGapAndNoDuplicate()
    {
        // The exchange cuts connections at 3 s; the daemon replaces them at about 2 s, overlapping.
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 16_000, Seed = 16, WaitForStreams = 4, MaxConnectionLifetimeSeconds = 3 };
        await using var h = await Harness.StartAsync(Db, sim, o => o.MaxConnectionLifetimeSeconds = 2);
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Generated == 16_000, TimeSpan.FromSeconds(60), () => $"{h.Simulator.Ledger.Generated} generated");
        var generated = h.Simulator.Ledger.GeneratedPerStream();
        await Harness.WaitUntilAsync(() => h.RowsCommitted == 16_000, TimeSpan.FromSeconds(20), () => $"{h.RowsCommitted} of 16000 committed");

        Assert.Multiple(() =>
        {
            Assert.That(h.Metrics.Shards.All(s => s.Rotations >= 2), Is.True, "each shard rotated at least twice");
            Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero, "no connection was lost");
            Assert.That(h.Metrics.Duplicates(MarketChannel.BookTicker, false) + h.Metrics.Duplicates(MarketChannel.AggTrade, false), Is.GreaterThan(0),
                "the overlap delivered frames twice, and they were dropped");
            Assert.That(h.Metrics.TradesBackfilled, Is.Zero, "nothing had to be recovered");
        });
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps"), Is.Zero);
        foreach (var (stream, count) in generated)
        {
            Assert.That(MarketChannels.TryParseStreamName(stream, out var symbol, out var channel), Is.True, stream);
            var table = channel == MarketChannel.BookTicker ? "book_ticker" : "trades";
            var id = channel == MarketChannel.BookTicker ? "update_id" : "agg_trade_id";
            Assert.That(await Db.ScalarAsync<string>($"SELECT count(*) || '/' || count(DISTINCT {id}) FROM marketdata.{table} t JOIN marketdata.symbols s ON s.id = t.symbol_id WHERE s.symbol = '{symbol}'"),
                Is.EqualTo($"{count}/{count}"), $"{stream}: every generated event once");
        }
    }

    [Test]
    public async Task ExchangeCutsTheConnection_WithoutRotation_TradesAreRecoveredAndTheRestIsInTheLedger()
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 1_000, Events = 6_000, Seed = 17, WaitForStreams = 2, MaxConnectionLifetimeSeconds = 2 };
        await using var h = await Harness.StartAsync(Db, sim, o => o.ReconnectMinDelayMs = 200);
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Generated == 6_000, TimeSpan.FromSeconds(60), () => $"{h.Simulator.Ledger.Generated} generated");
        await Harness.WaitUntilAsync(() => h.Metrics.Shards.All(s => s.Reconnects >= 1), TimeSpan.FromSeconds(10), () => "no reconnect");
        var generated = h.Simulator.Ledger.GeneratedPerStream();
        await Harness.WaitUntilAsync(() => h.Metrics.Trades.RowsCommitted == generated["btcusdt@aggTrade"], TimeSpan.FromSeconds(30),
            () => $"{h.Metrics.Trades.RowsCommitted} of {generated["btcusdt@aggTrade"]} trades");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(DISTINCT agg_trade_id) FROM marketdata.trades"), Is.EqualTo(generated["btcusdt@aggTrade"]),
            "every trade of the cut windows came back from REST");

        // bookTicker has no contiguous ids: what was sent during the cut is covered by 'disconnected' rows.
        await Harness.WaitUntilAsync(async () => (await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE stream = 'btcusdt@bookTicker'"))
            == h.Metrics.Shards.Single(s => s.Route == "public").Reconnects, TimeSpan.FromSeconds(10), () => "gap rows");
        var stored = await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker");
        var missing = generated["btcusdt@bookTicker"] - stored;
        Assert.That(missing, Is.GreaterThanOrEqualTo(0));
        if (missing > 0)
        {
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'disconnected' AND gap_end > gap_start"), Is.GreaterThan(0),
                "bookTicker events were lost in the cut, and the ledger says when");
        }
    }

    [Test]
    public async Task SilentSubscription_IsReportedInMetricsAndHealth_WhileItsSiblingsFlow()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Seed = 18, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim, o => o.SilentStreamSeconds = 1);
        // Acknowledged like the others, but the exchange never sends it anything.
        h.Simulator.WithholdNext("ethusdt@bookTicker", int.MaxValue);
        await Harness.WaitUntilAsync(() => h.Metrics.SilentStreams().Contains("ethusdt@bookTicker"), Harness.StartTimeout, () => "not reported");
        Assert.That(h.Metrics.SilentStreams(), Is.EqualTo(new[] { "ethusdt@bookTicker" }), "only the silent one; its siblings flow");

        using var http = new HttpClient { BaseAddress = new Uri("http://" + h.Options.Http) };
        using var health = await http.GetAsync("/health");
        var body = await health.Content.ReadAsStringAsync();
        Assert.That((int)health.StatusCode, Is.EqualTo(200));
        Assert.That(body, Does.Contain("\"status\": \"degraded\"").And.Contain("ethusdt@bookTicker"));
        Assert.That(await http.GetStringAsync("/metrics"), Does.Contain("orderbook_silent_streams 1\n"));
    }
}
