using System.Text.Json;

namespace OrderBookIngestor.Exchange;

/// <summary>GET /fapi/v1/exchangeInfo: the symbol universe. Not on the hot path, so JsonDocument is fine here.</summary>
public sealed class ExchangeInfoClient
{
    private readonly HttpClient _http;
    private readonly Uri _baseUri;

    public ExchangeInfoClient(HttpClient http, string restUrl)
    {
        _http = http;
        _baseUri = new Uri(restUrl.TrimEnd('/') + "/");
    }

    public async Task<IReadOnlyList<SymbolInfo>> GetSymbolsAsync(CancellationToken ct)
    {
        using var response = await _http.GetAsync(new Uri(_baseUri, "fapi/v1/exchangeInfo"), ct).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var doc = await JsonDocument.ParseAsync(body, cancellationToken: ct).ConfigureAwait(false);
        return Parse(doc.RootElement);
    }

    /// <summary>Entries with a missing or malformed symbol are skipped; unknown fields are ignored.</summary>
    public static IReadOnlyList<SymbolInfo> Parse(JsonElement root)
    {
        var result = new List<SymbolInfo>();
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("symbols", out var symbols) || symbols.ValueKind != JsonValueKind.Array)
        {
            throw new JsonException("exchangeInfo has no \"symbols\" array.");
        }

        foreach (var s in symbols.EnumerateArray())
        {
            var symbol = Text(s, "symbol");
            if (symbol is null || !SymbolNames.IsValid(symbol))
            {
                continue;
            }

            result.Add(new SymbolInfo(symbol, Text(s, "baseAsset") ?? "", Text(s, "quoteAsset") ?? "", Text(s, "status") ?? "", Text(s, "contractType") ?? ""));
        }

        return result;
    }

    private static string? Text(JsonElement e, string name)
        => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
