using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Books;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// Reload (SIGHUP, and a periodic exchangeInfo refresh under --symbols ALL): the symbol list and channels
/// change on live connections by SUBSCRIBE/UNSUBSCRIBE; new streams fill the shards of their route before
/// a new connection is opened. Other settings take effect at the next restart.
/// </summary>
public sealed partial class IngestionPipeline
{
    /// <summary>A reload that has not finished in this time is given up (logged with the step it was on); the next
    /// request starts over. Each step is a REST call or a short query, seconds at worst.</summary>
    internal TimeSpan ReloadTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Asks the running pipeline to re-read its configuration. Coalesces: one pending request at a time.</summary>
    /// <param name="source">Why, for the log: SIGHUP, or the listing refresh (not logged: it comes every few minutes).</param>
    public void RequestReload(string? source = null)
    {
        if (source is not null)
        {
            Log.ReloadRequested(_log, source);
        }

        _reloads.Writer.TryWrite(true);
    }

    private void StartReader(Running running, ShardPlan plan)
    {
        var reader = new ShardReader(plan, _options, running.Parser, running.Router, _metrics.AddShard(plan.Name, plan.Route.PathSegment(), plan.Streams), _metrics, _time, running.FeedLog,
            new Random(running.Random.Next()));
        running.AddReader(reader);
        running.Supervisor.Start($"shard reader {plan.Name}", DrainPhase.Readers, () => reader.RunAsync(running.Stop, running.Abort));
    }

    private async Task ReloadLoopAsync(Running running, CancellationToken stop)
    {
        var followListings = _options.Symbols.Count == 1 && OptionsValidator.IsAll(_options.Symbols[0]);
        using var refresh = followListings ? new PeriodicTimer(TimeSpan.FromSeconds(_options.ExchangeInfoRefreshSeconds), _time) : null;
        var ticks = refresh is null ? Task.CompletedTask : Task.Run(async () =>
        {
            while (await refresh.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                RequestReload();
            }
        }, CancellationToken.None);
        try
        {
            await foreach (var _ in _reloads.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                using var timeout = new CancellationTokenSource(ReloadTimeout, _time);
                using var bounded = CancellationTokenSource.CreateLinkedTokenSource(stop, timeout.Token);
                var step = new ReloadStep();
                try
                {
                    var fresh = _reloadSource?.Invoke() ?? _options;
                    await ReloadAsync(running, fresh, step, bounded.Token).ConfigureAwait(false);
                    _metrics.OnReload(applied: true);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested && timeout.IsCancellationRequested)
                {
                    _metrics.OnReload(applied: false);
                    Log.ReloadRefused(_log, $"not done after {ReloadTimeout.TotalSeconds:0} s, while {step.Now}");
                }
                catch (Exception ex) when (ex is ConfigurationException or NpgsqlException or HttpRequestException or System.Text.Json.JsonException
                                               || (ex is TaskCanceledException && !stop.IsCancellationRequested))
                {
                    _metrics.OnReload(applied: false);
                    Log.ReloadRefused(_log, ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down
        }

        try
        {
            await ticks.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // the refresh timer stops with the loop
        }
    }

    /// <summary>What a reload is doing now, named for the log if it does not finish.</summary>
    private sealed class ReloadStep
    {
        public string Now { get; set; } = "validating the configuration";
    }

    private async Task ReloadAsync(Running running, IngestorOptions fresh, ReloadStep step, CancellationToken ct)
    {
        var errors = OptionsValidator.Validate(fresh);
        if (errors.Count > 0)
        {
            throw new ConfigurationException(string.Join(" ", errors));
        }

        var channels = MarketChannels.Streams(fresh.Channels);
        var newDepth = channels.Where(c => c.IsDepth()).Select(c => (MarketChannel?)c).FirstOrDefault();
        if (newDepth is { } wanted && running.States.DepthChannel is { } current && wanted != current)
        {
            throw new ConfigurationException($"Channels: switching depth speed ({current.StreamSuffix()} → {wanted.StreamSuffix()}) needs a restart.");
        }

        if (channels.FirstOrDefault(c => c.IsMarkPrice(), running.States.MarkPriceChannel) is var mark && mark != running.States.MarkPriceChannel)
        {
            throw new ConfigurationException($"Channels: switching mark price speed ({running.States.MarkPriceChannel.StreamSuffix()} → {mark.StreamSuffix()}) needs a restart.");
        }

        var depthAdded = newDepth is not null && running.States.DepthChannel is null;
        step.Now = "asking the exchange for its symbols (exchangeInfo)";
        var chosen = await _symbols.ResolveAsync(fresh.Symbols, retryForAll: false, ct).ConfigureAwait(false);
        var store = new SymbolStore(_dataSource);
        step.Now = "registering the symbols in marketdata.symbols";
        var ids = await store.RegisterAsync(chosen, ct).ConfigureAwait(false);
        var newSymbols = ids.Where(kv => !running.States.Has(kv.Value)).ToDictionary(kv => kv.Key, kv => kv.Value);
        running.Symbols.Add(ids);
        if (depthAdded)
        {
            running.States.DepthChannel = newDepth;
        }

        var needState = depthAdded ? ids : newSymbols;
        step.Now = "reading the new symbols' last stored rows";
        var lastStored = await LastStoredReader.ReadAsync(_dataSource, needState.Values, ct).ConfigureAwait(false);
        foreach (var (name, id) in needState)
        {
            running.States.Add(name, id, lastStored.GetValueOrDefault(id));
        }

        var dropped = running.SymbolIds.Except(ids.Values).ToList();
        step.Now = "marking removed symbols inactive";
        await store.DeactivateAsync(dropped, ct).ConfigureAwait(false);
        step.Now = "changing subscriptions";

        var desired = MarketChannels.StreamNames(ids.Keys, channels, AllMarketForceOrder(fresh)).ToHashSet(StringComparer.Ordinal);
        var (added, removed, newShards) = running.Rebalance(desired, _options.MaxStreamsPerConnection, plan => StartReader(running, plan));
        running.Channels = channels;
        running.SymbolIds = ids.Values.ToHashSet();
        running.PollOpenInterest = fresh.Channels.Any(MarketChannels.IsPolled);
        Log.Reloaded(_log, added, removed, newSymbols.Count, newShards);
    }

    /// <summary>What a reload may change while the pipeline runs.</summary>
    private sealed class Running(SymbolTable symbols, StreamStates states, EventRouter router, FrameParser parser, List<MarketChannel> channels,
        ILogger feedLog, Random random, Supervisor supervisor, CancellationToken stop, CancellationToken abort)
    {
        private readonly Lock _gate = new();
        private readonly List<ShardReader> _readers = [];
        private int _nextShardIndex;

        public SymbolTable Symbols { get; } = symbols;

        public StreamStates States { get; } = states;

        public EventRouter Router { get; } = router;

        public FrameParser Parser { get; } = parser;

        public ILogger FeedLog { get; } = feedLog;

        public Random Random { get; } = random;

        /// <summary>Runs the readers as named loops (a reload adds more).</summary>
        public Supervisor Supervisor { get; } = supervisor;

        public CancellationToken Stop { get; } = stop;

        public CancellationToken Abort { get; } = abort;

        public volatile IReadOnlyList<MarketChannel> Channels = channels;

        public volatile IReadOnlySet<int> SymbolIds = symbols.Symbols.Select(s => symbols.TryGetId(s, out var id) ? id : 0).ToHashSet();

        /// <summary>Whether the openInterest poll is among the channels (a reload can switch it).</summary>
        public volatile bool PollOpenInterest;

        /// <summary>The symbols to poll open interest for now: none when the poll is not among the channels.</summary>
        public IReadOnlyList<(int Id, string Symbol)> OpenInterestSymbols()
            => PollOpenInterest ? [.. SymbolIds.Order().Select(id => (id, Symbols.NameOf(id)))] : [];

        public IReadOnlyList<(string Stream, BinanceRoute Route, StreamActivity Activity)> CurrentActivities() => States.Activities([.. Channels], SymbolIds);

        public List<DepthSequencer> CurrentBooks()
        {
            var ids = SymbolIds;
            return Channels.Any(c => c.IsDepth()) ? States.Books.OfType<DepthSequencer>().Where(b => ids.Contains(b.SymbolId)).ToList() : [];
        }

        public void AddReader(ShardReader reader)
        {
            lock (_gate)
            {
                _readers.Add(reader);
                _nextShardIndex = Math.Max(_nextShardIndex, reader.Plan.Index + 1);
            }
        }

        /// <summary>Applies the placement ShardPlanner.Place computes for <paramref name="desired"/> to the live readers,
        /// and starts readers for the connections it opens.</summary>
        public (int Added, int Removed, int NewShards) Rebalance(HashSet<string> desired, int maxPerConnection, Action<ShardPlan> startReader)
        {
            List<ShardReader> readers;
            lock (_gate)
            {
                readers = [.. _readers];
            }

            var placement = ShardPlanner.Place([.. readers.Select(r => new ShardPlanner.LiveShard(r.Plan.Index, r.Plan.Route, r.Streams))], desired, maxPerConnection);
            foreach (var reader in readers)
            {
                if (placement.Remove.TryGetValue(reader.Plan.Index, out var gone))
                {
                    reader.RemoveStreams(gone);
                }
            }

            foreach (var reader in readers)
            {
                if (placement.Add.TryGetValue(reader.Plan.Index, out var streams))
                {
                    reader.AddStreams(streams);
                }
            }

            foreach (var (route, streams) in placement.NewShards)
            {
                int index;
                lock (_gate)
                {
                    index = _nextShardIndex++;
                }

                startReader(new ShardPlan(index, route, streams));
            }

            return (placement.Added, placement.Removed, placement.NewShards.Count);
        }
    }
}
