using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Pipeline;

/// <summary>
/// Fills aggTrade id holes from GET /fapi/v1/aggTrades, paced by the weight gate. Recovered trades are
/// stored like live ones, marked is_backfilled. What REST cannot give (error after retries, not there,
/// or beyond MaxBackfillTrades) is written to the gap ledger, never silently dropped.
/// </summary>
public sealed class TradeBackfiller
{
    private const int PageSize = 1000;
    private const int MaxAttempts = 5;

    private readonly Channel<BackfillRequest> _requests = Channel.CreateUnbounded<BackfillRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly BinanceRestClient _rest;
    private readonly StreamStates _states;
    private readonly EventBuffers _buffers;
    private readonly GapLedger _gaps;
    private readonly IngestorMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly int _maxTrades;

    public TradeBackfiller(BinanceRestClient rest, StreamStates states, EventBuffers buffers, GapLedger gaps, IngestorMetrics metrics,
        TimeProvider time, ILogger log, int maxTradesPerGap)
    {
        _rest = rest;
        _states = states;
        _buffers = buffers;
        _gaps = gaps;
        _metrics = metrics;
        _time = time;
        _log = log;
        _maxTrades = maxTradesPerGap;
    }

    public ChannelWriter<BackfillRequest> Requests => _requests.Writer;

    /// <summary>Runs until <paramref name="stop"/>; then every hole still open is written to the ledger, the one being
    /// filled when the stop came (in a REST call or a retry wait) included.</summary>
    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
    {
        BackfillRequest? current = null;
        try
        {
            await foreach (var request in _requests.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                current = request;
                await FillAsync(request, stop, abort).ConfigureAwait(false);
                current = null;
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down: fall through and document what is still open
        }

        if (current is not null)
        {
            // The ids below the last stored one: the next start cannot find them, so they are written down now.
            Abandon(current, "daemon stopped during backfill");
        }

        _requests.Writer.TryComplete();
        while (_requests.Reader.TryRead(out var pending))
        {
            Abandon(pending, "daemon stopped before backfill");
        }
    }

    private async Task FillAsync(BackfillRequest request, CancellationToken stop, CancellationToken abort)
    {
        var sequence = _states.Trades(request.SymbolId);
        var next = request.From;
        var fetched = 0L;
        var failures = 0;
        var reason = "";
        Log.BackfillStarted(_log, request.Symbol, request.From, request.To);
        while (next <= request.To)
        {
            if (fetched >= _maxTrades)
            {
                reason = $"more than MaxBackfillTrades ({_maxTrades}) missing";
                break;
            }

            IReadOnlyList<TradeEvent> page;
            try
            {
                var nowUs = (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
                page = await _rest.GetAggTradesAsync(request.Symbol, request.SymbolId, next, PageSize, nowUs, stop).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException
                                           || (ex is TaskCanceledException && !stop.IsCancellationRequested))
            {
                if (++failures >= MaxAttempts)
                {
                    reason = $"REST failed {failures} times: {ex.Message}";
                    break;
                }

                // Short: on 429/418 the weight gate itself holds the next request until Retry-After has passed.
                await Task.Delay(TimeSpan.FromMilliseconds(250 * Math.Pow(2, failures)), _time, stop).ConfigureAwait(false);
                continue;
            }

            if (page.Count == 0 || page[0].AggTradeId > request.To)
            {
                reason = "exchange returned no trades for these ids";
                break;
            }

            foreach (var trade in page)
            {
                if (trade.AggTradeId > request.To)
                {
                    break;
                }

                if (sequence.OfferBackfilled(trade.AggTradeId))
                {
                    await _buffers.Trades.Writer.WriteAsync(trade, abort).ConfigureAwait(false);
                    _metrics.Backfilled();
                }
            }

            fetched += page.Count;
            next = page[^1].AggTradeId + 1;
        }

        var left = sequence.StillMissing(request.From, request.To);
        foreach (var (from, to) in left)
        {
            _gaps.Record(request.ToGap(sequence.Stream, reason.Length > 0 ? reason : "ids not in the REST response", from, to));
            sequence.Abandon(from, to);
        }

        Log.BackfillFinished(_log, request.Symbol, request.From, request.To, left.Sum(r => r.To - r.From + 1));
    }

    private void Abandon(BackfillRequest request, string reason)
    {
        var sequence = _states.Trades(request.SymbolId);
        foreach (var (from, to) in sequence.StillMissing(request.From, request.To))
        {
            _gaps.Record(request.ToGap(sequence.Stream, reason, from, to));
            sequence.Abandon(from, to);
        }
    }
}
