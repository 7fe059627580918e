using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Feeds;

/// <summary>
/// Spreads symbol×channel streams over connections. Streams never mix routes on one connection (a stream
/// on the wrong route is acknowledged and then silent). Each route gets the requested number of shards,
/// more if the per-connection stream limit demands it, and a symbol's streams land on the same shard so
/// that one reconnect disturbs as few symbols as possible.
/// </summary>
public static class ShardPlanner
{
    /// <param name="allMarketForceOrder">Every symbol is recorded: forceOrder is the one all-market stream
    /// (<see cref="MarketChannels.AllMarketForceOrder"/>), on the least loaded /market shard, not one per symbol.</param>
    public static IReadOnlyList<ShardPlan> Plan(IEnumerable<string> symbols, IEnumerable<MarketChannel> channels, int shardsPerRoute, int maxStreamsPerConnection,
        bool allMarketForceOrder = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardsPerRoute, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStreamsPerConnection, 1);
        var orderedSymbols = symbols.Select(s => s.ToUpperInvariant()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var channelList = channels.Distinct().Order().ToList();
        var plans = new List<ShardPlan>();
        var index = 0;
        foreach (var route in channelList.Select(c => c.Route()).Distinct().Order())
        {
            var allMarket = allMarketForceOrder && route == BinanceRoute.Market && channelList.Contains(MarketChannel.ForceOrder);
            var routeChannels = channelList.Where(c => c.Route() == route && !(allMarket && c == MarketChannel.ForceOrder)).ToList();
            var streamsPerSymbol = routeChannels.Count;
            var total = orderedSymbols.Count * streamsPerSymbol;
            if (total == 0)
            {
                if (allMarket)
                {
                    plans.Add(new ShardPlan(index++, route, [MarketChannels.AllMarketForceOrder]));
                }

                continue;
            }

            // Whole symbols per shard; a shard must still hold at least one symbol's streams.
            var symbolsPerShardLimit = Math.Max(1, maxStreamsPerConnection / streamsPerSymbol);
            var shardCount = Math.Max(shardsPerRoute, (orderedSymbols.Count + symbolsPerShardLimit - 1) / symbolsPerShardLimit);
            shardCount = Math.Min(shardCount, orderedSymbols.Count);
            var buckets = Enumerable.Range(0, shardCount).Select(_ => new List<string>()).ToList();
            for (var i = 0; i < orderedSymbols.Count; i++)
            {
                // Round robin so that alphabetically adjacent (often similarly busy) symbols spread out.
                var bucket = buckets[i % shardCount];
                foreach (var channel in routeChannels)
                {
                    bucket.Add(MarketChannels.StreamName(orderedSymbols[i], channel));
                }
            }

            if (allMarket)
            {
                buckets.MinBy(b => b.Count)!.Add(MarketChannels.AllMarketForceOrder);
            }

            foreach (var bucket in buckets)
            {
                plans.Add(new ShardPlan(index++, route, bucket));
            }
        }

        return plans;
    }

    /// <summary>One live shard as a reload sees it.</summary>
    public sealed record LiveShard(int Index, BinanceRoute Route, IReadOnlyList<string> Streams);

    /// <summary>What a reload changes: per live shard (by index) the streams to unsubscribe and to subscribe,
    /// and the streams of new connections, per route.</summary>
    public sealed record Placement(
        IReadOnlyDictionary<int, List<string>> Remove,
        IReadOnlyDictionary<int, List<string>> Add,
        IReadOnlyList<(BinanceRoute Route, List<string> Streams)> NewShards)
    {
        public int Added => Add.Values.Sum(a => a.Count) + NewShards.Sum(n => n.Streams.Count);

        public int Removed => Remove.Values.Sum(r => r.Count);
    }

    /// <summary>
    /// Places a reload's streams: what is no longer <paramref name="desired"/> is unsubscribed; each new stream
    /// goes to the least loaded live shard of its route with room, and only when every shard of the route is
    /// full does it open a new connection (filled up to <paramref name="maxStreamsPerConnection"/>).
    /// </summary>
    public static Placement Place(IReadOnlyList<LiveShard> live, IReadOnlySet<string> desired, int maxStreamsPerConnection)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStreamsPerConnection, 1);
        var remove = new Dictionary<int, List<string>>();
        var add = live.ToDictionary(s => s.Index, _ => new List<string>());
        var load = new Dictionary<int, int>();
        var have = new HashSet<string>(StringComparer.Ordinal);
        foreach (var shard in live)
        {
            var gone = shard.Streams.Where(s => !desired.Contains(s)).ToList();
            if (gone.Count > 0)
            {
                remove[shard.Index] = gone;
            }

            load[shard.Index] = shard.Streams.Count - gone.Count;
            have.UnionWith(shard.Streams.Except(gone));
        }

        var newShards = new List<(BinanceRoute Route, List<string> Streams)>();
        foreach (var stream in desired.Where(s => !have.Contains(s)).Order(StringComparer.Ordinal))
        {
            if (!MarketChannels.TryParseStreamName(stream, out _, out var channel))
            {
                continue;
            }

            var route = channel.Route();
            var target = live.Where(s => s.Route == route && load[s.Index] < maxStreamsPerConnection).OrderBy(s => load[s.Index]).FirstOrDefault();
            if (target is not null)
            {
                add[target.Index].Add(stream);
                load[target.Index]++;
                continue;
            }

            var open = newShards.FirstOrDefault(p => p.Route == route && p.Streams.Count < maxStreamsPerConnection);
            if (open.Streams is null)
            {
                open = (route, new List<string>());
                newShards.Add(open);
            }

            open.Streams.Add(stream);
        }

        return new Placement(remove, add.Where(kv => kv.Value.Count > 0).ToDictionary(), newShards);
    }
}
