namespace OrderBookIngestor.Feeds;

/// <summary>
/// Decides when a connection's receive loop pauses before reading again. On a quiet connection (fewer than
/// <see cref="BelowPerSecond"/> messages in its last second), a message that had to wake the loop (nothing was
/// buffered) is followed by a pause of a few milliseconds, so that the messages arriving meanwhile are read in one
/// go: at 2,000 msg/s a thread wake-up per message was most of the daemon's CPU. A busy connection already brings
/// several messages per wake-up and never pauses, so its latency stays what it was.
/// </summary>
internal sealed class ReceiveCoalescer(int pauseMs)
{
    public const int BelowPerSecond = 3_000;

    private long _windowStartMs = long.MinValue;
    private int _windowMessages;
    private bool _quiet;
    private long _pauseUntilMs = long.MinValue;

    public bool Quiet => _quiet;

    /// <param name="woken">The read that began this message had to wait for the socket.</param>
    public void OnMessage(long nowMs, bool woken)
    {
        _windowMessages++;
        if (_windowStartMs == long.MinValue)
        {
            _windowStartMs = nowMs;
            _quiet = true;
        }
        else if (nowMs - _windowStartMs >= 1000)
        {
            _quiet = _windowMessages * 1000L < BelowPerSecond * (nowMs - _windowStartMs);
            _windowStartMs = nowMs;
            _windowMessages = 0;
        }

        if (woken && _quiet)
        {
            _pauseUntilMs = nowMs + pauseMs;
        }
    }

    /// <summary>Milliseconds to pause before the next read (0: none); a pause is taken once.</summary>
    public long TakePause(long nowMs)
    {
        if (_pauseUntilMs == long.MinValue)
        {
            return 0;
        }

        var wait = _pauseUntilMs - nowMs;
        _pauseUntilMs = long.MinValue;
        return wait > 0 ? wait : 0;
    }
}
