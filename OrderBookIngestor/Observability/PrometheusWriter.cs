using System.Diagnostics;
using System.Globalization;
using System.Text;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;

namespace OrderBookIngestor.Observability;

/// <summary>Prometheus text exposition (version 0.0.4) of the daemon's metrics. All names start with orderbook_.</summary>
public static class PrometheusWriter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Write(IngestorMetrics m)
    {
        var sb = new StringBuilder(8192);
        var shards = m.Shards;
        var now = m.Time.GetUtcNow().ToUnixTimeMilliseconds();

        Header(sb, "orderbook_messages_received_total", "counter", "WebSocket frames received, by route and connection.");
        foreach (var s in shards)
        {
            Sample(sb, "orderbook_messages_received_total", ShardLabels(s), s.Messages);
        }

        Header(sb, "orderbook_stream_messages_total", "counter", "Market data frames received, by stream (duplicates included).");
        foreach (var (stream, route, activity) in m.Streams())
        {
            Sample(sb, "orderbook_stream_messages_total", $"route=\"{route.PathSegment()}\",stream=\"{stream}\"", activity.Messages);
        }

        Header(sb, "orderbook_bytes_received_total", "counter", "WebSocket payload bytes received.");
        foreach (var s in shards)
        {
            Sample(sb, "orderbook_bytes_received_total", ShardLabels(s), s.Bytes);
        }

        Header(sb, "orderbook_reconnects_total", "counter", "Connections lost and re-established.");
        foreach (var s in shards)
        {
            Sample(sb, "orderbook_reconnects_total", ShardLabels(s), s.Reconnects);
        }

        Header(sb, "orderbook_rotations_total", "counter", "Planned connection replacements before the exchange's 24 h cut-off.");
        foreach (var s in shards)
        {
            Sample(sb, "orderbook_rotations_total", ShardLabels(s), s.Rotations);
        }

        Header(sb, "orderbook_connection_streaming", "gauge", "1 when the connection is subscribed and streaming.");
        foreach (var s in shards)
        {
            Sample(sb, "orderbook_connection_streaming", ShardLabels(s), s.State == ConnectionState.Streaming ? 1 : 0);
        }

        Header(sb, "orderbook_last_message_age_seconds", "gauge", "Seconds since the connection's last frame.");
        foreach (var s in shards.Where(s => s.LastMessageUnixMs > 0))
        {
            Sample(sb, "orderbook_last_message_age_seconds", ShardLabels(s), (now - s.LastMessageUnixMs) / 1000.0);
        }

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
            Sample(sb, "orderbook_gaps_total", $"reason=\"{Pipeline.GapReasons.Label(r)}\"", m.Gaps?.Count(r) ?? 0);
        }

        Header(sb, "orderbook_silent_streams", "gauge", "Subscribed streams with no data while others on their route flow.");
        Sample(sb, "orderbook_silent_streams", null, m.SilentStreams().Count);
        var (synced, books, resyncs) = m.Books();
        Header(sb, "orderbook_books_synced", "gauge", "Order books in sync with the exchange's diff stream.");
        Sample(sb, "orderbook_books_synced", null, synced);
        Header(sb, "orderbook_books", "gauge", "Order books kept (symbols with a depth stream).");
        Sample(sb, "orderbook_books", null, books);
        Header(sb, "orderbook_book_resyncs_total", "counter", "Order book resyncs after a sequence break.");
        Sample(sb, "orderbook_book_resyncs_total", null, resyncs);

        Header(sb, "orderbook_trades_backfilled_total", "counter", "aggTrades recovered from REST after an id discontinuity.");
        Sample(sb, "orderbook_trades_backfilled_total", null, m.TradesBackfilled);
        Header(sb, "orderbook_events_lost_at_shutdown_total", "counter", "Received events not buffered before the drain deadline.");
        Sample(sb, "orderbook_events_lost_at_shutdown_total", null, m.EventsLostAtShutdown);
        Header(sb, "orderbook_rest_weight_used", "gauge", "Binance REST request weight used this minute (X-MBX-USED-WEIGHT-1M).");
        Sample(sb, "orderbook_rest_weight_used", null, m.RestWeightUsed());

        TableCounter(sb, m, "orderbook_rows_written_total", "counter", "Rows committed to the database.", t => t.RowsCommitted);
        TableCounter(sb, m, "orderbook_copy_batches_total", "counter", "COPY batches committed.", t => t.Batches);
        TableCounter(sb, m, "orderbook_copy_failures_total", "counter", "COPY attempts that failed and were retried.", t => t.CopyFailures);
        TableCounter(sb, m, "orderbook_rows_abandoned_total", "counter", "Rows not committed before the shutdown drain deadline.", t => t.RowsAbandoned);
        TableCounter(sb, m, "orderbook_buffer_depth", "gauge", "Events waiting in the table's in-memory buffer.", t => t.BufferDepth());
        TableCounter(sb, m, "orderbook_buffer_capacity", "gauge", "Capacity of the table's in-memory buffer.", t => t.BufferCapacity);

        TableCounter(sb, m, "orderbook_rows_spooled_total", "counter", "Rows written to the disk spool because the database did not take them.", t => t.RowsSpooled);
        Header(sb, "orderbook_spool_bytes", "gauge", "Bytes in the disk spool waiting for the database.");
        Sample(sb, "orderbook_spool_bytes", null, m.Spool?.Bytes ?? 0);
        Header(sb, "orderbook_spool_records_replayed_total", "counter", "Spooled batches put into the database.");
        Sample(sb, "orderbook_spool_records_replayed_total", null, m.SpoolState?.RecordsReplayed ?? 0);
        Header(sb, "orderbook_spool_corrupt_records_total", "counter", "Torn or corrupt spool records cut off (their rows are lost).");
        Sample(sb, "orderbook_spool_corrupt_records_total", null, m.Spool?.CorruptRecords ?? 0);
        Header(sb, "orderbook_database_down", "gauge", "1 while COPY fails and batches go to the spool.");
        Sample(sb, "orderbook_database_down", null, m.SpoolState?.DatabaseDown == true ? 1 : 0);

        var mt = m.Maintenance;
        Header(sb, "orderbook_partitions_created_total", "counter", "Time partitions created by the maintenance loop (plain PostgreSQL, Citus).");
        Sample(sb, "orderbook_partitions_created_total", null, mt.PartitionsCreated);
        Header(sb, "orderbook_partitions_dropped_total", "counter", "Partitions or chunks dropped past retention by the maintenance loop.");
        Sample(sb, "orderbook_partitions_dropped_total", null, mt.PartitionsDropped);
        Header(sb, "orderbook_rollup_batches_total", "counter", "Committed batches rolled up into bt_1s / trade_1s by this daemon.");
        Sample(sb, "orderbook_rollup_batches_total", null, mt.RollupBatches);
        Header(sb, "orderbook_rollup_buckets_total", "counter", "Symbol-seconds (re)computed in bt_1s / trade_1s by this daemon.");
        Sample(sb, "orderbook_rollup_buckets_total", null, mt.RollupBuckets);
        Header(sb, "orderbook_storage_maintenance_failures_total", "counter", "Maintenance or rollup passes that failed (retried next pass).");
        Sample(sb, "orderbook_storage_maintenance_failures_total", null, mt.Failures);
        Header(sb, "orderbook_rollup_pending_batches", "gauge", "Committed batches not yet rolled up into bt_1s / trade_1s (as of the last pass).");
        Sample(sb, "orderbook_rollup_pending_batches", null, mt.Pending);
        Header(sb, "orderbook_rollup_last_success_seconds", "gauge", "Unix time of the last rollup pass that succeeded (0: none, or TimescaleDB does it).");
        Sample(sb, "orderbook_rollup_last_success_seconds", null, mt.LastRollupUnixMs / 1000.0);

        Header(sb, "orderbook_copy_batch_duration_seconds", "histogram", "Time to send and commit one COPY batch.");
        foreach (var t in m.Tables)
        {
            HistogramSamples(sb, "orderbook_copy_batch_duration_seconds", $"table=\"{t.Table}\"", t.CopySeconds);
        }

        Header(sb, "orderbook_exchange_to_commit_seconds", "histogram", "Exchange event time to database commit, per row.");
        foreach (var t in m.Tables)
        {
            HistogramSamples(sb, "orderbook_exchange_to_commit_seconds", $"table=\"{t.Table}\"", t.CommitLatencySeconds);
        }

        using var process = Process.GetCurrentProcess();
        Header(sb, "orderbook_process_resident_memory_bytes", "gauge", "Resident set size.");
        Sample(sb, "orderbook_process_resident_memory_bytes", null, process.WorkingSet64);
        Header(sb, "orderbook_process_cpu_seconds_total", "counter", "User and system CPU time.");
        Sample(sb, "orderbook_process_cpu_seconds_total", null, process.TotalProcessorTime.TotalSeconds);
        Header(sb, "orderbook_gc_heap_bytes", "gauge", "Managed heap size.");
        Sample(sb, "orderbook_gc_heap_bytes", null, GC.GetTotalMemory(false));
        Header(sb, "orderbook_gc_committed_bytes", "gauge", "Memory the GC has committed from the OS (heap plus free space it keeps).");
        Sample(sb, "orderbook_gc_committed_bytes", null, GC.GetGCMemoryInfo().TotalCommittedBytes);
        Header(sb, "orderbook_jit_compiled_methods_total", "counter", "Methods the JIT has compiled (tiering re-compiles hot ones); should level off after warm-up.");
        Sample(sb, "orderbook_jit_compiled_methods_total", null, System.Runtime.JitInfo.GetCompiledMethodCount());
        Header(sb, "orderbook_threadpool_threads", "gauge", "Thread pool threads.");
        Sample(sb, "orderbook_threadpool_threads", null, ThreadPool.ThreadCount);
        Header(sb, "orderbook_gc_allocated_bytes_total", "counter", "Bytes allocated on the managed heap.");
        Sample(sb, "orderbook_gc_allocated_bytes_total", null, GC.GetTotalAllocatedBytes());
        Header(sb, "orderbook_gc_collections_total", "counter", "Garbage collections by generation.");
        for (var g = 0; g <= GC.MaxGeneration; g++)
        {
            Sample(sb, "orderbook_gc_collections_total", $"generation=\"{g}\"", GC.CollectionCount(g));
        }

        Header(sb, "orderbook_ready", "gauge", "1 once the pipeline is running.");
        Sample(sb, "orderbook_ready", null, m.Ready ? 1 : 0);
        Header(sb, "orderbook_start_time_seconds", "gauge", "Unix time the process started.");
        Sample(sb, "orderbook_start_time_seconds", null, m.StartedUnixMs / 1000.0);
        return sb.ToString();
    }

    private static string ShardLabels(ShardStats s) => $"route=\"{s.Plan.Route.PathSegment()}\",shard=\"{s.Plan.Name}\"";

    private static void TableCounter(StringBuilder sb, IngestorMetrics m, string name, string type, string help, Func<TableStats, double> value)
    {
        Header(sb, name, type, help);
        foreach (var t in m.Tables)
        {
            Sample(sb, name, $"table=\"{t.Table}\"", value(t));
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
