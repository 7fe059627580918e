using Microsoft.Extensions.Logging;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>One table's side of a flusher: its buffer, pacer, batch and failure handling (a <see cref="BatchFlusher{T,TEncoder}"/>).</summary>
internal interface IFlushLane : IAsyncDisposable
{
    string Table { get; }

    byte TableId { get; }

    /// <summary>The lane's own connection; the first lane's also carries the joint commits.</summary>
    CommitSession Session { get; }

    CopyBatch Batch { get; }

    /// <summary>Rows in the lane's buffer now.</summary>
    int Waiting { get; }

    /// <summary>The database is known to be down: the lane spools without trying it.</summary>
    bool DatabaseDown { get; }

    /// <summary>Completes with true once a row is waiting, false once the buffer is completed and empty. One wait at a
    /// time: until it completes, every call returns the same one.</summary>
    Task<bool> WaitAsync(CancellationToken abort);

    /// <summary>How long the pacer lets this lane's batch fill, given the rows waiting now (<see cref="Waiting"/>).</summary>
    TimeSpan Linger(int waiting);

    /// <summary>Takes the waiting rows into the batch (up to BatchMaxRows).</summary>
    void Fill();

    /// <summary>Commits the batch on the lane's own: retries, spool, quarantine, as a lone flusher does.</summary>
    Task CommitAsync(CancellationToken abort);

    /// <summary>The batch was committed by a joint commit: counted as the lane's own commit would count it.</summary>
    void OnCommitted(bool committed, TimeSpan elapsed);

    /// <summary>Drain deadline: the batch and the buffer go to the spool, or are counted lost.</summary>
    void Abandon();
}

/// <summary>
/// Flushes several tables' buffers in one loop and, while their batches are small, commits them in one transaction.
/// <para>
/// Each commit costs the daemon about 0.4 ms of CPU whatever its size (three round trips, a timer, a thread-pool
/// wake-up; measured at 20,000 msg/s by halving the COPYs) and PostgreSQL a transaction and a WAL flush. book_ticker
/// and trades arrive at about the same rate, so their batches fall due together: committed together they take five
/// round trips and one commit where apart they take six and two (issue 17).
/// </para>
/// <para>
/// When the batches are large (together more than four times BatchTargetRows: about 30,000 msg/s and up with the
/// defaults) each table commits on its own connection, side by side, as lone flushers do, so that PostgreSQL
/// writes them on two cores: the ceiling depends on it. A joint commit that fails for any reason is not retried
/// jointly: each batch then goes through its own table's path (retries, spool, quarantine of a refused batch alone),
/// and the ledger keeps each batch exactly once even when the joint commit's outcome was unknown.
/// </para>
/// </summary>
public sealed class JointFlusher
{
    private readonly IFlushLane[] _lanes;
    private readonly int _jointMaxRows;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly LogLimiter _fallbackLog;
    private readonly List<CommitPart> _parts = [];
    private readonly List<IFlushLane> _ready = [];
    private readonly List<Task<bool>> _waits = [];
    private long _jointCommits;
    private long _fallbacks;

    internal JointFlusher(IReadOnlyList<IFlushLane> lanes, IngestorOptions options, TimeProvider time, ILogger log)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lanes.Count, 1);
        _lanes = [.. lanes];
        _jointMaxRows = 4 * Math.Min(options.BatchTargetRows, options.BatchMaxRows);
        _time = time;
        _log = log;
        _fallbackLog = new LogLimiter(time, TimeSpan.FromSeconds(30));
    }

    /// <summary>Commits that carried more than one table's batch.</summary>
    public long JointCommits => Interlocked.Read(ref _jointCommits);

    /// <summary>Joint commits that did not commit, whose batches then went through their own tables' paths.</summary>
    public long Fallbacks => Interlocked.Read(ref _fallbacks);

    /// <param name="abort">Cancelled at the drain deadline only; normal shutdown completes the buffers instead.</param>
    public async Task RunAsync(CancellationToken abort)
    {
        var done = new bool[_lanes.Length];
        try
        {
            while (true)
            {
                // The batch falls due when the first lane's does.
                var open = 0;
                var rowsWaiting = false;
                var linger = TimeSpan.MaxValue;
                for (var i = 0; i < _lanes.Length; i++)
                {
                    if (!done[i])
                    {
                        open++;
                        var waiting = _lanes[i].Waiting;
                        if (waiting > 0)
                        {
                            rowsWaiting = true;
                            var own = _lanes[i].Linger(waiting);
                            linger = own < linger ? own : linger;
                        }
                    }
                }

                if (open == 0)
                {
                    return;
                }

                if (!rowsWaiting)
                {
                    await WaitForRowsAsync(done, abort).ConfigureAwait(false);
                    continue;
                }

                if (linger > TimeSpan.Zero)
                {
                    await Task.Delay(linger, _time, abort).ConfigureAwait(false);
                }

                _ready.Clear();
                var rows = 0;
                foreach (var lane in _lanes)
                {
                    // A lane with nothing waiting is left alone: its pacer still knows how long it has been quiet.
                    if (lane.Waiting > 0)
                    {
                        lane.Fill();
                    }

                    if (lane.Batch.Rows > 0)
                    {
                        _ready.Add(lane);
                        rows += lane.Batch.Rows;
                    }
                }

                await CommitAsync(rows, abort).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            foreach (var lane in _lanes)
            {
                lane.Abandon();
            }
        }
        finally
        {
            foreach (var lane in _lanes)
            {
                await lane.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Every open lane is empty: waits for the first row anywhere, and notes the lanes that have finished.</summary>
    private async Task WaitForRowsAsync(bool[] done, CancellationToken abort)
    {
        _waits.Clear();
        for (var i = 0; i < _lanes.Length; i++)
        {
            if (!done[i])
            {
                _waits.Add(_lanes[i].WaitAsync(abort));
            }
        }

        await Task.WhenAny(_waits).ConfigureAwait(false);
        var k = 0;
        for (var i = 0; i < _lanes.Length; i++)
        {
            if (!done[i] && _waits[k++] is { IsCompleted: true } wait)
            {
                // False: completed and empty. A cancelled wait throws here (the drain deadline).
                done[i] = !await wait.ConfigureAwait(false);
            }
        }
    }

    private async Task CommitAsync(int rows, CancellationToken abort)
    {
        switch (_ready.Count)
        {
            case 0:
                return;
            case 1:
                await _ready[0].CommitAsync(abort).ConfigureAwait(false);
                return;
        }

        if (rows <= _jointMaxRows && !_ready.Exists(l => l.DatabaseDown))
        {
            if (await TryCommitJointlyAsync(abort).ConfigureAwait(false))
            {
                return;
            }

            Interlocked.Increment(ref _fallbacks);
        }

        // Large batches, a database known to be down, or a joint commit that did not commit: each table on its own
        // connection, side by side.
        var commits = new Task[_ready.Count];
        for (var i = 0; i < commits.Length; i++)
        {
            commits[i] = _ready[i].CommitAsync(abort);
        }

        await Task.WhenAll(commits).ConfigureAwait(false);
    }

    /// <returns>False when nothing was committed: a batch was already in the ledger, or the commit failed.</returns>
    private async Task<bool> TryCommitJointlyAsync(CancellationToken abort)
    {
        _parts.Clear();
        foreach (var lane in _ready)
        {
            _parts.Add(new CommitPart(lane.TableId, lane.Batch.Id, lane.Batch.Rows, lane.Batch.Payload()));
        }

        var started = _time.GetTimestamp();
        try
        {
            if (!await _ready[0].Session.CommitAsync(_parts, abort).ConfigureAwait(false))
            {
                return false;
            }
        }
        catch (Exception ex) when (!abort.IsCancellationRequested)
        {
            if (_fallbackLog.TryEnter(out var suppressed))
            {
                Log.JointCommitFailed(_log, string.Join(", ", _ready.Select(l => l.Table)), DatabaseErrors.Describe(ex), suppressed);
            }

            return false;
        }

        var elapsed = _time.GetElapsedTime(started);
        foreach (var lane in _ready)
        {
            lane.OnCommitted(true, elapsed);
        }

        Interlocked.Increment(ref _jointCommits);
        return true;
    }
}
