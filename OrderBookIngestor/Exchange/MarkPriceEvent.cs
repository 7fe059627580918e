namespace OrderBookIngestor.Exchange;

/// <summary>
/// One markPriceUpdate, or, backfilled after downtime, one 1-minute mark price bar's close at the bar's close time
/// (no index or settle price; the funding rate settled within the bar, if any). Times are Unix epoch: exchange times in
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
    long NextFundingTimeMs,
    bool IsBackfilled = false);
