using System.Collections.Concurrent;

namespace OrderBookIngestor.Storage;

/// <summary>Shared between the flushers and the replayer: while the database is down, batches go straight to the spool.</summary>
public sealed class SpoolState
{
    private volatile bool _down;
    private long _replayed;
    private long _spooledRows;
    private long _replayFailures;
    private readonly ConcurrentDictionary<Guid, byte> _uncounted = new();

    public bool DatabaseDown => _down;

    public long RecordsReplayed => Interlocked.Read(ref _replayed);

    public long RowsSpooled => Interlocked.Read(ref _spooledRows);

    /// <returns>True when this call changed the state (to log it once).</returns>
    public bool MarkDown()
    {
        var was = _down;
        _down = true;
        return !was;
    }

    public void MarkUp() => _down = false;

    public void OnReplayed(int records) => Interlocked.Add(ref _replayed, records);

    /// <summary>Replay passes (or probes and ledger prunes) that failed and will be tried again.</summary>
    public long ReplayFailures => Interlocked.Read(ref _replayFailures);

    public void OnReplayFailed() => Interlocked.Increment(ref _replayFailures);

    public void OnSpooled(Guid batchId, int rows)
    {
        Interlocked.Add(ref _spooledRows, rows);
        _uncounted.TryAdd(batchId, 0);
    }

    /// <summary>
    /// Whether the rows of a spooled batch are still to be counted as written by this process: true once per batch
    /// this process spooled. A batch is spooled when its commit's answer never came, so the database may hold it
    /// already (the replay then finds it in the ledger); either way nobody has counted it, and only one place may.
    /// </summary>
    public bool TakeUncounted(Guid batchId) => _uncounted.TryRemove(batchId, out _);
}
