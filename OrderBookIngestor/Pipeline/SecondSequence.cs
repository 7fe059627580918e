namespace OrderBookIngestor.Pipeline;

/// <summary>
/// Dedupe and hole detection for a stream the exchange pushes at a fixed period (markPrice@1s, markPrice every 3 s):
/// an event is new when its event time is after the last one accepted (rotation overlap and replays repeat times); a
/// step of more than one and a half periods between two accepted events is a hole of missed events while connected. An interruption
/// (a disconnect, or the daemon's own downtime found at start) makes the next accepted event close a gap instead.
/// </summary>
public sealed class SecondSequence
{
    /// <summary>Binance stamps these events a period apart, with a few ms of jitter: a step above 1.5 periods lost one.</summary>
    public long MaxStepMs { get; }

    private readonly Lock _gate = new();

    public SecondSequence(int symbolId, string stream, long lastStoredTimeMs, long periodMs = 1_000)
    {
        MaxStepMs = periodMs * 3 / 2;
        SymbolId = symbolId;
        Stream = stream;
        LastTimeMs = lastStoredTimeMs;
        InterruptionReason = lastStoredTimeMs > 0 ? GapReason.DaemonDown : null;
    }

    public int SymbolId { get; }

    public string Stream { get; }

    public StreamActivity Activity { get; } = new();

    /// <summary>Exchange time of the last accepted event (or of the last stored one, before the first).</summary>
    public long LastTimeMs { get; private set; }

    public GapReason? InterruptionReason { get; private set; }

    /// <returns>False for a duplicate or an event older than the last accepted.</returns>
    public bool Offer(long timeMs, long nowMs, out GapRecord? gap)
    {
        gap = null;
        lock (_gate)
        {
            if (timeMs <= LastTimeMs)
            {
                return false;
            }

            if (LastTimeMs > 0 && timeMs - LastTimeMs > MaxStepMs)
            {
                // The seconds strictly between the two events are missing.
                var reason = InterruptionReason ?? GapReason.MissedSeconds;
                gap = new GapRecord(SymbolId, Stream, LastTimeMs + 1, timeMs - 1, null, null, reason, nowMs,
                    reason == GapReason.MissedSeconds ? $"{(timeMs - LastTimeMs - 1) / 1000} s without an event while connected" : null);
            }

            InterruptionReason = null;
            LastTimeMs = timeMs;
            return true;
        }
    }

    /// <summary>The connection carrying this stream went down; the next accepted event dates the hole.</summary>
    public void Interrupt()
    {
        lock (_gate)
        {
            InterruptionReason ??= GapReason.Disconnected;
        }
    }
}
