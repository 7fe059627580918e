using Serilog.Events;
using Serilog.Formatting.Display;
using Serilog.Parsing;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Tests.Unit;

public sealed class JournalLoggingTests
{
    [TestCase(LogEventLevel.Debug, "<7>")]
    [TestCase(LogEventLevel.Information, "<6>")]
    [TestCase(LogEventLevel.Warning, "<4>")]
    [TestCase(LogEventLevel.Error, "<3>")]
    [TestCase(LogEventLevel.Fatal, "<2>")]
    public void UnderJournald_EachLineStartsWithItsSyslogPriority(LogEventLevel level, string prefix)
    {
        var e = new LogEvent(DateTimeOffset.UnixEpoch, level, null, new MessageTemplateParser().Parse("COPY into {Table} failed"),
            [new LogEventProperty("Table", new ScalarValue("trades")), new LogEventProperty("SourceContext", new ScalarValue("OrderBookIngestor.Storage"))]);
        new SyslogPriorityEnricher().Enrich(e, null!);
        using var text = new StringWriter();
        new MessageTemplateTextFormatter(LoggingSetup.JournalTemplate, System.Globalization.CultureInfo.InvariantCulture).Format(e, text);
        Assert.That(text.ToString(), Is.EqualTo($"{prefix}OrderBookIngestor.Storage: COPY into trades failed{Environment.NewLine}"));
    }
}
