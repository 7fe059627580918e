using System.Threading.Channels;

namespace OrderBookIngestor.Pipeline;

/// <summary>Where every known hole is reported. A background writer (Storage/GapWriter) persists them.</summary>
public sealed class GapLedger
{
    private readonly Channel<GapRecord> _records = Channel.CreateUnbounded<GapRecord>(new UnboundedChannelOptions { SingleReader = true });
    private readonly long[] _counts = new long[GapReasons.All.Length];

    public ChannelReader<GapRecord> Reader => _records.Reader;

    public void Record(GapRecord gap)
    {
        Interlocked.Increment(ref _counts[(int)gap.Reason]);
        if (!_records.Writer.TryWrite(gap))
        {
            throw new InvalidOperationException("The gap ledger is closed; a gap was reported after shutdown.");
        }
    }

    public long Count(GapReason reason) => Interlocked.Read(ref _counts[(int)reason]);

    private long _rejected;
    private long _writeFailures;

    /// <summary>Gap rows the database refused (logged in full instead of stored).</summary>
    public long RowsRejected => Interlocked.Read(ref _rejected);

    /// <summary>Attempts to write a gap row that failed and were retried (database unavailable).</summary>
    public long WriteFailures => Interlocked.Read(ref _writeFailures);

    public void OnRejected() => Interlocked.Increment(ref _rejected);

    public void OnWriteFailed() => Interlocked.Increment(ref _writeFailures);

    public void Complete() => _records.Writer.TryComplete();
}
