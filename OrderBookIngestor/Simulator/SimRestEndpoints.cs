using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// The fake exchange's REST side, in the exchange's shapes: ping, time, exchangeInfo, aggTrades and depth with
/// their X-MBX-USED-WEIGHT-1M headers, the armed 429/418 faults with Retry-After, and /sim/ledger.
/// </summary>
internal sealed class SimRestEndpoints
{
    private readonly SimulatorOptions _options;
    private readonly SimulatedMarket _market;
    private readonly SimFaults _faults;
    private readonly SimLedger _ledger;
    private readonly TimeProvider _time;

    public SimRestEndpoints(SimulatorOptions options, SimulatedMarket market, SimFaults faults, SimLedger ledger, TimeProvider time)
    {
        _options = options;
        _market = market;
        _faults = faults;
        _ledger = ledger;
        _time = time;
    }

    public void Map(WebApplication app)
    {
        app.Use(async (ctx, next) =>
        {
            if (ctx.Request.Path.StartsWithSegments("/fapi", StringComparison.Ordinal))
            {
                if (_options.RestDelayMs > 0)
                {
                    await Task.Delay(_options.RestDelayMs, ctx.RequestAborted).ConfigureAwait(false);
                }

                if (!ctx.Request.Path.StartsWithSegments("/fapi/v1/exchangeInfo", StringComparison.Ordinal) && _faults.TakeRestFault() is { } fault)
                {
                    ctx.Response.StatusCode = fault.Status;
                    ctx.Response.Headers.RetryAfter = fault.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                    await JsonAsync(ctx, w => Error(w, -1003, "Way too many requests")).ConfigureAwait(false);
                    return;
                }
            }

            await next(ctx).ConfigureAwait(false);
        });
        app.MapGet("/fapi/v1/ping", ctx => JsonAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteEndObject();
        }));
        app.MapGet("/fapi/v1/time", ctx => JsonAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteNumber("serverTime", NowMs());
            w.WriteEndObject();
        }));
        app.MapGet("/fapi/v1/exchangeInfo", ctx => JsonAsync(ctx, WriteExchangeInfo));
        app.MapGet("/fapi/v1/aggTrades", AggTrades);
        app.MapGet("/fapi/v1/depth", Depth);
        app.MapGet("/fapi/v1/openInterest", OpenInterest);
        app.MapGet("/fapi/v1/markPriceKlines", MarkPriceKlines);
        app.MapGet("/fapi/v1/fundingRate", FundingRate);
        app.MapGet("/sim/ledger", ctx => JsonAsync(ctx, _ledger.WriteJson));
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private void WriteExchangeInfo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("timezone", "UTC");
        w.WriteNumber("serverTime", NowMs());
        w.WriteStartArray("symbols");
        foreach (var s in _market.Symbols)
        {
            w.WriteStartObject();
            w.WriteString("symbol", s.Symbol);
            w.WriteString("pair", s.Symbol);
            w.WriteString("contractType", "PERPETUAL");
            w.WriteString("status", "TRADING");
            w.WriteString("baseAsset", s.BaseAsset);
            w.WriteString("quoteAsset", "USDT");
            w.WriteString("marginAsset", "USDT");
            w.WriteNumber("pricePrecision", s.PriceDecimals);
            w.WriteNumber("quantityPrecision", s.QtyDecimals);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>GET /fapi/v1/depth?symbol=X&amp;limit=L: the book's snapshot, weighted by limit as the exchange does.</summary>
    private Task Depth(HttpContext ctx)
    {
        var book = _market.Book(ctx.Request.Query["symbol"].ToString());
        if (book is null)
        {
            ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
            return JsonAsync(ctx, w => Error(w, -1121, "Invalid symbol."));
        }

        var limit = int.TryParse(ctx.Request.Query["limit"].ToString(), CultureInfo.InvariantCulture, out var l) ? Math.Clamp(l, 5, 1000) : 500;
        ctx.Response.Headers["X-MBX-USED-WEIGHT-1M"] = Exchange.BinanceRestClient.DepthWeight(limit).ToString(CultureInfo.InvariantCulture);
        var now = NowMs();
        return JsonAsync(ctx, w => book.WriteSnapshot(w, limit, now));
    }

    /// <summary>GET /fapi/v1/openInterest?symbol=X: weight 1, the value at this minute of the seeded walk.</summary>
    private Task OpenInterest(HttpContext ctx)
    {
        var symbol = ctx.Request.Query["symbol"].ToString();
        if (_market.Book(symbol) is null)
        {
            ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
            return JsonAsync(ctx, w => Error(w, -1121, "Invalid symbol."));
        }

        ctx.Response.Headers["X-MBX-USED-WEIGHT-1M"] = "1";
        var now = NowMs();
        var value = _market.OpenInterestAt(symbol, now);
        return JsonAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("openInterest", value.ToString("0.000", CultureInfo.InvariantCulture));
            w.WriteString("symbol", symbol);
            w.WriteNumber("time", now);
            w.WriteEndObject();
        });
    }

    /// <summary>GET /fapi/v1/markPriceKlines?symbol=X&amp;interval=1m&amp;startTime&amp;endTime&amp;limit: bars opening in the
    /// window and not after now, oldest first, in the exchange's array shape (only 1m is served).</summary>
    private Task MarkPriceKlines(HttpContext ctx)
    {
        var symbol = ctx.Request.Query["symbol"].ToString();
        if (_market.Book(symbol) is null || ctx.Request.Query["interval"].ToString() != "1m")
        {
            ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
            return JsonAsync(ctx, w => Error(w, -1121, "Invalid symbol or interval."));
        }

        var now = NowMs();
        var limit = int.TryParse(ctx.Request.Query["limit"].ToString(), CultureInfo.InvariantCulture, out var l) ? Math.Clamp(l, 1, 1500) : 500;
        var start = long.TryParse(ctx.Request.Query["startTime"].ToString(), CultureInfo.InvariantCulture, out var st) ? st : now - (limit * 60_000L);
        var end = Math.Min(now, long.TryParse(ctx.Request.Query["endTime"].ToString(), CultureInfo.InvariantCulture, out var en) ? en : now);
        ctx.Response.Headers["X-MBX-USED-WEIGHT-1M"] = Exchange.BinanceRestClient.KlinesWeight(limit).ToString(CultureInfo.InvariantCulture);
        return JsonAsync(ctx, w =>
        {
            w.WriteStartArray();
            var n = 0;
            for (var open = (start + 59_999) / 60_000 * 60_000; open <= end && n < limit; open += 60_000, n++)
            {
                var (o, h, lo, c) = _market.MarkPriceBar(symbol, open);
                w.WriteStartArray();
                w.WriteNumberValue(open);
                foreach (var v in new[] { o, h, lo, c })
                {
                    w.WriteStringValue(v.ToString(CultureInfo.InvariantCulture));
                }

                w.WriteStringValue("0");
                w.WriteNumberValue(open + 59_999);
                w.WriteStringValue("0");
                w.WriteNumberValue(60);
                w.WriteStringValue("0");
                w.WriteStringValue("0");
                w.WriteStringValue("0");
                w.WriteEndArray();
            }

            w.WriteEndArray();
        });
    }

    /// <summary>GET /fapi/v1/fundingRate?symbol=X&amp;startTime&amp;endTime&amp;limit: settlements (every 8 h) in the window.</summary>
    private Task FundingRate(HttpContext ctx)
    {
        var symbol = ctx.Request.Query["symbol"].ToString();
        if (_market.Book(symbol) is null)
        {
            ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
            return JsonAsync(ctx, w => Error(w, -1121, "Invalid symbol."));
        }

        var now = NowMs();
        var start = long.TryParse(ctx.Request.Query["startTime"].ToString(), CultureInfo.InvariantCulture, out var st) ? st : now - (100 * 28_800_000L);
        var end = Math.Min(now, long.TryParse(ctx.Request.Query["endTime"].ToString(), CultureInfo.InvariantCulture, out var en) ? en : now);
        return JsonAsync(ctx, w =>
        {
            w.WriteStartArray();
            for (var t = (start + 28_799_999) / 28_800_000 * 28_800_000; t <= end; t += 28_800_000)
            {
                w.WriteStartObject();
                w.WriteString("symbol", symbol);
                w.WriteString("fundingRate", _market.FundingRateAt(symbol, t).ToString("0.00000000", CultureInfo.InvariantCulture));
                w.WriteNumber("fundingTime", t);
                w.WriteString("markPrice", "");
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    /// <summary>GET /fapi/v1/aggTrades?symbol=X&amp;fromId=N&amp;limit=L, in the exchange's shape.</summary>
    private Task AggTrades(HttpContext ctx)
    {
        var symbol = ctx.Request.Query["symbol"].ToString();
        long? fromId = long.TryParse(ctx.Request.Query["fromId"].ToString(), CultureInfo.InvariantCulture, out var f) ? f : null;
        var limit = int.TryParse(ctx.Request.Query["limit"].ToString(), CultureInfo.InvariantCulture, out var l) ? Math.Clamp(l, 1, 1000) : 500;
        ctx.Response.Headers["X-MBX-USED-WEIGHT-1M"] = "20";
        var trades = _market.AggTrades(symbol, fromId, limit);
        if (_options.RestForgetsWithheld)
        {
            trades = trades.Where(t => !_ledger.IsWithheld(t)).ToList();
        }

        return JsonAsync(ctx, w =>
        {
            w.WriteStartArray();
            foreach (var t in trades)
            {
                // The stream payload's own price and quantity text; REST has no "e", "E" or "s".
                using var doc = JsonDocument.Parse(t.Data);
                w.WriteStartObject();
                w.WriteNumber("a", t.Id);
                w.WriteString("p", doc.RootElement.GetProperty("p").GetString());
                w.WriteString("q", doc.RootElement.GetProperty("q").GetString());
                w.WriteNumber("f", t.FirstId);
                w.WriteNumber("l", t.LastId);
                w.WriteNumber("T", t.TransactionTimeMs);
                w.WriteBoolean("m", t.Maker);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });
    }

    private static void Error(Utf8JsonWriter w, int code, string message)
    {
        w.WriteStartObject();
        w.WriteNumber("code", code);
        w.WriteString("msg", message);
        w.WriteEndObject();
    }

    private static async Task JsonAsync(HttpContext ctx, Action<Utf8JsonWriter> write)
    {
        ctx.Response.ContentType = "application/json";
        await using (var w = new Utf8JsonWriter(ctx.Response.BodyWriter))
        {
            write(w);
        }

        await ctx.Response.BodyWriter.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }
}
