using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Simulator;

namespace OrderBookIngestor.Tests.Support;

/// <summary>A simulator and a daemon, both in this process but talking over real loopback sockets to a real database.</summary>
public sealed class Harness : IAsyncDisposable
{
    private readonly TimeProvider? _daemonTime;
    private readonly Func<string, string?>? _environment;
    private readonly Func<IngestorOptions>? _reloadSource;

    private Harness(TestDatabase db, SimulatorServer simulator, IHost daemon, IngestorOptions options, TimeProvider? daemonTime,
        Func<string, string?>? environment, Func<IngestorOptions>? reloadSource, TestContextLoggerProvider log)
    {
        DaemonLog = log;
        _reloadSource = reloadSource;
        _daemonTime = daemonTime;
        _environment = environment;
        Db = db;
        Simulator = simulator;
        Daemon = daemon;
        Options = options;
    }

    public TestDatabase Db { get; }

    public SimulatorServer Simulator { get; }

    public IHost Daemon { get; private set; }

    public IngestorOptions Options { get; }

    /// <summary>What the daemon logged (a restarted daemon logs here too).</summary>
    public TestContextLoggerProvider DaemonLog { get; }

    public IngestorMetrics Metrics => Daemon.Services.GetRequiredService<IngestorMetrics>();

    public PipelineStatus Parts => Daemon.Services.GetRequiredService<PipelineStatus>();

    public static async Task<Harness> StartAsync(TestDatabase db, SimulatorOptions sim, Action<IngestorOptions>? configure = null, TimeProvider? daemonTime = null,
        Func<string, string?>? environment = null, Func<IngestorOptions>? reloadSource = null)
    {
        sim.Port = 0;
        var loggers = LoggerFactory.Create(b => b.AddProvider(new TestContextLoggerProvider()).SetMinimumLevel(LogLevel.Information));
        var simulator = new SimulatorServer(sim, TimeProvider.System, loggers);
        await simulator.StartAsync(CancellationToken.None);
        var options = new IngestorOptions
        {
            Database = db.ConnectionString,
            Symbols = SymbolUniverse.Create(sim.Symbols).Select(s => s.Symbol).ToList(),
            WsUrl = simulator.WsUrl,
            RestUrl = simulator.RestUrl,
            Http = $"127.0.0.1:{FreePort()}",
            SummaryIntervalSeconds = 0,
            // The daemon runs inside the test process here, whose heap is every parallel fixture's: its heap trimmer
            // would time full collections by the others' garbage.
            HeapSlackMegabytes = 0,
            ReconnectMinDelayMs = 50,
            ReconnectMaxDelayMs = 500,
            // Each harness its own spool: a test never replays another's leftovers.
            SpoolDirectory = Path.Combine(Path.GetTempPath(), "obi-test-spool-" + Guid.NewGuid().ToString("N")),
        };
        configure?.Invoke(options);
        Assert.That(OptionsValidator.Validate(options), Is.Empty);
        // Never the test runner's own environment: a stray NOTIFY_SOCKET must not reach the daemon under test.
        environment ??= _ => null;
        var log = new TestContextLoggerProvider();
        var daemon = IngestorHost.Build(options, log, daemonTime, environment, reloadSource);
        await daemon.StartAsync();
        return new Harness(db, simulator, daemon, options, daemonTime, environment, reloadSource, log);
    }

    /// <summary>Stops the daemon (an orderly SIGTERM-like stop), waits, and starts a fresh one on the same database.</summary>
    public async Task RestartDaemonAsync(TimeSpan downtime, Func<Task>? whileDown = null)
    {
        await Daemon.StopAsync();
        Daemon.Dispose();
        await Task.Delay(downtime);
        if (whileDown is not null)
        {
            await whileDown();
        }

        Daemon = IngestorHost.Build(Options, DaemonLog, _daemonTime, _environment, _reloadSource);
        await Daemon.StartAsync();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Event rows (book_ticker, trades, depth_events, mark_price, liquidations); snapshots, sampled tops and
    /// open interest polls are not events the simulator streamed.</summary>
    public long RowsCommitted => Metrics.BookTicker.RowsCommitted + Metrics.Trades.RowsCommitted + Metrics.Depth.RowsCommitted
        + Metrics.MarkPrice.RowsCommitted + Metrics.Liquidations.RowsCommitted;

    /// <summary>Waits (bounded) until the daemon has committed as many rows as the simulator delivered.</summary>
    public async Task WaitForAllDeliveredAsync(TimeSpan timeout)
    {
        await Simulator.Finished.WaitAsync(timeout);
        await WaitUntilAsync(() => RowsCommitted >= Simulator.Ledger.Delivered && Simulator.Connections.All(c => c.Queued == 0), timeout,
            () => $"committed {RowsCommitted} of {Simulator.Ledger.Delivered} delivered");
    }

    /// <summary>The bound of a test's first wait, which includes the daemon's start: with fixtures in parallel, a first
    /// migrate on Citus took up to ~20 s (it takes ~3 s alone).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>A bounded poll (every 50 ms, on a monotonic clock) for a condition the test cannot be told about.</summary>
    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> describe)
        => WaitUntilAsync(() => Task.FromResult(condition()), timeout, describe);

    /// <summary>The same, for a condition that has to ask the database.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describe)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"timed out after {timeout.TotalSeconds}s: {describe()}");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Daemon.StopAsync();
        Daemon.Dispose();
        await Simulator.DisposeAsync();
        if (Directory.Exists(Options.SpoolDirectory))
        {
            Directory.Delete(Options.SpoolDirectory, recursive: true);
        }
    }
}

/// <summary>Routes the daemon's log into NUnit's per-test output, so a failing test shows what the daemon said, and
/// keeps the lines for a test to read.</summary>
public sealed class TestContextLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    /// <summary>Every line logged so far, "Level: message".</summary>
    public IReadOnlyCollection<string> Lines => _lines;

    public ILogger CreateLogger(string categoryName) => new TestContextLogger(categoryName, _lines);

    public void Dispose()
    {
    }

    private sealed class TestContextLogger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                var message = formatter(state, exception);
                lines.Enqueue($"{logLevel}: {message}");
                TestContext.Progress.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel.ToString()[..4]} {category}: {message}");
            }
        }
    }
}
