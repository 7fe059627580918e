using System.Globalization;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>A batch kept in the quarantine: its files, what it holds and why the database refused it.</summary>
public sealed record QuarantinedBatch(string Path, string Table, Guid BatchId, int Rows, DateTimeOffset QuarantinedAt, string Error)
{
    /// <summary>The sidecar with the error, next to the batch.</summary>
    public string ErrorPath => System.IO.Path.ChangeExtension(Path, ErrorExtension);

    internal const string ErrorExtension = ".error";
}

/// <summary>
/// Batches the database refused (a constraint, a type, a missing object, a permission): retrying the same bytes gets
/// the same answer, so instead of blocking the table or spooling forever, each goes to a file of its own here — the
/// exact COPY payload as a <see cref="SpoolRecord"/>, and beside it a text file with the table, the row count and the
/// SQLSTATE with the server's message — and ingestion goes on. `orderbook-ingestor quarantine retry` puts them in
/// once the operator has fixed the cause; the batch ledger makes that idempotent. Nothing is lost and nothing waits.
/// </summary>
public sealed class Quarantine
{
    private const string Extension = ".batch";

    private readonly ILogger _log;
    private readonly LogLimiter _logLimit;
    private readonly long[] _batches = new long[256];
    private readonly long[] _rows = new long[256];

    /// <param name="time">Paces the log: a refusal that hits every batch (a revoked grant) logs once a minute with a count, not per batch.</param>
    public Quarantine(string directory, ILogger log, TimeProvider time)
    {
        DirectoryPath = System.IO.Path.GetFullPath(directory);
        _log = log;
        _logLimit = new LogLimiter(time, TimeSpan.FromMinutes(1));
    }

    public string DirectoryPath { get; }

    /// <summary>Batches of <paramref name="table"/> quarantined by this process.</summary>
    public long Batches(string table) => Interlocked.Read(ref _batches[BatchCommitter.TableId(table)]);

    public long Rows(string table) => Interlocked.Read(ref _rows[BatchCommitter.TableId(table)]);

    /// <summary>Writes the batch and its error durably. False when the disk refused (the caller keeps the batch).</summary>
    public bool TryAdd(byte tableId, Guid batchId, int rows, ReadOnlySpan<byte> payload, string error, DateTimeOffset now)
    {
        var table = BatchCommitter.Tables[tableId].Table;
        if (Directory.Exists(DirectoryPath) && Directory.EnumerateFiles(DirectoryPath, $"*-{batchId:N}{Extension}").Any())
        {
            return true; // already here: a replay that stopped part-way met this record again
        }

        var name = $"{now.UtcDateTime:yyyyMMdd'T'HHmmss'.'fff'Z'}-{table}-{batchId:N}";
        var path = System.IO.Path.Combine(DirectoryPath, name + Extension);
        try
        {
            Directory.CreateDirectory(DirectoryPath);
            // The error first: a batch file without its reason would be listed as unexplained after a crash.
            WriteDurably(System.IO.Path.ChangeExtension(path, QuarantinedBatch.ErrorExtension), System.Text.Encoding.UTF8.GetBytes(
                $"table: {table}\nbatch: {batchId}\nrows: {rows}\nquarantined_at: {now.UtcDateTime:O}\nerror: {error.ReplaceLineEndings(" ")}\n"));
            WriteDurably(path, SpoolRecord.Encode(tableId, batchId, rows, payload));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.QuarantineWriteFailed(_log, table, rows, DirectoryPath, ex.Message);
            return false;
        }

        // Counted per table, whichever of its layouts the batch has.
        var slot = BatchCommitter.TableId(table);
        Interlocked.Increment(ref _batches[slot]);
        Interlocked.Add(ref _rows[slot], rows);
        if (_logLimit.TryEnter(out var suppressed))
        {
            Log.BatchQuarantined(_log, table, rows, error, path, suppressed);
        }

        return true;
    }

    /// <summary>Every quarantined batch, oldest first.</summary>
    public IReadOnlyList<QuarantinedBatch> List()
    {
        if (!Directory.Exists(DirectoryPath))
        {
            return [];
        }

        return [.. Directory.EnumerateFiles(DirectoryPath, "*" + Extension).Order(StringComparer.Ordinal).Select(Describe)];
    }

    /// <summary>The batch's record, or null when its file does not check out (reported to <paramref name="onDamage"/>).</summary>
    public static SpoolRecord? Read(QuarantinedBatch batch, Action<SpoolDamage> onDamage)
        => SpoolRecord.ReadAll(batch.Path, onDamage).FirstOrDefault();

    /// <summary>Removes a batch that is now in the database.</summary>
    public static void Remove(QuarantinedBatch batch)
    {
        File.Delete(batch.Path);
        File.Delete(batch.ErrorPath);
    }

    private static QuarantinedBatch Describe(string path)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        var errorPath = System.IO.Path.ChangeExtension(path, QuarantinedBatch.ErrorExtension);
        if (File.Exists(errorPath))
        {
            foreach (var line in File.ReadLines(errorPath))
            {
                var colon = line.IndexOf(": ", StringComparison.Ordinal);
                if (colon > 0)
                {
                    fields[line[..colon]] = line[(colon + 2)..];
                }
            }
        }

        return new QuarantinedBatch(
            path,
            fields.GetValueOrDefault("table", "?"),
            Guid.TryParse(fields.GetValueOrDefault("batch"), out var id) ? id : Guid.Empty,
            int.TryParse(fields.GetValueOrDefault("rows"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var rows) ? rows : 0,
            DateTimeOffset.TryParse(fields.GetValueOrDefault("quarantined_at"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : File.GetLastWriteTimeUtc(path),
            fields.GetValueOrDefault("error", "(no error file)"));
    }

    private static void WriteDurably(string path, byte[] bytes)
    {
        var temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }
}
