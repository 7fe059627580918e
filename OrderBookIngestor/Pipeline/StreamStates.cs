using OrderBookIngestor.Books;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Pipeline;

/// <summary>Per-symbol sequencing state, shared by every reader (a symbol can be on two connections during rotation).</summary>
public sealed class StreamStates
{
    private readonly Dictionary<int, RecentIdSequence> _bookTickers = [];
    private readonly Dictionary<int, TradeSequence> _trades = [];
    private readonly Dictionary<int, DepthSequencer> _books = [];

    /// <param name="lastStored">Per symbol id, what the database already holds (restart continuity).</param>
    /// <param name="depthChannel">The depth stream recorded, if any: each symbol then gets a book.</param>
    public StreamStates(SymbolTable symbols, IReadOnlyDictionary<int, LastStored> lastStored, MarketChannel? depthChannel = null)
    {
        DepthChannel = depthChannel;
        foreach (var name in symbols.Symbols)
        {
            symbols.TryGetId(name, out var id);
            var last = lastStored.GetValueOrDefault(id);
            _bookTickers[id] = new RecentIdSequence(id, MarketChannels.StreamName(name, MarketChannel.BookTicker), last.BookTickerTimeMs);
            _trades[id] = new TradeSequence(id, MarketChannels.StreamName(name, MarketChannel.AggTrade), last.AggTradeId, last.TradeTimeMs);
            if (depthChannel is { } depth)
            {
                _books[id] = new DepthSequencer(id, name, MarketChannels.StreamName(name, depth), last.DepthUpdateId, last.DepthTimeMs);
            }
        }
    }

    public MarketChannel? DepthChannel { get; }

    public DepthSequencer Book(int symbolId) => _books[symbolId];

    public IReadOnlyList<DepthSequencer> Books => [.. _books.Values];

    public RecentIdSequence BookTicker(int symbolId) => _bookTickers[symbolId];

    public TradeSequence Trades(int symbolId) => _trades[symbolId];

    public IEnumerable<RecentIdSequence> AllBookTickers => _bookTickers.Values;

    /// <summary>Every subscribed stream with its route and activity, for the silence monitor.</summary>
    public IReadOnlyList<(string Stream, BinanceRoute Route, StreamActivity Activity)> Activities(IReadOnlyCollection<MarketChannel> channels)
    {
        var list = new List<(string, BinanceRoute, StreamActivity)>();
        if (channels.Contains(MarketChannel.BookTicker))
        {
            list.AddRange(_bookTickers.Values.Select(s => (s.Stream, BinanceRoute.Public, s.Activity)));
        }

        if (channels.Contains(MarketChannel.AggTrade))
        {
            list.AddRange(_trades.Values.Select(s => (s.Stream, BinanceRoute.Market, s.Activity)));
        }

        list.AddRange(_books.Values.Select(s => (s.Stream, BinanceRoute.Public, s.Activity)));
        return list;
    }
}

/// <summary>The newest data stored for a symbol before this start. Zero where the table has none.</summary>
public readonly record struct LastStored(long BookTickerTimeMs, long AggTradeId, long TradeTimeMs, long DepthUpdateId = 0, long DepthTimeMs = 0);
