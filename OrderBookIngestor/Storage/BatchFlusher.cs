using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Resilience;

namespace OrderBookIngestor.Storage;

/// <summary>
/// Drains one table's buffer into binary COPY batches, paced by <see cref="BatchPacer"/>: about BatchTargetRows
/// rows per COPY, sent sooner when the rows are already there, never more than BatchMaxAgeMs after the previous
/// one, and at most BatchMaxRows, each through the flusher's own <see cref="CommitSession"/> (one kept connection). A failed COPY is rolled back and the same
/// batch is retried with backoff; the batch is never cleared until the database has acknowledged it.
/// The flusher finishes when its buffer is completed and empty, or when the drain deadline aborts it. It runs on its
/// own (<see cref="RunAsync"/>) or as one lane of a <see cref="JointFlusher"/>.
/// </summary>
public sealed class BatchFlusher<T, TEncoder> : IFlushLane
    where T : struct
    where TEncoder : struct, IRowEncoder<T>
{
    private readonly ChannelReader<T> _reader;
    private readonly ChannelWriter<T>? _writer;
    private readonly CopyBatch _batch;
    private readonly CommitSession _session;
    private readonly Spool? _spool;
    private readonly SpoolState? _spoolState;
    private readonly Quarantine? _quarantine;
    private readonly byte _tableId = BatchCommitter.TableId(TEncoder.Table);
    private readonly LogLimiter _spoolFullLog;
    private readonly IngestorOptions _options;
    private readonly TableStats _stats;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly RetryPolicy _retry;
    private readonly BatchPacer _pacer;
    private Task<bool>? _pendingWait;

    /// <param name="spool">Where batches go while the database is unavailable; null keeps them in memory and retries.</param>
    /// <param name="quarantine">Where batches the database refuses go; null keeps them in memory and retries (never the spool:
    /// a refused batch there would stop every replay behind it).</param>
    /// <param name="writer">The buffer's writing side, closed at the drain deadline before the buffer is spooled, so that
    /// an event a reader still routes after that fails and is counted lost, rather than left unseen in the buffer.</param>
    public BatchFlusher(ChannelReader<T> reader, BatchCommitter committer, IngestorOptions options, TableStats stats,
        TimeProvider time, ILogger log, Random random, Spool? spool = null, SpoolState? spoolState = null, Quarantine? quarantine = null,
        ChannelWriter<T>? writer = null)
    {
        _quarantine = quarantine;
        _reader = reader;
        _writer = writer;
        _session = committer.OpenSession(time);
        _spool = spool;
        _spoolState = spool is null ? null : spoolState ?? new SpoolState();
        _spoolFullLog = new LogLimiter(time, TimeSpan.FromSeconds(30));
        _options = options;
        _stats = stats;
        _time = time;
        _log = log;
        _retry = new RetryPolicy(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), random);
        _pacer = new BatchPacer(time, options.BatchTargetRows, options.BatchMaxRows, TimeSpan.FromMilliseconds(options.BatchMaxAgeMs));
        _batch = new CopyBatch(options.BatchMaxRows);
    }

    public string Table => TEncoder.Table;

    public byte TableId => _tableId;

    public CommitSession Session => _session;

    public CopyBatch Batch => _batch;

    public int Waiting => _reader.CanCount ? _reader.Count : _reader.TryPeek(out _) ? 1 : 0;

    public bool DatabaseDown => _spoolState?.DatabaseDown == true;

    public Task<bool> WaitAsync(CancellationToken abort)
    {
        // One wait at a time: a wait that another lane's rows overtook is still the one to await next time.
        if (_pendingWait is { IsCompleted: true })
        {
            _pendingWait = null;
        }

        return _pendingWait ??= _reader.WaitToReadAsync(abort).AsTask();
    }

    public TimeSpan Linger(int waiting) => _pacer.Linger(Math.Max(1, waiting));

    public void Fill()
    {
        var max = _options.BatchMaxRows;
        while (_batch.Rows < max && _reader.TryRead(out var item))
        {
            TEncoder.Encode(_batch, item);
        }

        _pacer.Drained(_batch.Rows);
    }

    public async ValueTask DisposeAsync()
    {
        await _session.DisposeAsync().ConfigureAwait(false);
        _batch.Dispose();
    }

    /// <param name="abort">Cancelled at the drain deadline only; normal shutdown completes the buffer instead.</param>
    public async Task RunAsync(CancellationToken abort)
    {
        await using var lane = this.ConfigureAwait(false);
        try
        {
            while (await _reader.WaitToReadAsync(abort).ConfigureAwait(false))
            {
                await FillAsync(abort).ConfigureAwait(false);
                if (_batch.Rows > 0)
                {
                    await CommitAsync(abort).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            Abandon();
        }
    }

    /// <summary>Drain deadline: what the database did not take goes to the spool (replayed at the next start).</summary>
    public void Abandon()
    {
        _writer?.TryComplete();
        var batch = _batch;
        var lost = SpoolOrCount(batch);
        while (_reader.TryRead(out var item))
        {
            TEncoder.Encode(batch, item);
            if (batch.Rows >= _options.BatchMaxRows)
            {
                lost += SpoolOrCount(batch);
            }
        }

        lost += SpoolOrCount(batch);
        if (lost > 0)
        {
            _stats.OnAbandoned(lost);
            Log.RowsAbandoned(_log, TEncoder.Table, lost);
        }
    }

    /// <returns>Rows that could not be spooled (lost).</returns>
    private int SpoolOrCount(CopyBatch batch)
    {
        var rows = batch.Rows;
        if (rows == 0)
        {
            return 0;
        }

        var spooled = TrySpool(batch);
        batch.Reset();
        return spooled ? 0 : rows;
    }

    private bool TrySpool(CopyBatch batch)
    {
        if (_spool is null || batch.Rows == 0)
        {
            return false;
        }

        if (!_spool.TryAppend(_tableId, batch.Id, batch.Rows, batch.Payload().Span))
        {
            if (_spoolFullLog.TryEnter(out _))
            {
                Log.SpoolFull(_log, _spool.Bytes, _options.SpoolMaxMegabytes * (1L << 20), TEncoder.Table);
            }

            return false;
        }

        _stats.OnSpooled(batch.Rows);
        _spoolState!.OnSpooled(batch.Id, batch.Rows);
        // Spooling is progress: the watchdog must not mistake a database outage for a stuck pipeline.
        _stats.OnAttemptFinished(_time.GetUtcNow().ToUnixTimeMilliseconds());
        batch.Reset();
        return true;
    }

    /// <summary>Called with at least one row readable: lets the batch fill as the pacer says, then takes it.</summary>
    private async Task FillAsync(CancellationToken abort)
    {
        var linger = Linger(Waiting);
        if (linger > TimeSpan.Zero)
        {
            // One timer per batch; rows written meanwhile wake nobody.
            await Task.Delay(linger, _time, abort).ConfigureAwait(false);
        }

        Fill();
    }

    /// <summary>Commits the batch on the flusher's own connection: retried, spooled or quarantined as the failure says.</summary>
    public async Task CommitAsync(CancellationToken abort)
    {
        var batch = _batch;
        var failures = 0;
        while (true)
        {
            // While the database is known to be down, do not wait on it: spool, keep memory bounded.
            if (_spoolState?.DatabaseDown == true && TrySpool(batch))
            {
                return;
            }

            var started = _time.GetTimestamp();
            bool committed;
            try
            {
                committed = await _session.CommitAsync(_tableId, batch.Id, batch.Rows, batch.Payload(), abort).ConfigureAwait(false);
            }
            catch (Exception ex) when (DatabaseErrors.IsRejected(ex))
            {
                // The server answered and refused these bytes; the same bytes will be refused again. Set them aside
                // with the reason and go on: the database is up, and the next batch may be fine.
                _stats.OnAttemptFinished(_time.GetUtcNow().ToUnixTimeMilliseconds());
                var message = DatabaseErrors.Describe(ex);
                _stats.OnCopyFailed(message);
                if (_quarantine?.TryAdd(_tableId, batch.Id, batch.Rows, batch.Payload().Span, message, _time.GetUtcNow()) == true)
                {
                    batch.Reset();
                    return;
                }

                failures++;
                var delay = _retry.Next();
                Log.CopyFailed(_log, TEncoder.Table, failures, batch.Rows, (long)delay.TotalMilliseconds, message);
                await Task.Delay(delay, _time, abort).ConfigureAwait(false);
                continue;
            }
            catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex) && !abort.IsCancellationRequested)
            {
                _stats.OnAttemptFinished(_time.GetUtcNow().ToUnixTimeMilliseconds());
                failures++;
                var message = DatabaseErrors.Describe(ex);
                _stats.OnCopyFailed(message);
                if (_spoolState is not null)
                {
                    if (_spoolState.MarkDown())
                    {
                        Log.SpoolingStarted(_log, TEncoder.Table, message);
                    }

                    if (TrySpool(batch))
                    {
                        return;
                    }
                }

                var delay = _retry.Next();
                Log.CopyFailed(_log, TEncoder.Table, failures, batch.Rows, (long)delay.TotalMilliseconds, message);
                await Task.Delay(delay, _time, abort).ConfigureAwait(false);
                continue;
            }

            OnCommitted(committed, _time.GetElapsedTime(started));
            if (failures > 0)
            {
                Log.CopyRecovered(_log, TEncoder.Table, failures);
                _retry.Reset();
            }

            return;
        }
    }

    /// <summary>The database took the batch (now, or before when <paramref name="committed"/> is false): counts it, once.</summary>
    public void OnCommitted(bool committed, TimeSpan elapsed)
    {
        var batch = _batch;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _stats.OnAttemptFinished(now);
        // Not committed now means the ledger already holds this batch: an earlier attempt of it committed and
        // its answer was lost. Nobody counted those rows, so they are counted here, once, either way.
        foreach (var exchangeMs in batch.ExchangeTimesMs)
        {
            _stats.CommitLatencySeconds.Observe(Math.Max(0, now - exchangeMs) / 1000.0);
        }

        _stats.OnCommitted(batch.Rows, now, elapsed.TotalSeconds);
        if (committed)
        {
            Log.CopyCommitted(_log, TEncoder.Table, batch.Rows, elapsed.TotalMilliseconds);
        }

        batch.Reset();
    }
}
