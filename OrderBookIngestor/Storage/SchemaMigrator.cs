using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Observability;

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
        var all = files.Prepend("schema/surface/storage_functions.sql").Append("schema/surface/views.sql");
        if (createRoles)
        {
            all = all.Append("schema/surface/roles.sql");
        }

        return string.Join("\n\n", all.Select(f => Render(Resource(f), tier)));
    }

    public async Task<MigrationOutcome> MigrateAsync(CancellationToken ct, bool createRoles = false)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
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

    private async Task<(string Tier, string? Note)> ChooseTierAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        var wanted = _options.StorageTier;
        var citus = await ExtensionInstalledAsync(connection, tx, "citus", ct).ConfigureAwait(false);
        if (wanted == StorageTiers.Citus || (wanted == StorageTiers.Auto && citus))
        {
            return citus ? (StorageTiers.Citus, null)
                : throw new ConfigurationException("StorageTier: citus, but the citus extension is not installed in this database (CREATE EXTENSION citus, as a superuser, on the coordinator).");
        }

        if (wanted == StorageTiers.Postgres)
        {
            return (StorageTiers.Postgres, null);
        }

        string? note = null;
        if (!await ExtensionInstalledAsync(connection, tx, "timescaledb", ct).ConfigureAwait(false))
        {
            var available = await Scalar<string>(connection, tx, "SELECT name FROM pg_available_extensions WHERE name = 'timescaledb'", ct).ConfigureAwait(false) is not null;
            if (available)
            {
                await tx.SaveAsync("timescaledb", ct).ConfigureAwait(false);
                try
                {
                    await Execute(connection, tx, "CREATE EXTENSION IF NOT EXISTS timescaledb", ct).ConfigureAwait(false);
                    await tx.ReleaseAsync("timescaledb", ct).ConfigureAwait(false);
                }
                catch (PostgresException ex)
                {
                    await tx.RollbackAsync("timescaledb", ct).ConfigureAwait(false);
                    note = $"TimescaleDB is installed on the server but could not be enabled ({ex.MessageText}; it needs shared_preload_libraries = 'timescaledb' and a role allowed to CREATE EXTENSION)";
                    available = false;
                }
            }
            else
            {
                note = "TimescaleDB is not installed on this server";
            }

            if (!available)
            {
                return wanted == StorageTiers.Auto
                    ? (StorageTiers.Postgres, note + ": using native partitions maintained by the daemon")
                    : throw new ConfigurationException($"StorageTier: {wanted}, but {note}.");
            }
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

    private static async Task<bool> ExtensionInstalledAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_extension WHERE extname = $1", connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = name });
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? 0L) > 0;
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

    private static async Task WriteSettingAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string key, string value, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO marketdata.storage_settings (key, value) VALUES ($1, $2)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
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
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
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
