using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Books;

/// <summary>Samples every synced book at a fixed cadence into marketdata.orderbook_top: top N levels plus features.</summary>
public sealed class TopSampler
{
    private readonly Func<IReadOnlyList<DepthSequencer>> _books;
    private readonly EventBuffers _buffers;
    private readonly TimeProvider _time;
    private readonly int _levels;
    private readonly TimeSpan _interval;

    /// <param name="books">The books to sample now (a reload can add some).</param>
    public TopSampler(Func<IReadOnlyList<DepthSequencer>> books, EventBuffers buffers, TimeProvider time, int levels, TimeSpan interval)
    {
        _books = books;
        _buffers = buffers;
        _time = time;
        _levels = levels;
        _interval = interval;
    }

    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
    {
        if (_interval <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(_interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
                foreach (var book in _books())
                {
                    if (Sample(book, now, _levels) is { } row)
                    {
                        await _buffers.Tops.Writer.WriteAsync(row, abort).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down
        }
    }

    /// <summary>The book's top levels and features, or null when the book is not in sync.</summary>
    public static TopRow? Sample(DepthSequencer book, long nowMs, int levels)
    {
        using (book.Enter())
        {
            if (book.State != BookState.Synced)
            {
                return null;
            }

            var bids = Levels(book.Book.Bids, levels);
            var asks = Levels(book.Book.Asks, levels);
            return Features(book.SymbolId, nowMs, book.LastAppliedUpdateId, bids, asks);
        }
    }

    public static TopRow Features(int symbolId, long nowMs, long updateId, double[] bids, double[] asks)
    {
        double mid = double.NaN, spread = double.NaN, micro = double.NaN, imb1 = double.NaN, imb5 = double.NaN;
        if (bids.Length >= 2 && asks.Length >= 2)
        {
            double bid = bids[0], bidQty = bids[1], ask = asks[0], askQty = asks[1];
            mid = (bid + ask) / 2;
            spread = ask - bid;
            micro = ((bid * askQty) + (ask * bidQty)) / (bidQty + askQty);
            imb1 = (bidQty - askQty) / (bidQty + askQty);
            double b5 = 0, a5 = 0;
            for (var i = 1; i < Math.Min(bids.Length, 10); i += 2)
            {
                b5 += bids[i];
            }

            for (var i = 1; i < Math.Min(asks.Length, 10); i += 2)
            {
                a5 += asks[i];
            }

            imb5 = (b5 - a5) / (b5 + a5);
        }

        return new TopRow(symbolId, nowMs, updateId, bids, asks, mid, spread, micro, imb1, imb5);
    }

    /// <summary>The first <paramref name="levels"/> levels of a side, interleaved (price, qty).</summary>
    internal static double[] Levels(IEnumerable<KeyValuePair<double, double>> side, int levels)
    {
        var result = new List<double>(levels * 2);
        foreach (var (price, qty) in side)
        {
            if (result.Count == levels * 2)
            {
                break;
            }

            result.Add(price);
            result.Add(qty);
        }

        return [.. result];
    }
}
