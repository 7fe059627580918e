namespace OrderBookIngestor.Exchange;

/// <summary>One bookTicker update. Times are Unix epoch: exchange times in milliseconds as Binance sends them,
/// the local receive time in microseconds.</summary>
public readonly record struct BookTickerEvent(
    int SymbolId,
    long UpdateId,
    long EventTimeMs,
    long TransactionTimeMs,
    long IngestTimeUs,
    double BestBid,
    double BidQty,
    double BestAsk,
    double AskQty);
