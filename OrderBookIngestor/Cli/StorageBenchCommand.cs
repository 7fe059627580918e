using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Cli;

/// <summary>
/// Storage at scale: loads tens of millions of bookTicker and aggTrade rows through the daemon's own write
/// path (binary COPY + batch ledger, one writer per table as the flushers do) with the rollup/maintenance loop
/// running beside it, timestamps spread from yesterday 00:00 UTC to now in time order, as a recorder that ran
/// since yesterday would have written them. Reports write throughput per tenth of the load (does it drop as the
/// tables grow?), how long the rollups take to catch up, table sizes, and the time of the queries users run.
/// scripts/bench.sh runs it with BENCH_STORAGE_ROWS.
/// </summary>
public static class StorageBenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench-storage", "Load N rows through the write path into an empty database and time writes and the psql views at that size.");
        var database = new Option<string>("--database") { Description = "Connection string of an empty database (it is migrated first).", Required = true };
        var rows = new Option<long>("--rows") { Description = "Rows to load in all (2/3 book_ticker, 1/3 trades).", DefaultValueFactory = _ => 30_000_000 };
        var symbolCount = new Option<int>("--symbols") { Description = "Symbols the rows are spread over.", DefaultValueFactory = _ => 200 };
        command.Add(database);
        command.Add(rows);
        command.Add(symbolCount);
        command.SetAction(async (parse, ct) =>
        {
            var connection = parse.GetValue(database)!;
            await using var dataSource = IngestorHost.CreateDataSource(connection);
            try
            {
                return await RunAsync(dataSource, Math.Max(30_000, parse.GetValue(rows)), Math.Clamp(parse.GetValue(symbolCount), 1, 2000), ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ConfigurationException or NpgsqlException or IOException or TimeoutException)
            {
                // A database that is missing, refuses us or goes away: one line, not a stack trace.
                Console.Error.WriteLine($"orderbook-ingestor: bench-storage failed against {DatabaseConnection.Redact(connection)}: "
                    + (ex is ConfigurationException ? ex.Message : DatabaseErrors.Describe(ex)));
                return ex is ConfigurationException || DatabaseErrors.IsConfigurationProblem(ex) ? ExitCodes.Configuration : ExitCodes.Failure;
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(NpgsqlDataSource dataSource, long total, int symbolCount, CancellationToken ct)
    {
        var outcome = await new SchemaMigrator(dataSource, NullLogger.Instance).MigrateAsync(ct).ConfigureAwait(false);
        var names = Enumerable.Range(0, symbolCount).Select(i => string.Create(CultureInfo.InvariantCulture, $"S{i:D4}USDT")).ToList();
        var ids = await new SymbolStore(dataSource).RegisterAsync(names.Select(n => new SymbolInfo(n, n[..^4], "USDT", "TRADING", "PERPETUAL")), ct).ConfigureAwait(false);
        var symbolIds = names.Select(n => ids[n]).ToArray();
        var end = DateTimeOffset.UtcNow;
        var start = new DateTimeOffset(end.UtcDateTime.Date.AddDays(-1), TimeSpan.Zero);

        // The partitions a daemon running since yesterday would have created as time passed.
        if (outcome.Tier is StorageTiers.Postgres or StorageTiers.Citus)
        {
            await using var cmd = dataSource.CreateCommand("""
                SELECT count(marketdata.ensure_partition(t.table_name, g))
                FROM marketdata.storage_tables t, generate_series($1, $2, t.chunk_interval) g
                """);
            cmd.Parameters.Add(new NpgsqlParameter { Value = start });
            cmd.Parameters.Add(new NpgsqlParameter { Value = end });
            await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"storage tier {outcome.Tier}; loading {total:N0} rows over {symbolCount} symbols, event times {start:yyyy-MM-dd HH:mm} to {end:yyyy-MM-dd HH:mm} UTC"));

        var stats = new MaintenanceStats();
        using var stopMaintenance = new CancellationTokenSource();
        var maintainer = new StorageMaintainer(dataSource, TimeProvider.System, NullLogger.Instance, stats, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        var maintenance = StorageTiers.DaemonMaintained(outcome.Tier) ? Task.Run(() => maintainer.RunAsync(stopMaintenance.Token), CancellationToken.None) : Task.CompletedTask;

        var bookRows = total * 2 / 3;
        var tradeRows = total - bookRows;
        var clock = Stopwatch.StartNew();
        var writers = await Task.WhenAll(
            Task.Run(() => LoadAsync<BookTickerEvent, BookTickerRows>(dataSource, bookRows, symbolIds, start, end, Book, ct), ct),
            Task.Run(() => LoadAsync<TradeEvent, TradeRows>(dataSource, tradeRows, symbolIds, start, end, Trade, ct), ct)).ConfigureAwait(false);
        var loadSeconds = clock.Elapsed.TotalSeconds;

        // Rollups catch up with what is still pending once the writers stop.
        var catchUp = Stopwatch.StartNew();
        if (StorageTiers.DaemonMaintained(outcome.Tier))
        {
            while (await PendingAsync(dataSource, ct).ConfigureAwait(false) > 0)
            {
                await Task.Delay(200, ct).ConfigureAwait(false);
            }
        }

        var catchUpSeconds = catchUp.Elapsed.TotalSeconds;
        await stopMaintenance.CancelAsync().ConfigureAwait(false);
        await maintenance.ConfigureAwait(false);

        Console.WriteLine();
        Console.WriteLine("| tenth of the load | book_ticker rows/s | trades rows/s |");
        Console.WriteLine("|---|---|---|");
        for (var d = 0; d < 10; d++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {d + 1} | {writers[0][d]:N0} | {writers[1][d]:N0} |"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"loaded {total:N0} rows in {loadSeconds:F1} s: {total / loadSeconds:N0} rows/s with the rollup loop running beside ({stats.RollupBatches:N0} batches rolled up, {stats.RollupBuckets:N0} symbol-seconds); rollups caught up {catchUpSeconds:F1} s after the last write"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"first tenth {writers[0][0] + writers[1][0]:N0} rows/s, last tenth {writers[0][9] + writers[1][9]:N0} rows/s (both tables)"));

        await using (var analyze = dataSource.CreateCommand("ANALYZE"))
        {
            analyze.CommandTimeout = 0;
            await analyze.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        Console.WriteLine();
        Console.WriteLine("| table | rows | size with indexes |");
        Console.WriteLine("|---|---|---|");
        foreach (var table in new[] { "book_ticker", "trades", "bt_1s", "trade_1s" })
        {
            await using var size = dataSource.CreateCommand($"""
                SELECT (SELECT count(*) FROM marketdata.{table}),
                       (SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
                        WHERE c.oid = 'marketdata.{table}'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'marketdata.{table}'::regclass))
                """);
            size.CommandTimeout = 0;
            await using var reader = await size.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {table} | {reader.GetInt64(0):N0} | {(reader.IsDBNull(1) ? "-" : reader.GetString(1))} |"));
        }

        Console.WriteLine();
        Console.WriteLine("| query (after ANALYZE; 3 runs) | rows returned | fastest | slowest |");
        Console.WriteLine("|---|---|---|---|");
        await TimeAsync(dataSource, $"SELECT * FROM marketdata.get_yesterday_training_data({symbolIds[0]})", "get_yesterday_training_data(one symbol)", ct).ConfigureAwait(false);
        await TimeAsync(dataSource, "SELECT * FROM marketdata.get_yesterday_training_data()", "get_yesterday_training_data(every symbol; 1 run)", ct, runs: 1).ConfigureAwait(false);
        await TimeAsync(dataSource, "SELECT * FROM marketdata.ingestion_stats", "ingestion_stats (last hour, per symbol)", ct).ConfigureAwait(false);
        await TimeAsync(dataSource, "SELECT * FROM marketdata.ingestion_stats_by_table", "ingestion_stats_by_table", ct).ConfigureAwait(false);
        await TimeAsync(dataSource, "SELECT * FROM marketdata.data_quality_check", "data_quality_check (last hour, all symbols)", ct).ConfigureAwait(false);
        await TimeAsync(dataSource, "SELECT * FROM marketdata.data_quality_24h", "data_quality_24h (all symbols)", ct).ConfigureAwait(false);
        await TimeAsync(dataSource, "SELECT * FROM marketdata.feed_gap_summary", "feed_gap_summary", ct).ConfigureAwait(false);
        return 0;
    }

    private static BookTickerEvent Book(int symbol, long id, long timeMs, Random random)
    {
        var bid = 100 + (symbol % 50) + Math.Round(random.NextDouble(), 2);
        return new BookTickerEvent(symbol, id, timeMs, timeMs, (timeMs * 1000) + random.Next(1_000, 60_000), bid, 0.001 + Math.Round(random.NextDouble() * 5, 3), bid + 0.01, 0.001 + Math.Round(random.NextDouble() * 5, 3));
    }

    private static TradeEvent Trade(int symbol, long id, long timeMs, Random random)
        => new(symbol, id, timeMs, timeMs, (timeMs * 1000) + random.Next(1_000, 60_000), 100 + (symbol % 50) + Math.Round(random.NextDouble(), 2),
            0.001 + Math.Round(random.NextDouble(), 3), id * 2, (id * 2) + 1, random.Next(2) == 0);

    /// <summary>Writes <paramref name="rows"/> rows in time order in 10,000-row batches; returns rows/s per tenth of the load.</summary>
    private static async Task<double[]> LoadAsync<T, TEncoder>(NpgsqlDataSource dataSource, long rows, int[] symbols, DateTimeOffset start, DateTimeOffset end,
        Func<int, long, long, Random, T> make, CancellationToken ct)
        where T : struct
        where TEncoder : IRowEncoder<T>
    {
        const int BatchRows = 10_000;
        var committer = new BatchCommitter(dataSource);
        var tableId = BatchCommitter.TableId(TEncoder.Table);
        var random = new Random(TEncoder.Table.Length);
        var spanMs = end.ToUnixTimeMilliseconds() - start.ToUnixTimeMilliseconds();
        var perTenth = new double[10];
        var tenthClock = Stopwatch.StartNew();
        var tenth = 0;
        using var batch = new CopyBatch(BatchRows);
        for (long written = 0; written < rows;)
        {
            batch.Reset();
            var n = (int)Math.Min(BatchRows, rows - written);
            for (var i = 0; i < n; i++)
            {
                var k = written + i;
                var timeMs = start.ToUnixTimeMilliseconds() + (spanMs * k / rows);
                TEncoder.Encode(batch, make(symbols[k % symbols.Length], (k / symbols.Length) + 1, timeMs, random));
            }

            await committer.CommitAsync(tableId, batch.Id, batch.Rows, batch.Payload(), ct).ConfigureAwait(false);
            written += n;
            while (tenth < 10 && written >= rows * (tenth + 1) / 10)
            {
                perTenth[tenth] = rows / 10.0 / tenthClock.Elapsed.TotalSeconds;
                tenthClock.Restart();
                tenth++;
            }
        }

        return perTenth;
    }

    private static async Task<long> PendingAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("SELECT count(*) FROM marketdata.ingest_batches WHERE rollup_pending");
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? 0L);
    }

    private static async Task TimeAsync(NpgsqlDataSource dataSource, string sql, string name, CancellationToken ct, int runs = 3)
    {
        var times = new List<double>();
        long rows = 0;
        for (var run = 0; run < runs; run++)
        {
            var clock = Stopwatch.StartNew();
            await using var cmd = dataSource.CreateCommand(sql);
            cmd.CommandTimeout = 0;
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            rows = 0;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                rows++;
            }

            times.Add(clock.Elapsed.TotalMilliseconds);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {rows:N0} | {times.Min():N0} ms | {times.Max():N0} ms |"));
    }
}
