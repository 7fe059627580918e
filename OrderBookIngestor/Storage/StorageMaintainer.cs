using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>Counters of the storage maintenance loop, for /metrics and /health.</summary>
public sealed class MaintenanceStats
{
    private long _partitionsCreated;
    private long _partitionsDropped;
    private long _rollupBatches;
    private long _rollupBuckets;
    private long _failures;
    private long _conflictsRetried;

    public long PartitionsCreated => Interlocked.Read(ref _partitionsCreated);

    public long PartitionsDropped => Interlocked.Read(ref _partitionsDropped);

    public long RollupBatches => Interlocked.Read(ref _rollupBatches);

    public long RollupBuckets => Interlocked.Read(ref _rollupBuckets);

    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Maintenance passes that lost a race with another session (a deadlock) and were run again at once.</summary>
    public long ConflictsRetried => Interlocked.Read(ref _conflictsRetried);

    /// <summary>Unix ms of the last maintenance and rollup pass that succeeded (0: none yet).</summary>
    public long LastMaintenanceUnixMs { get; internal set; }

    public long LastRollupUnixMs { get; internal set; }

    /// <summary>Committed batches not yet rolled up, as of the last pass.</summary>
    public long Pending { get; internal set; }

    internal void Created() => Interlocked.Increment(ref _partitionsCreated);

    internal void Dropped() => Interlocked.Increment(ref _partitionsDropped);

    internal void RolledUp(long batches, long buckets)
    {
        Interlocked.Add(ref _rollupBatches, batches);
        Interlocked.Add(ref _rollupBuckets, buckets);
    }

    internal void Failed() => Interlocked.Increment(ref _failures);

    internal void ConflictRetried() => Interlocked.Increment(ref _conflictsRetried);
}

/// <summary>
/// The daemon's side of storage upkeep on tiers without TimescaleDB's background jobs: calls
/// marketdata.run_rollups() every RollupIntervalMs and marketdata.run_maintenance(now) every
/// MaintenanceIntervalSeconds (and once at start). The work itself is in SQL (schema/005_storage.sql), so it is
/// the same when run by hand; several daemons on one database take turns through advisory locks.
/// A failed pass (database away or refusing) is logged at a limited rate and retried after a capped, jittered back-off
/// (never sooner than a second); it never stops ingestion.
/// </summary>
public sealed class StorageMaintainer
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly MaintenanceStats _stats;
    private readonly TimeSpan _rollupEvery;
    private readonly TimeSpan _maintainEvery;
    private readonly LogLimiter _failures;
    private readonly Resilience.RetryPolicy _backoff;

    private readonly TimeSpan _settle;

    /// <param name="settle">How old a committed batch must be before it is rolled up (see marketdata.run_rollups); tests pass zero.</param>
    public StorageMaintainer(NpgsqlDataSource dataSource, TimeProvider time, ILogger log, MaintenanceStats stats, TimeSpan rollupEvery, TimeSpan maintainEvery,
        TimeSpan? settle = null, Random? random = null)
    {
        _settle = settle ?? TimeSpan.FromSeconds(2);
        _dataSource = dataSource;
        _time = time;
        _log = log;
        _stats = stats;
        _rollupEvery = rollupEvery;
        _maintainEvery = maintainEvery;
        _failures = new LogLimiter(time, TimeSpan.FromMinutes(1));
        _backoff = new Resilience.RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60), random ?? new Random());
    }

    /// <summary>Attempts of a maintenance pass that loses races with other sessions, before it counts as failed.</summary>
    internal const int ConflictAttempts = 3;

    /// <summary>One maintenance pass at the daemon's clock; returns the actions taken (created/dropped partitions).
    /// A pass chosen as a deadlock's victim (it takes strong locks on the tables the writers and readers use; on Citus
    /// the coordinator's own connections to a worker can meet too) is run again at once: it is one transaction, rolled
    /// back whole, and the session it lost to has gone on.</summary>
    public async Task<IReadOnlyList<(string Action, string Table, string Object)>> MaintainOnceAsync(CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await MaintainPassAsync(ct).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (attempt < ConflictAttempts && DatabaseErrors.IsConcurrencyConflict(ex))
            {
                _stats.ConflictRetried();
                Log.MaintenanceRetried(_log, attempt, DatabaseErrors.Describe(ex));
            }
        }
    }

    private async Task<IReadOnlyList<(string Action, string Table, string Object)>> MaintainPassAsync(CancellationToken ct)
    {
        var actions = new List<(string, string, string)>();
        await using var cmd = _dataSource.CreateCommand("SELECT action, table_name, object FROM marketdata.run_maintenance($1)");
        cmd.Parameters.Add(new NpgsqlParameter { Value = _time.GetUtcNow() });
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var action = (reader.GetString(0), reader.GetString(1), reader.GetString(2));
                actions.Add(action);
                if (action.Item1.StartsWith("created", StringComparison.Ordinal))
                {
                    _stats.Created();
                }
                else
                {
                    _stats.Dropped();
                }

                Log.StorageAction(_log, action.Item1, action.Item2, action.Item3);
            }
        }

        _stats.LastMaintenanceUnixMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        return actions;
    }

    /// <summary>Rolls up (part of) what was committed since the last pass. Returns the batches taken (0 also when
    /// another daemon holds the turn), how many are still pending, and how many of those are settled already.</summary>
    public async Task<(int Batches, long PendingAfter, long Backlog)> RollupOnceAsync(CancellationToken ct)
    {
        await using var cmd = _dataSource.CreateCommand("SELECT batches, buckets, pending_after, backlog FROM marketdata.run_rollups(200000, $1)");
        cmd.Parameters.Add(new NpgsqlParameter { Value = _settle });
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var (batches, pending, backlog) = (0, 0L, 0L);
        if (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            (batches, pending, backlog) = (reader.GetInt32(0), reader.GetInt64(2), reader.GetInt64(3));
            _stats.RolledUp(batches, reader.GetInt64(1));
        }

        _stats.LastRollupUnixMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _stats.Pending = pending;
        return (batches, pending, backlog);
    }

    public async Task RunAsync(CancellationToken stop)
    {
        var nextMaintenance = _time.GetTimestamp();
        var interval = _rollupEvery > TimeSpan.Zero ? _rollupEvery : _maintainEvery;
        while (!stop.IsCancellationRequested)
        {
            var failed = false;
            if (_time.GetTimestamp() >= nextMaintenance)
            {
                if (await Guarded("maintenance", () => MaintainOnceAsync(stop)).ConfigureAwait(false))
                {
                    nextMaintenance = _time.GetTimestamp() + (long)(_maintainEvery.TotalSeconds * _time.TimestampFrequency);
                }
                else
                {
                    failed = true; // due again on the next pass, after the back-off
                }
            }

            if (_rollupEvery > TimeSpan.Zero && !failed)
            {
                // Keep going while a backlog is left (catching up after an outage or a replay), then wait. Only a pass
                // that succeeded may ask for another at once: a failed one waits out the back-off below.
                bool more;
                do
                {
                    more = false;
                    failed = !await Guarded("rollup", async () =>
                    {
                        var (taken, _, backlog) = await RollupOnceAsync(stop).ConfigureAwait(false);
                        // Pending batches younger than the settle time stay for the next tick: going again for them
                        // re-rolled the same seconds many times a second once batches got small (issue 17).
                        more = taken > 0 && backlog > 0;
                    }).ConfigureAwait(false);
                }
                while (more && !stop.IsCancellationRequested);
            }

            // A database that is down or refusing is asked again no sooner than the back-off allows (1 s floor, 60 s cap,
            // jittered), however short the interval: each attempt is a new connection.
            var wait = interval;
            if (failed)
            {
                var backoff = _backoff.Next();
                wait = backoff > wait ? backoff : wait;
            }
            else
            {
                _backoff.Reset();
            }

            try
            {
                await Task.Delay(wait, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <returns>Whether the pass succeeded.</returns>
    private async Task<bool> Guarded(string job, Func<Task> pass)
    {
        try
        {
            await pass().ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (DatabaseErrors.IsDatabaseFailure(ex))
        {
            _stats.Failed();
            if (_failures.TryEnter(out var suppressed))
            {
                Log.StorageJobFailed(_log, job, DatabaseErrors.Describe(ex), suppressed);
            }

            return false;
        }
    }
}
