namespace OrderBookIngestor.Tests.Support;

/// <summary>A clock the test moves by hand. Timers fire, in due order, only inside <see cref="Advance"/>.</summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now;
    private long _timestamp;

    public ManualTimeProvider(DateTimeOffset? start = null) => _now = start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        lock (_gate)
        {
            return _timestamp;
        }
    }

    /// <summary>When the earliest pending timer fires on this clock, or null when none is pending.</summary>
    public DateTimeOffset? NextDue
    {
        get
        {
            lock (_gate)
            {
                var next = _timers.MinBy(t => t.DueAt);
                return next is null ? null : _now + TimeSpan.FromTicks(next.DueAt - _timestamp);
            }
        }
    }

    /// <summary>When each pending timer fires on this clock, earliest first.</summary>
    public IReadOnlyList<DateTimeOffset> PendingDue
    {
        get
        {
            lock (_gate)
            {
                return [.. _timers.Select(t => _now + TimeSpan.FromTicks(t.DueAt - _timestamp)).Order()];
            }
        }
    }

    /// <summary>Waits (bounded, 5 s) until code under test has parked on a timer of this clock, and returns when
    /// that timer is due. A negative check ("not done yet") made after this is not trivially true: the code is
    /// provably waiting on the clock, not merely slow.</summary>
    public async Task<DateTimeOffset> WaitForTimerAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            if (NextDue is { } due)
            {
                return due;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("nothing waited on the manual clock within 5 s");
            }

            await Task.Delay(1);
        }
    }

    public void Advance(TimeSpan by)
    {
        var target = GetTimestamp() + by.Ticks;
        while (true)
        {
            ManualTimer? due;
            lock (_gate)
            {
                due = _timers.Where(t => t.DueAt <= target).MinBy(t => t.DueAt);
                if (due is null)
                {
                    _now += TimeSpan.FromTicks(target - _timestamp);
                    _timestamp = target;
                    return;
                }

                _now += TimeSpan.FromTicks(Math.Max(0, due.DueAt - _timestamp));
                _timestamp = Math.Max(_timestamp, due.DueAt);
                due.Reschedule(_timestamp);
            }

            due.Fire();
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        private TimeSpan _period = Timeout.InfiniteTimeSpan;

        public long DueAt { get; private set; } = long.MaxValue;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                _period = period;
                owner._timers.Remove(this);
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    DueAt = owner._timestamp + Math.Max(0, dueTime.Ticks);
                    owner._timers.Add(this);
                }
            }

            return true;
        }

        /// <summary>Called under the owner's lock when the timer is due.</summary>
        public void Reschedule(long now)
        {
            owner._timers.Remove(this);
            if (_period != Timeout.InfiniteTimeSpan && _period > TimeSpan.Zero)
            {
                DueAt = now + _period.Ticks;
                owner._timers.Add(this);
            }
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (owner._gate)
            {
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
