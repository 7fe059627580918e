// Around 400 lines: migration, the storage tier choice with its reasons and the tier checks belong together;
// the SQL itself lives in schema/ and is embedded.
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Resilience;

namespace OrderBookIngestor.Storage;

/// <summary>What a migrate did: numbered migrations applied, the database's storage tier, whether the tier's
/// setup (partitioning or hypertables, rollups, views) ran again, and why a better tier was not used.</summary>
public sealed record MigrationOutcome(int Applied, string Tier, bool SetupApplied, string? TierNote);

/// <summary>
/// Brings a database to the current schema in one transaction, under an advisory lock (daemons that start
/// together against one database wait for each other):
/// <list type="number">
/// <item>the numbered migrations in schema/ (embedded in the binary), each once, recorded in marketdata.schema_migrations,
/// rendered for the storage tier (native partitioning markers);</item>
/// <item>the storage tier, chosen at the first migrate (auto: Citus if installed, else TimescaleDB if it is or can be
/// enabled, with or without its Community features, else plain PostgreSQL) and recorded;</item>
/// <item>the tier's setup (schema/tiers/) and the query surface (schema/surface/views.sql), run again only when their
/// text or the partition/retention settings changed, so a daemon running as the writer role (no DDL rights)
/// passes through a current schema without touching it.</item>
/// </list>
/// </summary>
public sealed partial class SchemaMigrator
{
    /// <summary>Arbitrary but fixed: "OBI" in ASCII.</summary>
    private const long AdvisoryLockKey = 0x4F4249;

    /// <summary>Schema work is not the hot path: a first migrate on Citus creates hundreds of shards (17–27 s measured
    /// with 32 shards per table), and a daemon may wait here for another one's migrate. Npgsql's default is 30 s.</summary>
    private const int MigrationTimeoutSeconds = 600;

    /// <summary>Attempts at a migration that meets another session's change of a shared catalog row.</summary>
    private const int ConcurrentAttempts = 8;

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _log;
    private readonly IngestorOptions _options;

    public SchemaMigrator(NpgsqlDataSource dataSource, ILogger log, IngestorOptions? options = null)
    {
        _dataSource = dataSource;
        _log = log;
        _options = options ?? new IngestorOptions();
    }

    /// <summary>The numbered migrations (schema/NNN_name.sql), in order, unrendered.</summary>
    public static IReadOnlyList<(string Name, string Sql)> Migrations()
        => typeof(SchemaMigrator).Assembly.GetManifestResourceNames()
            .Where(n => NumberedMigration().IsMatch(n))
            .Order(StringComparer.Ordinal)
            .Select(n => (Path.GetFileNameWithoutExtension(n["schema/".Length..]), Resource(n)))
            .ToList();

    /// <summary>A migration as it runs on <paramref name="tier"/>: partitioning markers become DDL on plain PostgreSQL and Citus.</summary>
    public static string Render(string sql, string tier)
    {
        var partitioned = tier is StorageTiers.Postgres or StorageTiers.Citus;
        sql = Include().Replace(sql, m => Render(Resource("schema/tiers/" + m.Groups[1].Value), tier));
        return partitioned ? Marker().Replace(sql, m => m.Groups[1].Value) : sql;
    }

    /// <summary>The tier's setup followed by the views and functions users query, rendered (and the roles, if asked).</summary>
    public static string SetupSql(string tier, bool createRoles)
    {
        var files = tier switch
        {
            StorageTiers.Timescale => new[] { "schema/tiers/timescaledb.sql" },
            StorageTiers.TimescaleApache => ["schema/tiers/timescaledb-apache.sql"],
            StorageTiers.Citus => ["schema/tiers/postgres.sql", "schema/tiers/citus.sql"],
            _ => ["schema/tiers/postgres.sql"],
        };
        var all = files.Prepend("schema/surface/storage_functions.sql").Append("schema/surface/views.sql").Append("schema/surface/book_at.sql");
        if (createRoles)
        {
            all = all.Append("schema/surface/roles.sql");
        }

        return string.Join("\n\n", all.Select(f => Render(Resource(f), tier)));
    }

    public async Task<MigrationOutcome> MigrateAsync(CancellationToken ct, bool createRoles = false)
    {
        // Backoff long enough for the other session's migration to end: a first migrate on Citus takes seconds.
        var backoff = new RetryPolicy(TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10), new Random());
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await MigrateOnceAsync(createRoles, ct).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (attempt < ConcurrentAttempts && IsConcurrentCatalogChange(ex))
            {
                // The transaction rolled back whole, so running it again is safe.
                Log.MigrationRetried(_log, attempt, DatabaseErrors.Describe(ex));
                await Task.Delay(backoff.Next(), ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Another session changed the same catalog row at the same moment. The advisory lock keeps migrations of one
    /// database apart, but roles are shared by every database of a server: migrations of two databases there (a
    /// Citus coordinator propagates each GRANT to a role as an ALTER ROLE on its workers) can meet on a role's row.
    /// </summary>
    internal static bool IsConcurrentCatalogChange(PostgresException ex)
        => DatabaseErrors.IsConcurrencyConflict(ex)
           || (ex.SqlState == PostgresErrorCodes.UniqueViolation && ex.ConstraintName == "pg_authid_rolname_index");

    private async Task<MigrationOutcome> MigrateOnceAsync(bool createRoles, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        // Warnings the schema raises for the operator (a key left to rebuild at a quiet time, a rollup kept under
        // another name) reach the log; the usual "already exists, skipping" notices do not.
        connection.Notice += (_, e) =>
        {
            if (e.Notice.InvariantSeverity is "WARNING")
            {
                Log.MigrationWarning(_log, e.Notice.MessageText);
            }
        };
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await Execute(connection, tx, $"SELECT pg_advisory_xact_lock({AdvisoryLockKey})", ct).ConfigureAwait(false);

        // Only a database never migrated needs these; checking first lets a role without CREATE pass.
        if (await Scalar<string>(connection, tx, "SELECT to_regclass('marketdata.schema_migrations')::text", ct).ConfigureAwait(false) is null)
        {
            await Execute(connection, tx, """
                CREATE SCHEMA IF NOT EXISTS marketdata;
                CREATE TABLE IF NOT EXISTS marketdata.schema_migrations (
                    name       text PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now());
                """, ct).ConfigureAwait(false);
        }

        var applied = new HashSet<string>(StringComparer.Ordinal);
        await using (var cmd = new NpgsqlCommand("SELECT name FROM marketdata.schema_migrations", connection, tx))
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                applied.Add(reader.GetString(0));
            }
        }

        var settings = await ReadSettingsAsync(connection, tx, ct).ConfigureAwait(false);
        var recorded = settings.GetValueOrDefault("tier");
        var (tier, note) = recorded is not null ? (CheckRecorded(recorded), null) : await ChooseTierAsync(connection, tx, ct).ConfigureAwait(false);
        if (tier == StorageTiers.Timescale && await WorkerShortageAsync(connection, tx, ct).ConfigureAwait(false) is { } shortage)
        {
            note = note is null ? shortage : $"{note}; {shortage}";
        }

        var count = 0;
        foreach (var (name, sql) in Migrations())
        {
            if (applied.Contains(name))
            {
                continue;
            }

            await Execute(connection, tx, Render(sql, tier), ct).ConfigureAwait(false);
            await using var record = new NpgsqlCommand("INSERT INTO marketdata.schema_migrations (name) VALUES ($1)", connection, tx);
            record.Parameters.Add(new NpgsqlParameter { Value = name });
            await record.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            Log.MigrationApplied(_log, name);
            count++;
        }

        // Roles are not part of the hash: a later plain migrate (or the writer's start) must not see a change.
        var setup = SetupSql(tier, createRoles: false);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(setup + "\n" + StorageConfigText())));
        var setupApplied = false;
        if (recorded is null || count > 0 || settings.GetValueOrDefault("setup_hash") != hash)
        {
            await WriteSettingAsync(connection, tx, "tier", tier, ct).ConfigureAwait(false);
            await WriteStorageTablesAsync(connection, tx, ct).ConfigureAwait(false);
            await Execute(connection, tx, setup, ct).ConfigureAwait(false);
            await WriteSettingAsync(connection, tx, "setup_hash", hash, ct).ConfigureAwait(false);
            setupApplied = true;
        }

        if (createRoles)
        {
            await Execute(connection, tx, Resource("schema/surface/roles.sql"), ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return new MigrationOutcome(count, tier, setupApplied, note);
    }

    /// <summary>The tier recorded at the first migrate, or null when the database was never migrated.</summary>
    public async Task<string?> ReadTierAsync(CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        return (await ReadSettingsAsync(connection, null, ct).ConfigureAwait(false)).GetValueOrDefault("tier");
    }

    private string CheckRecorded(string recorded)
    {
        if (_options.StorageTier != StorageTiers.Auto && _options.StorageTier != recorded)
        {
            throw new ConfigurationException(
                $"StorageTier: this database was set up as '{recorded}' and a tier cannot change in place; set StorageTier to auto or {recorded}, or record into a new database.");
        }

        return recorded;
    }

    /// <summary>Where an extension stands on this server and in this database. Read before any CREATE EXTENSION:
    /// TimescaleDB answers CREATE EXTENSION without its preloaded library with a FATAL error that ends the
    /// session (and so the migrate's transaction), which no savepoint can catch.</summary>
    internal enum ExtensionState
    {
        /// <summary>Not installed on the server (no control file).</summary>
        Absent,

        /// <summary>Installed, but its library is not in shared_preload_libraries, so it cannot be created.</summary>
        NotPreloaded,

        /// <summary>Installed and preloaded; not created in this database yet.</summary>
        Loadable,

        /// <summary>Created in this database.</summary>
        Created,
    }

    /// <summary>
    /// Reads each extension's state in one query. A preloaded library registers its settings at server start, so
    /// they show in pg_settings (readable by any role, unlike shared_preload_libraries itself); a setting only named
    /// in postgresql.conf without its library stays a placeholder, which pg_settings does not list.
    /// </summary>
    internal static async Task<Dictionary<string, ExtensionState>> ReadExtensionStatesAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, CancellationToken ct)
    {
        var states = new Dictionary<string, ExtensionState>(StringComparer.Ordinal)
        {
            ["citus"] = ExtensionState.Absent,
            ["timescaledb"] = ExtensionState.Absent,
        };
        await using var cmd = new NpgsqlCommand("""
            SELECT e.name,
                   EXISTS (SELECT 1 FROM pg_extension x WHERE x.extname = e.name),
                   EXISTS (SELECT 1 FROM pg_settings s WHERE s.name = e.marker)
            FROM (VALUES ('citus', 'citus.shard_count'), ('timescaledb', 'timescaledb.max_background_workers')) AS e(name, marker)
            WHERE EXISTS (SELECT 1 FROM pg_available_extensions a WHERE a.name = e.name)
            """, connection, tx);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            states[reader.GetString(0)] = reader.GetBoolean(1) ? ExtensionState.Created
                : reader.GetBoolean(2) ? ExtensionState.Loadable : ExtensionState.NotPreloaded;
        }

        return states;
    }

    /// <summary>What an operator does to make an extension usable, in one sentence.</summary>
    internal static string Remedy(string extension, ExtensionState state) => (extension, state) switch
    {
        ("timescaledb", ExtensionState.Absent) => "TimescaleDB is not installed on this server",
        ("timescaledb", ExtensionState.NotPreloaded) =>
            "TimescaleDB is installed on this server but not preloaded: add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL",
        ("citus", ExtensionState.Absent) => "the citus extension is not installed on this server",
        ("citus", ExtensionState.NotPreloaded) =>
            "Citus is installed on this server but not preloaded: add shared_preload_libraries = 'citus' (first in the list) to postgresql.conf and restart PostgreSQL",
        _ => $"{extension} could not be enabled",
    };

    private async Task<(string Tier, string? Note)> ChooseTierAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        var wanted = _options.StorageTier;
        var states = await ReadExtensionStatesAsync(connection, tx, ct).ConfigureAwait(false);
        var citus = states["citus"];
        var timescale = states["timescaledb"];

        // Auto takes Citus only where the operator made this database a Citus coordinator (CREATE EXTENSION citus,
        // workers added): a preloaded library alone does not say the database should be distributed.
        if (wanted == StorageTiers.Citus || (wanted == StorageTiers.Auto && citus == ExtensionState.Created))
        {
            if (citus == ExtensionState.Loadable)
            {
                await CreateExtensionAsync(connection, tx, "citus", ct).ConfigureAwait(false);
            }
            else if (citus != ExtensionState.Created)
            {
                throw new ConfigurationException($"StorageTier: citus cannot be used here: {Remedy("citus", citus)}.");
            }

            return (StorageTiers.Citus, null);
        }

        if (wanted == StorageTiers.Postgres)
        {
            return (StorageTiers.Postgres, null);
        }

        if (timescale == ExtensionState.Loadable)
        {
            await CreateExtensionAsync(connection, tx, "timescaledb", ct).ConfigureAwait(false);
        }
        else if (timescale != ExtensionState.Created)
        {
            if (wanted != StorageTiers.Auto)
            {
                throw new ConfigurationException($"StorageTier: {wanted} cannot be used here: {Remedy("timescaledb", timescale)}.");
            }

            var notes = new List<string> { Remedy("timescaledb", timescale) };
            if (citus == ExtensionState.NotPreloaded)
            {
                notes.Add(Remedy("citus", citus));
            }

            return (StorageTiers.Postgres, string.Join("; ", notes) + ": using native partitions maintained by the daemon");
        }

        var license = await Scalar<string>(connection, tx, "SELECT current_setting('timescaledb.license', true)", ct).ConfigureAwait(false);
        var full = !string.Equals(license, "apache", StringComparison.OrdinalIgnoreCase);
        if (wanted == StorageTiers.Timescale && !full)
        {
            throw new ConfigurationException("StorageTier: timescaledb needs TimescaleDB's Community features, but this server runs the Apache-only edition (timescaledb.license = apache); use timescaledb-apache or auto.");
        }

        return wanted == StorageTiers.TimescaleApache || !full
            ? (StorageTiers.TimescaleApache, full ? null : "TimescaleDB runs with its Apache-licensed features only: retention and rollups are run by the daemon")
            : (StorageTiers.Timescale, null);
    }

    /// <summary>
    /// TimescaleDB runs every policy job (compression, retention, aggregate refresh: 14 in a migrated database) in a
    /// background worker taken from max_worker_processes, which parallel queries share. At PostgreSQL's default of 8,
    /// 12 of the 14 jobs failed to start after a migrate here ("failed to start a background worker"; retried later).
    /// </summary>
    private static async Task<string?> WorkerShortageAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT current_setting('max_worker_processes')::int,
                   coalesce(current_setting('timescaledb.max_background_workers', true)::int, 16) + current_setting('max_parallel_workers')::int + 3
            """, connection, tx);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        var (have, need) = (reader.GetInt32(0), reader.GetInt32(1));
        return have >= need ? null
            : $"max_worker_processes = {have} leaves TimescaleDB's policy jobs short of background workers (they fail to start and are retried later): " +
              $"set it to at least {need} (timescaledb.max_background_workers + max_parallel_workers + 3) and restart PostgreSQL";
    }

    /// <summary>CREATE EXTENSION for a library the server has preloaded. What can still go wrong (a role not allowed to
    /// create it) is an ERROR, so a savepoint keeps the migrate's transaction usable for the message.</summary>
    private static async Task CreateExtensionAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string name, CancellationToken ct)
    {
        await tx.SaveAsync("extension", ct).ConfigureAwait(false);
        try
        {
            await Execute(connection, tx, $"CREATE EXTENSION IF NOT EXISTS {name}", ct).ConfigureAwait(false);
            await tx.ReleaseAsync("extension", ct).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.Severity is not ("FATAL" or "PANIC"))
        {
            await tx.RollbackAsync("extension", ct).ConfigureAwait(false);
            throw new ConfigurationException($"StorageTier: {name} is preloaded but could not be created in this database ({ex.SqlState}: {ex.MessageText}); run CREATE EXTENSION {name} as a superuser, or pick another tier.");
        }
    }

    /// <summary>The partition widths and retention as configured, one line per table (also part of the setup hash).</summary>
    private string StorageConfigText()
        => string.Join("\n", StorageLayout.Tables.Select(t => $"{t.Table} {t.TimeColumn} {StorageLayout.ChunkHours(_options, t)}h {StorageLayout.RetentionDays(_options, t)}d"));

    private async Task WriteStorageTablesAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        foreach (var t in StorageLayout.Tables)
        {
            var days = StorageLayout.RetentionDays(_options, t);
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO marketdata.storage_tables (table_name, time_column, chunk_interval, retention) VALUES ($1, $2, $3, $4)
                ON CONFLICT (table_name) DO UPDATE SET time_column = EXCLUDED.time_column, chunk_interval = EXCLUDED.chunk_interval, retention = EXCLUDED.retention
                """, connection, tx);
            cmd.Parameters.Add(new NpgsqlParameter { Value = t.Table });
            cmd.Parameters.Add(new NpgsqlParameter { Value = t.TimeColumn });
            cmd.Parameters.Add(new NpgsqlParameter { Value = TimeSpan.FromHours(StorageLayout.ChunkHours(_options, t)) });
            cmd.Parameters.Add(new NpgsqlParameter { Value = days > 0 ? TimeSpan.FromDays(days) : DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Interval });
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>marketdata.storage_settings as key → value; empty when the database was never migrated.</summary>
    private static async Task<Dictionary<string, string>> ReadSettingsAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, CancellationToken ct)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        if (await Scalar<string>(connection, tx, "SELECT to_regclass('marketdata.storage_settings')::text", ct).ConfigureAwait(false) is null)
        {
            return settings;
        }

        await using var cmd = new NpgsqlCommand("SELECT key, value FROM marketdata.storage_settings", connection, tx);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            settings[reader.GetString(0)] = reader.GetString(1);
        }

        return settings;
    }

    /// <summary>The time is taken in VALUES, not in DO UPDATE: Citus (a reference table there) allows only IMMUTABLE functions in DO UPDATE SET.</summary>
    private static async Task WriteSettingAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string key, string value, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO marketdata.storage_settings (key, value, updated_at) VALUES ($1, $2, now())
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
            """, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = key });
        cmd.Parameters.Add(new NpgsqlParameter { Value = value });
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static async Task<T?> Scalar<T>(NpgsqlConnection connection, NpgsqlTransaction? tx, string sql, CancellationToken ct)
        where T : class
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as T;
    }

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx) { CommandTimeout = MigrationTimeoutSeconds };
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static string Resource(string name)
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Embedded schema file {name} is missing from the binary.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    [GeneratedRegex(@"^schema/\d{3}_[a-z0-9_]+\.sql$")]
    private static partial Regex NumberedMigration();

    [GeneratedRegex(@"/\*\{\{(.*?)\}\}\*/")]
    private static partial Regex Marker();

    [GeneratedRegex(@"^-- \{\{include ([a-z0-9_\-]+\.sql)\}\}$", RegexOptions.Multiline)]
    private static partial Regex Include();
}
