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

    public void Interrupt(long nowMs)
    {
        lock (_gate)
        {
            if (_interruptedAtMs == 0)
            {
                _interruptedAtMs = nowMs;
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

            var gap = new GapRecord(SymbolId, Stream, _interruptedAtMs, Math.Max(_interruptedAtMs, nowMs), null, null, GapReason.Disconnected, nowMs,
                "no connection carried the stream");
            _interruptedAtMs = 0;
            return gap;
        }
    }
}
