using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Storage;

/// <summary>How one event type becomes one row of its table. The column list is the single source for both the COPY command and the encoder.</summary>
public interface IRowEncoder<T>
    where T : struct
{
    static abstract string Table { get; }

    static abstract string CopyCommand { get; }

    static abstract void Encode(CopyBatch batch, in T row);
}

public readonly struct BookTickerRows : IRowEncoder<BookTickerEvent>
{
    public static string Table => "book_ticker";

    public static string CopyCommand =>
        "COPY marketdata.book_ticker (ts_exchange, ts_transaction, ts_ingest, symbol_id, update_id, best_bid, bid_qty, best_ask, ask_qty) FROM STDIN (FORMAT BINARY)";

    // 2 + 3×12 (timestamps) + 8 (int4) + 12 (int8) + 4×12 (float8)
    private const int MaxRowBytes = 2 + 36 + 8 + 12 + 48;

    public static void Encode(CopyBatch batch, in BookTickerEvent e)
    {
        batch.BeginRow(9, e.EventTimeMs, MaxRowBytes);
        batch.WriteTimestampMillis(e.EventTimeMs);
        batch.WriteTimestampMillis(e.TransactionTimeMs);
        batch.WriteTimestampMicros(e.IngestTimeUs);
        batch.WriteInt32(e.SymbolId);
        batch.WriteInt64(e.UpdateId);
        batch.WriteDouble(e.BestBid);
        batch.WriteDouble(e.BidQty);
        batch.WriteDouble(e.BestAsk);
        batch.WriteDouble(e.AskQty);
    }
}

public readonly struct TradeRows : IRowEncoder<TradeEvent>
{
    public static string Table => "trades";

    public static string CopyCommand =>
        "COPY marketdata.trades (ts_exchange, ts_trade, ts_ingest, symbol_id, agg_trade_id, price, qty, first_trade_id, last_trade_id, is_buyer_maker, is_backfilled) FROM STDIN (FORMAT BINARY)";

    // 2 + 3×12 + 8 + 12 + 2×12 + 2×12 + 2×5
    private const int MaxRowBytes = 2 + 36 + 8 + 12 + 24 + 24 + 10;

    public static void Encode(CopyBatch batch, in TradeEvent e)
    {
        batch.BeginRow(11, e.EventTimeMs, MaxRowBytes);
        batch.WriteTimestampMillis(e.EventTimeMs);
        batch.WriteTimestampMillis(e.TradeTimeMs);
        batch.WriteTimestampMicros(e.IngestTimeUs);
        batch.WriteInt32(e.SymbolId);
        batch.WriteInt64(e.AggTradeId);
        batch.WriteDouble(e.Price);
        batch.WriteDouble(e.Qty);
        batch.WriteInt64(e.FirstTradeId);
        batch.WriteInt64(e.LastTradeId);
        batch.WriteBool(e.IsBuyerMaker);
        batch.WriteBool(e.IsBackfilled);
    }
}
