using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Feeds;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>
/// Drains one table's buffer into binary COPY batches. A batch is sent when it holds BatchMaxRows rows or
/// its first row is BatchMaxAgeMs old, whichever comes first. A failed COPY is rolled back and the same
/// batch is retried with backoff; the batch is never cleared until the database has acknowledged it.
/// The flusher finishes when its buffer is completed and empty, or when the drain deadline aborts it.
/// </summary>
public sealed class BatchFlusher<T, TEncoder>
    where T : struct
    where TEncoder : struct, IRowEncoder<T>
{
    private readonly ChannelReader<T> _reader;
    private readonly NpgsqlDataSource _dataSource;
    private readonly IngestorOptions _options;
    private readonly TableStats _stats;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Backoff _retry;

    public BatchFlusher(ChannelReader<T> reader, NpgsqlDataSource dataSource, IngestorOptions options, TableStats stats,
        TimeProvider time, ILogger log, Random random)
    {
        _reader = reader;
        _dataSource = dataSource;
        _options = options;
        _stats = stats;
        _time = time;
        _log = log;
        _retry = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), random);
    }

    /// <param name="abort">Cancelled at the drain deadline only; normal shutdown completes the buffer instead.</param>
    public async Task RunAsync(CancellationToken abort)
    {
        using var batch = new CopyBatch(_options.BatchMaxRows);
        try
        {
            while (await _reader.WaitToReadAsync(abort).ConfigureAwait(false))
            {
                await FillAsync(batch, abort).ConfigureAwait(false);
                if (batch.Rows > 0)
                {
                    await CommitAsync(batch, abort).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            var lost = batch.Rows;
            while (_reader.TryRead(out _))
            {
                lost++;
            }

            if (lost > 0)
            {
                _stats.OnAbandoned(lost);
                Log.RowsAbandoned(_log, TEncoder.Table, lost);
            }
        }
    }

    private async Task FillAsync(CopyBatch batch, CancellationToken abort)
    {
        var max = _options.BatchMaxRows;
        var deadline = _time.GetTimestamp() + (long)(_options.BatchMaxAgeMs / 1000.0 * _time.TimestampFrequency);
        while (true)
        {
            while (batch.Rows < max && _reader.TryRead(out var item))
            {
                TEncoder.Encode(batch, item);
            }

            if (batch.Rows >= max)
            {
                return;
            }

            var remaining = deadline - _time.GetTimestamp();
            if (remaining <= 0)
            {
                return;
            }

            // Wait for more rows or the batch's age limit, whichever comes first.
            using var age = new CancellationTokenSource(TimeSpan.FromSeconds(remaining / (double)_time.TimestampFrequency), _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(abort, age.Token);
            try
            {
                if (!await _reader.WaitToReadAsync(linked.Token).ConfigureAwait(false))
                {
                    return; // completed: commit what we have
                }
            }
            catch (OperationCanceledException) when (!abort.IsCancellationRequested)
            {
                return; // age reached
            }
        }
    }

    private async Task CommitAsync(CopyBatch batch, CancellationToken abort)
    {
        var failures = 0;
        while (true)
        {
            var started = _time.GetTimestamp();
            try
            {
                await CopyAsync(batch, abort).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransient(ex) && !abort.IsCancellationRequested)
            {
                _stats.OnAttemptFinished(_time.GetUtcNow().ToUnixTimeMilliseconds());
                failures++;
                var delay = _retry.Next();
                var message = DescribeError(ex);
                _stats.OnCopyFailed(message);
                Log.CopyFailed(_log, TEncoder.Table, failures, batch.Rows, (long)delay.TotalMilliseconds, message);
                await Task.Delay(delay, _time, abort).ConfigureAwait(false);
                continue;
            }

            var elapsed = _time.GetElapsedTime(started);
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            _stats.OnAttemptFinished(now);
            foreach (var exchangeMs in batch.ExchangeTimesMs)
            {
                _stats.CommitLatencySeconds.Observe(Math.Max(0, now - exchangeMs) / 1000.0);
            }

            _stats.OnCommitted(batch.Rows, now, elapsed.TotalSeconds);
            Log.CopyCommitted(_log, TEncoder.Table, batch.Rows, elapsed.TotalMilliseconds);
            if (failures > 0)
            {
                Log.CopyRecovered(_log, TEncoder.Table, failures);
                _retry.Reset();
            }

            batch.Reset();
            return;
        }
    }

    private async Task CopyAsync(CopyBatch batch, CancellationToken abort)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(abort).ConfigureAwait(false);
        var copy = await connection.BeginRawBinaryCopyAsync(TEncoder.CopyCommand, abort).ConfigureAwait(false);
        try
        {
            await copy.WriteAsync(batch.Payload(), abort).ConfigureAwait(false);
        }
        catch
        {
            // Without an explicit cancel, disposing would end the COPY normally and could commit a partial batch.
            await copy.CancelAsync().ConfigureAwait(false);
            await copy.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        // Completing the COPY is the commit: errors in the data surface here as PostgresException.
        await copy.DisposeAsync().ConfigureAwait(false);
    }

    private static bool IsTransient(Exception ex) => ex is NpgsqlException or IOException or SocketException or TimeoutException
        or InvalidOperationException or OperationCanceledException;

    private static string DescribeError(Exception ex) => ex switch
    {
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        _ => $"{ex.GetType().Name}: {ex.Message}",
    };
}
