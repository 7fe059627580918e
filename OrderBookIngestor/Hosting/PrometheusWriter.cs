using System.Diagnostics;
using System.Globalization;
using System.Text;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Hosting;

/// <summary>Prometheus text exposition (version 0.0.4) of the daemon's metrics. All names start with orderbook_.</summary>
public static class PrometheusWriter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Write(IngestorMetrics m, PipelineStatus parts)
    {
        var sb = new StringBuilder(8192);
        var shards = m.Shards;
        var now = m.Time.GetUtcNow().ToUnixTimeMilliseconds();

        ShardMetric(sb, shards, "orderbook_messages_received_total", "counter", "WebSocket frames received, by route and connection.", s => s.Messages);

        Header(sb, "orderbook_stream_messages_total", "counter", "Market data frames received, by stream (duplicates included).");
        foreach (var (stream, route, activity) in parts.Streams())
        {
            Sample(sb, "orderbook_stream_messages_total", $"route=\"{route.PathSegment()}\",stream=\"{stream}\"", activity.Messages);
        }

        ShardMetric(sb, shards, "orderbook_bytes_received_total", "counter", "WebSocket payload bytes received.", s => s.Bytes);
        ShardMetric(sb, shards, "orderbook_reconnects_total", "counter", "Connections lost and re-established.", s => s.Reconnects);
        ShardMetric(sb, shards, "orderbook_rotations_total", "counter", "Planned connection replacements before the exchange's 24 h cut-off.", s => s.Rotations);
        ShardMetric(sb, shards, "orderbook_receive_low_water_bytes", "gauge", "Bytes the kernel gathers before it wakes the connection's reader (ReadCoalesceMs; 1: every packet).", s => s.ReceiveLowWater);
        ShardMetric(sb, shards, "orderbook_connection_streaming", "gauge", "1 when the connection is subscribed and streaming.", s => s.State == ConnectionState.Streaming ? 1 : 0);
        ShardMetric(sb, shards.Where(s => s.LastMessageUnixMs > 0), "orderbook_last_message_age_seconds", "gauge", "Seconds since the connection's last frame.", s => (now - s.LastMessageUnixMs) / 1000.0);

        Header(sb, "orderbook_frames_rejected_total", "counter", "Frames counted and skipped, by reason.");
        foreach (var r in RejectReasons.All)
        {
            Sample(sb, "orderbook_frames_rejected_total", $"reason=\"{r.Label()}\"", m.Rejects(r));
        }

        Header(sb, "orderbook_duplicates_dropped_total", "counter", "Frames dropped as already stored (replays, reconnect or rotation overlap); kind=stale when older than the dedupe window.");
        foreach (var c in MarketChannels.All)
        {
            Sample(sb, "orderbook_duplicates_dropped_total", $"channel=\"{c.StreamSuffix()}\",kind=\"replay\"", m.Duplicates(c, stale: false));
            Sample(sb, "orderbook_duplicates_dropped_total", $"channel=\"{c.StreamSuffix()}\",kind=\"stale\"", m.Duplicates(c, stale: true));
        }

        Header(sb, "orderbook_gaps_total", "counter", "Holes written to marketdata.feed_gaps, by reason.");
        foreach (var r in Pipeline.GapReasons.All)
        {
            Sample(sb, "orderbook_gaps_total", $"reason=\"{Pipeline.GapReasons.Label(r)}\"", parts.Gaps?.Count(r) ?? 0);
        }

        Single(sb, "orderbook_silent_streams", "gauge", "Subscribed streams with no data while others on their route flow.", m.SilentStreams().Count);
        var (synced, books, resyncs) = m.Books();
        Single(sb, "orderbook_books_synced", "gauge", "Order books in sync with the exchange's diff stream.", synced);
        Single(sb, "orderbook_books", "gauge", "Order books kept (symbols with a depth stream).", books);
        Single(sb, "orderbook_book_resyncs_total", "counter", "Order book resyncs after a sequence break.", resyncs);

        Single(sb, "orderbook_liquidation_sampled_seconds_total", "counter",
            "forceOrder events stored: seconds in which Binance reported only the latest liquidation of the symbol (the stream is sampled).", m.LiquidationSampledSeconds);
        Single(sb, "orderbook_mark_prices_backfilled_total", "counter", "1-minute mark price bars stored from REST after downtime (mark_price.is_backfilled).", m.MarkPricesBackfilled);
        var (oiAnswered, oiMissed) = m.OpenInterestPolls;
        Header(sb, "orderbook_open_interest_polls_total", "counter", "Open interest REST polls, by outcome (missed: failed, or skipped to leave weight to snapshots and backfill; each is a feed_gaps row).");
        Sample(sb, "orderbook_open_interest_polls_total", "outcome=\"answered\"", oiAnswered);
        Sample(sb, "orderbook_open_interest_polls_total", "outcome=\"missed\"", oiMissed);

        var (reloadsApplied, reloadsRefused) = m.Reloads;
        Header(sb, "orderbook_reloads_total", "counter", "Reloads (SIGHUP, listing refreshes), by outcome (refused: the running configuration stays; the log says why).");
        Sample(sb, "orderbook_reloads_total", "outcome=\"applied\"", reloadsApplied);
        Sample(sb, "orderbook_reloads_total", "outcome=\"refused\"", reloadsRefused);

        Single(sb, "orderbook_trades_backfilled_total", "counter", "aggTrades recovered from REST after an id discontinuity.", m.TradesBackfilled);
        Single(sb, "orderbook_events_lost_at_shutdown_total", "counter", "Received events not buffered before the drain deadline.", m.EventsLostAtShutdown);
        Single(sb, "orderbook_rest_weight_used", "gauge", "Binance REST request weight used this minute (X-MBX-USED-WEIGHT-1M).", m.RestWeightUsed());

        TableCounter(sb, m, "orderbook_rows_written_total", "counter", "Rows committed to the database (from the spool too).", t => t.RowsCommitted);
        TableCounter(sb, m, "orderbook_rows_replayed_total", "counter", "Rows committed from the disk spool (part of orderbook_rows_written_total).", t => t.RowsReplayed);
        TableCounter(sb, m, "orderbook_copy_batches_total", "counter", "COPY batches committed.", t => t.Batches);
        TableCounter(sb, m, "orderbook_copy_failures_total", "counter", "COPY attempts that failed and were retried.", t => t.CopyFailures);
        TableCounter(sb, m, "orderbook_rows_abandoned_total", "counter", "Rows not committed before the shutdown drain deadline.", t => t.RowsAbandoned);
        TableCounter(sb, m, "orderbook_buffer_depth", "gauge", "Events waiting in the table's in-memory buffer.", t => t.BufferDepth());
        TableCounter(sb, m, "orderbook_buffer_readers_waiting", "gauge", "Shard readers (or backfills) waiting for room in the table's full buffer: the database is slower than the feed.", t => t.ReadersWaiting());
        TableCounter(sb, m, "orderbook_buffer_capacity", "gauge", "Capacity of the table's in-memory buffer.", t => t.BufferCapacity);
        TableCounter(sb, m, "orderbook_buffer_bytes", "gauge", "Memory the table's in-memory buffer holds for rows, in use or spare.", t => t.BufferBytes());

        TableCounter(sb, m, "orderbook_rows_spooled_total", "counter", "Rows written to the disk spool because the database did not take them.", t => t.RowsSpooled);
        Single(sb, "orderbook_spool_bytes", "gauge", "Bytes in the disk spool waiting for the database.", parts.Spool?.Bytes ?? 0);
        Single(sb, "orderbook_spool_records_replayed_total", "counter", "Spooled batches put into the database.", parts.SpoolState?.RecordsReplayed ?? 0);
        Single(sb, "orderbook_spool_corrupt_records_total", "counter", "Torn or corrupt spool records skipped (their trades are backfilled, the rest written to feed_gaps).", parts.Spool?.CorruptRecords ?? 0);
        Single(sb, "orderbook_spool_corrupt_rows_total", "counter", "Rows the skipped spool records held, as far as their headers still read.", parts.Spool?.CorruptRows ?? 0);
        Single(sb, "orderbook_database_down", "gauge", "1 while COPY fails and batches go to the spool.", parts.SpoolState?.DatabaseDown == true ? 1 : 0);
        Single(sb, "orderbook_spool_replay_failures_total", "counter", "Spool replay passes that stopped on a failure and were tried again.", parts.SpoolState?.ReplayFailures ?? 0);
        TableCounter(sb, m, "orderbook_batches_quarantined_total", "counter", "Batches the database refused (not retryable), set aside in the quarantine directory.", t => parts.Quarantine?.Batches(t.Table) ?? 0);
        TableCounter(sb, m, "orderbook_rows_quarantined_total", "counter", "Rows in the batches the database refused.", t => parts.Quarantine?.Rows(t.Table) ?? 0);
        Single(sb, "orderbook_gap_rows_rejected_total", "counter", "Gap rows the database refused (logged in full instead).", parts.Gaps?.RowsRejected ?? 0);
        Single(sb, "orderbook_gap_write_failures_total", "counter", "Attempts to write a gap row that failed and were retried.", parts.Gaps?.WriteFailures ?? 0);

        var mt = parts.Maintenance;
        Single(sb, "orderbook_partitions_created_total", "counter", "Time partitions created by the maintenance loop (plain PostgreSQL, Citus).", mt.PartitionsCreated);
        Single(sb, "orderbook_partitions_dropped_total", "counter", "Partitions or chunks dropped past retention by the maintenance loop.", mt.PartitionsDropped);
        Single(sb, "orderbook_rollup_batches_total", "counter", "Committed batches rolled up into the 1-second rollups (bt_1s, trade_1s, derivatives_1s) by this daemon.", mt.RollupBatches);
        Single(sb, "orderbook_rollup_buckets_total", "counter", "Symbol-seconds (re)computed in the 1-second rollups by this daemon.", mt.RollupBuckets);
        Single(sb, "orderbook_storage_maintenance_failures_total", "counter", "Maintenance or rollup passes that failed (retried next pass).", mt.Failures);
        Single(sb, "orderbook_storage_maintenance_conflicts_total", "counter", "Maintenance passes that lost a race with another session (a deadlock) and were run again at once.", mt.ConflictsRetried);
        Single(sb, "orderbook_rollup_pending_batches", "gauge", "Committed batches not yet rolled up into the 1-second rollups (as of the last pass).", mt.Pending);
        Single(sb, "orderbook_rollup_last_success_seconds", "gauge", "Unix time of the last rollup pass that succeeded (0: none, or TimescaleDB does it).", mt.LastRollupUnixMs / 1000.0);

        TableHistogram(sb, m, "orderbook_copy_batch_duration_seconds", "Time to send and commit one COPY batch.", t => t.CopySeconds);
        TableHistogram(sb, m, "orderbook_exchange_to_commit_seconds", "Exchange event time to database commit, per row.", t => t.CommitLatencySeconds);

        using var process = Process.GetCurrentProcess();
        Single(sb, "orderbook_process_resident_memory_bytes", "gauge", "Resident set size.", process.WorkingSet64);
        Single(sb, "orderbook_process_cpu_seconds_total", "counter", "User and system CPU time.", process.TotalProcessorTime.TotalSeconds);
        Single(sb, "orderbook_gc_heap_bytes", "gauge", "Managed heap size.", GC.GetTotalMemory(false));
        Single(sb, "orderbook_gc_committed_bytes", "gauge", "Memory the GC has committed from the OS (heap plus free space it keeps).", GC.GetGCMemoryInfo().TotalCommittedBytes);
        Single(sb, "orderbook_jit_compiled_methods_total", "counter", "Methods the JIT has compiled (tiering re-compiles hot ones); should level off after warm-up.", System.Runtime.JitInfo.GetCompiledMethodCount());
        Single(sb, "orderbook_threadpool_threads", "gauge", "Thread pool threads.", ThreadPool.ThreadCount);
        Single(sb, "orderbook_gc_trims_total", "counter", "Full collections asked for because the heap had grown HeapSlackMegabytes past the last one's result, or the GC kept that much more committed than the heap.", m.HeapTrims);
        Single(sb, "orderbook_gc_allocated_bytes_total", "counter", "Bytes allocated on the managed heap.", GC.GetTotalAllocatedBytes());
        Header(sb, "orderbook_gc_collections_total", "counter", "Garbage collections by generation.");
        for (var g = 0; g <= GC.MaxGeneration; g++)
        {
            Sample(sb, "orderbook_gc_collections_total", $"generation=\"{g}\"", GC.CollectionCount(g));
        }

        Single(sb, "orderbook_ready", "gauge", "1 once the pipeline is running.", m.Ready ? 1 : 0);
        Single(sb, "orderbook_start_time_seconds", "gauge", "Unix time the process started.", m.StartedUnixMs / 1000.0);
        return sb.ToString();
    }

    private static string ShardLabels(ShardStats s) => $"route=\"{s.Route}\",shard=\"{s.Name}\"";

    /// <summary>A metric without labels: its header and its one sample.</summary>
    private static void Single(StringBuilder sb, string name, string type, string help, double value)
    {
        Header(sb, name, type, help);
        Sample(sb, name, null, value);
    }

    private static void ShardMetric(StringBuilder sb, IEnumerable<ShardStats> shards, string name, string type, string help, Func<ShardStats, double> value)
    {
        Header(sb, name, type, help);
        foreach (var s in shards)
        {
            Sample(sb, name, ShardLabels(s), value(s));
        }
    }

    private static void TableCounter(StringBuilder sb, IngestorMetrics m, string name, string type, string help, Func<TableStats, double> value)
    {
        Header(sb, name, type, help);
        foreach (var t in m.Tables)
        {
            Sample(sb, name, $"table=\"{t.Table}\"", value(t));
        }
    }

    private static void TableHistogram(StringBuilder sb, IngestorMetrics m, string name, string help, Func<TableStats, Histogram> histogram)
    {
        Header(sb, name, "histogram", help);
        foreach (var t in m.Tables)
        {
            HistogramSamples(sb, name, $"table=\"{t.Table}\"", histogram(t));
        }
    }

    private static void HistogramSamples(StringBuilder sb, string name, string labels, Histogram h)
    {
        var cumulative = h.CumulativeCounts();
        for (var i = 0; i < h.Bounds.Count; i++)
        {
            Sample(sb, name + "_bucket", $"{labels},le=\"{Format(h.Bounds[i])}\"", cumulative[i]);
        }

        Sample(sb, name + "_bucket", $"{labels},le=\"+Inf\"", cumulative[^1]);
        Sample(sb, name + "_sum", labels, h.SumSeconds);
        Sample(sb, name + "_count", labels, cumulative[^1]);
    }

    private static void Header(StringBuilder sb, string name, string type, string help)
        => sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
            .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Sample(StringBuilder sb, string name, string? labels, double value)
    {
        sb.Append(name);
        if (labels is not null)
        {
            sb.Append('{').Append(labels).Append('}');
        }

        sb.Append(' ').Append(Format(value)).Append('\n');
    }

    private static string Format(double v) => double.IsPositiveInfinity(v) ? "+Inf" : v.ToString("R", CultureInfo.InvariantCulture);
}
