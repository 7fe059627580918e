
namespace OrderBookIngestor.Exchange;

public enum FrameKind
{
    Rejected,
    BookTicker,
    Trade,
    Depth,
    MarkPrice,
    Liquidation,
    /// <summary>A reply to SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS: {"result":...,"id":N}.</summary>
    ControlResult,
    /// <summary>An error reply to a control message: {"error":{...},"id":N}.</summary>
    ControlError,
}

/// <summary>The result of parsing one frame. Only the field named by <see cref="Kind"/> is meaningful.</summary>
public struct ParsedFrame
{
    public FrameKind Kind { get; set; }

    public RejectReason Reason { get; set; }

    public BookTickerEvent BookTicker { get; set; }

    public TradeEvent Trade { get; set; }

    /// <summary>Owns pooled level arrays: route it or call Release.</summary>
    public DepthEvent Depth { get; set; }

    public MarkPriceEvent MarkPrice { get; set; }

    public LiquidationEvent Liquidation { get; set; }

    public long ControlId { get; set; }
}
