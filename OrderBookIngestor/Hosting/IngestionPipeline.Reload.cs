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
    /// <summary>Asks the running pipeline to re-read its configuration. Coalesces: one pending request at a time.</summary>
    public void RequestReload() => _reloads.Writer.TryWrite(true);

    private void StartReader(Running running, ShardPlan plan)
    {
        var reader = new ShardReader(plan, _options, running.Parser, running.Router, _metrics.AddShard(plan.Name, plan.Route.PathSegment(), plan.Streams), _metrics, _time, running.FeedLog,
            new Random(running.Random.Next()));
        var task = Task.Run(() => reader.RunAsync(running.Stop, running.Abort), CancellationToken.None);
        running.AddReader(reader, task);
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
                try
                {
                    var fresh = _reloadSource?.Invoke() ?? _options;
                    await ReloadAsync(running, fresh, stop).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is ConfigurationException or NpgsqlException or HttpRequestException or System.Text.Json.JsonException
                                               || (ex is TaskCanceledException && !stop.IsCancellationRequested))
                {
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

    private async Task ReloadAsync(Running running, IngestorOptions fresh, CancellationToken ct)
    {
        var errors = OptionsValidator.Validate(fresh);
        if (errors.Count > 0)
        {
            throw new ConfigurationException(string.Join(" ", errors));
        }

        var channels = fresh.Channels.Select(c => MarketChannels.TryParse(c, out var ch) ? ch : default).Distinct().ToList();
        var newDepth = channels.Where(c => c.IsDepth()).Select(c => (MarketChannel?)c).FirstOrDefault();
        if (newDepth is { } wanted && running.States.DepthChannel is { } current && wanted != current)
        {
            throw new ConfigurationException($"Channels: switching depth speed ({current.StreamSuffix()} → {wanted.StreamSuffix()}) needs a restart.");
        }

        var depthAdded = newDepth is not null && running.States.DepthChannel is null;
        var chosen = await ResolveSymbolsAsync(fresh.Symbols, retryForAll: false, ct).ConfigureAwait(false);
        var store = new SymbolStore(_dataSource);
        var ids = await store.RegisterAsync(chosen, ct).ConfigureAwait(false);
        var newSymbols = ids.Where(kv => !running.States.Has(kv.Value)).ToDictionary(kv => kv.Key, kv => kv.Value);
        running.Symbols.Add(ids);
        if (depthAdded)
        {
            running.States.DepthChannel = newDepth;
        }

        var needState = depthAdded ? ids : newSymbols;
        var lastStored = await LastStoredReader.ReadAsync(_dataSource, needState.Values, ct).ConfigureAwait(false);
        foreach (var (name, id) in needState)
        {
            running.States.Add(name, id, lastStored.GetValueOrDefault(id));
        }

        var dropped = running.SymbolIds.Except(ids.Values).ToList();
        await store.DeactivateAsync(dropped, ct).ConfigureAwait(false);

        var desired = ids.Keys.SelectMany(symbol => channels.Select(c => MarketChannels.StreamName(symbol, c))).ToHashSet(StringComparer.Ordinal);
        var (added, removed, newShards) = running.Rebalance(desired, _options.MaxStreamsPerConnection, plan => StartReader(running, plan));
        running.Channels = channels;
        running.SymbolIds = ids.Values.ToHashSet();
        Log.Reloaded(_log, added, removed, newSymbols.Count, newShards);
    }

    /// <summary>What a reload may change while the pipeline runs.</summary>
    private sealed class Running(SymbolTable symbols, StreamStates states, EventRouter router, FrameParser parser, List<MarketChannel> channels,
        ILogger feedLog, Random random, CancellationToken stop, CancellationToken abort)
    {
        private readonly Lock _gate = new();
        private readonly List<(ShardReader Reader, Task Task)> _readers = [];
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _nextShardIndex;

        public SymbolTable Symbols { get; } = symbols;

        public StreamStates States { get; } = states;

        public EventRouter Router { get; } = router;

        public FrameParser Parser { get; } = parser;

        public ILogger FeedLog { get; } = feedLog;

        public Random Random { get; } = random;

        public CancellationToken Stop { get; } = stop;

        public CancellationToken Abort { get; } = abort;

        public volatile IReadOnlyList<MarketChannel> Channels = channels;

        public volatile IReadOnlySet<int> SymbolIds = symbols.Symbols.Select(s => symbols.TryGetId(s, out var id) ? id : 0).ToHashSet();

        /// <summary>Completes when a reader is added, so the supervisor watches the new one too.</summary>
        public Task ReadersChanged
        {
            get
            {
                lock (_gate)
                {
                    return _changed.Task;
                }
            }
        }

        public IReadOnlyList<Task> ReaderTasks
        {
            get
            {
                lock (_gate)
                {
                    return _readers.Select(r => r.Task).ToList();
                }
            }
        }

        public IReadOnlyList<(string Stream, BinanceRoute Route, StreamActivity Activity)> CurrentActivities() => States.Activities([.. Channels], SymbolIds);

        public List<DepthSequencer> CurrentBooks()
        {
            var ids = SymbolIds;
            return Channels.Any(c => c.IsDepth()) ? States.Books.OfType<DepthSequencer>().Where(b => ids.Contains(b.SymbolId)).ToList() : [];
        }

        public void AddReader(ShardReader reader, Task task)
        {
            TaskCompletionSource changed;
            lock (_gate)
            {
                _readers.Add((reader, task));
                _nextShardIndex = Math.Max(_nextShardIndex, reader.Plan.Index + 1);
                changed = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            changed.TrySetResult();
        }

        /// <summary>Unsubscribes what is no longer wanted, then places new streams on the least loaded shard of
        /// their route with room, opening connections only when every shard of the route is full.</summary>
        public (int Added, int Removed, int NewShards) Rebalance(HashSet<string> desired, int maxPerConnection, Action<ShardPlan> startReader)
        {
            List<ShardReader> readers;
            lock (_gate)
            {
                readers = _readers.Select(r => r.Reader).ToList();
            }

            var removed = 0;
            var have = new HashSet<string>(StringComparer.Ordinal);
            foreach (var reader in readers)
            {
                var current = reader.Streams;
                var gone = current.Where(s => !desired.Contains(s)).ToList();
                reader.RemoveStreams(gone);
                removed += gone.Count;
                have.UnionWith(current.Except(gone));
            }

            var toAdd = desired.Where(s => !have.Contains(s)).Order(StringComparer.Ordinal).ToList();
            var load = readers.ToDictionary(r => r, r => r.Streams.Count);
            var additions = readers.ToDictionary(r => r, _ => new List<string>());
            var newPlans = new List<(BinanceRoute Route, List<string> Streams)>();
            foreach (var stream in toAdd)
            {
                if (!MarketChannels.TryParseStreamName(stream, out _, out var channel))
                {
                    continue;
                }

                var route = channel.Route();
                var target = load.Where(kv => kv.Key.Plan.Route == route && kv.Value < maxPerConnection).OrderBy(kv => kv.Value).Select(kv => kv.Key).FirstOrDefault();
                if (target is not null)
                {
                    additions[target].Add(stream);
                    load[target]++;
                    continue;
                }

                var open = newPlans.FirstOrDefault(p => p.Route == route && p.Streams.Count < maxPerConnection);
                if (open.Streams is null)
                {
                    open = (route, new List<string>());
                    newPlans.Add(open);
                }

                open.Streams.Add(stream);
            }

            foreach (var (reader, streams) in additions.Where(kv => kv.Value.Count > 0))
            {
                reader.AddStreams(streams);
            }

            foreach (var (route, streams) in newPlans)
            {
                int index;
                lock (_gate)
                {
                    index = _nextShardIndex++;
                }

                startReader(new ShardPlan(index, route, streams));
            }

            return (toAdd.Count, removed, newPlans.Count);
        }
    }
}
