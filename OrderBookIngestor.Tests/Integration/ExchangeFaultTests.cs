using OrderBookIngestor.Exchange;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>What the exchange does wrong: ping storms, slow REST, rate limits and bans, binary frames.</summary>
public sealed class ExchangeFaultTests : DatabaseTest
{
    [Test]
    public async Task PingStorm_IsAnsweredAndRecordingGoesOn()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 6_000, Seed = 71, WaitForStreams = 4, PingIntervalMs = 5 };
        await using var h = await Harness.StartAsync(Db, sim);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        Assert.That(h.Simulator.Ledger.Delivered, Is.EqualTo(6_000));
        Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero, "a ping every 5 ms is answered, not a reason to drop");
    }

    [TestCase(429)]
    [TestCase(418)]
    public async Task RateLimitOrBan_OnRest_IsWaitedOut_AndTheBackfillCompletes(int status)
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 2_000, Events = 4_000, Seed = 72, WaitForStreams = 2 };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Delivered > 100, TimeSpan.FromSeconds(20), () => "market did not start");
        h.Simulator.FailRestNext(status, 2, retryAfterSeconds: 1);
        h.Simulator.WithholdNext("btcusdt@aggTrade", 30);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.TradesBackfilled == 30, TimeSpan.FromSeconds(30), () => $"{h.Metrics.TradesBackfilled} backfilled");
        await Harness.WaitUntilAsync(async () => (await Db.ScalarAsync<long>("SELECT max(agg_trade_id) - min(agg_trade_id) + 1 - count(DISTINCT agg_trade_id) FROM marketdata.trades")) == 0,
            TimeSpan.FromSeconds(10), () => "backfilled trades not committed");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps"), Is.Zero, "recovered after the wait, nothing given up");
    }

    [Test]
    public async Task SlowRest_StillBackfills()
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 2_000, Events = 4_000, Seed = 73, WaitForStreams = 2, RestDelayMs = 1_500 };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Delivered > 100, TimeSpan.FromSeconds(30), () => "market did not start");
        h.Simulator.WithholdNext("btcusdt@aggTrade", 30);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.TradesBackfilled == 30, TimeSpan.FromSeconds(30), () => $"{h.Metrics.TradesBackfilled} backfilled");
    }

    [Test]
    public async Task StopDuringABackfill_EveryIdNotFetchedIsAGapRow()
    {
        // 2,500 trades withheld: three REST pages, each answered after 1.5 s. The stop comes after the first page.
        var sim = new SimulatorOptions { Symbols = 1, Rate = 2_000, Seed = 75, WaitForStreams = 2, RestDelayMs = 1_500 };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.Simulator.Ledger.Delivered > 100, TimeSpan.FromSeconds(30), () => "market did not start");
        h.Simulator.WithholdNext("btcusdt@aggTrade", 2_500);
        await Harness.WaitUntilAsync(() => h.Metrics.TradesBackfilled >= 1_000, TimeSpan.FromSeconds(30), () => $"{h.Metrics.TradesBackfilled} backfilled");
        await h.Daemon.StopAsync();

        var withheld = h.Simulator.Ledger.Withheld()["btcusdt@aggTrade"].Select(e => e.Id).ToList();
        Assert.That(h.Metrics.TradesBackfilled, Is.LessThan(withheld.Count), "stopped part-way");
        // Every withheld id is stored (backfilled) or inside an agg_trade_ids gap row: nothing is silently missing.
        Assert.That(await Db.ScalarAsync<long>($"""
            SELECT count(*) FROM generate_series({withheld.Min()}::bigint, {withheld.Max()}::bigint) AS i(id)
            WHERE NOT EXISTS (SELECT 1 FROM marketdata.trades t WHERE t.agg_trade_id = i.id)
              AND NOT EXISTS (SELECT 1 FROM marketdata.feed_gaps g WHERE g.reason = 'agg_trade_ids' AND i.id BETWEEN g.first_missing_id AND g.last_missing_id)
            """), Is.Zero);
        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(DISTINCT details, ',') FROM marketdata.feed_gaps WHERE reason = 'agg_trade_ids'"),
            Does.Contain("daemon stopped during backfill"));
    }

    [Test]
    public async Task BinaryFrame_IsCountedAndSkipped()
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 1_000, Events = 2_000, Seed = 74, WaitForStreams = 2 };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.Simulator.Connections.Count == 2, TimeSpan.FromSeconds(20), () => "connections");
        Assert.That(h.Simulator.InjectBinary(BinanceRoute.Public, [0x1f, 0x8b, 0x08, 0x00]), Is.EqualTo(1));
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.Rejects(RejectReason.BinaryFrame) == 1, TimeSpan.FromSeconds(10), () => "not counted");
        Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero);
        Assert.That(h.RowsCommitted, Is.EqualTo(2_000));
    }
}
