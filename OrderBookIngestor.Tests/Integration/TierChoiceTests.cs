using Microsoft.Extensions.Logging.Abstractions;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// Which tier `migrate` chooses on each kind of server, and what it says when a better one is not usable. The plain
/// server of a test run is the case a new user meets right after installing TimescaleDB's or Citus's package: the
/// extension installed, its library not preloaded. There CREATE EXTENSION timescaledb ends the session with a FATAL
/// error, so the migrator must find out before it asks.
/// </summary>
public sealed class TierChoiceTests : DatabaseTest
{
    private static Task<MigrationOutcome> Migrate(TestDatabase db, string tier = StorageTiers.Auto)
        => new SchemaMigrator(db.DataSource, NullLogger.Instance, new IngestorOptions { StorageTier = tier }).MigrateAsync(CancellationToken.None);

    private async Task<bool> Installed(string extension)
        => await Db.ScalarAsync<long>($"SELECT count(*) FROM pg_available_extensions WHERE name = '{extension}'") > 0;

    /// <summary>What the plain server says about an extension: "not installed", or not preloaded with the line to add.</summary>
    private async Task<string> ExpectedRemedy(string extension)
        => await Installed(extension) ? $"shared_preload_libraries = '{extension}'" : "not installed";

    [Test]
    public async Task Auto_WhereNoExtensionIsUsable_ChoosesNativePartitions_AndNamesTheFix()
    {
        var outcome = await Migrate(Db);
        Assert.That(outcome.Tier, Is.EqualTo(StorageTiers.Postgres));
        Assert.That(outcome.TierNote, Does.Contain(await ExpectedRemedy("timescaledb")));
        if (await Installed("citus"))
        {
            Assert.That(outcome.TierNote, Does.Contain("shared_preload_libraries = 'citus'"), "a Citus install that cannot load is named too");
        }

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM pg_extension WHERE extname IN ('timescaledb', 'citus')"), Is.Zero);
        Assert.That(await Db.ScalarAsync<string>("SELECT marketdata.storage_tier()"), Is.EqualTo(StorageTiers.Postgres));
    }

    [TestCase(StorageTiers.Timescale, "timescaledb")]
    [TestCase(StorageTiers.TimescaleApache, "timescaledb")]
    [TestCase(StorageTiers.Citus, "citus")]
    public async Task AskingForATier_WhoseExtensionCannotLoadHere_IsAClearError_AndLeavesNothingBehind(string tier, string extension)
    {
        var ex = Assert.ThrowsAsync<ConfigurationException>(() => Migrate(Db, tier));
        Assert.That(ex!.Message, Does.StartWith($"StorageTier: {tier} cannot be used here: ").And.Contain(await ExpectedRemedy(extension)));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'marketdata'"), Is.Zero, "a refused migrate leaves nothing behind");

        // The session survived the refusal: the same database migrates as soon as a usable tier is asked for.
        Assert.That((await Migrate(Db)).Tier, Is.EqualTo(StorageTiers.Postgres));
    }

    [Test]
    public async Task Auto_OnATimescaleServer_EnablesTheExtension_AndNeedsNoAdvice()
    {
        await using var db = await TestDatabase.CreateAsync(StorageTiers.Timescale);
        var outcome = await Migrate(db);
        Assert.That((outcome.Tier, outcome.TierNote), Is.EqualTo((StorageTiers.Timescale, (string?)null)), "max_worker_processes = 32 on the test server is enough");
        Assert.That(await db.ScalarAsync<long>("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"), Is.EqualTo(1));
        var citus = Assert.ThrowsAsync<ConfigurationException>(() => Migrate(db, StorageTiers.Citus));
        Assert.That(citus!.Message, Does.Contain("set up as 'timescaledb'"), "a tier cannot change in place");
    }

    [Test]
    public async Task Auto_OnTheApacheEdition_ChoosesTimescaleApache_AndAskingForTheFullTierIsRefused()
    {
        await using (var db = await TestDatabase.CreateAsync(StorageTiers.TimescaleApache))
        {
            var outcome = await Migrate(db);
            Assert.That(outcome.Tier, Is.EqualTo(StorageTiers.TimescaleApache));
            Assert.That(outcome.TierNote, Does.Contain("Apache-licensed features only"));
        }

        await using (var db = await TestDatabase.CreateAsync(StorageTiers.TimescaleApache))
        {
            var ex = Assert.ThrowsAsync<ConfigurationException>(() => Migrate(db, StorageTiers.Timescale));
            Assert.That(ex!.Message, Does.Contain("timescaledb.license = apache"));
        }
    }

    [Test]
    public async Task Auto_OnACitusCoordinator_ChoosesCitus()
    {
        await using var db = await TestDatabase.CreateAsync(StorageTiers.Citus);
        var outcome = await Migrate(db);
        Assert.That((outcome.Tier, outcome.TierNote), Is.EqualTo((StorageTiers.Citus, (string?)null)));
        Assert.That(await db.ScalarAsync<long>("SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0"), Is.EqualTo(2), "two workers");
    }
}
