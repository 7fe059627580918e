namespace OrderBookIngestor.Exchange;

/// <summary>
/// One forceOrder event: a liquidation order as the exchange reports it. Binance sends at most the latest liquidation
/// of a symbol per 1000 ms, so a row stands for "at least this one" in its second. The text fields hold the exchange's
/// own words (SELL, LIMIT, IOC, FILLED); well-known ones are shared strings, so parsing them does not allocate.
/// </summary>
public readonly record struct LiquidationEvent(
    int SymbolId,
    long EventTimeMs,
    long TradeTimeMs,
    long IngestTimeUs,
    string Side,
    string OrderType,
    string TimeInForce,
    string Status,
    double OriginalQty,
    double Price,
    double AveragePrice,
    double LastFilledQty,
    double FilledQty);
