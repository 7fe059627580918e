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
    private readonly IReadOnlyList<int> _bookTickerSymbols;
    private readonly ShardStats _stats;
    private readonly IngestorMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Backoff _backoff;
    private readonly LogLimiter _rejectLog;
    private long _nextControlId = 1;
    private long _lastSubscribeId;

    public ShardReader(ShardPlan plan, IngestorOptions options, FrameParser parser, EventRouter router,
        ShardStats stats, IngestorMetrics metrics, TimeProvider time, ILogger log, Random random)
    {
        _plan = plan;
        _options = options;
        _parser = parser;
        _router = router;
        _bookTickerSymbols = router.BookTickerSymbols(plan.Streams);
        _stats = stats;
        _metrics = metrics;
        _time = time;
        _log = log;
        _backoff = new Backoff(TimeSpan.FromMilliseconds(options.ReconnectMinDelayMs), TimeSpan.FromMilliseconds(options.ReconnectMaxDelayMs), random);
        _rejectLog = new LogLimiter(time, TimeSpan.FromSeconds(5));
    }

    public ShardPlan Plan => _plan;

    /// <param name="stopReading">Cancelled at shutdown: stop receiving.</param>
    /// <param name="abort">Cancelled only at the drain deadline: give up handing an already received event to a full buffer.</param>
    public async Task RunAsync(CancellationToken stopReading, CancellationToken abort)
    {
        while (!stopReading.IsCancellationRequested)
        {
            var started = _time.GetTimestamp();
            string reason;
            try
            {
                await RunConnectionAsync(stopReading, abort).ConfigureAwait(false);
                reason = "closed";
            }
            catch (OperationCanceledException) when (stopReading.IsCancellationRequested)
            {
                break;
            }
            catch (OperationCanceledException)
            {
                reason = $"no data for {_options.NoDataTimeoutSeconds}s (half-open connection)";
            }
            catch (Exception ex) when (ex is WebSocketException or HttpRequestException or IOException or SocketException
                                           or TimeoutException or ServerClosedException)
            {
                reason = ex.Message;
            }

            // bookTicker ids are not contiguous: the window until the first frame after reconnecting is a gap.
            _router.Interrupted(_bookTickerSymbols);
            var lived = _time.GetElapsedTime(started);
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
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        SetState(ConnectionState.Stopped);
    }

    private async Task RunConnectionAsync(CancellationToken stopReading, CancellationToken abort)
    {
        var noData = TimeSpan.FromSeconds(_options.NoDataTimeoutSeconds);
        using var ws = new ClientWebSocket();
        // Unsolicited pongs keep NATs and the exchange's idle timers happy; Binance allows them. Pings from
        // the server are answered by the WebSocket implementation itself.
        ws.Options.KeepAliveInterval = TimeSpan.FromSeconds(30);
        using var watchdog = new CancellationTokenSource(noData, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopReading, watchdog.Token);
        var token = linked.Token;

        var uri = BinanceProtocol.CombinedStreamUri(_options.WsUrl, _plan.Route);
        SetState(ConnectionState.Connecting);
        Log.Connecting(_log, _plan.Name, uri, _plan.Streams.Count);
        await ws.ConnectAsync(uri, token).ConfigureAwait(false);
        SetState(ConnectionState.Subscribing);
        watchdog.CancelAfter(noData);

        // Sending SUBSCRIBEs runs beside receiving: acknowledgements and data arrive while we still subscribe.
        var subscribing = SubscribeAsync(ws, token);
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
                else
                {
                    await DispatchAsync(buffer, filled, ToUnixMicros(now), abort).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            await ObserveAsync(subscribing).ConfigureAwait(false);
        }
    }

    private ValueTask DispatchAsync(byte[] buffer, int length, long ingestUs, CancellationToken abort)
    {
        switch (_parser.Parse(buffer.AsSpan(0, length), ingestUs, out var frame))
        {
            case FrameKind.BookTicker:
                return _router.RouteBookTickerAsync(frame.BookTicker, abort);
            case FrameKind.Trade:
                return _router.RouteTradeAsync(frame.Trade, abort);
            case FrameKind.Depth:
                return _router.RouteDepthAsync(frame.Depth, abort);
            case FrameKind.ControlResult:
                if (frame.ControlId == Interlocked.Read(ref _lastSubscribeId))
                {
                    SetState(ConnectionState.Streaming);
                    Log.Subscribed(_log, _plan.Name, _plan.Streams.Count);
                }

                return ValueTask.CompletedTask;
            case FrameKind.ControlError:
                Log.ControlRefused(_log, _plan.Name, frame.ControlId, Preview(buffer.AsSpan(0, length)));
                return ValueTask.CompletedTask;
            default:
                Reject(frame.Reason, buffer.AsSpan(0, length));
                return ValueTask.CompletedTask;
        }
    }

    private async Task SubscribeAsync(ClientWebSocket ws, CancellationToken token)
    {
        // Binance closes a connection that sends more than 10 messages a second; stay well under.
        var spacing = TimeSpan.FromSeconds(1.0 / _options.SubscribeMessagesPerSecond);
        var chunks = _plan.Streams.Chunk(_options.StreamsPerSubscribe).ToList();
        for (var i = 0; i < chunks.Count; i++)
        {
            if (i > 0)
            {
                await Task.Delay(spacing, _time, token).ConfigureAwait(false);
            }

            var id = Interlocked.Increment(ref _nextControlId);
            if (i == chunks.Count - 1)
            {
                Interlocked.Exchange(ref _lastSubscribeId, id);
            }

            var message = BinanceProtocol.Subscribe(chunks[i], id);
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
