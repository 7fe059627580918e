using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

public sealed class BatchPacerTests
{
    private static readonly TimeSpan MaxAge = TimeSpan.FromMilliseconds(100);

    [Test]
    public void WithNothingKnownAboutTheRate_ASmallBatchWaitsForItsAge()
    {
        var time = new ManualTimeProvider();
        var pacer = new BatchPacer(time, targetRows: 100, maxRows: 10_000, MaxAge);
        Assert.That(pacer.Linger(waitingRows: 3), Is.EqualTo(MaxAge));
        time.Advance(TimeSpan.FromMilliseconds(30));
        Assert.That(pacer.Linger(waitingRows: 3), Is.EqualTo(TimeSpan.FromMilliseconds(70)), "the age counts from the previous drain");
    }

    [Test]
    public void RowsAlreadyWaiting_AtTheTargetGoAtOnce_ButNoMoreOftenThanTheMinimumInterval()
    {
        var time = new ManualTimeProvider();
        var pacer = new BatchPacer(time, targetRows: 100, maxRows: 10_000, MaxAge);
        time.Advance(TimeSpan.FromMilliseconds(4));
        pacer.Drained(400);
        time.Advance(TimeSpan.FromMilliseconds(3));
        // 300 rows came during a 3 ms COPY: they wait until 10 ms after the previous drain, and grow the batch.
        Assert.That(pacer.Linger(waitingRows: 300), Is.EqualTo(BatchPacer.MinInterval - TimeSpan.FromMilliseconds(3)));
        time.Advance(TimeSpan.FromMilliseconds(7));
        Assert.That(pacer.Linger(waitingRows: 1_000), Is.EqualTo(TimeSpan.Zero));
        Assert.That(pacer.Linger(waitingRows: 10_000), Is.EqualTo(TimeSpan.Zero), "a full batch never waits");
    }

    [Test]
    public void AFullBatchGoesAtOnce_EvenRightAfterTheLast()
    {
        var time = new ManualTimeProvider();
        var pacer = new BatchPacer(time, targetRows: 100, maxRows: 10_000, MaxAge);
        pacer.Drained(10_000);
        Assert.That(pacer.Linger(waitingRows: 10_000), Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void AtASteadyRate_TheBatchWaitsAboutAsLongAsTheTargetTakesToArrive()
    {
        // 10,000 rows/s: 100 rows take 10 ms; 3 ms of them have passed (the previous COPY) when the flusher looks.
        var (time, pacer) = AtTenThousandRowsPerSecond();

        Assert.That(pacer.RowsPerSecond, Is.EqualTo(10_000).Within(1));
        time.Advance(TimeSpan.FromMilliseconds(3));
        Assert.That(pacer.Linger(waitingRows: 30).TotalMilliseconds, Is.EqualTo(7).Within(0.01));
    }

    [Test]
    public void AtALowRate_NoBatchWaitsLongerThanItsAge()
    {
        // 100 rows/s: the target would take a second; the age caps the wait.
        var time = new ManualTimeProvider();
        var pacer = new BatchPacer(time, targetRows: 100, maxRows: 10_000, MaxAge);
        time.Advance(TimeSpan.FromMilliseconds(100));
        pacer.Drained(10);
        time.Advance(TimeSpan.FromMilliseconds(20));
        Assert.That(pacer.Linger(waitingRows: 2), Is.EqualTo(TimeSpan.FromMilliseconds(80)));
    }

    [Test]
    public void AfterAQuietSpell_TheFirstRowGoesAtOnce()
    {
        var time = new ManualTimeProvider();
        var pacer = new BatchPacer(time, targetRows: 100, maxRows: 10_000, MaxAge);
        time.Advance(TimeSpan.FromMilliseconds(10));
        pacer.Drained(100);
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.That(pacer.Linger(waitingRows: 1), Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void ABurstRaisesTheRateEstimate_AndShortensTheNextWait()
    {
        var time = new ManualTimeProvider();
        var pacer = new BatchPacer(time, targetRows: 100, maxRows: 10_000, MaxAge);
        time.Advance(TimeSpan.FromMilliseconds(100));
        pacer.Drained(10); // 100 rows/s
        var slow = pacer.Linger(waitingRows: 1);
        time.Advance(TimeSpan.FromMilliseconds(1));
        pacer.Drained(1_000); // a burst: 1,000 rows in 1 ms
        Assert.That(pacer.Linger(waitingRows: 1), Is.LessThan(slow));
        Assert.That(pacer.Linger(waitingRows: 1), Is.EqualTo(BatchPacer.MinInterval), "at a high rate batches grow instead of multiplying");
    }

    [Test]
    public void ATimerThatWakesLate_DoesNotStretchTheCadence()
    {
        // 10,000 rows/s: one batch every 10 ms. The timer fires 1.5 ms late; the next wait is 1.5 ms shorter, so batches
        // still go every 10 ms on average instead of every 11.5.
        var (time, pacer) = AtTenThousandRowsPerSecond();

        time.Advance(TimeSpan.FromMilliseconds(3)); // the COPY
        Assert.That(pacer.Linger(waitingRows: 30).TotalMilliseconds, Is.EqualTo(7).Within(0.01));
        time.Advance(TimeSpan.FromMilliseconds(8.5)); // 1.5 ms late
        pacer.Drained(115);
        time.Advance(TimeSpan.FromMilliseconds(3));
        Assert.That(pacer.Linger(waitingRows: 30).TotalMilliseconds, Is.EqualTo(5.5).Within(0.01));
    }

    [Test]
    public void ABatchDrainedLateForAnyOtherReason_CountsItsWaitFromTheDrain()
    {
        var (time, pacer) = AtTenThousandRowsPerSecond();

        // Due in 10 ms, drained 30 ms later (a slow COPY of another table held the loop): no credit, or the next batches
        // would go back to back and make up for time no timer lost.
        Assert.That(pacer.Linger(waitingRows: 1).TotalMilliseconds, Is.EqualTo(10).Within(0.01));
        time.Advance(TimeSpan.FromMilliseconds(40));
        pacer.Drained(400);
        Assert.That(pacer.Linger(waitingRows: 1), Is.EqualTo(BatchPacer.MinInterval));

        // Nor when no timer was set at all: rows already at the target go at once, and the next wait counts from then.
        time.Advance(TimeSpan.FromMilliseconds(12));
        Assert.That(pacer.Linger(waitingRows: 100), Is.EqualTo(TimeSpan.Zero));
        time.Advance(TimeSpan.FromMilliseconds(1));
        pacer.Drained(130); // still 10,000 rows/s
        Assert.That(pacer.Linger(waitingRows: 1), Is.EqualTo(BatchPacer.MinInterval));
    }

    /// <summary>A pacer that has drained 100 rows every 10 ms five times: 10,000 rows/s, one batch per 10 ms.</summary>
    private static (ManualTimeProvider Time, BatchPacer Pacer) AtTenThousandRowsPerSecond()
    {
        var time = new ManualTimeProvider();
        var pacer = new BatchPacer(time, targetRows: 100, maxRows: 10_000, MaxAge);
        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(10));
            pacer.Drained(100);
        }

        return (time, pacer);
    }
}
