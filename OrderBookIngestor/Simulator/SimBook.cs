using System.Text;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// How the fake exchange's depth snapshot meets its diff stream. Binance documents one relation (the first diff
/// to apply has U ≤ lastUpdateId ≤ u); the live USD-M stream also serves snapshots that the next diff continues
/// (pu = lastUpdateId, U &gt; lastUpdateId), e.g. a snapshot a diff behind the stream a recorder already buffers.
/// </summary>
public enum SnapshotJoin
{
    /// <summary>Each symbol's snapshots take the three forms below in turn.</summary>
    Cycle,

    /// <summary>The book as of the last diff sent: lastUpdateId is its u.</summary>
    AtLastDiff,

    /// <summary>One diff behind: the book before the last diff sent, lastUpdateId its pu. That diff continues the
    /// snapshot (pu = lastUpdateId, U &gt; lastUpdateId); a recorder that subscribed just before it never saw the one
    /// whose u is lastUpdateId.</summary>
    OneDiffBehind,

    /// <summary>lastUpdateId is the next diff's U, the levels those before it: the documented U ≤ lastUpdateId ≤ u.
    /// Diff levels are absolute, so applying that whole diff on top gives the same book.</summary>
    InsideNextDiff,
}

/// <summary>
/// A symbol's order book on the fake exchange. Diffs change a few levels near a fixed mid (so the book
/// never crosses), carry U/u/pu like Binance's USD-M stream, and the REST snapshot is taken from the same
/// book under the same lock, meeting the stream as <see cref="SnapshotJoin"/> says.
/// </summary>
public sealed class SimBook
{
    private readonly SimSymbol _symbol;
    private readonly Random _random;
    private static readonly SnapshotJoin[] CycledForms = [SnapshotJoin.AtLastDiff, SnapshotJoin.OneDiffBehind, SnapshotJoin.InsideNextDiff];

    private readonly SortedDictionary<long, long> _bids = new(Comparer<long>.Create((a, b) => b.CompareTo(a)));
    private readonly SortedDictionary<long, long> _asks = new();
    private readonly long _mid;
    private readonly SnapshotJoin _join;

    /// <summary>What the last diff changed, with the quantity before it (0: the level was absent), in order.</summary>
    private readonly List<(bool Bid, long Price, long Before)> _lastChanges = [];
    private long _lastU;
    private long _lastPrev;
    private long _snapshots;

    /// <summary>With history on: after each diff, its event time, u and the whole book (price and quantity ticks, best first).</summary>
    private readonly List<(long TimeMs, long U, (long, long)[] Bids, (long, long)[] Asks)>? _history;

    public SimBook(SimSymbol symbol, Random random, SnapshotJoin join = SnapshotJoin.Cycle, bool recordHistory = false)
    {
        _history = recordHistory ? [] : null;
        _symbol = symbol;
        _random = random;
        _join = join;
        _mid = symbol.StartPriceTicks;
        _lastU = 3_000_000_000L + random.Next(1_000_000);
        for (var i = 1; i <= 20; i++)
        {
            _bids[_mid - i] = 1 + random.Next(100_000);
            _asks[_mid + i] = 1 + random.Next(100_000);
        }
    }

    public SimEvent Next(string stream, Exchange.MarketChannel channel, long nowMs)
    {
        lock (_bids)
        {
            var bids = new List<(long Price, long Qty)>();
            var asks = new List<(long Price, long Qty)>();
            var changes = 1 + _random.Next(4);
            _lastChanges.Clear();
            for (var i = 0; i < changes; i++)
            {
                var bid = _random.Next(2) == 0;
                var offset = 1 + _random.Next(30);
                var qty = _random.Next(10) < 3 ? 0 : 1 + _random.Next(100_000);
                var price = bid ? _mid - offset : _mid + offset;
                var side = bid ? _bids : _asks;
                _lastChanges.Add((bid, price, side.GetValueOrDefault(price)));
                if (qty == 0)
                {
                    side.Remove(price);
                }
                else
                {
                    side[price] = qty;
                }

                (bid ? bids : asks).Add((price, qty));
            }

            var first = _lastU + 1;
            var final = first + _random.Next(3);
            var prev = _lastU;
            _lastPrev = prev;
            _lastU = final;
            var transactionMs = nowMs - _random.Next(3);
            _history?.Add((nowMs, final, _bids.Select(kv => (kv.Key, kv.Value)).ToArray(), _asks.Select(kv => (kv.Key, kv.Value)).ToArray()));
            var data = Encoding.ASCII.GetBytes(
                $"{{\"e\":\"depthUpdate\",\"E\":{nowMs},\"T\":{transactionMs},\"s\":\"{_symbol.Symbol}\",\"U\":{first},\"u\":{final},\"pu\":{prev},\"b\":{Levels(bids)},\"a\":{Levels(asks)}}}");
            return new SimEvent(stream, _symbol.Symbol, channel, final, nowMs, transactionMs, 0, 0, 0, 0, first, prev, false, data);
        }
    }

    /// <summary>The book as GET /fapi/v1/depth returns it: lastUpdateId and the best <paramref name="limit"/> levels per side.</summary>
    public void WriteSnapshot(System.Text.Json.Utf8JsonWriter w, int limit, long nowMs)
    {
        lock (_bids)
        {
            var form = _join == SnapshotJoin.Cycle ? CycledForms[_snapshots++ % CycledForms.Length] : _join;
            var (id, bids, asks) = form switch
            {
                SnapshotJoin.OneDiffBehind when _lastChanges.Count > 0 => (_lastPrev, Before(true), Before(false)),
                SnapshotJoin.InsideNextDiff => (_lastU + 1, _bids, _asks),
                _ => (_lastU, _bids, _asks),
            };
            w.WriteStartObject();
            w.WriteNumber("lastUpdateId", id);
            w.WriteNumber("E", nowMs);
            w.WriteNumber("T", nowMs);
            WriteLevels(w, "bids", bids, limit);
            WriteLevels(w, "asks", asks, limit);
            w.WriteEndObject();
        }
    }

    /// <summary>One side as it was before the last diff (its changes undone, last first).</summary>
    private SortedDictionary<long, long> Before(bool bid)
    {
        var side = new SortedDictionary<long, long>(bid ? _bids : _asks, (bid ? _bids : _asks).Comparer);
        for (var i = _lastChanges.Count - 1; i >= 0; i--)
        {
            var (b, price, before) = _lastChanges[i];
            if (b != bid)
            {
                continue;
            }

            if (before == 0)
            {
                side.Remove(price);
            }
            else
            {
                side[price] = before;
            }
        }

        return side;
    }

    private void WriteLevels(System.Text.Json.Utf8JsonWriter w, string name, SortedDictionary<long, long> side, int limit)
    {
        w.WriteStartArray(name);
        foreach (var (price, qty) in side.Take(limit))
        {
            w.WriteStartArray();
            w.WriteStringValue(SymbolUniverse.Fixed(price, _symbol.PriceDecimals));
            w.WriteStringValue(SymbolUniverse.Fixed(qty, _symbol.QtyDecimals));
            w.WriteEndArray();
        }

        w.WriteEndArray();
    }

    /// <summary>The whole book in exact decimals, for tests that rebuild it from what was stored.</summary>
    public (long LastUpdateId, List<(decimal Price, decimal Qty)> Bids, List<(decimal Price, decimal Qty)> Asks) Exact()
    {
        lock (_bids)
        {
            return (_lastU,
                _bids.Select(kv => (SymbolUniverse.ToDecimal(kv.Key, _symbol.PriceDecimals), SymbolUniverse.ToDecimal(kv.Value, _symbol.QtyDecimals))).ToList(),
                _asks.Select(kv => (SymbolUniverse.ToDecimal(kv.Key, _symbol.PriceDecimals), SymbolUniverse.ToDecimal(kv.Value, _symbol.QtyDecimals))).ToList());
        }
    }

    /// <summary>The book as it was after the last diff generated at or before <paramref name="timeMs"/> (delivered or not),
    /// in exact decimals; null before the first diff, or when the book keeps no history.</summary>
    public (long LastUpdateId, List<(decimal Price, decimal Qty)> Bids, List<(decimal Price, decimal Qty)> Asks)? At(long timeMs)
    {
        lock (_bids)
        {
            if (_history is null)
            {
                return null;
            }

            var i = _history.FindLastIndex(h => h.TimeMs <= timeMs);
            if (i < 0)
            {
                return null;
            }

            var (_, u, bids, asks) = _history[i];
            return (u,
                bids.Select(l => (SymbolUniverse.ToDecimal(l.Item1, _symbol.PriceDecimals), SymbolUniverse.ToDecimal(l.Item2, _symbol.QtyDecimals))).ToList(),
                asks.Select(l => (SymbolUniverse.ToDecimal(l.Item1, _symbol.PriceDecimals), SymbolUniverse.ToDecimal(l.Item2, _symbol.QtyDecimals))).ToList());
        }
    }

    private string Levels(IEnumerable<(long Price, long Qty)> levels)
        => "[" + string.Join(",", levels.Select(l => $"[\"{SymbolUniverse.Fixed(l.Price, _symbol.PriceDecimals)}\",\"{SymbolUniverse.Fixed(l.Qty, _symbol.QtyDecimals)}\"]")) + "]";
}
