using Microsoft.Extensions.Logging;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Hosting;

/// <summary>The phases of an orderly stop, in the order they run: each ends its loops before the next starts.</summary>
internal enum DrainPhase
{
    /// <summary>Shard readers: they stop reading when the daemon is told to stop.</summary>
    Readers,

    /// <summary>REST helpers (backfill, snapshots), the top-of-book sampler, the silence monitor, reloads:
    /// unfinished backfill goes to the gap ledger.</summary>
    Helpers,

    /// <summary>Table flushers: the buffers are completed and they commit what is left.</summary>
    Flushers,

    /// <summary>The spool replay (it may still write a damaged record's loss to the ledger).</summary>
    SpoolReplay,

    /// <summary>The gap writer: the ledger is completed and it writes what is left.</summary>
    GapWriter,

    /// <summary>Partition and rollup maintenance.</summary>
    Maintenance,
}

/// <summary>A long-running loop of the pipeline: its name (what logs and failures say), the drain phase that
/// ends it, and whether it ending on its own is a failure (Watched).</summary>
internal sealed record Loop(string Name, DrainPhase Phase, Task Task, bool Watched = true);

/// <summary>
/// Watches the pipeline's named loops while it runs and drains them at shutdown, phase by phase as
/// <see cref="DrainPhase"/> orders them: the drain order is data here, not a sequence of statements.
/// </summary>
internal sealed class Supervisor(ILogger log)
{
    private readonly Lock _gate = new();
    private readonly List<Loop> _loops = [];
    private readonly Dictionary<DrainPhase, List<Func<Task>>> _stops = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts <paramref name="run"/> on the thread pool as a named loop.</summary>
    public void Start(string name, DrainPhase phase, Func<Task> run, bool watched = true)
        => Add(new Loop(name, phase, Task.Run(run, CancellationToken.None), watched));

    /// <summary>Adds a loop (readers are added by reloads while the pipeline runs).</summary>
    public void Add(Loop loop)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _loops.Add(loop);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    /// <summary>What starts a phase's drain (cancel its token, complete its channel), run before its loops are awaited.</summary>
    public void OnDrain(DrainPhase phase, Func<Task> stop)
    {
        lock (_gate)
        {
            if (!_stops.TryGetValue(phase, out var list))
            {
                _stops[phase] = list = [];
            }

            list.Add(stop);
        }
    }

    public void OnDrain(DrainPhase phase, Action stop) => OnDrain(phase, () =>
    {
        stop();
        return Task.CompletedTask;
    });

    public IReadOnlyList<Loop> Loops
    {
        get
        {
            lock (_gate)
            {
                return [.. _loops];
            }
        }
    }

    /// <summary>
    /// Waits for shutdown (returns null) or for a watched loop to end on its own, which is a bug: that loop is
    /// returned, and the safe reaction is to stop (systemd restarts us) rather than run on with a dead part.
    /// </summary>
    public async Task<Loop?> WatchAsync(TimeProvider time, CancellationToken stopping)
    {
        var stopped = Task.Delay(Timeout.InfiniteTimeSpan, time, stopping);
        while (!stopping.IsCancellationRequested)
        {
            List<Loop> watched;
            Task changed;
            lock (_gate)
            {
                watched = _loops.Where(l => l.Watched).ToList();
                changed = _changed.Task;
            }

            var first = await Task.WhenAny(watched.Select(l => l.Task).Append(changed).Append(stopped)).ConfigureAwait(false);
            if (first == changed || stopping.IsCancellationRequested)
            {
                continue;
            }

            return watched.First(l => l.Task == first);
        }

        return null;
    }

    /// <summary>Runs the drain: for each phase in order, its stop actions, then every loop of the phase to its end.
    /// A loop that fails while draining is logged by name; the drain goes on.</summary>
    public async Task DrainAsync()
    {
        foreach (var phase in Enum.GetValues<DrainPhase>())
        {
            List<Func<Task>> stops;
            lock (_gate)
            {
                stops = _stops.TryGetValue(phase, out var list) ? [.. list] : [];
            }

            foreach (var stop in stops)
            {
                await stop().ConfigureAwait(false);
            }

            await Task.WhenAll(Loops.Where(l => l.Phase == phase).Select(QuietlyAsync)).ConfigureAwait(false);
        }
    }

    private async Task QuietlyAsync(Loop loop)
    {
        try
        {
            await loop.Task.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.DrainTaskFailed(log, loop.Name, ex.Message);
        }
    }
}
