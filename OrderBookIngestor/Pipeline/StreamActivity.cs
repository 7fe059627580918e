namespace OrderBookIngestor.Pipeline;

/// <summary>When a stream last delivered a frame. Written by readers, read by the silence monitor.</summary>
public sealed class StreamActivity
{
    private long _lastSeenMs;
    private long _messages;

    public long LastSeenMs => Volatile.Read(ref _lastSeenMs);

    /// <summary>Frames of this stream received, duplicates included.</summary>
    public long Messages => Interlocked.Read(ref _messages);

    public void Seen(long ingestTimeUs)
    {
        Volatile.Write(ref _lastSeenMs, ingestTimeUs / 1000);
        Interlocked.Increment(ref _messages);
    }
}
