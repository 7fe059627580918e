using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Feeds;

/// <summary>One WebSocket connection's worth of streams, all on the same route.</summary>
public sealed record ShardPlan(int Index, BinanceRoute Route, IReadOnlyList<string> Streams)
{
    public string Name => $"{Route.PathSegment()}-{Index}";
}
