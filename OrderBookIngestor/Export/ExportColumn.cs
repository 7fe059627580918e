using System.Data;
using System.Globalization;
using Npgsql;
using Parquet;
using Parquet.Schema;

namespace OrderBookIngestor.Export;

internal enum ColumnKind
{
    Timestamp,
    Double,
    BigInt,
    Integer,
    Bool,
    Text,
}

/// <summary>A column of an exported file: its name, its type and whether it can be empty, from the query's own
/// result description (required where the column comes from a NOT NULL table column; a computed one is optional).</summary>
internal sealed record ExportColumn(string Name, ColumnKind Kind, bool Nullable)
{
    /// <summary>Describes <paramref name="command"/>'s result without running it (a Describe round trip), then asks
    /// pg_attribute which of its columns come from a NOT NULL table column.</summary>
    public static async Task<List<ExportColumn>> DescribeAsync(NpgsqlCommand command, CancellationToken ct)
    {
        var fields = new List<(string Name, string Type, uint Table, short Attribute)>();
        await using (var reader = await command.ExecuteReaderAsync(CommandBehavior.SchemaOnly, ct).ConfigureAwait(false))
        {
            foreach (var c in (await reader.GetColumnSchemaAsync(ct).ConfigureAwait(false)).Cast<Npgsql.Schema.NpgsqlDbColumn>())
            {
                fields.Add((c.ColumnName, c.DataTypeName ?? "?", c.TableOID, c.ColumnAttributeNumber ?? 0));
            }
        }

        var notNull = new HashSet<(long, int)>();
        var tables = fields.Where(f => f.Table != 0).Select(f => (long)f.Table).Distinct().ToArray();
        if (tables.Length > 0)
        {
            await using var attributes = new NpgsqlCommand(
                "SELECT attrelid::bigint, attnum::integer FROM pg_catalog.pg_attribute WHERE attrelid::bigint = ANY($1) AND attnum > 0 AND attnotnull",
                command.Connection, command.Transaction);
            attributes.Parameters.Add(new NpgsqlParameter { Value = tables });
            await using var reader = await attributes.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                notNull.Add((reader.GetInt64(0), reader.GetInt32(1)));
            }
        }

        return fields.Select(f => new ExportColumn(f.Name, f.Type switch
        {
            "timestamp with time zone" => ColumnKind.Timestamp,
            "double precision" or "real" or "numeric" => ColumnKind.Double,
            "bigint" => ColumnKind.BigInt,
            "integer" or "smallint" => ColumnKind.Integer,
            "boolean" => ColumnKind.Bool,
            "text" or "character varying" => ColumnKind.Text,
            _ => throw new InvalidOperationException($"column {f.Name} has type {f.Type}, which export does not know how to write"),
        }, !notNull.Contains((f.Table, f.Attribute)))).ToList();
    }

    /// <summary>Timestamps are UTC microseconds (TIMESTAMP(MICROS, adjusted to UTC)); decimal values are float64.</summary>
    public DataField ParquetField() => Kind switch
    {
        ColumnKind.Timestamp => new DateTimeDataField(Name, DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros, isNullable: Nullable),
        ColumnKind.Double => new DataField(Name, typeof(double), Nullable),
        ColumnKind.BigInt => new DataField(Name, typeof(long), Nullable),
        ColumnKind.Integer => new DataField(Name, typeof(int), Nullable),
        ColumnKind.Bool => new DataField(Name, typeof(bool), Nullable),
        _ => new DataField(Name, typeof(string), Nullable),
    };

    /// <summary>The CSV text of the reader's current value: ISO 8601 UTC with µs, the shortest round-trip decimal of a
    /// float64 (the exchange's own text), true/false, text quoted when it has to be; empty for NULL.</summary>
    public string CsvText(NpgsqlDataReader reader, int ordinal)
    {
        if (reader.IsDBNull(ordinal))
        {
            return "";
        }

        return Kind switch
        {
            ColumnKind.Timestamp => Hosting.ReadQueries.Timestamp(reader.GetFieldValue<DateTime>(ordinal)),
            ColumnKind.Double => reader.GetFieldValue<double>(ordinal).ToString("R", CultureInfo.InvariantCulture),
            ColumnKind.BigInt => reader.GetInt64(ordinal).ToString(CultureInfo.InvariantCulture),
            ColumnKind.Integer => reader.GetFieldValue<int>(ordinal).ToString(CultureInfo.InvariantCulture),
            ColumnKind.Bool => reader.GetBoolean(ordinal) ? "true" : "false",
            _ => Quote(reader.GetString(ordinal)),
        };
    }

    public static string Quote(string text)
        => text.AsSpan().IndexOfAny(",\"\r\n") < 0 ? text : "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}

/// <summary>One Parquet column's values for the row group being filled.</summary>
internal abstract class ColumnBuffer
{
    /// <summary>Buffers start small and double up to the row group's size: most symbol-days of a quiet table are small.</summary>
    private const int InitialCapacity = 4096;

    protected ColumnBuffer(DataField field) => Field = field;

    public DataField Field { get; }

    public abstract void Append(NpgsqlDataReader reader, int ordinal);

    public abstract Task WriteAsync(ParquetRowGroupWriter group, CancellationToken ct);

    public static ColumnBuffer For(ExportColumn column, int capacity)
    {
        var field = column.ParquetField();
        return (column.Kind, column.Nullable) switch
        {
            (ColumnKind.Timestamp, false) => new Values<DateTime>(field, capacity, static (r, i) => r.GetFieldValue<DateTime>(i)),
            (ColumnKind.Timestamp, true) => new NullableValues<DateTime>(field, capacity, static (r, i) => r.GetFieldValue<DateTime>(i)),
            (ColumnKind.Double, false) => new Values<double>(field, capacity, static (r, i) => r.GetFieldValue<double>(i)),
            (ColumnKind.Double, true) => new NullableValues<double>(field, capacity, static (r, i) => r.GetFieldValue<double>(i)),
            (ColumnKind.BigInt, false) => new Values<long>(field, capacity, static (r, i) => r.GetInt64(i)),
            (ColumnKind.BigInt, true) => new NullableValues<long>(field, capacity, static (r, i) => r.GetInt64(i)),
            (ColumnKind.Integer, false) => new Values<int>(field, capacity, static (r, i) => r.GetFieldValue<int>(i)),
            (ColumnKind.Integer, true) => new NullableValues<int>(field, capacity, static (r, i) => r.GetFieldValue<int>(i)),
            (ColumnKind.Bool, false) => new Values<bool>(field, capacity, static (r, i) => r.GetBoolean(i)),
            (ColumnKind.Bool, true) => new NullableValues<bool>(field, capacity, static (r, i) => r.GetBoolean(i)),
            _ => new Texts(field, capacity),
        };
    }

    private sealed class Values<T>(DataField field, int capacity, Func<NpgsqlDataReader, int, T> read) : ColumnBuffer(field)
        where T : struct
    {
        private T[] _values = new T[Math.Min(capacity, InitialCapacity)];
        private int _count;

        public override void Append(NpgsqlDataReader reader, int ordinal)
        {
            if (_count == _values.Length)
            {
                Array.Resize(ref _values, Math.Min(capacity, _values.Length * 2));
            }

            _values[_count++] = read(reader, ordinal);
        }

        public override async Task WriteAsync(ParquetRowGroupWriter group, CancellationToken ct)
        {
            await group.WriteAsync<T>(Field, _values.AsMemory(0, _count), null, null, ct).ConfigureAwait(false);
            _count = 0;
        }
    }

    private sealed class NullableValues<T>(DataField field, int capacity, Func<NpgsqlDataReader, int, T> read) : ColumnBuffer(field)
        where T : struct
    {
        private T?[] _values = new T?[Math.Min(capacity, InitialCapacity)];
        private int _count;

        public override void Append(NpgsqlDataReader reader, int ordinal)
        {
            if (_count == _values.Length)
            {
                Array.Resize(ref _values, Math.Min(capacity, _values.Length * 2));
            }

            _values[_count++] = reader.IsDBNull(ordinal) ? null : read(reader, ordinal);
        }

        public override async Task WriteAsync(ParquetRowGroupWriter group, CancellationToken ct)
        {
            await group.WriteAsync<T>(Field, _values.AsMemory(0, _count), null, null, ct).ConfigureAwait(false);
            _count = 0;
        }
    }

    private sealed class Texts(DataField field, int capacity) : ColumnBuffer(field)
    {
        private readonly List<string> _values = new(Math.Min(capacity, InitialCapacity));

        public override void Append(NpgsqlDataReader reader, int ordinal) => _values.Add(reader.IsDBNull(ordinal) ? null! : reader.GetString(ordinal));

        public void AppendConstant(string value) => _values.Add(value);

        public override async Task WriteAsync(ParquetRowGroupWriter group, CancellationToken ct)
        {
            await group.WriteAsync(Field, _values, null).ConfigureAwait(false);
            _values.Clear();
        }
    }

    /// <summary>The file's symbol on every row, so that files of several symbols concatenate into one frame.</summary>
    public sealed class Constant(DataField field, int capacity, string value) : ColumnBuffer(field)
    {
        private readonly Texts _texts = new(field, capacity);

        public override void Append(NpgsqlDataReader reader, int ordinal) => _texts.AppendConstant(value);

        public override Task WriteAsync(ParquetRowGroupWriter group, CancellationToken ct) => _texts.WriteAsync(group, ct);
    }
}
