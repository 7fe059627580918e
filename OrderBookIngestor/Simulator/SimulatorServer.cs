using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// A Binance USD-M compatible fake exchange: /public and /market routes (raw /ws/&lt;stream&gt; and combined
/// /stream?streams=), SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS with the exchange's replies, the 10
/// messages/s incoming limit, wrong-route silence, and REST exchangeInfo. /sim/ledger reports what was sent.
/// This class is the composition and the fault API; the parts are SimSession (one client), SimControlProtocol,
/// SimRestEndpoints, SimSubscribers (who receives what), SimGenerator (the paced market) and SimFaults.
/// </summary>
public sealed class SimulatorServer : IAsyncDisposable
{
    private readonly SimulatorOptions _options;
    private readonly ILogger _log;
    private readonly SimulatedMarket _market;
    private readonly SimSubscribers _subscribers;
    private readonly SimFaults _faults = new();
    private readonly SimSession _sessions;
    private readonly SimRestEndpoints _rest;
    private readonly SimGenerator _generator;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebApplication? _app;
    private Task? _generating;

    public SimulatorServer(SimulatorOptions options, TimeProvider time, ILoggerFactory loggers)
    {
        _options = options;
        _log = loggers.CreateLogger("OrderBookIngestor.Simulator");
        _market = new SimulatedMarket(SymbolUniverse.Create(options.Symbols), options.Seed, time, options.TradeHistory, options.SnapshotJoin, options.RecordEvents);
        Ledger = new SimLedger(options.RecordEvents);
        _subscribers = new SimSubscribers(_market);
        _sessions = new SimSession(options, _subscribers, new SimControlProtocol(_market, _subscribers), Ledger, time);
        _sessions.Subscribed += CheckSubscribed;
        _rest = new SimRestEndpoints(options, _market, _faults, Ledger, time);
        _generator = new SimGenerator(options, _market, _subscribers, _faults, Ledger, time, _log);
    }

    public SimLedger Ledger { get; }

    /// <summary>The exchange's own book for a symbol (tests compare it with the book rebuilt from the database).</summary>
    public SimBook? Book(string symbol) => _market.Book(symbol);

    /// <summary>What GET /fapi/v1/openInterest answers for the symbol at that time.</summary>
    public decimal OpenInterestAt(string symbol, long timeMs) => _market.OpenInterestAt(symbol, timeMs);

    /// <summary>What GET /fapi/v1/markPriceKlines answers for the 1-minute bar opening then.</summary>
    public (decimal Open, decimal High, decimal Low, decimal Close) MarkPriceBar(string symbol, long openMs) => _market.MarkPriceBar(symbol, openMs);

    /// <summary>What GET /fapi/v1/fundingRate answers for the settlement at that time.</summary>
    public decimal FundingRateAt(string symbol, long fundingTimeMs) => _market.FundingRateAt(symbol, fundingTimeMs);

    public Uri BaseUri { get; private set; } = new("http://127.0.0.1/");

    public string WsUrl => $"ws://{BaseUri.Authority}";

    public string RestUrl => $"http://{BaseUri.Authority}";

    /// <summary>Completes when the generator has produced Events events (never when Events is 0).</summary>
    public Task Finished => _generating ?? Task.CompletedTask;

    public IReadOnlyList<SimConnection> Connections => _subscribers.Current.Connections;

    public async Task StartAsync(CancellationToken ct)
    {
        // No watching of the working directory for appsettings changes (a thread woken by every file written there).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Parse(_options.Host), _options.Port));
        _app = builder.Build();
        _app.Use((ctx, next) =>
        {
            if (ctx.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade)
            {
                ctx.Features.Set<IHttpUpgradeFeature>(new SimBatchingUpgradeFeature(upgrade));
            }

            return next(ctx);
        });
        // Binance pings every 3 minutes; with a timeout set, the server sends real pings and expects pongs.
        _app.UseWebSockets(new WebSocketOptions
        {
            KeepAliveInterval = _options.PingIntervalMs > 0 ? TimeSpan.FromMilliseconds(_options.PingIntervalMs) : TimeSpan.FromMinutes(3),
            KeepAliveTimeout = TimeSpan.FromMinutes(10),
        });
        _rest.Map(_app);
        foreach (var route in new[] { BinanceRoute.Public, BinanceRoute.Market })
        {
            var r = route;
            _app.Map($"/{r.PathSegment()}/stream", ctx => _sessions.AcceptAsync(ctx, r, combined: true, rawStream: null, _stop.Token));
            _app.Map($"/{r.PathSegment()}/ws/{{stream}}", ctx => _sessions.AcceptAsync(ctx, r, combined: false, rawStream: (string?)ctx.Request.RouteValues["stream"], _stop.Token));
            _app.Map($"/{r.PathSegment()}/ws", ctx => _sessions.AcceptAsync(ctx, r, combined: false, rawStream: null, _stop.Token));
        }

        await _app.StartAsync(ct).ConfigureAwait(false);
        var address = _app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        _generating = Task.Run(() => _generator.RunAsync(_subscribed.Task, _stop.Token), CancellationToken.None);
        Log.SimulatorListening(_log, BaseUri.ToString(), _options.Symbols, _options.Rate, _options.Events, _options.Seed);
    }

    /// <summary>Fault: the next <paramref name="count"/> REST calls (not exchangeInfo) answer <paramref name="status"/> (429 or 418) with Retry-After.</summary>
    public void FailRestNext(int status, int count, int retryAfterSeconds) => _faults.FailRestNext(status, count, retryAfterSeconds);

    /// <summary>Fault: the next <paramref name="count"/> events of <paramref name="stream"/> are generated but sent to nobody.</summary>
    public void WithholdNext(string stream, int count) => _faults.WithholdNext(_market.Canonical(stream), count);

    /// <summary>Fault: a binary WebSocket frame to every client on <paramref name="route"/> (Binance sends text only).</summary>
    public int InjectBinary(BinanceRoute route, byte[] frame) => Connections.Where(c => c.Route == route).Count(c => c.TryEnqueue(SimWireFrame.Raw(frame, binary: true)));

    /// <summary>Sends <paramref name="frame"/> as-is to every client on <paramref name="route"/> (fault injection:
    /// garbage, truncated or hostile frames). Returns how many clients it was queued for.</summary>
    public int Inject(BinanceRoute route, byte[] frame) => Connections.Where(c => c.Route == route).Count(c => c.TryEnqueue(SimWireFrame.Raw(frame, binary: false)));

    /// <summary>Drops every client without a close handshake, as a network cut does.</summary>
    public void DisconnectAll()
    {
        foreach (var c in Connections)
        {
            c.Socket.Abort();
        }
    }

    private void CheckSubscribed()
    {
        if (_subscribers.Current.DistinctSubscriptions >= Math.Max(1, _options.WaitForStreams))
        {
            _subscribed.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_generating is not null)
        {
            await _generating.ConfigureAwait(false);
        }

        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }
}
