using System.Collections.Concurrent;
using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Books;

/// <summary>
/// Every depth book of the run: makes them for Pipeline's StreamStates (through Pipeline's IDepthBooks) and
/// keeps them typed for what Books itself does with them (snapshots, top-of-book samples, health figures).
/// </summary>
public sealed class DepthBookSet : IDepthBooks
{
    private readonly ConcurrentDictionary<int, DepthSequencer> _books = new();
    private SnapshotFetcher? _snapshots;

    public IReadOnlyList<DepthSequencer> All => [.. _books.Values];

    /// <summary>Where books that need a snapshot are sent (set once, before readers start).</summary>
    public void UseSnapshots(SnapshotFetcher fetcher) => _snapshots = fetcher;

    public IDepthBook Create(int symbolId, string symbol, string stream, long lastStoredUpdateId, long lastStoredTimeMs)
        => _books.GetOrAdd(symbolId, _ => new DepthSequencer(symbolId, symbol, stream, lastStoredUpdateId, lastStoredTimeMs));

    public void RequestSnapshot(IDepthBook book)
    {
        if (book is DepthSequencer sequencer)
        {
            _snapshots?.Request(sequencer);
        }
    }

    /// <summary>(books in sync, books, resyncs so far).</summary>
    public (int Synced, int Total, long Resyncs) Counts()
    {
        var all = All;
        return (all.Count(b => b.State == BookState.Synced), all.Count, all.Sum(b => (long)b.Resyncs));
    }
}
