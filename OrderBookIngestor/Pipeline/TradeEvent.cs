namespace OrderBookIngestor.Pipeline;

/// <summary>One aggTrade. Times are Unix epoch: exchange times in milliseconds, receive time in microseconds.</summary>
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
    bool IsBuyerMaker);
