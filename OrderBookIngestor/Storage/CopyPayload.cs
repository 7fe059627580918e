using System.Buffers.Binary;

namespace OrderBookIngestor.Storage;

/// <summary>One field of a binary COPY row: its row and column index and its bytes (empty for NULL).</summary>
public delegate void CopyFieldVisitor(int row, int field, ReadOnlySpan<byte> value);

/// <summary>A <see cref="CopyFieldVisitor"/> as a struct: for the walks that run on every COPY, no delegate call per field.</summary>
public interface ICopyFieldVisitor
{
    void Visit(int row, int field, ReadOnlySpan<byte> value);
}

/// <summary>
/// Reads what <see cref="CopyBatch"/> writes, including payloads from the spool and the quarantine: every field of
/// every row, stopping at anything malformed rather than reading past the buffer (a damaged payload yields the rows
/// before the damage). The batch ledger's time range and the salvage of a damaged spool record come from here.
/// </summary>
public static class CopyPayload
{
    /// <summary>Visits every field; returns the number of whole rows read.</summary>
    public static int ForEachField(ReadOnlySpan<byte> payload, CopyFieldVisitor visit)
    {
        var visitor = new DelegateVisitor(visit);
        return ForEachField(payload, ref visitor);
    }

    /// <inheritdoc cref="ForEachField(ReadOnlySpan{byte}, CopyFieldVisitor)"/>
    public static int ForEachField<TVisitor>(ReadOnlySpan<byte> payload, ref TVisitor visit)
        where TVisitor : struct, ICopyFieldVisitor
    {
        var at = CopyBatch.Header.Length;
        var row = 0;
        while (at + 2 <= payload.Length)
        {
            var fields = BinaryPrimitives.ReadInt16BigEndian(payload[at..]);
            at += 2;
            if (fields <= 0)
            {
                break; // the trailer (-1), or damage
            }

            for (var f = 0; f < fields; f++)
            {
                if (at + 4 > payload.Length)
                {
                    return row;
                }

                var length = BinaryPrimitives.ReadInt32BigEndian(payload[at..]);
                at += 4;
                if (length < 0)
                {
                    visit.Visit(row, f, []);
                    continue;
                }

                if (length > payload.Length - at)
                {
                    return row;
                }

                visit.Visit(row, f, payload.Slice(at, length));
                at += length;
            }

            row++;
        }

        return row;
    }

    /// <summary>
    /// The smallest and largest value of the first column (every table's time column), as DateTimes (UTC); null when
    /// the payload holds no row.
    /// </summary>
    public static (DateTime Min, DateTime Max)? FirstColumnRange(ReadOnlySpan<byte> payload)
    {
        var range = new TimeRange { Min = long.MaxValue, Max = long.MinValue };
        ForEachField(payload, ref range);
        return range.Min > range.Max ? null : (ToDateTime(range.Min), ToDateTime(range.Max));
    }

    private struct TimeRange : ICopyFieldVisitor
    {
        public long Min;
        public long Max;

        public void Visit(int row, int field, ReadOnlySpan<byte> value)
        {
            if (field == 0 && value.Length == 8)
            {
                var us = BinaryPrimitives.ReadInt64BigEndian(value);
                Min = Math.Min(Min, us);
                Max = Math.Max(Max, us);
            }
        }
    }

    private readonly struct DelegateVisitor(CopyFieldVisitor visit) : ICopyFieldVisitor
    {
        public void Visit(int row, int field, ReadOnlySpan<byte> value) => visit(row, field, value);
    }

    /// <summary>What a payload held per symbol: the time range (Unix µs) and the range of the table's id column.</summary>
    public readonly record struct SymbolRange(int SymbolId, long FromUs, long ToUs, long FirstId, long LastId, int Rows);

    /// <summary>
    /// Per symbol, the time and id ranges of the rows of a <paramref name="table"/> payload, as far as it reads: what a
    /// damaged spool record held, for the gap ledger and the trade backfill. The bytes are not trusted. bookTicker and
    /// aggTrade rows have a fixed width, so a damaged row is skipped and the rows after it are still read; for the
    /// tables with arrays the rows before the damage are. A damaged id or time can only widen a range.
    /// </summary>
    public static IReadOnlyList<SymbolRange> Salvage(string table, ReadOnlySpan<byte> payload)
    {
        var (symbolField, firstIdField, lastIdField, widths) = Layout(table);
        var ranges = new Dictionary<int, SymbolRange>();
        void Add(long time, int symbol, long firstId, long lastId)
        {
            if (symbol > 0 && time > 0)
            {
                ranges[symbol] = ranges.TryGetValue(symbol, out var r)
                    ? new SymbolRange(symbol, Math.Min(r.FromUs, time), Math.Max(r.ToUs, time), Math.Min(r.FirstId, firstId), Math.Max(r.LastId, lastId), r.Rows + 1)
                    : new SymbolRange(symbol, time, time, firstId, lastId, 1);
            }
        }

        if (widths is not null)
        {
            var rowBytes = 2 + widths.Sum(w => 4 + w);
            for (var at = CopyBatch.Header.Length; at + rowBytes <= payload.Length; at += rowBytes)
            {
                if (FixedRow(payload.Slice(at, rowBytes), widths, symbolField, firstIdField, lastIdField) is { } row)
                {
                    Add(row.Time, row.Symbol, row.FirstId, row.LastId);
                }
            }
        }
        else
        {
            long time = 0, firstId = 0;
            var symbol = 0;
            ForEachField(payload, (_, field, value) =>
            {
                if (field == 0)
                {
                    (time, symbol, firstId) = (value.Length == 8 ? BinaryPrimitives.ReadInt64BigEndian(value) + CopyBatch.PostgresEpochOffsetUs : 0, 0, 0);
                }
                else if (field == symbolField && value.Length == 4)
                {
                    symbol = BinaryPrimitives.ReadInt32BigEndian(value);
                    if (lastIdField < 0)
                    {
                        // A table without an id column: the row counts once its symbol is read.
                        Add(time, symbol, 0, 0);
                    }
                }

                if (field == firstIdField && value.Length == 8)
                {
                    firstId = BinaryPrimitives.ReadInt64BigEndian(value);
                }

                if (field == lastIdField && value.Length == 8)
                {
                    Add(time, symbol, firstId, BinaryPrimitives.ReadInt64BigEndian(value));
                }
            });
        }

        return [.. ranges.Values.OrderBy(r => r.SymbolId)];
    }

    /// <summary>Whether the table's rows carry the exchange's ids (the ranges of <see cref="Salvage"/> are then ids).</summary>
    public static bool HasIds(string table) => Layout(table).LastIdField >= 0;

    /// <summary>Column positions as the row encoders write them (time is always first; an id field of -1: the table has
    /// no id column), and the widths of fixed-width rows.</summary>
    private static (int SymbolField, int FirstIdField, int LastIdField, int[]? Widths) Layout(string table) => table switch
    {
        "book_ticker" => (3, 4, 4, new[] { 8, 8, 8, 4, 8, 8, 8, 8, 8 }),
        "trades" => (3, 4, 4, new[] { 8, 8, 8, 4, 8, 8, 8, 8, 8, 1, 1 }),
        "depth_events" => (3, 4, 5, null),
        "book_snapshots" => (2, 3, 3, null),
        "orderbook_top" => (1, 2, 2, null),
        "mark_price" => (2, -1, -1, null),
        "liquidations" => (3, -1, -1, null),
        "open_interest" => (2, -1, -1, new[] { 8, 8, 4, 8 }),
        _ => throw new ArgumentException($"unknown table {table}", nameof(table)),
    };

    /// <summary>One fixed-width row, or null when its field count or a length is not what the encoder writes.</summary>
    private static (long Time, int Symbol, long FirstId, long LastId)? FixedRow(ReadOnlySpan<byte> row, int[] widths, int symbolField, int firstIdField, int lastIdField)
    {
        if (BinaryPrimitives.ReadInt16BigEndian(row) != widths.Length)
        {
            return null;
        }

        long time = 0, firstId = 0, lastId = 0;
        var symbol = 0;
        var at = 2;
        for (var f = 0; f < widths.Length; f++)
        {
            if (BinaryPrimitives.ReadInt32BigEndian(row[at..]) != widths[f])
            {
                return null;
            }

            var value = row.Slice(at + 4, widths[f]);
            if (f == 0)
            {
                time = BinaryPrimitives.ReadInt64BigEndian(value) + CopyBatch.PostgresEpochOffsetUs;
            }
            else if (f == symbolField)
            {
                symbol = BinaryPrimitives.ReadInt32BigEndian(value);
            }

            if (f == firstIdField && firstIdField >= 0)
            {
                firstId = BinaryPrimitives.ReadInt64BigEndian(value);
            }

            if (f == lastIdField && lastIdField >= 0)
            {
                lastId = BinaryPrimitives.ReadInt64BigEndian(value);
            }

            at += 4 + widths[f];
        }

        return (time, symbol, firstId, lastId);
    }

    private static DateTime ToDateTime(long postgresUs) => DateTime.UnixEpoch.AddTicks((postgresUs + CopyBatch.PostgresEpochOffsetUs) * 10);
}
