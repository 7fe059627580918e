using System.Data;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Export;

/// <param name="To">Exclusive: the days exported are From, From+1, …, To−1 (UTC).</param>
/// <param name="Symbols">Null for every symbol in the database.</param>
public sealed record ExportRequest(DateOnly From, DateOnly To, IReadOnlyList<string>? Symbols, IReadOnlyList<string> Tables,
    ExportFormat Format, string Compression, string Directory, bool AllowPartial,
    System.IO.Compression.CompressionLevel Level = System.IO.Compression.CompressionLevel.Optimal);

/// <summary>What `export` tells its user as it goes.</summary>
public interface IExportProgress
{
    void Planned(int files);

    void Written(ManifestEntry file, TimeSpan took);

    void Unchanged(string path);

    /// <summary>The symbol-day has no rows in the table: no file (and one written before is deleted).</summary>
    void NoRows(string path);

    void Refused(DateOnly day, string reason);
}

public sealed record ExportSummary(int Written, int Unchanged, int Removed, long Rows, long Bytes, IReadOnlyList<(DateOnly Day, string Reason)> Refused);

/// <summary>
/// Writes one file per table × symbol × UTC day, plus a `_gaps` file per day, and records each in the manifest.
/// Each file is read in one REPEATABLE READ transaction together with its fingerprint, so the two agree; it is
/// written to a temporary name and renamed, so a file under its own name is always whole.
/// </summary>
public sealed class Exporter
{
    /// <summary>Rows of a day may still be on their way for a while after midnight (batches, the spool, backfills).</summary>
    public static readonly TimeSpan SettleTime = TimeSpan.FromMinutes(1);

    /// <summary>A recorder whose heartbeat is older than this is taken as stopped (it beats every 10 s).</summary>
    private static readonly TimeSpan HeartbeatTimeout = TimeSpan.FromSeconds(60);

    private readonly NpgsqlDataSource _dataSource;
    private readonly ExportRequest _request;
    private readonly IExportProgress _progress;
    private readonly TimeProvider _time;

    /// <summary>Each query's columns, described once per run.</summary>
    private readonly Dictionary<string, List<ExportColumn>> _columns = new(StringComparer.Ordinal);

    public Exporter(NpgsqlDataSource dataSource, ExportRequest request, IExportProgress progress, TimeProvider time)
    {
        _dataSource = dataSource;
        _request = request;
        _progress = progress;
        _time = time;
    }

    /// <summary>The export's own pool: arrays on (the day's symbol ids), no command timeout (a day can take minutes).</summary>
    public static NpgsqlDataSource CreateDataSource(string database)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(Configuration.DatabaseConnection.ToNpgsql(database));
        builder.EnableArrays();
        builder.ConnectionStringBuilder.ApplicationName = "orderbook-ingestor export";
        builder.ConnectionStringBuilder.CommandTimeout = 0;
        return builder.Build();
    }

    public async Task<ExportSummary> RunAsync(CancellationToken ct)
    {
        System.IO.Directory.CreateDirectory(_request.Directory);
        var manifest = ExportManifest.Load(_request.Directory);
        var tier = await ScalarAsync("SELECT coalesce(marketdata.storage_tier(), 'postgres')", ct).ConfigureAwait(false);
        var symbols = await SymbolsAsync(ct).ConfigureAwait(false);
        var stopped = await StoppedRecordersAsync(ct).ConfigureAwait(false);
        var tables = _request.Tables.Select(t => ExportTable.All[t]).ToList();
        var days = Enumerable.Range(0, _request.To.DayNumber - _request.From.DayNumber).Select(_request.From.AddDays).ToList();
        var open = days.ToDictionary(d => d, d => OpenReason(d, stopped));
        _progress.Planned(days.Count(d => open[d] is null || _request.AllowPartial) * ((tables.Count * symbols.Count) + 1));

        int written = 0, unchanged = 0, removed = 0;
        long rows = 0, bytes = 0;
        var refused = new List<(DateOnly, string)>();
        foreach (var day in days)
        {
            var partial = open[day];
            if (partial is not null && !_request.AllowPartial)
            {
                refused.Add((day, partial));
                _progress.Refused(day, partial);
                continue;
            }

            var (d0, d1) = Bounds(day);
            var dayName = day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            var gaps = await GapsAsync(d0, d1, symbols, ct).ConfigureAwait(false);
            var files = new List<FileJob> { new(dayName + "/_gaps" + ExportFileWriter.Extension(_request.Format, _request.Compression), "_gaps", null, null, gaps) };
            foreach (var table in tables)
            {
                foreach (var (id, symbol) in symbols)
                {
                    files.Add(new FileJob($"{dayName}/{table.Name}/{symbol}{ExportFileWriter.Extension(_request.Format, _request.Compression)}", table.Name, table, (id, symbol),
                        gaps.Where(g => g.SymbolId == id && table.Concerns(g.Stream)).ToList()));
                }
            }

            foreach (var job in files)
            {
                var (outcome, entry) = await ExportFileAsync(job, day, d0, d1, tier, partial, manifest, ct).ConfigureAwait(false);
                switch (outcome)
                {
                    case Outcome.Unchanged:
                        unchanged++;
                        break;
                    case Outcome.Removed:
                        removed++;
                        _progress.NoRows(job.Path);
                        break;
                    case Outcome.Empty:
                        _progress.NoRows(job.Path);
                        break;
                    case Outcome.Written:
                        written++;
                        rows += entry!.Rows;
                        bytes += entry.Bytes;
                        break;
                }
            }
        }

        return new ExportSummary(written, unchanged, removed, rows, bytes, refused);
    }

    private sealed record FileJob(string Path, string TableName, ExportTable? Table, (int Id, string Name)? Symbol, List<Gap> Gaps);

    private sealed record Gap(long Id, int SymbolId, string Symbol, string Stream, string Reason, DateTime Start, DateTime End, long? FirstMissingId, long? LastMissingId, string? Details);

    private enum Outcome
    {
        /// <summary>The symbol-day has no rows and never had a file.</summary>
        Empty,
        Written,
        Unchanged,
        /// <summary>The rows of a file exported earlier are gone (retention): file and entry deleted.</summary>
        Removed,
    }

    private async Task<(Outcome, ManifestEntry?)> ExportFileAsync(FileJob job, DateOnly day, DateTime d0, DateTime d1, string tier, string? partial, ExportManifest manifest, CancellationToken ct)
    {
        var started = _time.GetTimestamp();
        var gapsJson = GapsJson(job.Gaps);
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);

        string rowsPrint;
        if (job.Table is { } table)
        {
            await using var fingerprint = Command(connection, transaction, table.Fingerprint, job.Symbol!.Value.Id, d0, d1);
            rowsPrint = (string)(await fingerprint.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            if (rowsPrint.StartsWith("0/", StringComparison.Ordinal))
            {
                // No rows: no file. One exported earlier whose rows retention has since dropped is deleted with its entry.
                return (manifest.Remove(job.Path) ? Outcome.Removed : Outcome.Empty, null);
            }
        }
        else
        {
            rowsPrint = "gaps";
        }

        var print = $"{rowsPrint}|{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(gapsJson)))[..16]}|{_request.Format}/{_request.Compression}/{_request.Level}|{(partial is null ? "complete" : "partial")}";
        if (manifest.IsCurrent(job.Path, print))
        {
            _progress.Unchanged(job.Path);
            return (Outcome.Unchanged, null);
        }

        var full = Path.Combine(_request.Directory, job.Path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = full + ".tmp";
        long written;
        try
        {
            await using (var output = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                await using var command = job.Table is { } t
                    ? Command(connection, transaction, t.Select, job.Symbol!.Value.Id, d0, d1)
                    : GapsCommand(connection, transaction, job.Gaps.Select(g => g.Id).ToArray(), d0, d1);
                if (!_columns.TryGetValue(command.CommandText, out var columns))
                {
                    _columns[command.CommandText] = columns = await ExportColumn.DescribeAsync(command, ct).ConfigureAwait(false);
                }

                // Not CommandBehavior.SequentialAccess: the first version used it (with GetColumnSchemaAsync on the same
                // reader), and Npgsql 10 then now and then waited for bytes the server had already sent after a file's
                // last row: about half of the runs over eight files hung, none of them without it.
                await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await using var file = await ExportFileWriter.CreateAsync(_request.Format, _request.Compression, _request.Level, output, columns, job.Symbol?.Name, ct).ConfigureAwait(false);
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    await file.AppendAsync(reader, ct).ConfigureAwait(false);
                }

                written = file.Rows;
                var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["recorder"] = "orderbook-ingestor",
                    ["recorder_version"] = ThisAssembly.Version,
                    ["storage_tier"] = tier,
                    ["table"] = job.TableName,
                    ["symbol"] = job.Symbol?.Name ?? "",
                    ["day"] = day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                    ["range_start"] = Timestamp(d0),
                    ["range_end"] = Timestamp(d1),
                    ["row_count"] = written.ToString(CultureInfo.InvariantCulture),
                    ["feed_gaps"] = gapsJson,
                    ["partial"] = partial is null ? "false" : "true",
                    ["partial_reason"] = partial ?? "",
                    ["exported_at"] = Timestamp(_time.GetUtcNow().UtcDateTime),
                };
                await file.CompleteAsync(metadata, ct).ConfigureAwait(false);
                await output.FlushAsync(ct).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }
        }
        catch
        {
            // Interrupted or failed: no half-written file is left behind (the manifest never named it).
            File.Delete(temporary);
            throw;
        }

        await transaction.CommitAsync(ct).ConfigureAwait(false);
        File.Move(temporary, full, overwrite: true);
        var entry = new ManifestEntry(job.Path, job.TableName, day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), job.Symbol?.Name, written,
            new FileInfo(full).Length, ExportManifest.Sha256Of(full), print, job.Gaps.Count, partial is not null, _time.GetUtcNow());
        manifest.Put(entry);
        _progress.Written(entry, _time.GetElapsedTime(started));
        return (Outcome.Written, entry);
    }

    /// <summary>The day's holes for the _gaps file: one row per hole and export table it concerns (a depth hole
    /// concerns depth and book_snapshots; a bookTicker hole book_ticker and bt_1s), so that a loader filters by the
    /// file's table. A stream no table takes keeps one row with table_name NULL. $1: the ids, read by the caller from
    /// the same rows the files' metadata names; $4, $5: each table's name and stream kind, from <see cref="ExportTable"/>.</summary>
    private const string GapsSql =
        """
        SELECT s.symbol, t.table_name,
               g.stream, g.reason, g.gap_start, g.gap_end, g.first_missing_id, g.last_missing_id, g.details, g.detected_at, g.id
        FROM marketdata.feed_gaps g
        JOIN marketdata.symbols s ON s.id = g.symbol_id
        CROSS JOIN LATERAL (SELECT regexp_replace(g.stream, '^[^@]*@', '') AS k) kind
        LEFT JOIN unnest($4::text[], $5::text[]) WITH ORDINALITY AS t(table_name, table_kind, o) ON starts_with(kind.k, t.table_kind)
        WHERE g.id = ANY($1) AND g.gap_end >= $2 AND g.gap_start < $3
        ORDER BY g.gap_start, g.id, t.o
        """;

    /// <summary>Every export table with each stream kind it takes, tables by name.</summary>
    private static readonly (string Table, string Kind)[] GapTables =
        [.. ExportTable.All.Values.OrderBy(t => t.Name, StringComparer.Ordinal).SelectMany(t => t.GapKinds.Select(k => (t.Name, k)))];

    private async Task<List<Gap>> GapsAsync(DateTime d0, DateTime d1, List<(int Id, string Name)> symbols, CancellationToken ct)
    {
        var names = symbols.ToDictionary(s => s.Id, s => s.Name);
        var gaps = new List<Gap>();
        await using var command = _dataSource.CreateCommand(
            "SELECT id, symbol_id, stream, reason, gap_start, gap_end, first_missing_id, last_missing_id, details FROM marketdata.feed_gaps WHERE gap_end >= $1 AND gap_start < $2 ORDER BY gap_start, id");
        command.Parameters.Add(new NpgsqlParameter { Value = d0 });
        command.Parameters.Add(new NpgsqlParameter { Value = d1 });
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            if (names.TryGetValue(reader.GetInt32(1), out var symbol))
            {
                gaps.Add(new Gap(reader.GetInt64(0), reader.GetInt32(1), symbol, reader.GetString(2), reader.GetString(3), reader.GetDateTime(4), reader.GetDateTime(5),
                    reader.IsDBNull(6) ? null : reader.GetInt64(6), reader.IsDBNull(7) ? null : reader.GetInt64(7), reader.IsDBNull(8) ? null : reader.GetString(8)));
            }
        }

        return gaps;
    }

    /// <summary>The holes as a JSON array, in the file's metadata: what a loader needs to mask them.</summary>
    private static string GapsJson(List<Gap> gaps)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var g in gaps)
            {
                w.WriteStartObject();
                w.WriteNumber("id", g.Id);
                w.WriteString("symbol", g.Symbol);
                w.WriteString("stream", g.Stream);
                w.WriteString("reason", g.Reason);
                w.WriteString("gap_start", Timestamp(g.Start));
                w.WriteString("gap_end", Timestamp(g.End));
                WriteNullable(w, "first_missing_id", g.FirstMissingId);
                WriteNullable(w, "last_missing_id", g.LastMissingId);
                if (g.Details is null)
                {
                    w.WriteNull("details");
                }
                else
                {
                    w.WriteString("details", g.Details);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());

        static void WriteNullable(Utf8JsonWriter w, string name, long? value)
        {
            if (value is { } v)
            {
                w.WriteNumber(name, v);
            }
            else
            {
                w.WriteNull(name);
            }
        }
    }

    /// <summary>Why the day cannot be exported whole yet, or null when it can.</summary>
    private string? OpenReason(DateOnly day, List<(string Instance, DateTime Ended)> stopped)
    {
        var (d0, d1) = Bounds(day);
        var now = _time.GetUtcNow().UtcDateTime;
        if (now < d1 + SettleTime)
        {
            return $"the day is still being recorded (it ends at {Timestamp(d1)}, and its last rows may arrive until {SettleTime.TotalSeconds:0} s after)";
        }

        foreach (var (instance, ended) in stopped)
        {
            if (ended >= d0 && ended < d1)
            {
                return $"recorder instance {instance} stopped at {Timestamp(ended)} and has not run since: the hole after it goes into feed_gaps when it runs again";
            }
        }

        return null;
    }

    /// <summary>Per recorder instance whose latest run has ended (a clean stop, or no heartbeat for a minute): when.</summary>
    private async Task<List<(string Instance, DateTime Ended)>> StoppedRecordersAsync(CancellationToken ct)
    {
        var stopped = new List<(string, DateTime)>();
        var now = _time.GetUtcNow().UtcDateTime;
        await using var command = _dataSource.CreateCommand(
            "SELECT DISTINCT ON (instance) instance, stopped_at, last_seen_at FROM marketdata.recorder_sessions ORDER BY instance, started_at DESC");
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var lastSeen = reader.GetDateTime(2);
            if (!reader.IsDBNull(1))
            {
                stopped.Add((reader.GetString(0), reader.GetDateTime(1)));
            }
            else if (lastSeen < now - HeartbeatTimeout)
            {
                stopped.Add((reader.GetString(0), lastSeen));
            }
        }

        return stopped;
    }

    private async Task<List<(int Id, string Name)>> SymbolsAsync(CancellationToken ct)
    {
        var all = new List<(int Id, string Name)>();
        await using (var command = _dataSource.CreateCommand("SELECT id, symbol FROM marketdata.symbols ORDER BY symbol"))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                all.Add((reader.GetInt32(0), reader.GetString(1)));
            }
        }

        if (_request.Symbols is null)
        {
            return all;
        }

        var wanted = _request.Symbols.Select(s => s.ToUpperInvariant()).ToHashSet(StringComparer.Ordinal);
        var unknown = wanted.Except(all.Select(s => s.Name)).ToList();
        if (unknown.Count > 0)
        {
            throw new ExportException($"not in marketdata.symbols (never recorded): {string.Join(", ", unknown.Order(StringComparer.Ordinal))}");
        }

        return all.Where(s => wanted.Contains(s.Name)).ToList();
    }

    private async Task<string> ScalarAsync(string sql, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(sql);
        return (string)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, object first, DateTime d0, DateTime d1)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = first });
        command.Parameters.Add(new NpgsqlParameter { Value = d0 });
        command.Parameters.Add(new NpgsqlParameter { Value = d1 });
        return command;
    }

    private static NpgsqlCommand GapsCommand(NpgsqlConnection connection, NpgsqlTransaction transaction, long[] ids, DateTime d0, DateTime d1)
    {
        var command = Command(connection, transaction, GapsSql, ids, d0, d1);
        command.Parameters.Add(new NpgsqlParameter { Value = GapTables.Select(g => g.Table).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = GapTables.Select(g => g.Kind).ToArray() });
        return command;
    }

    public static (DateTime Start, DateTime End) Bounds(DateOnly day)
        => (day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc), day.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc));

    private static string Timestamp(DateTime t) => Hosting.ReadQueries.Timestamp(t);
}

/// <summary>A request export cannot carry out (an unknown symbol, a damaged manifest): told to the user as is.</summary>
public sealed class ExportException(string message) : Exception(message);
