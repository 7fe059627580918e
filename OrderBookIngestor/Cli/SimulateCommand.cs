using System.CommandLine;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Simulator;
using Serilog.Extensions.Logging;

namespace OrderBookIngestor.Cli;

public static class SimulateCommand
{
    public static Command Create()
    {
        var command = new Command("simulate", "Run a Binance-compatible fake exchange (WebSocket /public and /market routes, REST exchangeInfo) for tests, demos and load tests.");
        var host = new Option<string>("--host") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to listen on.", DefaultValueFactory = _ => 9471 };
        var symbols = new Option<int>("--symbols") { Description = "How many symbols to list.", DefaultValueFactory = _ => 50 };
        var rate = new Option<int>("--rate") { Description = "Events per second across all subscribed streams.", DefaultValueFactory = _ => 2000 };
        var events = new Option<long>("--events") { Description = "Stop after this many events (0: run until stopped).", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seed: the same seed gives the same ids, prices and quantities.", DefaultValueFactory = _ => 1 };
        var wait = new Option<int>("--wait-streams") { Description = "Start the market once this many streams are subscribed.", DefaultValueFactory = _ => 1 };
        var allStreams = new Option<bool>("--all-streams") { Description = "Generate for every listed stream even when nobody subscribes (a recorder's downtime then really misses events)." };
        var lifetime = new Option<double>("--max-connection-lifetime") { Description = "Close client connections after this many seconds, as Binance does at 24 h (0: never)." };
        var join = new Option<string>("--snapshot-join")
        {
            Description = "How depth snapshots meet the diff stream: at-last (lastUpdateId is the last diff's u), behind (one diff behind: the next diff's pu is lastUpdateId, as the live exchange often has it), inside (U <= lastUpdateId <= u, as documented), cycle (each in turn).",
            DefaultValueFactory = _ => "cycle",
        };
        join.AcceptOnlyFromAmong("cycle", "at-last", "behind", "inside");
        foreach (var o in new Option[] { host, port, symbols, rate, events, seed, wait, allStreams, lifetime, join })
        {
            command.Add(o);
        }

        command.SetAction(async (parse, ct) =>
        {
            var options = new SimulatorOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                Symbols = parse.GetValue(symbols),
                Rate = parse.GetValue(rate),
                Events = parse.GetValue(events),
                Seed = parse.GetValue(seed),
                WaitForStreams = parse.GetValue(wait),
                AllStreamsActive = parse.GetValue(allStreams),
                MaxConnectionLifetimeSeconds = parse.GetValue(lifetime),
                SnapshotJoin = parse.GetValue(join) switch
                {
                    "at-last" => SnapshotJoin.AtLastDiff,
                    "behind" => SnapshotJoin.OneDiffBehind,
                    "inside" => SnapshotJoin.InsideNextDiff,
                    _ => SnapshotJoin.Cycle,
                },
            };
            if (options.Symbols is < 1 or > 5000 || options.Rate < 1 || options.Events < 0 || options.Port is < 0 or > 65535)
            {
                Console.Error.WriteLine("orderbook-ingestor simulate: --symbols must be 1..5000, --rate at least 1, --events 0 or more, --port 0..65535.");
                return 2;
            }

            using var serilog = LoggingSetup.Create(new IngestorOptions());
            using var provider = new SerilogLoggerProvider(serilog);
            using var factory = LoggerFactory.Create(b => b.AddProvider(provider));
            await using var server = new SimulatorServer(options, TimeProvider.System, factory);
            await server.StartAsync(ct).ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // SIGINT/SIGTERM
            }

            Console.WriteLine($"simulator: generated {server.Ledger.Generated} events, delivered {server.Ledger.Delivered} frames");
            return 0;
        });
        return command;
    }
}
