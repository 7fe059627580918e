using System.Security.Cryptography;
using System.Text.Json;

namespace OrderBookIngestor.Export;

/// <summary>One exported file as the manifest records it.</summary>
/// <param name="Path">Relative to the export directory, '/' separated.</param>
/// <param name="Fingerprint">What the database said about the file's rows (and its holes, format and completeness)
/// when it was written: a re-run that gets the same answer and finds the file with the same checksum skips it.</param>
public sealed record ManifestEntry(string Path, string Table, string Day, string? Symbol, long Rows, long Bytes, string Sha256,
    string Fingerprint, int Gaps, bool Partial, DateTimeOffset ExportedAt);

/// <summary>
/// manifest.json in the export directory: every file written, with its row count and SHA-256. Rewritten (to a
/// temporary file, then renamed) after each file, so an interrupted export resumes where it stopped.
/// </summary>
public sealed class ExportManifest
{
    public const string FileName = "manifest.json";

    private readonly string _directory;
    private readonly SortedDictionary<string, ManifestEntry> _entries = new(StringComparer.Ordinal);

    private ExportManifest(string directory) => _directory = directory;

    public IReadOnlyCollection<ManifestEntry> Entries => _entries.Values;

    public static ExportManifest Load(string directory)
    {
        var manifest = new ExportManifest(directory);
        var path = System.IO.Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return manifest;
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            foreach (var e in document.RootElement.GetProperty("files").EnumerateArray())
            {
                var entry = new ManifestEntry(
                    e.GetProperty("path").GetString()!, e.GetProperty("table").GetString()!, e.GetProperty("day").GetString()!,
                    e.TryGetProperty("symbol", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null,
                    e.GetProperty("rows").GetInt64(), e.GetProperty("bytes").GetInt64(), e.GetProperty("sha256").GetString()!,
                    e.GetProperty("fingerprint").GetString()!, e.GetProperty("gaps").GetInt32(), e.GetProperty("partial").GetBoolean(),
                    e.GetProperty("exported_at").GetDateTimeOffset());
                manifest._entries[entry.Path] = entry;
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            // A damaged manifest only costs a full re-export: every file is checked against the database again.
            throw new InvalidDataException($"{path} cannot be read ({ex.Message}); move it away to export everything again", ex);
        }

        return manifest;
    }

    /// <summary>True when the manifest has the file with this fingerprint and the file on disk still has its checksum.</summary>
    public bool IsCurrent(string relativePath, string fingerprint)
    {
        if (!_entries.TryGetValue(relativePath, out var entry) || entry.Fingerprint != fingerprint)
        {
            return false;
        }

        var full = System.IO.Path.Combine(_directory, relativePath);
        return File.Exists(full) && new FileInfo(full).Length == entry.Bytes && Sha256Of(full) == entry.Sha256;
    }

    public void Put(ManifestEntry entry)
    {
        _entries[entry.Path] = entry;
        Save();
    }

    /// <summary>Forgets a file whose rows are gone from the database (retention dropped them) and deletes it.</summary>
    public bool Remove(string relativePath)
    {
        if (!_entries.Remove(relativePath))
        {
            return false;
        }

        File.Delete(System.IO.Path.Combine(_directory, relativePath));
        Save();
        return true;
    }

    public static string Sha256Of(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private void Save()
    {
        var path = System.IO.Path.Combine(_directory, FileName);
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("manifest_version", 1);
            w.WriteStartArray("files");
            foreach (var e in _entries.Values)
            {
                w.WriteStartObject();
                w.WriteString("path", e.Path);
                w.WriteString("table", e.Table);
                w.WriteString("day", e.Day);
                if (e.Symbol is null)
                {
                    w.WriteNull("symbol");
                }
                else
                {
                    w.WriteString("symbol", e.Symbol);
                }

                w.WriteNumber("rows", e.Rows);
                w.WriteNumber("bytes", e.Bytes);
                w.WriteString("sha256", e.Sha256);
                w.WriteString("fingerprint", e.Fingerprint);
                w.WriteNumber("gaps", e.Gaps);
                w.WriteBoolean("partial", e.Partial);
                w.WriteString("exported_at", e.ExportedAt);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
            w.Flush();
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
