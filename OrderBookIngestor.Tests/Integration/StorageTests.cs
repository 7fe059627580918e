using Microsoft.Extensions.Logging.Abstractions;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

public sealed class StorageTests : DatabaseTest
{
    private async Task<int> Migrate() => (await new SchemaMigrator(Db.DataSource, NullLogger.Instance).MigrateAsync(CancellationToken.None)).Applied;

    private static TradeEvent Trade(long id) => new(1, id, 1_700_000_000_000 + id, 1_700_000_000_000 + id, 1_700_000_000_000_000, 100.5, 0.001, id * 10, (id * 10) + 2, id % 2 == 0);

    [Test]
    public async Task Migrations_ApplyOnceAndAreIdempotentWhenRunAgain()
    {
        Assert.That(await Migrate(), Is.EqualTo(SchemaMigrator.Migrations().Count));
        Assert.That(await Migrate(), Is.Zero);
        var tier = await Db.ScalarAsync<string>("SELECT marketdata.storage_tier()");
        foreach (var (name, sql) in SchemaMigrator.Migrations())
        {
            // Each file on its own must also be safe to re-run (operators do run them by hand).
            await using var cmd = Db.DataSource.CreateCommand(SchemaMigrator.Render(sql, tier));
            Assert.DoesNotThrowAsync(async () => await cmd.ExecuteNonQueryAsync(), name);
        }

        // So must the tier's setup and the views, which every changed configuration runs again.
        await using (var setup = Db.DataSource.CreateCommand(SchemaMigrator.SetupSql(tier, createRoles: false)))
        {
            Assert.DoesNotThrowAsync(async () => await setup.ExecuteNonQueryAsync(), "tier setup");
        }

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.schema_migrations"), Is.EqualTo(SchemaMigrator.Migrations().Count));
    }

    [Test]
    public async Task SymbolRegistration_IsStableAcrossRestarts()
    {
        await Migrate();
        var store = new SymbolStore(Db.DataSource);
        var first = await store.RegisterAsync([new("BTCUSDT", "BTC", "USDT", "TRADING", "PERPETUAL"), new("ETHUSDT", "ETH", "USDT", "TRADING", "PERPETUAL")], CancellationToken.None);
        var again = await store.RegisterAsync([new("ETHUSDT", "ETH", "USDT", "TRADING", "PERPETUAL"), new("SOLUSDT", "SOL", "USDT", "TRADING", "PERPETUAL")], CancellationToken.None);
        Assert.That(again["ETHUSDT"], Is.EqualTo(first["ETHUSDT"]));
        Assert.That(again["SOLUSDT"], Is.Not.EqualTo(first["BTCUSDT"]).And.Not.EqualTo(first["ETHUSDT"]));
        Assert.That(await Db.ScalarAsync<string>("SELECT base_asset FROM marketdata.symbols WHERE symbol = 'SOLUSDT'"), Is.EqualTo("SOL"));
    }

    [Test]
    public async Task Flusher_SendsABacklogAtOnce_AndLetsASmallBatchWaitForItsAge()
    {
        await Migrate();
        var time = new ManualTimeProvider();
        var buffers = new EventBuffers(10_000);
        var stats = new TableStats("trades");
        var options = new IngestorOptions { BatchMaxRows = 600, BatchMaxAgeMs = 100, BatchTargetRows = 100 };
        // A fresh flusher finds three rows and nothing known about the rate: the batch waits for more, on the
        // clock, for its age and no longer.
        for (var i = 5_001; i <= 5_003; i++)
        {
            Assert.That(buffers.Trades.Writer.TryWrite(Trade(i)), Is.True);
        }

        var small = new BatchFlusher<TradeEvent, TradeRows>(buffers.Trades.Reader, new BatchCommitter(Db.DataSource), options, stats, time, NullLogger.Instance, new Random(1));
        var run = small.RunAsync(CancellationToken.None);
        Assert.That(await time.WaitForTimerAsync(), Is.EqualTo(time.GetUtcNow().AddMilliseconds(100)), "parked for exactly its age");
        Assert.That(stats.RowsCommitted, Is.Zero, "a 3-row batch waits while the clock stands still");
        time.Advance(TimeSpan.FromMilliseconds(100));
        await Harness.WaitUntilAsync(() => stats.RowsCommitted == 3, TimeSpan.FromSeconds(10), () => $"{stats.RowsCommitted} committed");
        buffers.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(10));

        // Full batches already waiting when a flusher looks (a backlog) go at once, back to back, without the clock
        // moving.
        var backlog = new EventBuffers(10_000);
        for (var i = 1; i <= 1_200; i++)
        {
            Assert.That(backlog.Trades.Writer.TryWrite(Trade(i)), Is.True);
        }

        var batchesBefore = stats.Batches;
        var flusher = new BatchFlusher<TradeEvent, TradeRows>(backlog.Trades.Reader, new BatchCommitter(Db.DataSource), options, stats, time, NullLogger.Instance, new Random(1));
        run = flusher.RunAsync(CancellationToken.None);
        await Harness.WaitUntilAsync(() => stats.RowsCommitted == 1_203, TimeSpan.FromSeconds(10), () => $"{stats.RowsCommitted} committed");
        Assert.That(stats.Batches - batchesBefore, Is.EqualTo(2), "1,200 waiting rows with BatchMaxRows 600: two COPYs");
        backlog.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(DISTINCT agg_trade_id) FROM marketdata.trades"), Is.EqualTo(1_203));
        Assert.That(await Db.ScalarAsync<string>("SELECT price::text || '/' || qty::text FROM marketdata.trades WHERE agg_trade_id = 7"), Is.EqualTo("100.5/0.001"));
        Assert.That(await Db.ScalarAsync<bool>("SELECT is_buyer_maker FROM marketdata.trades WHERE agg_trade_id = 8"), Is.True);
        Assert.That(await Db.ScalarAsync<DateTime>("SELECT ts_exchange FROM marketdata.trades WHERE agg_trade_id = 7"),
            Is.EqualTo(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_007).UtcDateTime));
    }

    /// <summary>At the drain deadline the flusher takes its buffer's rows for the last time. A row written after that
    /// would lie in the buffer unseen, neither stored nor counted: the buffer is closed first, so the write fails and
    /// its writer counts the event lost.</summary>
    [Test]
    public async Task Abandon_ClosesTheBufferBeforeTakingItsRows_SoALaterWriteFailsInsteadOfLyingUnseen()
    {
        var buffers = new EventBuffers(10_000);
        var stats = new TableStats("trades");
        for (var i = 1; i <= 50; i++)
        {
            Assert.That(buffers.Trades.Writer.TryWrite(Trade(i)), Is.True);
        }

        await using var flusher = new BatchFlusher<TradeEvent, TradeRows>(buffers.Trades.Reader, new BatchCommitter(Db.DataSource), new IngestorOptions(), stats,
            TimeProvider.System, NullLogger.Instance, new Random(1), writer: buffers.Trades.Writer);
        flusher.Abandon();
        Assert.That(stats.RowsAbandoned, Is.EqualTo(50), "no spool here: the rows it took are counted lost");
        Assert.That(buffers.Trades.Writer.TryWrite(Trade(51)), Is.False, "closed");
        Assert.That(async () => await buffers.Trades.Writer.WriteAsync(Trade(52)), Throws.TypeOf<System.Threading.Channels.ChannelClosedException>(),
            "a reader waiting for room is told at once (the router counts that as lost at shutdown)");
    }

    [Test]
    public async Task Flusher_KeepsAFailedBatchAndCommitsItExactlyOnceWhenTheDatabaseRecovers()
    {
        // No schema yet: every COPY fails (relation does not exist) until the migration runs.
        var time = new ManualTimeProvider();
        var buffers = new EventBuffers(10_000);
        var stats = new TableStats("trades");
        var options = new IngestorOptions { BatchMaxRows = 5, BatchMaxAgeMs = 100 };
        // The whole batch is waiting before the flusher starts: a flusher that woke on the first row would linger
        // for the rest on the manual clock, which only this test moves (a slow CI machine did just that).
        for (var i = 1; i <= 5; i++)
        {
            await buffers.Trades.Writer.WriteAsync(Trade(i));
        }

        var flusher = new BatchFlusher<TradeEvent, TradeRows>(buffers.Trades.Reader, new BatchCommitter(Db.DataSource), options, stats, time, NullLogger.Instance, new Random(1));
        var run = flusher.RunAsync(CancellationToken.None);

        await Harness.WaitUntilAsync(() => stats.CopyFailures >= 1, TimeSpan.FromSeconds(10), () => "no failure seen");
        Assert.That(stats.LastError, Does.Contain("3F000").Or.Contain("42P01"), "schema or relation missing");
        await Migrate();

        // Retries wait on the injected clock; move it until the kept batch lands.
        await Harness.WaitUntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return stats.RowsCommitted == 5;
        }, TimeSpan.FromSeconds(20), () => $"{stats.RowsCommitted} committed after {stats.CopyFailures} failures");

        buffers.Complete();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades"), Is.EqualTo(5));
        Assert.That(await Db.ScalarAsync<long>("SELECT sum(agg_trade_id) FROM marketdata.trades"), Is.EqualTo(15));
        Assert.That(stats.LastError, Is.Null);
    }
}
