using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>
/// Puts spooled batches into the database once it answers again, oldest segment first, record by record, each through
/// the batch ledger (so a record committed just before a crash is not stored twice), then deletes the segment. A record
/// the database refuses goes to the quarantine, so one bad batch never holds back the rest. Also replays what a crashed
/// or killed run left behind, and prunes old batch ids. Every failure is logged (at a limited rate) and counted.
/// </summary>
public sealed class SpoolReplayer
{
    private static readonly TimeSpan KeepBatchIds = TimeSpan.FromDays(3);

    private readonly Spool _spool;
    private readonly SpoolState _state;
    private readonly BatchCommitter _committer;
    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Quarantine? _quarantine;
    private readonly Action<SpoolDamage>? _onDamage;
    private readonly Action<string, int>? _onCommitted;
    private readonly LogLimiter _failureLog;

    /// <param name="onDamage">Told what a damaged record still shows, to write the loss down (and backfill trades).</param>
    /// <param name="onCommitted">Told the table and row count of every record committed now (for the rows-written counters).</param>
    public SpoolReplayer(Spool spool, SpoolState state, BatchCommitter committer, NpgsqlDataSource dataSource, TimeProvider time, ILogger log,
        Quarantine? quarantine = null, Action<SpoolDamage>? onDamage = null, Action<string, int>? onCommitted = null)
    {
        _onCommitted = onCommitted;
        _onDamage = onDamage;
        _spool = spool;
        _state = state;
        _committer = committer;
        _dataSource = dataSource;
        _time = time;
        _log = log;
        _quarantine = quarantine;
        _failureLog = new LogLimiter(time, TimeSpan.FromMinutes(1));
    }

    public async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        var lastPrune = long.MinValue;
        try
        {
            do
            {
                if (!_spool.IsEmpty || _state.DatabaseDown)
                {
                    await ReplayOnceAsync(stop).ConfigureAwait(false);
                }

                if (!_state.DatabaseDown && _time.GetTimestamp() - lastPrune > _time.TimestampFrequency * 3600)
                {
                    lastPrune = _time.GetTimestamp();
                    await Attempt(() => _committer.PruneAsync(KeepBatchIds, stop)).ConfigureAwait(false);
                }
            }
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // stopping: what is still spooled stays on disk for the next start
        }
    }

    /// <summary>One pass: probe, then replay every sealed segment. Stops at the first failure that is not a refusal.</summary>
    public async Task ReplayOnceAsync(CancellationToken ct)
    {
        var ok = await Attempt(async () =>
        {
            await using var probe = _dataSource.CreateCommand("SELECT 1");
            await probe.ExecuteScalarAsync(ct).ConfigureAwait(false);
        }).ConfigureAwait(false);
        if (!ok)
        {
            return;
        }

        _spool.Seal();
        int records = 0, skipped = 0, quarantined = 0;
        long rows = 0;
        foreach (var segment in _spool.Segments())
        {
            foreach (var record in _spool.Read(segment, _onDamage))
            {
                var outcome = await ReplayAsync(record, ct).ConfigureAwait(false);
                if (outcome is null)
                {
                    // The rest of this segment stays; the records already committed are in the ledger and skipped next time.
                    return;
                }

                records++;
                skipped += outcome == Outcome.AlreadyCommitted ? 1 : 0;
                quarantined += outcome == Outcome.Quarantined ? 1 : 0;
                rows += outcome == Outcome.Committed ? record.Rows : 0;
            }

            _spool.Delete(segment);
        }

        _state.OnReplayed(records);
        if (records > 0)
        {
            Log.SpoolReplayed(_log, records, rows, skipped, quarantined);
        }

        // The sealed backlog went in: the database takes batches again. Records written meanwhile are in
        // the segment now open and go in on the next pass (waiting for an empty spool would never end).
        _state.MarkUp();
    }

    private enum Outcome
    {
        Committed,
        AlreadyCommitted,
        Quarantined,
    }

    /// <returns>What became of the record, or null when the pass must stop (database unavailable, quarantine unwritable).</returns>
    private async Task<Outcome?> ReplayAsync(SpoolRecord record, CancellationToken ct)
    {
        try
        {
            var committedNow = await _committer.CommitAsync(record.TableId, record.BatchId, record.Rows, record.Payload, ct).ConfigureAwait(false);
            // A record this process spooled is counted once, whichever commit stored it: this one, or the one whose
            // answer was lost (a connection cut between COMMIT and its reply), which the ledger shows as done.
            if (_state.TakeUncounted(record.BatchId) || committedNow)
            {
                _onCommitted?.Invoke(BatchCommitter.Tables[record.TableId].Table, record.Rows);
            }

            return committedNow ? Outcome.Committed : Outcome.AlreadyCommitted;
        }
        catch (Exception ex) when (DatabaseErrors.IsRejected(ex))
        {
            if (_quarantine?.TryAdd(record.TableId, record.BatchId, record.Rows, record.Payload, DatabaseErrors.Describe(ex), _time.GetUtcNow()) == true)
            {
                _state.TakeUncounted(record.BatchId); // not written: never to be counted
                return Outcome.Quarantined;
            }

            Failed(ex);
            return null;
        }
        catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex))
        {
            Failed(ex);
            return null;
        }
    }

    /// <summary>Runs a call whose failure only postpones the work; returns whether it succeeded.</summary>
    private async Task<bool> Attempt(Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
            return true;
        }
        // At shutdown the loop's own wait stops it.
        catch (Exception ex) when (DatabaseErrors.IsDatabaseFailure(ex))
        {
            Failed(ex);
            return false;
        }
    }

    private void Failed(Exception ex)
    {
        _state.OnReplayFailed();
        if (_failureLog.TryEnter(out _))
        {
            Log.SpoolReplayFailed(_log, DatabaseErrors.Describe(ex));
        }
    }
}
