namespace OrderBookIngestor.Pipeline;

/// <summary>A stored depth book: a REST snapshot a book was synced from, or (<paramref name="FromDaemon"/>) the daemon's own
/// synced book at <paramref name="LastUpdateId"/>, whose last diff came at <paramref name="ExchangeTimeMs"/> and which was
/// taken at <paramref name="IngestTimeUs"/>. Levels interleaved (price, qty), GC-owned (rare rows).</summary>
public readonly record struct SnapshotRow(int SymbolId, long LastUpdateId, long ExchangeTimeMs, long IngestTimeUs, double[] Bids, double[] Asks, bool FromDaemon = false);

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
