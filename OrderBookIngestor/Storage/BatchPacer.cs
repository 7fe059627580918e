namespace OrderBookIngestor.Storage;

/// <summary>
/// How long a table's next batch waits before its COPY. It is sent as soon as it can be: when the rows already
/// waiting reach <c>targetRows</c> (rows that piled up during the previous COPY go at once: group commit), or
/// when, at the rate rows have been arriving, about <c>targetRows</c> will have come; never later than
/// <c>maxAge</c> after the previous drain (so no row waits longer than that), and at once after a quiet spell.
/// Cost per row is then one COPY per about <c>targetRows</c> rows, and the wait shrinks as the rate grows: ~10 ms
/// at 10,000 rows/s with the default 100. Above that, batches grow instead: one COPY per <see cref="MinInterval"/>
/// at most, unless a full batch (<c>maxRows</c>) is waiting. Tiny back-to-back COPYs at 100,000 msg/s had cost
/// PostgreSQL most of a core in commits and lowered the ceiling. One timer per batch, no wake-up per row (issue 17).
/// </summary>
internal sealed class BatchPacer
{
    private const double Smoothing = 0.5;

    /// <summary>At most one COPY per table this often, unless a full batch is waiting. On average: a timer that fired late
    /// (up to half this) is made up on the next wait.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(10);

    private readonly TimeProvider _time;
    private readonly int _targetRows;
    private readonly int _maxRows;
    private readonly TimeSpan _maxAge;
    private readonly long _maxCredit;
    private long _lastDrain; // where the next wait counts from: the drain, or when it was due if the timer was late
    private long _lastActual; // the drain itself, for the rate
    private long _dueAt; // when the timer of the last Linger was to fire; 0: no timer
    private double _rowsPerSecond;

    public BatchPacer(TimeProvider time, int targetRows, int maxRows, TimeSpan maxAge)
    {
        _time = time;
        _targetRows = Math.Min(targetRows, maxRows);
        _maxRows = maxRows;
        _maxAge = maxAge;
        _lastDrain = time.GetTimestamp();
        _lastActual = _lastDrain;
        _maxCredit = (long)(MinInterval.TotalSeconds / 2 * time.TimestampFrequency);
    }

    /// <summary>Rows per second over recent batches (smoothed); 0 before the first.</summary>
    public double RowsPerSecond => _rowsPerSecond;

    /// <summary>How long to let the batch fill, given the rows waiting now (at least one).</summary>
    public TimeSpan Linger(int waitingRows)
    {
        if (waitingRows >= _maxRows)
        {
            return TimeSpan.Zero;
        }

        var fill = waitingRows >= _targetRows ? TimeSpan.Zero
            : _rowsPerSecond > 0 ? TimeSpan.FromSeconds(_targetRows / _rowsPerSecond) : _maxAge;
        var wait = fill > MinInterval ? fill : MinInterval;
        var now = _time.GetTimestamp();
        var linger = (wait < _maxAge ? wait : _maxAge) - _time.GetElapsedTime(_lastDrain, now);
        if (linger <= TimeSpan.Zero)
        {
            _dueAt = 0;
            return TimeSpan.Zero;
        }

        _dueAt = now + (long)(linger.TotalSeconds * _time.TimestampFrequency);
        return linger;
    }

    /// <summary>A batch of <paramref name="rows"/> was taken from the buffer now.</summary>
    public void Drained(int rows)
    {
        var now = _time.GetTimestamp();
        var seconds = (now - _lastActual) / (double)_time.TimestampFrequency;
        _lastActual = now;
        // A timer wakes late (a millisecond or two on a busy host). Counting the next wait from when the batch was
        // due, not from when the timer fired, keeps the cadence at the interval instead of interval plus lateness.
        var late = now - _dueAt;
        _lastDrain = _dueAt != 0 && late >= 0 && late <= _maxCredit ? _dueAt : now;
        _dueAt = 0;
        // Rows that came in no measurable time say "fast", not "infinitely fast": one tick's worth.
        var rate = rows / Math.Max(seconds, 1.0 / _time.TimestampFrequency);
        _rowsPerSecond = _rowsPerSecond == 0 ? rate : Smoothing * rate + (1 - Smoothing) * _rowsPerSecond;
    }
}
