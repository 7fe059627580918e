using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// Turns a damaged spool record into a hole that is written down. What the record still shows (its table, and per
/// symbol the time and id ranges of its rows: <see cref="CopyPayload.Salvage"/>) becomes, for trades, a backfill from
/// REST of those ids (what REST cannot give is a spool_corrupt gap row), and for every other table a spool_corrupt gap
/// row. A record whose header is unreadable is logged and counted: what it held is unknown. Damage found by the replay
/// at start, before the gap ledger and the backfiller exist, waits here until <see cref="Attach"/>.
/// </summary>
internal sealed class SpoolLossRecorder
{
    private static readonly long EarliestPlausibleUs = new DateTimeOffset(2017, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;

    private readonly ConcurrentQueue<SpoolDamage> _pending = new();
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private Targets? _targets;

    public SpoolLossRecorder(TimeProvider time, ILogger log)
    {
        _time = time;
        _log = log;
    }

    private sealed record Targets(SymbolTable Symbols, StreamStates States, GapLedger Gaps, ChannelWriter<BackfillRequest> Backfill, MarketChannel Depth);

    /// <summary>Called by the spool for every damaged stretch it skips.</summary>
    public void OnDamage(SpoolDamage damage)
    {
        _pending.Enqueue(damage);
        Drain();
    }

    /// <summary>From now on (and for what waited), losses go to the gap ledger and the backfill.</summary>
    public void Attach(SymbolTable symbols, StreamStates states, GapLedger gaps, ChannelWriter<BackfillRequest> backfill, MarketChannel? depth)
    {
        Volatile.Write(ref _targets, new Targets(symbols, states, gaps, backfill, depth ?? MarketChannel.Depth));
        Drain();
    }

    private void Drain()
    {
        var targets = Volatile.Read(ref _targets);
        while (targets is not null && _pending.TryDequeue(out var damage))
        {
            Record(targets, damage);
        }
    }

    private void Record(Targets t, SpoolDamage damage)
    {
        if (damage.TableId is not { } tableId || damage.SuspectPayload is not { } payload || !BatchCommitter.Tables.TryGetValue(tableId, out var spec))
        {
            Log.SpoolLossUnknown(_log, damage.Offset, damage.Bytes, damage.Problem);
            return;
        }

        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var latestPlausibleUs = (nowMs + 86_400_000) * 1000;
        var ranges = CopyPayload.Salvage(spec.Table, payload)
            .Where(r => r.FromUs >= EarliestPlausibleUs && r.ToUs <= latestPlausibleUs && r.FirstId <= r.LastId)
            .ToList();
        if (ranges.Count == 0)
        {
            Log.SpoolLossUnknown(_log, damage.Offset, damage.Bytes, damage.Problem);
            return;
        }

        foreach (var r in ranges)
        {
            var symbol = t.Symbols.NameOf(r.SymbolId);
            var (fromMs, toMs) = (r.FromUs / 1000, r.ToUs / 1000);
            Log.SpoolLoss(_log, spec.Table, symbol, r.Rows, r.FirstId, r.LastId, DateTimeOffset.FromUnixTimeMilliseconds(fromMs), DateTimeOffset.FromUnixTimeMilliseconds(toMs));
            if (spec.Table == "trades" && t.States.TryGetTrades(r.SymbolId, out var trades))
            {
                // aggTrade ids are contiguous and REST still has recent ones: fetch them again, as for any other hole.
                trades.Reopen(r.FirstId, r.LastId);
                if (t.Backfill.TryWrite(new BackfillRequest(r.SymbolId, symbol, r.FirstId, r.LastId, fromMs, toMs, nowMs, GapReason.SpoolCorrupt)))
                {
                    continue;
                }

                trades.Abandon(r.FirstId, r.LastId); // the backfill has stopped: written down below instead
            }

            var stream = spec.Table switch
            {
                "book_ticker" => MarketChannels.StreamName(symbol, MarketChannel.BookTicker),
                "trades" => MarketChannels.StreamName(symbol, MarketChannel.AggTrade),
                "depth_events" => MarketChannels.StreamName(symbol, t.Depth),
                "mark_price" => MarketChannels.StreamName(symbol, t.States.MarkPriceChannel),
                "liquidations" => MarketChannels.StreamName(symbol, MarketChannel.ForceOrder),
                "open_interest" => Pipeline.OpenInterestPoller.StreamName(symbol),
                _ => $"{symbol.ToLowerInvariant()}@{spec.Table}",
            };
            var ids = CopyPayload.HasIds(spec.Table);
            t.Gaps.Record(new GapRecord(r.SymbolId, stream, fromMs, toMs, ids ? r.FirstId : null, ids ? r.LastId : null, GapReason.SpoolCorrupt, nowMs,
                $"{r.Rows} {spec.Table} rows in a damaged spool record ({damage.Problem}); ids and times as far as it still read"));
        }
    }
}
