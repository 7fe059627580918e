namespace OrderBookIngestor.Pipeline;

/// <summary>When a stream last delivered a frame. Written by readers, read by the silence monitor.</summary>
public sealed class StreamActivity
{
    private long _lastSeenMs;

    public long LastSeenMs => Volatile.Read(ref _lastSeenMs);

    public void Seen(long ingestTimeUs) => Volatile.Write(ref _lastSeenMs, ingestTimeUs / 1000);
}
