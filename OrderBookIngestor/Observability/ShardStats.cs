namespace OrderBookIngestor.Observability;

/// <summary>Live counters of one connection, written by its reader and read by /metrics, /health and the summary.</summary>
public sealed class ShardStats
{
    private long _messages;
    private long _bytes;
    private long _reconnects;
    private long _rotations;
    private long _lastMessageUnixMs;
    private int _state;

    public ShardStats(string name, string route, IReadOnlyList<string>? plannedStreams = null)
    {
        Name = name;
        Route = route;
        PlannedStreams = plannedStreams ?? [];
    }

    /// <summary>The streams the shard was planned with (reloads change what it records: see StreamCount).</summary>
    public IReadOnlyList<string> PlannedStreams { get; }

    /// <summary>The shard's name, e.g. "public-0".</summary>
    public string Name { get; }

    /// <summary>The route it connects to: "public" or "market".</summary>
    public string Route { get; }

    /// <summary>Streams the shard records now (its plan changed by reloads).</summary>
    public int StreamCount { get; set; }

    public long Messages => Interlocked.Read(ref _messages);

    public long Bytes => Interlocked.Read(ref _bytes);

    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>Unix ms of the last frame received, 0 when none yet.</summary>
    public long LastMessageUnixMs => Interlocked.Read(ref _lastMessageUnixMs);

    public ConnectionState State => (ConnectionState)Volatile.Read(ref _state);

    private int _receiveLowWater = 1;

    /// <summary>Bytes the kernel gathers before it wakes the reader (SO_RCVLOWAT, set by Feeds/ReadCoalescer; 1: every packet).</summary>
    public int ReceiveLowWater
    {
        get => Volatile.Read(ref _receiveLowWater);
        set => Volatile.Write(ref _receiveLowWater, value);
    }

    public void OnMessage(int bytes, long unixMs)
    {
        // One writer (the shard's reader) per counter: plain increments published with Volatile would do,
        // but Interlocked keeps 64-bit reads untorn on every platform at a cost we measured as noise.
        Interlocked.Increment(ref _messages);
        Interlocked.Add(ref _bytes, bytes);
        Interlocked.Exchange(ref _lastMessageUnixMs, unixMs);
    }

    public void OnReconnect() => Interlocked.Increment(ref _reconnects);

    public long Rotations => Interlocked.Read(ref _rotations);

    public void OnRotation() => Interlocked.Increment(ref _rotations);

    public void SetState(ConnectionState state) => Volatile.Write(ref _state, (int)state);
}
