using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;

namespace OrderBookIngestor.Tests.Unit;

public sealed class ShardPlannerTests
{
    private static readonly string[] FiftySymbols = Enumerable.Range(0, 50).Select(i => $"S{i:D3}USDT").ToArray();

    [Test]
    public void ShardPlanner_NeverMixesRoutesOnAConnection()
    {
        var plans = ShardPlanner.Plan(FiftySymbols, MarketChannels.All, 3, 200);
        foreach (var plan in plans)
        {
            foreach (var stream in plan.Streams)
            {
                Assert.That(MarketChannels.TryParseStreamName(stream, out _, out var channel), Is.True, stream);
                Assert.That(channel.Route(), Is.EqualTo(plan.Route), stream);
            }
        }

        Assert.That(plans.Count(p => p.Route == BinanceRoute.Public), Is.EqualTo(3));
        Assert.That(plans.Count(p => p.Route == BinanceRoute.Market), Is.EqualTo(3));
    }

    [Test]
    public void ShardPlanner_CoversEveryStreamExactlyOnce()
    {
        var plans = ShardPlanner.Plan(FiftySymbols, [MarketChannel.BookTicker, MarketChannel.AggTrade, MarketChannel.Depth100ms], 4, 200);
        var all = plans.SelectMany(p => p.Streams).ToList();
        Assert.That(all, Is.Unique);
        Assert.That(all, Has.Count.EqualTo(150));
        Assert.That(all, Does.Contain("s007usdt@depth@100ms"));
        Assert.That(all, Does.Contain("s000usdt@bookTicker").And.Contain("s049usdt@aggTrade"));
    }

    [Test]
    public void ShardPlanner_OpensMoreConnectionsThanAskedWhenTheStreamLimitDemands()
    {
        var plans = ShardPlanner.Plan(FiftySymbols, [MarketChannel.BookTicker], 1, 20);
        Assert.That(plans, Has.Count.EqualTo(3));
        Assert.That(plans.Max(p => p.Streams.Count), Is.LessThanOrEqualTo(20));
    }

    [Test]
    public void ShardPlanner_NeverPlansAnEmptyConnection()
    {
        var plans = ShardPlanner.Plan(["BTCUSDT", "ETHUSDT"], MarketChannels.All, 8, 200);
        Assert.That(plans, Has.Count.EqualTo(4));
        Assert.That(plans.All(p => p.Streams.Count > 0), Is.True);
    }

    [Test]
    public void ShardPlanner_IsDeterministicWhateverTheInputOrder()
    {
        var a = ShardPlanner.Plan(FiftySymbols, MarketChannels.All, 3, 200);
        var b = ShardPlanner.Plan(FiftySymbols.Reverse().Select(s => s.ToLowerInvariant()), MarketChannels.All.Reverse(), 3, 200);
        Assert.That(b.Select(p => string.Join(",", p.Streams)), Is.EqualTo(a.Select(p => string.Join(",", p.Streams))));
    }

    [Test]
    public void StreamNames_FollowBinanceCase()
    {
        Assert.That(MarketChannels.StreamName("BTCUSDT", MarketChannel.BookTicker), Is.EqualTo("btcusdt@bookTicker"));
        Assert.That(MarketChannels.StreamName("BTCUSDT", MarketChannel.AggTrade), Is.EqualTo("btcusdt@aggTrade"));
        Assert.That(MarketChannels.TryParseStreamName("btcusdt@bookticker", out _, out _), Is.False);
    }

    [Test]
    public void SubscribeMessage_IsTheDocumentedShape()
    {
        var text = System.Text.Encoding.ASCII.GetString(BinanceProtocol.Subscribe(["btcusdt@aggTrade", "ethusdt@aggTrade"], 3));
        Assert.That(text, Is.EqualTo("""{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","ethusdt@aggTrade"],"id":3}"""));
        Assert.That(BinanceProtocol.CombinedStreamUri("wss://fstream.binance.com/", BinanceRoute.Public).ToString(), Is.EqualTo("wss://fstream.binance.com/public/stream"));
        Assert.That(BinanceProtocol.CombinedStreamUri("wss://fstream.binance.com", BinanceRoute.Market).ToString(), Is.EqualTo("wss://fstream.binance.com/market/stream"));
    }

    [Test]
    public void Reload_PutsANewStreamOnTheLeastLoadedShardOfItsRoute()
    {
        var live = new[]
        {
            new ShardPlanner.LiveShard(0, BinanceRoute.Public, ["btcusdt@bookTicker", "ethusdt@bookTicker"]),
            new ShardPlanner.LiveShard(1, BinanceRoute.Public, ["bnbusdt@bookTicker"]),
            new ShardPlanner.LiveShard(2, BinanceRoute.Market, []),
        };
        var desired = new HashSet<string>(StringComparer.Ordinal) { "btcusdt@bookTicker", "ethusdt@bookTicker", "bnbusdt@bookTicker", "solusdt@bookTicker" };
        var placement = ShardPlanner.Place(live, desired, maxStreamsPerConnection: 10);
        Assert.That(placement.Add.Keys, Is.EqualTo(new[] { 1 }), "shard 1 has one stream, shard 0 two; the market shard is the wrong route");
        Assert.That(placement.Add[1], Is.EqualTo(new[] { "solusdt@bookTicker" }));
        Assert.That(placement.NewShards, Is.Empty);
        Assert.That((placement.Added, placement.Removed), Is.EqualTo((1, 0)));
    }

    [Test]
    public void Reload_OpensAConnectionOnlyWhenEveryShardOfTheRouteIsFull_AndRemovalsMakeRoom()
    {
        var live = new[] { new ShardPlanner.LiveShard(0, BinanceRoute.Public, ["btcusdt@bookTicker", "ethusdt@bookTicker"]) };
        var full = ShardPlanner.Place(live, new HashSet<string>(StringComparer.Ordinal) { "btcusdt@bookTicker", "ethusdt@bookTicker", "solusdt@bookTicker", "xrpusdt@bookTicker", "adausdt@bookTicker" }, 2);
        Assert.That(full.Add, Is.Empty);
        Assert.That(full.NewShards.Select(n => n.Streams.Count), Is.EqualTo(new[] { 2, 1 }), "three new streams, two per connection");
        Assert.That(full.NewShards.All(n => n.Route == BinanceRoute.Public));

        var swap = ShardPlanner.Place(live, new HashSet<string>(StringComparer.Ordinal) { "btcusdt@bookTicker", "solusdt@bookTicker" }, 2);
        Assert.That(swap.Remove[0], Is.EqualTo(new[] { "ethusdt@bookTicker" }));
        Assert.That(swap.Add[0], Is.EqualTo(new[] { "solusdt@bookTicker" }), "the removed stream's room is reused");
        Assert.That(swap.NewShards, Is.Empty);
    }

    [Test]
    public void ShardPlanner_WithEverySymbol_TakesLiquidationsFromTheOneAllMarketStream()
    {
        var plans = ShardPlanner.Plan(FiftySymbols, [MarketChannel.AggTrade, MarketChannel.ForceOrder, MarketChannel.BookTicker], 2, 200, allMarketForceOrder: true);
        var market = plans.Where(p => p.Route == BinanceRoute.Market).SelectMany(p => p.Streams).ToList();
        Assert.That(market.Count(s => s.EndsWith("@forceOrder", StringComparison.Ordinal)), Is.Zero);
        Assert.That(market.Count(s => s == MarketChannels.AllMarketForceOrder), Is.EqualTo(1));
        Assert.That(market.Count(s => s.EndsWith("@aggTrade", StringComparison.Ordinal)), Is.EqualTo(50));

        // Alone on its route, it is a connection of its own.
        var alone = ShardPlanner.Plan(FiftySymbols, [MarketChannel.BookTicker, MarketChannel.ForceOrder], 2, 200, allMarketForceOrder: true);
        Assert.That(alone.Where(p => p.Route == BinanceRoute.Market).Select(p => string.Join(",", p.Streams)), Is.EqualTo(new[] { MarketChannels.AllMarketForceOrder }));
        Assert.That(MarketChannels.StreamNames(["BTCUSDT"], [MarketChannel.BookTicker, MarketChannel.ForceOrder], true), Is.EqualTo(new[] { "btcusdt@bookTicker", "!forceOrder@arr" }));
        Assert.That(MarketChannels.TryParseStreamName(MarketChannels.AllMarketForceOrder, out var symbol, out var channel) && symbol == "" && channel == MarketChannel.ForceOrder, Is.True);
    }
}
