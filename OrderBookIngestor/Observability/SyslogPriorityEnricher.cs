using Serilog.Core;
using Serilog.Events;

namespace OrderBookIngestor.Observability;

/// <summary>
/// Adds the sd-daemon priority prefix ("&lt;3&gt;" error ... "&lt;7&gt;" debug) that journald reads from a service's
/// stdout, so `journalctl -p warning` and coloured output work without a journald library.
/// </summary>
public sealed class SyslogPriorityEnricher : ILogEventEnricher
{
    private static readonly LogEventProperty[] Priorities =
    [
        new("SyslogPriority", new ScalarValue("<7>")), // Verbose
        new("SyslogPriority", new ScalarValue("<7>")), // Debug
        new("SyslogPriority", new ScalarValue("<6>")), // Information
        new("SyslogPriority", new ScalarValue("<4>")), // Warning
        new("SyslogPriority", new ScalarValue("<3>")), // Error
        new("SyslogPriority", new ScalarValue("<2>")), // Fatal
    ];

    public static string Prefix(LogEventLevel level) => ((ScalarValue)Priorities[(int)level].Value).Value!.ToString()!;

    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
        => logEvent.AddPropertyIfAbsent(Priorities[(int)logEvent.Level]);
}
