namespace OrderBookIngestor.Observability;

/// <summary>A fixed-bucket, lock-free histogram of seconds for Prometheus exposition.</summary>
public sealed class Histogram
{
    private readonly double[] _bounds;
    private readonly long[] _counts;
    private long _sumMicros;
    private long _count;

    public Histogram(params double[] boundsSeconds)
    {
        _bounds = boundsSeconds.Order().ToArray();
        _counts = new long[_bounds.Length + 1];
    }

    public IReadOnlyList<double> Bounds => _bounds;

    public long Count => Interlocked.Read(ref _count);

    public double SumSeconds => Interlocked.Read(ref _sumMicros) / 1e6;

    public void Observe(double seconds)
    {
        var i = 0;
        while (i < _bounds.Length && seconds > _bounds[i])
        {
            i++;
        }

        Interlocked.Increment(ref _counts[i]);
        Interlocked.Add(ref _sumMicros, (long)(seconds * 1e6));
        Interlocked.Increment(ref _count);
    }

    /// <summary>Cumulative counts per bound, the last being +Inf, as the exposition format wants.</summary>
    public long[] CumulativeCounts()
    {
        var result = new long[_counts.Length];
        long running = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            running += Interlocked.Read(ref _counts[i]);
            result[i] = running;
        }

        return result;
    }

    /// <summary>An upper-bound estimate of quantile q from the buckets (the bucket's upper edge).</summary>
    public double Quantile(double q)
    {
        var cumulative = CumulativeCounts();
        var total = cumulative[^1];
        if (total == 0)
        {
            return double.NaN;
        }

        var rank = (long)Math.Ceiling(q * total);
        for (var i = 0; i < cumulative.Length; i++)
        {
            if (cumulative[i] >= rank)
            {
                return i < _bounds.Length ? _bounds[i] : double.PositiveInfinity;
            }
        }

        return double.PositiveInfinity;
    }
}
