using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Tests.Support;

/// <summary>
/// A fresh database on one of the PostgreSQL servers that scripts/test.sh starts, dropped afterwards. Each storage
/// tier has its own server (environment variables name their admin connections):
/// <list type="bullet">
/// <item>postgres: ORDERBOOK_TEST_ADMIN, plain PostgreSQL (where the extensions are installed, installed but not preloaded);</item>
/// <item>timescaledb: ORDERBOOK_TEST_TIMESCALE, timescaledb preloaded;</item>
/// <item>timescaledb-apache: ORDERBOOK_TEST_TIMESCALE_APACHE, preloaded with timescaledb.license = apache (a server-wide setting);</item>
/// <item>citus: ORDERBOOK_TEST_CITUS, a coordinator, with ORDERBOOK_TEST_CITUS_WORKERS (host:port,host:port) its two workers.
/// The database is created on all three nodes with the extension, and the workers are added to it.</item>
/// </list>
/// A tier whose server is not there is skipped with the reason, except under CI=true, where it fails: a broken
/// extension install must never turn the suite green.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string AdminVariable = "ORDERBOOK_TEST_ADMIN";

    /// <summary>Held by the one Citus database that exists at a time (see <see cref="CreateAsync"/>).</summary>
    private static readonly SemaphoreSlim CitusTurn = new(1, 1);

    private readonly string _admin;
    private readonly IReadOnlyList<string> _workers;
    private int _disposed;

    private TestDatabase(string tier, string admin, IReadOnlyList<string> workers, string name)
    {
        Tier = tier;
        _admin = admin;
        _workers = workers;
        Name = name;
        // Error details in the test log: these servers hold nothing secret.
        ConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true, IncludeErrorDetail = true }.ConnectionString;
        DataSource = NpgsqlDataSource.Create(ConnectionString);
    }

    /// <summary>The storage tier this database's server offers (what `migrate` with tier auto chooses there).</summary>
    public string Tier { get; }

    public string Name { get; }

    public string ConnectionString { get; }

    public NpgsqlDataSource DataSource { get; }

    /// <summary>The admin connection of the server that serves <paramref name="tier"/>, or null when the run has none.</summary>
    public static string? ServerFor(string tier) => Environment.GetEnvironmentVariable(tier switch
    {
        StorageTiers.Timescale => "ORDERBOOK_TEST_TIMESCALE",
        StorageTiers.TimescaleApache => "ORDERBOOK_TEST_TIMESCALE_APACHE",
        StorageTiers.Citus => "ORDERBOOK_TEST_CITUS",
        _ => AdminVariable,
    }) is { Length: > 0 } admin ? admin : null;

    /// <summary>Skips (or under CI=true fails) the current test when the run has no server for <paramref name="tier"/>.</summary>
    public static string RequireServer(string tier)
    {
        if (ServerFor(tier) is { } admin)
        {
            return admin;
        }

        if (tier == StorageTiers.Postgres)
        {
            // Not skipped: without a server these tests cannot say anything, so they fail and say why.
            Assert.Fail($"{AdminVariable} is not set. Run the suite with ./scripts/test.sh, which starts a private PostgreSQL server.");
        }

        var why = $"no {tier} server in this run: scripts/test.sh starts one only where the {(tier == StorageTiers.Citus ? "citus" : "timescaledb")} extension is installed";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail($"{why}; with CI=true every tier must run (is ../shared/extensions/install.sh in .ci/run?)");
        }

        Assert.Ignore(why);
        return "";
    }

    public static async Task<TestDatabase> CreateAsync(string tier = StorageTiers.Postgres)
    {
        var admin = RequireServer(tier);
        if (tier != StorageTiers.Citus)
        {
            return await CreateOnAsync(tier, admin, []);
        }

        // One Citus database at a time (fixtures run in parallel): roles belong to the whole cluster, and the first GRANT
        // to a role in a fresh database makes the coordinator ALTER that role on every worker. Two fresh databases
        // migrating at once then fail with "tuple concurrently updated" until one of them is done.
        await CitusTurn.WaitAsync();
        try
        {
            var workers = (Environment.GetEnvironmentVariable("ORDERBOOK_TEST_CITUS_WORKERS") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);
            return await CreateOnAsync(tier, admin, workers);
        }
        catch
        {
            CitusTurn.Release();
            throw;
        }
    }

    private static async Task<TestDatabase> CreateOnAsync(string tier, string admin, string[] workers)
    {
        var name = "obi_test_" + Guid.NewGuid().ToString("N")[..12];
        foreach (var node in workers.Select(w => WorkerAdmin(admin, w)).Prepend(admin))
        {
            await ExecuteAsync(node, $"CREATE DATABASE {name}");
            if (tier == StorageTiers.Citus)
            {
                await ExecuteAsync(new NpgsqlConnectionStringBuilder(node) { Database = name }.ConnectionString, "CREATE EXTENSION citus");
            }
        }

        if (tier == StorageTiers.Citus)
        {
            var coordinator = new NpgsqlConnectionStringBuilder(admin);
            var sql = $"SELECT citus_set_coordinator_host('{coordinator.Host}', {coordinator.Port});"
                + string.Concat(workers.Select(w => $"SELECT citus_add_node('{w.Split(':')[0]}', {w.Split(':')[1]});"));
            await ExecuteAsync(new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString, sql);
        }

        return new TestDatabase(tier, admin, workers, name);
    }

    private static string WorkerAdmin(string admin, string worker)
        => new NpgsqlConnectionStringBuilder(admin) { Host = worker.Split(':')[0], Port = int.Parse(worker.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) }.ConnectionString;

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection) { CommandTimeout = 120 };
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        var value = await cmd.ExecuteScalarAsync();
        return (T)Convert.ChangeType(value!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Every row of <paramref name="sql"/>, each made into a <typeparamref name="T"/> by <paramref name="row"/>.</summary>
    public async Task<List<T>> RowsAsync<T>(string sql, Func<NpgsqlDataReader, T> row)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
        {
            rows.Add(row(reader));
        }

        return rows;
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        cmd.CommandTimeout = 120;
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Runs a statement that TimescaleDB refuses while its own background job does the same work (a continuous
    /// aggregate refresh, a policy job): the refresh policy runs every 30 s, so a test's CALL may meet it. Retried
    /// for up to 30 s on that refusal (55P03) only: on a loaded 2-core machine the job's refresh outlasted 5 s.
    /// Any other error is raised with the server's warnings beside it: a policy job reports each chunk it could not
    /// do only as a WARNING, and then fails with a summary ("columnstore policy failure") that does not say why.
    /// </summary>
    public async Task ExecuteBesideTimescaleJobsAsync(string sql)
    {
        for (var attempt = 1; ; attempt++)
        {
            var warnings = new List<string>();
            try
            {
                await using var connection = await DataSource.OpenConnectionAsync();
                connection.Notice += (_, e) => warnings.Add($"{e.Notice.Severity} {e.Notice.SqlState} {e.Notice.MessageText} {e.Notice.Detail}");
                await using var cmd = new NpgsqlCommand(sql, connection) { CommandTimeout = 120 };
                await cmd.ExecuteNonQueryAsync();
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.LockNotAvailable && attempt < 120)
            {
                await Task.Delay(250);
            }
            catch (PostgresException ex) when (warnings.Count > 0)
            {
                throw new InvalidOperationException($"{sql}: {ex.SqlState} {ex.MessageText} {ex.Detail}; the server warned: {string.Join(" | ", warnings)}", ex);
            }
        }
    }

    /// <summary>What the refresh policy of the continuous aggregates would do, now (one CALL per statement: CALL is
    /// refused inside a pipeline). The policies are paused first: their own refresh, every 30 s, would otherwise hold
    /// the same window for as long as it takes under load.</summary>
    public async Task RefreshContinuousAggregatesAsync()
    {
        await PauseTimescaleJobsAsync();
        await ExecuteBesideTimescaleJobsAsync("CALL refresh_continuous_aggregate('marketdata.bt_1s', NULL, NULL)");
        await ExecuteBesideTimescaleJobsAsync("CALL refresh_continuous_aggregate('marketdata.trade_1s', NULL, NULL)");
    }

    /// <summary>
    /// Stops the scheduler from starting this database's policy jobs, and waits for any it started to end.
    /// The scheduler takes the change in only when it next wakes from its timer: a round of starts under way when
    /// the change commits goes on from its old list (seen: right after a migrate it was starting the new jobs while
    /// the test paused them), and a job it starts is in <c>pg_stat_activity</c> only once its worker has connected.
    /// So this waits until:
    /// <list type="bullet">
    /// <item>the database's scheduler is back in its timer: a later round starts from the new list, and its next wake
    /// cancels a paused job still running (57014);</item>
    /// <item>no policy worker is connected;</item>
    /// <item>no job was marked started in the last 3 s and not marked finished. The scheduler marks the start before it
    /// launches the worker, which was running 5–12 ms later in 8 starts measured beside three busy loops. A worker
    /// cancelled before it connected stays marked started (seen often after a pause), so an older mark is not waited
    /// for: a worker that really runs that long is in <c>pg_stat_activity</c>.</item>
    /// </list>
    /// </summary>
    public async Task PauseTimescaleJobsAsync()
    {
        await ExecuteAsync("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE hypertable_schema = 'marketdata'");
        const string Busy = """
            SELECT concat_ws('; ',
              (SELECT string_agg('the scheduler (' || coalesce(wait_event_type || ':' || wait_event, state, '?') || ')', ', ') FROM pg_stat_activity
                WHERE datname = current_database() AND backend_type = 'TimescaleDB Background Worker Scheduler' AND wait_event_type IS DISTINCT FROM 'Extension'),
              (SELECT string_agg(coalesce(nullif(application_name, ''), backend_type), ', ') FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND (application_name ~ 'Policy \[' OR backend_type ~ 'Policy')),
              (SELECT string_agg('job ' || job_id || ' started at ' || last_start, ', ') FROM _timescaledb_internal.bgw_job_stat
                WHERE last_start > last_finish AND last_start > clock_timestamp() - interval '3 seconds'))
            """;
        var busy = "";
        await Harness.WaitUntilAsync(async () => (busy = await ScalarAsync<string>(Busy)).Length == 0, TimeSpan.FromSeconds(60),
            () => $"TimescaleDB's jobs kept running: {busy}");
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        try
        {
            await DataSource.DisposeAsync();
            await using (var connection = new NpgsqlConnection(ConnectionString))
            {
                NpgsqlConnection.ClearPool(connection);
            }

            foreach (var node in _workers.Select(w => WorkerAdmin(_admin, w)).Prepend(_admin))
            {
                await ExecuteAsync(node, $"DROP DATABASE IF EXISTS {Name} WITH (FORCE)");
            }
        }
        finally
        {
            if (Tier == StorageTiers.Citus)
            {
                CitusTurn.Release();
            }
        }
    }
}
