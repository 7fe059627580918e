using System.Buffers.Binary;

namespace OrderBookIngestor.Storage;

/// <summary>
/// One COPY batch as kept on disk, in spool segments and in quarantine files: the batch exactly as it would have been
/// sent (binary COPY payload) with its table and batch id, so that putting it in later is the same COPY through the
/// same batch ledger. Layout, little-endian:
/// <c>magic "OBSP" (4) | payload length (4) | CRC-32 of everything after it (4) | table id (1) | batch id (16) | rows (4) | payload</c>.
/// Every record starts with the magic and carries its own checksum, so a reader that meets a damaged record can scan
/// forward to the next one that checks out instead of giving up on the rest of the file.
/// </summary>
public sealed record SpoolRecord(byte TableId, Guid BatchId, int Rows, byte[] Payload)
{
    public const int HeaderBytes = 4 + 4 + 4 + 1 + 16 + 4;

    /// <summary>"OBSP" as it appears in the file.</summary>
    private const uint Magic = 0x5053424F;

    /// <summary>A length field past this is damage, not a batch (a batch is at most BatchMaxRows rows).</summary>
    private const int MaxPayloadBytes = 1 << 30;

    private static ReadOnlySpan<byte> MagicBytes => [(byte)'O', (byte)'B', (byte)'S', (byte)'P'];

    public long EncodedLength => HeaderBytes + Payload.Length;

    public static byte[] Encode(byte tableId, Guid batchId, int rows, ReadOnlySpan<byte> payload)
    {
        var record = new byte[HeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(4), payload.Length);
        record[12] = tableId;
        batchId.TryWriteBytes(record.AsSpan(13, 16));
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(29), rows);
        payload.CopyTo(record.AsSpan(HeaderBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), Crc32.Compute(record.AsSpan(12)));
        return record;
    }

    /// <summary>
    /// Reads a file's records one at a time (memory holds one batch, whatever the file's size). A stretch that does
    /// not check out (a torn write, a flipped bit) is reported once to <paramref name="onDamage"/> and skipped: the
    /// reader resumes at the next position where a whole record with a valid checksum starts.
    /// </summary>
    public static IEnumerable<SpoolRecord> ReadAll(string path, Action<SpoolDamage> onDamage)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        var header = new byte[HeaderBytes];
        long offset = 0;
        SpoolDamage? damage = null;
        while (offset < file.Length)
        {
            var (record, problem, length) = TryReadAt(file, offset, header);
            if (record is not null)
            {
                if (damage is { } d)
                {
                    onDamage(d with { Bytes = offset - d.Offset });
                    damage = null;
                }

                yield return record;
                offset += record.EncodedLength;
                continue;
            }

            // A record whose header reads (its length leads to the next record, or to the end) but whose checksum fails
            // is one damaged record of its own: reported with what its header claims, and stepped over whole.
            var next = offset + HeaderBytes + length;
            if (problem == "checksum mismatch" && (next == file.Length || MagicAt(file, next, header)))
            {
                if (damage is { } d)
                {
                    onDamage(d with { Bytes = offset - d.Offset });
                    damage = null;
                }

                onDamage(Suspect(file, offset, header, problem) with { Bytes = next - offset });
                offset = next;
                continue;
            }

            // Otherwise a stretch of unknown extent: its first bad position says what was there, if anything.
            damage ??= Suspect(file, offset, header, problem!);
            offset = NextMagic(file, offset + 1);
        }

        if (damage is { } last)
        {
            onDamage(last with { Bytes = file.Length - last.Offset });
        }
    }

    private static (SpoolRecord? Record, string? Problem, int Length) TryReadAt(FileStream file, long offset, byte[] header)
    {
        file.Position = offset;
        if (file.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes)
        {
            return (null, "torn header", 0);
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic || length < 0 || length > MaxPayloadBytes)
        {
            return (null, "bad header", 0);
        }

        if (offset + HeaderBytes + length > file.Length)
        {
            return (null, "torn payload", 0);
        }

        var payload = new byte[length];
        file.ReadExactly(payload);
        var crc = Crc32.Compute(payload, Crc32.Compute(header.AsSpan(12)));
        return crc != BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8))
            ? (null, "checksum mismatch", length)
            : (new SpoolRecord(header[12], new Guid(header.AsSpan(13, 16)), BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(29)), payload), null, length);
    }

    private static bool MagicAt(FileStream file, long offset, byte[] scratch)
    {
        file.Position = offset;
        return file.ReadAtLeast(scratch.AsSpan(0, 4), 4, throwOnEndOfStream: false) == 4 && BinaryPrimitives.ReadUInt32LittleEndian(scratch) == Magic;
    }

    /// <summary>What the header at a bad position claims, when it still looks like one: the table, the row count and the
    /// (untrusted) payload, from which the time range and ids of the lost rows can be salvaged.</summary>
    private static SpoolDamage Suspect(FileStream file, long offset, byte[] header, string problem)
    {
        var damage = new SpoolDamage(offset, 0, problem, null, null, null);
        file.Position = offset;
        if (file.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes || BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
        {
            return damage;
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
        var rows = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(29));
        var available = (int)Math.Min(Math.Max(0, length), Math.Min(MaxPayloadBytes, file.Length - offset - HeaderBytes));
        var payload = new byte[available];
        file.ReadAtLeast(payload, available, throwOnEndOfStream: false);
        return damage with { TableId = header[12], Rows = rows >= 0 ? rows : null, SuspectPayload = payload };
    }

    /// <summary>The next position at or after <paramref name="from"/> where the magic appears, or the end of the file.</summary>
    private static long NextMagic(FileStream file, long from)
    {
        var buffer = new byte[1 << 16];
        var position = from;
        while (position < file.Length)
        {
            file.Position = position;
            var read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            var at = buffer.AsSpan(0, read).IndexOf(MagicBytes);
            if (at >= 0)
            {
                return position + at;
            }

            if (read < buffer.Length)
            {
                break; // the end of the file, and no magic in it
            }

            // Overlap by three bytes so a magic that straddles two reads is found.
            position += read - (MagicBytes.Length - 1);
        }

        return file.Length;
    }
}

/// <summary>A stretch of a spool or quarantine file that did not check out and was skipped. When its first header was
/// still readable, the table, row count and payload it claimed (the payload's bytes are not to be trusted).</summary>
public readonly record struct SpoolDamage(long Offset, long Bytes, string Problem, byte? TableId, int? Rows, byte[]? SuspectPayload);
