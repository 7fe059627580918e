using OrderBookIngestor.Exchange;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;
using OrderBookIngestor.Tests.Unit;

namespace OrderBookIngestor.Tests.Integration;

public sealed class FuzzThroughReaderTests : DatabaseTest
{
    [Test]
    public async Task MutatedAndOversizeFrames_OnTheWire_AreCountedNeverCrashAndStoreNoInvalidRow()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 4_000, Seed = 61, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim, o => o.MaxFrameBytes = 64 * 1024);
        await Harness.WaitUntilAsync(() => h.Simulator.Connections.Count == 2, TimeSpan.FromSeconds(20), () => "connections");
        var random = new Random(7);
        var seeds = new[] { Frames.BookTickerCombined.Replace("BNBUSDT", "BTCUSDT", StringComparison.Ordinal), Frames.AggTradeCombined, Frames.DepthUpdate };
        for (var i = 0; i < 3_000; i++)
        {
            // Any bytes, invalid UTF-8 included: the parser rejects what it cannot read, and the connection stays.
            var frame = ParserFuzzTests.Mutate(random, Frames.Utf8(seeds[random.Next(seeds.Length)]));
            h.Simulator.Inject(i % 2 == 0 ? BinanceRoute.Public : BinanceRoute.Market, frame);
        }

        h.Simulator.Inject(BinanceRoute.Public, Frames.Utf8("{\"e\":\"" + new string('x', 200_000) + "\"}"));
        // Mutated frames that still parse are stored as received, and a wild id in one can make dedupe drop a
        // later genuine frame: exact accounting is the other tests' business. Here: no crash, no invalid row.
        await h.Simulator.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.Rejects(RejectReason.Oversize) == 1, TimeSpan.FromSeconds(10),
            () => "oversize frame not counted: " + string.Join(",", RejectReasons.All.Select(r => $"{r}={h.Metrics.Rejects(r)}")) + $" reconnects={h.Metrics.Shards.Sum(s => s.Reconnects)}");

        Assert.That(h.Metrics.TotalRejects, Is.GreaterThan(1_000), "most mutations are rejected, by reason");
        Assert.That(h.Metrics.Rejects(RejectReason.Unsubscribed), Is.GreaterThan(0), "valid depth frames for an unrecorded stream are counted, not a crash");
        Assert.That(h.Metrics.Shards.All(s => s.State == Observability.ConnectionState.Streaming), Is.True, "bad input never costs the connection");
        Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero);
        Assert.That(await Db.ScalarAsync<long>("""
            SELECT (SELECT count(*) FROM marketdata.book_ticker WHERE NOT (best_bid > 0 AND best_ask > 0 AND bid_qty >= 0 AND ask_qty >= 0
                        AND best_bid < 'Infinity' AND best_ask < 'Infinity' AND bid_qty < 'Infinity' AND ask_qty < 'Infinity'))
                 + (SELECT count(*) FROM marketdata.trades WHERE NOT (price > 0 AND qty >= 0 AND price < 'Infinity' AND qty < 'Infinity' AND last_trade_id >= first_trade_id))
            """), Is.Zero, "no stored row holds an invalid value");
    }
}
