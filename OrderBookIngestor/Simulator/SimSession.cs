using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// One client's WebSocket session on the fake exchange: accept with the streams in the URL, then a send loop
/// draining the connection's queue and a receive loop answering control messages, at most 10 a second (the
/// exchange closes clients that send more), and, when configured, the exchange's connection lifetime.
/// </summary>
internal sealed class SimSession
{
    private const int MaxIncomingPerSecond = 10;

    private readonly SimulatorOptions _options;
    private readonly SimSubscribers _subscribers;
    private readonly SimControlProtocol _control;
    private readonly SimLedger _ledger;
    private readonly TimeProvider _time;
    private int _nextConnectionId;

    public SimSession(SimulatorOptions options, SimSubscribers subscribers, SimControlProtocol control, SimLedger ledger, TimeProvider time)
    {
        _options = options;
        _subscribers = subscribers;
        _control = control;
        _ledger = ledger;
        _time = time;
    }

    /// <summary>Fires after every connect and SUBSCRIBE (the generator waits for enough subscribed streams).</summary>
    public event Action? Subscribed;

    public async Task AcceptAsync(HttpContext ctx, Exchange.BinanceRoute route, bool combined, string? rawStream, CancellationToken stop)
    {
        if (!ctx.WebSockets.IsWebSocketRequest)
        {
            ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        using var socket = await ctx.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        var transport = (ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>() as SimBatchingUpgradeFeature)?.Stream;
        var connection = new SimConnection(Interlocked.Increment(ref _nextConnectionId), socket, route, combined, _options.MaxQueuedFrames);
        var initial = rawStream is not null ? [rawStream] : (ctx.Request.Query["streams"].ToString() ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries);
        _subscribers.Subscribe(connection, initial);
        _subscribers.Add(connection);
        Subscribed?.Invoke();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stop);
        if (_options.MaxConnectionLifetimeSeconds > 0)
        {
            _ = CloseAfterAsync(connection, TimeSpan.FromSeconds(_options.MaxConnectionLifetimeSeconds), linked.Token);
        }

        var sender = Task.Run(() => SendLoopAsync(connection, transport, linked.Token), CancellationToken.None);
        try
        {
            await ReceiveLoopAsync(connection, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or Microsoft.AspNetCore.Connections.ConnectionAbortedException)
        {
            // client went away
        }
        finally
        {
            _subscribers.Remove(connection);
            connection.CompleteOutbound();
            await linked.CancelAsync().ConfigureAwait(false);
            try
            {
                await sender.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                // the socket is gone
            }
        }
    }

    /// <summary>The exchange's connection lifetime: a close frame, then the socket is gone.</summary>
    private async Task CloseAfterAsync(SimConnection c, TimeSpan lifetime, CancellationToken ct)
    {
        try
        {
            await Task.Delay(lifetime, _time, ct).ConfigureAwait(false);
            // Stop delivering first: frames queued after the close would be lost, as on the real exchange.
            _subscribers.Remove(c);
            await c.SendLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await c.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "connection lifetime reached", ct).ConfigureAwait(false);
            }
            finally
            {
                c.SendLock.Release();
            }

            await Task.Delay(TimeSpan.FromSeconds(1), _time, ct).ConfigureAwait(false);
            c.Socket.Abort();
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or ObjectDisposedException or IOException)
        {
            // the client left first
        }
    }

    /// <summary>Sends what is queued, in batches of up to 256 frames that reach the transport as one write. With the
    /// batching transport the frames' encoded bytes are written to it directly (they were encoded once for every
    /// client), between the socket's own writes; without it, each goes through SendAsync.</summary>
    private async Task SendLoopAsync(SimConnection c, SimBatchingStream? transport, CancellationToken ct)
    {
        var sent = new List<SimEvent>(256);
        while (await c.Outbound.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            await c.SendLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                // After our close frame (connection lifetime) nothing more may follow it on the wire.
                if (c.Socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
                {
                    return;
                }

                transport?.BeginBatch();
                try
                {
                    while (sent.Count < 256 && c.Outbound.TryRead(out var frame))
                    {
                        if (transport is not null)
                        {
                            await transport.WriteAsync(frame.Bytes, ct).ConfigureAwait(false);
                        }
                        else
                        {
                            await c.Socket.SendAsync(frame.Payload, frame.Binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
                        }

                        if (frame.Event is not null)
                        {
                            sent.Add(frame.Event);
                        }
                    }
                }
                finally
                {
                    if (transport is not null)
                    {
                        await transport.EndBatchAsync(ct).ConfigureAwait(false);
                    }
                }
            }
            finally
            {
                c.SendLock.Release();
            }

            // Delivered once written to the transport, as before batching.
            _ledger.OnDelivered(sent);

            sent.Clear();
        }
    }

    private async Task ReceiveLoopAsync(SimConnection c, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        var windowStart = _time.GetTimestamp();
        var inWindow = 0;
        while (c.Socket.State == WebSocketState.Open)
        {
            var filled = 0;
            ValueWebSocketReceiveResult r;
            do
            {
                if (filled == buffer.Length)
                {
                    await c.Socket.CloseAsync(WebSocketCloseStatus.MessageTooBig, "message too big", ct).ConfigureAwait(false);
                    return;
                }

                r = await c.Socket.ReceiveAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
                filled += r.Count;
            }
            while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);

            if (r.MessageType == WebSocketMessageType.Close)
            {
                await c.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, ct).ConfigureAwait(false);
                return;
            }

            if (_time.GetElapsedTime(windowStart) >= TimeSpan.FromSeconds(1))
            {
                windowStart = _time.GetTimestamp();
                inWindow = 0;
            }

            if (++inWindow > MaxIncomingPerSecond)
            {
                // The exchange disconnects clients that send more than 10 messages a second.
                await c.Socket.CloseAsync(WebSocketCloseStatus.PolicyViolation, "Too many requests", ct).ConfigureAwait(false);
                return;
            }

            var reply = _control.Handle(c, buffer.AsMemory(0, filled));
            Subscribed?.Invoke();
            await c.SendLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await c.Socket.SendAsync(reply, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
            }
            finally
            {
                c.SendLock.Release();
            }
        }
    }
}
