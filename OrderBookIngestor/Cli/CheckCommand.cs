using System.CommandLine;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;

namespace OrderBookIngestor.Cli;

public static class CheckCommand
{
    public static Command Create()
    {
        var command = new Command("check", "Validate the configuration, print the effective settings (password redacted) and the connection plan, and exit.");
        var flags = RunFlags.AddTo(command);
        command.SetAction(parse =>
        {
            var options = RunCommand.LoadOrReport(parse, flags, requireDatabase: false);
            if (options is null)
            {
                return 2;
            }

            Console.WriteLine($"database: {DatabaseConnection.Redact(options.Database)}");
            Console.WriteLine($"symbols: {string.Join(",", options.Symbols)}");
            Console.WriteLine($"channels: {string.Join(",", options.Channels)}");
            Console.WriteLine($"ws: {options.WsUrl}  rest: {options.RestUrl}  http: {options.Http}");
            Console.WriteLine($"batch: about {options.BatchTargetRows} rows, at most {options.BatchMaxRows} rows or {options.BatchMaxAgeMs} ms; buffer {options.BufferCapacity} per table");
            Console.WriteLine($"storage: tier {options.StorageTier}; " + string.Join(", ", Configuration.StorageLayout.Tables.Select(t =>
                $"{t.Table} {Configuration.StorageLayout.ChunkHours(options, t)} h/{(Configuration.StorageLayout.RetentionDays(options, t) is var d and > 0 ? $"{d} d" : "forever")}")));
            var split = InstanceSplit.Parse(options.Instance);
            if (!(options.Symbols.Count == 1 && OptionsValidator.IsAll(options.Symbols[0])))
            {
                var own = options.Symbols.Select(s => s.ToUpperInvariant()).Where(split.Owns).ToList();
                Console.WriteLine($"instance {split}: {own.Count} of {options.Symbols.Count} symbols: {string.Join(",", own)}");
                var channels = options.Channels.Select(c => MarketChannels.TryParse(c, out var ch) ? ch : default);
                foreach (var plan in ShardPlanner.Plan(own, channels, options.Shards, options.MaxStreamsPerConnection))
                {
                    Console.WriteLine($"connection {plan.Name}: {BinanceProtocol.CombinedStreamUri(options.WsUrl, plan.Route)} {plan.Streams.Count} streams");
                }
            }

            return 0;
        });
        return command;
    }
}
