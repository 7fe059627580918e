using System.Threading.Channels;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Pipeline;

/// <summary>
/// The bounded in-memory buffer per table between the shard readers (many writers) and the table's flusher
/// (one reader). Full mode is Wait: a slow database slows the readers, which stop draining their sockets,
/// which is TCP backpressure all the way to the exchange; nothing is dropped here. Each is a
/// <see cref="SegmentedChannel{T}"/>, whose memory follows a backlog down again once it drains.
/// </summary>
public sealed class EventBuffers
{
    public EventBuffers(int capacityPerTable)
    {
        Capacity = capacityPerTable;
        BookTickers = Create<BookTickerEvent>(capacityPerTable);
        Trades = Create<TradeEvent>(capacityPerTable);
        Depth = Create<DepthEvent>(capacityPerTable);
        Snapshots = Create<SnapshotRow>(1_000);
        Tops = Create<TopRow>(100_000);
        MarkPrices = Create<MarkPriceEvent>(capacityPerTable);
        Liquidations = Create<LiquidationEvent>(capacityPerTable);
        OpenInterest = Create<OpenInterestRow>(100_000);
    }

    public int Capacity { get; }

    public SegmentedChannel<BookTickerEvent> BookTickers { get; }

    public SegmentedChannel<TradeEvent> Trades { get; }

    public SegmentedChannel<DepthEvent> Depth { get; }

    public SegmentedChannel<SnapshotRow> Snapshots { get; }

    public SegmentedChannel<TopRow> Tops { get; }

    public SegmentedChannel<MarkPriceEvent> MarkPrices { get; }

    public SegmentedChannel<LiquidationEvent> Liquidations { get; }

    public SegmentedChannel<OpenInterestRow> OpenInterest { get; }

    /// <summary>No more events will come (readers have stopped); flushers drain what is left and finish.</summary>
    public void Complete(Exception? error = null)
    {
        BookTickers.Writer.TryComplete(error);
        Trades.Writer.TryComplete(error);
        Depth.Writer.TryComplete(error);
        Snapshots.Writer.TryComplete(error);
        Tops.Writer.TryComplete(error);
        MarkPrices.Writer.TryComplete(error);
        Liquidations.Writer.TryComplete(error);
        OpenInterest.Writer.TryComplete(error);
    }

    private static SegmentedChannel<T> Create<T>(int capacity) => new(capacity);
}
