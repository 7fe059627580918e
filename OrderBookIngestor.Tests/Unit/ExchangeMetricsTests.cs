using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Tests.Unit;

public sealed class ExchangeMetricsTests
{
    [Test]
    public void EveryRejectReasonAndDuplicateKind_HasItsOwnCounter()
    {
        var m = new IngestorMetrics(TimeProvider.System);
        foreach (var reason in RejectReasons.All)
        {
            m.Reject(reason);
        }

        foreach (var channel in MarketChannels.All)
        {
            m.Duplicate(channel, stale: true);
        }

        Assert.Multiple(() =>
        {
            Assert.That(RejectReasons.All.Select(m.Rejects), Is.All.EqualTo(1), "one count each: no two reasons share a slot");
            Assert.That(m.TotalRejects, Is.EqualTo(RejectReasons.All.Length));
            Assert.That(MarketChannels.All.Select(c => m.Duplicates(c, stale: true)), Is.All.EqualTo(1));
            Assert.That(MarketChannels.All.Select(c => m.Duplicates(c, stale: false)), Is.All.Zero);
        });
    }
}
