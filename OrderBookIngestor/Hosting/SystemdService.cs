using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// Tells systemd how we are: READY=1 once the pipeline reads and flushes, STATUS= with the one-line
/// summary, WATCHDOG=1 at half of WatchdogSec but only while the pipeline makes progress (a stuck
/// pipeline stops the pings and systemd restarts us), and STOPPING=1 the moment shutdown begins.
/// </summary>
public sealed class SystemdService : BackgroundService
{
    private readonly SystemdNotifier _notifier;
    private readonly IngestorMetrics _metrics;
    private readonly PipelineStatus _status;
    private readonly IngestorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly TimeSpan? _watchdog;
    private readonly LogLimiter _stallLog;

    public SystemdService(SystemdNotifier notifier, TimeSpan? watchdog, IngestorMetrics metrics, PipelineStatus status, IngestorOptions options, TimeProvider time,
        ILoggerFactory loggers, IHostApplicationLifetime lifetime)
    {
        _notifier = notifier;
        _watchdog = watchdog;
        _metrics = metrics;
        _status = status;
        _options = options;
        _time = time;
        _log = loggers.CreateLogger("OrderBookIngestor.Systemd");
        _stallLog = new LogLimiter(time, TimeSpan.FromSeconds(30));
        // Registered now so that it is the first thing systemd hears when a stop begins, before the drain.
        lifetime.ApplicationStopping.Register(() => _notifier.Notify("STOPPING=1\nSTATUS=draining buffers"));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_notifier.Enabled)
        {
            return;
        }

        try
        {
            await _metrics.ReadyTask.WaitAsync(stoppingToken).ConfigureAwait(false);
            _notifier.Notify("READY=1\nSTATUS=" + SummaryReporter.Format(_metrics, _status, 0, 0));
            Log.NotifiedReady(_log, _watchdog?.TotalSeconds ?? 0);
            var interval = _watchdog is { } w ? w / 2 : TimeSpan.FromSeconds(5);
            using var timer = new PeriodicTimer(interval, _time);
            long lastMessages = _metrics.TotalMessages, lastRows = _metrics.Tables.Sum(t => t.RowsCommitted);
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                long messages = _metrics.TotalMessages, rows = _metrics.Tables.Sum(t => t.RowsCommitted);
                var status = "STATUS=" + SummaryReporter.Format(_metrics, _status, (messages - lastMessages) / interval.TotalSeconds, (rows - lastRows) / interval.TotalSeconds);
                (lastMessages, lastRows) = (messages, rows);
                if (_watchdog is { } window)
                {
                    if (Progress.IsProgressing(_metrics, window, TimeSpan.FromSeconds(_options.NoDataTimeoutSeconds), out var stall))
                    {
                        status += "\nWATCHDOG=1";
                    }
                    else if (_stallLog.TryEnter(out _))
                    {
                        Log.WatchdogWithheld(_log, stall!);
                    }
                }

                _notifier.Notify(status);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping: STOPPING=1 was sent by the lifetime callback
        }
    }
}
