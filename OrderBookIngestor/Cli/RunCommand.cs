using System.CommandLine;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Hosting;

namespace OrderBookIngestor.Cli;

public static class RunCommand
{
    public static async Task<int> ExecuteAsync(ParseResult parse, RunFlags flags, CancellationToken ct)
    {
        var options = LoadOrReport(parse, flags, requireDatabase: true);
        if (options is null)
        {
            return 2;
        }

        // The host owns SIGTERM/SIGINT handling and the ordered drain; the parser's token is not passed on
        // so that a signal starts a drain instead of cancelling it.
        _ = ct;
        var configFile = parse.GetValue(flags.Config);
        var values = flags.Values(parse);
        return await IngestorHost.RunAsync(options, () => OptionsLoader.Load(configFile, values), CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Loads and validates options; prints every problem to stderr and returns null when any.</summary>
    public static IngestorOptions? LoadOrReport(ParseResult parse, RunFlags flags, bool requireDatabase)
    {
        IngestorOptions options;
        try
        {
            options = OptionsLoader.Load(parse.GetValue(flags.Config), flags.Values(parse));
        }
        catch (ConfigurationException ex)
        {
            Console.Error.WriteLine($"orderbook-ingestor: configuration error: {ex.Message}");
            return null;
        }

        var errors = OptionsValidator.Validate(options, requireDatabase);
        if (errors.Count == 0)
        {
            return options;
        }

        foreach (var e in errors)
        {
            Console.Error.WriteLine($"orderbook-ingestor: configuration error: {e}");
        }

        return null;
    }
}
