using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// A Binance USD-M compatible fake exchange: /public and /market routes (raw /ws/&lt;stream&gt; and combined
/// /stream?streams=), SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS with the exchange's replies, the 10
/// messages/s incoming limit, wrong-route silence, and REST exchangeInfo. /sim/ledger reports what was sent.
/// </summary>
public sealed class SimulatorServer : IAsyncDisposable
{
    private const int MaxIncomingPerSecond = 10;

    private readonly SimulatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly SimulatedMarket _market;
    private readonly List<SimConnection> _connections = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebApplication? _app;
    private Task? _generator;
    private int _nextConnectionId;

    public SimulatorServer(SimulatorOptions options, TimeProvider time, ILoggerFactory loggers)
    {
        _options = options;
        _time = time;
        _log = loggers.CreateLogger("OrderBookIngestor.Simulator");
        _market = new SimulatedMarket(SymbolUniverse.Create(options.Symbols), options.Seed, time, options.TradeHistory);
        Ledger = new SimLedger(options.RecordEvents);
    }

    public SimLedger Ledger { get; }

    /// <summary>The exchange's own book for a symbol (tests compare it with the book rebuilt from the database).</summary>
    public SimBook? Book(string symbol) => _market.Book(symbol);

    public Uri BaseUri { get; private set; } = new("http://127.0.0.1/");

    public string WsUrl => $"ws://{BaseUri.Authority}";

    public string RestUrl => $"http://{BaseUri.Authority}";

    /// <summary>Completes when the generator has produced Events events (never when Events is 0).</summary>
    public Task Finished => _generator ?? Task.CompletedTask;

    public IReadOnlyList<SimConnection> Connections
    {
        get
        {
            lock (_gate)
            {
                return [.. _connections];
            }
        }
    }

    public async Task StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Parse(_options.Host), _options.Port));
        _app = builder.Build();
        // Binance pings every 3 minutes; with a timeout set, the server sends real pings and expects pongs.
        _app.UseWebSockets(new WebSocketOptions
        {
            KeepAliveInterval = _options.PingIntervalMs > 0 ? TimeSpan.FromMilliseconds(_options.PingIntervalMs) : TimeSpan.FromMinutes(3),
            KeepAliveTimeout = TimeSpan.FromMinutes(10),
        });
        _app.Use(async (ctx, next) =>
        {
            if (ctx.Request.Path.StartsWithSegments("/fapi", StringComparison.Ordinal))
            {
                if (_options.RestDelayMs > 0)
                {
                    await Task.Delay(_options.RestDelayMs, ctx.RequestAborted).ConfigureAwait(false);
                }

                if (!ctx.Request.Path.StartsWithSegments("/fapi/v1/exchangeInfo", StringComparison.Ordinal) && TakeRestFault() is { } fault)
                {
                    ctx.Response.StatusCode = fault.Status;
                    ctx.Response.Headers.RetryAfter = fault.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    await Json(ctx, $"{{\"code\":-1003,\"msg\":\"Way too many requests\"}}").ConfigureAwait(false);
                    return;
                }
            }

            await next(ctx).ConfigureAwait(false);
        });
        _app.MapGet("/fapi/v1/ping", ctx => Json(ctx, "{}"));
        _app.MapGet("/fapi/v1/time", ctx => Json(ctx, $"{{\"serverTime\":{_time.GetUtcNow().ToUnixTimeMilliseconds()}}}"));
        _app.MapGet("/fapi/v1/exchangeInfo", ExchangeInfo);
        _app.MapGet("/fapi/v1/aggTrades", AggTrades);
        _app.MapGet("/fapi/v1/depth", ctx =>
        {
            var book = _market.Book(ctx.Request.Query["symbol"].ToString());
            if (book is null)
            {
                ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
                return Json(ctx, "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}");
            }

            var limit = int.TryParse(ctx.Request.Query["limit"].ToString(), out var l) ? Math.Clamp(l, 5, 1000) : 500;
            ctx.Response.Headers["X-MBX-USED-WEIGHT-1M"] = Exchange.BinanceRestClient.DepthWeight(limit).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Json(ctx, book.SnapshotJson(limit, _time.GetUtcNow().ToUnixTimeMilliseconds()));
        });
        _app.MapGet("/sim/ledger", async ctx =>
        {
            ctx.Response.ContentType = "application/json";
            await using var w = new Utf8JsonWriter(ctx.Response.Body);
            Ledger.WriteJson(w);
        });
        foreach (var route in new[] { BinanceRoute.Public, BinanceRoute.Market })
        {
            var r = route;
            _app.Map($"/{r.PathSegment()}/stream", ctx => AcceptAsync(ctx, r, combined: true, rawStream: null));
            _app.Map($"/{r.PathSegment()}/ws/{{stream}}", ctx => AcceptAsync(ctx, r, combined: false, rawStream: (string?)ctx.Request.RouteValues["stream"]));
            _app.Map($"/{r.PathSegment()}/ws", ctx => AcceptAsync(ctx, r, combined: false, rawStream: null));
        }

        await _app.StartAsync(ct).ConfigureAwait(false);
        var address = _app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        _generator = Task.Run(() => GenerateAsync(_stop.Token), CancellationToken.None);
        Log.SimulatorListening(_log, BaseUri.ToString(), _options.Symbols, _options.Rate, _options.Events, _options.Seed);
    }

    /// <summary>Produces events round-robin over the streams that have a subscriber, paced to Rate per second.</summary>
    private async Task GenerateAsync(CancellationToken ct)
    {
        try
        {
            await _subscribed.Task.WaitAsync(ct).ConfigureAwait(false);
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

                var active = ActiveStreams();
                while (produced < due && active.Length > 0)
                {
                    var stream = active[cursor++ % active.Length];
                    Broadcast(_market.Next(stream));
                    produced++;
                }

                if (_options.Events > 0 && produced >= _options.Events)
                {
                    return;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(1), _time, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stopped
        }
    }

    private string[] ActiveStreams()
    {
        if (_options.AllStreamsActive)
        {
            return [.. _market.AllStreams.Order(StringComparer.Ordinal)];
        }

        var set = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var c in Connections)
        {
            foreach (var s in c.Subscriptions())
            {
                if (_market.TryGetChannel(s, out var channel) && channel.Route() == c.Route)
                {
                    set.Add(_market.Canonical(s));
                }
            }
        }

        return [.. set];
    }

    private readonly Queue<(int Status, int RetryAfterSeconds)> _restFaults = new();

    /// <summary>Fault: the next <paramref name="count"/> REST calls (not exchangeInfo) answer <paramref name="status"/> (429 or 418) with Retry-After.</summary>
    public void FailRestNext(int status, int count, int retryAfterSeconds)
    {
        lock (_restFaults)
        {
            for (var i = 0; i < count; i++)
            {
                _restFaults.Enqueue((status, retryAfterSeconds));
            }
        }
    }

    private (int Status, int RetryAfterSeconds)? TakeRestFault()
    {
        lock (_restFaults)
        {
            return _restFaults.Count > 0 ? _restFaults.Dequeue() : null;
        }
    }

    /// <summary>Fault: a binary WebSocket frame to every client on <paramref name="route"/> (Binance sends text only).</summary>
    public int InjectBinary(BinanceRoute route, byte[] frame) => Connections.Where(c => c.Route == route).Count(c => c.TryEnqueue(null, frame, binary: true));

    private readonly Dictionary<string, int> _withholdNext = new(StringComparer.Ordinal);
    private long _framesSent;

    /// <summary>Fault: the next <paramref name="count"/> events of <paramref name="stream"/> are generated but sent to nobody.</summary>
    public void WithholdNext(string stream, int count)
    {
        stream = _market.Canonical(stream);
        lock (_withholdNext)
        {
            _withholdNext[stream] = _withholdNext.GetValueOrDefault(stream) + count;
        }
    }

    private bool TakeWithheld(string stream)
    {
        lock (_withholdNext)
        {
            if (_withholdNext.TryGetValue(stream, out var n) && n > 0)
            {
                _withholdNext[stream] = n - 1;
                return true;
            }

            return false;
        }
    }

    private void Broadcast(SimEvent e)
    {
        Ledger.OnGenerated(e);
        if (TakeWithheld(e.Stream))
        {
            Ledger.OnWithheld(e);
            return;
        }

        foreach (var c in Connections)
        {
            // A stream subscribed on the wrong route is acknowledged and then silent, as on the real exchange.
            var name = SubscribedName(c, e);
            if (name is null || e.Channel.Route() != c.Route)
            {
                continue;
            }

            var frame = c.Combined ? Wrap(name, e.Data) : e.Data;
            var duplicate = _options.DuplicateEvery > 0 && Interlocked.Increment(ref _framesSent) % _options.DuplicateEvery == 0;
            if (!c.TryEnqueue(e, frame) || (duplicate && !c.TryEnqueue(null, frame)))
            {
                Log.SimulatorSlowClient(_log, c.Id, c.Queued);
                Ledger.OnDroppedForSlowClient(c.Queued);
                c.Socket.Abort();
                c.CompleteOutbound();
            }
        }
    }

    /// <summary>Sends <paramref name="frame"/> as-is to every client on <paramref name="route"/> (fault injection:
    /// garbage, truncated or hostile frames). Returns how many clients it was queued for.</summary>
    public int Inject(BinanceRoute route, byte[] frame)
    {
        var queued = 0;
        foreach (var c in Connections.Where(c => c.Route == route))
        {
            queued += c.TryEnqueue(null, frame) ? 1 : 0;
        }

        return queued;
    }

    /// <summary>Drops every client without a close handshake, as a network cut does.</summary>
    public void DisconnectAll()
    {
        foreach (var c in Connections)
        {
            c.Socket.Abort();
        }
    }

    /// <summary>The stream name under which <paramref name="c"/> receives <paramref name="e"/>, or null when it does not.</summary>
    private static string? SubscribedName(SimConnection c, SimEvent e)
    {
        if (!e.Channel.IsDepth())
        {
            return c.IsSubscribed(e.Stream) ? e.Stream : null;
        }

        foreach (var speed in (ReadOnlySpan<MarketChannel>)[MarketChannel.Depth, MarketChannel.Depth100ms, MarketChannel.Depth500ms])
        {
            var name = MarketChannels.StreamName(e.Symbol, speed);
            if (c.IsSubscribed(name))
            {
                return name;
            }
        }

        return null;
    }

    private static byte[] Wrap(string stream, byte[] data)
    {
        var prefix = Encoding.ASCII.GetBytes($"{{\"stream\":\"{stream}\",\"data\":");
        var frame = new byte[prefix.Length + data.Length + 1];
        prefix.CopyTo(frame, 0);
        data.CopyTo(frame, prefix.Length);
        frame[^1] = (byte)'}';
        return frame;
    }

    private async Task AcceptAsync(HttpContext ctx, BinanceRoute route, bool combined, string? rawStream)
    {
        if (!ctx.WebSockets.IsWebSocketRequest)
        {
            ctx.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        using var socket = await ctx.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        var connection = new SimConnection(Interlocked.Increment(ref _nextConnectionId), socket, route, combined, _options.MaxQueuedFrames);
        var initial = rawStream is not null ? [rawStream] : (ctx.Request.Query["streams"].ToString() ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var s in initial)
        {
            connection.Subscribe(s);
        }

        lock (_gate)
        {
            _connections.Add(connection);
        }

        CheckSubscribed();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, _stop.Token);
        if (_options.MaxConnectionLifetimeSeconds > 0)
        {
            _ = CloseAfterAsync(connection, TimeSpan.FromSeconds(_options.MaxConnectionLifetimeSeconds), linked.Token);
        }

        var sender = Task.Run(() => SendLoopAsync(connection, linked.Token), CancellationToken.None);
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
            lock (_gate)
            {
                _connections.Remove(connection);
            }

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
            lock (_gate)
            {
                _connections.Remove(c);
            }

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

    private async Task SendLoopAsync(SimConnection c, CancellationToken ct)
    {
        await foreach (var (e, frame, binary) in c.Outbound.ReadAllAsync(ct).ConfigureAwait(false))
        {
            await c.SendLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await c.Socket.SendAsync(frame, binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
            }
            finally
            {
                c.SendLock.Release();
            }

            if (e is not null)
            {
                Ledger.OnDelivered(e);
            }
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

            var reply = HandleControl(c, buffer.AsSpan(0, filled));
            await SendControlAsync(c, reply, ct).ConfigureAwait(false);
        }
    }

    private static async Task SendControlAsync(SimConnection c, string reply, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(reply);
        await c.SendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await c.Socket.SendAsync(bytes, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
        }
        finally
        {
            c.SendLock.Release();
        }
    }

    internal string HandleControl(SimConnection c, ReadOnlySpan<byte> message)
    {
        long id = 0;
        try
        {
            using var doc = JsonDocument.Parse(message.ToArray());
            var root = doc.RootElement;
            if (root.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.Number)
            {
                id = idElement.GetInt64();
            }

            var method = root.TryGetProperty("method", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            var streams = root.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Array
                ? p.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : "").ToList()
                : [];
            switch (method)
            {
                case "SUBSCRIBE":
                    foreach (var s in streams)
                    {
                        if (!_market.IsKnownStream(s))
                        {
                            return Error(2, $"Invalid request: unknown stream {s}", id);
                        }
                    }

                    streams.ForEach(c.Subscribe);
                    CheckSubscribed();
                    return $"{{\"result\":null,\"id\":{id}}}";
                case "UNSUBSCRIBE":
                    streams.ForEach(c.Unsubscribe);
                    return $"{{\"result\":null,\"id\":{id}}}";
                case "LIST_SUBSCRIPTIONS":
                    return $"{{\"result\":[{string.Join(",", c.Subscriptions().Select(s => $"\"{s}\""))}],\"id\":{id}}}";
                default:
                    return Error(2, "Invalid request: unknown method", id);
            }
        }
        catch (JsonException)
        {
            return Error(3, "Invalid JSON: expected value at line 1 column 1", id);
        }
    }

    private static string Error(int code, string message, long id)
        => $"{{\"error\":{{\"code\":{code},\"msg\":{JsonSerializer.Serialize(message, SimJsonContext.Default.String)}}},\"id\":{id}}}";

    private void CheckSubscribed()
    {
        var subscribed = Connections.SelectMany(c => c.Subscriptions()).Distinct().Count();
        if (subscribed >= Math.Max(1, _options.WaitForStreams))
        {
            _subscribed.TrySetResult();
        }
    }

    private Task ExchangeInfo(HttpContext ctx)
    {
        var sb = new StringBuilder();
        sb.Append("{\"timezone\":\"UTC\",\"serverTime\":").Append(_time.GetUtcNow().ToUnixTimeMilliseconds()).Append(",\"symbols\":[");
        var first = true;
        foreach (var s in _market.Symbols)
        {
            if (!first)
            {
                sb.Append(',');
            }

            first = false;
            sb.Append("{\"symbol\":\"").Append(s.Symbol).Append("\",\"pair\":\"").Append(s.Symbol)
                .Append("\",\"contractType\":\"PERPETUAL\",\"status\":\"TRADING\",\"baseAsset\":\"").Append(s.BaseAsset)
                .Append("\",\"quoteAsset\":\"USDT\",\"marginAsset\":\"USDT\",\"pricePrecision\":").Append(s.PriceDecimals)
                .Append(",\"quantityPrecision\":").Append(s.QtyDecimals).Append('}');
        }

        sb.Append("]}");
        return Json(ctx, sb.ToString());
    }

    /// <summary>GET /fapi/v1/aggTrades?symbol=X&amp;fromId=N&amp;limit=L, in the exchange's shape.</summary>
    private Task AggTrades(HttpContext ctx)
    {
        var symbol = ctx.Request.Query["symbol"].ToString();
        long? fromId = long.TryParse(ctx.Request.Query["fromId"].ToString(), out var f) ? f : null;
        var limit = int.TryParse(ctx.Request.Query["limit"].ToString(), out var l) ? Math.Clamp(l, 1, 1000) : 500;
        ctx.Response.Headers["X-MBX-USED-WEIGHT-1M"] = "20";
        var trades = _market.AggTrades(symbol, fromId, limit);
        if (_options.RestForgetsWithheld)
        {
            trades = trades.Where(t => !Ledger.IsWithheld(t)).ToList();
        }

        var sb = new StringBuilder("[");
        foreach (var t in trades)
        {
            if (sb.Length > 1)
            {
                sb.Append(',');
            }

            var text = Encoding.ASCII.GetString(t.Data);
            // Reuse the stream payload's values; REST has no "e", "E" or "s".
            sb.Append(System.FormattableString.Invariant(
                $"{{\"a\":{t.Id},\"p\":\"{Field(text, "p")}\",\"q\":\"{Field(text, "q")}\",\"f\":{t.FirstId},\"l\":{t.LastId},\"T\":{t.TransactionTimeMs},\"m\":{(t.Maker ? "true" : "false")}}}"));
        }

        sb.Append(']');
        return Json(ctx, sb.ToString());
    }

    private static string Field(string json, string name)
    {
        var key = $"\"{name}\":\"";
        var start = json.IndexOf(key, StringComparison.Ordinal) + key.Length;
        return json[start..json.IndexOf('"', start)];
    }

    private static Task Json(HttpContext ctx, string body)
    {
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(body);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_generator is not null)
        {
            await _generator.ConfigureAwait(false);
        }

        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class SimJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
