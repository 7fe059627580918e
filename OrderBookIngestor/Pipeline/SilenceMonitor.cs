using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Pipeline;

/// <summary>
/// Finds streams that were subscribed (and acknowledged) but deliver nothing while other streams on the
/// same route flow: the signature of a wrong route or of an exchange-side fault. A quiet route as a whole
/// is the no-data watchdog's business, not this. Reported in the log (on each change), /metrics and /health.
/// </summary>
public sealed class SilenceMonitor
{
    private readonly Func<IReadOnlyList<(string Stream, BinanceRoute Route, StreamActivity Activity)>> _streams;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly long _thresholdMs;
    private readonly long _startedMs;
    private readonly HashSet<string> _silent = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <param name="streams">The streams recorded now (a reload can change them).</param>
    public SilenceMonitor(Func<IReadOnlyList<(string Stream, BinanceRoute Route, StreamActivity Activity)>> streams, TimeProvider time, ILogger log, TimeSpan threshold)
    {
        _streams = streams;
        _time = time;
        _log = log;
        _thresholdMs = (long)threshold.TotalMilliseconds;
        _startedMs = time.GetUtcNow().ToUnixTimeMilliseconds();
    }

    public IReadOnlyList<string> Silent
    {
        get
        {
            lock (_gate)
            {
                return [.. _silent.Order(StringComparer.Ordinal)];
            }
        }
    }

    public async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Max(100, _thresholdMs / 4)), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                Check();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down
        }
    }

    public void Check()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var streams = _streams();
        lock (_gate)
        {
            // Streams that are no longer recorded are not silent.
            _silent.RemoveWhere(s => !streams.Any(x => x.Stream == s));
        }

        foreach (var route in streams.Select(s => s.Route).Distinct())
        {
            var onRoute = streams.Where(s => s.Route == route).ToList();
            var routeFlows = onRoute.Any(s => now - s.Activity.LastSeenMs < _thresholdMs);
            foreach (var (stream, _, activity) in onRoute)
            {
                var quietFor = now - Math.Max(activity.LastSeenMs, _startedMs);
                var silent = routeFlows && quietFor >= _thresholdMs;
                lock (_gate)
                {
                    if (silent && _silent.Add(stream))
                    {
                        Log.StreamSilent(_log, stream, quietFor / 1000, route.PathSegment());
                    }
                    else if (!silent && _silent.Remove(stream))
                    {
                        Log.StreamFlowing(_log, stream);
                    }
                }
            }
        }
    }
}
