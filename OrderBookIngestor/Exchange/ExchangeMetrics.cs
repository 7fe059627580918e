using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Exchange;

/// <summary>Exchange's meaning of the metrics' counter sets: frames rejected per reason, duplicates per channel and kind.</summary>
public static class ExchangeMetrics
{
    extension(IngestorMetrics m)
    {
        public void Reject(RejectReason reason) => m.RejectCounters.Increment((int)reason);

        public long Rejects(RejectReason reason) => m.RejectCounters.Read((int)reason);

        public long TotalRejects => RejectReasons.All.Sum(r => m.RejectCounters.Read((int)r));

        public void Duplicate(MarketChannel channel, bool stale) => m.DuplicateCounters.Increment(DuplicateIndex(channel, stale));

        public long Duplicates(MarketChannel channel, bool stale) => m.DuplicateCounters.Read(DuplicateIndex(channel, stale));
    }

    private static int DuplicateIndex(MarketChannel channel, bool stale) => ((int)channel * 2) + (stale ? 1 : 0);
}
