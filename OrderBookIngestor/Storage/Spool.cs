using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>
/// Append-only, checksummed segment files holding COPY batches the database could not take. A record is
/// the batch exactly as it would have been sent (binary COPY payload) plus its table and batch id, so a
/// replay is the same COPY and the batch ledger keeps it exactly-once. Disk use is capped; a torn or
/// corrupt record (crash mid-write, bad disk) is cut off, counted and logged, never replayed.
/// </summary>
public sealed class Spool : IDisposable
{
    private const uint Magic = 0x5053424F; // "OBSP"
    private const int HeaderBytes = 4 + 4 + 4 + 1 + 16 + 4;
    private const string Extension = ".spool";

    private readonly string _directory;
    private readonly long _maxBytes;
    private readonly long _segmentBytes;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private FileStream? _active;
    private long _bytes;
    private long _corrupt;
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

    public bool IsEmpty => Bytes == 0;

    /// <summary>False when the cap is reached: the caller keeps the batch and applies backpressure instead.</summary>
    public bool TryAppend(byte tableId, Guid batchId, int rows, ReadOnlySpan<byte> payload)
    {
        var record = new byte[HeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(4), payload.Length);
        record[12] = tableId;
        batchId.TryWriteBytes(record.AsSpan(13, 16));
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(29), rows);
        payload.CopyTo(record.AsSpan(HeaderBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), Crc32.Compute(record.AsSpan(12)));
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

    public sealed record Record(byte TableId, Guid BatchId, int Rows, byte[] Payload);

    /// <summary>Reads a sealed segment's valid records. A bad record and everything after it is cut off (the
    /// segment is truncated there), counted and logged.</summary>
    public List<Record> Read(string segment)
    {
        var records = new List<Record>();
        using var file = new FileStream(segment, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        var header = new byte[HeaderBytes];
        long offset = 0;
        while (offset < file.Length)
        {
            file.Position = offset;
            var problem = file.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes ? "torn header" : null;
            var length = problem is null ? BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4)) : 0;
            if (problem is null && (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic || length < 0 || offset + HeaderBytes + length > file.Length))
            {
                problem = "bad header or torn payload";
            }

            byte[] payload = [];
            if (problem is null)
            {
                payload = new byte[length];
                file.ReadExactly(payload);
                var crc = Crc32.Compute(payload, Crc32.Compute(header.AsSpan(12)));
                if (crc != BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8)))
                {
                    problem = "checksum mismatch";
                }
            }

            if (problem is not null)
            {
                var cut = file.Length - offset;
                file.SetLength(offset);
                Interlocked.Increment(ref _corrupt);
                Interlocked.Add(ref _bytes, -cut);
                Log.SpoolCorrupt(_log, Path.GetFileName(segment), offset, cut, problem);
                break;
            }

            records.Add(new Record(header[12], new Guid(header.AsSpan(13, 16)), BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(29)), payload));
            offset += HeaderBytes + length;
        }

        return records;
    }

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
