using System.Globalization;
using System.Text.Unicode;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// The fake exchange's event source. Every stream (symbol × channel) has its own seeded random walk, so
/// the n-th event of a stream has the same ids, prices and quantities in every run with the same seed,
/// whatever else is subscribed. Only the event times come from the clock.
/// </summary>
public sealed class SimulatedMarket
{
    private readonly Dictionary<string, StreamState> _streams = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly int _seed;

    private readonly int _tradeHistory;
    private readonly Dictionary<string, SimBook> _books = new(StringComparer.Ordinal);

    public SimulatedMarket(IReadOnlyList<SimSymbol> symbols, int seed, TimeProvider time, int tradeHistory = 200_000, SnapshotJoin snapshotJoin = SnapshotJoin.Cycle,
        bool recordBooks = false)
    {
        _tradeHistory = tradeHistory;
        _time = time;
        _seed = seed;
        Symbols = symbols;
        foreach (var s in symbols)
        {
            _books[s.Symbol] = new SimBook(s, new Random(Mix(seed, s.Index, 1_000)), snapshotJoin, recordBooks);
            foreach (var channel in MarketChannels.All)
            {
                var name = MarketChannels.StreamName(s.Symbol, channel);
                _streams[name] = new StreamState(name, s, channel, new Random(Mix(seed, s.Index, (int)channel)), _tradeHistory);
            }
        }
    }

    public IReadOnlyList<SimSymbol> Symbols { get; }

    /// <summary>A fixed mix of seed parts. HashCode.Combine is randomised per process and would break "same seed, same data".</summary>
    internal static int Mix(int a, int b, int c)
    {
        unchecked
        {
            var h = (uint)2166136261;
            foreach (var part in (ReadOnlySpan<int>)[a, b, c])
            {
                h = (h ^ (uint)part) * 16777619;
            }

            return (int)(h & 0x7FFFFFFF);
        }
    }

    public bool IsKnownStream(string stream) => _streams.ContainsKey(stream) || stream == MarketChannels.AllMarketForceOrder;

    /// <summary>The canonical streams a subscribed name delivers: itself, or for the all-market liquidation stream every
    /// symbol's forceOrder stream.</summary>
    public IEnumerable<string> Expand(string name)
        => name == MarketChannels.AllMarketForceOrder
            ? Symbols.Select(s => MarketChannels.StreamName(s.Symbol, MarketChannel.ForceOrder))
            : [name];

    /// <summary>Every stream that generates events: one diff chain per symbol stands for all three depth speeds.</summary>
    public IReadOnlyCollection<string> AllStreams => [.. _streams.Keys.Select(Canonical).Distinct(StringComparer.Ordinal)];

    /// <summary>The name events are generated and counted under: depth speeds collapse to "&lt;symbol&gt;@depth".</summary>
    public string Canonical(string stream)
        => _streams.TryGetValue(stream, out var s) && s.Channel.IsDepth() ? MarketChannels.StreamName(s.Symbol, MarketChannel.Depth) : stream;

    public SimBook? Book(string symbol) => _books.GetValueOrDefault(symbol);

    public bool TryGetChannel(string stream, out MarketChannel channel)
    {
        var found = _streams.TryGetValue(stream, out var state);
        channel = found ? state!.Channel : default;
        return found;
    }

    /// <summary>aggTrades of <paramref name="symbol"/> with id ≥ fromId (or the latest when null), oldest first, as REST returns them.</summary>
    public IReadOnlyList<SimEvent> AggTrades(string symbol, long? fromId, int limit)
    {
        if (!_streams.TryGetValue(MarketChannels.StreamName(symbol, MarketChannel.AggTrade), out var s))
        {
            return [];
        }

        return s.History(fromId, limit);
    }

    /// <summary>Streams the exchange pushes on its own one-second clock, not per market event.</summary>
    public static bool IsPerSecond(MarketChannel channel) => channel.IsMarkPrice() || channel == MarketChannel.ForceOrder;

    /// <summary>The symbol's place in the universe (its seed part); the REST endpoints check the symbol first.</summary>
    private int IndexOf(string symbol) => Symbols.First(x => x.Symbol == symbol).Index;

    /// <summary>
    /// The per-second event of a markPrice or forceOrder stream for the second starting at <paramref name="secondMs"/>,
    /// or null when there is none (a forceOrder stream has a liquidation in about one second in five). The same
    /// seed gives the same sequence of answers.
    /// </summary>
    public SimEvent? Tick(string stream, long secondMs)
    {
        var s = _streams[stream];
        return s.Channel switch
        {
            MarketChannel.MarkPrice => s.NextMarkPrice(secondMs),
            MarketChannel.MarkPrice3s => secondMs % 3_000 == 0 ? s.NextMarkPrice(secondMs) : null,
            MarketChannel.ForceOrder => s.TakeLiquidationChance() ? s.NextLiquidation(secondMs + 1 + (secondMs / 1000 % 997)) : null,
            _ => throw new ArgumentException($"{stream} is not a per-second stream", nameof(stream)),
        };
    }

    /// <summary>GET /fapi/v1/openInterest's value for a symbol at a time: a seeded walk by minute, 3 decimals.</summary>
    public decimal OpenInterestAt(string symbol, long timeMs)
    {
        var minute = (int)(timeMs / 60_000 % int.MaxValue);
        return 10_000m + (Mix(_seed, IndexOf(symbol), minute) % 5_000_000) / 1000m;
    }

    /// <summary>GET /fapi/v1/markPriceKlines' 1-minute bar opening at <paramref name="openMs"/>: a seeded walk by minute
    /// around the symbol's start price (a pure function of seed, symbol and minute, so any past window has bars).</summary>
    public (decimal Open, decimal High, decimal Low, decimal Close) MarkPriceBar(string symbol, long openMs)
    {
        var s = Symbols.First(x => x.Symbol == symbol);
        var minute = (int)(openMs / 60_000 % int.MaxValue);
        long Ticks(int salt) => Math.Max(10, s.StartPriceTicks + (Mix(_seed, s.Index * 4 + salt, minute) % 401) - 200);
        long open = Ticks(0), close = Ticks(1), high = Math.Max(Math.Max(open, close), Ticks(2)), low = Math.Min(Math.Min(open, close), Ticks(3));
        return (SymbolUniverse.ToDecimal(open, s.PriceDecimals), SymbolUniverse.ToDecimal(high, s.PriceDecimals),
            SymbolUniverse.ToDecimal(low, s.PriceDecimals), SymbolUniverse.ToDecimal(close, s.PriceDecimals));
    }

    /// <summary>GET /fapi/v1/fundingRate's rate settled at <paramref name="fundingTimeMs"/> (every 8 h from 00:00 UTC).</summary>
    public decimal FundingRateAt(string symbol, long fundingTimeMs)
    {
        return ((Mix(_seed, IndexOf(symbol), (int)(fundingTimeMs / 28_800_000 % int.MaxValue)) % 751) - 375) / 1_000_000m;
    }

    /// <summary>The next event of <paramref name="stream"/>. Not thread-safe: one generator thread calls it.</summary>
    public SimEvent Next(string stream)
    {
        var s = _streams[stream];
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        return s.Channel switch
        {
            MarketChannel.BookTicker => s.NextBookTicker(now),
            MarketChannel.AggTrade => s.NextAggTrade(now),
            MarketChannel.MarkPrice or MarketChannel.MarkPrice3s => s.NextMarkPrice(now),
            MarketChannel.ForceOrder => s.NextLiquidation(now),
            // Every depth speed of a symbol is one diff chain here, delivered under the speed each client subscribed.
            _ => _books[s.Symbol].Next(MarketChannels.StreamName(s.Symbol, MarketChannel.Depth), MarketChannel.Depth, now),
        };
    }

    private sealed class StreamState
    {
        private readonly string _name;
        private readonly SimSymbol _symbol;
        private readonly Random _random;
        private long _midTicks;
        private long _id;
        private long _tradeId;

        private readonly List<SimEvent> _history = [];
        private readonly int _historyLimit;

        public StreamState(string name, SimSymbol symbol, MarketChannel channel, Random random, int historyLimit)
        {
            _historyLimit = historyLimit;
            _name = name;
            _symbol = symbol;
            Channel = channel;
            _random = random;
            _midTicks = symbol.StartPriceTicks;
            _id = channel == MarketChannel.BookTicker ? 1_000_000_000L + random.Next(1_000_000) : 5_000_000L + random.Next(1_000_000);
            _tradeId = 80_000_000L + random.Next(1_000_000);
        }

        public MarketChannel Channel { get; }

        public string Symbol => _symbol.Symbol;

        public SimEvent NextBookTicker(long nowMs)
        {
            _id += 1 + _random.Next(5);
            _midTicks = Math.Max(10, _midTicks + _random.Next(-2, 3));
            var bid = _midTicks;
            var ask = _midTicks + 1 + _random.Next(3);
            long bidQty = 1 + _random.Next(100_000), askQty = 1 + _random.Next(100_000);
            var transactionMs = nowMs - _random.Next(3);
            int pd = _symbol.PriceDecimals, qd = _symbol.QtyDecimals;
            Span<byte> buffer = stackalloc byte[512];
            Utf8.TryWrite(buffer, CultureInfo.InvariantCulture,
                $"{{\"e\":\"bookTicker\",\"u\":{_id},\"E\":{nowMs},\"T\":{transactionMs},\"s\":\"{_symbol.Symbol}\",\"b\":\"{new SymbolUniverse.FixedText(bid, pd)}\",\"B\":\"{new SymbolUniverse.FixedText(bidQty, qd)}\",\"a\":\"{new SymbolUniverse.FixedText(ask, pd)}\",\"A\":\"{new SymbolUniverse.FixedText(askQty, qd)}\"}}",
                out var written);
            var data = buffer[..written].ToArray();
            return new SimEvent(_name, _symbol.Symbol, Channel, _id, nowMs, transactionMs,
                SymbolUniverse.ToDecimal(bid, pd), SymbolUniverse.ToDecimal(bidQty, qd), SymbolUniverse.ToDecimal(ask, pd), SymbolUniverse.ToDecimal(askQty, qd),
                0, 0, false, data);
        }

        public SimEvent NextAggTrade(long nowMs)
        {
            _id++;
            _midTicks = Math.Max(10, _midTicks + _random.Next(-2, 3));
            var first = _tradeId + 1;
            var last = first + _random.Next(4);
            _tradeId = last;
            var qty = 1 + _random.Next(50_000);
            var maker = _random.Next(2) == 1;
            var tradeMs = nowMs - _random.Next(3);
            int pd = _symbol.PriceDecimals, qd = _symbol.QtyDecimals;
            // "nq" (quantity without RPI orders) is sent like the live exchange does; the daemon ignores it.
            Span<byte> buffer = stackalloc byte[512];
            Utf8.TryWrite(buffer, CultureInfo.InvariantCulture,
                $"{{\"e\":\"aggTrade\",\"E\":{nowMs},\"s\":\"{_symbol.Symbol}\",\"a\":{_id},\"p\":\"{new SymbolUniverse.FixedText(_midTicks, pd)}\",\"q\":\"{new SymbolUniverse.FixedText(qty, qd)}\",\"nq\":\"{new SymbolUniverse.FixedText(qty, qd)}\",\"f\":{first},\"l\":{last},\"T\":{tradeMs},\"m\":{(maker ? "true" : "false")}}}",
                out var written);
            var data = buffer[..written].ToArray();
            var e = new SimEvent(_name, _symbol.Symbol, Channel, _id, nowMs, tradeMs,
                SymbolUniverse.ToDecimal(_midTicks, pd), SymbolUniverse.ToDecimal(qty, qd), 0, 0, first, last, maker, data);
            lock (_history)
            {
                _history.Add(e);
                // Trim in chunks: removing one from the front per trade is a full memmove each time (it halved
                // the simulator's rate once the history was full, in a 10-minute soak).
                if (_history.Count > _historyLimit + (_historyLimit / 4))
                {
                    _history.RemoveRange(0, _history.Count - _historyLimit);
                }
            }

            return e;
        }

        /// <summary>Once a second: mark price near the walk's mid, index a tick or two off, funding rate from ±0.0375 %.</summary>
        public SimEvent NextMarkPrice(long nowMs)
        {
            _id++;
            _midTicks = Math.Max(10, _midTicks + _random.Next(-2, 3));
            var index = _midTicks + _random.Next(-2, 3);
            var settle = _midTicks + _random.Next(-1, 2);
            var fundingMillionths = _random.Next(-375, 376);
            var nextFunding = ((nowMs / 28_800_000) + 1) * 28_800_000;
            int pd = _symbol.PriceDecimals;
            var funding = fundingMillionths / 1_000_000m;
            Span<byte> buffer = stackalloc byte[512];
            Utf8.TryWrite(buffer, CultureInfo.InvariantCulture,
                $"{{\"e\":\"markPriceUpdate\",\"E\":{nowMs},\"s\":\"{_symbol.Symbol}\",\"p\":\"{new SymbolUniverse.FixedText(_midTicks, pd)}\",\"ap\":\"{new SymbolUniverse.FixedText(_midTicks, pd)}\",\"P\":\"{new SymbolUniverse.FixedText(settle, pd)}\",\"i\":\"{new SymbolUniverse.FixedText(index, pd)}\",\"r\":\"{funding.ToString("0.00000000", CultureInfo.InvariantCulture)}\",\"T\":{nextFunding}}}",
                out var written);
            // Price = mark, Qty = index, Price2 = estimated settle, Qty2 = funding rate; LastId = next funding time.
            return new SimEvent(_name, _symbol.Symbol, Channel, _id, nowMs, nowMs,
                SymbolUniverse.ToDecimal(_midTicks, pd), SymbolUniverse.ToDecimal(index, pd), SymbolUniverse.ToDecimal(settle, pd), funding,
                0, nextFunding, false, buffer[..written].ToArray());
        }

        public bool TakeLiquidationChance() => _random.Next(5) == 0;

        /// <summary>A liquidation order, filled in full at a price near the walk's mid.</summary>
        public SimEvent NextLiquidation(long tradeMs)
        {
            _id++;
            var sell = _random.Next(2) == 0;
            var price = Math.Max(10, _midTicks + (sell ? -_random.Next(1, 20) : _random.Next(1, 20)));
            var qty = 1 + _random.Next(20_000);
            var eventMs = tradeMs + 1 + _random.Next(5);
            int pd = _symbol.PriceDecimals, qd = _symbol.QtyDecimals;
            var q = new SymbolUniverse.FixedText(qty, qd);
            var p = new SymbolUniverse.FixedText(price, pd);
            Span<byte> buffer = stackalloc byte[512];
            Utf8.TryWrite(buffer, CultureInfo.InvariantCulture,
                $"{{\"e\":\"forceOrder\",\"E\":{eventMs},\"o\":{{\"s\":\"{_symbol.Symbol}\",\"S\":\"{(sell ? "SELL" : "BUY")}\",\"o\":\"LIMIT\",\"f\":\"IOC\",\"q\":\"{q}\",\"p\":\"{p}\",\"ap\":\"{p}\",\"X\":\"FILLED\",\"l\":\"{q}\",\"z\":\"{q}\",\"T\":{tradeMs}}}}}",
                out var written);
            // Price = price and average price, Qty = original, last and accumulated quantity; Maker = sell side.
            return new SimEvent(_name, _symbol.Symbol, Channel, _id, eventMs, tradeMs,
                SymbolUniverse.ToDecimal(price, pd), SymbolUniverse.ToDecimal(qty, qd), 0, 0, 0, 0, sell, buffer[..written].ToArray());
        }

        public List<SimEvent> History(long? fromId, int limit)
        {
            lock (_history)
            {
                if (fromId is null)
                {
                    return _history.Skip(Math.Max(0, _history.Count - limit)).ToList();
                }

                var start = _history.FindIndex(e => e.Id >= fromId);
                return start < 0 ? [] : _history.Skip(start).Take(limit).ToList();
            }
        }
    }
}
