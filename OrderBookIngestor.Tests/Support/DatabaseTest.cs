using OrderBookIngestor.Configuration;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Tests.Support;

/// <summary>
/// A fixture whose every test gets a fresh database on one of the suite's PostgreSQL servers, dropped afterwards.
/// Fixtures that hold for every storage tier take the tier as a parameter
/// (<c>[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]</c>) and run once per tier.
/// </summary>
public abstract class DatabaseTest
{
    protected DatabaseTest(string tier = StorageTiers.Postgres) => Tier = tier;

    /// <summary>The storage tier of this fixture's server.</summary>
    protected string Tier { get; }

    protected TestDatabase Db { get; private set; } = null!;

    [SetUp]
    public async Task CreateDatabase() => Db = await TestDatabase.CreateAsync(Tier);

    [TearDown]
    public async Task DropDatabase()
    {
        // Null when creation failed (no server): that failure is already the test's result.
        if (Db is not null)
        {
            await Db.DisposeAsync();
            Db = null!;
        }
    }
}

/// <summary>The storage tiers a fixture runs on: each has its own server in a test run (see <see cref="TestDatabase"/>).</summary>
public static class TestTiers
{
    public static IEnumerable<TestFixtureData> All => Of(StorageTiers.All);

    /// <summary>The tiers with native partitions maintained by the daemon.</summary>
    public static IEnumerable<TestFixtureData> Partitioned => Of([StorageTiers.Postgres, StorageTiers.Citus]);

    public static IEnumerable<TestFixtureData> Timescale => Of([StorageTiers.Timescale]);

    public static IEnumerable<TestFixtureData> TimescaleApache => Of([StorageTiers.TimescaleApache]);

    private static IEnumerable<TestFixtureData> Of(IEnumerable<string> tiers) => tiers.Select(t => new TestFixtureData(t).SetArgDisplayNames(t));
}
