// Over 400 lines: the three endpoints, their shared guard (token, concurrency, read-only snapshot, timeout) and
// their request parsing belong together; the SQL and the row writers are in ReadQueries.
using System.Data;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Npgsql;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// The seed's REST read API on the daemon's Kestrel: GET /symbols, /data/{symbol}, /stats. Reads never slow
/// ingestion: they have their own small connection pool, run in read-only transactions cut by a statement timeout
/// (503), and at most ReadApiMaxConcurrent run at once (429 beyond). Rows are streamed as they are read, so memory
/// does not grow with the page size. Bad input is a 4xx with a JSON error naming the parameter.
/// </summary>
public sealed partial class ReadApi : IAsyncDisposable
{
    public const int DefaultLimit = 1000;

    public const int MaxLimit = 10_000;

    /// <summary>Rows written between two flushes of the response.</summary>
    private const int FlushEvery = 256;

    private static readonly string[] Tables = ["book_ticker", "trades", "depth_events"];

    private readonly NpgsqlDataSource _dataSource;
    private readonly ReadApiAccess _access;
    private readonly SemaphoreSlim _gate;
    private readonly int _statementTimeoutMs;
    private readonly int _maxConcurrent;

    public ReadApi(NpgsqlDataSource dataSource, ReadApiAccess access, int maxConcurrent, int statementTimeoutMs)
    {
        _dataSource = dataSource;
        _access = access;
        _gate = new SemaphoreSlim(maxConcurrent, maxConcurrent);
        _maxConcurrent = maxConcurrent;
        _statementTimeoutMs = statementTimeoutMs;
    }

    /// <summary>The read API's own pool, apart from the writers': at most <paramref name="maxConcurrent"/> connections.</summary>
    public static NpgsqlDataSource CreateDataSource(string database, int maxConcurrent)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(Configuration.DatabaseConnection.ToNpgsql(database));
        builder.ConnectionStringBuilder.ApplicationName = "orderbook-ingestor read API";
        builder.ConnectionStringBuilder.MaxPoolSize = maxConcurrent;
        builder.ConnectionStringBuilder.MinPoolSize = 0;
        builder.ConnectionStringBuilder.Timeout = 5;
        return builder.Build();
    }

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/symbols", ctx => ServeAsync(ctx, SymbolsAsync));
        app.MapGet("/data/{symbol}", ctx => ServeAsync(ctx, DataAsync));
        app.MapGet("/stats", ctx => ServeAsync(ctx, StatsAsync));
        app.MapGet("/book/{symbol}", ctx => ServeAsync(ctx, BookAsync));
    }

    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    /// <summary>A request the API refuses: its status, the parameter at fault, and why.</summary>
    private sealed class RequestError(int status, string parameter, string message) : Exception(message)
    {
        public int Status { get; } = status;

        public string Parameter { get; } = parameter;
    }

    private async Task ServeAsync(HttpContext ctx, Func<HttpContext, NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task> body)
    {
        if (!_access.Allows(ctx.Request))
        {
            ctx.Response.Headers.WWWAuthenticate = "Bearer";
            await ErrorAsync(ctx, StatusCodes.Status401Unauthorized, "Authorization", "a bearer token is required (Authorization: Bearer <ORDERBOOK_API_TOKEN>)").ConfigureAwait(false);
            return;
        }

        if (!await _gate.WaitAsync(0).ConfigureAwait(false))
        {
            ctx.Response.Headers.RetryAfter = "1";
            await ErrorAsync(ctx, StatusCodes.Status429TooManyRequests, "", $"too many reads at once (at most {_maxConcurrent}); retry shortly").ConfigureAwait(false);
            return;
        }

        var ct = ctx.RequestAborted;
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            // One snapshot for the page and its cursor; read-only, and cut by the server after the timeout.
            await using var tx = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
            await using (var set = new NpgsqlCommand(string.Create(CultureInfo.InvariantCulture, $"SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {_statementTimeoutMs}"), connection, tx))
            {
                await set.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            await body(ctx, connection, tx, ct).ConfigureAwait(false);
        }
        catch (RequestError e)
        {
            await ErrorAsync(ctx, e.Status, e.Parameter, e.Message).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.QueryCanceled && !ct.IsCancellationRequested)
        {
            await UnavailableAsync(ctx, $"the query ran longer than {_statementTimeoutMs} ms and was cancelled; narrow the time range or lower limit").ConfigureAwait(false);
        }
        catch (PostgresException e) when (!ct.IsCancellationRequested)
        {
            // The server answered and refused (a schema not migrated, a permission): not an outage.
            await FailAsync(ctx, StatusCodes.Status500InternalServerError, $"the database refused the query: {e.SqlState} {e.MessageText}").ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
        {
            await UnavailableAsync(ctx, "the database is not answering").ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the client went away
        }
        finally
        {
            _gate.Release();
        }
    }

    private static Task UnavailableAsync(HttpContext ctx, string message)
    {
        if (!ctx.Response.HasStarted)
        {
            ctx.Response.Headers.RetryAfter = "5";
        }

        return FailAsync(ctx, StatusCodes.Status503ServiceUnavailable, message);
    }

    /// <summary>Marks that the body has begun: JSON buffered in the response's pipe is not yet "started" for Kestrel,
    /// but an error written after it would be glued to half a document.</summary>
    private static void BeginBody(HttpContext ctx) => ctx.Items[BodyBegun] = true;

    private static readonly object BodyBegun = new();

    private static async Task FailAsync(HttpContext ctx, int status, string message)
    {
        if (ctx.Response.HasStarted || ctx.Items.ContainsKey(BodyBegun))
        {
            // Rows were already sent: cut the response so the client cannot take it for a complete page.
            ctx.Abort();
            return;
        }

        await ErrorAsync(ctx, status, "", message).ConfigureAwait(false);
    }

    private static async Task ErrorAsync(HttpContext ctx, int status, string parameter, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(ctx.Response.Body);
        w.WriteStartObject();
        w.WriteString("error", message);
        if (parameter.Length > 0)
        {
            w.WriteString("parameter", parameter);
        }

        w.WriteEndObject();
        await w.FlushAsync(CancellationToken.None).ConfigureAwait(false);
    }

    [GeneratedRegex("^[A-Za-z0-9]{1,32}$")]
    private static partial Regex SymbolFormat();

    private static async Task<int> SymbolIdAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string? symbol, CancellationToken ct)
    {
        if (symbol is null || !SymbolFormat().IsMatch(symbol))
        {
            throw new RequestError(StatusCodes.Status400BadRequest, "symbol", "symbol: 1 to 32 letters and digits, e.g. BTCUSDT");
        }

        await using var cmd = new NpgsqlCommand("SELECT id FROM marketdata.symbols WHERE symbol = $1 ORDER BY id LIMIT 1", connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = symbol.ToUpperInvariant() });
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is int id
            ? id
            : throw new RequestError(StatusCodes.Status404NotFound, "symbol", $"symbol: {symbol.ToUpperInvariant()} is not recorded here (GET /symbols lists what is)");
    }

    private static string? Query(HttpContext ctx, string name) => ctx.Request.Query.TryGetValue(name, out var v) ? v.ToString() : null;

    /// <summary>from/to as ISO 8601 (UTC when no offset), or start_time/end_time as Unix seconds, as the seed had them.</summary>
    private static DateTime? Time(HttpContext ctx, string iso, string unix)
    {
        var isoText = Query(ctx, iso);
        var unixText = Query(ctx, unix);
        if (isoText is not null && unixText is not null)
        {
            throw new RequestError(StatusCodes.Status400BadRequest, iso, $"{iso} and {unix} say the same thing; give one");
        }

        if (isoText is not null)
        {
            return DateTimeOffset.TryParse(isoText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
                ? t.UtcDateTime
                : throw new RequestError(StatusCodes.Status400BadRequest, iso, $"{iso}: '{isoText}' is not an ISO 8601 time (e.g. 2026-12-01T14:00:00Z)");
        }

        if (unixText is not null)
        {
            return decimal.TryParse(unixText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var s) && s < 253_402_300_800m
                ? DateTime.UnixEpoch.AddTicks((long)(s * TimeSpan.TicksPerSecond))
                : throw new RequestError(StatusCodes.Status400BadRequest, unix, $"{unix}: '{unixText}' is not Unix seconds (e.g. 1764597600)");
        }

        return null;
    }

    private static async Task DataAsync(HttpContext ctx, NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        var typeText = Query(ctx, "type") ?? "book_ticker";
        if (!ReadQueries.Types.TryGetValue(typeText, out var spec))
        {
            throw new RequestError(StatusCodes.Status400BadRequest, "type", $"type: one of {string.Join(", ", ReadQueries.Types.Keys)}");
        }

        var limitText = Query(ctx, "limit");
        var limit = DefaultLimit;
        if (limitText is not null && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            throw new RequestError(StatusCodes.Status400BadRequest, "limit", $"limit: a whole number from 1 to {MaxLimit}");
        }

        var format = Query(ctx, "format");
        var csv = format is null ? ctx.Request.Headers.Accept.ToString().Contains("text/csv", StringComparison.OrdinalIgnoreCase) : format == "csv";
        if (format is not null and not "csv" and not "json")
        {
            throw new RequestError(StatusCodes.Status400BadRequest, "format", "format: json or csv");
        }

        var from = Time(ctx, "from", "start_time");
        var to = Time(ctx, "to", "end_time");
        if (from is not null && to is not null && to <= from)
        {
            throw new RequestError(StatusCodes.Status400BadRequest, "to", "to: must be after from");
        }

        (DateTime, long)? after = null;
        if (Query(ctx, "cursor") is { } cursorText)
        {
            after = ReadQueries.TryDecodeCursor(cursorText, out var c) ? c : throw new RequestError(StatusCodes.Status400BadRequest, "cursor", "cursor: not one this API gave out (copy it from 'next')");
        }

        var symbolId = await SymbolIdAsync(connection, tx, ctx.Request.RouteValues["symbol"] as string, ct).ConfigureAwait(false);

        // The cursor for the next page: the key of this page's last row, if a row follows it (same snapshot).
        string? next = null;
        var (keySql, keyParameters) = ReadQueries.Page(spec, symbolId, from, to, after, ReadQueries.KeySelect(spec), 2, limit - 1);
        await using (var keys = Command(keySql, keyParameters, connection, tx))
        await using (var reader = await keys.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            if (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var last = (reader.GetFieldValue<DateTime>(0), reader.GetInt64(1));
                if (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    next = ReadQueries.EncodeCursor(last.Item1, last.Item2);
                }
            }
        }

        var (sql, parameters) = ReadQueries.Page(spec, symbolId, from, to, after, spec.Columns, limit);
        await using var cmd = Command(sql, parameters, connection, tx);
        await using var rows = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct).ConfigureAwait(false);
        if (csv)
        {
            await WriteCsvAsync(ctx, rows, next, ct).ConfigureAwait(false);
            return;
        }

        ctx.Response.ContentType = "application/json";
        if (next is not null)
        {
            ctx.Response.Headers["X-Next-Cursor"] = next;
        }

        BeginBody(ctx);
        await using var w = new Utf8JsonWriter(ctx.Response.BodyWriter);
        w.WriteStartObject();
        w.WriteString("symbol", ctx.Request.RouteValues["symbol"] is string s ? s.ToUpperInvariant() : null);
        w.WriteString("type", spec.Type);
        w.WriteString("next", next);
        w.WriteStartArray("rows");
        var count = await WriteRowsAsync(ctx, w, rows, ct).ConfigureAwait(false);
        w.WriteEndArray();
        w.WriteNumber("count", count);
        w.WriteEndObject();
        await w.FlushAsync(ct).ConfigureAwait(false);
    }

    private static NpgsqlCommand Command(string sql, List<object> parameters, NpgsqlConnection connection, NpgsqlTransaction tx)
    {
        var cmd = new NpgsqlCommand(sql, connection, tx) { CommandTimeout = 0 };
        foreach (var p in parameters)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        return cmd;
    }

    private static async Task<long> WriteRowsAsync(HttpContext ctx, Utf8JsonWriter w, NpgsqlDataReader rows, CancellationToken ct)
    {
        long count = 0;
        while (await rows.ReadAsync(ct).ConfigureAwait(false))
        {
            ReadQueries.WriteJsonRow(w, rows);
            if (++count % FlushEvery == 0)
            {
                await w.FlushAsync(ct).ConfigureAwait(false);
                await ctx.Response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
            }
        }

        return count;
    }

    private static async Task WriteCsvAsync(HttpContext ctx, NpgsqlDataReader rows, string? next, CancellationToken ct)
    {
        ctx.Response.ContentType = "text/csv; charset=utf-8";
        if (next is not null)
        {
            ctx.Response.Headers["X-Next-Cursor"] = next;
        }

        BeginBody(ctx);
        var line = new StringBuilder(ReadQueries.CsvHeader(rows)).Append('\n');
        var count = 0;
        while (await rows.ReadAsync(ct).ConfigureAwait(false))
        {
            ReadQueries.AppendCsvRow(line, rows);
            if (++count % FlushEvery == 0)
            {
                await ctx.Response.WriteAsync(line.ToString(), ct).ConfigureAwait(false);
                line.Clear();
            }
        }

        await ctx.Response.WriteAsync(line.ToString(), ct).ConfigureAwait(false);
    }

    /// <summary>Every registered symbol with its id, active flag, and first and last event time in each event table
    /// (one index lookup per symbol and table, sent as one batch per table).</summary>
    private static async Task SymbolsAsync(HttpContext ctx, NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        var symbols = new List<(int Id, string Symbol, bool Active, DateTime FirstSeen)>();
        await using (var cmd = new NpgsqlCommand("SELECT id, symbol, is_active, first_seen FROM marketdata.symbols ORDER BY symbol, id", connection, tx))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                symbols.Add((r.GetInt32(0), r.GetString(1), r.GetBoolean(2), r.GetFieldValue<DateTime>(3)));
            }
        }

        var spans = new Dictionary<(string Table, int Id), (DateTime? First, DateTime? Last)>();
        foreach (var table in Tables)
        {
            if (symbols.Count == 0)
            {
                break;
            }

            await using var batch = new NpgsqlBatch(connection, tx);
            foreach (var s in symbols)
            {
                var c = new NpgsqlBatchCommand($"SELECT min(ts_exchange), max(ts_exchange) FROM marketdata.{table} WHERE symbol_id = $1");
                c.Parameters.Add(new NpgsqlParameter { Value = s.Id });
                batch.BatchCommands.Add(c);
            }

            await using var r = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
            foreach (var s in symbols)
            {
                await r.ReadAsync(ct).ConfigureAwait(false);
                spans[(table, s.Id)] = (r.IsDBNull(0) ? null : r.GetFieldValue<DateTime>(0), r.IsDBNull(1) ? null : r.GetFieldValue<DateTime>(1));
                await r.NextResultAsync(ct).ConfigureAwait(false);
            }
        }

        ctx.Response.ContentType = "application/json";
        BeginBody(ctx);
        await using var w = new Utf8JsonWriter(ctx.Response.BodyWriter);
        w.WriteStartObject();
        w.WriteStartArray("symbols");
        foreach (var s in symbols)
        {
            w.WriteStartObject();
            w.WriteNumber("id", s.Id);
            w.WriteString("symbol", s.Symbol);
            w.WriteBoolean("active", s.Active);
            w.WriteString("first_seen", ReadQueries.Timestamp(s.FirstSeen));
            w.WriteStartObject("tables");
            foreach (var table in Tables)
            {
                var (first, last) = spans.GetValueOrDefault((table, s.Id));
                w.WriteStartObject(table);
                w.WriteString("first", first is { } f ? ReadQueries.Timestamp(f) : null);
                w.WriteString("last", last is { } l ? ReadQueries.Timestamp(l) : null);
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
        await w.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>marketdata.ingestion_stats (per symbol, last hour) and marketdata.feed_gap_summary, as JSON.</summary>
    private static async Task StatsAsync(HttpContext ctx, NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        ctx.Response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(ctx.Response.BodyWriter);
        foreach (var (name, sql) in new[]
        {
            ("symbols", "SELECT * FROM marketdata.ingestion_stats ORDER BY symbol"),
            ("gaps", "SELECT * FROM marketdata.feed_gap_summary ORDER BY symbol, stream, reason"),
        })
        {
            // Each query runs before its part is written, so a refused first query still gets a clean error.
            await using var cmd = new NpgsqlCommand(sql, connection, tx);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (name == "symbols")
            {
                BeginBody(ctx);
                w.WriteStartObject();
            }

            w.WriteStartArray(name);
            await WriteRowsAsync(ctx, w, r, ct).ConfigureAwait(false);
            w.WriteEndArray();
        }

        w.WriteEndObject();
        await w.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// marketdata.book_at as JSON: the book of a symbol at an instant (<c>at</c>, ISO 8601, or <c>time</c>, Unix seconds),
    /// <c>levels</c> per side (20 by default, at most 5000), bids and asks as [price, qty] best first. An instant the book
    /// cannot be rebuilt for (before the first snapshot, inside a hole of the depth stream) is 422 with the same fields,
    /// its status and detail, and no levels: never a silently wrong book.
    /// </summary>
    private static async Task BookAsync(HttpContext ctx, NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        var symbol = (string?)ctx.Request.RouteValues["symbol"];
        await SymbolIdAsync(connection, tx, symbol, ct).ConfigureAwait(false);
        var at = Time(ctx, "at", "time")
            ?? throw new RequestError(StatusCodes.Status400BadRequest, "at", "at: the instant, ISO 8601 (e.g. 2026-12-01T14:03:07.250Z), or time in Unix seconds");
        var levelsText = Query(ctx, "levels");
        var levels = 20;
        if (levelsText is not null && (!int.TryParse(levelsText, NumberStyles.None, CultureInfo.InvariantCulture, out levels) || levels is < 1 or > 5000))
        {
            throw new RequestError(StatusCodes.Status400BadRequest, "levels", "levels: 1 to 5000 per side");
        }

        await using var cmd = new NpgsqlCommand("""
            SELECT b.symbol, b.at, b.status, b.detail, b.as_of, b.last_update_id, b.snapshot_at, b.snapshot_source, b.diffs_applied,
                   CASE WHEN b.bid_prices IS NOT NULL THEN coalesce((SELECT json_agg(json_build_array(l.p, l.q) ORDER BY l.o)
                                                                     FROM unnest(b.bid_prices, b.bid_qtys) WITH ORDINALITY AS l(p, q, o)), '[]')::text END,
                   CASE WHEN b.ask_prices IS NOT NULL THEN coalesce((SELECT json_agg(json_build_array(l.p, l.q) ORDER BY l.o)
                                                                     FROM unnest(b.ask_prices, b.ask_qtys) WITH ORDINALITY AS l(p, q, o)), '[]')::text END
            FROM marketdata.book_at($1, $2, $3) b
            """, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = symbol!.ToUpperInvariant() });
        cmd.Parameters.Add(new NpgsqlParameter { Value = at });
        cmd.Parameters.Add(new NpgsqlParameter { Value = levels });
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        var status = r.GetString(2);
        ctx.Response.StatusCode = status == "ok" ? StatusCodes.Status200OK : StatusCodes.Status422UnprocessableEntity;
        ctx.Response.ContentType = "application/json";
        BeginBody(ctx);
        await using var w = new Utf8JsonWriter(ctx.Response.BodyWriter);
        w.WriteStartObject();
        w.WriteString("symbol", r.GetString(0));
        w.WriteString("at", r.GetDateTime(1));
        w.WriteString("status", status);
        WriteNullable(w, "detail", r, 3, () => w.WriteString("detail", r.GetString(3)));
        WriteNullable(w, "as_of", r, 4, () => w.WriteString("as_of", r.GetDateTime(4)));
        WriteNullable(w, "last_update_id", r, 5, () => w.WriteNumber("last_update_id", r.GetInt64(5)));
        WriteNullable(w, "snapshot_at", r, 6, () => w.WriteString("snapshot_at", r.GetDateTime(6)));
        WriteNullable(w, "snapshot_source", r, 7, () => w.WriteString("snapshot_source", r.GetString(7)));
        WriteNullable(w, "diffs_applied", r, 8, () => w.WriteNumber("diffs_applied", r.GetInt32(8)));
        // The levels as the server renders them (float8 in JSON is its shortest exact form).
        WriteNullable(w, "bids", r, 9, () => { w.WritePropertyName("bids"); w.WriteRawValue(r.GetString(9)); });
        WriteNullable(w, "asks", r, 10, () => { w.WritePropertyName("asks"); w.WriteRawValue(r.GetString(10)); });
        w.WriteEndObject();
        await w.FlushAsync(ct).ConfigureAwait(false);
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, NpgsqlDataReader r, int ordinal, Action write)
    {
        if (r.IsDBNull(ordinal))
        {
            w.WriteNull(name);
        }
        else
        {
            write();
        }
    }
}
