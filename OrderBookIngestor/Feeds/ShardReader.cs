using Microsoft.Extensions.Logging;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Resilience;

namespace OrderBookIngestor.Feeds;

/// <summary>
/// Supervises one shard's connections (each a <see cref="ShardConnection"/>) for the shard's lifetime: keeps
/// one streaming, reconnects with jittered backoff when it fails, rotates it before the exchange's 24-hour
/// cut-off, owns the shard's stream set (changed by reloads) and publishes the shard's state, derived from
/// its connections. Exits only when its token is cancelled.
/// </summary>
public sealed class ShardReader
{
    private readonly ShardPlan _plan;
    private readonly IngestorOptions _options;
    private readonly FrameParser _parser;
    private readonly IEventSink _router;
    private readonly Lock _streamsGate = new();
    private readonly List<string> _streams;
    private readonly List<ShardConnection> _live = [];
    private volatile IReadOnlyList<string> _interruptible;
    private readonly ShardStats _stats;
    private readonly IngestorMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly RetryPolicy _backoff;
    private readonly LogLimiter _rejectLog;
    private long _nextControlId = 1;
    private volatile bool _backingOff;
    private volatile bool _stopped;

    public ShardReader(ShardPlan plan, IngestorOptions options, FrameParser parser, IEventSink router,
        ShardStats stats, IngestorMetrics metrics, TimeProvider time, ILogger log, Random random)
    {
        _plan = plan;
        _options = options;
        _parser = parser;
        _router = router;
        _streams = [.. plan.Streams];
        _interruptible = router.InterruptibleStreams(_streams);
        stats.StreamCount = _streams.Count;
        _stats = stats;
        _metrics = metrics;
        _time = time;
        _log = log;
        _backoff = new RetryPolicy(TimeSpan.FromMilliseconds(options.ReconnectMinDelayMs), TimeSpan.FromMilliseconds(options.ReconnectMaxDelayMs), random);
        _rejectLog = new LogLimiter(time, TimeSpan.FromSeconds(5));
    }

    public ShardPlan Plan => _plan;

    // What its connections share.
    internal IngestorOptions Options => _options;

    internal FrameParser Parser => _parser;

    internal IEventSink Router => _router;

    /// <summary>The shard's streams whose holes are dated by the connection.</summary>
    internal IReadOnlyList<string> InterruptibleStreams => _interruptible;

    internal ShardStats Stats => _stats;

    internal IngestorMetrics Metrics => _metrics;

    internal TimeProvider Time => _time;

    internal ILogger Logger => _log;

    internal LogLimiter RejectLog => _rejectLog;

    /// <summary>How many streams the shard records now (reloads change it).</summary>
    internal int StreamCount
    {
        get
        {
            lock (_streamsGate)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary>The streams this shard records now (the plan's, plus and minus reloads).</summary>
    public IReadOnlyList<string> Streams
    {
        get
        {
            lock (_streamsGate)
            {
                return [.. _streams];
            }
        }
    }

    /// <summary>Subscribes more streams on the live connection(s), and on every later one.</summary>
    public void AddStreams(IReadOnlyCollection<string> streams) => Change(streams, add: true);

    /// <summary>Unsubscribes streams on the live connection(s); later connections do not subscribe them.</summary>
    public void RemoveStreams(IReadOnlyCollection<string> streams) => Change(streams, add: false);

    private void Change(IReadOnlyCollection<string> streams, bool add)
    {
        lock (_streamsGate)
        {
            var changed = add ? streams.Where(s => !_streams.Contains(s)).ToList() : streams.Where(_streams.Contains).ToList();
            if (changed.Count == 0)
            {
                return;
            }

            if (add)
            {
                _streams.AddRange(changed);
            }
            else
            {
                _streams.RemoveAll(changed.Contains);
            }

            foreach (var connection in _live)
            {
                EnqueueControl(connection, changed, add);
            }

            _interruptible = _router.InterruptibleStreams(_streams);
            _stats.StreamCount = _streams.Count;
            Log.StreamsChanged(_log, _plan.Name, add ? "+" : "-", changed.Count, _streams.Count);
        }
    }

    /// <summary>Queues SUBSCRIBE or UNSUBSCRIBE messages of at most StreamsPerSubscribe streams; returns the last id.</summary>
    private long EnqueueControl(ShardConnection connection, IReadOnlyList<string> streams, bool subscribe)
    {
        long id = 0;
        foreach (var chunk in streams.Chunk(_options.StreamsPerSubscribe))
        {
            id = Interlocked.Increment(ref _nextControlId);
            connection.Control.Writer.TryWrite(subscribe ? BinanceProtocol.Subscribe(chunk, id) : BinanceProtocol.Unsubscribe(chunk, id));
        }

        return id;
    }

    /// <summary>
    /// Supervises the shard's connection: keeps one streaming, reconnects with backoff when it fails, and
    /// replaces it before the exchange's 24-hour cut-off by opening and subscribing the replacement first,
    /// then closing the old one once the new one delivers data (the overlap is deduplicated downstream).
    /// </summary>
    /// <param name="stopReading">Cancelled at shutdown: stop receiving.</param>
    /// <param name="abort">Cancelled only at the drain deadline: give up handing an already received event to a full buffer.</param>
    public async Task RunAsync(CancellationToken stopReading, CancellationToken abort)
    {
        ShardConnection? current = null;
        var retryRotationSoon = false;
        while (!stopReading.IsCancellationRequested)
        {
            current ??= Start(stopReading, abort);
            var rotateIn = retryRotationSoon ? TimeSpan.FromSeconds(Math.Min(60, _options.MaxConnectionLifetimeSeconds)) : Lifetime();
            using var rotation = CancellationTokenSource.CreateLinkedTokenSource(stopReading);
            var rotateAt = Task.Delay(rotateIn, _time, rotation.Token);
            var finished = await Task.WhenAny(current.Run, rotateAt).ConfigureAwait(false);
            await rotation.CancelAsync().ConfigureAwait(false);
            if (stopReading.IsCancellationRequested)
            {
                break;
            }

            if (finished == current.Run)
            {
                var reason = await current.Run.ConfigureAwait(false);
                var stopping = await ReconnectDelayAsync(current, reason, stopReading).ConfigureAwait(false);
                current.Dispose();
                current = null;
                if (stopping)
                {
                    break;
                }

                retryRotationSoon = false;
                continue;
            }

            var replacement = Start(stopReading, abort);
            var ready = await Task.WhenAny(replacement.Streaming.Task, replacement.Run,
                Task.Delay(TimeSpan.FromSeconds(_options.RotationTimeoutSeconds), _time, stopReading)).ConfigureAwait(false);
            if (ready == replacement.Streaming.Task)
            {
                // What the kernel still holds for the old connection may be older than the replacement's first frame.
                await current.DrainReadsAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
                current.Retire();
                await current.Run.ConfigureAwait(false);
                Log.Rotated(_log, _plan.Name, current.Age(_time).TotalHours);
                current.Dispose();
                _stats.OnRotation();
                current = replacement;
                retryRotationSoon = false;
            }
            else
            {
                replacement.Retire();
                var why = await replacement.Run.ConfigureAwait(false);
                replacement.Dispose();
                Log.RotationFailed(_log, _plan.Name, why);
                retryRotationSoon = true;
            }
        }

        if (current is not null)
        {
            await current.Run.ConfigureAwait(false);
            current.Dispose();
        }

        _stopped = true;
        PublishState();
    }

    /// <summary>Planned lifetime of this shard's connections, staggered so shards do not all rotate at once.</summary>
    private TimeSpan Lifetime()
        => TimeSpan.FromSeconds(_options.MaxConnectionLifetimeSeconds * (1 - (0.02 * (_plan.Index % 10))));

    /// <returns>True when shutting down.</returns>
    private async Task<bool> ReconnectDelayAsync(ShardConnection failed, string reason, CancellationToken stopReading)
    {
        // bookTicker ids are not contiguous, markPrice and forceOrder have none: the window until the stream is back is a gap.
        _router.Interrupted(_interruptible, failed.LastReceivedUnixMs);
        var lived = failed.Age(_time);
        if (lived >= TimeSpan.FromSeconds(_options.StableConnectionSeconds))
        {
            _backoff.Reset();
        }

        var delay = _backoff.Next();
        _stats.OnReconnect();
        Log.ConnectionLost(_log, _plan.Name, lived.TotalSeconds, reason, (long)delay.TotalMilliseconds);
        _backingOff = true;
        PublishState();
        try
        {
            await Task.Delay(delay, _time, stopReading).ConfigureAwait(false);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
        finally
        {
            _backingOff = false;
        }
    }

    private ShardConnection Start(CancellationToken stopReading, CancellationToken abort)
    {
        var connection = new ShardConnection(this, _time.GetTimestamp());
        lock (_streamsGate)
        {
            // Under the lock: a reload either lands in this initial subscription or is queued after it.
            connection.LastSubscribeId = EnqueueControl(connection, _streams, subscribe: true);
            connection.Acknowledged = _streams.Count == 0;
            _live.Add(connection);
        }

        PublishState();
        connection.Run = Task.Run(() => RunGuardedAsync(connection, stopReading, abort), CancellationToken.None);
        return connection;
    }

    private async Task<string> RunGuardedAsync(ShardConnection connection, CancellationToken stopReading, CancellationToken abort)
    {
        try
        {
            return await connection.RunAsync(stopReading, abort).ConfigureAwait(false);
        }
        finally
        {
            lock (_streamsGate)
            {
                _live.Remove(connection);
            }

            PublishState();
        }
    }

    /// <summary>Called by a connection after each move of its phase.</summary>
    internal void OnConnectionPhaseChanged() => PublishState();

    /// <summary>
    /// The shard's state, derived from its open connections: streaming while any of them streams (so a
    /// replacement that is still connecting, or a rotation that fails, never hides a connection that
    /// delivers), else the most advanced phase among them, else stopped or backing off.
    /// </summary>
    private void PublishState()
    {
        lock (_streamsGate)
        {
            SetState(DeriveState(_live.Select(c => c.Phase), _stopped, _backingOff, _stats.State));
        }
    }

    /// <summary>The shard's state from its connections' phases (see <see cref="PublishState"/>).</summary>
    internal static ConnectionState DeriveState(IEnumerable<ShardConnection.ConnectionPhase> phases, bool stopped, bool backingOff, ConnectionState published)
    {
        var open = phases.Where(p => p is not ShardConnection.ConnectionPhase.Closed).ToList();
        return (open.Count == 0 ? (ShardConnection.ConnectionPhase?)null : open.Max()) switch
        {
            ShardConnection.ConnectionPhase.Streaming => ConnectionState.Streaming,
            ShardConnection.ConnectionPhase.Subscribing => ConnectionState.Subscribing,
            ShardConnection.ConnectionPhase.Opening => ConnectionState.Connecting,
            _ when stopped => ConnectionState.Stopped,
            _ when backingOff => ConnectionState.Backoff,
            // A connection just ended and the supervisor has not decided yet: keep what was published.
            _ => published,
        };
    }

    private void SetState(ConnectionState state)
    {
        var previous = _stats.State;
        if (previous != state)
        {
            _stats.SetState(state);
            Log.StateChanged(_log, _plan.Name, previous, state);
        }
    }

    internal static long ToUnixMicros(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
}
