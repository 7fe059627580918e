namespace OrderBookIngestor.Exchange;

/// <summary>One aggTrade. Times are Unix epoch: exchange times in milliseconds, receive time in microseconds.
/// Backfilled trades come from REST, which has no event time: EventTimeMs is then the trade time.</summary>
public readonly record struct TradeEvent(
    int SymbolId,
    long AggTradeId,
    long EventTimeMs,
    long TradeTimeMs,
    long IngestTimeUs,
    double Price,
    double Qty,
    long FirstTradeId,
    long LastTradeId,
    bool IsBuyerMaker,
    bool IsBackfilled = false);
