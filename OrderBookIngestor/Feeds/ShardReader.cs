using System.Buffers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;

namespace OrderBookIngestor.Feeds;

/// <summary>
/// Owns one combined-stream WebSocket connection for its shard's lifetime: connect, subscribe by paced
/// SUBSCRIBE messages, receive and parse frames in place, hand typed events to the table buffers, and
/// reconnect with jittered backoff when anything goes wrong. Exits only when its token is cancelled.
/// </summary>
public sealed class ShardReader
{
    private const int InitialBufferBytes = 64 * 1024;

    private readonly ShardPlan _plan;
    private readonly IngestorOptions _options;
    private readonly FrameParser _parser;
    private readonly EventRouter _router;
    private readonly Lock _streamsGate = new();
    private readonly List<string> _streams;
    private readonly List<Connection> _live = [];
    private volatile IReadOnlyList<int> _bookTickerSymbols;
    private readonly ShardStats _stats;
    private readonly IngestorMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Backoff _backoff;
    private readonly LogLimiter _rejectLog;
    private long _nextControlId = 1;

    public ShardReader(ShardPlan plan, IngestorOptions options, FrameParser parser, EventRouter router,
        ShardStats stats, IngestorMetrics metrics, TimeProvider time, ILogger log, Random random)
    {
        _plan = plan;
        _options = options;
        _parser = parser;
        _router = router;
        _streams = [.. plan.Streams];
        _bookTickerSymbols = router.BookTickerSymbols(_streams);
        stats.StreamCount = _streams.Count;
        _stats = stats;
        _metrics = metrics;
        _time = time;
        _log = log;
        _backoff = new Backoff(TimeSpan.FromMilliseconds(options.ReconnectMinDelayMs), TimeSpan.FromMilliseconds(options.ReconnectMaxDelayMs), random);
        _rejectLog = new LogLimiter(time, TimeSpan.FromSeconds(5));
    }

    public ShardPlan Plan => _plan;

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

            _bookTickerSymbols = _router.BookTickerSymbols(_streams);
            _stats.StreamCount = _streams.Count;
            Log.StreamsChanged(_log, _plan.Name, add ? "+" : "-", changed.Count, _streams.Count);
        }
    }

    /// <summary>Queues SUBSCRIBE or UNSUBSCRIBE messages of at most StreamsPerSubscribe streams; returns the last id.</summary>
    private long EnqueueControl(Connection connection, IReadOnlyList<string> streams, bool subscribe)
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
        Connection? current = null;
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

        SetState(ConnectionState.Stopped);
    }

    /// <summary>Planned lifetime of this shard's connections, staggered so shards do not all rotate at once.</summary>
    private TimeSpan Lifetime()
        => TimeSpan.FromSeconds(_options.MaxConnectionLifetimeSeconds * (1 - (0.02 * (_plan.Index % 10))));

    /// <returns>True when shutting down.</returns>
    private async Task<bool> ReconnectDelayAsync(Connection failed, string reason, CancellationToken stopReading)
    {
        // bookTicker ids are not contiguous: the window until the first frame after reconnecting is a gap.
        _router.Interrupted(_bookTickerSymbols);
        var lived = failed.Age(_time);
        if (lived >= TimeSpan.FromSeconds(_options.StableConnectionSeconds))
        {
            _backoff.Reset();
        }

        var delay = _backoff.Next();
        _stats.OnReconnect();
        Log.ConnectionLost(_log, _plan.Name, lived.TotalSeconds, reason, (long)delay.TotalMilliseconds);
        SetState(ConnectionState.Backoff);
        try
        {
            await Task.Delay(delay, _time, stopReading).ConfigureAwait(false);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    private Connection Start(CancellationToken stopReading, CancellationToken abort)
    {
        var connection = new Connection(_time.GetTimestamp());
        lock (_streamsGate)
        {
            // Under the lock: a reload either lands in this initial subscription or is queued after it.
            connection.LastSubscribeId = EnqueueControl(connection, _streams, subscribe: true);
            connection.Acknowledged = _streams.Count == 0;
            _live.Add(connection);
        }

        connection.Run = Task.Run(() => RunGuardedAsync(connection, stopReading, abort), CancellationToken.None);
        return connection;
    }

    /// <summary>Runs one connection to its end and says why it ended; connection faults are results, not exceptions.</summary>
    private async Task<string> RunGuardedAsync(Connection connection, CancellationToken stopReading, CancellationToken abort)
    {
        try
        {
            return await RunAndDescribeAsync(connection, stopReading, abort).ConfigureAwait(false);
        }
        finally
        {
            lock (_streamsGate)
            {
                _live.Remove(connection);
            }
        }
    }

    private async Task<string> RunAndDescribeAsync(Connection connection, CancellationToken stopReading, CancellationToken abort)
    {
        try
        {
            await RunConnectionAsync(connection, stopReading, abort).ConfigureAwait(false);
            return "closed";
        }
        catch (OperationCanceledException) when (stopReading.IsCancellationRequested || connection.Retired)
        {
            return "stopped";
        }
        catch (OperationCanceledException)
        {
            return $"no data for {_options.NoDataTimeoutSeconds}s (half-open connection)";
        }
        catch (Exception ex) when (ex is WebSocketException or HttpRequestException or IOException or SocketException
                                       or TimeoutException or ServerClosedException)
        {
            return ex.Message;
        }
    }

    /// <summary>One WebSocket connection's lifecycle, as the supervisor sees it.</summary>
    private sealed class Connection(long startedTimestamp) : IDisposable
    {
        private readonly CancellationTokenSource _retire = new();

        public Task<string> Run { get; set; } = Task.FromResult("not started");

        /// <summary>Completes once every SUBSCRIBE is acknowledged and the first data frame has arrived.</summary>
        public TaskCompletionSource Streaming { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CancellationToken RetireToken => _retire.Token;

        public bool Retired => _retire.IsCancellationRequested;

        public long LastSubscribeId;

        public bool Acknowledged;

        /// <summary>SUBSCRIBE/UNSUBSCRIBE messages waiting to be sent, paced, in order.</summary>
        public System.Threading.Channels.Channel<byte[]> Control { get; } = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();

        public TimeSpan Age(TimeProvider time) => time.GetElapsedTime(startedTimestamp);

        public void Retire() => _retire.Cancel();

        public void Dispose() => _retire.Dispose();
    }

    private async Task RunConnectionAsync(Connection connection, CancellationToken stopReading, CancellationToken abort)
    {
        var noData = TimeSpan.FromSeconds(_options.NoDataTimeoutSeconds);
        using var ws = new ClientWebSocket();
        // Unsolicited pongs keep NATs and the exchange's idle timers happy; Binance allows them. Pings from
        // the server are answered by the WebSocket implementation itself.
        ws.Options.KeepAliveInterval = TimeSpan.FromSeconds(30);
        using var watchdog = new CancellationTokenSource(noData, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopReading, watchdog.Token, connection.RetireToken);
        var token = linked.Token;

        var uri = BinanceProtocol.CombinedStreamUri(_options.WsUrl, _plan.Route);
        SetState(ConnectionState.Connecting);
        Log.Connecting(_log, _plan.Name, uri, _plan.Streams.Count);
        await ws.ConnectAsync(uri, token).ConfigureAwait(false);
        SetState(ConnectionState.Subscribing);
        watchdog.CancelAfter(noData);

        // Sending SUBSCRIBEs runs beside receiving: acknowledgements and data arrive while we still subscribe.
        var subscribing = SendControlAsync(ws, connection, token);
        if (connection.Acknowledged)
        {
            SetState(ConnectionState.Streaming);
        }
        var buffer = ArrayPool<byte>.Shared.Rent(InitialBufferBytes);
        try
        {
            // One long-lived loop per connection: its state machine is allocated once, not per frame.
            while (true)
            {
                var filled = 0;
                var oversize = false;
                ValueWebSocketReceiveResult result;
                while (true)
                {
                    if (filled == buffer.Length)
                    {
                        if (buffer.Length >= _options.MaxFrameBytes)
                        {
                            // Read on to the end of the message, overwriting: it is rejected whole.
                            oversize = true;
                            filled = 0;
                        }
                        else
                        {
                            PooledArrays.Grow(ref buffer, Math.Min(buffer.Length * 2, _options.MaxFrameBytes), filled);
                        }
                    }

                    result = await ws.ReceiveAsync(buffer.AsMemory(filled), token).ConfigureAwait(false);
                    filled += result.Count;
                    if (result.EndOfMessage || result.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }
                }

                watchdog.CancelAfter(noData);
                var now = _time.GetUtcNow();
                _stats.OnMessage(filled, now.ToUnixTimeMilliseconds());
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    throw new ServerClosedException(ws.CloseStatus, ws.CloseStatusDescription);
                }

                if (oversize)
                {
                    Reject(RejectReason.Oversize, buffer.AsSpan(0, Math.Min(filled, 256)));
                }
                else if (result.MessageType == WebSocketMessageType.Binary)
                {
                    Reject(RejectReason.BinaryFrame, default);
                }
                else if (await DispatchAsync(connection, buffer, filled, ToUnixMicros(now), abort).ConfigureAwait(false) && connection.Acknowledged)
                {
                    connection.Streaming.TrySetResult();
                }
            }
        }
        catch (OperationCanceledException) when (connection.Retired && !stopReading.IsCancellationRequested)
        {
            // Planned rotation: say goodbye properly, briefly; the replacement is already streaming.
            using var bye = new CancellationTokenSource(TimeSpan.FromSeconds(2), _time);
            try
            {
                await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "rotating", bye.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
            {
                // the old connection is being dropped either way
            }

            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            // The control sender reads its queue until the queue ends: end it, or this connection never finishes.
            connection.Control.Writer.TryComplete();
            await ObserveAsync(subscribing).ConfigureAwait(false);
        }
    }

    /// <returns>True when the frame was market data (not a control reply or a rejected frame).</returns>
    private async ValueTask<bool> DispatchAsync(Connection connection, byte[] buffer, int length, long ingestUs, CancellationToken abort)
    {
        switch (_parser.Parse(buffer.AsSpan(0, length), ingestUs, out var frame))
        {
            case FrameKind.BookTicker:
                await _router.RouteBookTickerAsync(frame.BookTicker, abort).ConfigureAwait(false);
                return true;
            case FrameKind.Trade:
                await _router.RouteTradeAsync(frame.Trade, abort).ConfigureAwait(false);
                return true;
            case FrameKind.Depth:
                await _router.RouteDepthAsync(frame.Depth, abort).ConfigureAwait(false);
                return true;
            case FrameKind.ControlResult:
                if (frame.ControlId == Interlocked.Read(ref connection.LastSubscribeId))
                {
                    connection.Acknowledged = true;
                    SetState(ConnectionState.Streaming);
                    Log.Subscribed(_log, _plan.Name, _plan.Streams.Count);
                }

                return false;
            case FrameKind.ControlError:
                Log.ControlRefused(_log, _plan.Name, frame.ControlId, Preview(buffer.AsSpan(0, length)));
                return false;
            default:
                Reject(frame.Reason, buffer.AsSpan(0, length));
                return false;
        }
    }

    /// <summary>Sends the connection's control messages in order, no faster than SubscribeMessagesPerSecond
    /// (Binance closes a connection that sends more than 10 messages a second).</summary>
    private async Task SendControlAsync(ClientWebSocket ws, Connection connection, CancellationToken token)
    {
        var spacing = TimeSpan.FromSeconds(1.0 / _options.SubscribeMessagesPerSecond);
        var first = true;
        await foreach (var message in connection.Control.Reader.ReadAllAsync(token).ConfigureAwait(false))
        {
            if (!first)
            {
                await Task.Delay(spacing, _time, token).ConfigureAwait(false);
            }

            first = false;
            await ws.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, token).ConfigureAwait(false);
        }
    }

    private static async Task ObserveAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or ObjectDisposedException or IOException)
        {
            // The connection is already being torn down; the receive side reports why.
        }
    }

    private void Reject(RejectReason reason, ReadOnlySpan<byte> frame)
    {
        _metrics.Reject(reason);
        if (_rejectLog.TryEnter(out var suppressed))
        {
            Log.FrameRejected(_log, _plan.Name, reason.Label(), suppressed, Preview(frame));
        }
    }

    private static string Preview(ReadOnlySpan<byte> frame)
    {
        var slice = frame[..Math.Min(frame.Length, 200)];
        var text = Encoding.UTF8.GetString(slice);
        // Control characters from a hostile frame must not forge log lines.
        return string.Create(text.Length, text, static (dst, src) =>
        {
            for (var i = 0; i < src.Length; i++)
            {
                dst[i] = char.IsControl(src[i]) ? '?' : src[i];
            }
        }) + (frame.Length > 200 ? "…" : "");
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

/// <summary>The exchange closed the connection (for instance its 24-hour limit).</summary>
public sealed class ServerClosedException : Exception
{
    public ServerClosedException(WebSocketCloseStatus? status, string? description)
        : base($"server closed the connection ({status?.ToString() ?? "no status"}{(string.IsNullOrEmpty(description) ? "" : ": " + description)})")
    {
    }

    public ServerClosedException() { }

    public ServerClosedException(string message) : base(message) { }

    public ServerClosedException(string message, Exception inner) : base(message, inner) { }
}
