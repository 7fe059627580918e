using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Export;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Cli;

/// <summary>`export`: whole UTC days of recorded tables as Parquet or CSV files that carry their holes.</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var command = new Command("export",
            "Write recorded days as files, one per table × symbol × UTC day (DIR/DAY/TABLE/SYMBOL.parquet), with a DIR/DAY/_gaps file and "
            + "DIR/manifest.json. Each Parquet file names the feed_gaps holes that overlap it in its key-value metadata. Re-running skips "
            + "files whose rows have not changed.");
        var config = new Option<string>("--config") { Description = "Extra JSON settings file (for Database), as for run." };
        var database = new Option<string>("--database") { Description = "Npgsql connection string or postgresql:// URL; ORDERBOOK_DATABASE is preferred." };
        var from = new Option<string>("--from") { Description = "First UTC day, yyyy-MM-dd.", Required = true };
        var to = new Option<string>("--to") { Description = "The day after the last, yyyy-MM-dd (exclusive, like tardis; default: --from plus one day)." };
        var symbols = new Option<string>("--symbols") { Description = "Comma-separated symbols (default: every symbol in marketdata.symbols)." };
        var tables = new Option<string>("--tables")
        {
            Description = $"Comma-separated tables (default {string.Join(",", ExportTable.Defaults)}; also {string.Join(",", ExportTable.All.Keys.Except(ExportTable.Defaults))}).",
        };
        var format = new Option<string>("--format") { Description = "parquet (default) or csv.", DefaultValueFactory = _ => "parquet" };
        var compression = new Option<string>("--compression") { Description = "parquet: zstd (default), snappy, gzip or none; csv: none (default) or gzip." };
        var level = new Option<string>("--compression-level")
        {
            Description = "zstd and gzip: optimal (default), fastest (files about 1.4x larger, a few % faster) or smallest (about 8% smaller than optimal, 8x slower).",
            DefaultValueFactory = _ => "optimal",
        };
        var output = new Option<string>("--out") { Description = "Directory to write to (created when missing).", Required = true };
        var allowPartial = new Option<bool>("--allow-partial")
        {
            Description = "Also export days that are not complete yet (still being recorded, or the recorder stopped during the day and has not "
                + "run since, so its hole is not written down yet). Their files say partial=true and are written again by a later run.",
        };
        foreach (var option in new Option[] { config, database, from, to, symbols, tables, format, compression, level, output, allowPartial })
        {
            command.Add(option);
        }

        command.SetAction(async (parse, ct) =>
        {
            var request = Parse(parse.GetValue(from)!, parse.GetValue(to), parse.GetValue(symbols), parse.GetValue(tables), parse.GetValue(format)!,
                parse.GetValue(compression), parse.GetValue(output)!, parse.GetValue(allowPartial), out var error, parse.GetValue(level)!);
            if (request is null)
            {
                Console.Error.WriteLine($"orderbook-ingestor export: {error}");
                return 2;
            }

            IngestorOptions options;
            try
            {
                options = OptionsLoader.Load(parse.GetValue(config), new Dictionary<string, string?> { [nameof(IngestorOptions.Database)] = parse.GetValue(database) });
            }
            catch (ConfigurationException ex)
            {
                Console.Error.WriteLine($"orderbook-ingestor: configuration error: {ex.Message}");
                return 2;
            }

            if (OptionsValidator.Validate(options, requireDatabase: true).FirstOrDefault(e => e.StartsWith("Database", StringComparison.Ordinal)) is { } problem)
            {
                Console.Error.WriteLine($"orderbook-ingestor: configuration error: {problem}");
                return 2;
            }

            return await RunAsync(options.Database!, request, ct).ConfigureAwait(false);
        });
        return command;
    }

    internal static ExportRequest? Parse(string from, string? to, string? symbols, string? tables, string format, string? compression, string output, bool allowPartial,
        out string? error, string level = "optimal")
    {
        error = null;
        System.IO.Compression.CompressionLevel compressionLevel;
        switch (level)
        {
            case "fastest":
                compressionLevel = System.IO.Compression.CompressionLevel.Fastest;
                break;
            case "optimal":
                compressionLevel = System.IO.Compression.CompressionLevel.Optimal;
                break;
            case "smallest":
                compressionLevel = System.IO.Compression.CompressionLevel.SmallestSize;
                break;
            default:
                error = $"--compression-level '{level}': fastest, optimal or smallest";
                return null;
        }

        if (!DateOnly.TryParseExact(from, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var first))
        {
            error = $"--from '{from}' is not a day (yyyy-MM-dd)";
            return null;
        }

        var end = first.AddDays(1);
        if (to is not null && !DateOnly.TryParseExact(to, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out end))
        {
            error = $"--to '{to}' is not a day (yyyy-MM-dd)";
            return null;
        }

        if (end <= first)
        {
            error = $"--to {end:yyyy-MM-dd} is not after --from {first:yyyy-MM-dd} (--to is exclusive: --from 2026-11-30 --to 2026-12-01 is one day)";
            return null;
        }

        var tableList = tables is null ? ExportTable.Defaults : tables.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToArray();
        if (tableList.FirstOrDefault(t => !ExportTable.All.ContainsKey(t)) is { } unknown)
        {
            error = $"--tables: unknown table '{unknown}' (known: {string.Join(", ", ExportTable.All.Keys)})";
            return null;
        }

        if (tableList.Length == 0)
        {
            error = "--tables: no table given";
            return null;
        }

        ExportFormat kind;
        string[] compressions;
        switch (format)
        {
            case "parquet":
                kind = ExportFormat.Parquet;
                compressions = ["zstd", "snappy", "gzip", "none"];
                break;
            case "csv":
                kind = ExportFormat.Csv;
                compressions = ["none", "gzip"];
                break;
            default:
                error = $"--format '{format}': parquet or csv";
                return null;
        }

        compression ??= compressions[0];
        if (!compressions.Contains(compression))
        {
            error = $"--compression '{compression}' for {format}: {string.Join(", ", compressions)}";
            return null;
        }

        var symbolList = symbols?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (symbolList is { Count: 0 })
        {
            error = "--symbols: no symbol given";
            return null;
        }

        return new ExportRequest(first, end, symbolList, tableList, kind, compression, output, allowPartial, compressionLevel);
    }

    internal static async Task<int> RunAsync(string database, ExportRequest request, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        using var progress = new ConsoleProgress(interactive: !Console.IsErrorRedirected);
        ExportSummary summary;
        try
        {
            await using var dataSource = Exporter.CreateDataSource(database);
            summary = await new Exporter(dataSource, request, progress, TimeProvider.System).RunAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            progress.Clear();
            Console.Error.WriteLine("orderbook-ingestor export: interrupted; the files written so far are in the manifest, a re-run goes on from there");
            return 130;
        }
        catch (Exception ex) when (ex is ExportException or InvalidDataException)
        {
            progress.Clear();
            Console.Error.WriteLine($"orderbook-ingestor export: {ex.Message}");
            return 2;
        }
        catch (Exception ex) when (ex is NpgsqlException && DatabaseErrors.IsConfigurationProblem(ex))
        {
            // No such database, a wrong password, no rights: nothing was exported, and retrying will not help.
            progress.Clear();
            Console.Error.WriteLine($"orderbook-ingestor export: {DatabaseErrors.Describe(ex)}");
            return 2;
        }
        catch (Exception ex) when (ex is NpgsqlException or PostgresException or IOException or UnauthorizedAccessException && !ct.IsCancellationRequested)
        {
            progress.Clear();
            Console.Error.WriteLine($"orderbook-ingestor export: {(ex is NpgsqlException ? DatabaseErrors.Describe(ex) : ex.Message)}; the files written so far are in the manifest, a re-run goes on from there");
            return 1;
        }

        progress.Clear();
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"exported {summary.Written} file(s), {summary.Rows:N0} rows, {summary.Bytes / 1048576.0:0.0} MB in {seconds:0.0} s ({summary.Rows / Math.Max(seconds, 0.001):N0} rows/s); {summary.Unchanged} unchanged, {summary.Removed} removed; manifest {Path.Combine(request.Directory, ExportManifest.FileName)}"));
        if (summary.Refused.Count > 0)
        {
            Console.Error.WriteLine($"orderbook-ingestor export: {summary.Refused.Count} day(s) not exported because they are not complete; --allow-partial exports them marked partial");
            return 1;
        }

        return 0;
    }

    /// <summary>A progress bar on stderr when it is a terminal; one line per file on stdout otherwise (journald, CI).</summary>
    private sealed class ConsoleProgress(bool interactive) : IExportProgress, IDisposable
    {
        private int _planned;
        private int _done;
        private long _rows;
        private bool _drawn;

        public void Planned(int files) => _planned = files;

        public void Written(ManifestEntry file, TimeSpan took)
        {
            _done++;
            _rows += file.Rows;
            Line(string.Create(CultureInfo.InvariantCulture,
                $"{file.Path}: {file.Rows:N0} rows, {file.Bytes / 1024.0:N0} kB, {took.TotalSeconds:0.00} s{(file.Gaps > 0 ? $", {file.Gaps} gap(s)" : "")}{(file.Partial ? ", PARTIAL" : "")}"), file.Path);
        }

        public void Unchanged(string path)
        {
            _done++;
            Line($"{path}: unchanged", path);
        }

        public void NoRows(string path)
        {
            _done++;
            if (interactive)
            {
                Line("", path);
            }
        }

        public void Refused(DateOnly day, string reason)
        {
            Clear();
            Console.Error.WriteLine($"{day:yyyy-MM-dd}: not exported: {reason}");
        }

        private void Line(string text, string current)
        {
            if (!interactive)
            {
                Console.WriteLine(text);
                return;
            }

            const int width = 30;
            var filled = _planned == 0 ? 0 : Math.Min(width, _done * width / _planned);
            var bar = new string('#', filled) + new string('.', width - filled);
            var line = string.Create(CultureInfo.InvariantCulture, $"[{bar}] {_done}/{_planned}  {_rows:N0} rows  {current}");
            Console.Error.Write("\r" + line.PadRight(Math.Max(line.Length, 100))[..Math.Min(Math.Max(line.Length, 100), 160)]);
            _drawn = true;
        }

        public void Clear()
        {
            if (_drawn)
            {
                Console.Error.Write("\r" + new string(' ', 160) + "\r");
                _drawn = false;
            }
        }

        public void Dispose() => Clear();
    }
}
