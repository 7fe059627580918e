namespace OrderBookIngestor.Exchange;

/// <summary>The stream kinds this recorder can subscribe to. Each maps to exactly one Binance route.</summary>
public enum MarketChannel
{
    BookTicker,
    AggTrade,

    /// <summary>Diff depth, 250 ms (<c>@depth</c>).</summary>
    Depth,

    /// <summary>Diff depth, 500 ms.</summary>
    Depth500ms,

    /// <summary>Diff depth, 100 ms.</summary>
    Depth100ms,

    /// <summary>Mark price, index price and funding, once a second (<c>@markPrice@1s</c>).</summary>
    MarkPrice,

    /// <summary>The same every 3 seconds (<c>@markPrice</c>): --channels markPrice@3s.</summary>
    MarkPrice3s,

    /// <summary>Liquidation orders (<c>@forceOrder</c>): at most the latest one per symbol per second, a sampled stream.</summary>
    ForceOrder,
}

/// <summary>
/// Binance's 2026 split of the USD-M WebSocket endpoint. A stream subscribed on the wrong route is
/// acknowledged and then stays silent, so the route is a property of the channel, never a user choice.
/// </summary>
public enum BinanceRoute
{
    Public,
    Market,
}

public static class MarketChannels
{
    public static readonly MarketChannel[] All =
        [MarketChannel.BookTicker, MarketChannel.AggTrade, MarketChannel.Depth, MarketChannel.Depth500ms, MarketChannel.Depth100ms,
         MarketChannel.MarkPrice, MarketChannel.MarkPrice3s, MarketChannel.ForceOrder];

    public static bool IsMarkPrice(this MarketChannel channel) => channel is MarketChannel.MarkPrice or MarketChannel.MarkPrice3s;

    /// <summary>How often the exchange pushes a mark price stream, in milliseconds.</summary>
    public static long MarkPricePeriodMs(this MarketChannel channel) => channel == MarketChannel.MarkPrice3s ? 3_000 : 1_000;

    public static bool IsDepth(this MarketChannel channel) => channel is MarketChannel.Depth or MarketChannel.Depth500ms or MarketChannel.Depth100ms;

    /// <summary>The channel's name as it appears after '@' in a stream name and in --channels.</summary>
    public static string StreamSuffix(this MarketChannel channel) => channel switch
    {
        MarketChannel.BookTicker => "bookTicker",
        MarketChannel.AggTrade => "aggTrade",
        MarketChannel.Depth => "depth",
        MarketChannel.Depth500ms => "depth@500ms",
        MarketChannel.Depth100ms => "depth@100ms",
        MarketChannel.MarkPrice => "markPrice@1s",
        MarketChannel.MarkPrice3s => "markPrice",
        MarketChannel.ForceOrder => "forceOrder",
        _ => throw new ArgumentOutOfRangeException(nameof(channel)),
    };

    public static BinanceRoute Route(this MarketChannel channel) => channel switch
    {
        MarketChannel.BookTicker or MarketChannel.Depth or MarketChannel.Depth500ms or MarketChannel.Depth100ms => BinanceRoute.Public,
        MarketChannel.AggTrade or MarketChannel.MarkPrice or MarketChannel.MarkPrice3s or MarketChannel.ForceOrder => BinanceRoute.Market,
        _ => throw new ArgumentOutOfRangeException(nameof(channel)),
    };

    public static string PathSegment(this BinanceRoute route) => route switch
    {
        BinanceRoute.Public => "public",
        BinanceRoute.Market => "market",
        _ => throw new ArgumentOutOfRangeException(nameof(route)),
    };

    /// <summary>Binance's all-market liquidation stream (on /market): one subscription instead of one per symbol,
    /// used when every symbol is recorded.</summary>
    public const string AllMarketForceOrder = "!forceOrder@arr";

    /// <summary>
    /// The streams that record <paramref name="channels"/> for <paramref name="symbols"/>: symbol × channel, except that
    /// forceOrder is the one all-market stream when <paramref name="allMarketForceOrder"/> (every symbol recorded).
    /// </summary>
    public static IEnumerable<string> StreamNames(IEnumerable<string> symbols, IReadOnlyCollection<MarketChannel> channels, bool allMarketForceOrder)
    {
        var perSymbol = channels.Where(c => !(allMarketForceOrder && c == MarketChannel.ForceOrder)).ToList();
        foreach (var symbol in symbols)
        {
            foreach (var c in perSymbol)
            {
                yield return StreamName(symbol, c);
            }
        }

        if (allMarketForceOrder && channels.Contains(MarketChannel.ForceOrder))
        {
            yield return AllMarketForceOrder;
        }
    }

    /// <summary>The --channels name of the open interest REST poll (not a stream).</summary>
    public const string OpenInterest = "openInterest";

    /// <summary>Whether a --channels name is a REST poll rather than a WebSocket stream.</summary>
    public static bool IsPolled(string text) => string.Equals(text.Trim(), OpenInterest, StringComparison.OrdinalIgnoreCase);

    /// <summary>The streams among --channels names (polls left out); names must have been validated.</summary>
    public static List<MarketChannel> Streams(IEnumerable<string> names)
        => [.. names.Where(n => !IsPolled(n)).Select(n => TryParse(n, out var c) ? c : throw new ArgumentException($"Channels: '{n}'", nameof(names))).Distinct()];

    public static bool TryParse(string text, out MarketChannel channel)
    {
        // --channels markPrice means the 1-second stream; markPrice@3s the exchange's plain @markPrice (every 3 s).
        if (string.Equals(text.Trim(), "markPrice", StringComparison.OrdinalIgnoreCase))
        {
            channel = MarketChannel.MarkPrice;
            return true;
        }

        if (string.Equals(text.Trim(), "markPrice@3s", StringComparison.OrdinalIgnoreCase))
        {
            channel = MarketChannel.MarkPrice3s;
            return true;
        }

        foreach (var candidate in All)
        {
            if (string.Equals(candidate.StreamSuffix(), text.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                channel = candidate;
                return true;
            }
        }

        channel = default;
        return false;
    }

    /// <summary>Stream names are the lowercase symbol, '@', then the event name in its own case.</summary>
    public static string StreamName(string symbol, MarketChannel channel)
        => string.Concat(symbol.ToLowerInvariant(), "@", channel.StreamSuffix());

    /// <summary>Splits "btcusdt@bookTicker" into its symbol (upper case) and channel. The all-market liquidation
    /// stream has the empty symbol: it carries every symbol's.</summary>
    public static bool TryParseStreamName(string stream, out string symbol, out MarketChannel channel)
    {
        symbol = "";
        channel = default;
        if (stream == AllMarketForceOrder)
        {
            channel = MarketChannel.ForceOrder;
            return true;
        }

        var at = stream.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0)
        {
            return false;
        }

        // The suffix must be a stream name exactly, case included: Binance does not know "btcusdt@bookticker", and
        // "btcusdt@markPrice" is the 3-second stream (the --channels aliases do not apply to stream names).
        var suffix = stream[(at + 1)..];
        var found = false;
        foreach (var candidate in All)
        {
            if (string.Equals(suffix, candidate.StreamSuffix(), StringComparison.Ordinal))
            {
                channel = candidate;
                found = true;
            }
        }

        if (!found)
        {
            return false;
        }

        symbol = stream[..at].ToUpperInvariant();
        return SymbolNames.IsValid(symbol);
    }
}
