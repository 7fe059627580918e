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
    public static IReadOnlyList<ShardPlan> Plan(IEnumerable<string> symbols, IEnumerable<MarketChannel> channels, int shardsPerRoute, int maxStreamsPerConnection)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardsPerRoute, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStreamsPerConnection, 1);
        var orderedSymbols = symbols.Select(s => s.ToUpperInvariant()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var channelList = channels.Distinct().Order().ToList();
        var plans = new List<ShardPlan>();
        var index = 0;
        foreach (var route in channelList.Select(c => c.Route()).Distinct().Order())
        {
            var routeChannels = channelList.Where(c => c.Route() == route).ToList();
            var streamsPerSymbol = routeChannels.Count;
            var total = orderedSymbols.Count * streamsPerSymbol;
            if (total == 0)
            {
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

            foreach (var bucket in buckets)
            {
                plans.Add(new ShardPlan(index++, route, bucket));
            }
        }

        return plans;
    }
}
