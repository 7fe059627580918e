namespace OrderBookIngestor.Pipeline;

/// <summary>
/// Dedupe for a stream whose ids rise but are not contiguous (bookTicker's u): a frame is new if its id is
/// above the highest seen, or is not among the last <see cref="Window"/> ids accepted. An id older than the
/// window is treated as a replay and dropped (counted as stale). Also remembers when the stream was
/// interrupted, so the first frame after a reconnect or a restart can date the hole for the gap ledger.
/// </summary>
public sealed class RecentIdSequence
{
    public const int Window = 256;

    private readonly Lock _gate = new();
    /// <summary>The last <see cref="Window"/> ids accepted, distinct, oldest at <see cref="_next"/> once full. Ids mostly
    /// rise, so a new frame is told from its id alone (above the highest), and only an id at or below it is looked for
    /// here: a scan of 2 kB, vectorised, on the rare path (a replay, a rotation's overlap), where a hash set cost three
    /// lookups on every frame (issue 17).</summary>
    private readonly long[] _ring = new long[Window];
    private int _next;
    private int _count;
    private long _highest;
    private long _lowestInWindow;

    public RecentIdSequence(int symbolId, string stream, long lastStoredTimeMs)
    {
        SymbolId = symbolId;
        Stream = stream;
        InterruptedAtMs = lastStoredTimeMs;
        InterruptionReason = lastStoredTimeMs > 0 ? GapReason.DaemonDown : null;
    }

    public int SymbolId { get; }

    public string Stream { get; }

    /// <summary>Local time (Unix ms) a frame of this stream last arrived, duplicates included: the stream is alive.</summary>
    public StreamActivity Activity { get; } = new();

    /// <summary>Exchange time of the last accepted frame.</summary>
    public long LastTimeMs { get; private set; }

    public long InterruptedAtMs { get; private set; }

    public GapReason? InterruptionReason { get; private set; }

    public enum Decision
    {
        Accept,
        Duplicate,
        Stale,
    }

    public Decision Offer(long id, long timeMs, out GapRecord? gap, long nowMs)
    {
        gap = null;
        lock (_gate)
        {
            if (id <= _highest)
            {
                if (_ring.AsSpan(0, _count).Contains(id))
                {
                    return Decision.Duplicate;
                }

                // Older than the window: a replay carries an old event time too. A frame with a current time is
                // new, even below the highest id (which a corrupted frame may have pushed up).
                if (id < _lowestInWindow && timeMs < LastTimeMs)
                {
                    return Decision.Stale;
                }
            }

            _ring[_next] = id;
            _next = _next == Window - 1 ? 0 : _next + 1;
            if (_count < Window)
            {
                _count++;
            }

            _lowestInWindow = _count == Window ? _ring[_next] : 0;
            _highest = Math.Max(_highest, id);
            if (InterruptionReason is { } reason)
            {
                gap = new GapRecord(SymbolId, Stream, Math.Min(InterruptedAtMs, timeMs), timeMs, null, null, reason, nowMs);
                InterruptionReason = null;
            }

            LastTimeMs = Math.Max(LastTimeMs, timeMs);
            return Decision.Accept;
        }
    }

    /// <summary>The connection carrying this stream went down. The next accepted frame closes the gap, which starts at the
    /// last accepted frame, or at <paramref name="sinceMs"/> (when the connection last received anything) if none was.</summary>
    public void Interrupt(long sinceMs)
    {
        lock (_gate)
        {
            if (InterruptionReason is null)
            {
                InterruptedAtMs = LastTimeMs > 0 ? LastTimeMs : sinceMs;
                InterruptionReason = GapReason.Disconnected;
            }
        }
    }
}
