using System.Threading.Channels;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>The per-table buffer: bounded, FIFO, nothing lost or invented, and its memory follows a backlog down.</summary>
public sealed class SegmentedChannelTests
{
    /// <summary>Bounds every await, so that a wake-up that never comes fails the test instead of hanging it.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Test]
    public void ABacklogOfManySegments_ComesOutInOrder_AndItsSegmentsAreGivenBackOnceDrained()
    {
        var channel = new SegmentedChannel<TradeEvent>(1_000_000);
        var n = channel.SegmentLength * 40 + 7;
        for (var i = 0; i < n; i++)
        {
            Assert.That(channel.Writer.TryWrite(Trade(i)), Is.True);
        }

        Assert.That(channel.Segments, Is.EqualTo(41));
        Assert.That(channel.Bytes, Is.GreaterThan(40L * 64 * 1000), "about 64 kB a segment");
        Assert.That(channel.Reader.Count, Is.EqualTo(n));
        for (var i = 0; i < n; i++)
        {
            Assert.That(channel.Reader.TryRead(out var trade), Is.True);
            if (trade.AggTradeId != i)
            {
                Assert.Fail($"item {i} came out as {trade.AggTradeId}");
            }
        }

        Assert.That(channel.Reader.TryRead(out _), Is.False);
        Assert.That(channel.Reader.Count, Is.Zero);
        // The one the channel writes into next, and the spares.
        Assert.That(channel.Segments, Is.EqualTo(1 + SegmentedChannel<TradeEvent>.MaxSpareSegments));

        // The spares serve the next backlog without allocating.
        for (var i = 0; i < channel.SegmentLength * 10; i++)
        {
            channel.Writer.TryWrite(Trade(i));
        }

        Assert.That(channel.Segments, Is.EqualTo(1 + SegmentedChannel<TradeEvent>.MaxSpareSegments));
    }

    [Test]
    public void AnEmptiedChannel_WritesFromItsSegmentsStartAgain_WithoutAllocating()
    {
        var channel = new SegmentedChannel<int>(100);
        for (var round = 0; round < 10_000; round++)
        {
            channel.Writer.TryWrite(round);
            channel.Writer.TryWrite(-round);
            Assert.That(channel.Reader.TryRead(out var a) && channel.Reader.TryRead(out var b) && a == round && b == -round, Is.True);
        }

        Assert.That(channel.Segments, Is.EqualTo(1));
    }

    [Test]
    public async Task AFullChannel_RefusesTryWrite_AndAWriterWaitsForRoom()
    {
        var channel = new SegmentedChannel<int>(3);
        Assert.That(channel.Capacity, Is.EqualTo(3));
        Assert.That(channel.Writer.TryWrite(1) && channel.Writer.TryWrite(2) && channel.Writer.TryWrite(3), Is.True);
        Assert.That(channel.Writer.TryWrite(4), Is.False, "full");
        var waiting = channel.Writer.WriteAsync(4).AsTask();
        Assert.That(waiting.IsCompleted, Is.False, "no room: the writer waits");
        Assert.That(channel.WaitingWriters, Is.EqualTo(1), "the wait is visible (/metrics: readers waiting)");

        Assert.That(channel.Reader.TryRead(out var first), Is.True);
        Assert.That(first, Is.EqualTo(1));
        await waiting.WaitAsync(Bound);
        Assert.That(channel.WaitingWriters, Is.Zero);
        Assert.That(Drain(channel), Is.EqualTo(new[] { 2, 3, 4 }));
    }

    [Test]
    public async Task AWaitingWriter_WhoseTokenIsCancelled_GivesUpWithoutWriting()
    {
        var channel = new SegmentedChannel<int>(1);
        channel.Writer.TryWrite(1);
        using var cts = new CancellationTokenSource();
        var waiting = channel.Writer.WriteAsync(2, cts.Token).AsTask();
        Assert.That(waiting.IsCompleted, Is.False);
        Assert.That(channel.WaitingWriters, Is.EqualTo(1));
        await cts.CancelAsync();
        Assert.That(async () => await waiting.WaitAsync(Bound), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(channel.WaitingWriters, Is.Zero, "a cancelled wait is no longer counted");

        Assert.That(Drain(channel), Is.EqualTo(new[] { 1 }));
        Assert.That(channel.Writer.TryWrite(3), Is.True, "the cancelled wait left nothing behind");
        Assert.That(Drain(channel), Is.EqualTo(new[] { 3 }));
    }

    [Test]
    public async Task AWaitingReader_IsWokenByAWrite_OrByItsToken_AndCanWaitAgainAfterEither()
    {
        var channel = new SegmentedChannel<int>(10);
        for (var round = 0; round < 3; round++)
        {
            var wait = channel.Reader.WaitToReadAsync().AsTask();
            Assert.That(wait.IsCompleted, Is.False, "empty: the reader waits");
            channel.Writer.TryWrite(round);
            Assert.That(await wait.WaitAsync(Bound), Is.True);
            Assert.That(Drain(channel), Is.EqualTo(new[] { round }));

            using var cts = new CancellationTokenSource();
            var cancelled = channel.Reader.WaitToReadAsync(cts.Token).AsTask();
            Assert.That(cancelled.IsCompleted, Is.False);
            await cts.CancelAsync();
            Assert.That(async () => await cancelled.WaitAsync(Bound), Throws.InstanceOf<OperationCanceledException>());
        }
    }

    [Test]
    public async Task Completing_LetsTheReaderTakeEverythingWrittenBefore_ThenEnds_AndRefusesWriters()
    {
        var channel = new SegmentedChannel<int>(2);
        channel.Writer.TryWrite(1);
        channel.Writer.TryWrite(2);
        var blocked = channel.Writer.WriteAsync(3).AsTask();
        Assert.That(blocked.IsCompleted, Is.False);

        Assert.That(channel.Writer.TryComplete(), Is.True);
        Assert.That(channel.Writer.TryComplete(), Is.False, "once");
        Assert.That(async () => await blocked.WaitAsync(Bound), Throws.InstanceOf<ChannelClosedException>(), "a writer waiting for room is told");
        Assert.That(channel.Writer.TryWrite(4), Is.False);
        Assert.That(channel.Reader.Completion.IsCompleted, Is.False, "two items still to read");

        Assert.That(await channel.Reader.WaitToReadAsync().AsTask().WaitAsync(Bound), Is.True);
        Assert.That(Drain(channel), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(await channel.Reader.WaitToReadAsync().AsTask().WaitAsync(Bound), Is.False);
        await channel.Reader.Completion.WaitAsync(Bound);
    }

    [Test]
    public async Task Completing_WakesAWaitingReader_AndAnErrorReachesIt()
    {
        var plain = new SegmentedChannel<int>(2);
        var wait = plain.Reader.WaitToReadAsync().AsTask();
        plain.Writer.TryComplete();
        Assert.That(await wait.WaitAsync(Bound), Is.False);

        var failed = new SegmentedChannel<int>(2);
        failed.Writer.TryWrite(1);
        failed.Writer.TryComplete(new InvalidOperationException("readers failed"));
        Assert.That(Drain(failed), Is.EqualTo(new[] { 1 }), "what was written before still comes out");
        Assert.That(async () => await failed.Reader.WaitToReadAsync(), Throws.InvalidOperationException.With.Message.EqualTo("readers failed"));
        Assert.That(async () => await failed.Reader.Completion.WaitAsync(Bound), Throws.InvalidOperationException);
    }

    /// <summary>Many writers against one reader that reads as the flusher does (wait, then take what is there), with a
    /// capacity far below the total so that writers wait for room thousands of times: every item arrives once, in each
    /// writer's order.</summary>
    [Test]
    public async Task ManyWritersAndOneReader_UnderBackpressure_LoseNothingAndKeepEachWritersOrder()
    {
        const int Writers = 4;
        const int PerWriter = 200_000;
        var channel = new SegmentedChannel<(int Writer, int Seq)>(1_000);
        var next = new int[Writers];
        var received = 0;
        var reader = Task.Run(async () =>
        {
            var batches = 0;
            while (await channel.Reader.WaitToReadAsync())
            {
                while (channel.Reader.TryRead(out var item))
                {
                    if (item.Seq != next[item.Writer])
                    {
                        throw new InvalidOperationException($"writer {item.Writer}: {item.Seq} came when {next[item.Writer]} was due");
                    }

                    next[item.Writer]++;
                    received++;
                }

                if (++batches % 7 == 0)
                {
                    await Task.Yield();
                }
            }
        });
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < PerWriter; i++)
            {
                if (!channel.Writer.TryWrite((w, i)))
                {
                    await channel.Writer.WriteAsync((w, i));
                }
            }
        })).ToArray();

        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromMinutes(2));
        channel.Writer.TryComplete();
        await reader.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.That(received, Is.EqualTo(Writers * PerWriter));
        Assert.That(next, Is.All.EqualTo(PerWriter));
        Assert.That(channel.Segments, Is.LessThanOrEqualTo(1 + SegmentedChannel<(int, int)>.MaxSpareSegments));
    }

    private static List<int> Drain(SegmentedChannel<int> channel)
    {
        var items = new List<int>();
        while (channel.Reader.TryRead(out var item))
        {
            items.Add(item);
        }

        return items;
    }

    private static TradeEvent Trade(long id) => new(1, id, id, id, id, 100.5, 0.01, id, id, false);
}
