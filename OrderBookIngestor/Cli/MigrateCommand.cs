using System.CommandLine;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Storage;
using Serilog.Extensions.Logging;

namespace OrderBookIngestor.Cli;

public static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Apply the database schema (idempotent) and exit.");
        var flags = RunFlags.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var options = RunCommand.LoadOrReport(parse, flags, requireDatabase: true);
            if (options is null)
            {
                return 2;
            }

            using var serilog = LoggingSetup.Create(options);
            using var provider = new SerilogLoggerProvider(serilog);
            await using var dataSource = IngestorHost.CreateDataSource(options.Database!);
            var migrator = new SchemaMigrator(dataSource, provider.CreateLogger("OrderBookIngestor.Storage"));
            try
            {
                var applied = await migrator.MigrateAsync(ct).ConfigureAwait(false);
                var tier = await migrator.DetectTierAsync(ct).ConfigureAwait(false);
                Console.WriteLine($"schema up to date: {applied} migration(s) applied, storage tier {tier}");
                return 0;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException)
            {
                Console.Error.WriteLine($"orderbook-ingestor: migrate failed against {DatabaseConnection.Redact(options.Database)}: {ex.Message}");
                return 1;
            }
        });
        return command;
    }
}
