using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;
using Serilog;
using Serilog.Events;

namespace OrderBookIngestor.Hosting;

public static class LoggingSetup
{
    /// <summary>Console always (journald adds its own timestamps when JOURNAL_STREAM is set); a rolling daily file when LogFile is set.</summary>
    /// <summary>Under journald (JOURNAL_STREAM set) console lines carry a syslog priority prefix and no timestamp (journald adds one).</summary>
    public const string JournalTemplate = "{SyslogPriority}{SourceContext}: {Message:lj}{NewLine}{Exception}";

    public static Serilog.Core.Logger Create(IngestorOptions options, bool? underJournal = null)
    {
        var level = Enum.TryParse<LogEventLevel>(options.LogLevel, ignoreCase: true, out var l) ? l : LogEventLevel.Information;
        var journal = underJournal ?? !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM"));
        var template = journal ? JournalTemplate : "[{Timestamp:HH:mm:ss.fff} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}";
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(level)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Npgsql", LogEventLevel.Warning)
            .Enrich.With<SyslogPriorityEnricher>();
        config = config.WriteTo.Console(outputTemplate: template, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
        if (!string.IsNullOrWhiteSpace(options.LogFile))
        {
            config = config.WriteTo.File(
                options.LogFile,
                rollingInterval: RollingInterval.Day,
                retainedFileCountLimit: options.LogRetainedFiles,
                outputTemplate: "{Timestamp:yyyy-MM-ddTHH:mm:ss.fffzzz} {Level:u3} {SourceContext}: {Message:lj}{NewLine}{Exception}",
                formatProvider: System.Globalization.CultureInfo.InvariantCulture);
        }

        return config.CreateLogger();
    }
}
