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

    public void Complete() => _records.Writer.TryComplete();
}
