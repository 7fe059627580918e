namespace OrderBookIngestor.Books;

/// <summary>One symbol's price levels. Quantities are absolute; 0 removes a level; removing a level not held is normal.</summary>
public sealed class OrderBook
{
    private static readonly Comparer<double> Descending = Comparer<double>.Create((a, b) => b.CompareTo(a));

    private readonly SortedDictionary<double, double> _bids = new(Descending);
    private readonly SortedDictionary<double, double> _asks = new();

    public int BidCount => _bids.Count;

    public int AskCount => _asks.Count;

    /// <summary>Best first.</summary>
    public IEnumerable<KeyValuePair<double, double>> Bids => _bids;

    /// <summary>Best first.</summary>
    public IEnumerable<KeyValuePair<double, double>> Asks => _asks;

    public void Clear()
    {
        _bids.Clear();
        _asks.Clear();
    }

    /// <summary>Applies levels given as (price, qty) pairs interleaved.</summary>
    public void Apply(ReadOnlySpan<double> bids, ReadOnlySpan<double> asks)
    {
        Apply(_bids, bids);
        Apply(_asks, asks);
    }

    private static void Apply(SortedDictionary<double, double> side, ReadOnlySpan<double> levels)
    {
        for (var i = 0; i + 1 < levels.Length; i += 2)
        {
            if (levels[i + 1] == 0)
            {
                side.Remove(levels[i]);
            }
            else
            {
                side[levels[i]] = levels[i + 1];
            }
        }
    }
}
