using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Cli;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// The storage failure policy against a real server: a database that refuses a batch is not a database that is down.
/// A refused batch is quarantined with its error and ingestion goes on (nothing spooled, no table blocked); the spool
/// replay and the gap writer do not stop on a refusal; and a database that is away is asked again no faster than the
/// back-off allows.
/// </summary>
public sealed class StorageFailureTests : StorageTest
{
    private string _dir = "";

    public StorageFailureTests()
        : base(StorageTiers.Postgres)
    {
    }

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("obi-quarantine-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private static string Stream(string table) => table == "book_ticker" ? "bookTicker" : "aggTrade";

    [Test]
    public async Task RefusedBatches_AreQuarantinedWithTheirError_IngestionGoesOn_AndRetryStoresEachOnce()
    {
        var quarantineDir = Path.Combine(_dir, "quarantine");
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 16_000, Seed = 61, WaitForStreams = 4, RecordEvents = true };
        await using var h = await Harness.StartAsync(Db, sim, o => o.QuarantineDirectory = quarantineDir);
        await Harness.WaitUntilAsync(() => h.Metrics.BookTicker.RowsCommitted > 500, TimeSpan.FromSeconds(30), () => "not recording");

        // A rule the rows break from now on: every book_ticker batch is refused (23514), trades are not. NOT VALID: rows
        // committed between reading the limit and adding the rule would otherwise fail the ALTER itself (seen once).
        var limit = await Db.ScalarAsync<long>("SELECT max(update_id) + 1 FROM marketdata.book_ticker");
        await Db.ExecuteAsync($"ALTER TABLE marketdata.book_ticker ADD CONSTRAINT test_refuse CHECK (update_id < {limit}) NOT VALID");
        var quarantine = h.Parts.Quarantine!;
        var tradesBefore = h.Metrics.Trades.RowsCommitted;
        await Harness.WaitUntilAsync(() => quarantine.Batches("book_ticker") >= 3 && h.Metrics.Trades.RowsCommitted > tradesBefore + 500, TimeSpan.FromSeconds(30),
            () => $"{quarantine.Batches("book_ticker")} quarantined, {h.Metrics.Trades.RowsCommitted - tradesBefore} trades since");
        Assert.Multiple(() =>
        {
            Assert.That(h.Parts.SpoolState!.DatabaseDown, Is.False, "a refusal is not an outage");
            Assert.That(h.Metrics.BookTicker.RowsSpooled + h.Metrics.Trades.RowsSpooled, Is.Zero, "nothing goes to the spool");
            Assert.That(quarantine.List(), Has.Count.EqualTo(quarantine.Batches("book_ticker")));
            Assert.That(quarantine.List()[0].Error, Does.StartWith("23514: ").And.Contain("test_refuse"));
            Assert.That(quarantine.List()[0].Table, Is.EqualTo("book_ticker"));
        });

        await Db.ExecuteAsync("ALTER TABLE marketdata.book_ticker DROP CONSTRAINT test_refuse");
        await h.Simulator.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.RowsCommitted + quarantine.Rows("book_ticker") >= h.Simulator.Ledger.Delivered, TimeSpan.FromSeconds(30),
            () => $"{h.RowsCommitted} committed + {quarantine.Rows("book_ticker")} quarantined of {h.Simulator.Ledger.Delivered}");

        // One batch is put back after it was stored, as a retry interrupted before it removed the file would leave it.
        var again = quarantine.List()[0];
        File.Copy(again.Path, Path.Combine(_dir, "copy.batch"));
        File.Copy(again.ErrorPath, Path.Combine(_dir, "copy.error"));
        Assert.That(await QuarantineCommand.RetryAsync(h.Options, CancellationToken.None), Is.Zero);
        Assert.That(quarantine.List(), Is.Empty);
        File.Move(Path.Combine(_dir, "copy.batch"), again.Path);
        File.Move(Path.Combine(_dir, "copy.error"), again.ErrorPath);
        Assert.That(await QuarantineCommand.RetryAsync(h.Options, CancellationToken.None), Is.Zero, "already stored: removed, not stored twice");
        Assert.That(quarantine.List(), Is.Empty);

        foreach (var (stream, totals) in h.Simulator.Ledger.Snapshot())
        {
            var table = stream.EndsWith("@bookTicker", StringComparison.Ordinal) ? "book_ticker" : "trades";
            var id = table == "book_ticker" ? "update_id" : "agg_trade_id";
            var stored = await Db.ScalarAsync<string>($"""
                SELECT count(*) || '/' || count(DISTINCT {id}) || '/' || sum({id}) FROM marketdata.{table} t JOIN marketdata.symbols s ON s.id = t.symbol_id
                WHERE lower(s.symbol) || '@{Stream(table)}' = '{stream}'
                """);
            Assert.That(stored, Is.EqualTo($"{totals.Count}/{totals.Count}/{totals.SumId}"), $"{stream}: every event once");
        }
    }

    [Test]
    public async Task RefusedRecordInTheSpool_IsQuarantined_AndTheReplayFinishesTheRest()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var tradesId = BatchCommitter.TableId("trades");
        var spoolDir = Path.Combine(_dir, "spool");
        using (var spool = new Spool(spoolDir, 1 << 20, 1 << 20, NullLogger.Instance))
        {
            for (var b = 0; b < 3; b++)
            {
                using var batch = new CopyBatch(10);
                for (var i = 1; i <= 3; i++)
                {
                    TradeRows.Encode(batch, Trade(btc, (b * 10) + i, DateTimeOffset.UtcNow, 100, 1, false));
                }

                spool.TryAppend(tradesId, batch.Id, batch.Rows, batch.Payload().Span);
            }
        }

        await Db.ExecuteAsync("ALTER TABLE marketdata.trades ADD CONSTRAINT test_refuse CHECK (agg_trade_id NOT BETWEEN 11 AND 13)");
        using var reopened = new Spool(spoolDir, 1 << 20, 1 << 20, NullLogger.Instance);
        var state = new SpoolState();
        state.MarkDown();
        var quarantine = new Quarantine(Path.Combine(_dir, "quarantine"), NullLogger.Instance, TimeProvider.System);
        await new SpoolReplayer(reopened, state, new BatchCommitter(Db.DataSource), Db.DataSource, TimeProvider.System, NullLogger.Instance, quarantine)
            .ReplayOnceAsync(CancellationToken.None);

        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(agg_trade_id::text, ',' ORDER BY agg_trade_id) FROM marketdata.trades"), Is.EqualTo("1,2,3,21,22,23"));
        Assert.That(reopened.IsEmpty, Is.True, "the segment is done with");
        Assert.That(state.DatabaseDown, Is.False, "the database took the rest: flushers write to it again");
        Assert.That((state.RecordsReplayed, quarantine.Batches("trades"), quarantine.Rows("trades")), Is.EqualTo((3L, 1L, 3L)));
        Assert.That(quarantine.List().Single().Error, Does.StartWith("23514: "));
    }

    [Test]
    public async Task RefusedGapRow_IsLoggedAndCounted_AndTheWriterGoesOn()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        await Db.ExecuteAsync("ALTER TABLE marketdata.feed_gaps ADD CONSTRAINT test_refuse CHECK (details IS DISTINCT FROM 'refuse me')");
        var ledger = new GapLedger();
        var writer = Task.Run(() => new GapWriter(ledger, Db.DataSource, TimeProvider.System, NullLogger.Instance, new Random(1)).RunAsync(CancellationToken.None));
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        ledger.Record(new GapRecord(btc, "btcusdt@bookTicker", now - 2_000, now - 1_000, null, null, GapReason.Disconnected, now, "refuse me"));
        ledger.Record(new GapRecord(btc, "btcusdt@bookTicker", now - 500, now, null, null, GapReason.Disconnected, now));
        ledger.Complete();
        await writer.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE details IS NULL"), Is.EqualTo(1), "the row after the refused one is written");
        Assert.That((ledger.RowsRejected, ledger.WriteFailures), Is.EqualTo((1L, 0L)));
    }

    [Test]
    public async Task RollupLoop_DuringAnOutage_AsksNoMoreThanOnceASecond()
    {
        await Migrate();
        // A backlog larger than one pass takes (200,000 rows' worth), so the pass before the outage asks for another at once.
        await Db.ExecuteAsync("""
            INSERT INTO marketdata.ingest_batches (batch_id, table_name, row_count, committed_at, ts_min, ts_max, rollup_pending)
            SELECT gen_random_uuid(), 'trades', 150000, now() - interval '1 minute', now() - interval '1 minute', now() - interval '1 minute', true
            FROM generate_series(1, 10)
            """);
        var pg = new NpgsqlConnectionStringBuilder(Db.ConnectionString);
        await using var proxy = new TcpProxy(pg.Host!, pg.Port);
        // No pooling: every pass opens a connection, as after an outage has broken the pooled ones.
        await using var viaProxy = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(Db.ConnectionString) { Port = proxy.Port, Pooling = false, Timeout = 3 }.ConnectionString);
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var stats = new MaintenanceStats();
        var maintainer = new StorageMaintainer(viaProxy, time, NullLogger.Instance, stats, TimeSpan.FromMilliseconds(200), TimeSpan.FromMinutes(5), TimeSpan.Zero, new Random(3));
        // The first maintenance pass and the first rollup pass get through; the database is gone from the third connection on.
        proxy.CutAfter(2);
        using var stop = new CancellationTokenSource();
        var loop = Task.Run(() => maintainer.RunAsync(stop.Token));
        try
        {
            await Harness.WaitUntilAsync(() => stats.Failures >= 1, TimeSpan.FromSeconds(10), () => "no failed pass");
            Assert.That(stats.RollupBatches, Is.EqualTo(2), "one pass took two of the ten batches (200,000 rows' worth) and left a backlog");

            // While the daemon's clock stands still, a failed pass is not retried at all (it was: 457 connections a second):
            // the loop is parked on its back-off timer, at least the 1 s floor ahead.
            var due = await time.WaitForTimerAsync();
            Assert.That(due - time.GetUtcNow(), Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(1)), "parked on the back-off");
            // Parked, so no attempt can follow until the clock moves. Counted in failed passes: one attempt sometimes
            // reaches the proxy as two connections (see below).
            Assert.That(stats.Failures, Is.EqualTo(1), "one attempt after the outage began");

            // A simulated minute of outage: at most one attempt a second, fewer as the back-off grows.
            for (var i = 0; i < 600; i++)
            {
                time.Advance(TimeSpan.FromMilliseconds(100));
                await Task.Delay(2);
            }

            // Once the clock stops, the loop ends the pass it may be in and parks on its back-off timer again. Counted
            // in failed passes, not proxy connections: one attempt sometimes reaches the proxy as two connections
            // (seen: 8 connections for 7 failed passes), which made a count of connections flaky.
            await time.WaitForTimerAsync();
            var attempts = stats.Failures - 1;
            TestContext.Progress.WriteLine($"attempts in a simulated minute of outage: {attempts} ({proxy.Connections - 3} connections)");
            Assert.That(attempts, Is.InRange(3, 60), "paced by the back-off (1 s floor, 60 s cap)");
        }
        finally
        {
            await stop.CancelAsync();
            await loop;
        }
    }
}
