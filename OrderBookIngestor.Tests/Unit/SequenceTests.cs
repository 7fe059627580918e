using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Tests.Unit;

public sealed class SequenceTests
{
    [Test]
    public void TradeSequence_ContiguousIdsAreAccepted_ReplaysAreDuplicates()
    {
        var s = new TradeSequence(1, "btcusdt@aggTrade", 0, 0);
        Assert.That(s.Offer(100, 1, out _, out _), Is.EqualTo(TradeDecision.Accept));
        Assert.That(s.Offer(101, 2, out _, out _), Is.EqualTo(TradeDecision.Accept));
        Assert.That(s.Offer(101, 2, out _, out _), Is.EqualTo(TradeDecision.Duplicate));
        Assert.That(s.Offer(100, 1, out _, out _), Is.EqualTo(TradeDecision.Duplicate));
        Assert.That(s.Highest, Is.EqualTo(101));
    }

    [Test]
    public void TradeSequence_AHoleIsReported_AndFilledIdByIdFromLateFramesOrBackfill()
    {
        var s = new TradeSequence(1, "btcusdt@aggTrade", 100, 1);
        Assert.That(s.Offer(106, 9, out var from, out var to), Is.EqualTo(TradeDecision.AcceptWithGap));
        Assert.That((from, to), Is.EqualTo((101L, 105L)));
        Assert.That(s.Offer(103, 5, out _, out _), Is.EqualTo(TradeDecision.Accept), "a late live frame fills its id");
        Assert.That(s.Offer(103, 5, out _, out _), Is.EqualTo(TradeDecision.Duplicate));
        Assert.That(s.OfferBackfilled(101), Is.True);
        Assert.That(s.OfferBackfilled(101), Is.False, "backfill never stores an id twice");
        Assert.That(s.OfferBackfilled(103), Is.False);
        Assert.That(s.OfferBackfilled(106), Is.False, "ids outside the hole are not backfilled");
        Assert.That(s.StillMissing(101, 105), Is.EqualTo(new[] { (102L, 102L), (104L, 105L) }).AsCollection.Or.EquivalentTo(new[] { (102L, 102L), (104L, 105L) }));
        s.Abandon(101, 105);
        Assert.That(s.MissingRanges, Is.Zero);
        Assert.That(s.Offer(104, 6, out _, out _), Is.EqualTo(TradeDecision.Duplicate), "an abandoned id is in the ledger; a very late frame is not stored twice");
    }

    [Test]
    public void TradeSequence_AfterARestart_TheFirstLiveIdRevealsTheDowntime()
    {
        var s = new TradeSequence(1, "btcusdt@aggTrade", highestStored: 500, highestStoredTimeMs: 1000);
        Assert.That(s.Offer(520, 2000, out var from, out var to), Is.EqualTo(TradeDecision.AcceptWithGap));
        Assert.That((from, to), Is.EqualTo((501L, 519L)));
    }

    [Test]
    public void RecentIds_DropReplaysAndOverlap_KeepLateNewIds()
    {
        var s = new RecentIdSequence(1, "btcusdt@bookTicker", 0);
        Assert.That(s.Offer(10, 1, out var gap, 0), Is.EqualTo(RecentIdSequence.Decision.Accept));
        Assert.That(gap, Is.Null, "no earlier data, no gap");
        Assert.That(s.Offer(20, 2, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Accept));
        Assert.That(s.Offer(10, 1, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Duplicate));
        Assert.That(s.Offer(15, 1, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Accept), "late but never seen: kept");
        Assert.That(s.Offer(15, 1, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Duplicate));
    }

    [Test]
    public void RecentIds_IdsOlderThanTheWindowAreStale()
    {
        var s = new RecentIdSequence(1, "btcusdt@bookTicker", 0);
        for (var id = 1000; id < 1000 + (RecentIdSequence.Window * 2); id++)
        {
            s.Offer(id, id, out _, 0);
        }

        Assert.That(s.Offer(1000, 1, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Stale), "old id, old time: a replay");
        Assert.That(s.Offer(1000 + (RecentIdSequence.Window * 2), 5, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Accept));
    }

    [Test]
    public void RecentIds_DecideAsTheWindowOfTheLastAcceptedIdsSays_AcrossManyWraps()
    {
        // A reference kept the plain way (a queue of the last Window accepted ids) against mostly rising ids with replays,
        // overlap and late frames, as a rotation or a confused server produces them.
        var s = new RecentIdSequence(1, "btcusdt@bookTicker", 0);
        var window = new Queue<long>();
        long highest = 0, lastTime = 0;
        var random = new Random(17);
        var decisions = new Dictionary<RecentIdSequence.Decision, int>();
        for (var i = 0; i < 20_000; i++)
        {
            var id = random.Next(10) switch
            {
                0 => Math.Max(1, highest - random.Next(2 * RecentIdSequence.Window)),
                1 => Math.Max(1, highest - random.Next(4)),
                _ => highest + 1 + random.Next(3),
            };
            var time = random.Next(8) == 0 ? Math.Max(0, lastTime - 50) : lastTime + random.Next(3);
            RecentIdSequence.Decision expected;
            if (id <= highest && window.Contains(id))
            {
                expected = RecentIdSequence.Decision.Duplicate;
            }
            else if (id <= highest && window.Count == RecentIdSequence.Window && id < window.Peek() && time < lastTime)
            {
                expected = RecentIdSequence.Decision.Stale;
            }
            else
            {
                expected = RecentIdSequence.Decision.Accept;
                if (window.Count == RecentIdSequence.Window)
                {
                    window.Dequeue();
                }

                window.Enqueue(id);
                highest = Math.Max(highest, id);
                lastTime = Math.Max(lastTime, time);
            }

            Assert.That(s.Offer(id, time, out _, 0), Is.EqualTo(expected), $"offer {i}: id {id}, time {time}");
            decisions[expected] = decisions.GetValueOrDefault(expected) + 1;
        }

        Assert.That(decisions.Keys, Is.EquivalentTo(Enum.GetValues<RecentIdSequence.Decision>()), "every kind of decision was exercised");
    }

    [Test]
    public void RecentIds_ACorruptedHighIdDoesNotSilenceGenuineFrames()
    {
        var s = new RecentIdSequence(1, "btcusdt@bookTicker", 0);
        for (var id = 100; id < 100 + (RecentIdSequence.Window * 2); id++)
        {
            s.Offer(id, 1_000 + id, out _, 0);
        }

        Assert.That(s.Offer(9_999_999_999, 5_000, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Accept), "a frame with a wild id (it passed validation)");
        Assert.That(s.Offer(100 + (RecentIdSequence.Window * 2), 5_001, out _, 0), Is.EqualTo(RecentIdSequence.Decision.Accept),
            "the next genuine frame carries a current time: new, though far below the highest id");
    }

    [Test]
    public void RecentIds_TheFirstFrameAfterAnInterruptionClosesAGap()
    {
        var s = new RecentIdSequence(7, "btcusdt@bookTicker", lastStoredTimeMs: 5_000);
        s.Offer(1, 9_000, out var downtime, 9_001);
        Assert.That(downtime, Is.EqualTo(new GapRecord(7, "btcusdt@bookTicker", 5_000, 9_000, null, null, GapReason.DaemonDown, 9_001)));

        s.Offer(2, 10_000, out var none, 10_001);
        Assert.That(none, Is.Null);
        s.Interrupt(sinceMs: 12_000);
        s.Offer(3, 15_000, out var disconnected, 15_002);
        Assert.That(disconnected!.Reason, Is.EqualTo(GapReason.Disconnected));
        Assert.That((disconnected.StartMs, disconnected.EndMs), Is.EqualTo((10_000L, 15_000L)));
    }
}
