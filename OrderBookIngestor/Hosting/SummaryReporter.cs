using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Hosting;

/// <summary>Writes one line every SummaryIntervalSeconds: what arrived, what was committed, and how far behind we are.</summary>
public sealed class SummaryReporter : BackgroundService
{
    private readonly IngestorOptions _options;
    private readonly IngestorMetrics _metrics;
    private readonly PipelineStatus _status;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    public SummaryReporter(IngestorOptions options, IngestorMetrics metrics, PipelineStatus parts, TimeProvider time, ILoggerFactory loggers)
    {
        _options = options;
        _metrics = metrics;
        _status = parts;
        _time = time;
        _log = loggers.CreateLogger("OrderBookIngestor.Summary");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.SummaryIntervalSeconds <= 0)
        {
            return;
        }

        var interval = TimeSpan.FromSeconds(_options.SummaryIntervalSeconds);
        using var timer = new PeriodicTimer(interval, _time);
        long lastMessages = 0, lastRows = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var messages = _metrics.TotalMessages;
                var rows = _metrics.Tables.Sum(t => t.RowsCommitted);
                Log.Summary(_log, Format(_metrics, _status, (messages - lastMessages) / interval.TotalSeconds, (rows - lastRows) / interval.TotalSeconds));
                lastMessages = messages;
                lastRows = rows;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down
        }
    }

    public static string Format(IngestorMetrics m, PipelineStatus parts, double messagesPerSecond, double rowsPerSecond)
    {
        var shards = m.Shards;
        var streaming = shards.Count(s => s.State == ConnectionState.Streaming);
        var c = CultureInfo.InvariantCulture;
        var p99 = m.Tables.Select(t => t.CommitLatencySeconds.Quantile(0.99)).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
        return string.Create(c,
            $"msgs {m.TotalMessages:N0} ({messagesPerSecond:N0}/s) | rows book_ticker {m.BookTicker.RowsCommitted:N0} trades {m.Trades.RowsCommitted:N0} ({rowsPerSecond:N0}/s) | " +
            $"buffered {m.BookTicker.BufferDepth() + m.Trades.BufferDepth():N0} | rejected {m.TotalRejects:N0} | reconnects {shards.Sum(s => s.Reconnects):N0} | " +
            $"streaming {streaming}/{shards.Count} | p99 commit lag {(double.IsNaN(p99) ? "-" : (p99 * 1000).ToString("N0", c) + " ms")}") + NotYetStored(m, parts, c);
    }

    /// <summary>What is not in the database yet: the spool (while it holds anything) and the quarantine (once it does).</summary>
    private static string NotYetStored(IngestorMetrics m, PipelineStatus parts, CultureInfo c)
    {
        var part = "";
        var bytes = parts.Spool?.Bytes ?? 0;
        if (bytes > 0 || parts.SpoolState?.DatabaseDown == true)
        {
            part += string.Create(c, $" | spool {bytes / 1048576.0:N1} MB, {m.Tables.Sum(t => t.RowsSpooled):N0} rows spooled, {m.Tables.Sum(t => t.RowsReplayed):N0} replayed")
                + (parts.SpoolState?.DatabaseDown == true ? " (database down)" : "");
        }

        var quarantined = parts.Quarantine is { } q ? m.Tables.Sum(t => q.Batches(t.Table)) : 0;
        return quarantined > 0 ? part + string.Create(c, $" | quarantined {quarantined:N0} batches") : part;
    }
}
