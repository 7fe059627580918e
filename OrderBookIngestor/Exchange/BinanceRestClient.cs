using System.Net;
using System.Text;
using System.Text.Json;

namespace OrderBookIngestor.Exchange;

/// <summary>The REST calls the recorder makes besides exchangeInfo, all through the weight gate.</summary>
public sealed class BinanceRestClient
{
    /// <summary>GET /fapi/v1/aggTrades weighs 20 per request.</summary>
    public const int AggTradesWeight = 20;

    private readonly HttpClient _http;
    private readonly Uri _base;
    private readonly RestWeightGate _gate;

    public BinanceRestClient(HttpClient http, string restUrl, RestWeightGate gate)
    {
        _http = http;
        _base = new Uri(restUrl.TrimEnd('/') + "/");
        _gate = gate;
    }

    public RestWeightGate Gate => _gate;

    /// <summary>Up to <paramref name="limit"/> aggregate trades with id ≥ <paramref name="fromId"/>, oldest first.</summary>
    public async Task<IReadOnlyList<TradeEvent>> GetAggTradesAsync(string symbol, int symbolId, long fromId, int limit, long fetchedUs, CancellationToken ct)
    {
        using var slot = await _gate.AcquireAsync(AggTradesWeight, ct).ConfigureAwait(false);
        using var response = await _http.GetAsync(new Uri(_base, $"fapi/v1/aggTrades?symbol={symbol}&fromId={fromId}&limit={limit}"), ct).ConfigureAwait(false);
        ThrowUnlessOk(response, "aggTrades");
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return ParseAggTrades(body, symbolId, fetchedUs);
    }

    public const int OpenInterestWeight = 1;

    /// <summary>GET /fapi/v1/openInterest: the symbol's open interest now, stamped with the exchange's time.</summary>
    public async Task<OpenInterestRow> GetOpenInterestAsync(string symbol, int symbolId, long fetchedUs, CancellationToken ct)
    {
        using var slot = await _gate.AcquireAsync(OpenInterestWeight, ct).ConfigureAwait(false);
        using var response = await _http.GetAsync(new Uri(_base, $"fapi/v1/openInterest?symbol={symbol}"), ct).ConfigureAwait(false);
        ThrowUnlessOk(response, "openInterest");
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return ParseOpenInterest(body, symbolId, fetchedUs);
    }

    /// <summary>{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}; unknown fields ignored.</summary>
    public static OpenInterestRow ParseOpenInterest(ReadOnlySpan<byte> body, int symbolId, long fetchedUs)
    {
        var reader = new Utf8JsonReader(body);
        double? value = null;
        long? time = null;
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("openInterest: not an object");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("openInterest"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || FrameParser.Decimal(reader.ValueSpan, false, out var v) != RejectReason.None)
                {
                    throw new JsonException("openInterest: \"openInterest\" is not a non-negative decimal string");
                }

                value = v;
            }
            else if (reader.ValueTextEquals("time"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var t) || t <= 0)
                {
                    throw new JsonException("openInterest: \"time\" is not a positive integer");
                }

                time = t;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return value is { } oi && time is { } ms
            ? new OpenInterestRow(symbolId, ms, fetchedUs, oi)
            : throw new JsonException("openInterest: \"openInterest\" or \"time\" missing");
    }

    /// <summary>GET /fapi/v1/markPriceKlines weight by limit, as Binance documents it.</summary>
    public static int KlinesWeight(int limit) => limit switch
    {
        < 100 => 1,
        < 500 => 2,
        <= 1000 => 5,
        _ => 10,
    };

    /// <summary>
    /// GET /fapi/v1/markPriceKlines, 1-minute bars with a close time in [fromMs, toMs], oldest first, at most
    /// <paramref name="limit"/>: each bar's close as a backfilled mark price at its close time.
    /// </summary>
    public async Task<IReadOnlyList<MarkPriceEvent>> GetMarkPriceBarsAsync(string symbol, int symbolId, long fromMs, long toMs, int limit, long fetchedUs, CancellationToken ct)
    {
        using var slot = await _gate.AcquireAsync(KlinesWeight(limit), ct).ConfigureAwait(false);
        // startTime is the bar's open time: the first bar closing at or after fromMs opened 59,999 ms before.
        using var response = await _http.GetAsync(new Uri(_base,
            $"fapi/v1/markPriceKlines?symbol={symbol}&interval=1m&startTime={fromMs - 59_999}&endTime={toMs}&limit={limit}"), ct).ConfigureAwait(false);
        ThrowUnlessOk(response, "markPriceKlines");
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return [.. ParseMarkPriceBars(body, symbolId, fetchedUs).Where(b => b.EventTimeMs >= fromMs && b.EventTimeMs <= toMs)];
    }

    /// <summary>GET /fapi/v1/fundingRate: the funding rates settled in [fromMs, toMs], as (funding time, rate).</summary>
    public async Task<IReadOnlyList<(long TimeMs, double Rate)>> GetFundingRatesAsync(string symbol, long fromMs, long toMs, CancellationToken ct)
    {
        using var slot = await _gate.AcquireAsync(1, ct).ConfigureAwait(false);
        using var response = await _http.GetAsync(new Uri(_base, $"fapi/v1/fundingRate?symbol={symbol}&startTime={fromMs}&endTime={toMs}&limit=1000"), ct).ConfigureAwait(false);
        ThrowUnlessOk(response, "fundingRate");
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return ParseFundingRates(body);
    }

    /// <summary>Tells the weight gate what the response said; a 429/418 or any other failure throws.</summary>
    private void ThrowUnlessOk(HttpResponseMessage response, string what)
    {
        _gate.Observe(response);
        if (response.StatusCode is HttpStatusCode.TooManyRequests or (HttpStatusCode)418)
        {
            throw new HttpRequestException($"{what}: HTTP {(int)response.StatusCode}, backing off", null, response.StatusCode);
        }

        response.EnsureSuccessStatusCode();
    }

    /// <summary>[[openTime,"open","high","low","close","ignore",closeTime,...], ...] → one backfilled row per bar.</summary>
    public static IReadOnlyList<MarkPriceEvent> ParseMarkPriceBars(ReadOnlySpan<byte> body, int symbolId, long fetchedUs)
    {
        var reader = new Utf8JsonReader(body);
        var bars = new List<MarkPriceEvent>();
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("markPriceKlines: not an array");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.StartArray)
        {
            double close = 0;
            long closeTime = 0;
            var index = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (index == 4 && (reader.TokenType != JsonTokenType.String || FrameParser.Decimal(reader.ValueSpan, true, out close) != RejectReason.None))
                {
                    throw new JsonException("markPriceKlines: a bar's close is not a positive decimal string");
                }

                if (index == 6 && (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out closeTime) || closeTime <= 0))
                {
                    throw new JsonException("markPriceKlines: a bar's close time is not a positive integer");
                }

                reader.Skip();
                index++;
            }

            if (index < 7)
            {
                throw new JsonException("markPriceKlines: a bar has fewer than 7 fields");
            }

            bars.Add(new MarkPriceEvent(symbolId, closeTime, fetchedUs, close, double.NaN, double.NaN, double.NaN, 0, IsBackfilled: true));
        }

        return bars;
    }

    /// <summary>[{"symbol":"BTCUSDT","fundingRate":"-0.00030000","fundingTime":1570608000000,"markPrice":"..."}, ...]</summary>
    public static IReadOnlyList<(long TimeMs, double Rate)> ParseFundingRates(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body);
        var rates = new List<(long, double)>();
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("fundingRate: not an array");
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            long? time = null;
            double? rate = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("fundingRate"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String || FrameParser.SignedDecimal(reader.ValueSpan, out var r) != RejectReason.None || double.IsNaN(r))
                    {
                        throw new JsonException("fundingRate: \"fundingRate\" is not a decimal string");
                    }

                    rate = r;
                }
                else if (reader.ValueTextEquals("fundingTime"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var t) || t <= 0)
                    {
                        throw new JsonException("fundingRate: \"fundingTime\" is not a positive integer");
                    }

                    time = t;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            rates.Add(time is { } tm && rate is { } rt ? (tm, rt) : throw new JsonException("fundingRate: an entry without fundingRate or fundingTime"));
        }

        return rates;
    }

    /// <summary>GET /fapi/v1/depth weight by limit, as Binance documents it.</summary>
    public static int DepthWeight(int limit) => limit switch
    {
        <= 50 => 2,
        <= 100 => 5,
        <= 500 => 10,
        _ => 20,
    };

    /// <summary>A depth snapshot: levels interleaved (price, qty), best first.</summary>
    public sealed record DepthSnapshot(long LastUpdateId, long EventTimeMs, double[] Bids, double[] Asks);

    public async Task<DepthSnapshot> GetDepthAsync(string symbol, int limit, CancellationToken ct)
    {
        using var slot = await _gate.AcquireAsync(DepthWeight(limit), ct).ConfigureAwait(false);
        using var response = await _http.GetAsync(new Uri(_base, $"fapi/v1/depth?symbol={symbol}&limit={limit}"), ct).ConfigureAwait(false);
        ThrowUnlessOk(response, "depth");
        return ParseDepth(await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false));
    }

    /// <summary>{"lastUpdateId":N,"E":..,"T":..,"bids":[["p","q"],...],"asks":[...]}.</summary>
    public static DepthSnapshot ParseDepth(ReadOnlySpan<byte> body)
    {
        using var doc = JsonDocument.Parse(body.ToArray());
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("depth: expected an object.");
        }

        var time = root.TryGetProperty("E", out var e) && e.ValueKind == JsonValueKind.Number ? e.GetInt64() : 0;
        return new DepthSnapshot(Long(root, "lastUpdateId"), time, Levels(root, "bids"), Levels(root, "asks"));
    }

    private static double[] Levels(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var side) || side.ValueKind != JsonValueKind.Array)
        {
            throw new JsonException($"depth: missing {name}.");
        }

        var levels = new double[side.GetArrayLength() * 2];
        var i = 0;
        foreach (var level in side.EnumerateArray())
        {
            if (level.ValueKind != JsonValueKind.Array || level.GetArrayLength() < 2
                || level[0].ValueKind != JsonValueKind.String || level[1].ValueKind != JsonValueKind.String
                || FrameParser.Decimal(Encoding.ASCII.GetBytes(level[0].GetString()!), true, out levels[i]) != RejectReason.None
                || FrameParser.Decimal(Encoding.ASCII.GetBytes(level[1].GetString()!), false, out levels[i + 1]) != RejectReason.None)
            {
                throw new JsonException($"depth: bad level in {name}.");
            }

            i += 2;
        }

        return levels;
    }

    /// <summary>[{"a":..,"p":"..","q":"..","f":..,"l":..,"T":..,"m":..}, ...]. A malformed entry fails the whole response.</summary>
    public static IReadOnlyList<TradeEvent> ParseAggTrades(ReadOnlySpan<byte> body, int symbolId, long fetchedUs)
    {
        using var doc = JsonDocument.Parse(body.ToArray());
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
        {
            throw new JsonException("aggTrades: expected an array.");
        }

        var trades = new List<TradeEvent>(doc.RootElement.GetArrayLength());
        foreach (var t in doc.RootElement.EnumerateArray())
        {
            var price = Number(t, "p", strictlyPositive: true);
            var qty = Number(t, "q", strictlyPositive: false);
            var time = Long(t, "T");
            trades.Add(new TradeEvent(symbolId, Long(t, "a"), time, time, fetchedUs, price, qty, Long(t, "f"), Long(t, "l"),
                t.TryGetProperty("m", out var m) && m.ValueKind is JsonValueKind.True or JsonValueKind.False
                    ? m.GetBoolean() : throw new JsonException("aggTrades: missing m."),
                IsBackfilled: true));
        }

        return trades;
    }

    private static long Long(JsonElement e, string name)
        => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= 0
            ? n : throw new JsonException($"bad or missing {name}.");

    private static double Number(JsonElement e, string name, bool strictlyPositive)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.String
            || FrameParser.Decimal(Encoding.ASCII.GetBytes(v.GetString()!), strictlyPositive, out var d) != RejectReason.None)
        {
            throw new JsonException($"aggTrades: bad or missing {name}.");
        }

        return d;
    }
}
