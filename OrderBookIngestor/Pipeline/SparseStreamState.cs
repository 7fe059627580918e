namespace OrderBookIngestor.Pipeline;

/// <summary>
/// A stream that may stay quiet for hours (forceOrder): dedupe by event time (rotation overlap repeats events; one
/// symbol has at most one event per second), and its holes dated by the connection, not by the next event. A
/// disconnect opens a hole, and the hole closes when a connection carrying the stream is subscribed again.
/// </summary>
public sealed class SparseStreamState
{
    private readonly RecentIdSequence _seen;
    private readonly Lock _gate = new();
    private long _interruptedAtMs;
    private bool _daemonDown;

    public SparseStreamState(int symbolId, string stream)
    {
        SymbolId = symbolId;
        Stream = stream;
        _seen = new RecentIdSequence(symbolId, stream, 0);
    }

    public int SymbolId { get; }

    public string Stream { get; }

    public StreamActivity Activity => _seen.Activity;

    public RecentIdSequence.Decision Offer(long eventTimeMs, long nowMs) => _seen.Offer(eventTimeMs, eventTimeMs, out _, nowMs);

    /// <summary>The connection carrying the stream dropped; it last received anything at <paramref name="sinceMs"/>.</summary>
    public void Interrupt(long sinceMs)
    {
        lock (_gate)
        {
            if (_interruptedAtMs == 0)
            {
                _interruptedAtMs = sinceMs;
            }
        }
    }

    /// <summary>At start: the previous run stopped recording this stream at <paramref name="sinceMs"/> (its end, from
    /// marketdata.recorder_sessions); the first subscription closes that hole as daemon_down.</summary>
    public void MarkDaemonDown(long sinceMs)
    {
        lock (_gate)
        {
            if (sinceMs > 0 && _interruptedAtMs == 0)
            {
                _interruptedAtMs = sinceMs;
                _daemonDown = true;
            }
        }
    }

    /// <summary>Subscribed again: the hole since the interruption, if there was one.</summary>
    public GapRecord? Resume(long nowMs)
    {
        lock (_gate)
        {
            if (_interruptedAtMs == 0)
            {
                return null;
            }

            var gap = _daemonDown
                ? new GapRecord(SymbolId, Stream, _interruptedAtMs, Math.Max(_interruptedAtMs, nowMs), null, null, GapReason.DaemonDown, nowMs,
                    "the daemon was not running (from the previous run's end in recorder_sessions)")
                : new GapRecord(SymbolId, Stream, _interruptedAtMs, Math.Max(_interruptedAtMs, nowMs), null, null, GapReason.Disconnected, nowMs,
                    "no connection carried the stream");
            _interruptedAtMs = 0;
            _daemonDown = false;
            return gap;
        }
    }
}
