using System.Globalization;
using System.Text.Json;
using DuckDB.NET.Data;
using Npgsql;
using OrderBookIngestor.Export;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;
using Parquet;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// `export` against a day the daemon recorded from the simulator: the files are read back with DuckDB (an independent
/// Parquet and CSV reader) and with Parquet.Net, and compared row by row with the database.
/// </summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class ExportTests(string tier) : DatabaseTest(tier)
{
    private sealed class Progress : IExportProgress
    {
        public List<string> WrittenPaths { get; } = [];

        public List<string> UnchangedPaths { get; } = [];

        public List<(DateOnly, string)> RefusedDays { get; } = [];

        public void Planned(int files)
        {
        }

        public void Written(ManifestEntry file, TimeSpan took) => WrittenPaths.Add(file.Path);

        public void Unchanged(string path) => UnchangedPaths.Add(path);

        public void NoRows(string path)
        {
        }

        public void Refused(DateOnly day, string reason) => RefusedDays.Add((day, reason));
    }

    private static readonly string[] AllTables = [.. ExportTable.All.Keys];

    [Test]
    public async Task ExportedDays_EqualTheDatabase_RowForRow_CarryTheirHoles_AndAreNotWrittenTwice()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 6_000, Seed = 41, WaitForStreams = 8 };
        await using (var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Channels = ["bookTicker", "aggTrade", "depth@100ms", "markPrice", "forceOrder"];
            o.BookSnapshotSeconds = 1;
            o.RollupIntervalMs = 200;
        }))
        {
            await Harness.WaitUntilAsync(() => h.Metrics.Books().Synced == 2, TimeSpan.FromSeconds(30), () => "books not synced");
            h.Simulator.WithholdNext("btcusdt@depth@100ms", 1);
            await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
            await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'depth_sequence'") == 1,
                TimeSpan.FromSeconds(30), () => "the withheld diff's hole");
            await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.derivatives_1s") > 0
                    && (Db.Tier == "timescaledb" || await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trade_1s") > 0),
                TimeSpan.FromSeconds(30), () => "the daemon's rollups");
        } // a clean stop: the session's stopped_at is set

        if (Db.Tier == "timescaledb")
        {
            await Db.RefreshContinuousAggregatesAsync();
        }

        var (first, last) = await DaysAsync();
        var now = last.AddDays(1).ToDateTime(new TimeOnly(0, 5), DateTimeKind.Utc);
        var time = new ManualTimeProvider(new DateTimeOffset(now));
        var dir = Path.Combine(Path.GetTempPath(), $"export-test-{Guid.NewGuid():N}");
        try
        {
            // The recorder stopped during the last day and has not run since: that day's hole after the stop is not
            // written down yet, so the day is refused unless partial files are asked for.
            var request = new ExportRequest(first, last.AddDays(1), null, AllTables, ExportFormat.Parquet, "zstd", dir, AllowPartial: false);
            var progress = new Progress();
            var refused = await RunAsync(request, progress, time);
            Assert.That(refused.Refused.Select(r => r.Day), Does.Contain(last));
            Assert.That(refused.Refused.Single(r => r.Day == last).Reason, Does.Contain("stopped at"));
            Assert.That(Directory.Exists(Path.Combine(dir, last.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))), Is.False, "nothing written for a refused day");

            var partial = await RunAsync(request with { AllowPartial = true }, new Progress(), time);
            Assert.That(partial.Written, Is.GreaterThan(0));
            Assert.That(await MetadataAsync(Directory.GetFiles(dir, "*.parquet", SearchOption.AllDirectories).First(), "partial"), Is.EqualTo("true"));

            // The next run of the recorder: now the day is complete, and every partial file is written again.
            await Db.ExecuteAsync($"""
                INSERT INTO marketdata.recorder_sessions (session_id, instance, channels, symbol_ids, started_at, last_seen_at)
                VALUES (gen_random_uuid(), '0/1', '{"{bookTicker}"}', '{"{1}"}', '{now:O}', '{now:O}')
                """);
            progress = new Progress();
            var complete = await RunAsync(request, progress, time);
            Assert.That(complete.Refused, Is.Empty);
            Assert.That(complete.Written, Is.EqualTo(partial.Written), "the partial files are replaced");

            foreach (var entry in ExportManifest.Load(dir).Entries)
            {
                var path = Path.Combine(dir, entry.Path);
                Assert.That(await MetadataAsync(path, "partial"), Is.EqualTo("false"), entry.Path);
                Assert.That(await MetadataAsync(path, "row_count"), Is.EqualTo(entry.Rows.ToString(CultureInfo.InvariantCulture)), entry.Path);
                Assert.That(await MetadataAsync(path, "storage_tier"), Is.EqualTo(Db.Tier), entry.Path);
                await AssertFileEqualsDatabaseAsync(path, entry);
            }

            var tables = ExportManifest.Load(dir).Entries.Select(e => e.Table).ToHashSet();
            Assert.That(tables, Is.SupersetOf(new[] { "_gaps", "book_ticker", "trades", "depth", "book_snapshots", "mark_price", "liquidations", "bt_1s", "trade_1s", "derivatives_1s" }));

            // The hole is in the depth file's metadata (and in the day's _gaps file), not in the trades file's.
            var gapDay = DateOnly.FromDateTime(await Db.ScalarAsync<DateTime>("SELECT gap_start FROM marketdata.feed_gaps WHERE reason = 'depth_sequence'"));
            var gapDir = Path.Combine(dir, gapDay.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            using (var gaps = JsonDocument.Parse(await MetadataAsync(Path.Combine(gapDir, "depth", "BTCUSDT.parquet"), "feed_gaps")))
            {
                var hole = gaps.RootElement.EnumerateArray().Single(g => g.GetProperty("reason").GetString() == "depth_sequence");
                Assert.That(hole.GetProperty("stream").GetString(), Is.EqualTo("btcusdt@depth@100ms"));
                Assert.That(hole.GetProperty("first_missing_id").GetInt64(), Is.EqualTo(await Db.ScalarAsync<long>("SELECT first_missing_id FROM marketdata.feed_gaps WHERE reason = 'depth_sequence'")));
            }

            Assert.That(await MetadataAsync(Path.Combine(gapDir, "trades", "BTCUSDT.parquet"), "feed_gaps"), Does.Not.Contain("depth_sequence"));
            Assert.That(await DuckAsync<long>($"SELECT count(*) FROM read_parquet('{Path.Combine(gapDir, "_gaps.parquet")}') WHERE reason = 'depth_sequence' AND table_name = 'depth' AND symbol = 'BTCUSDT'"), Is.EqualTo(1));
            Assert.That(await DuckAsync<long>($"SELECT count(*) FROM read_parquet('{Path.Combine(gapDir, "_gaps.parquet")}') WHERE reason = 'depth_sequence' AND table_name = 'book_snapshots' AND symbol = 'BTCUSDT'"), Is.EqualTo(1));

            // Typed columns: timestamps as UTC instants, prices float64, ids int64.
            var types = await DuckColumnsAsync(Path.Combine(gapDir, "trades", "BTCUSDT.parquet"));
            Assert.That(types["ts_exchange"], Is.EqualTo("TIMESTAMP WITH TIME ZONE"));
            Assert.That(types["price"], Is.EqualTo("DOUBLE"));
            Assert.That(types["agg_trade_id"], Is.EqualTo("BIGINT"));
            Assert.That(types["is_buyer_maker"], Is.EqualTo("BOOLEAN"));
            // Required where the table says NOT NULL; optional where a value can be missing (a diff without levels).
            Assert.That(await NullableAsync(Path.Combine(gapDir, "trades", "BTCUSDT.parquet")), Is.Empty);
            Assert.That(await NullableAsync(Path.Combine(gapDir, "depth", "BTCUSDT.parquet")), Is.EquivalentTo(new[] { "side", "price", "qty" }));

            // A re-run writes nothing; a hole found later rewrites exactly the files it concerns; a damaged file is rewritten.
            progress = new Progress();
            var again = await RunAsync(request, progress, time);
            Assert.That(again.Written, Is.Zero);
            Assert.That(again.Unchanged, Is.EqualTo(complete.Written));

            await Db.ExecuteAsync($"""
                INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, reason, details)
                SELECT id, 'ethusdt@aggTrade', '{gapDay:yyyy-MM-dd}T12:00:00Z', '{gapDay:yyyy-MM-dd}T12:00:01Z', 'test_late_hole', 'found later'
                FROM marketdata.symbols WHERE symbol = 'ETHUSDT'
                """);
            var damaged = Path.Combine(gapDir, "book_ticker", "BTCUSDT.parquet");
            await File.WriteAllBytesAsync(damaged, (await File.ReadAllBytesAsync(damaged))[..100]);
            progress = new Progress();
            var late = await RunAsync(request, progress, time);
            var day = gapDay.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            Assert.That(progress.WrittenPaths, Is.EquivalentTo(new[] { $"{day}/_gaps.parquet", $"{day}/trades/ETHUSDT.parquet", $"{day}/trade_1s/ETHUSDT.parquet", $"{day}/book_ticker/BTCUSDT.parquet" }));
            Assert.That(await MetadataAsync(Path.Combine(gapDir, "trades", "ETHUSDT.parquet"), "feed_gaps"), Does.Contain("test_late_hole"));
            await AssertFileEqualsDatabaseAsync(damaged, ExportManifest.Load(dir).Entries.Single(e => e.Path == $"{day}/book_ticker/BTCUSDT.parquet"));

            // CSV: the same rows as the Parquet files, read by DuckDB from text.
            var csvDir = dir + "-csv";
            var csvTables = new[] { "book_ticker", "trades", "depth", "mark_price", "liquidations" };
            await RunAsync(request with { Format = ExportFormat.Csv, Compression = "gzip", Directory = csvDir, Symbols = ["BTCUSDT"], Tables = csvTables }, new Progress(), time);
            // The simulator's liquidations are random: a symbol-day without any has no file in either format.
            var withRows = ExportManifest.Load(dir).Entries.Where(e => e.Day == day && e.Symbol == "BTCUSDT").Select(e => e.Table).ToHashSet();
            Assert.That(withRows, Is.SupersetOf(new[] { "book_ticker", "trades", "depth", "mark_price" }));
            foreach (var table in csvTables)
            {
                var csv = Path.Combine(csvDir, day, table, "BTCUSDT.csv.gz");
                var parquet = Path.Combine(gapDir, table, "BTCUSDT.parquet");
                if (!withRows.Contains(table))
                {
                    Assert.That(File.Exists(csv) || File.Exists(parquet), Is.False, $"{table}: no rows, no file");
                    continue;
                }

                var parquetRows = await DuckAsync<long>($"SELECT count(*) FROM read_parquet('{parquet}')");
                Assert.That(await DuckAsync<long>($"SELECT count(*) FROM read_csv('{csv}', header = true)"), Is.EqualTo(parquetRows), table);
                Assert.That(await DuckAsync<long>($"SELECT count(*) FROM (SELECT * FROM read_parquet('{parquet}') EXCEPT ALL SELECT * FROM read_csv('{csv}', header = true))"),
                    Is.Zero, $"{table}: every Parquet row is in the CSV file, value for value");
            }
        }
        finally
        {
            foreach (var d in new[] { dir, dir + "-csv" }.Where(Directory.Exists))
            {
                Directory.Delete(d, recursive: true);
            }
        }
    }

    private async Task<ExportSummary> RunAsync(ExportRequest request, Progress progress, TimeProvider time)
    {
        await using var dataSource = Exporter.CreateDataSource(Db.ConnectionString);
        return await new Exporter(dataSource, request, progress, time).RunAsync(CancellationToken.None);
    }

    private async Task<(DateOnly First, DateOnly Last)> DaysAsync()
    {
        var first = await Db.ScalarAsync<DateTime>("SELECT min(ts_exchange) FROM marketdata.book_ticker");
        var last = await Db.ScalarAsync<DateTime>("SELECT max(ts_exchange) FROM marketdata.book_ticker");
        return (DateOnly.FromDateTime(first), DateOnly.FromDateTime(last));
    }

    /// <summary>The file, read by DuckDB, holds exactly the database's rows of its table, symbol and day, in order.</summary>
    private async Task AssertFileEqualsDatabaseAsync(string path, ManifestEntry entry)
    {
        var fromFile = await DuckRowsAsync($"SELECT * FROM read_parquet('{path}')");
        Assert.That(fromFile, Has.Count.EqualTo(entry.Rows), entry.Path);
        var day = DateOnly.ParseExact(entry.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture);
        var (d0, d1) = Exporter.Bounds(day);
        if (entry.Table == "_gaps")
        {
            var ids = await DbRowsAsync("SELECT id FROM marketdata.feed_gaps WHERE gap_end >= $1 AND gap_start < $2 ORDER BY gap_start, id", d0, d1);
            // One row per hole and table it concerns: the holes themselves in order, none lost, and each with its tables.
            Assert.That(fromFile.Select(r => r[^1]).Distinct(), Is.EqualTo(ids.Select(r => r[0])).AsCollection, entry.Path);
            foreach (var hole in fromFile.GroupBy(r => r[^1]))
            {
                var stream = hole.First()[2];
                var concerned = ExportTable.All.Values.Where(t => t.Concerns(stream)).Select(t => t.Name).Order(StringComparer.Ordinal).DefaultIfEmpty("∅");
                Assert.That(hole.Select(r => r[1]), Is.EqualTo(concerned).AsCollection, $"{entry.Path}: the tables of hole {hole.Key} ({stream})");
            }


            return;
        }

        var symbolId = await Db.ScalarAsync<int>($"SELECT id FROM marketdata.symbols WHERE symbol = '{entry.Symbol}'");
        Assert.That(fromFile.All(r => r[0] == entry.Symbol), Is.True, $"{entry.Path}: the symbol column");
        if (entry.Table is "depth" or "book_snapshots")
        {
            // Levels folded back into the stored arrays, event by event: nothing lost, nothing reordered.
            var id = entry.Table == "depth" ? "final_update_id" : "last_update_id";
            var sideColumn = entry.Table == "depth" ? 7 : 5;
            var stored = await DbRowsAsync(
                $"SELECT {id}, array_to_string(bid_prices, ' '), array_to_string(bid_qtys, ' '), array_to_string(ask_prices, ' '), array_to_string(ask_qtys, ' ') FROM marketdata.{(entry.Table == "depth" ? "depth_events" : "book_snapshots")} WHERE symbol_id = $3 AND ts_exchange >= $1 AND ts_exchange < $2 ORDER BY ts_exchange, {id}{(entry.Table == "depth" ? "" : ", source, ts_ingest")}",
                d0, d1, symbolId);
            var idColumn = entry.Table == "depth" ? 5 : 3;
            // A book that did not move is checkpointed again at the same update id: its snapshots differ in ts_ingest only.
            var folded = fromFile.GroupBy(r => (r[idColumn], entry.Table == "depth" ? "" : r[4] + " " + r[2])).Select(g =>
            {
                string Join(string side, int column) => string.Join(' ', g.Where(r => r[sideColumn] == side).Select(r => r[column]));
                var priceColumn = entry.Table == "depth" ? 8 : 7;
                return new[] { g.Key.Item1, Join("bid", priceColumn), Join("bid", priceColumn + 1), Join("ask", priceColumn), Join("ask", priceColumn + 1) }.ToList();
            }).ToList();
            Assert.That(folded.Select(r => string.Join('|', r)), Is.EqualTo(stored.Select(r => string.Join('|', r))).AsCollection, entry.Path);
            return;
        }

        // The file holds what the export's query returns, value for value; and for the raw tables that is every stored
        // row of the symbol-day.
        var expected = await DbRowsAsync(ExportTable.All[entry.Table].Select, symbolId, d0, d1);
        Assert.That(fromFile.Select(r => string.Join('|', r.Skip(1))), Is.EqualTo(expected.Select(r => string.Join('|', r))).AsCollection, entry.Path);
        if (entry.Table is "book_ticker" or "trades" or "mark_price" or "liquidations" or "open_interest")
        {
            Assert.That(fromFile, Has.Count.EqualTo(await Db.ScalarAsync<long>(
                $"SELECT count(*) FROM marketdata.{entry.Table} WHERE symbol_id = {symbolId} AND ts_exchange >= '{d0:O}' AND ts_exchange < '{d1:O}'")), entry.Path);
        }
    }

    private async Task<List<List<string>>> DbRowsAsync(string sql, params object[] parameters)
    {
        var rows = new List<List<string>>();
        await using var command = Db.DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).Select(i => Text(reader.IsDBNull(i) ? null : reader.GetValue(i))).ToList());
        }

        return rows;
    }

    private static async Task<List<List<string>>> DuckRowsAsync(string sql)
    {
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync();
        await using var command = duck.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<List<string>>();
        while (await reader.ReadAsync())
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).Select(i => Text(reader.IsDBNull(i) ? null : reader.GetValue(i))).ToList());
        }

        return rows;
    }

    private static async Task<T> DuckAsync<T>(string sql)
    {
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync();
        await using var command = duck.CreateCommand();
        command.CommandText = sql;
        return (T)Convert.ChangeType((await command.ExecuteScalarAsync())!, typeof(T), CultureInfo.InvariantCulture);
    }

    private static async Task<Dictionary<string, string>> DuckColumnsAsync(string path)
        => (await DuckRowsAsync($"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{path}'))")).ToDictionary(r => r[0], r => r[1]);

    /// <summary>Key-value metadata, read with Parquet.Net.</summary>
    private static async Task<string> MetadataAsync(string path, string key)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        return reader.CustomMetadata[key];
    }

    private static async Task<List<string>> NullableAsync(string path)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream);
        return reader.Schema.DataFields.Where(f => f.IsNullable).Select(f => f.Name).ToList();
    }

    /// <summary>One value as comparable text: instants as µs since the epoch (DuckDB and Npgsql give them as different
    /// types), float64 as its shortest round-trip text.</summary>
    private static string Text(object? value) => value switch
    {
        null => "∅",
        DateTime t => ((t.ToUniversalTime().Ticks - DateTime.UnixEpoch.Ticks) / 10).ToString(CultureInfo.InvariantCulture),
        DateTimeOffset t => ((t.UtcTicks - DateTime.UnixEpoch.Ticks) / 10).ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => ((double)f).ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
    };
}
