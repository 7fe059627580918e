using System.Threading.Tasks.Sources;

namespace OrderBookIngestor.Feeds;

/// <summary>
/// A short pause a receive loop takes again and again, on one timer made once: no allocation per pause. Not
/// cancellable: a pause is a few milliseconds, and the read after it sees the loop's token.
/// </summary>
internal sealed class ReceivePause : IValueTaskSource, IDisposable
{
    private readonly ITimer _timer;
    private ManualResetValueTaskSourceCore<bool> _core;

    public ReceivePause(TimeProvider time)
    {
        // The continuation runs on the timer's thread-pool callback: no second hop.
        _core.RunContinuationsAsynchronously = false;
        _timer = time.CreateTimer(static state => ((ReceivePause)state!)._core.SetResult(true), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>One pause at a time: await it before asking for the next.</summary>
    public ValueTask WaitAsync(TimeSpan delay)
    {
        _core.Reset();
        _timer.Change(delay, Timeout.InfiniteTimeSpan);
        return new ValueTask(this, _core.Version);
    }

    public void Dispose() => _timer.Dispose();

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
