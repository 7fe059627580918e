using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Books;

/// <summary>
/// Stores each synced depth book every BookSnapshotSeconds as a book_snapshots row with source 'daemon' (its top
/// SnapshotLimit levels per side, at its last applied update id), so that marketdata.book_at starts from a snapshot at
/// most that old instead of replaying every diff since the last REST snapshot. Symbols take turns over the period (a
/// symbol's turn is its id modulo the period, in seconds), so 500 books do not land in one batch of 16 MB.
/// A book that is not in sync at its turn is skipped and tried again at the next tick.
/// </summary>
public sealed class BookCheckpointer
{
    private readonly Func<IReadOnlyList<DepthSequencer>> _books;
    private readonly EventBuffers _buffers;
    private readonly TimeProvider _time;
    private readonly TimeSpan _period;
    private readonly int _levels;
    private readonly Dictionary<int, long> _due = [];

    public BookCheckpointer(Func<IReadOnlyList<DepthSequencer>> books, EventBuffers buffers, TimeProvider time, TimeSpan period, int levels)
    {
        _books = books;
        _buffers = buffers;
        _time = time;
        _period = period;
        _levels = levels;
    }

    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
    {
        if (_period <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(_period < TimeSpan.FromSeconds(1) ? _period : TimeSpan.FromSeconds(1), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                foreach (var row in Due(_time.GetUtcNow()))
                {
                    await _buffers.Snapshots.Writer.WriteAsync(row, abort).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down
        }
    }

    /// <summary>The rows of the books whose turn has come at <paramref name="now"/>; each taken book's next turn is a period on.</summary>
    public List<SnapshotRow> Due(DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var periodMs = (long)_period.TotalMilliseconds;
        var rows = new List<SnapshotRow>();
        foreach (var book in _books())
        {
            if (!_due.TryGetValue(book.SymbolId, out var due))
            {
                // First seen: its turn in the current period.
                var offset = book.SymbolId % Math.Max(1, periodMs / 1000) * 1000;
                due = nowMs - (nowMs % periodMs) + offset;
                if (due < nowMs)
                {
                    due += periodMs;
                }

                _due[book.SymbolId] = due;
            }

            if (due > nowMs || Take(book, now) is not { } row)
            {
                continue;
            }

            rows.Add(row);
            _due[book.SymbolId] = due + (((nowMs - due) / periodMs) + 1) * periodMs;
        }

        return rows;
    }

    private SnapshotRow? Take(DepthSequencer book, DateTimeOffset now)
    {
        using (book.Enter())
        {
            if (book.State != BookState.Synced || book.LastEventTimeMs <= 0)
            {
                return null;
            }

            return new SnapshotRow(book.SymbolId, book.LastAppliedUpdateId, book.LastEventTimeMs, now.ToUnixTimeMilliseconds() * 1000,
                TopSampler.Levels(book.Book.Bids, _levels), TopSampler.Levels(book.Book.Asks, _levels), FromDaemon: true);
        }
    }
}
