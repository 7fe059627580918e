namespace OrderBookIngestor.Observability;

/// <summary>Lets through at most one log line per interval and counts what it held back, for hot-path logging.</summary>
public sealed class LogLimiter
{
    private readonly TimeProvider _time;
    private readonly long _intervalTicks;
    private long _nextAllowed;
    private long _suppressed;

    public LogLimiter(TimeProvider time, TimeSpan interval)
    {
        _time = time;
        _intervalTicks = (long)(interval.TotalSeconds * time.TimestampFrequency);
        _nextAllowed = long.MinValue;
    }

    /// <summary>True when a line may be written now; <paramref name="suppressed"/> is how many were held back since the last one.</summary>
    public bool TryEnter(out long suppressed)
    {
        var now = _time.GetTimestamp();
        var next = Interlocked.Read(ref _nextAllowed);
        if (now >= next && Interlocked.CompareExchange(ref _nextAllowed, now + _intervalTicks, next) == next)
        {
            suppressed = Interlocked.Exchange(ref _suppressed, 0);
            return true;
        }

        Interlocked.Increment(ref _suppressed);
        suppressed = 0;
        return false;
    }
}
