using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Pipeline;

/// <summary>
/// Polls GET /fapi/v1/openInterest (weight 1) for every recorded symbol once per interval, spread evenly over it, through
/// the same request-weight gate as snapshots and backfill. Those keep priority: a poll that would take the minute's used
/// weight above <see cref="ShareOfBudget"/> of the budget, or that comes while the exchange has banned us, is skipped;
/// a skipped or failed poll is a feed_gaps row (poll_missed) for its interval, never a silent hole.
/// </summary>
public sealed class OpenInterestPoller
{
    /// <summary>Polls may use at most this share of the minute's weight budget; the rest is kept for books and trades.</summary>
    public const double ShareOfBudget = 0.5;

    private readonly BinanceRestClient _rest;
    private readonly Func<IReadOnlyList<(int Id, string Symbol)>> _symbols;
    private readonly EventBuffers _buffers;
    private readonly GapLedger _gaps;
    private readonly IngestorMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly TimeSpan _interval;
    private readonly int _budgetPerMinute;
    private readonly LogLimiter _failureLog;
    private readonly Dictionary<int, long> _lastTimeMs = [];

    public OpenInterestPoller(BinanceRestClient rest, Func<IReadOnlyList<(int Id, string Symbol)>> symbols, EventBuffers buffers, GapLedger gaps,
        IngestorMetrics metrics, TimeProvider time, ILogger log, TimeSpan interval, int budgetPerMinute)
    {
        _rest = rest;
        _symbols = symbols;
        _buffers = buffers;
        _gaps = gaps;
        _metrics = metrics;
        _time = time;
        _log = log;
        _interval = interval;
        _budgetPerMinute = budgetPerMinute;
        _failureLog = new LogLimiter(time, TimeSpan.FromMinutes(1));
    }

    /// <summary>The name feed_gaps rows of a symbol's polls carry.</summary>
    public static string StreamName(string symbol) => symbol.ToLowerInvariant() + "@openInterest";

    /// <param name="stop">Stops polling (shutdown's helper phase).</param>
    /// <param name="abort">The drain deadline: give up handing a row to a full buffer.</param>
    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var roundStart = _time.GetUtcNow().ToUnixTimeMilliseconds();
                var symbols = _symbols();
                var spacing = symbols.Count == 0 ? _interval : _interval / symbols.Count;
                for (var i = 0; i < symbols.Count; i++)
                {
                    // Spread over the interval: 500 symbols at 60 s is one request every 120 ms, not a burst of 500.
                    var due = roundStart + (long)(spacing.TotalMilliseconds * i);
                    var wait = due - _time.GetUtcNow().ToUnixTimeMilliseconds();
                    if (wait > 0)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(wait), _time, stop).ConfigureAwait(false);
                    }

                    await PollAsync(symbols[i].Id, symbols[i].Symbol, due, abort).ConfigureAwait(false);
                }

                var rest = roundStart + (long)_interval.TotalMilliseconds - _time.GetUtcNow().ToUnixTimeMilliseconds();
                if (rest > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(rest), _time, stop).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down
        }
    }

    /// <summary>One poll of one symbol, due at <paramref name="dueMs"/>: a row, or a gap row for the interval it covers.</summary>
    internal async Task PollAsync(int symbolId, string symbol, long dueMs, CancellationToken abort)
    {
        string? missed;
        var gate = _rest.Gate;
        var now = _time.GetUtcNow();
        if (now < gate.BlockedUntil)
        {
            missed = $"skipped: the exchange asked us to back off until {gate.BlockedUntil:O}";
        }
        else if (gate.UsedThisMinute + BinanceRestClient.OpenInterestWeight > _budgetPerMinute * ShareOfBudget)
        {
            missed = $"skipped: {gate.UsedThisMinute} of {_budgetPerMinute} request weight used this minute, kept for snapshots and backfill";
        }
        else
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(abort);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var row = await _rest.GetOpenInterestAsync(symbol, symbolId, now.ToUnixTimeMilliseconds() * 1000, timeout.Token).ConfigureAwait(false);
                _metrics.OnOpenInterestPoll(answered: true);
                // Two answers with the same exchange time are one value: store it once.
                if (_lastTimeMs.GetValueOrDefault(symbolId) < row.ExchangeTimeMs)
                {
                    _lastTimeMs[symbolId] = row.ExchangeTimeMs;
                    if (!_buffers.OpenInterest.Writer.TryWrite(row))
                    {
                        await _buffers.OpenInterest.Writer.WriteAsync(row, abort).ConfigureAwait(false);
                    }
                }

                return;
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException or OperationCanceledException or IOException
                                       && !abort.IsCancellationRequested)
            {
                missed = $"failed: {ex.Message}";
            }
        }

        _metrics.OnOpenInterestPoll(answered: false);
        if (_failureLog.TryEnter(out var suppressed))
        {
            Log.OpenInterestMissed(_log, symbol, missed, suppressed);
        }

        var end = dueMs + (long)_interval.TotalMilliseconds - 1;
        _gaps.Record(new GapRecord(symbolId, StreamName(symbol), dueMs, Math.Max(dueMs, end), null, null, GapReason.PollMissed,
            _time.GetUtcNow().ToUnixTimeMilliseconds(), missed));
    }
}
