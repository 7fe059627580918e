using OrderBookIngestor.Feeds;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

public sealed class ReadCoalescerTests
{
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(20);

    /// <summary>Reads of <paramref name="messages"/> messages of <paramref name="size"/> bytes every <paramref name="every"/>, for <paramref name="span"/>.</summary>
    private static void Feed(ReadCoalescer c, ManualTimeProvider time, TimeSpan every, TimeSpan span, int messages, int size)
    {
        for (var t = TimeSpan.Zero; t <= span; t += every)
        {
            time.Advance(every);
            c.OnRead(messages * size, messages);
        }
    }

    /// <summary>A coalescer whose socket takes every mark asked for, and the marks it was asked for, in order.</summary>
    private static (ReadCoalescer Coalescer, ManualTimeProvider Time, List<int> Set) Recording()
    {
        var time = new ManualTimeProvider();
        var set = new List<int>();
        return (new ReadCoalescer(b => { set.Add(b); return b; }, time, Window, messagesPerWake: 25), time, set);
    }

    [Test]
    public void ABusyConnection_GathersAtMostTheWindowOfItsRate_AndAtMostItsMessageCap()
    {
        var (c, time, set) = Recording();
        using var _ = c;
        // 1 MB/s in 100-byte messages: 20 ms of it is 20,000 bytes, 25 messages are 2,500.
        Feed(c, time, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1), 10, 100);
        Assert.That(set, Is.EqualTo(new[] { 2_500 }));
        Assert.That(c.LowWater, Is.EqualTo(2_500));

        // 50 kB/s in 100-byte messages: 20 ms is 1,000 bytes (10 messages), below the cap. A quarter off or more is re-set.
        // (The measured second also holds the last read of the busy one: a little over 1,000.)
        Feed(c, time, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1), 5, 100);
        Assert.That(c.LowWater, Is.InRange(1_000, 1_050));
        Assert.That(set, Has.Count.EqualTo(2));
    }

    [Test]
    public void AQuietConnection_IsNotHeldBack()
    {
        var (c, time, set) = Recording();
        using var _ = c;
        // 10 messages a second: 20 ms of them is a fifth of one.
        Feed(c, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(3), 1, 200);
        Assert.That(set, Is.Empty);
        Assert.That(c.LowWater, Is.EqualTo(ReadCoalescer.Off));
    }

    [Test]
    public void WhenReadsStop_TheTimerDropsTheMark_SoWhatTheKernelHoldsIsRead()
    {
        var (c, time, set) = Recording();
        using var _ = c;
        Feed(c, time, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1), 10, 100);
        Assert.That(c.LowWater, Is.EqualTo(2_500));

        // The market goes quiet: within five windows (100 ms) the mark is back to a byte, once.
        time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.That(c.LowWater, Is.EqualTo(2_500), "not while reads may still come");
        time.Advance(TimeSpan.FromMilliseconds(101));
        Assert.That(c.LowWater, Is.EqualTo(ReadCoalescer.Off));
        Assert.That(c.Nudges, Is.EqualTo(1));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(set, Is.EqualTo(new[] { 2_500, ReadCoalescer.Off }), "set once, dropped once");

        // Reads that keep coming are never nudged.
        Feed(c, time, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(2), 10, 100);
        Assert.That(c.LowWater, Is.EqualTo(2_500));
        Assert.That(c.Nudges, Is.EqualTo(1));
    }

    [Test]
    public void ASocketThatRefusesTheMark_TurnsCoalescingOff_ForGood()
    {
        var time = new ManualTimeProvider();
        var calls = 0;
        using var c = new ReadCoalescer(_ => { calls++; return 0; }, time, Window, messagesPerWake: 25);
        Feed(c, time, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(3), 10, 100);
        Assert.That(calls, Is.EqualTo(1));
        Assert.That(c.LowWater, Is.EqualTo(ReadCoalescer.Off));
    }

    [Test]
    public void AZeroWindow_NeverTouchesTheSocket()
    {
        var time = new ManualTimeProvider();
        var calls = 0;
        using var c = new ReadCoalescer(_ => { calls++; return 1; }, time, TimeSpan.Zero, messagesPerWake: 25);
        Feed(c, time, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(2), 10, 100);
        Assert.That(calls, Is.Zero);
    }

    [Test]
    public void Stopped_TheMarkIsDropped_AndNeverRaisedAgain()
    {
        var (c, time, set) = Recording();
        using var _ = c;
        Feed(c, time, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1), 10, 100);
        c.Stop();
        Assert.That(c.LowWater, Is.EqualTo(ReadCoalescer.Off));
        Feed(c, time, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(3), 10, 100);
        Assert.That(set, Is.EqualTo(new[] { 2_500, ReadCoalescer.Off }), "a connection being retired reads everything at once");
    }
}
