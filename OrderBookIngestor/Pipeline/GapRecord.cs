namespace OrderBookIngestor.Pipeline;

/// <summary>Why a hole exists. The label is what marketdata.feed_gaps.reason holds.</summary>
public enum GapReason
{
    /// <summary>Depth diff chain broken (pu ≠ previous u); the symbol was resynced from a snapshot.</summary>
    DepthSequence,

    /// <summary>A stream without contiguous ids was disconnected for this window.</summary>
    Disconnected,

    /// <summary>aggTrade ids that neither the live stream nor REST backfill delivered.</summary>
    AggTradeIds,

    /// <summary>The daemon was not running (found at start from the last stored event).</summary>
    DaemonDown,

    /// <summary>Received but not stored (e.g. the drain deadline passed at shutdown).</summary>
    Dropped,

    /// <summary>Spooled while the database was away, but the spool record was damaged on disk and could not be replayed
    /// (the time and id ranges are what the damaged record still showed; trades are backfilled from REST first).</summary>
    SpoolCorrupt,

    /// <summary>A once-a-second stream (markPrice) skipped seconds while its connection stayed up.</summary>
    MissedSeconds,

    /// <summary>A REST poll (open interest) failed or was skipped to leave the request weight to snapshots and backfill.</summary>
    PollMissed,
}

public static class GapReasons
{
    public static readonly GapReason[] All = Enum.GetValues<GapReason>();

    public static string Label(this GapReason reason) => reason switch
    {
        GapReason.DepthSequence => "depth_sequence",
        GapReason.Disconnected => "disconnected",
        GapReason.AggTradeIds => "agg_trade_ids",
        GapReason.DaemonDown => "daemon_down",
        GapReason.Dropped => "dropped",
        GapReason.SpoolCorrupt => "spool_corrupt",
        GapReason.MissedSeconds => "missed_seconds",
        GapReason.PollMissed => "poll_missed",
        _ => "unknown",
    };
}

/// <summary>One row of the gap ledger. Times are Unix milliseconds; ids are null for streams without contiguous ids.</summary>
public sealed record GapRecord(
    int SymbolId,
    string Stream,
    long StartMs,
    long EndMs,
    long? FirstMissingId,
    long? LastMissingId,
    GapReason Reason,
    long DetectedMs,
    string? Details = null);
