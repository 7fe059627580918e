using Microsoft.Extensions.Logging;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>
/// Append-only, checksummed segment files holding COPY batches the database could not take, one
/// <see cref="SpoolRecord"/> each, so a replay is the same COPY and the batch ledger keeps it exactly-once.
/// Disk use is capped. A torn or corrupt record (crash mid-write, bad disk) is skipped, counted and logged, never
/// replayed; the records after it are read on (every record starts with a magic and carries its own checksum).
/// </summary>
public sealed class Spool : IDisposable
{
    private const string Extension = ".spool";

    private readonly string _directory;
    private readonly long _maxBytes;
    private readonly long _segmentBytes;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private FileStream? _active;
    private long _bytes;
    private long _corrupt;
    private long _corruptRows;
    private int _counter;

    public Spool(string directory, long maxBytes, long segmentBytes, ILogger log)
    {
        _directory = Path.GetFullPath(directory);
        _maxBytes = maxBytes;
        _segmentBytes = segmentBytes;
        _log = log;
        Directory.CreateDirectory(_directory);
        _bytes = Segments().Sum(s => new FileInfo(s).Length);
    }

    public string DirectoryPath => _directory;

    public long Bytes => Interlocked.Read(ref _bytes);

    public long CorruptRecords => Interlocked.Read(ref _corrupt);

    /// <summary>Rows the damaged records claimed to hold (as far as their headers still read).</summary>
    public long CorruptRows => Interlocked.Read(ref _corruptRows);

    public bool IsEmpty => Bytes == 0;

    /// <summary>False when the cap is reached: the caller keeps the batch and applies backpressure instead.</summary>
    public bool TryAppend(byte tableId, Guid batchId, int rows, ReadOnlySpan<byte> payload)
    {
        var record = SpoolRecord.Encode(tableId, batchId, rows, payload);
        lock (_gate)
        {
            if (_bytes + record.Length > _maxBytes)
            {
                return false;
            }

            if (_active is null || _active.Length >= _segmentBytes)
            {
                SealLocked();
                var name = $"segment-{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds():D15}-{Interlocked.Increment(ref _counter):D6}{Extension}";
                _active = new FileStream(Path.Combine(_directory, name), FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 16);
            }

            _active.Write(record);
            // Durable before we forget the rows in memory: a power loss must not lose an acknowledged spool write.
            _active.Flush(flushToDisk: true);
            _bytes += record.Length;
            return true;
        }
    }

    /// <summary>Closes the segment being written, so that every existing segment can be replayed.</summary>
    public void Seal()
    {
        lock (_gate)
        {
            SealLocked();
        }
    }

    /// <summary>Segments in the order they were written; the one being written is excluded.</summary>
    public IReadOnlyList<string> Segments()
    {
        lock (_gate)
        {
            var active = _active?.Name;
            return [.. Directory.EnumerateFiles(_directory, "*" + Extension).Where(f => f != active).Order(StringComparer.Ordinal)];
        }
    }

    /// <summary>A sealed segment's valid records, one at a time (memory holds one batch). A stretch that does not check
    /// out is skipped, counted, logged and handed to <paramref name="onDamage"/> (to record what was lost); the records
    /// after it are read on.</summary>
    public IEnumerable<SpoolRecord> Read(string segment, Action<SpoolDamage>? onDamage = null)
        => SpoolRecord.ReadAll(segment, damage =>
        {
            Interlocked.Increment(ref _corrupt);
            Interlocked.Add(ref _corruptRows, damage.Rows ?? 0);
            Log.SpoolCorrupt(_log, Path.GetFileName(segment), damage.Offset, damage.Bytes, damage.Problem);
            onDamage?.Invoke(damage);
        });

    /// <summary>Removes a segment whose every record is committed.</summary>
    public void Delete(string segment)
    {
        var length = new FileInfo(segment).Length;
        File.Delete(segment);
        Interlocked.Add(ref _bytes, -length);
    }

    private void SealLocked()
    {
        _active?.Dispose();
        _active = null;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            SealLocked();
        }
    }
}
