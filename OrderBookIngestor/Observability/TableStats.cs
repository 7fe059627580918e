namespace OrderBookIngestor.Observability;

/// <summary>Counters of one table's flusher.</summary>
public sealed class TableStats
{
    private long _rowsCommitted;
    private long _batches;
    private long _copyFailures;
    private long _lastCommitUnixMs;
    private long _rowsAbandoned;
    private long _lastAttemptUnixMs;

    public TableStats(string table) => Table = table;

    public string Table { get; }

    public long RowsCommitted => Interlocked.Read(ref _rowsCommitted);

    public long Batches => Interlocked.Read(ref _batches);

    public long CopyFailures => Interlocked.Read(ref _copyFailures);

    /// <summary>Rows that could not be committed before the drain deadline at shutdown (logged as lost).</summary>
    public long RowsAbandoned => Interlocked.Read(ref _rowsAbandoned);

    public long LastCommitUnixMs => Interlocked.Read(ref _lastCommitUnixMs);

    /// <summary>When the flusher last finished a COPY attempt, successful or not: it is alive and trying.</summary>
    public long LastAttemptUnixMs => Interlocked.Read(ref _lastAttemptUnixMs);

    public void OnAttemptFinished(long unixMs) => Interlocked.Exchange(ref _lastAttemptUnixMs, unixMs);

    public Func<int> BufferDepth { get; set; } = () => 0;

    /// <summary>Writers waiting for room in the table's full buffer, each with an event in hand: shard readers, or a backfill.</summary>
    public Func<int> ReadersWaiting { get; set; } = () => 0;

    /// <summary>Memory the table's buffer holds for rows, in use or spare: it follows a backlog down again.</summary>
    public Func<long> BufferBytes { get; set; } = () => 0;

    public int BufferCapacity { get; set; }

    public Histogram CopySeconds { get; } = new(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10);

    /// <summary>Exchange event time to database commit, per row.</summary>
    /// <summary>Buckets fine enough to show milliseconds: a batch lands in ~5-10 ms at moderate rates (issue 17).</summary>
    public Histogram CommitLatencySeconds { get; } = new(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30);

    public string? LastError { get; set; }

    public void OnCommitted(int rows, long unixMs, double copySeconds)
    {
        Interlocked.Add(ref _rowsCommitted, rows);
        Interlocked.Increment(ref _batches);
        Interlocked.Exchange(ref _lastCommitUnixMs, unixMs);
        CopySeconds.Observe(copySeconds);
        LastError = null;
    }

    public void OnCopyFailed(string error)
    {
        Interlocked.Increment(ref _copyFailures);
        LastError = error;
    }

    public void OnAbandoned(int rows) => Interlocked.Add(ref _rowsAbandoned, rows);

    private long _rowsReplayed;

    /// <summary>Rows committed from the disk spool (also counted in <see cref="RowsCommitted"/>).</summary>
    public long RowsReplayed => Interlocked.Read(ref _rowsReplayed);

    public void OnReplayed(int rows)
    {
        Interlocked.Add(ref _rowsCommitted, rows);
        Interlocked.Add(ref _rowsReplayed, rows);
    }

    private long _rowsSpooled;

    /// <summary>Rows written to the disk spool because the database did not take them.</summary>
    public long RowsSpooled => Interlocked.Read(ref _rowsSpooled);

    public void OnSpooled(int rows) => Interlocked.Add(ref _rowsSpooled, rows);
}
