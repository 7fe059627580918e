using System.Threading.Channels;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Pipeline;

/// <summary>
/// Between the parser and the table buffers: drops duplicates (replays, reconnect and rotation overlap),
/// notices holes (aggTrade ids, interrupted streams) and hands them to backfill and the gap ledger.
/// Runs on the reader's thread; allocation-free unless a gap is found.
/// </summary>
public sealed class EventRouter : Feeds.IEventSink
{
    private readonly EventBuffers _buffers;
    private readonly StreamStates _states;
    private readonly GapLedger _gaps;
    private readonly ChannelWriter<BackfillRequest> _backfill;
    private readonly IngestorMetrics _metrics;
    private readonly SymbolTable _symbols;
    private readonly TimeProvider _time;
    private readonly ChannelWriter<MarkPriceBackfillRequest>? _markBackfill;

    public EventRouter(EventBuffers buffers, StreamStates states, GapLedger gaps, ChannelWriter<BackfillRequest> backfill,
        IngestorMetrics metrics, SymbolTable symbols, TimeProvider time, ChannelWriter<MarkPriceBackfillRequest>? markBackfill = null)
    {
        _markBackfill = markBackfill;
        _buffers = buffers;
        _states = states;
        _gaps = gaps;
        _backfill = backfill;
        _metrics = metrics;
        _symbols = symbols;
        _time = time;
    }

    public StreamStates States => _states;

    public ValueTask RouteBookTickerAsync(in BookTickerEvent e, CancellationToken abort)
    {
        if (!_states.TryGetBookTicker(e.SymbolId, out var sequence))
        {
            _metrics.Reject(RejectReason.Unsubscribed);
            return ValueTask.CompletedTask;
        }

        sequence.Activity.Seen(e.IngestTimeUs);
        switch (sequence.Offer(e.UpdateId, e.EventTimeMs, out var gap, NowMs()))
        {
            case RecentIdSequence.Decision.Accept:
                if (gap is not null)
                {
                    _gaps.Record(gap);
                }

                return _buffers.BookTickers.Writer.TryWrite(e) ? ValueTask.CompletedTask : WriteSlowAsync(_buffers.BookTickers.Writer, e, abort);
            case RecentIdSequence.Decision.Stale:
                _metrics.Duplicate(MarketChannel.BookTicker, stale: true);
                return ValueTask.CompletedTask;
            default:
                _metrics.Duplicate(MarketChannel.BookTicker, stale: false);
                return ValueTask.CompletedTask;
        }
    }

    /// <summary>Sequencing of the symbol's book; every non-duplicate diff is stored. Takes ownership of the event's arrays.</summary>
    public ValueTask RouteDepthAsync(in DepthEvent e, CancellationToken abort)
    {
        if (!_states.TryGetBook(e.SymbolId, out var book))
        {
            // A depth frame while depth is not recorded: counted and skipped, its pooled levels returned.
            _metrics.Reject(RejectReason.Unsubscribed);
            e.Release();
            return ValueTask.CompletedTask;
        }

        book.Activity.Seen(e.IngestTimeUs);
        if (book.Offer(e, NowMs(), out var gap, out var needSnapshot) == DepthDecision.Duplicate)
        {
            _metrics.Duplicate(_states.DepthChannel ?? MarketChannel.Depth, stale: false);
            e.Release();
            return ValueTask.CompletedTask;
        }

        if (gap is not null)
        {
            _gaps.Record(gap);
        }

        if (needSnapshot)
        {
            _states.RequestSnapshot(book);
        }

        return _buffers.Depth.Writer.TryWrite(e) ? ValueTask.CompletedTask : WriteSlowAsync(_buffers.Depth.Writer, e, abort);
    }

    public ValueTask RouteTradeAsync(in TradeEvent e, CancellationToken abort)
    {
        if (!_states.TryGetTrades(e.SymbolId, out var sequence))
        {
            _metrics.Reject(RejectReason.Unsubscribed);
            return ValueTask.CompletedTask;
        }

        sequence.Activity.Seen(e.IngestTimeUs);
        var previousTimeMs = sequence.HighestTimeMs;
        switch (sequence.Offer(e.AggTradeId, e.TradeTimeMs, out var from, out var to))
        {
            case TradeDecision.Duplicate:
                _metrics.Duplicate(MarketChannel.AggTrade, stale: false);
                return ValueTask.CompletedTask;
            case TradeDecision.AcceptWithGap:
                var request = new BackfillRequest(e.SymbolId, _symbols.NameOf(e.SymbolId), from, to,
                    previousTimeMs > 0 ? previousTimeMs : e.TradeTimeMs, e.TradeTimeMs, NowMs());
                if (!_backfill.TryWrite(request))
                {
                    // Backfill has stopped (shutdown): the hole goes straight to the ledger.
                    _gaps.Record(request.ToGap(sequence.Stream, "backfill not running"));
                    sequence.Abandon(from, to);
                }

                break;
        }

        return _buffers.Trades.Writer.TryWrite(e) ? ValueTask.CompletedTask : WriteSlowAsync(_buffers.Trades.Writer, e, abort);
    }

    public ValueTask RouteMarkPriceAsync(in MarkPriceEvent e, CancellationToken abort)
    {
        if (!_states.TryGetMarkPrice(e.SymbolId, out var sequence))
        {
            _metrics.Reject(RejectReason.Unsubscribed);
            return ValueTask.CompletedTask;
        }

        sequence.Activity.Seen(e.IngestTimeUs);
        if (!sequence.Offer(e.EventTimeMs, NowMs(), out var gap))
        {
            _metrics.Duplicate(_states.MarkPriceChannel, stale: false);
            return ValueTask.CompletedTask;
        }

        if (gap is not null)
        {
            _gaps.Record(gap);
            // Downtime (not seconds skipped while connected): REST still has the minute bars and the settled funding.
            if (gap.Reason != GapReason.MissedSeconds && gap.EndMs - gap.StartMs >= MarkPriceBackfiller.MinWindowMs)
            {
                _markBackfill?.TryWrite(new MarkPriceBackfillRequest(e.SymbolId, _symbols.NameOf(e.SymbolId), gap.StartMs, gap.EndMs));
            }
        }

        return _buffers.MarkPrices.Writer.TryWrite(e) ? ValueTask.CompletedTask : WriteSlowAsync(_buffers.MarkPrices.Writer, e, abort);
    }

    public ValueTask RouteLiquidationAsync(in LiquidationEvent e, CancellationToken abort)
    {
        if (!_states.TryGetLiquidations(e.SymbolId, out var stream))
        {
            _metrics.Reject(RejectReason.Unsubscribed);
            return ValueTask.CompletedTask;
        }

        stream.Activity.Seen(e.IngestTimeUs);
        switch (stream.Offer(e.EventTimeMs, NowMs()))
        {
            case RecentIdSequence.Decision.Accept:
                // Binance sends at most one liquidation per symbol per second: each row is a sampled second.
                _metrics.OnLiquidationSampledSecond();
                return _buffers.Liquidations.Writer.TryWrite(e) ? ValueTask.CompletedTask : WriteSlowAsync(_buffers.Liquidations.Writer, e, abort);
            case RecentIdSequence.Decision.Stale:
                _metrics.Duplicate(MarketChannel.ForceOrder, stale: true);
                return ValueTask.CompletedTask;
            default:
                _metrics.Duplicate(MarketChannel.ForceOrder, stale: false);
                return ValueTask.CompletedTask;
        }
    }

    public IReadOnlyList<string> InterruptibleStreams(IEnumerable<string> streams)
        => streams.Where(s => MarketChannels.TryParseStreamName(s, out _, out var channel)
            && (channel is MarketChannel.BookTicker or MarketChannel.ForceOrder || channel.IsMarkPrice())).ToList();

    public void Interrupted(IReadOnlyList<string> streams, long lastReceivedUnixMs)
    {
        var now = NowMs();
        var since = lastReceivedUnixMs > 0 ? Math.Min(lastReceivedUnixMs, now) : now;
        foreach (var (id, channel) in Resolve(streams))
        {
            switch (channel)
            {
                case MarketChannel.BookTicker when _states.TryGetBookTicker(id, out var sequence):
                    sequence.Interrupt(since);
                    break;
                case var c when c.IsMarkPrice() && _states.TryGetMarkPrice(id, out var marks):
                    marks.Interrupt();
                    break;
                case MarketChannel.ForceOrder when _states.TryGetLiquidations(id, out var liquidations):
                    liquidations.Interrupt(since);
                    break;
            }
        }
    }

    public void Resubscribed(IReadOnlyList<string> streams)
    {
        var now = NowMs();
        foreach (var (id, channel) in Resolve(streams))
        {
            if (channel == MarketChannel.ForceOrder && _states.TryGetLiquidations(id, out var liquidations) && liquidations.Resume(now) is { } gap)
            {
                _gaps.Record(gap);
            }
        }
    }

    private IEnumerable<(int Id, MarketChannel Channel)> Resolve(IReadOnlyList<string> streams)
    {
        foreach (var s in streams)
        {
            if (s == MarketChannels.AllMarketForceOrder)
            {
                // The all-market stream carries every symbol's liquidations.
                foreach (var name in _symbols.Symbols)
                {
                    if (_symbols.TryGetId(name, out var each))
                    {
                        yield return (each, MarketChannel.ForceOrder);
                    }
                }
            }
            else if (MarketChannels.TryParseStreamName(s, out var symbol, out var channel) && _symbols.TryGetId(symbol, out var id))
            {
                yield return (id, channel);
            }
        }
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The buffer is full: wait for the flusher (backpressure). Only the drain deadline gives up, and that is counted.</summary>
    private async ValueTask WriteSlowAsync<T>(ChannelWriter<T> writer, T item, CancellationToken abort)
    {
        try
        {
            await writer.WriteAsync(item, abort).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            _metrics.LostAtShutdown();
        }
    }
}

/// <summary>aggTrade ids [From, To] of a symbol to fetch from REST; the gap is dated by the trades around it. What REST
/// cannot give is recorded with <paramref name="Reason"/> (why the ids were missing in the first place).</summary>
public sealed record BackfillRequest(int SymbolId, string Symbol, long From, long To, long GapStartMs, long GapEndMs, long DetectedMs,
    GapReason Reason = GapReason.AggTradeIds)
{
    public GapRecord ToGap(string stream, string details, long? from = null, long? to = null)
        => new(SymbolId, stream, GapStartMs, Math.Max(GapStartMs, GapEndMs), from ?? From, to ?? To, Reason, DetectedMs, details);
}
