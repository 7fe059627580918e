using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Pipeline;

/// <summary>A window without live mark prices (the daemon down, a connection lost) to fill from REST.</summary>
public sealed record MarkPriceBackfillRequest(int SymbolId, string Symbol, long FromMs, long ToMs);

/// <summary>
/// After downtime, stores what REST still has of the window: the 1-minute mark price bars closing in it
/// (GET /fapi/v1/markPriceKlines; each bar's close at its close time) and the funding rates settled in it
/// (GET /fapi/v1/fundingRate; on the first bar closing at or after the settlement), as mark_price rows with
/// is_backfilled. They are coarser than the live stream (a minute, no index or settle price), so the window stays a
/// gap in feed_gaps; this only puts what can be known into it. Paced by the weight gate like every REST call.
/// </summary>
public sealed class MarkPriceBackfiller
{
    /// <summary>Windows shorter than a bar have no bar closing inside for sure: not worth a request.</summary>
    public const long MinWindowMs = 60_000;

    private const int PageBars = 1000;
    private const int MaxAttempts = 4;

    private readonly Channel<MarkPriceBackfillRequest> _requests = Channel.CreateUnbounded<MarkPriceBackfillRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly BinanceRestClient _rest;
    private readonly EventBuffers _buffers;
    private readonly IngestorMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    public MarkPriceBackfiller(BinanceRestClient rest, EventBuffers buffers, IngestorMetrics metrics, TimeProvider time, ILogger log)
    {
        _rest = rest;
        _buffers = buffers;
        _metrics = metrics;
        _time = time;
        _log = log;
    }

    public ChannelWriter<MarkPriceBackfillRequest> Requests => _requests.Writer;

    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
    {
        try
        {
            await foreach (var request in _requests.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                await FillAsync(request, stop, abort).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down: the windows stay what they are, gaps in feed_gaps
        }
    }

    internal async Task FillAsync(MarkPriceBackfillRequest request, CancellationToken stop, CancellationToken abort)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var bars = new List<MarkPriceEvent>();
                var fetchedUs = _time.GetUtcNow().ToUnixTimeMilliseconds() * 1000;
                for (var from = request.FromMs; from <= request.ToMs;)
                {
                    var page = await _rest.GetMarkPriceBarsAsync(request.Symbol, request.SymbolId, from, request.ToMs, PageBars, fetchedUs, stop).ConfigureAwait(false);
                    bars.AddRange(page);
                    if (page.Count < PageBars)
                    {
                        break;
                    }

                    from = page[^1].EventTimeMs + 1;
                }

                var rates = await _rest.GetFundingRatesAsync(request.Symbol, request.FromMs, request.ToMs, stop).ConfigureAwait(false);
                foreach (var bar in WithFunding(bars, rates))
                {
                    if (!_buffers.MarkPrices.Writer.TryWrite(bar))
                    {
                        await _buffers.MarkPrices.Writer.WriteAsync(bar, abort).ConfigureAwait(false);
                    }
                }

                _metrics.OnMarkPricesBackfilled(bars.Count);
                Log.MarkPriceBackfilled(_log, request.Symbol, bars.Count, rates.Count,
                    DateTimeOffset.FromUnixTimeMilliseconds(request.FromMs), DateTimeOffset.FromUnixTimeMilliseconds(request.ToMs));
                return;
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException or IOException
                                       || (ex is OperationCanceledException && !stop.IsCancellationRequested))
            {
                if (attempt >= MaxAttempts)
                {
                    Log.MarkPriceBackfillFailed(_log, request.Symbol, attempt, ex.Message);
                    return;
                }

                await Task.Delay(TimeSpan.FromSeconds(Math.Pow(2, attempt)), _time, stop).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Each settled funding rate goes on the first bar closing at or after its funding time.</summary>
    internal static IEnumerable<MarkPriceEvent> WithFunding(IReadOnlyList<MarkPriceEvent> bars, IReadOnlyList<(long TimeMs, double Rate)> rates)
    {
        var next = 0;
        var ordered = rates.OrderBy(r => r.TimeMs).ToList();
        foreach (var bar in bars)
        {
            var funding = double.NaN;
            while (next < ordered.Count && ordered[next].TimeMs <= bar.EventTimeMs)
            {
                funding = ordered[next++].Rate;
            }

            yield return double.IsNaN(funding) ? bar : bar with { FundingRate = funding };
        }
    }
}
