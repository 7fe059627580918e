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
    private readonly IHostApplicationLifetime _lifetime;
    private readonly HttpClient _http;
    private readonly Func<IngestorOptions>? _reloadSource;
    private readonly System.Threading.Channels.Channel<bool> _reloads = System.Threading.Channels.Channel.CreateBounded<bool>(
        new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });
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
        _lifetime = lifetime;
        _http = http;
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
            Fail($"{ex.GetType().Name}: {ex.Message}", ExitCodes.Failure);
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        // The disk spool takes batches while the database is away; its replayer also finishes what a crashed run left.
        var storageLogger = _loggers.CreateLogger("OrderBookIngestor.Storage");
        using var spool = string.IsNullOrWhiteSpace(_options.SpoolDirectory) ? null
            : new Spool(InstanceDirectory(_options, _options.SpoolDirectory), _options.SpoolMaxMegabytes * (1L << 20), _options.SpoolSegmentMegabytes * (1L << 20), storageLogger);
        var spoolState = new SpoolState();
        var quarantine = new Quarantine(InstanceDirectory(_options, _options.QuarantineDirectory), storageLogger, _time);
        _status.Spool = spool;
        _status.SpoolState = spoolState;
        _status.Quarantine = quarantine;
        var losses = new SpoolLossRecorder(_time, storageLogger);
        SpoolReplayer? replay = null;
        BatchCommitter committer;

        SymbolTable symbols;
        Dictionary<int, LastStored> lastStored;
        try
        {
            await PrepareDatabaseAsync(stoppingToken).ConfigureAwait(false);
            // Every COPY of this run (flushers and spool replay) goes through one committer, shaped by the tier now known.
            committer = new BatchCommitter(_dataSource, citus: _metrics.StorageTier == StorageTiers.Citus);
            replay = spool is null ? null : new SpoolReplayer(spool, spoolState, committer, _dataSource, _time, storageLogger, quarantine, losses.OnDamage,
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

            symbols = await RegisterSymbolsAsync(stoppingToken).ConfigureAwait(false);

            lastStored = await LastStoredReader.ReadAsync(_dataSource, symbols.Symbols.Select(s => symbols.TryGetId(s, out var id) ? id : 0), stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (ex is ConfigurationException || DatabaseErrors.IsConfigurationProblem(ex))
        {
            // A setting to change (a tier the server cannot give, a wrong password, a database that does not exist).
            Fail(ex is PostgresException pg ? $"Database: {DatabaseErrors.Describe(pg)} ({DatabaseConnection.Redact(_options.Database)})" : ex.Message,
                ExitCodes.Configuration);
            return;
        }
        catch (Exception ex) when (ex is PostgresException or HttpRequestException or System.Text.Json.JsonException)
        {
            Fail(ex is PostgresException pg ? DatabaseErrors.Describe(pg) : ex.Message, ExitCodes.Failure);
            return;
        }

        var channels = _options.Channels.Select(c => MarketChannels.TryParse(c, out var ch) ? ch : throw new ConfigurationException($"Channels: '{c}'")).ToList();
        var plans = ShardPlanner.Plan(symbols.Symbols, channels, _options.Shards, _options.MaxStreamsPerConnection);
        Log.Planned(_log, plans.Count, plans.Sum(p => p.Streams.Count), symbols.Count, string.Join(",", channels.Select(c => c.StreamSuffix())));

        var buffers = new EventBuffers(_options.BufferCapacity);
        _metrics.BookTicker.BufferDepth = () => buffers.BookTickers.Reader.Count;
        _metrics.BookTicker.BufferCapacity = buffers.Capacity;
        _metrics.Trades.BufferDepth = () => buffers.Trades.Reader.Count;
        _metrics.Trades.BufferCapacity = buffers.Capacity;
        _metrics.Depth.BufferDepth = () => buffers.Depth.Reader.Count;
        _metrics.Depth.BufferCapacity = buffers.Capacity;
        _metrics.Snapshots.BufferDepth = () => buffers.Snapshots.Reader.Count;
        _metrics.Tops.BufferDepth = () => buffers.Tops.Reader.Count;

        using var abort = new CancellationTokenSource();
        // Stops the REST helpers (backfill, snapshots) and the sampler once the readers are done.
        using var stopBackfill = new CancellationTokenSource();
        var random = new Random();
        var storageLog = _loggers.CreateLogger("OrderBookIngestor.Storage");
        var feedLog = _loggers.CreateLogger("OrderBookIngestor.Feeds");
        using var stopReplay = new CancellationTokenSource();
        var replayer = replay is null ? Task.CompletedTask : Task.Run(() => replay.RunAsync(stopReplay.Token), CancellationToken.None);
        var flushers = new[]
        {
            Task.Run(() => new BatchFlusher<BookTickerEvent, BookTickerRows>(buffers.BookTickers.Reader, committer, _options, _metrics.BookTicker, _time, storageLog, new Random(random.Next()), spool, spoolState, quarantine).RunAsync(abort.Token), CancellationToken.None),
            Task.Run(() => new BatchFlusher<TradeEvent, TradeRows>(buffers.Trades.Reader, committer, _options, _metrics.Trades, _time, storageLog, new Random(random.Next()), spool, spoolState, quarantine).RunAsync(abort.Token), CancellationToken.None),
            Task.Run(() => new BatchFlusher<DepthEvent, DepthRows>(buffers.Depth.Reader, committer, _options, _metrics.Depth, _time, storageLog, new Random(random.Next()), spool, spoolState, quarantine).RunAsync(abort.Token), CancellationToken.None),
            Task.Run(() => new BatchFlusher<SnapshotRow, SnapshotRows>(buffers.Snapshots.Reader, committer, _options, _metrics.Snapshots, _time, storageLog, new Random(random.Next()), spool, spoolState, quarantine).RunAsync(abort.Token), CancellationToken.None),
            Task.Run(() => new BatchFlusher<TopRow, TopRows>(buffers.Tops.Reader, committer, _options, _metrics.Tops, _time, storageLog, new Random(random.Next()), spool, spoolState, quarantine).RunAsync(abort.Token), CancellationToken.None),
        };

        var depthChannel = channels.Where(c => c.IsDepth()).Select(c => (MarketChannel?)c).FirstOrDefault();
        var depthBooks = new Books.DepthBookSet();
        var states = new StreamStates(symbols, lastStored, depthChannel, depthBooks);
        _metrics.Books = depthBooks.Counts;
        var gaps = new GapLedger();
        _status.Gaps = gaps;
        var gapWriter = Task.Run(() => new GapWriter(gaps, _dataSource, _time, storageLog, new Random(random.Next())).RunAsync(abort.Token), CancellationToken.None);
        using var gate = new RestWeightGate(_options.RestWeightPerMinute, _options.RestMaxInFlight, _time);
        _metrics.RestWeightUsed = () => gate.UsedThisMinute;
        var rest = new BinanceRestClient(_http, _options.RestUrl, gate);
        var backfiller = new TradeBackfiller(rest, states, buffers, gaps, _metrics, _time, feedLog, _options.MaxBackfillTrades);
        var backfill = Task.Run(() => backfiller.RunAsync(stopBackfill.Token, abort.Token), CancellationToken.None);
        // What damaged spool records held (found by the replay at start, or later) is backfilled or written down from here on.
        losses.Attach(symbols, states, gaps, backfiller.Requests, depthChannel);
        var router = new EventRouter(buffers, states, gaps, backfiller.Requests, _metrics, symbols, _time);
        var fetcher = new Books.SnapshotFetcher(rest, buffers, gaps, _time, _loggers.CreateLogger("OrderBookIngestor.Books"), _options.SnapshotLimit);
        depthBooks.UseSnapshots(fetcher);
        var snapshots = Task.Run(() => fetcher.RunAsync(stopBackfill.Token, abort.Token), CancellationToken.None);
        var running = new Running(symbols, states, router, new FrameParser(symbols), channels, feedLog, random, stoppingToken, abort.Token);
        var sampler = Task.Run(() => new Books.TopSampler(running.CurrentBooks, buffers, _time, _options.TopLevels, TimeSpan.FromMilliseconds(_options.TopIntervalMs)).RunAsync(stopBackfill.Token, abort.Token), CancellationToken.None);

        var silence = new SilenceMonitor(running.CurrentActivities, _time, feedLog, TimeSpan.FromSeconds(_options.SilentStreamSeconds));
        _metrics.SilentStreams = () => silence.Silent;
        _status.Streams = running.CurrentActivities;
        var silenceWatch = Task.Run(() => silence.RunAsync(stopBackfill.Token), CancellationToken.None);

        // Partitions ahead, retention and the 1-second rollups, where TimescaleDB's own jobs do not do them.
        using var stopMaintenance = new CancellationTokenSource();
        var maintenance = !StorageTiers.DaemonMaintained(_metrics.StorageTier) ? Task.Delay(Timeout.Infinite, stopMaintenance.Token).ContinueWith(_ => { }, TaskScheduler.Default)
            : Task.Run(() => new StorageMaintainer(_dataSource, _time, storageLog, _status.Maintenance,
                TimeSpan.FromMilliseconds(_options.RollupIntervalMs), TimeSpan.FromSeconds(_options.MaintenanceIntervalSeconds)).RunAsync(stopMaintenance.Token), CancellationToken.None);

        foreach (var plan in plans)
        {
            StartReader(running, plan);
        }

        _running = running;
        var reloads = Task.Run(() => ReloadLoopAsync(running, stopBackfill.Token), CancellationToken.None);
        _metrics.Ready = true;
        Log.Running(_log, plans.Count, _options.Http);

        // Readers and the other loops only end on shutdown; one that ends earlier is a bug, and the safe
        // reaction is to stop (systemd restarts us) rather than to run on with a dead part.
        var fixedTasks = flushers.Append(replayer).Append(backfill).Append(gapWriter).Append(snapshots).Append(reloads).Append(maintenance).ToList();
        while (!stoppingToken.IsCancellationRequested)
        {
            // Readers can be added by a reload: watch the current set, and look again when it grows.
            var watched = fixedTasks.Concat(running.ReaderTasks).Append(running.ReadersChanged).Append(Task.Delay(Timeout.InfiniteTimeSpan, _time, stoppingToken)).ToList();
            var first = await Task.WhenAny(watched).ConfigureAwait(false);
            if (first == running.ReadersChanged || stoppingToken.IsCancellationRequested)
            {
                continue;
            }

            var which = fixedTasks.IndexOf(first) is var i and >= 0 ? FixedTaskNames.ElementAtOrDefault(i) ?? $"task {i}" : "a shard reader";
            Fail($"{which} ended unexpectedly ({first.Status}): {first.Exception?.GetBaseException().Message ?? "no exception"}", ExitCodes.Failure);
            break;
        }

        // Ordered drain: readers → REST helpers (unfinished backfill goes to the ledger) and the sampler → table buffers →
        // spool replay (it may still write a damaged record's loss to the ledger) → gap ledger.
        Log.Draining(_log);
        abort.CancelAfter(TimeSpan.FromSeconds(_options.DrainTimeoutSeconds));
        await Task.WhenAll(running.ReaderTasks.Select(Quietly)).ConfigureAwait(false);
        await stopBackfill.CancelAsync().ConfigureAwait(false);
        await Quietly(reloads).ConfigureAwait(false);
        await Quietly(backfill).ConfigureAwait(false);
        await Quietly(snapshots).ConfigureAwait(false);
        await Quietly(sampler).ConfigureAwait(false);
        await Quietly(silenceWatch).ConfigureAwait(false);
        buffers.Complete();
        await Task.WhenAll(flushers.Select(Quietly)).ConfigureAwait(false);
        await stopReplay.CancelAsync().ConfigureAwait(false);
        await Quietly(replayer).ConfigureAwait(false);
        gaps.Complete();
        await Quietly(gapWriter).ConfigureAwait(false);
        await stopMaintenance.CancelAsync().ConfigureAwait(false);
        await Quietly(maintenance).ConfigureAwait(false);
        Log.Stopped(_log, _metrics.BookTicker.RowsCommitted, _metrics.Trades.RowsCommitted);
    }

    /// <summary>The long-running loops other than readers, in the order the supervisor watches them.</summary>
    private static readonly string[] FixedTaskNames =
        ["book_ticker flusher", "trades flusher", "depth flusher", "snapshot flusher", "top flusher", "spool replayer", "backfill", "gap writer", "snapshots", "reload", "storage maintenance"];

    /// <summary>Each of several instances keeps its own spool and quarantine (they are one daemon's): spool/instance-K-of-N.</summary>
    internal static string InstanceDirectory(IngestorOptions options, string directory)
    {
        var split = InstanceSplit.Parse(options.Instance);
        return split.IsAll ? directory : Path.Combine(directory, $"instance-{split.Index}-of-{split.Count}");
    }

    private async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.DrainTaskFailed(_log, ex.Message);
        }
    }

    private async Task PrepareDatabaseAsync(CancellationToken ct)
    {
        var backoff = new RetryPolicy(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(15), new Random());
        var storageLog = _loggers.CreateLogger("OrderBookIngestor.Storage");
        var migrator = new SchemaMigrator(_dataSource, storageLog, _options);
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
                        Log.StorageTierNote(storageLog, outcome.TierNote);
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
        var chosen = await ResolveSymbolsAsync(_options.Symbols, retryForAll: true, ct).ConfigureAwait(false);
        var ids = await new SymbolStore(_dataSource).RegisterAsync(chosen, ct).ConfigureAwait(false);
        return new SymbolTable(ids);
    }

    /// <summary>The symbols to record: every TRADING USDT perpetual for ALL, else the given names with their assets from exchangeInfo.</summary>
    private async Task<List<SymbolInfo>> ResolveSymbolsAsync(List<string> requested, bool retryForAll, CancellationToken ct)
    {
        var wantAll = requested.Count == 1 && OptionsValidator.IsAll(requested[0]);
        var client = new ExchangeInfoClient(_http, _options.RestUrl);
        IReadOnlyList<SymbolInfo>? listed = null;
        var backoff = new RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), new Random());
        while (listed is null)
        {
            try
            {
                listed = await client.GetSymbolsAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Text.Json.JsonException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                if (!wantAll)
                {
                    Log.ExchangeInfoUnavailable(_log, ex.Message);
                    break;
                }

                if (!retryForAll)
                {
                    throw;
                }

                // --symbols ALL cannot start without the list.
                var delay = backoff.Next();
                Log.ExchangeInfoUnavailable(_log, $"{ex.Message}; retrying in {delay.TotalSeconds:F0}s");
                await Task.Delay(delay, _time, ct).ConfigureAwait(false);
            }
        }

        if (wantAll)
        {
            var all = listed!.Where(s => s.IsTradingUsdtPerpetual).ToList();
            return all.Count > 0 ? OwnShare(all) : throw new ConfigurationException("Symbols: ALL, but exchangeInfo lists no TRADING USDT perpetuals.");
        }

        var byName = (listed ?? []).ToDictionary(s => s.Symbol, StringComparer.Ordinal);
        var chosen = requested.Select(s => s.ToUpperInvariant()).Distinct(StringComparer.Ordinal).Select(s =>
            byName.TryGetValue(s, out var info) ? info : FromName(s)).ToList();
        var unlisted = listed is null ? [] : chosen.Where(s => !byName.TryGetValue(s.Symbol, out var i) || !i.IsTradingUsdtPerpetual).Select(s => s.Symbol).ToList();
        if (unlisted.Count > 0)
        {
            // Subscribing them would record nothing (or another market), and register them as active symbols.
            throw new ConfigurationException(
                $"Symbols: not TRADING USDT-margined perpetuals on the exchange: {string.Join(",", unlisted)} (check the spelling, or whether they were delisted).");
        }

        return OwnShare(chosen);
    }

    /// <summary>With --instance K/N, the symbols of this instance; the others record the rest.</summary>
    private List<SymbolInfo> OwnShare(List<SymbolInfo> symbols)
    {
        var split = InstanceSplit.Parse(_options.Instance);
        if (split.IsAll)
        {
            return symbols;
        }

        var own = symbols.Where(s => split.Owns(s.Symbol)).ToList();
        Log.InstanceShare(_log, split.ToString(), own.Count, symbols.Count);
        return own.Count > 0 ? own
            : throw new ConfigurationException($"Instance {split}: none of the {symbols.Count} symbols falls to this instance; give more symbols or fewer instances.");
    }

    private static SymbolInfo FromName(string symbol)
    {
        var (b, q) = SymbolNames.GuessAssets(symbol);
        return new SymbolInfo(symbol, b, q, "UNKNOWN", "UNKNOWN");
    }

    private void Fail(string error, int exitCode)
    {
        _metrics.StartupError = error;
        Log.StartupFailed(_log, error);
        Environment.ExitCode = exitCode;
        _lifetime.StopApplication();
    }
}
