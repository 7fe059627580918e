namespace OrderBookIngestor.Feeds;

/// <summary>
/// Cancels <see cref="Token"/> once nothing has been <see cref="Seen"/> for the timeout (a half-open connection).
/// A frame only stores a timestamp; one timer wakes once per timeout period and re-arms for the rest of the
/// window. Resetting a timer on every frame instead cost a timer-queue update per message (issue 17).
/// </summary>
internal sealed class NoDataWatchdog : IDisposable
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private readonly CancellationTokenSource _expired = new();
    private readonly ITimer _timer;
    private long _lastSeen;

    public NoDataWatchdog(TimeProvider time, TimeSpan timeout)
    {
        _time = time;
        _timeout = timeout;
        _lastSeen = time.GetTimestamp();
        _timer = time.CreateTimer(static s => ((NoDataWatchdog)s!).Check(), this, timeout, Timeout.InfiniteTimeSpan);
    }

    public CancellationToken Token => _expired.Token;

    /// <summary>Something arrived: the silence starts again from now.</summary>
    public void Seen() => Volatile.Write(ref _lastSeen, _time.GetTimestamp());

    public void Dispose()
    {
        _timer.Dispose();
        _expired.Dispose();
    }

    private void Check()
    {
        var silent = _time.GetElapsedTime(Volatile.Read(ref _lastSeen));
        if (silent >= _timeout)
        {
            try
            {
                _expired.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // the connection ended while the timer fired
            }

            return;
        }

        try
        {
            _timer.Change(_timeout - silent, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // disposed concurrently: nothing left to watch
        }
    }
}
