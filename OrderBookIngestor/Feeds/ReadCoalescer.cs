namespace OrderBookIngestor.Feeds;

/// <summary>
/// Lets the kernel gather a busy connection's messages before it wakes the reader: the socket's receive low-water
/// mark (SO_RCVLOWAT) is set to about <c>window</c>'s worth of the bytes the connection has been receiving.
/// <para>
/// At 2,000 msg/s the daemon woke ~650 times a second for ~3 messages each, and each wake-up (epoll, a receive, the
/// kernel's scheduling, caches gone cold) cost far more than parsing the messages: ~5.5 % of a core in all. With the
/// kernel holding ~4 kB before it wakes the reader, the same load took ~3 % (issue 17). A 5 ms pause after each read
/// had cost more than it saved: the pause's timer was a wake-up too. .NET's receive first tries the socket without
/// waiting, so bytes that come while the reader works are taken at once; the mark only delays a reader that sleeps.
/// </para>
/// <para>
/// Rows wait for their batch anyway (up to BatchMaxAgeMs, or the pacer's ~10 ms at high rates), so the mark is
/// kept small beside that: at most <c>window</c> of the measured rate and at most <c>messagesPerWake</c> messages,
/// re-measured once a second. When messages stop coming faster than the mark fills (the market quietens, a
/// subscription is dropped), what is below the mark would wait for the next bytes: a timer checks every
/// 5 × <c>window</c> (100 ms by default; each tick is a wake-up too, so it comes seldom) and drops the mark to 1 byte
/// when nothing was read meanwhile, which makes the kernel wake the reader at once for what it holds (Linux re-checks
/// readiness when the mark changes). The mark, as the kernel holds it, is in orderbook_receive_low_water_bytes.
/// </para>
/// </summary>
internal sealed class ReadCoalescer : IDisposable
{
    /// <summary>The kernel's default: wake for every byte.</summary>
    public const int Off = 1;

    /// <summary>Above this the kernel would hold a large part of the receive buffer back.</summary>
    public const int MaxLowWater = 64 * 1024;

    private static readonly TimeSpan Measure = TimeSpan.FromSeconds(1);

    /// <summary>The timer's period, in windows. Every 2 windows cost ~0.4 % of a core more than every 5 at 2,000 msg/s
    /// (3.1–3.5 % against 2.8–3.1 %, side by side).</summary>
    private const int NudgeEvery = 5;

    private readonly Func<int, int> _apply;
    private readonly TimeProvider _time;
    private readonly TimeSpan _window;
    private readonly int _messagesPerWake;
    private readonly Lock _gate = new();
    private ITimer? _nudge;
    private long _measureStart;
    private long _bytes;
    private long _messages;
    private long _lastRead;
    private int _lowWater = Off;
    private bool _disposed;
    private volatile bool _unavailable;

    /// <param name="apply">Sets the socket's low-water mark in bytes and returns the mark the kernel holds; 0 when it
    /// cannot (not a socket we reach, or the platform refuses), which turns coalescing off for the connection.</param>
    /// <param name="window">How long bytes may gather at the measured rate; zero turns coalescing off.</param>
    /// <param name="messagesPerWake">At most this many messages gathered per wake-up, whatever the rate.</param>
    public ReadCoalescer(Func<int, int> apply, TimeProvider time, TimeSpan window, int messagesPerWake)
    {
        _apply = apply;
        _time = time;
        _window = window;
        _messagesPerWake = Math.Max(1, messagesPerWake);
        _measureStart = _lastRead = time.GetTimestamp();
    }

    /// <summary>The low-water mark now, in bytes (1: off).</summary>
    public int LowWater => Volatile.Read(ref _lowWater);

    /// <summary>Nudges so far: times the timer found nothing read for <see cref="NudgeEvery"/> windows and dropped the mark.</summary>
    public long Nudges { get; private set; }

    /// <summary>The reader took <paramref name="bytes"/> in <paramref name="messages"/> messages from one read.</summary>
    public void OnRead(int bytes, int messages)
    {
        if (_window <= TimeSpan.Zero || _unavailable)
        {
            return;
        }

        var now = _time.GetTimestamp();
        Volatile.Write(ref _lastRead, now);
        _bytes += bytes;
        _messages += messages;
        var elapsed = _time.GetElapsedTime(_measureStart, now);
        if (elapsed < Measure)
        {
            return;
        }

        var size = _bytes / (double)Math.Max(1, _messages);
        var byRate = _bytes / elapsed.TotalSeconds * _window.TotalSeconds;
        var wanted = Math.Min(Math.Min(byRate, size * _messagesPerWake), MaxLowWater);
        // Fewer than two messages per wake-up is not worth holding anything back for.
        var lowWater = wanted >= 2 * size ? (int)wanted : Off;
        _measureStart = now;
        _bytes = 0;
        _messages = 0;
        var current = LowWater;
        if (lowWater == current || (lowWater > Off && current > Off && Math.Abs(lowWater - current) < current / 4))
        {
            return;
        }

        Set(lowWater);
        if (lowWater > Off)
        {
            StartNudging();
        }
    }

    /// <summary>Stops holding bytes back, for good: the connection is about to be retired.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _unavailable = true;
        }

        Set(Off);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _nudge?.Dispose();
        }
    }

    /// <summary>Under the lock: the reader's measurement, the timer and <see cref="Stop"/> may set it at once, and a
    /// mark raised after Stop would hold back bytes of a connection being retired.</summary>
    private void Set(int lowWater)
    {
        lock (_gate)
        {
            if (lowWater > Off && _unavailable)
            {
                return;
            }

            var held = _apply(lowWater);
            if (held > 0)
            {
                Volatile.Write(ref _lowWater, held);
            }
            else
            {
                // Cannot set it: stay as the kernel is, and stop trying.
                Volatile.Write(ref _lowWater, Off);
                _unavailable = true;
            }
        }
    }

    private void StartNudging()
    {
        lock (_gate)
        {
            if (_nudge is null && !_disposed)
            {
                var period = NudgeEvery * _window;
                _nudge = _time.CreateTimer(static s => ((ReadCoalescer)s!).Check(), this, period, period);
            }
        }
    }

    /// <summary>On the timer: nothing read for <see cref="NudgeEvery"/> windows while the mark holds bytes back, so drop it. The next
    /// measurement sets it again from the rate that is left.</summary>
    private void Check()
    {
        if (LowWater > Off && _time.GetElapsedTime(Volatile.Read(ref _lastRead)) >= NudgeEvery * _window)
        {
            Nudges++;
            Set(Off);
        }
    }
}
