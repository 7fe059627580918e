namespace OrderBookIngestor.Exchange;

/// <summary>
/// One markPriceUpdate (or, backfilled, one 1-minute mark price bar's close). Times are Unix epoch: exchange times in
/// milliseconds, receive time in microseconds. A contract without funding (a delivery future) has no funding rate
/// (NaN) and no next funding time (0); both are stored as NULL.
/// </summary>
public readonly record struct MarkPriceEvent(
    int SymbolId,
    long EventTimeMs,
    long IngestTimeUs,
    double MarkPrice,
    double IndexPrice,
    double EstimatedSettlePrice,
    double FundingRate,
    long NextFundingTimeMs);
