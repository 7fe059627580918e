using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// The running pipeline's parts that /metrics, /health and the summary line read, filled in by
/// IngestionPipeline as it starts them. They are typed parts of Pipeline and Storage, so they live here in
/// the composition root; Observability keeps only the counters everyone writes into.
/// </summary>
public sealed class PipelineStatus
{
    /// <summary>The gap ledger, once the pipeline runs (for per-reason counts).</summary>
    public GapLedger? Gaps { get; set; }

    public Spool? Spool { get; set; }

    public SpoolState? SpoolState { get; set; }

    /// <summary>Where refused batches go, once the pipeline runs.</summary>
    public Quarantine? Quarantine { get; set; }

    public MaintenanceStats Maintenance { get; } = new();

    /// <summary>Every recorded stream with its route and activity, once the pipeline runs.</summary>
    public Func<IReadOnlyList<(string Stream, BinanceRoute Route, StreamActivity Activity)>> Streams { get; set; } = () => [];
}
