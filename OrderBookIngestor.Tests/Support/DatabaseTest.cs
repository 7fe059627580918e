namespace OrderBookIngestor.Tests.Support;

/// <summary>A fixture whose every test gets a fresh database on the suite's PostgreSQL server, dropped afterwards.</summary>
[NonParallelizable]
public abstract class DatabaseTest
{
    protected TestDatabase Db { get; private set; } = null!;

    [SetUp]
    public async Task CreateDatabase() => Db = await TestDatabase.CreateAsync();

    [TearDown]
    public async Task DropDatabase()
    {
        // Null when creation failed (no server): that failure is already the test's result.
        if (Db is not null)
        {
            await Db.DisposeAsync();
        }
    }
}
