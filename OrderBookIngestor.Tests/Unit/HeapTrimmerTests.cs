using System.Runtime.InteropServices;
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
        }, committedBytes: () => heap);

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
        var trimmer = new HeapTrimmer(TimeProvider.System, 32, new IngestorMetrics(TimeProvider.System), NullLogger.Instance, () => heap, () => collections++,
            committedBytes: () => heap);

        heap = 20 * Mb;
        Assert.That(trimmer.Check(), Is.False);
        heap = 53 * Mb; // 33 MB past the GC's own result, 13 MB past the start
        Assert.That(trimmer.Check(), Is.True);
        Assert.That(collections, Is.EqualTo(1));
    }

    [Test]
    public void MemoryTheGCKeepsCommittedButEmpty_PastTheSlack_IsCollectedToo()
    {
        var heap = 40 * Mb;
        var committed = 45 * Mb;
        var collections = 0;
        var trimmer = new HeapTrimmer(TimeProvider.System, 32, new IngestorMetrics(TimeProvider.System), NullLogger.Instance, () => heap, () =>
        {
            collections++;
            committed = heap + 4 * Mb;
        }, () => committed);

        committed = 72 * Mb; // 32 MB more than the heap: not more than the slack
        Assert.That(trimmer.Check(), Is.False);
        committed = 73 * Mb;
        Assert.That(trimmer.Check(), Is.True, "the heap has not grown, but the GC holds 33 MB it does not use");
        Assert.That(collections, Is.EqualTo(1));
        Assert.That(trimmer.Check(), Is.False, "given back");
    }

    [Test]
    public void MemoryTheGCKeepsAfterACollection_DoesNotAskForOneEveryCheck()
    {
        var heap = 30 * Mb;
        var committed = 30 * Mb;
        var collections = 0;
        var trimmer = new HeapTrimmer(TimeProvider.System, 32, new IngestorMetrics(TimeProvider.System), NullLogger.Instance, () => heap, () => collections++,
            () => committed);

        committed = 100 * Mb; // the collection gives nothing back: 70 MB stay idle
        Assert.That(trimmer.Check(), Is.True);
        Assert.That(trimmer.Check(), Is.False, "the 70 MB it keeps are its own business");
        committed = 103 * Mb;
        Assert.That(trimmer.Check(), Is.False);
        committed = 103 * Mb + 33 * Mb;
        Assert.That(trimmer.Check(), Is.True, "33 MB more than the collection left idle");
        Assert.That(collections, Is.EqualTo(2));
    }

    [Test]
    public void EveryLook_GivesFreeMallocMemoryBack_WhetherOrNotItCollects()
    {
        var heap = 30 * Mb;
        var (collections, nativeTrims) = (0, 0);
        var trimmer = new HeapTrimmer(TimeProvider.System, 32, new IngestorMetrics(TimeProvider.System), NullLogger.Instance, () => heap, () => collections++,
            () => heap, () =>
            {
                nativeTrims++;
                return true;
            });

        Assert.That(trimmer.Check(), Is.False);
        heap = 63 * Mb;
        Assert.That(trimmer.Check(), Is.True);
        Assert.That((collections, nativeTrims), Is.EqualTo((1, 2)));
    }

    [Test]
    public void NativeHeapTrim_GivesFreedMallocMemoryBackToTheSystem()
    {
        // 32 MB in small blocks (malloc's arenas, not mmap), every page touched; all but the last block freed, so
        // free() cannot give the memory back from the arena's top and it stays resident until trimmed.
        const int blocks = 200_000, size = 160;
        var pointers = new IntPtr[blocks];
        for (var i = 0; i < blocks; i++)
        {
            pointers[i] = Marshal.AllocHGlobal(size);
            for (var offset = 0; offset < size; offset += 8)
            {
                Marshal.WriteInt64(pointers[i], offset, i);
            }
        }

        for (var i = 0; i < blocks - 1; i++)
        {
            Marshal.FreeHGlobal(pointers[i]);
        }

        try
        {
            var before = ResidentAnonymousKilobytes();
            Assert.That(NativeHeap.Trim(), Is.True);
            var after = ResidentAnonymousKilobytes();
            Assert.That(before - after, Is.GreaterThan(16 * 1024), $"RssAnon {before} kB before the trim, {after} kB after");
        }
        finally
        {
            Marshal.FreeHGlobal(pointers[^1]);
        }
    }

    private static long ResidentAnonymousKilobytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("RssAnon:", StringComparison.Ordinal));
        return long.Parse(line.AsSpan("RssAnon:".Length).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
