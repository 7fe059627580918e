using System.Reflection;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderBookIngestor.Observability;

namespace OrderBookIngestor.Storage;

/// <summary>
/// Applies the ordered, idempotent migrations in schema/ (embedded in the binary) and records them in
/// marketdata.schema_migrations. An advisory lock serialises daemons that start together against one database.
/// </summary>
public sealed class SchemaMigrator
{
    /// <summary>Arbitrary but fixed: "OBI" in ASCII.</summary>
    private const long AdvisoryLockKey = 0x4F4249;

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _log;

    public SchemaMigrator(NpgsqlDataSource dataSource, ILogger log)
    {
        _dataSource = dataSource;
        _log = log;
    }

    public static IReadOnlyList<(string Name, string Sql)> Migrations()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("schema/", StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => (Path.GetFileNameWithoutExtension(n["schema/".Length..]), Read(assembly, n)))
            .ToList();
    }

    /// <returns>How many migrations were applied now (0 when the schema was already current).</returns>
    public async Task<int> MigrateAsync(CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await Execute(connection, tx, $"SELECT pg_advisory_xact_lock({AdvisoryLockKey})", ct).ConfigureAwait(false);
        await Execute(connection, tx, """
            CREATE SCHEMA IF NOT EXISTS marketdata;
            CREATE TABLE IF NOT EXISTS marketdata.schema_migrations (
                name       text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now());
            """, ct).ConfigureAwait(false);

        var applied = new HashSet<string>(StringComparer.Ordinal);
        await using (var cmd = new NpgsqlCommand("SELECT name FROM marketdata.schema_migrations", connection, tx))
        await using (var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                applied.Add(reader.GetString(0));
            }
        }

        var count = 0;
        foreach (var (name, sql) in Migrations())
        {
            if (applied.Contains(name))
            {
                continue;
            }

            await Execute(connection, tx, sql, ct).ConfigureAwait(false);
            await using var record = new NpgsqlCommand("INSERT INTO marketdata.schema_migrations (name) VALUES ($1)", connection, tx);
            record.Parameters.Add(new NpgsqlParameter { Value = name });
            await record.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            Log.MigrationApplied(_log, name);
            count++;
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return count;
    }

    /// <summary>Which storage tier this database offers. Tiers beyond plain tables arrive with the storage work.</summary>
    public async Task<string> DetectTierAsync(CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'", connection);
        var timescale = (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? 0L) > 0;
        return timescale ? "timescaledb-present-plain-tables" : "plain-postgresql";
    }

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static string Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Embedded migration {name} is missing from the binary.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
