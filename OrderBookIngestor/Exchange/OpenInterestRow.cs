namespace OrderBookIngestor.Exchange;

/// <summary>One GET /fapi/v1/openInterest answer: the exchange's time (Unix ms), the fetch time (Unix µs) and the open
/// interest (in contracts, the base asset for USD-M).</summary>
public readonly record struct OpenInterestRow(int SymbolId, long ExchangeTimeMs, long IngestTimeUs, double OpenInterest);
