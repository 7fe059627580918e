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

    /// <summary>The symbol ids of the bookTicker streams among <paramref name="streams"/>.</summary>
    IReadOnlyList<int> BookTickerSymbols(IEnumerable<string> streams);

    /// <summary>The connection carrying these bookTicker symbols dropped: what follows is after a hole.</summary>
    void Interrupted(IEnumerable<int> bookTickerSymbolIds);
}
