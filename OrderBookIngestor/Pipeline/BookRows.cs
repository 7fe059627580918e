namespace OrderBookIngestor.Pipeline;

/// <summary>A REST depth snapshot a book was synced from. Levels interleaved (price, qty), GC-owned (rare rows).</summary>
public readonly record struct SnapshotRow(int SymbolId, long LastUpdateId, long ExchangeTimeMs, long IngestTimeUs, double[] Bids, double[] Asks);

/// <summary>The top of one in-memory book at a sampling instant, with its features.</summary>
public readonly record struct TopRow(
    int SymbolId,
    long SampledMs,
    long LastUpdateId,
    double[] Bids,
    double[] Asks,
    double Mid,
    double Spread,
    double Microprice,
    double ImbalanceL1,
    double ImbalanceL5);
