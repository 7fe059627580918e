using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Observability;

/// <summary>The daemon's shared counters. Written on the hot path with interlocked adds, read by side services only.</summary>
public sealed class IngestorMetrics
{
    private readonly long[] _rejects = new long[Enum.GetValues<RejectReason>().Length];
    private readonly long[] _duplicates = new long[MarketChannels.All.Length * 2];
    private long _lostAtShutdown;
    private long _backfilled;
    private readonly List<ShardStats> _shards = [];
    private readonly Lock _gate = new();

    public IngestorMetrics(TimeProvider time)
    {
        Time = time;
        StartedUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        BookTicker = new TableStats("book_ticker");
        Trades = new TableStats("trades");
        Depth = new TableStats("depth_events");
        Snapshots = new TableStats("book_snapshots");
        Tops = new TableStats("orderbook_top");
    }

    public TimeProvider Time { get; }

    public long StartedUnixMs { get; }

    public TableStats BookTicker { get; }

    public TableStats Trades { get; }

    public TableStats Depth { get; }

    public TableStats Snapshots { get; }

    public TableStats Tops { get; }

    public IEnumerable<TableStats> Tables => [BookTicker, Trades, Depth, Snapshots, Tops];

    /// <summary>Books in sync / all books with a depth stream, once the pipeline runs.</summary>
    public Func<(int Synced, int Total, long Resyncs)> Books { get; set; } = () => (0, 0, 0);

    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set once the pipeline is reading and flushing.</summary>
    public bool Ready
    {
        get => _ready.Task.IsCompleted;
        set
        {
            if (value)
            {
                _ready.TrySetResult();
            }
        }
    }

    public Task ReadyTask => _ready.Task;

    public string StorageTier { get; set; } = "unknown";

    public Storage.MaintenanceStats Maintenance { get; } = new();

    public string? StartupError { get; set; }

    public IReadOnlyList<ShardStats> Shards
    {
        get
        {
            lock (_gate)
            {
                return _shards.ToArray();
            }
        }
    }

    public ShardStats AddShard(string name, string route, IReadOnlyList<string>? plannedStreams = null)
    {
        var stats = new ShardStats(name, route, plannedStreams);
        lock (_gate)
        {
            _shards.Add(stats);
        }

        return stats;
    }

    /// <summary>The gap ledger, once the pipeline runs (for per-reason counts).</summary>
    public Pipeline.GapLedger? Gaps { get; set; }

    public Storage.Spool? Spool { get; set; }

    public Storage.SpoolState? SpoolState { get; set; }

    /// <summary>Where refused batches go, once the pipeline runs.</summary>
    public Storage.Quarantine? Quarantine { get; set; }

    /// <summary>Every recorded stream with its route and activity, once the pipeline runs.</summary>
    public Func<IReadOnlyList<(string Stream, Exchange.BinanceRoute Route, Pipeline.StreamActivity Activity)>> Streams { get; set; } = () => [];

    /// <summary>Streams subscribed but silent while their route flows, once the pipeline runs.</summary>
    public Func<IReadOnlyList<string>> SilentStreams { get; set; } = () => [];

    /// <summary>REST weight used this minute, once the pipeline runs.</summary>
    public Func<int> RestWeightUsed { get; set; } = () => 0;

    public void Duplicate(MarketChannel channel, bool stale) => Interlocked.Increment(ref _duplicates[((int)channel * 2) + (stale ? 1 : 0)]);

    public long Duplicates(MarketChannel channel, bool stale) => Interlocked.Read(ref _duplicates[((int)channel * 2) + (stale ? 1 : 0)]);

    public void LostAtShutdown() => Interlocked.Increment(ref _lostAtShutdown);

    public long EventsLostAtShutdown => Interlocked.Read(ref _lostAtShutdown);

    public void Backfilled() => Interlocked.Increment(ref _backfilled);

    public long TradesBackfilled => Interlocked.Read(ref _backfilled);

    public void Reject(RejectReason reason) => Interlocked.Increment(ref _rejects[(int)reason]);

    public long Rejects(RejectReason reason) => Interlocked.Read(ref _rejects[(int)reason]);

    public long TotalRejects => RejectReasons.All.Sum(Rejects);

    public long TotalMessages => Shards.Sum(s => s.Messages);
}
