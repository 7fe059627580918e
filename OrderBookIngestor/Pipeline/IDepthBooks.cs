using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Pipeline;

/// <summary>What the router asks of a symbol's depth book. Pipeline owns this shape; Books implements it
/// (DepthSequencer), so Books sits beside Pipeline without Pipeline depending on it.</summary>
public interface IDepthBook
{
    int SymbolId { get; }

    string Stream { get; }

    StreamActivity Activity { get; }

    /// <param name="needSnapshot">True when the caller must request a REST snapshot for this symbol.</param>
    DepthDecision Offer(in DepthEvent e, long nowMs, out GapRecord? gap, out bool needSnapshot);
}

public enum DepthDecision
{
    Accept,
    Duplicate,
}

/// <summary>Makes the depth books and takes their snapshot requests (Books' DepthBookSet).</summary>
public interface IDepthBooks
{
    IDepthBook Create(int symbolId, string symbol, string stream, long lastStoredUpdateId, long lastStoredTimeMs);

    void RequestSnapshot(IDepthBook book);
}
