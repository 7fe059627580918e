using System.Buffers;
using System.Buffers.Binary;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Storage;

/// <summary>
/// Rows encoded straight into PostgreSQL's binary COPY format in one pooled buffer, so that a batch costs
/// one memcpy-like pass instead of a driver call per field. Owned by one flusher; reset after a commit and
/// kept whole after a failure, so a retry sends exactly the same bytes.
/// </summary>
public sealed class CopyBatch : IDisposable
{
    /// <summary>"PGCOPY\n\377\r\n\0", then flags (0) and header-extension length (0).</summary>
    internal static ReadOnlySpan<byte> Header => [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0, 0, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 UTC).</summary>
    internal const long PostgresEpochOffsetUs = 946_684_800_000_000L;

    private byte[] _buffer;
    private long[] _exchangeTimesMs;
    private int _length;

    public CopyBatch(int expectedRows, int bytesPerRow = 128)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1024, expectedRows * bytesPerRow));
        _exchangeTimesMs = ArrayPool<long>.Shared.Rent(Math.Max(16, expectedRows));
        Reset();
    }

    public int Rows { get; private set; }

    /// <summary>Identifies the batch in marketdata.ingest_batches: a retry or a spool replay of the same bytes is stored once.</summary>
    public Guid Id { get; private set; }

    public int Length => _length;

    /// <summary>Exchange event times of the rows, for the exchange-to-commit latency histogram.</summary>
    public ReadOnlySpan<long> ExchangeTimesMs => _exchangeTimesMs.AsSpan(0, Rows);

    public void Reset()
    {
        Header.CopyTo(_buffer);
        _length = Header.Length;
        Rows = 0;
        Id = Guid.NewGuid();
    }

    /// <summary>Starts a row of <paramref name="fields"/> columns; reserves room for the whole row up front.</summary>
    /// <param name="maxRowBytes">Fixed-width part of the row; variable-width writers (arrays) reserve their own room.</param>
    public void BeginRow(short fields, long exchangeTimeMs, int maxRowBytes)
    {
        Ensure(2 + maxRowBytes);
        if (Rows == _exchangeTimesMs.Length)
        {
            PooledArrays.Grow(ref _exchangeTimesMs, _exchangeTimesMs.Length * 2, Rows);
        }

        _exchangeTimesMs[Rows++] = exchangeTimeMs;
        BinaryPrimitives.WriteInt16BigEndian(_buffer.AsSpan(_length), fields);
        _length += 2;
    }

    public void WriteInt32(int value)
    {
        var span = _buffer.AsSpan(_length, 8);
        BinaryPrimitives.WriteInt32BigEndian(span, 4);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], value);
        _length += 8;
    }

    public void WriteInt64(long value)
    {
        var span = _buffer.AsSpan(_length, 12);
        BinaryPrimitives.WriteInt32BigEndian(span, 8);
        BinaryPrimitives.WriteInt64BigEndian(span[4..], value);
        _length += 12;
    }

    public void WriteDouble(double value)
    {
        var span = _buffer.AsSpan(_length, 12);
        BinaryPrimitives.WriteInt32BigEndian(span, 8);
        BinaryPrimitives.WriteDoubleBigEndian(span[4..], value);
        _length += 12;
    }

    /// <summary>timestamptz from Unix microseconds.</summary>
    public void WriteTimestampMicros(long unixMicros) => WriteInt64(unixMicros - PostgresEpochOffsetUs);

    /// <summary>timestamptz from Unix milliseconds (exchange times).</summary>
    public void WriteTimestampMillis(long unixMillis) => WriteInt64((unixMillis * 1000) - PostgresEpochOffsetUs);

    /// <summary>A NULL field.</summary>
    public void WriteNull()
    {
        Ensure(4);
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_length), -1);
        _length += 4;
    }

    /// <summary>float8, or NULL when not finite (a feature of an empty side, say).</summary>
    public void WriteNullableDouble(double value)
    {
        if (double.IsFinite(value))
        {
            WriteDouble(value);
        }
        else
        {
            WriteNull();
        }
    }

    /// <summary>
    /// float8[] from every <paramref name="stride"/>-th value starting at <paramref name="offset"/> (so interleaved
    /// price/qty pairs give two arrays). Binary array: ndim, has-nulls, element OID 701, then length and lower bound.
    /// </summary>
    public void WriteDoubleArray(ReadOnlySpan<double> values, int offset, int stride)
    {
        var count = values.Length <= offset ? 0 : ((values.Length - offset - 1) / stride) + 1;
        var payload = count == 0 ? 12 : 20 + (count * 12);
        Ensure(4 + payload);
        var span = _buffer.AsSpan(_length, 4 + payload);
        BinaryPrimitives.WriteInt32BigEndian(span, payload);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], count == 0 ? 0 : 1);
        BinaryPrimitives.WriteInt32BigEndian(span[8..], 0);
        BinaryPrimitives.WriteInt32BigEndian(span[12..], 701);
        var at = 16;
        if (count > 0)
        {
            BinaryPrimitives.WriteInt32BigEndian(span[16..], count);
            BinaryPrimitives.WriteInt32BigEndian(span[20..], 1);
            at = 24;
            for (var i = offset; i < values.Length; i += stride)
            {
                BinaryPrimitives.WriteInt32BigEndian(span[at..], 8);
                BinaryPrimitives.WriteDoubleBigEndian(span[(at + 4)..], values[i]);
                at += 12;
            }
        }

        _length += 4 + payload;
    }

    /// <summary>text from an ASCII string (the exchange's enum words); binary text is the UTF-8 bytes.</summary>
    public void WriteAsciiText(string value)
    {
        Ensure(4 + value.Length);
        var span = _buffer.AsSpan(_length, 4 + value.Length);
        BinaryPrimitives.WriteInt32BigEndian(span, value.Length);
        System.Text.Encoding.ASCII.GetBytes(value, span[4..]);
        _length += 4 + value.Length;
    }

    public void WriteBool(bool value)
    {
        var span = _buffer.AsSpan(_length, 5);
        BinaryPrimitives.WriteInt32BigEndian(span, 1);
        span[4] = value ? (byte)1 : (byte)0;
        _length += 5;
    }

    /// <summary>The complete COPY payload: header, rows and the -1 trailer. The batch itself is unchanged.</summary>
    public ReadOnlyMemory<byte> Payload()
    {
        Ensure(2);
        BinaryPrimitives.WriteInt16BigEndian(_buffer.AsSpan(_length), -1);
        return _buffer.AsMemory(0, _length + 2);
    }

    private void Ensure(int more)
    {
        if (_length + more <= _buffer.Length)
        {
            return;
        }

        PooledArrays.Grow(ref _buffer, Math.Max(_buffer.Length * 2, _length + more), _length);
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        ArrayPool<long>.Shared.Return(_exchangeTimesMs);
        _buffer = [];
        _exchangeTimesMs = [];
    }
}
