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
        var createRoles = new Option<bool>("--create-roles")
        {
            Description = "Also create the group roles orderbook_writer (what the daemon needs) and orderbook_reader (read-only analysts) and grant them; needs CREATEROLE.",
        };
        command.Options.Add(createRoles);
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
            var migrator = new SchemaMigrator(dataSource, provider.CreateLogger("OrderBookIngestor.Storage"), options);
            try
            {
                var outcome = await migrator.MigrateAsync(ct, parse.GetValue(createRoles)).ConfigureAwait(false);
                if (outcome.TierNote is not null)
                {
                    Console.WriteLine($"note: {outcome.TierNote}");
                }

                Console.WriteLine($"schema up to date: {outcome.Applied} migration(s) applied, storage tier {outcome.Tier}"
                    + (outcome.SetupApplied ? ", tier setup and views (re)applied" : "")
                    + (parse.GetValue(createRoles) ? ", roles orderbook_writer and orderbook_reader granted" : ""));
                return 0;
            }
            catch (ConfigurationException ex)
            {
                Console.Error.WriteLine($"orderbook-ingestor: {ex.Message}");
                return ExitCodes.Configuration;
            }
            catch (Exception ex) when (DatabaseErrors.IsConfigurationProblem(ex))
            {
                Console.Error.WriteLine($"orderbook-ingestor: migrate refused by {DatabaseConnection.Redact(options.Database)}: {DatabaseErrors.Describe(ex)}");
                return ExitCodes.Configuration;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException)
            {
                Console.Error.WriteLine($"orderbook-ingestor: migrate failed against {DatabaseConnection.Redact(options.Database)}: {DatabaseErrors.Describe(ex)}");
                return ExitCodes.Failure;
            }
        });
        return command;
    }
}
