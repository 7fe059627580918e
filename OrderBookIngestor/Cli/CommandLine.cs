using System.CommandLine;
using OrderBookIngestor.Configuration;

namespace OrderBookIngestor.Cli;

/// <summary>The command tree. Flags map onto <see cref="IngestorOptions"/> by name; nothing else lives here.</summary>
public static class CommandLine
{
    public static RootCommand Build()
    {
        var root = new RootCommand(
            "Records Binance USD-M Futures market data (bookTicker, aggTrade, depth) into PostgreSQL/TimescaleDB. " +
            "Without a subcommand it runs the recorder (same as 'run'). The database is best given as ORDERBOOK_DATABASE.");
        var rootFlags = RunFlags.AddTo(root);
        root.SetAction((parse, ct) => RunCommand.ExecuteAsync(parse, rootFlags, ct));

        var run = new Command("run", "Run the recorder (the default command).");
        var runFlags = RunFlags.AddTo(run);
        run.SetAction((parse, ct) => RunCommand.ExecuteAsync(parse, runFlags, ct));
        root.Add(run);

        root.Add(MigrateCommand.Create());
        root.Add(CheckCommand.Create());
        root.Add(SimulateCommand.Create());
        root.Add(BenchCommand.Create());
        root.Add(StorageBenchCommand.Create());
        root.Add(QuarantineCommand.Create());
        root.Add(ExportCommand.Create());
        return root;
    }
}

/// <summary>The recorder's flags, one per setting a user changes often; everything else via config or ORDERBOOK_*.</summary>
public sealed class RunFlags
{
    private readonly List<(string Key, Option<string> Option)> _options = [];

    public Option<string> Config { get; } = new("--config") { Description = "Extra JSON settings file, applied after appsettings.json and /etc/orderbook-ingestor/appsettings.json." };

    public static RunFlags AddTo(Command command)
    {
        var flags = new RunFlags();
        command.Add(flags.Config);
        flags.Add(command, nameof(IngestorOptions.Database), "--database", "Npgsql connection string or postgresql:// URL. Prefer the ORDERBOOK_DATABASE environment variable: flags are visible to every user in ps.");
        flags.Add(command, nameof(IngestorOptions.Symbols), "--symbols", "Comma-separated symbols (BTCUSDT,ETHUSDT), or ALL for every TRADING USDT-margined perpetual.");
        flags.Add(command, nameof(IngestorOptions.Channels), "--channels", "Comma-separated channels: bookTicker, aggTrade, and one of depth, depth@500ms, depth@100ms (default bookTicker,aggTrade).");
        flags.Add(command, nameof(IngestorOptions.Shards), "--shards", "WebSocket connections per route (default 1).");
        flags.Add(command, nameof(IngestorOptions.WsUrl), "--ws-url", "WebSocket base URL (default wss://fstream.binance.com).");
        flags.Add(command, nameof(IngestorOptions.RestUrl), "--rest-url", "REST base URL (default https://fapi.binance.com).");
        flags.Add(command, nameof(IngestorOptions.Http), "--http", "host:port for /health and /metrics (default 127.0.0.1:9470), or none.");
        flags.Add(command, nameof(IngestorOptions.MaxStreamsPerConnection), "--max-streams-per-connection", "Streams per connection before another is opened (default 200; Binance allows 1024).");
        flags.Add(command, nameof(IngestorOptions.BatchMaxRows), "--batch-max-rows", "Rows per COPY batch at most (default 10000).");
        flags.Add(command, nameof(IngestorOptions.BatchMaxAgeMs), "--batch-max-age-ms", "No batch waits longer than this after the previous one (default 100).");
        flags.Add(command, nameof(IngestorOptions.BatchTargetRows), "--batch-target-rows", "Rows per COPY aimed for: sent once this many wait or will have come at the current rate (default 100).");
        flags.Add(command, nameof(IngestorOptions.BufferCapacity), "--buffer-capacity", "Events buffered in memory per table (default 200000).");
        flags.Add(command, nameof(IngestorOptions.Instance), "--instance", "K/N: record only the symbols that hash to K of N (0-based), so N daemons split the symbol set over one database (default 0/1: all).");
        flags.Add(command, nameof(IngestorOptions.StorageTier), "--storage-tier", "auto (default), timescaledb, timescaledb-apache, postgres or citus; chosen at the first migrate.");
        flags.Add(command, nameof(IngestorOptions.RetentionDays), "--retention-days", "Days kept per table, e.g. book_ticker=30,trades=365 (0 keeps forever).");
        flags.Add(command, nameof(IngestorOptions.ChunkHours), "--chunk-hours", "Partition/chunk width in hours per table, e.g. book_ticker=6,trades=24.");
        flags.Add(command, nameof(IngestorOptions.SummaryIntervalSeconds), "--summary-interval", "Seconds between progress lines in the log; 0 turns them off (default 10).");
        flags.Add(command, nameof(IngestorOptions.LogLevel), "--log-level", "Verbose, Debug, Information, Warning, Error or Fatal.");
        flags.Add(command, nameof(IngestorOptions.LogFile), "--log-file", "Also write a daily rolling log file at this path.");
        return flags;
    }

    private void Add(Command command, string key, string name, string description)
    {
        var option = new Option<string>(name) { Description = description };
        command.Add(option);
        _options.Add((key, option));
    }

    public Dictionary<string, string?> Values(ParseResult parse)
        => _options.ToDictionary(o => o.Key, o => parse.GetValue(o.Option));
}
