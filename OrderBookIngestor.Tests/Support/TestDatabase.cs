using Npgsql;

namespace OrderBookIngestor.Tests.Support;

/// <summary>
/// A fresh database on the PostgreSQL server that scripts/test.sh starts (ORDERBOOK_TEST_ADMIN names its
/// admin connection). Each fixture gets its own database, dropped afterwards.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string AdminVariable = "ORDERBOOK_TEST_ADMIN";

    private readonly string _admin;

    private TestDatabase(string admin, string name)
    {
        _admin = admin;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true }.ConnectionString;
        DataSource = NpgsqlDataSource.Create(ConnectionString);
    }

    public string Name { get; }

    public string ConnectionString { get; }

    public NpgsqlDataSource DataSource { get; }

    public static async Task<TestDatabase> CreateAsync()
    {
        var admin = Environment.GetEnvironmentVariable(AdminVariable);
        if (string.IsNullOrEmpty(admin))
        {
            // Not skipped silently: without a server these tests cannot say anything, so they fail and say why.
            Assert.Fail($"{AdminVariable} is not set. Run the suite with ./scripts/test.sh, which starts a private PostgreSQL server.");
        }

        var name = "obi_test_" + Guid.NewGuid().ToString("N")[..12];
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await cmd.ExecuteNonQueryAsync();
        }

        return new TestDatabase(admin!, name);
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        var value = await cmd.ExecuteScalarAsync();
        return (T)Convert.ChangeType(value!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", connection);
        await cmd.ExecuteNonQueryAsync();
    }
}
