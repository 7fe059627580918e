using System.Buffers;

namespace OrderBookIngestor.Exchange;

/// <summary>
/// One depthUpdate. Levels live in arrays rented from <see cref="ArrayPool{T}.Shared"/>, price and quantity
/// interleaved (p0, q0, p1, q1, ...). Ownership travels with the event: the parser rents, whoever drops the
/// event or the COPY encoder after writing it returns them (<see cref="Release"/>).
/// </summary>
public readonly record struct DepthEvent(
    int SymbolId,
    long FirstUpdateId,
    long FinalUpdateId,
    long PrevFinalUpdateId,
    long EventTimeMs,
    long TransactionTimeMs,
    long IngestTimeUs,
    double[] Bids,
    int BidLevels,
    double[] Asks,
    int AskLevels)
{
    public ReadOnlySpan<double> BidSpan => Bids.AsSpan(0, BidLevels * 2);

    public ReadOnlySpan<double> AskSpan => Asks.AsSpan(0, AskLevels * 2);

    public void Release()
    {
        ArrayPool<double>.Shared.Return(Bids);
        ArrayPool<double>.Shared.Return(Asks);
    }
}
