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
        _gate.Observe(response);
        if (response.StatusCode is HttpStatusCode.TooManyRequests or (HttpStatusCode)418)
        {
            throw new HttpRequestException($"aggTrades: HTTP {(int)response.StatusCode}, backing off", null, response.StatusCode);
        }

        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return ParseAggTrades(body, symbolId, fetchedUs);
    }

    public const int OpenInterestWeight = 1;

    /// <summary>GET /fapi/v1/openInterest: the symbol's open interest now, stamped with the exchange's time.</summary>
    public async Task<OpenInterestRow> GetOpenInterestAsync(string symbol, int symbolId, long fetchedUs, CancellationToken ct)
    {
        using var slot = await _gate.AcquireAsync(OpenInterestWeight, ct).ConfigureAwait(false);
        using var response = await _http.GetAsync(new Uri(_base, $"fapi/v1/openInterest?symbol={symbol}"), ct).ConfigureAwait(false);
        _gate.Observe(response);
        if (response.StatusCode is HttpStatusCode.TooManyRequests or (HttpStatusCode)418)
        {
            throw new HttpRequestException($"openInterest: HTTP {(int)response.StatusCode}, backing off", null, response.StatusCode);
        }

        response.EnsureSuccessStatusCode();
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
        _gate.Observe(response);
        if (response.StatusCode is HttpStatusCode.TooManyRequests or (HttpStatusCode)418)
        {
            throw new HttpRequestException($"depth: HTTP {(int)response.StatusCode}, backing off", null, response.StatusCode);
        }

        response.EnsureSuccessStatusCode();
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
