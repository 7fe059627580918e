using OrderBookIngestor.Cli;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Hosting;

// Not for the simulator: it serves every connection of a benchmark at its limit, where hand-offs to the pool pay.
if (args.Length == 0 || args[0] != "simulate")
{
    SocketCompletions.PreferInline();
}

var parse = CommandLine.Build().Parse(args);
if (parse.Errors.Count > 0)
{
    // An unknown flag or a missing value is a bad setting: exit 2, like every other (System.CommandLine's default is 1).
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine($"orderbook-ingestor: {error.Message}");
    }

    Console.Error.WriteLine("See orderbook-ingestor --help.");
    return ExitCodes.Configuration;
}

return await parse.InvokeAsync().ConfigureAwait(false);
