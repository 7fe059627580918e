using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Resilience;

namespace OrderBookIngestor.Storage;

/// <summary>Persists gap ledger rows. Few rows, so plain parameterised INSERTs, retried while the database is unavailable
/// (until the drain deadline); a row the database refuses is logged in full and counted instead.</summary>
public sealed class GapWriter
{
    private readonly GapLedger _ledger;
    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly RetryPolicy _retry;
    private readonly LogLimiter _failureLog;

    public GapWriter(GapLedger ledger, NpgsqlDataSource dataSource, TimeProvider time, ILogger log, Random random)
    {
        _ledger = ledger;
        _dataSource = dataSource;
        _time = time;
        _log = log;
        _retry = new RetryPolicy(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), random);
        _failureLog = new LogLimiter(time, TimeSpan.FromMinutes(1));
    }

    public async Task RunAsync(CancellationToken abort)
    {
        try
        {
            await foreach (var gap in _ledger.Reader.ReadAllAsync(abort).ConfigureAwait(false))
            {
                while (true)
                {
                    try
                    {
                        await InsertAsync(gap, abort).ConfigureAwait(false);
                        _retry.Reset();
                        Log.GapRecorded(_log, gap.Stream, gap.Reason.Label(), gap.FirstMissingId, gap.LastMissingId, (gap.EndMs - gap.StartMs) / 1000.0);
                        break;
                    }
                    catch (Exception ex) when (DatabaseErrors.IsRejected(ex))
                    {
                        // Retrying the same row gets the same refusal: the log line is its record, in full.
                        _ledger.OnRejected();
                        Log.GapRowRejected(_log, DatabaseErrors.Describe(ex), gap.SymbolId, gap.Stream, DateTimeOffset.FromUnixTimeMilliseconds(gap.StartMs),
                            DateTimeOffset.FromUnixTimeMilliseconds(gap.EndMs), gap.FirstMissingId, gap.LastMissingId, gap.Reason.Label(), gap.Details);
                        break;
                    }
                    catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex) && !abort.IsCancellationRequested)
                    {
                        _ledger.OnWriteFailed();
                        var delay = _retry.Next();
                        if (_failureLog.TryEnter(out _))
                        {
                            Log.GapWriteFailed(_log, DatabaseErrors.Describe(ex), (long)delay.TotalMilliseconds);
                        }

                        await Task.Delay(delay, _time, abort).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            var lost = 0;
            while (_ledger.Reader.TryRead(out _))
            {
                lost++;
            }

            if (lost > 0)
            {
                Log.GapRowsLost(_log, lost);
            }
        }
    }

    private async Task InsertAsync(GapRecord gap, CancellationToken ct)
    {
        await using var cmd = _dataSource.CreateCommand("""
            INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, first_missing_id, last_missing_id, reason, detected_at, details)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """);
        cmd.Parameters.Add(new NpgsqlParameter { Value = gap.SymbolId });
        cmd.Parameters.Add(new NpgsqlParameter { Value = gap.Stream });
        cmd.Parameters.Add(new NpgsqlParameter { Value = DateTimeOffset.FromUnixTimeMilliseconds(gap.StartMs).UtcDateTime });
        cmd.Parameters.Add(new NpgsqlParameter { Value = DateTimeOffset.FromUnixTimeMilliseconds(gap.EndMs).UtcDateTime });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)gap.FirstMissingId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)gap.LastMissingId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
        cmd.Parameters.Add(new NpgsqlParameter { Value = gap.Reason.Label() });
        cmd.Parameters.Add(new NpgsqlParameter { Value = DateTimeOffset.FromUnixTimeMilliseconds(gap.DetectedMs).UtcDateTime });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)gap.Details ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
