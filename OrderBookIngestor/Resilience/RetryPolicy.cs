namespace OrderBookIngestor.Resilience;

/// <summary>
/// The one retry policy of every loop that retries (shard reconnects, batch flushes, gap writes, storage
/// maintenance, the start's database wait): capped exponential backoff with full jitter (delay drawn uniformly
/// from [min, ceiling]) so that many loops failing after one outage do not come back together.
/// <see cref="Reset"/> after a success or a stable period. Waits run on the caller's TimeProvider.
/// </summary>
public sealed class RetryPolicy
{
    private readonly TimeSpan _min;
    private readonly TimeSpan _max;
    private readonly Random _random;
    private int _attempt;

    public RetryPolicy(TimeSpan min, TimeSpan max, Random random)
    {
        if (min <= TimeSpan.Zero || max < min)
        {
            throw new ArgumentOutOfRangeException(nameof(max), "Need 0 < min <= max.");
        }

        _min = min;
        _max = max;
        _random = random;
    }

    public int Attempt => _attempt;

    /// <summary>The ceiling for the current attempt: min·2^attempt, capped at max.</summary>
    public TimeSpan Ceiling
    {
        get
        {
            var factor = Math.Pow(2, Math.Min(_attempt, 30));
            var ticks = Math.Min(_max.Ticks, _min.Ticks * factor);
            return TimeSpan.FromTicks((long)ticks);
        }
    }

    public TimeSpan Next()
    {
        var ceiling = Ceiling;
        _attempt++;
        var span = ceiling.Ticks - _min.Ticks;
        return TimeSpan.FromTicks(_min.Ticks + (long)(_random.NextDouble() * span));
    }

    public void Reset() => _attempt = 0;
}
