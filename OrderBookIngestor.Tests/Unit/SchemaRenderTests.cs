using OrderBookIngestor.Configuration;
using OrderBookIngestor.Storage;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>The tier SQL that CI's plain PostgreSQL cannot run is at least assembled right: includes resolved once, markers per tier.</summary>
public sealed class SchemaRenderTests
{
    [TestCase(StorageTiers.Timescale, 1, 0)]
    [TestCase(StorageTiers.TimescaleApache, 1, 1)]
    [TestCase(StorageTiers.Postgres, 0, 1)]
    [TestCase(StorageTiers.Citus, 0, 1)]
    public void SetupSql_ResolvesEveryInclude(string tier, int hypertableBlocks, int rollupTables)
    {
        var sql = SchemaMigrator.SetupSql(tier, createRoles: false);
        Assert.That(sql, Does.Not.Contain("{{include"));
        Assert.That(Count(sql, "create_hypertable("), Is.EqualTo(hypertableBlocks));
        Assert.That(Count(sql, "CREATE TABLE IF NOT EXISTS marketdata.bt_1s"), Is.EqualTo(rollupTables));
        Assert.That(sql, Does.Contain("CREATE OR REPLACE FUNCTION marketdata.run_rollups"), "storage functions first");
    }

    [Test]
    public void PartitionMarkers_BecomeDdlOnlyOnPartitionedTiers()
    {
        var core = SchemaMigrator.Migrations().Single(m => m.Name == "001_core").Sql;
        Assert.That(SchemaMigrator.Render(core, StorageTiers.Postgres), Does.Contain(") PARTITION BY RANGE (ts_exchange);"));
        Assert.That(SchemaMigrator.Render(core, StorageTiers.Timescale), Does.Contain(") /*{{PARTITION BY RANGE (ts_exchange)}}*/;"));
    }

    private static int Count(string text, string what)
    {
        var n = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }
}
