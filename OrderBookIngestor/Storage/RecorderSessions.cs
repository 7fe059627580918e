using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>How the previous run of this instance ended: what it recorded, and the last moment it is known to have.</summary>
/// <param name="EndedAtMs">stopped_at after a clean stop, else its last heartbeat (a crash loses up to one interval).</param>
public sealed record PreviousSession(long EndedAtMs, bool Stopped, IReadOnlySet<string> Channels, IReadOnlySet<int> SymbolIds);

/// <summary>
/// marketdata.recorder_sessions: this run's row (its channels, symbols and a heartbeat), and the previous run's, read at
/// start. A stream that can be silent for hours (forceOrder) has no last row to date the daemon's downtime by; the
/// previous run's end does. Heartbeat failures are logged at a limited rate and never stop ingestion.
/// </summary>
public sealed class RecorderSessions
{
    /// <summary>How often last_seen_at is refreshed: a crash makes the next run's hole start up to this much early.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(10);

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly string _instance;
    private readonly ILogger _log;
    private readonly LogLimiter _failures;

    public RecorderSessions(NpgsqlDataSource dataSource, TimeProvider time, string instance, ILogger log)
    {
        _dataSource = dataSource;
        _time = time;
        _instance = instance;
        _log = log;
        _failures = new LogLimiter(time, TimeSpan.FromMinutes(1));
    }

    public Guid Id { get; } = Guid.NewGuid();

    /// <summary>Reads the previous run of this instance (null: none) and records this one.</summary>
    public async Task<PreviousSession?> StartAsync(IEnumerable<string> channels, IEnumerable<int> symbolIds, CancellationToken ct)
    {
        PreviousSession? previous = null;
        await using (var read = _dataSource.CreateCommand("""
            SELECT (extract(epoch FROM coalesce(stopped_at, last_seen_at)) * 1000)::bigint, stopped_at IS NOT NULL,
                   array_to_string(channels, ','), array_to_string(symbol_ids, ',')
            FROM marketdata.recorder_sessions WHERE instance = $1 ORDER BY last_seen_at DESC LIMIT 1
            """))
        {
            read.Parameters.Add(new NpgsqlParameter { Value = _instance });
            await using var r = await read.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                // Arrays travel as text: the daemon's data source is Npgsql's slim one, without array support.
                previous = new PreviousSession(r.GetInt64(0), r.GetBoolean(1), r.GetString(2).Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal),
                    r.GetString(3).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet());
            }
        }

        var now = _time.GetUtcNow();
        await using var insert = _dataSource.CreateCommand("""
            INSERT INTO marketdata.recorder_sessions (session_id, instance, channels, symbol_ids, started_at, last_seen_at)
            VALUES ($1, $2, string_to_array($3, ','), string_to_array($4, ',')::integer[], $5, $5)
            """);
        insert.Parameters.Add(new NpgsqlParameter { Value = Id });
        insert.Parameters.Add(new NpgsqlParameter { Value = _instance });
        insert.Parameters.Add(new NpgsqlParameter { Value = string.Join(',', channels) });
        insert.Parameters.Add(new NpgsqlParameter { Value = Ids(symbolIds) });
        insert.Parameters.Add(new NpgsqlParameter { Value = now });
        await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return previous;
    }

    /// <summary>Refreshes the heartbeat with what is recorded now (a reload changes it) every <see cref="HeartbeatInterval"/>.</summary>
    public async Task RunAsync(Func<(IReadOnlyList<string> Channels, IReadOnlyCollection<int> SymbolIds)> current, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(HeartbeatInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                var (channels, symbolIds) = current();
                await UpdateAsync(channels, symbolIds, stopped: false, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // shutting down; StopAsync writes the end
        }
    }

    /// <summary>After the drain: the moment this run stopped recording. Best effort (a database away: the next run uses the last heartbeat).</summary>
    public Task StopAsync(IReadOnlyList<string> channels, IReadOnlyCollection<int> symbolIds, CancellationToken ct)
        => UpdateAsync(channels, symbolIds, stopped: true, ct);

    private async Task UpdateAsync(IReadOnlyList<string> channels, IReadOnlyCollection<int> symbolIds, bool stopped, CancellationToken ct)
    {
        try
        {
            await using var cmd = _dataSource.CreateCommand("""
                UPDATE marketdata.recorder_sessions SET last_seen_at = $2, channels = string_to_array($3, ','), symbol_ids = string_to_array($4, ',')::integer[],
                       stopped_at = CASE WHEN $5 THEN $2 END
                WHERE session_id = $1
                """);
            cmd.Parameters.Add(new NpgsqlParameter { Value = Id });
            cmd.Parameters.Add(new NpgsqlParameter { Value = _time.GetUtcNow() });
            cmd.Parameters.Add(new NpgsqlParameter { Value = string.Join(',', channels) });
            cmd.Parameters.Add(new NpgsqlParameter { Value = Ids(symbolIds) });
            cmd.Parameters.Add(new NpgsqlParameter { Value = stopped });
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (DatabaseErrors.IsDatabaseFailure(ex))
        {
            if (_failures.TryEnter(out var suppressed))
            {
                Log.StorageJobFailed(_log, "session heartbeat", DatabaseErrors.Describe(ex), suppressed);
            }
        }
    }

    private static string Ids(IEnumerable<int> ids) => string.Join(',', ids.Order().Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
}
