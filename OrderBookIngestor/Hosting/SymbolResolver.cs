using Microsoft.Extensions.Logging;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Resilience;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// Which symbols this daemon records, from --symbols and exchangeInfo: every TRADING USDT perpetual for ALL
/// (retried until the list comes, at start), else the named ones, each checked against the listing; with
/// --instance K/N, this instance's share. Used at start and by every reload.
/// </summary>
internal sealed class SymbolResolver(IngestorOptions options, HttpClient http, TimeProvider time, ILogger log)
{
    private readonly IngestorOptions _options = options;
    private readonly HttpClient _http = http;
    private readonly TimeProvider _time = time;
    private readonly ILogger _log = log;

    /// <summary>The symbols to record: every TRADING USDT perpetual for ALL, else the given names with their assets from exchangeInfo.</summary>
    public async Task<List<SymbolInfo>> ResolveAsync(List<string> requested, bool retryForAll, CancellationToken ct)
    {
        var wantAll = requested.Count == 1 && OptionsValidator.IsAll(requested[0]);
        var client = new ExchangeInfoClient(_http, _options.RestUrl);
        IReadOnlyList<SymbolInfo>? listed = null;
        var backoff = new RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), new Random());
        while (listed is null)
        {
            try
            {
                listed = await client.GetSymbolsAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                if (!wantAll)
                {
                    Log.ExchangeInfoUnavailable(_log, ex.Message);
                    break;
                }

                if (!retryForAll)
                {
                    throw;
                }

                // --symbols ALL cannot start without the list.
                var delay = backoff.Next();
                Log.ExchangeInfoUnavailable(_log, $"{ex.Message}; retrying in {delay.TotalSeconds:F0}s");
                await Task.Delay(delay, _time, ct).ConfigureAwait(false);
            }
        }

        if (wantAll)
        {
            var all = listed!.Where(s => s.IsTradingUsdtPerpetual).ToList();
            return all.Count > 0 ? OwnShare(all) : throw new ConfigurationException("Symbols: ALL, but exchangeInfo lists no TRADING USDT perpetuals.");
        }

        var byName = (listed ?? []).ToDictionary(s => s.Symbol, StringComparer.Ordinal);
        var chosen = requested.Select(s => s.ToUpperInvariant()).Distinct(StringComparer.Ordinal).Select(s =>
            byName.TryGetValue(s, out var info) ? info : FromName(s)).ToList();
        var unlisted = listed is null ? [] : chosen.Where(s => !byName.TryGetValue(s.Symbol, out var i) || !i.IsTradingUsdtPerpetual).Select(s => s.Symbol).ToList();
        if (unlisted.Count > 0)
        {
            // Subscribing them would record nothing (or another market), and register them as active symbols.
            throw new ConfigurationException(
                $"Symbols: not TRADING USDT-margined perpetuals on the exchange: {string.Join(",", unlisted)} (check the spelling, or whether they were delisted).");
        }

        return OwnShare(chosen);
    }

    /// <summary>With --instance K/N, the symbols of this instance; the others record the rest.</summary>
    private List<SymbolInfo> OwnShare(List<SymbolInfo> symbols)
    {
        var split = InstanceSplit.Parse(_options.Instance);
        if (split.IsAll)
        {
            return symbols;
        }

        var own = symbols.Where(s => split.Owns(s.Symbol)).ToList();
        Log.InstanceShare(_log, split.ToString(), own.Count, symbols.Count);
        return own.Count > 0 ? own
            : throw new ConfigurationException($"Instance {split}: none of the {symbols.Count} symbols falls to this instance; give more symbols or fewer instances.");
    }

    private static SymbolInfo FromName(string symbol)
    {
        var (b, q) = SymbolNames.GuessAssets(symbol);
        return new SymbolInfo(symbol, b, q, "UNKNOWN", "UNKNOWN");
    }
}
