using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// Keeps the managed heap and the GC's committed memory, and with them the daemon's RSS, within a fixed margin of what is actually live.
/// <para>
/// In an hour's soak at 50,000 msg/s the live heap stayed 22–25 MB, but the GC, left to itself, let garbage of the
/// older generations pile up to 98 MB between its rare full collections (5 in an hour), so RSS went 94 → 186 MB
/// in steps; a full collection (dotnet-gcdump's) took it to 119 MB at once. So every 30 s this looks at the heap,
/// and when it has grown more than <c>HeapSlackMegabytes</c> past what the last full collection left, asks for one:
/// blocking and compacting, giving the emptied memory back to the system. In a 20-minute soak that happened twice;
/// each one's duration is logged (event 1019, debug level).
/// </para>
/// <para>
/// The GC also keeps memory committed that holds nothing: in the next hour's soak (third session of 2026-12-03) it
/// held 80 MB committed for a heap of 36–43 MB for over ten minutes after a stall, below the heap trigger. So a
/// collection is also asked for when the GC's committed memory exceeds the heap by more than the slack (more than
/// what the last collection left it holding).
/// </para>
/// <para>
/// Each look also gives glibc's free malloc memory back (<see cref="NativeHeap.Trim"/>): the runtime's own native
/// memory, which no collection touches, had stepped up by ~7 MB in the tenth minute of a soak and stayed there.
/// </para>
/// </summary>
public sealed class HeapTrimmer : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    private readonly TimeProvider _time;
    private readonly long _slackBytes;
    private readonly Func<long> _heapBytes;
    private readonly Func<long> _committedBytes;
    private readonly Action _collect;
    private readonly Func<bool> _trimNative;
    private readonly ILogger _log;
    private readonly IngestorMetrics _metrics;
    private long _baseline;
    private long _idleBaseline;

    public HeapTrimmer(TimeProvider time, int slackMegabytes, IngestorMetrics metrics, ILogger log, Func<long>? heapBytes = null, Action? collect = null,
        Func<long>? committedBytes = null, Func<bool>? trimNative = null)
    {
        _time = time;
        _metrics = metrics;
        _slackBytes = (long)slackMegabytes << 20;
        _log = log;
        _heapBytes = heapBytes ?? (() => GC.GetTotalMemory(false));
        _committedBytes = committedBytes ?? (() => GC.GetGCMemoryInfo().TotalCommittedBytes);
        _collect = collect ?? (() => GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true));
        _trimNative = trimNative ?? NativeHeap.Trim;
        _baseline = _heapBytes();
    }

    /// <summary>One look: gives free malloc memory back, then looks at the heap; returns whether a full collection was
    /// asked for.</summary>
    public bool Check()
    {
        _trimNative();
        var heap = _heapBytes();
        if (heap < _baseline)
        {
            // The GC collected on its own: measure from what it left.
            _baseline = heap;
        }

        var grown = heap - _baseline > _slackBytes;
        // Measured from what the last collection left idle, so a GC that keeps some memory anyway is not asked every 30 s.
        var idle = _committedBytes() - heap - _idleBaseline > _slackBytes;
        if (!grown && !idle)
        {
            return false;
        }

        var started = _time.GetTimestamp();
        _collect();
        _baseline = _heapBytes();
        _idleBaseline = Math.Max(0, _committedBytes() - _baseline);
        _metrics.OnHeapTrimmed();
        Log.HeapTrimmed(_log, heap >> 20, _baseline >> 20, _time.GetElapsedTime(started).TotalMilliseconds);
        return true;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_slackBytes <= 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(Interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                Check();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down
        }
    }
}
