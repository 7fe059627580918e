using Microsoft.Extensions.Logging;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// Produces events round-robin over the streams that have a subscriber, paced to Rate per second, and hands
/// each one to its subscribers: one frame per subscribed name (the raw payload, or the combined-stream
/// wrapping built once and shared by every combined connection under that name).
/// </summary>
internal sealed class SimGenerator
{
    private readonly SimulatorOptions _options;
    private readonly SimulatedMarket _market;
    private readonly SimSubscribers _subscribers;
    private readonly SimFaults _faults;
    private readonly SimLedger _ledger;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private long _framesSent;

    public SimGenerator(SimulatorOptions options, SimulatedMarket market, SimSubscribers subscribers, SimFaults faults, SimLedger ledger, TimeProvider time, ILogger log)
    {
        _options = options;
        _market = market;
        _subscribers = subscribers;
        _faults = faults;
        _ledger = ledger;
        _time = time;
        _log = log;
    }

    /// <summary>Runs until cancelled, or until Events events when that is set. Starts once <paramref name="started"/> completes.</summary>
    public async Task RunAsync(Task started, CancellationToken ct)
    {
        try
        {
            await started.WaitAsync(ct).ConfigureAwait(false);
            var allStreams = _options.AllStreamsActive ? _market.AllStreams.Where(s => !PerSecond(s)).Order(StringComparer.Ordinal).ToArray() : null;
            var allPerSecond = _options.AllStreamsActive ? _market.AllStreams.Where(PerSecond).Order(StringComparer.Ordinal).ToArray() : null;
            var nextSecond = (_time.GetUtcNow().ToUnixTimeMilliseconds() / 1000 + 1) * 1000;
            var start = _time.GetTimestamp();
            long produced = 0;
            var cursor = 0;
            while (!ct.IsCancellationRequested)
            {
                var due = (long)(_time.GetElapsedTime(start).TotalSeconds * _options.Rate);
                if (_options.Events > 0)
                {
                    due = Math.Min(due, _options.Events);
                }

                while (produced < due)
                {
                    // Read once per event: a SUBSCRIBE or a closed connection takes effect from the next event.
                    var snapshot = _subscribers.Current;
                    var active = allStreams ?? snapshot.ActiveStreams;
                    if (active.Length == 0)
                    {
                        break;
                    }

                    Broadcast(_market.Next(active[cursor++ % active.Length]), snapshot);
                    produced++;
                }

                if (_options.Events > 0 && produced >= _options.Events)
                {
                    return;
                }

                // markPrice and forceOrder come on the exchange's one-second clock, each second stamped with its own
                // time even when this loop runs late, whatever the market-event rate.
                for (var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds(); nextSecond <= nowMs; nextSecond += 1000)
                {
                    var snapshot = _subscribers.Current;
                    foreach (var stream in allPerSecond ?? snapshot.PerSecondStreams)
                    {
                        if (_market.Tick(stream, nextSecond) is { } e)
                        {
                            Broadcast(e, snapshot);
                        }
                    }
                }

                await Task.Delay(TimeSpan.FromMilliseconds(1), _time, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stopped
        }
    }

    private bool PerSecond(string stream) => _market.TryGetChannel(stream, out var c) && SimulatedMarket.IsPerSecond(c);

    private void Broadcast(SimEvent e, SimSubscribers.Snapshot snapshot)
    {
        _ledger.OnGenerated(e);
        if (_faults.TakeWithheld(e.Stream))
        {
            _ledger.OnWithheld(e);
            return;
        }

        if (!snapshot.ByStream.TryGetValue(e.Stream, out var targets))
        {
            return;
        }

        byte[]? lastPrefix = null;
        SimWireFrame raw = default, wrapped = default;
        foreach (var t in targets)
        {
            SimWireFrame frame;
            if (t.Prefix is null)
            {
                if (raw.Bytes is null)
                {
                    raw = SimWireFrame.Text(e, [], e.Data);
                }

                frame = raw;
            }
            else
            {
                if (!ReferenceEquals(t.Prefix, lastPrefix))
                {
                    lastPrefix = t.Prefix;
                    wrapped = SimWireFrame.Text(e, t.Prefix, e.Data);
                }

                frame = wrapped;
            }

            var duplicate = _options.DuplicateEvery > 0 && Interlocked.Increment(ref _framesSent) % _options.DuplicateEvery == 0;
            var c = t.Connection;
            if (!c.TryEnqueue(frame) || (duplicate && !c.TryEnqueue(frame with { Event = null })))
            {
                Log.SimulatorSlowClient(_log, c.Id, c.Queued);
                _ledger.OnDroppedForSlowClient(c.Queued);
                c.Socket.Abort();
                c.CompleteOutbound();
            }
        }
    }
}
