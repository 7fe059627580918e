using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// One generated event, exactly as the simulator serialised it: the values the daemon must store.
/// For bookTicker: Id = u, Price/Qty = bid, Price2/Qty2 = ask. For aggTrade: Id = a, Price/Qty = p/q,
/// FirstId/LastId = f/l, Maker = m.
/// </summary>
public sealed record SimEvent(
    string Stream,
    string Symbol,
    MarketChannel Channel,
    long Id,
    long EventTimeMs,
    long TransactionTimeMs,
    decimal Price,
    decimal Qty,
    decimal Price2,
    decimal Qty2,
    long FirstId,
    long LastId,
    bool Maker,
    byte[] Data);
