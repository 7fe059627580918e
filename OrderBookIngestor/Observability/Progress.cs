
namespace OrderBookIngestor.Observability;

/// <summary>
/// Whether the pipeline is making progress, for the systemd watchdog. A quiet market or a database that
/// refuses COPY is not a stall (the loops are alive and retrying); a stall is a loop that stopped turning:
/// rows waiting while no COPY attempt has finished for the whole window, or a connection that claims to be
/// streaming yet has received nothing for longer than its own no-data watchdog allows.
/// </summary>
public static class Progress
{
    public static bool IsProgressing(IngestorMetrics m, TimeSpan window, TimeSpan noDataTimeout, out string? stall)
    {
        stall = null;
        var now = m.Time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var t in m.Tables)
        {
            var lastActivity = Math.Max(t.LastAttemptUnixMs, m.StartedUnixMs);
            if (t.BufferDepth() > 0 && now - lastActivity > window.TotalMilliseconds)
            {
                stall = $"{t.Table}: {t.BufferDepth()} rows waiting, no COPY attempt finished for {(now - lastActivity) / 1000}s";
                return false;
            }
        }

        var limit = noDataTimeout.TotalMilliseconds + window.TotalMilliseconds;
        foreach (var s in m.Shards)
        {
            if (s.State == ConnectionState.Streaming && s.LastMessageUnixMs > 0 && now - s.LastMessageUnixMs > limit)
            {
                stall = $"{s.Name}: streaming but nothing received for {(now - s.LastMessageUnixMs) / 1000}s";
                return false;
            }
        }

        return true;
    }
}
