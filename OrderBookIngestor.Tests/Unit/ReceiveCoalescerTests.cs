using OrderBookIngestor.Feeds;

namespace OrderBookIngestor.Tests.Unit;

public sealed class ReceiveCoalescerTests
{
    private const long T0 = 1_764_000_000_000;

    [Test]
    public void OnAQuietConnection_AMessageThatWokeTheLoop_IsFollowedByOnePause_LessTheTimeItsHandlingTook()
    {
        var c = new ReceiveCoalescer(5);
        c.OnMessage(T0, woken: true);
        Assert.That(c.TakePause(T0 + 2), Is.EqualTo(3));
        Assert.That(c.TakePause(T0 + 2), Is.Zero, "taken once");

        c.OnMessage(T0 + 10, woken: true);
        Assert.That(c.TakePause(T0 + 16), Is.Zero, "handling took longer than the pause");
    }

    [Test]
    public void AMessageReadFromWhatWasAlreadyBuffered_IsNotFollowedByAPause()
    {
        var c = new ReceiveCoalescer(5);
        c.OnMessage(T0, woken: false);
        Assert.That(c.TakePause(T0), Is.Zero);
    }

    [Test]
    public void ABusyConnection_NeverPauses_AndPausesAgainOnceItIsQuiet()
    {
        var c = new ReceiveCoalescer(5);
        c.OnMessage(T0, woken: true);
        c.TakePause(T0);
        // 5,000 messages in the next second, every one of them waking the loop.
        for (var i = 1; i <= 5_000; i++)
        {
            c.OnMessage(T0 + i / 5, woken: true);
            c.TakePause(T0 + i / 5);
        }

        c.OnMessage(T0 + 1000, woken: true);
        Assert.That(c.Quiet, Is.False);
        Assert.That(c.TakePause(T0 + 1000), Is.Zero, "busy: no pause, no added latency");

        // A second with 100 messages: quiet again.
        for (var i = 1; i <= 100; i++)
        {
            c.OnMessage(T0 + 1000 + i * 10, woken: true);
        }

        Assert.That(c.Quiet, Is.True);
        Assert.That(c.TakePause(T0 + 2000), Is.EqualTo(5));
    }
}
