using OrderBookIngestor.Books;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Unit;

public sealed class DepthTests
{
    private static readonly SymbolTable Symbols = new(new Dictionary<string, int> { ["BTCUSDT"] = 1 });

    private static DepthEvent Diff(long first, long final, long prev, double[]? bids = null, double[]? asks = null)
    {
        bids ??= [];
        asks ??= [];
        var b = System.Buffers.ArrayPool<double>.Shared.Rent(bids.Length + 2);
        var a = System.Buffers.ArrayPool<double>.Shared.Rent(asks.Length + 2);
        bids.CopyTo(b, 0);
        asks.CopyTo(a, 0);
        return new DepthEvent(1, first, final, prev, final, final, 0, b, bids.Length / 2, a, asks.Length / 2);
    }

    [Test]
    public void Parser_ReadsTheDocumentedDepthUpdate()
    {
        var parser = new FrameParser(Symbols);
        Assert.That(parser.Parse(Frames.Utf8(Frames.DepthUpdate), 5, out var r), Is.EqualTo(FrameKind.Depth));
        var d = r.Depth;
        Assert.That((d.FirstUpdateId, d.FinalUpdateId, d.PrevFinalUpdateId, d.EventTimeMs, d.TransactionTimeMs),
            Is.EqualTo((390497796L, 390497878L, 390497794L, 1571889248277L, 1571889248276L)));
        Assert.That(d.BidSpan.ToArray(), Is.EqualTo(new[] { 7403.89, 0.002, 7403.90, 3.906 }));
        Assert.That(d.AskSpan.ToArray(), Is.EqualTo(new[] { 7405.96, 3.340 }));
        d.Release();
    }

    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1","x"]],"a":[]}""", RejectReason.InvalidNumber)]
    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1"]],"a":[]}""", RejectReason.WrongType)]
    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[[1,2]],"a":[]}""", RejectReason.WrongType)]
    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["0","2"]],"a":[]}""", RejectReason.NonPositivePrice)]
    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1","-2"]],"a":[]}""", RejectReason.NegativeValue)]
    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":3,"u":2,"pu":0,"b":[],"a":[]}""", RejectReason.NegativeValue)]
    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}""", RejectReason.MissingField)]
    [TestCase("""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1","2"]],"a":[["3","4"]""", RejectReason.MalformedJson)]
    public void Parser_RejectsBadDepthFrames(string frame, RejectReason reason)
    {
        var parser = new FrameParser(Symbols);
        Assert.That(parser.Parse(Frames.Utf8(frame), 5, out var r), Is.EqualTo(FrameKind.Rejected));
        Assert.That(r.Reason, Is.EqualTo(reason));
    }

    [Test]
    public void Parser_DepthWithManyLevels_GrowsItsPooledArrays()
    {
        var levels = string.Join(",", Enumerable.Range(1, 300).Select(i => $"[\"{i}.5\",\"{i}\"]"));
        var frame = $$"""{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[{{levels}}],"a":[]}""";
        Assert.That(new FrameParser(Symbols).Parse(Frames.Utf8(frame), 5, out var r), Is.EqualTo(FrameKind.Depth));
        Assert.That(r.Depth.BidLevels, Is.EqualTo(300));
        Assert.That(r.Depth.BidSpan[598], Is.EqualTo(300.5));
        r.Depth.Release();
    }

    [Test]
    public void Sequencer_FollowsBinancesSnapshotRules()
    {
        var s = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        Assert.That(s.Offer(Diff(90, 95, 89), 0, out _, out var need), Is.EqualTo(DepthDecision.Accept));
        Assert.That(need, Is.True, "the first diff asks for a snapshot");
        s.Offer(Diff(96, 99, 95), 0, out _, out need);
        Assert.That(need, Is.False, "asked once");
        s.Offer(Diff(100, 104, 99, bids: [100, 5]), 0, out _, out _);
        s.Offer(Diff(105, 110, 104, asks: [101, 0, 102, 7]), 0, out _, out _);

        // lastUpdateId 102: diffs with u < 102 are dropped; the one with 100 <= 102 <= 104 is the first applied.
        Assert.That(s.ApplySnapshot(102, [100, 1, 99, 2], [101, 3], 0, out var gap), Is.EqualTo(SnapshotOutcome.Synced));
        Assert.That(gap, Is.Null);
        Assert.That(s.State, Is.EqualTo(BookState.Synced));
        Assert.That(s.LastAppliedUpdateId, Is.EqualTo(110));
        Assert.That(s.Book.Bids.ToList(), Is.EqualTo(new[] { KeyValuePair.Create(100.0, 5.0), KeyValuePair.Create(99.0, 2.0) }));
        Assert.That(s.Book.Asks.ToList(), Is.EqualTo(new[] { KeyValuePair.Create(102.0, 7.0) }));

        Assert.That(s.Offer(Diff(105, 110, 104), 0, out _, out _), Is.EqualTo(DepthDecision.Duplicate));
        Assert.That(s.Offer(Diff(111, 112, 110, bids: [99, 0]), 0, out _, out _), Is.EqualTo(DepthDecision.Accept));
        Assert.That(s.Book.Bids.Select(kv => kv.Key), Is.EqualTo(new[] { 100.0 }));
    }

    [Test]
    public void Sequencer_APuBreakWritesAGapAndResyncsFromANewSnapshot()
    {
        var s = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        s.Offer(Diff(10, 12, 9), 0, out _, out _);
        s.ApplySnapshot(11, [100, 1], [101, 1], 0, out _);
        s.Offer(Diff(13, 15, 12), 0, out _, out _);
        Assert.That(s.Offer(Diff(20, 22, 19), 1_000, out var gap, out var need), Is.EqualTo(DepthDecision.Accept));
        Assert.That(gap, Is.Not.Null);
        Assert.That((gap!.FirstMissingId, gap.LastMissingId, gap.Reason), Is.EqualTo(((long?)16, (long?)19, GapReason.DepthSequence)));
        Assert.That(need, Is.True);
        Assert.That(s.State, Is.EqualTo(BookState.NeedSnapshot));
        Assert.That(s.ApplySnapshot(23, [100, 2], [101, 2], 0, out _), Is.EqualTo(SnapshotOutcome.AwaitingFirstDiff), "newer than every buffered diff");
        Assert.That(s.Offer(Diff(23, 25, 22), 0, out _, out _), Is.EqualTo(DepthDecision.Accept));
        Assert.That(s.State, Is.EqualTo(BookState.Synced));
        Assert.That(s.Resyncs, Is.EqualTo(1));
    }

    [Test]
    public void Sequencer_JoinsASnapshotThatTheBufferedDiffsContinue()
    {
        // The live USD-M stream: the first buffered diff after lastUpdateId 99 starts above it, its pu is 99.
        var s = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        s.Offer(Diff(90, 95, 89), 0, out _, out _);
        s.Offer(Diff(100, 104, 99, bids: [100, 5]), 0, out _, out _);
        s.Offer(Diff(105, 110, 104, asks: [102, 7]), 0, out _, out _);
        Assert.That(s.ApplySnapshot(99, [100, 1], [101, 3], 0, out var gap), Is.EqualTo(SnapshotOutcome.Synced));
        Assert.That(gap, Is.Null);
        Assert.That(s.LastAppliedUpdateId, Is.EqualTo(110));
        Assert.That(s.Book.Bids.ToList(), Is.EqualTo(new[] { KeyValuePair.Create(100.0, 5.0) }));
        Assert.That(s.Book.Asks.ToList(), Is.EqualTo(new[] { KeyValuePair.Create(101.0, 3.0), KeyValuePair.Create(102.0, 7.0) }));
        Assert.That(s.Resyncs, Is.Zero);

        // Neither relation: the diff after lastUpdateId 97 neither spans it nor continues it, so a hole is possible.
        var old = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        old.Offer(Diff(100, 104, 99), 0, out _, out _);
        Assert.That(old.ApplySnapshot(97, [100, 1], [101, 1], 0, out _), Is.EqualTo(SnapshotOutcome.TooOld));
    }

    [Test]
    public void Sequencer_AwaitingTheFirstDiff_TakesADiffThatContinuesTheSnapshot_WithoutAnotherSnapshot()
    {
        var s = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        s.Offer(Diff(90, 95, 89), 0, out _, out _);
        Assert.That(s.ApplySnapshot(99, [100, 1], [101, 1], 0, out _), Is.EqualTo(SnapshotOutcome.AwaitingFirstDiff), "every buffered diff is older");
        Assert.That(s.Offer(Diff(100, 103, 99, bids: [100, 4]), 0, out var gap, out var need), Is.EqualTo(DepthDecision.Accept));
        Assert.That((s.State, gap, need, s.Resyncs), Is.EqualTo((BookState.Synced, (GapRecord?)null, false, 0)));
        Assert.That(s.Book.Bids.ToList(), Is.EqualTo(new[] { KeyValuePair.Create(100.0, 4.0) }));

        // The documented relation still joins: U <= lastUpdateId <= u.
        var documented = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        documented.Offer(Diff(90, 95, 89), 0, out _, out _);
        documented.ApplySnapshot(101, [100, 1], [101, 1], 0, out _);
        documented.Offer(Diff(100, 103, 99), 0, out _, out need);
        Assert.That((documented.State, need, documented.Resyncs), Is.EqualTo((BookState.Synced, false, 0)));

        // A diff that does neither means the snapshot missed updates: another snapshot.
        var missed = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        missed.Offer(Diff(90, 95, 89), 0, out _, out _);
        missed.ApplySnapshot(99, [100, 1], [101, 1], 0, out _);
        missed.Offer(Diff(101, 103, 100), 0, out _, out need);
        Assert.That((missed.State, need, missed.Resyncs), Is.EqualTo((BookState.NeedSnapshot, true, 1)));
    }

    [Test]
    public void Sequencer_ASnapshotOlderThanTheBufferedDiffsIsRefused()
    {
        var s = new DepthSequencer(1, "BTCUSDT", "btcusdt@depth@100ms");
        s.Offer(Diff(50, 55, 49), 0, out _, out _);
        Assert.That(s.ApplySnapshot(40, [100, 1], [101, 1], 0, out _), Is.EqualTo(SnapshotOutcome.TooOld));
        Assert.That(s.State, Is.EqualTo(BookState.NeedSnapshot));
    }

    [Test]
    public void TopFeatures_MicropriceAndImbalance()
    {
        var row = TopSampler.Features(1, 0, 7, [100, 3, 99, 1], [101, 1, 102, 5]);
        Assert.That(row.Mid, Is.EqualTo(100.5));
        Assert.That(row.Spread, Is.EqualTo(1));
        Assert.That(row.Microprice, Is.EqualTo(((100 * 1) + (101 * 3)) / 4.0));
        Assert.That(row.ImbalanceL1, Is.EqualTo(0.5));
        Assert.That(row.ImbalanceL5, Is.EqualTo((4 - 6) / 10.0));
        Assert.That(double.IsNaN(TopSampler.Features(1, 0, 7, [], [101, 1]).Microprice), Is.True, "an empty side has no features");
    }

    [Test]
    public void Simulator_SameSeedGivesTheSameData()
    {
        // Pinned values: a change here breaks "deterministic from its seed" for everyone's recorded runs.
        var time = new ManualTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
        var market = new Simulator.SimulatedMarket(Simulator.SymbolUniverse.Create(2), 1, time);
        var a = market.Next("btcusdt@bookTicker");
        var again = new Simulator.SimulatedMarket(Simulator.SymbolUniverse.Create(2), 1, time).Next("btcusdt@bookTicker");
        Assert.That(again.Data, Is.EqualTo(a.Data));
        Assert.That(System.Text.Encoding.ASCII.GetString(a.Data), Does.StartWith("{\"e\":\"bookTicker\",\"u\":1000"));
        Assert.That(a.Id, Is.EqualTo(GoldenFirstBookTickerId));
    }

    [Test]
    public void Checkpoints_TakeEachSyncedBookOncePerPeriodAtItsOwnTurn_AndSkipABookOutOfSync()
    {
        var synced = new DepthSequencer(2, "ETHUSDT", "ethusdt@depth@100ms");
        synced.Offer(Diff(100, 104, 99, bids: [100, 5, 98, 2]), 0, out _, out _);
        Assert.That(synced.ApplySnapshot(102, [100, 1, 99, 2], [101, 3, 102, 4, 103, 1], 0, out _), Is.EqualTo(SnapshotOutcome.Synced));
        var unsynced = new DepthSequencer(3, "BNBUSDT", "bnbusdt@depth@100ms");
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_000);
        var checkpoints = new BookCheckpointer(() => [synced, unsynced], new EventBuffers(10), new ManualTimeProvider(t0), TimeSpan.FromSeconds(10), levels: 2);

        Assert.That(checkpoints.Due(t0), Is.Empty, "symbol 2's turn is 2 s into each 10 s period");
        var row = checkpoints.Due(t0.AddSeconds(2)).Single();
        Assert.That((row.SymbolId, row.LastUpdateId, row.ExchangeTimeMs, row.IngestTimeUs, row.FromDaemon), Is.EqualTo((2, 104L, 104L, t0.AddSeconds(2).ToUnixTimeMilliseconds() * 1000, true)),
            "at its last applied diff, stamped with that diff's time, taken now");
        Assert.That((row.Bids, row.Asks), Is.EqualTo((new double[] { 100, 5, 99, 2 }, new double[] { 101, 3, 102, 4 })), "the top 2 levels per side, best first");
        Assert.That(checkpoints.Due(t0.AddSeconds(3)), Is.Empty, "symbol 3 is not in sync; symbol 2 is not due");
        Assert.That(checkpoints.Due(t0.AddSeconds(12.5)).Select(r => r.SymbolId), Is.EqualTo(new[] { 2 }), "once a period");
        Assert.That(checkpoints.Due(t0.AddSeconds(45)).Select(r => r.SymbolId), Is.EqualTo(new[] { 2 }), "after a pause: one row, no catch-up burst");
        Assert.That(checkpoints.Due(t0.AddSeconds(51)), Is.Empty);
        Assert.That(checkpoints.Due(t0.AddSeconds(52)), Has.Count.EqualTo(1), "back on its turn");
    }

    private const long GoldenFirstBookTickerId = 1000677181;
}
