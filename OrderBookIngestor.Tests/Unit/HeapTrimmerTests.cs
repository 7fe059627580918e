using Microsoft.Extensions.Logging.Abstractions;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Tests.Unit;

public sealed class HeapTrimmerTests
{
    private const long Mb = 1 << 20;

    [Test]
    public void AHeapWithinTheSlack_IsLeftToTheGC_AndOnePastItIsCollected_ThenMeasuredFromWhatWasLeft()
    {
        var heap = 25 * Mb;
        var collections = 0;
        var metrics = new IngestorMetrics(TimeProvider.System);
        var trimmer = new HeapTrimmer(TimeProvider.System, 32, metrics, NullLogger.Instance, () => heap, () =>
        {
            collections++;
            heap = 24 * Mb;
        });

        heap = 57 * Mb; // 32 MB past the start: not more than the slack
        Assert.That(trimmer.Check(), Is.False);
        heap = 58 * Mb;
        Assert.That(trimmer.Check(), Is.True);
        Assert.That((collections, metrics.HeapTrims), Is.EqualTo((1, 1L)));

        // Measured from the 24 MB the collection left.
        heap = 56 * Mb;
        Assert.That(trimmer.Check(), Is.False);
        heap = 57 * Mb;
        Assert.That(trimmer.Check(), Is.True);
        Assert.That(collections, Is.EqualTo(2));
    }

    [Test]
    public void WhenTheGCCollectsOnItsOwn_TheMarginCountsFromWhereItLeftTheHeap()
    {
        var heap = 40 * Mb;
        var collections = 0;
        var trimmer = new HeapTrimmer(TimeProvider.System, 32, new IngestorMetrics(TimeProvider.System), NullLogger.Instance, () => heap, () => collections++);

        heap = 20 * Mb;
        Assert.That(trimmer.Check(), Is.False);
        heap = 53 * Mb; // 33 MB past the GC's own result, 13 MB past the start
        Assert.That(trimmer.Check(), Is.True);
        Assert.That(collections, Is.EqualTo(1));
    }
}
