using System.Collections.Concurrent;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Pipeline;

/// <summary>Per-symbol sequencing state, shared by every reader (a symbol can be on two connections during rotation).</summary>
public sealed class StreamStates
{
    // Concurrent: a reload adds symbols while readers look them up (reads are lock-free).
    private readonly ConcurrentDictionary<int, RecentIdSequence> _bookTickers = new();
    private readonly ConcurrentDictionary<int, TradeSequence> _trades = new();
    private readonly ConcurrentDictionary<int, IDepthBook> _books = new();
    private readonly ConcurrentDictionary<int, SecondSequence> _markPrices = new();
    private readonly ConcurrentDictionary<int, SparseStreamState> _liquidations = new();
    private readonly IDepthBooks? _depthBooks;

    /// <param name="lastStored">Per symbol id, what the database already holds (restart continuity).</param>
    /// <param name="depthChannel">The depth stream recorded, if any: each symbol then gets a book.</param>
    /// <param name="depthBooks">Makes the books (needed when depth is or may become recorded).</param>
    /// <param name="markPriceChannel">The mark price stream recorded (or that would be): markPrice@1s unless markPrice@3s.</param>
    public StreamStates(SymbolTable symbols, IReadOnlyDictionary<int, LastStored> lastStored, MarketChannel? depthChannel = null, IDepthBooks? depthBooks = null,
        MarketChannel markPriceChannel = MarketChannel.MarkPrice)
    {
        MarkPriceChannel = markPriceChannel;
        if (depthChannel is not null && depthBooks is null)
        {
            throw new ArgumentNullException(nameof(depthBooks), "recording depth needs something that makes the books");
        }

        DepthChannel = depthChannel;
        _depthBooks = depthBooks;
        foreach (var name in symbols.Symbols)
        {
            symbols.TryGetId(name, out var id);
            Add(name, id, lastStored.GetValueOrDefault(id));
        }
    }

    /// <summary>Creates the state of a symbol (at start, or when a reload adds it). Existing state is kept.</summary>
    public void Add(string name, int id, LastStored last)
    {
        _bookTickers.TryAdd(id, new RecentIdSequence(id, MarketChannels.StreamName(name, MarketChannel.BookTicker), last.BookTickerTimeMs));
        _trades.TryAdd(id, new TradeSequence(id, MarketChannels.StreamName(name, MarketChannel.AggTrade), last.AggTradeId, last.TradeTimeMs));
        _markPrices.TryAdd(id, new SecondSequence(id, MarketChannels.StreamName(name, MarkPriceChannel), last.MarkPriceTimeMs, MarkPriceChannel.MarkPricePeriodMs()));
        _liquidations.TryAdd(id, new SparseStreamState(id, MarketChannels.StreamName(name, MarketChannel.ForceOrder)));
        if (DepthChannel is { } depth && _depthBooks is not null && !_books.ContainsKey(id))
        {
            _books.TryAdd(id, _depthBooks.Create(id, name, MarketChannels.StreamName(name, depth), last.DepthUpdateId, last.DepthTimeMs));
        }
    }

    public bool Has(int symbolId) => _trades.ContainsKey(symbolId);

    /// <summary>markPrice@1s or the 3-second markPrice: fixed at start (switching needs a restart).</summary>
    public MarketChannel MarkPriceChannel { get; }

    /// <summary>The depth speed recorded. Set at start, or once by the first reload that adds depth.</summary>
    public MarketChannel? DepthChannel { get; set; }

    public bool TryGetBook(int symbolId, out IDepthBook book) => _books.TryGetValue(symbolId, out book!);

    public bool TryGetBookTicker(int symbolId, out RecentIdSequence sequence) => _bookTickers.TryGetValue(symbolId, out sequence!);

    public bool TryGetTrades(int symbolId, out TradeSequence sequence) => _trades.TryGetValue(symbolId, out sequence!);

    public bool TryGetMarkPrice(int symbolId, out SecondSequence sequence) => _markPrices.TryGetValue(symbolId, out sequence!);

    public bool TryGetLiquidations(int symbolId, out SparseStreamState stream) => _liquidations.TryGetValue(symbolId, out stream!);

    public IReadOnlyList<IDepthBook> Books => [.. _books.Values];

    /// <summary>Asks for a REST snapshot of <paramref name="book"/>.</summary>
    public void RequestSnapshot(IDepthBook book) => _depthBooks?.RequestSnapshot(book);

    public TradeSequence Trades(int symbolId) => _trades[symbolId];

    /// <summary>Every subscribed stream with its route and activity, for the silence monitor.</summary>
    public IReadOnlyList<(string Stream, BinanceRoute Route, StreamActivity Activity)> Activities(IReadOnlyCollection<MarketChannel> channels, IReadOnlySet<int>? symbolIds = null)
    {
        var list = new List<(string, BinanceRoute, StreamActivity)>();
        if (channels.Contains(MarketChannel.BookTicker))
        {
            list.AddRange(_bookTickers.Values.Where(s => symbolIds?.Contains(s.SymbolId) ?? true).Select(s => (s.Stream, BinanceRoute.Public, s.Activity)));
        }

        if (channels.Contains(MarketChannel.AggTrade))
        {
            list.AddRange(_trades.Values.Where(s => symbolIds?.Contains(s.SymbolId) ?? true).Select(s => (s.Stream, BinanceRoute.Market, s.Activity)));
        }

        if (channels.Any(c => c.IsMarkPrice()))
        {
            list.AddRange(_markPrices.Values.Where(s => symbolIds?.Contains(s.SymbolId) ?? true).Select(s => (s.Stream, BinanceRoute.Market, s.Activity)));
        }

        // forceOrder is left out on purpose: a quiet liquidation stream is a calm market, not a silent stream.
        if (channels.Any(c => c.IsDepth()))
        {
            list.AddRange(_books.Values.Where(s => symbolIds?.Contains(s.SymbolId) ?? true).Select(s => (s.Stream, BinanceRoute.Public, s.Activity)));
        }
        return list;
    }
}

/// <summary>The newest data stored for a symbol before this start. Zero where the table has none.</summary>
public readonly record struct LastStored(long BookTickerTimeMs, long AggTradeId, long TradeTimeMs, long DepthUpdateId = 0, long DepthTimeMs = 0,
    long MarkPriceTimeMs = 0);
