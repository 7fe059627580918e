using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Feeds;

/// <summary>
/// One combined-stream WebSocket connection of a shard, from connect to close: paced SUBSCRIBE/UNSUBSCRIBE
/// messages, the receive loop parsing frames in place and handing typed events on, the no-data watchdog and a
/// polite close when retired by a rotation. Its phase only moves forward (Opening → Subscribing → Streaming →
/// Closed, or straight to Closed); an illegal move throws from <see cref="MoveTo"/>, a programming error.
/// The shard's own state is derived from its connections by the ShardReader that supervises them.
/// </summary>
internal sealed class ShardConnection : IDisposable
{
    private const int InitialBufferBytes = 64 * 1024;
    private static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(30);

    private readonly ShardReader _shard;
    private readonly long _startedTimestamp;
    private readonly CancellationTokenSource _retire = new();
    private int _phase;
    private long _lastReceivedUnixMs;
    private ExchangeSocket? _socket;
    private ReadCoalescer? _coalescer;
    private TaskCompletionSource? _readDone;

    public ShardConnection(ShardReader shard, long startedTimestamp)
    {
        _shard = shard;
        _startedTimestamp = startedTimestamp;
    }

    public enum ConnectionPhase
    {
        Opening,
        Subscribing,
        Streaming,
        Closed,
    }

    public ConnectionPhase Phase => (ConnectionPhase)Volatile.Read(ref _phase);

    public Task<string> Run { get; set; } = Task.FromResult("not started");

    /// <summary>Completes once every SUBSCRIBE is acknowledged and the first data frame has arrived.</summary>
    public TaskCompletionSource Streaming { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool Retired => _retire.IsCancellationRequested;

    public long LastSubscribeId;

    public bool Acknowledged;

    /// <summary>SUBSCRIBE/UNSUBSCRIBE messages waiting to be sent, paced, in order.</summary>
    public System.Threading.Channels.Channel<byte[]> Control { get; } = System.Threading.Channels.Channel.CreateUnbounded<byte[]>();

    public TimeSpan Age(TimeProvider time) => time.GetElapsedTime(_startedTimestamp);

    /// <summary>Local time (Unix ms) this connection last received anything, or was opened; 0 if it never opened. A
    /// hole dated by the connection starts here, not when the loss was noticed (up to NoDataTimeoutSeconds later).</summary>
    public long LastReceivedUnixMs => Volatile.Read(ref _lastReceivedUnixMs);

    public void Retire() => _retire.Cancel();

    private async Task StopAfterDrainAsync(CancellationTokenSource stopNow)
    {
        try
        {
            await DrainReadsAsync(TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                await stopNow.CancelAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                // the connection ended meanwhile
            }
        }
    }

    /// <summary>
    /// Before a retire or a stop: stops holding bytes back (<see cref="ReadCoalescer"/>) and waits until the reader has taken and
    /// handled everything the kernel held, or <paramref name="max"/>. Bytes held below the mark may be older than the
    /// replacement's first frame; retired unread, they were lost (the rotation test lost 8 to 41 of 16,000 rows).
    /// </summary>
    public async Task DrainReadsAsync(TimeSpan max)
    {
        if (Volatile.Read(ref _socket) is not { } ws || Volatile.Read(ref _coalescer) is not { } coalescer)
        {
            return;
        }

        coalescer.Stop();
        using var deadline = new CancellationTokenSource(max, _shard.Time);
        while (ws.Available > 0)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _readDone, done);
            if (ws.Available == 0)
            {
                return;
            }

            try
            {
                await done.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public void Dispose() => _retire.Dispose();

    /// <summary>Moves the phase forward. Every legal move is listed here; anything else is a bug and throws.</summary>
    internal void MoveTo(ConnectionPhase to)
    {
        var from = Phase;
        var legal = (from, to) switch
        {
            (ConnectionPhase.Opening, ConnectionPhase.Subscribing) => true,
            (ConnectionPhase.Subscribing, ConnectionPhase.Streaming) => true,
            (not ConnectionPhase.Closed, ConnectionPhase.Closed) => true,
            _ => false,
        };
        if (!legal || Interlocked.CompareExchange(ref _phase, (int)to, (int)from) != (int)from)
        {
            throw new InvalidOperationException($"connection of {_shard.Plan.Name}: illegal move {from} -> {to}");
        }

        _shard.OnConnectionPhaseChanged();
    }

    /// <summary>Runs to the end and says why it ended; connection faults are results, not exceptions.</summary>
    public async Task<string> RunAsync(CancellationToken stopReading, CancellationToken abort)
    {
        try
        {
            return await RunAndDescribeAsync(stopReading, abort).ConfigureAwait(false);
        }
        finally
        {
            MoveTo(ConnectionPhase.Closed);
        }
    }

    private async Task<string> RunAndDescribeAsync(CancellationToken stopReading, CancellationToken abort)
    {
        try
        {
            await ReceiveAsync(stopReading, abort).ConfigureAwait(false);
            return "closed";
        }
        catch (OperationCanceledException) when (stopReading.IsCancellationRequested || Retired)
        {
            return "stopped";
        }
        catch (OperationCanceledException)
        {
            return $"no data for {_shard.Options.NoDataTimeoutSeconds}s (half-open connection)";
        }
        catch (Exception ex) when (ex is WebSocketException or HttpRequestException or IOException or SocketException
                                       or TimeoutException or ServerClosedException)
        {
            return ex.Message;
        }
    }

    private async Task ReceiveAsync(CancellationToken stopReading, CancellationToken abort)
    {
        var noData = TimeSpan.FromSeconds(_shard.Options.NoDataTimeoutSeconds);
        using var watchdog = new NoDataWatchdog(_shard.Time, noData);
        // At shutdown the reader first takes what the kernel holds below the mark (ReadCoalescer), then stops: those
        // bytes came before the stop, and the next run's holes start at this run's end.
        using var stopNow = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopNow.Token, watchdog.Token, _retire.Token);
        using var onStop = stopReading.Register(() => _ = StopAfterDrainAsync(stopNow));
        var token = linked.Token;

        var uri = BinanceProtocol.CombinedStreamUri(_shard.Options.WsUrl, _shard.Plan.Route);
        Log.Connecting(_shard.Logger, _shard.Plan.Name, uri, _shard.StreamCount);
        var ws = await ExchangeSocket.ConnectAsync(uri, InitialBufferBytes, _shard.Options.MaxFrameBytes, token).ConfigureAwait(false);
        await using var disposeSocket = ws.ConfigureAwait(false);
        // A quarter of a batch per wake-up at most: rows wait for their batch anyway.
        using var coalescer = new ReadCoalescer(bytes =>
        {
            var held = ws.TrySetReceiveLowWater(bytes);
            _shard.Stats.ReceiveLowWater = held > 0 ? held : ReadCoalescer.Off;
            return held;
        }, _shard.Time, TimeSpan.FromMilliseconds(_shard.Options.ReadCoalesceMs), _shard.Options.BatchTargetRows / 4);
        Volatile.Write(ref _socket, ws);
        Volatile.Write(ref _coalescer, coalescer);
        MoveTo(ConnectionPhase.Subscribing);
        watchdog.Seen();
        Volatile.Write(ref _lastReceivedUnixMs, _shard.Time.GetUtcNow().ToUnixTimeMilliseconds());

        // Sending SUBSCRIBEs runs beside receiving: acknowledgements and data arrive while we still subscribe.
        var subscribing = SendControlAsync(ws, token);
        var keepingAlive = KeepAliveAsync(ws, token);
        if (Acknowledged)
        {
            MoveTo(ConnectionPhase.Streaming);
        }

        try
        {
            // One long-lived loop per connection; each read hands on every message it brought, in place.
            while (true)
            {
                if (!await ws.ReceiveAsync(token).ConfigureAwait(false))
                {
                    throw new ServerClosedException("the server ended the connection without a close frame");
                }

                watchdog.Seen();
                var now = _shard.Time.GetUtcNow();
                var nowMs = now.ToUnixTimeMilliseconds();
                Volatile.Write(ref _lastReceivedUnixMs, nowMs);
                var ingestUs = ShardReader.ToUnixMicros(now);
                var (readBytes, readMessages) = (0, 0);
                while (ws.Reader.TryNext(out var message))
                {
                    readBytes += message.WireBytes;
                    readMessages++;
                    switch (message.Kind)
                    {
                        case WebSocketMessageKind.Text:
                            _shard.Stats.OnMessage(message.WireBytes, nowMs);
                            if (await DispatchAsync(message.Buffer, message.Offset, message.Length, ingestUs, abort).ConfigureAwait(false) && Acknowledged)
                            {
                                Streaming.TrySetResult();
                            }

                            break;
                        case WebSocketMessageKind.Binary:
                            _shard.Stats.OnMessage(message.WireBytes, nowMs);
                            Reject(RejectReason.BinaryFrame, default);
                            break;
                        case WebSocketMessageKind.Oversize:
                            _shard.Stats.OnMessage(message.WireBytes, nowMs);
                            Reject(RejectReason.Oversize, message.Payload);
                            break;
                        case WebSocketMessageKind.Ping:
                            await ws.SendPongAsync(message.Payload, token).ConfigureAwait(false);
                            break;
                        case WebSocketMessageKind.Close:
                            var (status, reason) = WebSocketMessageReader.ParseClose(message.Payload);
                            throw new ServerClosedException(status, reason);
                    }
                }

                coalescer.OnRead(readBytes, readMessages);
                Interlocked.Exchange(ref _readDone, null)?.TrySetResult();
            }
        }
        catch (OperationCanceledException) when (Retired && !stopReading.IsCancellationRequested)
        {
            // Planned rotation: say goodbye properly, briefly; the replacement is already streaming.
            using var bye = new CancellationTokenSource(TimeSpan.FromSeconds(2), _shard.Time);
            try
            {
                await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "rotating", bye.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                // the old connection is being dropped either way
            }

            throw;
        }
        finally
        {
            // The control sender reads its queue until the queue ends: end it, or this connection never finishes.
            Control.Writer.TryComplete();
            linked.Cancel();
            // The mark went with the socket; a replacement measures its own.
            Volatile.Write(ref _coalescer, null);
            Volatile.Write(ref _socket, null);
            _shard.Stats.ReceiveLowWater = ReadCoalescer.Off;
            await ObserveAsync(subscribing).ConfigureAwait(false);
            await ObserveAsync(keepingAlive).ConfigureAwait(false);
        }
    }

    /// <returns>True when the frame was market data (not a control reply or a rejected frame).</returns>
    private async ValueTask<bool> DispatchAsync(byte[] buffer, int offset, int length, long ingestUs, CancellationToken abort)
    {
        switch (_shard.Parser.Parse(buffer.AsSpan(offset, length), ingestUs, out var frame))
        {
            case FrameKind.BookTicker:
                await _shard.Router.RouteBookTickerAsync(frame.BookTicker, abort).ConfigureAwait(false);
                return true;
            case FrameKind.Trade:
                await _shard.Router.RouteTradeAsync(frame.Trade, abort).ConfigureAwait(false);
                return true;
            case FrameKind.Depth:
                await _shard.Router.RouteDepthAsync(frame.Depth, abort).ConfigureAwait(false);
                return true;
            case FrameKind.MarkPrice:
                await _shard.Router.RouteMarkPriceAsync(frame.MarkPrice, abort).ConfigureAwait(false);
                return true;
            case FrameKind.Liquidation:
                await _shard.Router.RouteLiquidationAsync(frame.Liquidation, abort).ConfigureAwait(false);
                return true;
            case FrameKind.ControlResult:
                // A repeated reply (a hostile or confused server) changes nothing: the phase moves once.
                if (frame.ControlId == Interlocked.Read(ref LastSubscribeId) && Phase == ConnectionPhase.Subscribing)
                {
                    Acknowledged = true;
                    MoveTo(ConnectionPhase.Streaming);
                    _shard.Router.Resubscribed(_shard.InterruptibleStreams);
                    Log.Subscribed(_shard.Logger, _shard.Plan.Name, _shard.StreamCount);
                }

                return false;
            case FrameKind.ControlError:
                Log.ControlRefused(_shard.Logger, _shard.Plan.Name, frame.ControlId, Preview(buffer.AsSpan(offset, length)));
                return false;
            default:
                Reject(frame.Reason, buffer.AsSpan(offset, length));
                return false;
        }
    }

    /// <summary>Sends the connection's control messages in order, no faster than SubscribeMessagesPerSecond
    /// (Binance closes a connection that sends more than 10 messages a second).</summary>
    private async Task SendControlAsync(ExchangeSocket ws, CancellationToken token)
    {
        var spacing = TimeSpan.FromSeconds(1.0 / _shard.Options.SubscribeMessagesPerSecond);
        var first = true;
        await foreach (var message in Control.Reader.ReadAllAsync(token).ConfigureAwait(false))
        {
            if (!first)
            {
                await Task.Delay(spacing, _shard.Time, token).ConfigureAwait(false);
            }

            first = false;
            await ws.SendTextAsync(message, token).ConfigureAwait(false);
        }
    }

    /// <summary>An unsolicited pong every 30 s keeps NATs and the exchange's idle timers happy; Binance allows them.
    /// The server's own pings are answered by the receive loop.</summary>
    private async Task KeepAliveAsync(ExchangeSocket ws, CancellationToken token)
    {
        while (true)
        {
            await Task.Delay(KeepAliveInterval, _shard.Time, token).ConfigureAwait(false);
            await ws.SendPongAsync(default, token).ConfigureAwait(false);
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
        _shard.Metrics.Reject(reason);
        if (_shard.RejectLog.TryEnter(out var suppressed))
        {
            Log.FrameRejected(_shard.Logger, _shard.Plan.Name, reason.Label(), suppressed, Preview(frame));
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
