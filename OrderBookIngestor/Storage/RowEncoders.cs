using OrderBookIngestor.Exchange;

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

public readonly struct DepthRows : IRowEncoder<DepthEvent>
{
    public static string Table => "depth_events";

    public static string CopyCommand =>
        "COPY marketdata.depth_events (ts_exchange, ts_transaction, ts_ingest, symbol_id, first_update_id, final_update_id, prev_final_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys) FROM STDIN (FORMAT BINARY)";

    private const int FixedBytes = 2 + 36 + 8 + 36;

    /// <summary>Encodes the event and gives its pooled level arrays back: the batch now holds the bytes.</summary>
    public static void Encode(CopyBatch batch, in DepthEvent e)
    {
        batch.BeginRow(11, e.EventTimeMs, FixedBytes);
        batch.WriteTimestampMillis(e.EventTimeMs);
        batch.WriteTimestampMillis(e.TransactionTimeMs);
        batch.WriteTimestampMicros(e.IngestTimeUs);
        batch.WriteInt32(e.SymbolId);
        batch.WriteInt64(e.FirstUpdateId);
        batch.WriteInt64(e.FinalUpdateId);
        batch.WriteInt64(e.PrevFinalUpdateId);
        batch.WriteDoubleArray(e.BidSpan, 0, 2);
        batch.WriteDoubleArray(e.BidSpan, 1, 2);
        batch.WriteDoubleArray(e.AskSpan, 0, 2);
        batch.WriteDoubleArray(e.AskSpan, 1, 2);
        e.Release();
    }
}

public readonly struct SnapshotRows : IRowEncoder<SnapshotRow>
{
    public static string Table => "book_snapshots";

    /// <summary>The layout before the source column (spool table id 4): replays of segments an older build wrote.</summary>
    public static string CopyCommandWithoutSource =>
        "COPY marketdata.book_snapshots (ts_exchange, ts_ingest, symbol_id, last_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys) FROM STDIN (FORMAT BINARY)";

    public static string CopyCommand =>
        "COPY marketdata.book_snapshots (ts_exchange, ts_ingest, symbol_id, last_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys, source) FROM STDIN (FORMAT BINARY)";

    public static void Encode(CopyBatch batch, in SnapshotRow s)
    {
        // The daemon's own book counts its latency from when it was taken: its last diff may be minutes old on a quiet symbol.
        batch.BeginRow(9, s.FromDaemon ? s.IngestTimeUs / 1000 : s.ExchangeTimeMs, 2 + 24 + 8 + 12 + 10);
        batch.WriteTimestampMillis(s.ExchangeTimeMs);
        batch.WriteTimestampMicros(s.IngestTimeUs);
        batch.WriteInt32(s.SymbolId);
        batch.WriteInt64(s.LastUpdateId);
        batch.WriteDoubleArray(s.Bids, 0, 2);
        batch.WriteDoubleArray(s.Bids, 1, 2);
        batch.WriteDoubleArray(s.Asks, 0, 2);
        batch.WriteDoubleArray(s.Asks, 1, 2);
        batch.WriteAsciiText(s.FromDaemon ? "daemon" : "rest");
    }
}

public readonly struct TopRows : IRowEncoder<TopRow>
{
    public static string Table => "orderbook_top";

    public static string CopyCommand =>
        "COPY marketdata.orderbook_top (ts, symbol_id, last_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys, mid, spread, microprice, imbalance_l1, imbalance_l5) FROM STDIN (FORMAT BINARY)";

    public static void Encode(CopyBatch batch, in TopRow t)
    {
        batch.BeginRow(12, t.SampledMs, 2 + 12 + 8 + 12 + (5 * 12));
        batch.WriteTimestampMillis(t.SampledMs);
        batch.WriteInt32(t.SymbolId);
        batch.WriteInt64(t.LastUpdateId);
        batch.WriteDoubleArray(t.Bids, 0, 2);
        batch.WriteDoubleArray(t.Bids, 1, 2);
        batch.WriteDoubleArray(t.Asks, 0, 2);
        batch.WriteDoubleArray(t.Asks, 1, 2);
        batch.WriteNullableDouble(t.Mid);
        batch.WriteNullableDouble(t.Spread);
        batch.WriteNullableDouble(t.Microprice);
        batch.WriteNullableDouble(t.ImbalanceL1);
        batch.WriteNullableDouble(t.ImbalanceL5);
    }
}

public readonly struct MarkPriceRows : IRowEncoder<MarkPriceEvent>
{
    public static string Table => "mark_price";

    public static string CopyCommand =>
        "COPY marketdata.mark_price (ts_exchange, ts_ingest, symbol_id, mark_price, index_price, est_settle_price, funding_rate, next_funding_time, is_backfilled) FROM STDIN (FORMAT BINARY)";

    // 2 + 2×12 (timestamps) + 8 (int4) + 4×12 (float8) + 12 (timestamp) + 5 (bool)
    private const int MaxRowBytes = 2 + 24 + 8 + 48 + 12 + 5;

    public static void Encode(CopyBatch batch, in MarkPriceEvent e)
    {
        batch.BeginRow(9, e.EventTimeMs, MaxRowBytes);
        batch.WriteTimestampMillis(e.EventTimeMs);
        batch.WriteTimestampMicros(e.IngestTimeUs);
        batch.WriteInt32(e.SymbolId);
        batch.WriteDouble(e.MarkPrice);
        batch.WriteNullableDouble(e.IndexPrice);
        batch.WriteNullableDouble(e.EstimatedSettlePrice);
        batch.WriteNullableDouble(e.FundingRate);
        if (e.NextFundingTimeMs > 0)
        {
            batch.WriteTimestampMillis(e.NextFundingTimeMs);
        }
        else
        {
            batch.WriteNull();
        }

        batch.WriteBool(e.IsBackfilled);
    }
}

public readonly struct LiquidationRows : IRowEncoder<LiquidationEvent>
{
    public static string Table => "liquidations";

    public static string CopyCommand =>
        "COPY marketdata.liquidations (ts_exchange, ts_trade, ts_ingest, symbol_id, side, order_type, time_in_force, status, orig_qty, price, avg_price, last_filled_qty, filled_qty) FROM STDIN (FORMAT BINARY)";

    // 2 + 3×12 + 8 + 5×12; the four words reserve their own room
    private const int MaxRowBytes = 2 + 36 + 8 + 60;

    public static void Encode(CopyBatch batch, in LiquidationEvent e)
    {
        batch.BeginRow(13, e.EventTimeMs, MaxRowBytes);
        batch.WriteTimestampMillis(e.EventTimeMs);
        batch.WriteTimestampMillis(e.TradeTimeMs);
        batch.WriteTimestampMicros(e.IngestTimeUs);
        batch.WriteInt32(e.SymbolId);
        batch.WriteAsciiText(e.Side);
        batch.WriteAsciiText(e.OrderType);
        batch.WriteAsciiText(e.TimeInForce);
        batch.WriteAsciiText(e.Status);
        batch.WriteDouble(e.OriginalQty);
        batch.WriteDouble(e.Price);
        batch.WriteDouble(e.AveragePrice);
        batch.WriteDouble(e.LastFilledQty);
        batch.WriteDouble(e.FilledQty);
    }
}

public readonly struct OpenInterestRows : IRowEncoder<OpenInterestRow>
{
    public static string Table => "open_interest";

    public static string CopyCommand =>
        "COPY marketdata.open_interest (ts_exchange, ts_ingest, symbol_id, open_interest) FROM STDIN (FORMAT BINARY)";

    public static void Encode(CopyBatch batch, in OpenInterestRow r)
    {
        batch.BeginRow(4, r.ExchangeTimeMs, 2 + 24 + 8 + 12);
        batch.WriteTimestampMillis(r.ExchangeTimeMs);
        batch.WriteTimestampMicros(r.IngestTimeUs);
        batch.WriteInt32(r.SymbolId);
        batch.WriteDouble(r.OpenInterest);
    }
}
