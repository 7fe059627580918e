using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Resilience;

namespace OrderBookIngestor.Hosting;

/// <summary>
/// The daemon's one long-running loop: prepares the database and the symbol set, starts one flusher per
/// table and one reader per shard, and on shutdown drains in order — stop readers, complete the buffers,
/// let the flushers commit what is left — within the configured drain time.
/// </summary>
public sealed partial class IngestionPipeline : BackgroundService
{
    private readonly IngestorOptions _options;
    private readonly NpgsqlDataSource _dataSource;
    private readonly IngestorMetrics _metrics;
    private readonly PipelineStatus _status;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly ILogger _storageLog;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly HttpClient _http;
    private readonly Func<IngestorOptions>? _reloadSource;
    private readonly System.Threading.Channels.Channel<bool> _reloads = System.Threading.Channels.Channel.CreateBounded<bool>(
        new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });
    private readonly SymbolResolver _symbols;
    private Running? _running;

    /// <param name="reloadSource">Reads the configuration again (files and environment; flags still win) on SIGHUP.</param>
    public IngestionPipeline(IngestorOptions options, NpgsqlDataSource dataSource, IngestorMetrics metrics, PipelineStatus status, TimeProvider time,
        ILoggerFactory loggers, IHostApplicationLifetime lifetime, HttpClient http, Func<IngestorOptions>? reloadSource = null)
    {
        _reloadSource = reloadSource;
        _options = options;
        _dataSource = dataSource;
        _metrics = metrics;
        _status = status;
        _time = time;
        _loggers = loggers;
        _log = loggers.CreateLogger("OrderBookIngestor.Pipeline");
        _storageLog = loggers.CreateLogger("OrderBookIngestor.Storage");
        _lifetime = lifetime;
        _http = http;
        _symbols = new SymbolResolver(options, http, time, _log);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopped before the pipeline ran
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Whatever nobody foresaw still ends in one clear line and a non-zero exit, so that systemd counts a failure
            // (an exception escaping a hosted service stops the host with exit code 0). The stack is at debug level.
            Log.FailureDetails(_log, ex);
            if (_metrics.Ready)
            {
                Log.PipelineFailed(_log, $"{ex.GetType().Name}: {ex.Message}");
            }

            Fail($"{ex.GetType().Name}: {ex.Message}", ExitCodes.Failure, startup: !_metrics.Ready);
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        // The disk spool takes batches while the database is away; its replayer also finishes what a crashed run left.
        using var spool = string.IsNullOrWhiteSpace(_options.SpoolDirectory) ? null
            : new Spool(InstanceDirectory(_options, _options.SpoolDirectory), _options.SpoolMaxMegabytes * (1L << 20), _options.SpoolSegmentMegabytes * (1L << 20), _storageLog);
        if (await PrepareAsync(spool, stoppingToken).ConfigureAwait(false) is not { } prepared)
        {
            return;
        }

        using var abort = new CancellationTokenSource();
        var supervisor = new Supervisor(_log);
        using var parts = Wire(prepared, supervisor, stoppingToken, abort.Token);
        Start(parts, supervisor, abort.Token);
        _running = parts.Running;
        _metrics.Ready = true;
        Log.Running(_log, parts.Plans.Count, _options.Http);

        if (await supervisor.WatchAsync(_time, stoppingToken).ConfigureAwait(false) is { } ended)
        {
            Log.LoopEnded(_log, ended.Name, ended.Task.Status.ToString(), ended.Task.Exception?.GetBaseException().Message ?? "no exception");
            Fail($"{ended.Name} ended unexpectedly", ExitCodes.Failure, startup: false);
        }

        Log.Draining(_log);
        abort.CancelAfter(TimeSpan.FromSeconds(_options.DrainTimeoutSeconds));
        await supervisor.DrainAsync().ConfigureAwait(false);
        // Events the readers routed into a full buffer, or into one closed at the deadline, had nowhere to go. Counted in
        // /metrics, which goes with the process: the log is where it stays written down.
        if (_metrics.EventsLostAtShutdown is var lost and > 0)
        {
            Log.EventsLostAtShutdown(_log, lost);
        }

        // The moment recording stopped, for the next run's holes; a few seconds at most (a database away: the heartbeat stands).
        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
        {
            try
            {
                await prepared.Sessions.StopAsync(SessionChannels(parts.Running.Channels, parts.Running.PollOpenInterest), parts.Running.SymbolIds, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // the database did not answer in time
            }
        }

        Log.Stopped(_log, _metrics.BookTicker.RowsCommitted, _metrics.Trades.RowsCommitted);
    }

    /// <summary>The channels as recorder_sessions keeps them: the stream suffixes, and openInterest when it is polled.</summary>
    private static List<string> SessionChannels(IEnumerable<MarketChannel> streams, bool openInterest)
    {
        var names = streams.Select(c => c.StreamSuffix()).ToList();
        if (openInterest)
        {
            names.Add(MarketChannels.OpenInterest);
        }

        return names;
    }

    /// <summary>What the start prepares before anything streams: the database and its tier, the spool replayed,
    /// the symbols registered and what the database already holds of each.</summary>
    private sealed record Prepared(
        Spool? Spool, SpoolState SpoolState, Quarantine Quarantine, SpoolLossRecorder Losses, SpoolReplayer? Replay,
        BatchCommitter Committer, SymbolTable Symbols, Dictionary<int, LastStored> LastStored, RecorderSessions Sessions, PreviousSession? Previous);

    /// <summary>Null when the start failed (already reported through <see cref="Fail"/>) or was cancelled.</summary>
    private async Task<Prepared?> PrepareAsync(Spool? spool, CancellationToken stoppingToken)
    {
        var spoolState = new SpoolState();
        var quarantine = new Quarantine(InstanceDirectory(_options, _options.QuarantineDirectory), _storageLog, _time);
        _status.Spool = spool;
        _status.SpoolState = spoolState;
        _status.Quarantine = quarantine;
        var losses = new SpoolLossRecorder(_time, _storageLog);
        try
        {
            await PrepareDatabaseAsync(stoppingToken).ConfigureAwait(false);
            // Every COPY of this run (flushers and spool replay) goes through one committer, shaped by the tier now known.
            var committer = new BatchCommitter(_dataSource, citus: _metrics.StorageTier == StorageTiers.Citus);
            var replay = spool is null ? null : new SpoolReplayer(spool, spoolState, committer, _dataSource, _time, _storageLog, quarantine, losses.OnDamage,
                (table, rows) => _metrics.Tables.First(t => t.Table == table).OnReplayed(rows));

            // What a previous run spooled goes in before continuity is read from the database: otherwise its
            // rows would look missing, and trades would be backfilled a second time from REST. It needs nothing
            // from the exchange, so an exchange that cannot be reached yet does not hold it back.
            while (replay is not null && !spool!.IsEmpty)
            {
                await replay.ReplayOnceAsync(stoppingToken).ConfigureAwait(false);
                if (!spool.IsEmpty)
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, stoppingToken).ConfigureAwait(false);
                }
            }

            var symbols = await RegisterSymbolsAsync(stoppingToken).ConfigureAwait(false);
            var symbolIds = symbols.Symbols.Select(s => symbols.TryGetId(s, out var id) ? id : 0).ToList();
            var lastStored = await LastStoredReader.ReadAsync(_dataSource, symbolIds, stoppingToken).ConfigureAwait(false);
            // What the previous run of this instance recorded, and when it stopped: the downtime of streams too quiet to be
            // dated by their own last row (forceOrder).
            var sessions = new RecorderSessions(_dataSource, _time, _options.Instance, _storageLog);
            var previous = await sessions.StartAsync(SessionChannels(MarketChannels.Streams(_options.Channels), _options.Channels.Any(MarketChannels.IsPolled)),
                symbolIds, stoppingToken).ConfigureAwait(false);
            return new Prepared(spool, spoolState, quarantine, losses, replay, committer, symbols, lastStored, sessions, previous);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception ex) when (ex is ConfigurationException || DatabaseErrors.IsConfigurationProblem(ex))
        {
            // A setting to change (a tier the server cannot give, a wrong password, a database that does not exist).
            Fail(ex is PostgresException pg ? $"Database: {DatabaseErrors.Describe(pg)} ({DatabaseConnection.Redact(_options.Database)})" : ex.Message,
                ExitCodes.Configuration);
            return null;
        }
        catch (Exception ex) when (ex is PostgresException or HttpRequestException or System.Text.Json.JsonException)
        {
            Fail(ex is PostgresException pg ? DatabaseErrors.Describe(pg) : ex.Message, ExitCodes.Failure);
            return null;
        }
    }

    /// <summary>The running pipeline's parts, wired together but not yet started.</summary>
    private sealed record Parts(
        Prepared Prepared, IReadOnlyList<ShardPlan> Plans, EventBuffers Buffers, GapLedger Gaps, GapWriter GapWriter,
        RestWeightGate RestGate, TradeBackfiller Backfiller, Books.SnapshotFetcher Snapshots, Books.TopSampler Sampler, Books.BookCheckpointer Checkpoints, OpenInterestPoller OpenInterest, MarkPriceBackfiller MarkBackfill,
        SilenceMonitor Silence, StorageMaintainer Maintainer, Running Running, CancellationTokenSource StopHelpers,
        CancellationTokenSource StopReplay, CancellationTokenSource StopMaintenance) : IDisposable
    {
        public void Dispose()
        {
            RestGate.Dispose();
            StopHelpers.Dispose();
            StopReplay.Dispose();
            StopMaintenance.Dispose();
        }
    }

    /// <summary>The table's buffer as /metrics and /health see it: rows waiting, readers waiting for room, memory held, capacity.</summary>
    private static void Watch<T>(TableStats stats, SegmentedChannel<T> buffer)
    {
        stats.BufferDepth = () => buffer.Reader.Count;
        stats.ReadersWaiting = () => buffer.WaitingWriters;
        stats.BufferBytes = () => buffer.Bytes;
        stats.BufferCapacity = buffer.Capacity;
    }

    /// <summary>Builds every part of the running pipeline from what the start prepared, and registers each drain
    /// phase's stop action with the supervisor. Nothing runs yet.</summary>
    private Parts Wire(Prepared p, Supervisor supervisor, CancellationToken stoppingToken, CancellationToken abort)
    {
        var channels = MarketChannels.Streams(_options.Channels);
        var plans = ShardPlanner.Plan(p.Symbols.Symbols, channels, _options.Shards, _options.MaxStreamsPerConnection, AllMarketForceOrder(_options));
        Log.Planned(_log, plans.Count, plans.Sum(pl => pl.Streams.Count), p.Symbols.Count, string.Join(",", channels.Select(c => c.StreamSuffix())));

        var buffers = new EventBuffers(_options.BufferCapacity);
        Watch(_metrics.BookTicker, buffers.BookTickers);
        Watch(_metrics.Trades, buffers.Trades);
        Watch(_metrics.Depth, buffers.Depth);
        Watch(_metrics.Snapshots, buffers.Snapshots);
        Watch(_metrics.Tops, buffers.Tops);
        Watch(_metrics.MarkPrice, buffers.MarkPrices);
        Watch(_metrics.Liquidations, buffers.Liquidations);
        Watch(_metrics.OpenInterest, buffers.OpenInterest);

        var random = new Random();
        var feedLog = _loggers.CreateLogger("OrderBookIngestor.Feeds");
        var depthChannel = channels.Where(c => c.IsDepth()).Select(c => (MarketChannel?)c).FirstOrDefault();
        var depthBooks = new Books.DepthBookSet();
        var markChannel = channels.FirstOrDefault(c => c.IsMarkPrice(), MarketChannel.MarkPrice);
        var states = new StreamStates(p.Symbols, p.LastStored, depthChannel, depthBooks, markChannel);
        if (p.Previous is { } previous && channels.Contains(MarketChannel.ForceOrder) && previous.Channels.Contains(MarketChannel.ForceOrder.StreamSuffix()))
        {
            // forceOrder can be silent for hours, so its last row cannot date the downtime: the previous run's end does.
            foreach (var id in previous.SymbolIds)
            {
                if (states.TryGetLiquidations(id, out var liquidations))
                {
                    liquidations.MarkDaemonDown(previous.EndedAtMs);
                }
            }
        }
        _metrics.Books = depthBooks.Counts;
        var gaps = new GapLedger();
        _status.Gaps = gaps;
        if (p.Previous is { } before && _options.Channels.Any(MarketChannels.IsPolled) && before.Channels.Contains(MarketChannels.OpenInterest))
        {
            // The polls due while the daemon was not running: one hole per symbol, from the previous run's end to now.
            var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            foreach (var id in before.SymbolIds.Where(p.Symbols.Contains))
            {
                gaps.Record(new GapRecord(id, OpenInterestPoller.StreamName(p.Symbols.NameOf(id)), before.EndedAtMs, Math.Max(before.EndedAtMs, nowMs), null, null,
                    GapReason.DaemonDown, nowMs, "no polls while the daemon was not running (from the previous run's end in recorder_sessions)"));
            }
        }
        var gate = new RestWeightGate(_options.RestWeightPerMinute, _options.RestMaxInFlight, _time);
        _metrics.RestWeightUsed = () => gate.UsedThisMinute;
        var rest = new BinanceRestClient(_http, _options.RestUrl, gate);
        var backfiller = new TradeBackfiller(rest, states, buffers, gaps, _metrics, _time, feedLog, _options.MaxBackfillTrades);
        // What damaged spool records held (found by the replay at start, or later) is backfilled or written down from here on.
        p.Losses.Attach(p.Symbols, states, gaps, backfiller.Requests, depthChannel);
        var markBackfiller = new MarkPriceBackfiller(rest, buffers, _metrics, _time, feedLog);
        var router = new EventRouter(buffers, states, gaps, backfiller.Requests, _metrics, p.Symbols, _time, markBackfiller.Requests);
        var fetcher = new Books.SnapshotFetcher(rest, buffers, gaps, _time, _loggers.CreateLogger("OrderBookIngestor.Books"), _options.SnapshotLimit);
        depthBooks.UseSnapshots(fetcher);
        var running = new Running(p.Symbols, states, router, new FrameParser(p.Symbols), channels, feedLog, random, supervisor, stoppingToken, abort)
        {
            PollOpenInterest = _options.Channels.Any(MarketChannels.IsPolled),
        };
        var openInterest = new OpenInterestPoller(rest, running.OpenInterestSymbols, buffers, gaps, _metrics, _time, feedLog,
            TimeSpan.FromSeconds(_options.OpenInterestSeconds), _options.RestWeightPerMinute);
        var sampler = new Books.TopSampler(running.CurrentBooks, buffers, _time, _options.TopLevels, TimeSpan.FromMilliseconds(_options.TopIntervalMs));
        var checkpoints = new Books.BookCheckpointer(running.CurrentBooks, buffers, _time, TimeSpan.FromSeconds(_options.BookSnapshotSeconds), _options.SnapshotLimit);
        var silence = new SilenceMonitor(running.CurrentActivities, _time, feedLog, TimeSpan.FromSeconds(_options.SilentStreamSeconds));
        _metrics.SilentStreams = () => silence.Silent;
        _status.Streams = running.CurrentActivities;
        // Partitions ahead, retention and the 1-second rollups, where TimescaleDB's own jobs do not do them. On every tier:
        // full TimescaleDB's maintenance pass is a no-op, and its rollup pass keeps derivatives_1s (a continuous
        // aggregate cannot carry values forward).
        var maintainer = new StorageMaintainer(_dataSource, _time, _storageLog, _status.Maintenance,
            TimeSpan.FromMilliseconds(_options.RollupIntervalMs), TimeSpan.FromSeconds(_options.MaintenanceIntervalSeconds));

        var parts = new Parts(p, plans, buffers, gaps, new GapWriter(gaps, _dataSource, _time, _storageLog, new Random(random.Next())), gate, backfiller,
            fetcher, sampler, checkpoints, openInterest, markBackfiller, silence, maintainer, running, new CancellationTokenSource(), new CancellationTokenSource(), new CancellationTokenSource());
        supervisor.OnDrain(DrainPhase.Helpers, () => parts.StopHelpers.CancelAsync());
        supervisor.OnDrain(DrainPhase.Flushers, () => buffers.Complete());
        supervisor.OnDrain(DrainPhase.SpoolReplay, () => parts.StopReplay.CancelAsync());
        supervisor.OnDrain(DrainPhase.GapWriter, () => gaps.Complete());
        supervisor.OnDrain(DrainPhase.Maintenance, () => parts.StopMaintenance.CancelAsync());
        return parts;
    }

    /// <summary>Starts every loop as a named loop of the supervisor: flushers and writers first, readers last.</summary>
    private void Start(Parts parts, Supervisor supervisor, CancellationToken abort)
    {
        var p = parts.Prepared;
        var random = parts.Running.Random;
        if (p.Replay is { } replay)
        {
            supervisor.Start("spool replayer", DrainPhase.SpoolReplay, () => replay.RunAsync(parts.StopReplay.Token));
        }

        BatchFlusher<TEvent, TRows> Lane<TEvent, TRows>(SegmentedChannel<TEvent> buffer, TableStats stats)
            where TEvent : struct
            where TRows : struct, IRowEncoder<TEvent> =>
            new(buffer.Reader, p.Committer, _options, stats, _time, _storageLog, new Random(random.Next()), p.Spool, p.SpoolState, p.Quarantine, buffer.Writer);

        void Flusher<TEvent, TRows>(SegmentedChannel<TEvent> buffer, TableStats stats)
            where TEvent : struct
            where TRows : struct, IRowEncoder<TEvent>
        {
            var flusher = Lane<TEvent, TRows>(buffer, stats);
            supervisor.Start($"{stats.Table} flusher", DrainPhase.Flushers, () => flusher.RunAsync(abort));
        }

        // The streams' small, frequent batches share commits (see JointFlusher); depth's large ones and the periodic
        // tables keep their own.
        var streams = new JointFlusher(
        [
            Lane<BookTickerEvent, BookTickerRows>(parts.Buffers.BookTickers, _metrics.BookTicker),
            Lane<TradeEvent, TradeRows>(parts.Buffers.Trades, _metrics.Trades),
            Lane<MarkPriceEvent, MarkPriceRows>(parts.Buffers.MarkPrices, _metrics.MarkPrice),
            Lane<LiquidationEvent, LiquidationRows>(parts.Buffers.Liquidations, _metrics.Liquidations),
        ], _options, _time, _storageLog);
        supervisor.Start("book_ticker, trades, mark_price and liquidations flusher", DrainPhase.Flushers, () => streams.RunAsync(abort));
        Flusher<DepthEvent, DepthRows>(parts.Buffers.Depth, _metrics.Depth);
        Flusher<SnapshotRow, SnapshotRows>(parts.Buffers.Snapshots, _metrics.Snapshots);
        Flusher<TopRow, TopRows>(parts.Buffers.Tops, _metrics.Tops);
        Flusher<OpenInterestRow, OpenInterestRows>(parts.Buffers.OpenInterest, _metrics.OpenInterest);
        supervisor.Start("gap writer", DrainPhase.GapWriter, () => parts.GapWriter.RunAsync(abort));
        var helpers = parts.StopHelpers.Token;
        supervisor.Start("backfill", DrainPhase.Helpers, () => parts.Backfiller.RunAsync(helpers, abort));
        supervisor.Start("snapshots", DrainPhase.Helpers, () => parts.Snapshots.RunAsync(helpers, abort));
        // The sampler, the book checkpoints and the silence monitor are not watched: if one stopped, no data is lost (book_at
        // then replays from an older snapshot).
        supervisor.Start("top sampler", DrainPhase.Helpers, () => parts.Sampler.RunAsync(helpers, abort), watched: false);
        supervisor.Start("book checkpoints", DrainPhase.Helpers, () => parts.Checkpoints.RunAsync(helpers, abort), watched: false);
        supervisor.Start("open interest", DrainPhase.Helpers, () => parts.OpenInterest.RunAsync(helpers, abort));
        supervisor.Start("mark price backfill", DrainPhase.Helpers, () => parts.MarkBackfill.RunAsync(helpers, abort));
        supervisor.Start("silence monitor", DrainPhase.Helpers, () => parts.Silence.RunAsync(helpers), watched: false);
        supervisor.Start("storage maintenance", DrainPhase.Maintenance, () => parts.Maintainer.RunAsync(parts.StopMaintenance.Token));
        var running = parts.Running;
        supervisor.Start("session heartbeat", DrainPhase.Maintenance,
            () => parts.Prepared.Sessions.RunAsync(() => (SessionChannels(running.Channels, running.PollOpenInterest), running.SymbolIds), parts.StopMaintenance.Token),
            watched: false);

        foreach (var plan in parts.Plans)
        {
            StartReader(parts.Running, plan);
        }

        supervisor.Start("reload", DrainPhase.Helpers, () => ReloadLoopAsync(parts.Running, helpers));
    }

    /// <summary>Every symbol, in one instance: forceOrder then comes from the one all-market stream. With several
    /// instances each would get every symbol's liquidations, most of them not its own, so they subscribe per symbol.</summary>
    internal static bool AllMarketForceOrder(IngestorOptions options)
        => options.Symbols.Count == 1 && OptionsValidator.IsAll(options.Symbols[0]) && InstanceSplit.Parse(options.Instance).IsAll;

    /// <summary>Each of several instances keeps its own spool and quarantine (they are one daemon's): spool/instance-K-of-N.</summary>
    internal static string InstanceDirectory(IngestorOptions options, string directory)
    {
        var split = InstanceSplit.Parse(options.Instance);
        return split.IsAll ? directory : Path.Combine(directory, $"instance-{split.Index}-of-{split.Count}");
    }

    private async Task PrepareDatabaseAsync(CancellationToken ct)
    {
        var backoff = new RetryPolicy(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(15), new Random());
        var migrator = new SchemaMigrator(_dataSource, _storageLog, _options);
        while (true)
        {
            try
            {
                var applied = 0;
                if (_options.AutoMigrate)
                {
                    var outcome = await migrator.MigrateAsync(ct).ConfigureAwait(false);
                    (applied, _metrics.StorageTier) = (outcome.Applied, outcome.Tier);
                    if (outcome.TierNote is not null)
                    {
                        Log.StorageTierNote(_storageLog, outcome.TierNote);
                    }
                }
                else
                {
                    _metrics.StorageTier = await migrator.ReadTierAsync(ct).ConfigureAwait(false)
                        ?? throw new ConfigurationException("AutoMigrate is off and this database has no schema yet: run `orderbook-ingestor migrate` first.");
                }

                Log.SchemaReady(_log, DatabaseConnection.Redact(_options.Database), applied, _metrics.StorageTier);
                return;
            }
            catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex) && !ct.IsCancellationRequested)
            {
                var delay = backoff.Next();
                Log.DatabaseWaiting(_log, ex.Message, (long)delay.TotalMilliseconds);
                await Task.Delay(delay, _time, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task<SymbolTable> RegisterSymbolsAsync(CancellationToken ct)
    {
        var chosen = await _symbols.ResolveAsync(_options.Symbols, retryForAll: true, ct).ConfigureAwait(false);
        var ids = await new SymbolStore(_dataSource).RegisterAsync(chosen, ct).ConfigureAwait(false);
        return new SymbolTable(ids);
    }

    /// <param name="startup">False once the pipeline ran: the cause is then already logged, and this is no startup error.</param>
    private void Fail(string error, int exitCode, bool startup = true)
    {
        if (startup)
        {
            _metrics.StartupError = error;
            Log.StartupFailed(_log, error);
        }

        Environment.ExitCode = exitCode;
        _lifetime.StopApplication();
    }
}
