namespace OrderBookIngestor.Storage;

/// <summary>Shared between the flushers and the replayer: while the database is down, batches go straight to the spool.</summary>
public sealed class SpoolState
{
    private volatile bool _down;
    private long _replayed;
    private long _spooledRows;
    private long _replayFailures;

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

    public void OnSpooled(int rows) => Interlocked.Add(ref _spooledRows, rows);
}
