using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Observability;

/// <summary>The daemon's shared counters. Written on the hot path with interlocked adds, read by side services only.</summary>
public sealed class IngestorMetrics
{
    private readonly long[] _rejects = new long[Enum.GetValues<RejectReason>().Length];
    private readonly List<ShardStats> _shards = [];
    private readonly Lock _gate = new();

    public IngestorMetrics(TimeProvider time)
    {
        Time = time;
        StartedUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        BookTicker = new TableStats("book_ticker");
        Trades = new TableStats("trades");
    }

    public TimeProvider Time { get; }

    public long StartedUnixMs { get; }

    public TableStats BookTicker { get; }

    public TableStats Trades { get; }

    public IEnumerable<TableStats> Tables => [BookTicker, Trades];

    /// <summary>Set once the pipeline is reading and flushing.</summary>
    public bool Ready { get; set; }

    public string StorageTier { get; set; } = "unknown";

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

    public ShardStats AddShard(Feeds.ShardPlan plan)
    {
        var stats = new ShardStats(plan);
        lock (_gate)
        {
            _shards.Add(stats);
        }

        return stats;
    }

    public void Reject(RejectReason reason) => Interlocked.Increment(ref _rejects[(int)reason]);

    public long Rejects(RejectReason reason) => Interlocked.Read(ref _rejects[(int)reason]);

    public long TotalRejects => RejectReasons.All.Sum(Rejects);

    public long TotalMessages => Shards.Sum(s => s.Messages);
}
