using System.Globalization;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// What GET /data/{symbol}?type=... reads: per type its table, its columns (named as users query them in psql),
/// the time column the range applies to and the key that orders rows within one instant (the cursor is the last
/// row's time and key), and the writers that stream rows out as JSON or CSV without holding them.
/// </summary>
public static class ReadQueries
{
    /// <param name="Key">Orders rows within one timestamp; null where the time alone is unique per symbol (the rollups).</param>
    /// <param name="Overlap">Gaps: the range selects gaps that overlap it (gap_end is the range's other end).</param>
    public sealed record Spec(string Type, string Table, string Time, string? Key, string Columns, bool Overlap = false);

    public static readonly IReadOnlyDictionary<string, Spec> Types = new Dictionary<string, Spec>(StringComparer.Ordinal)
    {
        ["book_ticker"] = new("book_ticker", "book_ticker", "ts_exchange", "update_id",
            "ts_exchange, ts_transaction, ts_ingest, update_id, best_bid, bid_qty, best_ask, ask_qty"),
        ["trades"] = new("trades", "trades", "ts_exchange", "agg_trade_id",
            "ts_exchange, ts_trade, ts_ingest, agg_trade_id, price, qty, first_trade_id, last_trade_id, is_buyer_maker, is_backfilled"),
        ["depth"] = new("depth", "depth_events", "ts_exchange", "final_update_id",
            "ts_exchange, ts_transaction, ts_ingest, first_update_id, final_update_id, prev_final_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys"),
        ["bt_1s"] = new("bt_1s", "bt_1s", "bucket", null,
            "ts_second, mid_open, mid_high, mid_low, mid_close, spread_mean, spread_min, spread_max, spread_std, total_qty_mean, bid_qty_mean, ask_qty_mean, update_count, avg_latency_ms"),
        ["trade_1s"] = new("trade_1s", "trade_1s", "bucket", null,
            "ts_second, trade_count, trades, vol_sum, quote_volume, vwap, buy_vol, sell_vol, price_open, price_high, price_low, price_close"),
        ["derivatives_1s"] = new("derivatives_1s", "derivatives_1s", "bucket", null,
            "ts_second, mark_price, index_price, est_settle_price, funding_rate, next_funding_time, mark_at, mark_backfilled, mark_updates, "
            + "open_interest, open_interest_at, liq_buy_count, liq_sell_count, liq_buy_qty, liq_sell_qty, liq_buy_notional, liq_sell_notional"),
        ["gaps"] = new("gaps", "feed_gaps", "gap_start", "id",
            "id, stream, gap_start, gap_end, first_missing_id, last_missing_id, reason, details", Overlap: true),
    };

    /// <summary>One page: rows of the symbol in [from, to), after the cursor, oldest first. Parameters: $1 symbol id,
    /// then from, to, cursor time, cursor key where present, in that order; the limit is inlined (validated int).</summary>
    public static (string Sql, List<object> Parameters) Page(Spec spec, int symbolId, DateTime? from, DateTime? to, (DateTime Time, long Key)? after, string select, int limit, int offset = 0)
    {
        var sql = new StringBuilder().Append(CultureInfo.InvariantCulture, $"SELECT {select} FROM marketdata.{spec.Table} x WHERE x.symbol_id = $1");
        var parameters = new List<object> { symbolId };
        if (from is { } f)
        {
            parameters.Add(f);
            sql.Append(CultureInfo.InvariantCulture, $" AND x.{(spec.Overlap ? "gap_end" : spec.Time)} >= ${parameters.Count}");
        }

        if (to is { } t)
        {
            parameters.Add(t);
            sql.Append(CultureInfo.InvariantCulture, $" AND x.{spec.Time} < ${parameters.Count}");
        }

        if (after is { } a)
        {
            parameters.Add(a.Time);
            var time = parameters.Count;
            if (spec.Key is null)
            {
                sql.Append(CultureInfo.InvariantCulture, $" AND x.{spec.Time} > ${time}");
            }
            else
            {
                parameters.Add(a.Key);
                sql.Append(CultureInfo.InvariantCulture, $" AND x.{spec.Time} >= ${time} AND (x.{spec.Time}, x.{spec.Key}) > (${time}, ${parameters.Count})");
            }
        }

        sql.Append(CultureInfo.InvariantCulture, $" ORDER BY x.{spec.Time}{(spec.Key is null ? "" : $", x.{spec.Key}")} LIMIT {limit}");
        if (offset > 0)
        {
            sql.Append(CultureInfo.InvariantCulture, $" OFFSET {offset}");
        }

        return (sql.ToString(), parameters);
    }

    public static string KeySelect(Spec spec) => $"x.{spec.Time}, {(spec.Key is null ? "0::bigint" : "x." + spec.Key)}";

    /// <summary>The cursor: the last returned row's time (µs since the epoch) and key, base64url.</summary>
    public static string EncodeCursor(DateTime time, long key)
        => Convert.ToBase64String(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{(time.Ticks - DateTime.UnixEpoch.Ticks) / 10}.{key}")))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static bool TryDecodeCursor(string text, out (DateTime Time, long Key) cursor)
    {
        cursor = default;
        try
        {
            var padded = text.Replace('-', '+').Replace('_', '/');
            padded += new string('=', (4 - (padded.Length % 4)) % 4);
            var parts = Encoding.ASCII.GetString(Convert.FromBase64String(padded)).Split('.');
            if (parts.Length == 2 && long.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var us)
                && long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var key)
                && us is > -62_135_596_800_000_000L and < 253_402_300_800_000_000L)
            {
                cursor = (new DateTime(DateTime.UnixEpoch.Ticks + (us * 10), DateTimeKind.Utc), key);
                return true;
            }
        }
        catch (FormatException)
        {
            // not base64
        }

        return false;
    }

    public static string Timestamp(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>One row as a JSON object, every column under its name (timestamps as ISO 8601 UTC with µs).</summary>
    public static void WriteJsonRow(Utf8JsonWriter w, NpgsqlDataReader r)
    {
        w.WriteStartObject();
        for (var i = 0; i < r.FieldCount; i++)
        {
            w.WritePropertyName(r.GetName(i));
            if (r.IsDBNull(i))
            {
                w.WriteNullValue();
                continue;
            }

            switch (r.GetValue(i))
            {
                case DateTime t: w.WriteStringValue(Timestamp(t)); break;
                case double d when double.IsFinite(d): w.WriteNumberValue(d); break;
                case double d: w.WriteStringValue(d.ToString(CultureInfo.InvariantCulture)); break;
                case decimal m: w.WriteNumberValue(m); break;
                case long l: w.WriteNumberValue(l); break;
                case int n: w.WriteNumberValue(n); break;
                case bool b: w.WriteBooleanValue(b); break;
                case double[] a:
                    w.WriteStartArray();
                    foreach (var d in a)
                    {
                        w.WriteNumberValue(d);
                    }

                    w.WriteEndArray();
                    break;
                case var other: w.WriteStringValue(Convert.ToString(other, CultureInfo.InvariantCulture)); break;
            }
        }

        w.WriteEndObject();
    }

    public static string CsvHeader(NpgsqlDataReader r) => string.Join(',', Enumerable.Range(0, r.FieldCount).Select(r.GetName));

    /// <summary>One row as a CSV line (RFC 4180 quoting; arrays as [a,b,...] in quotes; NULL as an empty field).</summary>
    public static void AppendCsvRow(StringBuilder line, NpgsqlDataReader r)
    {
        for (var i = 0; i < r.FieldCount; i++)
        {
            if (i > 0)
            {
                line.Append(',');
            }

            if (r.IsDBNull(i))
            {
                continue;
            }

            switch (r.GetValue(i))
            {
                case DateTime t: line.Append(Timestamp(t)); break;
                case double d: line.Append(d.ToString("R", CultureInfo.InvariantCulture)); break;
                case bool b: line.Append(b ? "true" : "false"); break;
                case double[] a: line.Append("\"[").AppendJoin(',', a.Select(d => d.ToString("R", CultureInfo.InvariantCulture))).Append("]\""); break;
                case string s: AppendQuoted(line, s); break;
                case var other: line.Append(Convert.ToString(other, CultureInfo.InvariantCulture)); break;
            }
        }

        line.Append('\n');
    }

    private static void AppendQuoted(StringBuilder line, string s)
    {
        if (s.AsSpan().IndexOfAny(",\"\n\r") < 0)
        {
            line.Append(s);
            return;
        }

        line.Append('"').Append(s.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }
}
