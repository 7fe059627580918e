namespace OrderBookIngestor.Observability;

/// <summary>The daemon's shared counters. Written on the hot path with interlocked adds, read by side services only.</summary>
public sealed class IngestorMetrics
{
    private long _lostAtShutdown;
    private long _backfilled;
    private long _heapTrims;
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
        MarkPrice = new TableStats("mark_price");
        Liquidations = new TableStats("liquidations");
        OpenInterest = new TableStats("open_interest");
    }

    public TimeProvider Time { get; }

    /// <summary>Frames rejected, by reason (Exchange's RejectReason numbers them; see its metrics extensions).</summary>
    public CounterSet RejectCounters { get; } = new(32);

    /// <summary>Duplicates dropped, by channel and kind (Exchange numbers them; see its metrics extensions).</summary>
    public CounterSet DuplicateCounters { get; } = new(32);

    public long StartedUnixMs { get; }

    /// <summary>Full collections the heap trimmer asked for (Hosting/HeapTrimmer).</summary>
    public long HeapTrims => Interlocked.Read(ref _heapTrims);

    public void OnHeapTrimmed() => Interlocked.Increment(ref _heapTrims);

    public TableStats BookTicker { get; }

    public TableStats Trades { get; }

    public TableStats Depth { get; }

    public TableStats Snapshots { get; }

    public TableStats Tops { get; }

    public TableStats MarkPrice { get; }

    public TableStats Liquidations { get; }

    public TableStats OpenInterest { get; }

    public IEnumerable<TableStats> Tables => [BookTicker, Trades, Depth, Snapshots, Tops, MarkPrice, Liquidations, OpenInterest];

    private long _liquidationSeconds;
    private long _openInterestPolls;
    private long _openInterestMissed;

    /// <summary>forceOrder events accepted: each is a second in which the exchange reported its latest liquidation only.</summary>
    public long LiquidationSampledSeconds => Interlocked.Read(ref _liquidationSeconds);

    public void OnLiquidationSampledSecond() => Interlocked.Increment(ref _liquidationSeconds);

    private long _reloadsApplied;
    private long _reloadsRefused;

    /// <summary>Reloads (SIGHUP, listing refreshes) applied, and refused (a bad configuration, an unreachable database or
    /// exchange, or not done within the reload timeout): the running configuration then stays.</summary>
    public (long Applied, long Refused) Reloads => (Interlocked.Read(ref _reloadsApplied), Interlocked.Read(ref _reloadsRefused));

    public void OnReload(bool applied) => Interlocked.Increment(ref applied ? ref _reloadsApplied : ref _reloadsRefused);

    private long _markPricesBackfilled;

    /// <summary>1-minute mark price bars stored from REST after downtime.</summary>
    public long MarkPricesBackfilled => Interlocked.Read(ref _markPricesBackfilled);

    public void OnMarkPricesBackfilled(int bars) => Interlocked.Add(ref _markPricesBackfilled, bars);

    /// <summary>Open interest polls answered, and polls that failed or were skipped for want of request weight.</summary>
    public (long Answered, long Missed) OpenInterestPolls => (Interlocked.Read(ref _openInterestPolls), Interlocked.Read(ref _openInterestMissed));

    public void OnOpenInterestPoll(bool answered) => Interlocked.Increment(ref answered ? ref _openInterestPolls : ref _openInterestMissed);

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

    /// <summary>Streams subscribed but silent while their route flows, once the pipeline runs.</summary>
    public Func<IReadOnlyList<string>> SilentStreams { get; set; } = () => [];

    /// <summary>REST weight used this minute, once the pipeline runs.</summary>
    public Func<int> RestWeightUsed { get; set; } = () => 0;

    public void LostAtShutdown() => Interlocked.Increment(ref _lostAtShutdown);

    public long EventsLostAtShutdown => Interlocked.Read(ref _lostAtShutdown);

    public void Backfilled() => Interlocked.Increment(ref _backfilled);

    public long TradesBackfilled => Interlocked.Read(ref _backfilled);

    public long TotalMessages => Shards.Sum(s => s.Messages);
}
