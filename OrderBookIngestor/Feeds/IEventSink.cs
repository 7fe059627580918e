using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Feeds;

/// <summary>
/// Where a shard hands what it parsed: Feeds owns this shape and Pipeline's EventRouter implements it, so the
/// dependency runs the way the data does (Pipeline knows Feeds, Feeds does not know Pipeline).
/// </summary>
public interface IEventSink
{
    ValueTask RouteBookTickerAsync(in BookTickerEvent e, CancellationToken abort);

    ValueTask RouteTradeAsync(in TradeEvent e, CancellationToken abort);

    ValueTask RouteDepthAsync(in DepthEvent e, CancellationToken abort);

    ValueTask RouteMarkPriceAsync(in MarkPriceEvent e, CancellationToken abort);

    ValueTask RouteLiquidationAsync(in LiquidationEvent e, CancellationToken abort);

    /// <summary>The streams among <paramref name="streams"/> whose holes are dated by their connection (streams
    /// without contiguous ids: bookTicker, markPrice, forceOrder).</summary>
    IReadOnlyList<string> InterruptibleStreams(IEnumerable<string> streams);

    /// <summary>The connection carrying these streams dropped: what follows is after a hole.</summary>
    /// <param name="lastReceivedUnixMs">When the connection last received anything (0 if never): a hole with no
    /// event to date it from starts there, since anything sent after it may be lost.</param>
    void Interrupted(IReadOnlyList<string> streams, long lastReceivedUnixMs);

    /// <summary>A connection carrying these streams is subscribed again: holes dated by the connection close now.</summary>
    void Resubscribed(IReadOnlyList<string> streams);
}
