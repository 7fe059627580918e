using System.Text.Json;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Hosting;

public enum HealthStatus
{
    Healthy,
    Degraded,
    Unhealthy,
}

/// <summary>The /health document, computed from the shared metrics on request.</summary>
public static class HealthReport
{
    /// <summary>A flusher with rows waiting and no commit for this long means the database path is stuck.</summary>
    private const long StuckFlushMs = 60_000;

    public static HealthStatus Evaluate(IngestorMetrics m, PipelineStatus parts, out List<string> reasons)
    {
        reasons = [];
        var now = m.Time.GetUtcNow().ToUnixTimeMilliseconds();
        if (m.StartupError is not null)
        {
            reasons.Add("startup failed: " + m.StartupError);
            return HealthStatus.Unhealthy;
        }

        if (!m.Ready)
        {
            reasons.Add("starting");
            return HealthStatus.Unhealthy;
        }

        var status = HealthStatus.Healthy;
        var shards = m.Shards;
        var streaming = shards.Count(s => s.State == ConnectionState.Streaming);
        if (shards.Count > 0 && streaming == 0)
        {
            reasons.Add("no connection is streaming");
            status = HealthStatus.Unhealthy;
        }
        else if (streaming < shards.Count)
        {
            reasons.Add($"{shards.Count - streaming} of {shards.Count} connections not streaming");
            status = HealthStatus.Degraded;
        }

        if (parts.SpoolState?.DatabaseDown == true)
        {
            reasons.Add($"database unavailable: batches are spooled to disk ({parts.Spool?.Bytes ?? 0} bytes)");
            status = Max(status, HealthStatus.Degraded);
        }
        else if (parts.Spool is { Bytes: > 0 } spooled)
        {
            reasons.Add($"replaying {spooled.Bytes} spooled bytes");
            status = Max(status, HealthStatus.Degraded);
        }

        var silent = m.SilentStreams();
        if (silent.Count > 0)
        {
            reasons.Add($"{silent.Count} silent stream(s): {string.Join(", ", silent.Take(10))}");
            status = Max(status, HealthStatus.Degraded);
        }

        var (synced, books, _) = m.Books();
        if (synced < books)
        {
            reasons.Add($"{books - synced} of {books} order books resyncing");
        }

        foreach (var t in m.Tables)
        {
            var depth = t.BufferDepth();
            var since = t.LastCommitUnixMs == 0 ? now - m.StartedUnixMs : now - t.LastCommitUnixMs;
            if (depth > 0 && since > StuckFlushMs)
            {
                reasons.Add($"{t.Table}: {depth} rows waiting, no commit for {since / 1000}s");
                status = HealthStatus.Unhealthy;
            }
            else if (t.LastError is not null)
            {
                reasons.Add($"{t.Table}: last COPY failed");
                status = Max(status, HealthStatus.Degraded);
            }

            if (t.BufferCapacity > 0 && depth > t.BufferCapacity * 0.8)
            {
                reasons.Add($"{t.Table}: buffer {depth * 100 / t.BufferCapacity}% full");
                status = Max(status, HealthStatus.Degraded);
            }
        }

        return status;
    }

    public static void Write(Utf8JsonWriter w, IngestorMetrics m, PipelineStatus parts)
    {
        var status = Evaluate(m, parts, out var reasons);
        var now = m.Time.GetUtcNow().ToUnixTimeMilliseconds();
        w.WriteStartObject();
        w.WriteString("status", status.ToString().ToLowerInvariant());
        w.WriteStartArray("reasons");
        foreach (var r in reasons)
        {
            w.WriteStringValue(r);
        }

        w.WriteEndArray();
        w.WriteString("version", ThisAssembly.Version);
        w.WriteNumber("uptimeSeconds", (now - m.StartedUnixMs) / 1000.0);
        w.WriteString("storageTier", m.StorageTier);
        w.WriteStartObject("storage");
        w.WriteString("tier", m.StorageTier);
        w.WriteNumber("partitionsCreated", parts.Maintenance.PartitionsCreated);
        w.WriteNumber("partitionsDropped", parts.Maintenance.PartitionsDropped);
        w.WriteNumber("rollupBatches", parts.Maintenance.RollupBatches);
        w.WriteNumber("maintenanceFailures", parts.Maintenance.Failures);
        if (parts.Maintenance.LastRollupUnixMs > 0)
        {
            w.WriteNumber("lastRollupAgeSeconds", (now - parts.Maintenance.LastRollupUnixMs) / 1000.0);
        }

        if (parts.Maintenance.LastMaintenanceUnixMs > 0)
        {
            w.WriteNumber("lastMaintenanceAgeSeconds", (now - parts.Maintenance.LastMaintenanceUnixMs) / 1000.0);
        }

        w.WriteEndObject();
        w.WriteStartArray("silentStreams");
        foreach (var stream in m.SilentStreams())
        {
            w.WriteStringValue(stream);
        }

        w.WriteEndArray();
        var (synced, books, resyncs) = m.Books();
        w.WriteStartObject("books");
        w.WriteNumber("synced", synced);
        w.WriteNumber("total", books);
        w.WriteNumber("resyncs", resyncs);
        w.WriteEndObject();
        w.WriteStartArray("shards");
        foreach (var s in m.Shards)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteString("route", s.Route);
            w.WriteNumber("streams", s.StreamCount);
            w.WriteString("state", s.State.ToString().ToLowerInvariant());
            w.WriteNumber("messages", s.Messages);
            w.WriteNumber("reconnects", s.Reconnects);
            if (s.LastMessageUnixMs > 0)
            {
                w.WriteNumber("lastMessageAgeSeconds", (now - s.LastMessageUnixMs) / 1000.0);
            }
            else
            {
                w.WriteNull("lastMessageAgeSeconds");
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartObject("database");
        // Reachable as far as the last COPY attempts tell: any table whose last attempt failed says no.
        w.WriteBoolean("reachable", parts.SpoolState?.DatabaseDown != true && m.Tables.All(t => t.LastError is null));
        w.WriteStartObject("spool");
        w.WriteBoolean("enabled", parts.Spool is not null);
        w.WriteNumber("bytes", parts.Spool?.Bytes ?? 0);
        w.WriteNumber("corruptRecords", parts.Spool?.CorruptRecords ?? 0);
        w.WriteEndObject();
        foreach (var t in m.Tables)
        {
            w.WriteStartObject(t.Table);
            w.WriteNumber("rowsCommitted", t.RowsCommitted);
            w.WriteNumber("bufferDepth", t.BufferDepth());
            w.WriteNumber("bufferCapacity", t.BufferCapacity);
            w.WriteNumber("readersWaiting", t.ReadersWaiting());
            if (t.LastCommitUnixMs > 0)
            {
                w.WriteNumber("lastFlushAgeSeconds", (now - t.LastCommitUnixMs) / 1000.0);
            }
            else
            {
                w.WriteNull("lastFlushAgeSeconds");
            }

            w.WriteNumber("copyFailures", t.CopyFailures);
            w.WriteString("lastError", t.LastError);
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static HealthStatus Max(HealthStatus a, HealthStatus b) => a > b ? a : b;
}
