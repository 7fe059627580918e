using Microsoft.Extensions.Logging.Abstractions;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// Several tables' batches in one transaction, on every tier: small batches share a commit and each keeps its own
/// ledger row; large ones commit apart; a refusal or an outage sends each batch down its own table's path, where a
/// refused batch is quarantined alone (on Citus too, whose workers' refusals arrive as XX000) and the other is
/// committed once.
/// </summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class JointFlusherTests(string tier) : StorageTest(tier)
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("obi-joint-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private sealed class Rig : IAsyncDisposable
    {
        public required EventBuffers Buffers { get; init; }

        public required TableStats BookTicker { get; init; }

        public required TableStats Trades { get; init; }

        public required JointFlusher Flusher { get; init; }

        public required Task Run { get; init; }

        public required ManualTimeProvider Time { get; init; }

        public required Quarantine Quarantine { get; init; }

        public async ValueTask DisposeAsync()
        {
            Buffers.Complete();
            await Run.WaitAsync(TimeSpan.FromSeconds(20));
        }
    }

    /// <summary>Rows are written before the flusher starts, so it finds them all at once; the pacer's wait (at least
    /// its 10 ms) runs on the manual clock, which <see cref="Harness.WaitUntilAsync"/> callers move.</summary>
    private Rig Start(int bookTickers, int trades, int targetRows, Npgsql.NpgsqlDataSource? database = null)
    {
        var symbol = 1;
        var buffers = new EventBuffers(100_000);
        for (var i = 0; i < bookTickers; i++)
        {
            Assert.That(buffers.BookTickers.Writer.TryWrite(Book(symbol, 1 + i, Now.AddMilliseconds(i), 100, 101)), Is.True);
        }

        for (var i = 0; i < trades; i++)
        {
            Assert.That(buffers.Trades.Writer.TryWrite(Trade(symbol, 1 + i, Now.AddMilliseconds(i), 100.5, 0.25, i % 2 == 0)), Is.True);
        }

        var time = new ManualTimeProvider();
        var options = new IngestorOptions { BatchTargetRows = targetRows, BatchMaxRows = 10_000, BatchMaxAgeMs = 100 };
        var committer = new BatchCommitter(database ?? Db.DataSource, citus: Tier == StorageTiers.Citus);
        var quarantine = new Quarantine(Path.Combine(_dir, "quarantine"), NullLogger.Instance, TimeProvider.System);
        var bookStats = new TableStats(BookTickerRows.Table);
        var tradeStats = new TableStats(TradeRows.Table);
        var flusher = new JointFlusher(
        [
            new BatchFlusher<BookTickerEvent, BookTickerRows>(buffers.BookTickers.Reader, committer, options, bookStats, time, NullLogger.Instance, new Random(1), quarantine: quarantine),
            new BatchFlusher<TradeEvent, TradeRows>(buffers.Trades.Reader, committer, options, tradeStats, time, NullLogger.Instance, new Random(2), quarantine: quarantine),
        ], options, time, NullLogger.Instance);
        return new Rig
        {
            Buffers = buffers, BookTicker = bookStats, Trades = tradeStats, Flusher = flusher, Run = flusher.RunAsync(CancellationToken.None), Time = time,
            Quarantine = quarantine,
        };
    }

    private static Task WaitForAsync(Rig rig, Func<bool> condition) => Harness.WaitUntilAsync(() =>
    {
        rig.Time.Advance(TimeSpan.FromMilliseconds(10));
        return condition();
    }, TimeSpan.FromSeconds(20), () => $"book_ticker {rig.BookTicker.RowsCommitted}, trades {rig.Trades.RowsCommitted} committed; {rig.Flusher.JointCommits} joint, {rig.Flusher.Fallbacks} fallbacks; last errors {rig.BookTicker.LastError} / {rig.Trades.LastError}");

    private async Task<string> StoredAsync() => await Db.ScalarAsync<string>("""
        SELECT (SELECT count(*) || '/' || count(DISTINCT update_id) FROM marketdata.book_ticker) || ' '
            || (SELECT count(*) || '/' || count(DISTINCT agg_trade_id) FROM marketdata.trades)
        """);

    [Test]
    public async Task SmallBatchesOfTwoTables_ShareOneTransaction_EachWithItsOwnLedgerRow()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        await using (var rig = Start(bookTickers: 60, trades: 40, targetRows: 50))
        {
            await WaitForAsync(rig, () => rig.BookTicker.RowsCommitted == 60 && rig.Trades.RowsCommitted == 40);
            Assert.That(rig.Flusher.JointCommits, Is.EqualTo(1));
            Assert.That(rig.BookTicker.Batches + rig.Trades.Batches, Is.EqualTo(2), "each table counts its batch");
        }

        Assert.That(await StoredAsync(), Is.EqualTo("60/60 40/40"));
        // One transaction: now() is its start, so both ledger rows carry the same time; and each batch its own row.
        Assert.That(await Db.ScalarAsync<string>("""
            SELECT string_agg(table_name || ':' || row_count, ',' ORDER BY table_name) || ' ' || count(DISTINCT committed_at) || ' ' || count(DISTINCT batch_id)
            FROM marketdata.ingest_batches
            """), Is.EqualTo("book_ticker:60,trades:40 1 2"));
    }

    [Test]
    public async Task LargeBatches_CommitApart()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        // 600 + 600 rows with BatchTargetRows 100: more than four times the target together, so each table on its own.
        await using (var rig = Start(bookTickers: 600, trades: 600, targetRows: 100))
        {
            await WaitForAsync(rig, () => rig.BookTicker.RowsCommitted == 600 && rig.Trades.RowsCommitted == 600);
            Assert.That(rig.Flusher.JointCommits, Is.Zero);
        }

        Assert.That(await StoredAsync(), Is.EqualTo("600/600 600/600"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(DISTINCT committed_at) FROM marketdata.ingest_batches"), Is.EqualTo(2));
    }

    [Test]
    public async Task RefusedBatch_IsQuarantinedAlone_AndTheOtherTablesBatchIsCommittedOnce()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        await Db.ExecuteAsync("ALTER TABLE marketdata.book_ticker ADD CONSTRAINT test_refuse CHECK (update_id <> 30)");
        await using (var rig = Start(bookTickers: 50, trades: 50, targetRows: 50))
        {
            await WaitForAsync(rig, () => rig.Quarantine.Batches("book_ticker") == 1 && rig.Trades.RowsCommitted == 50);
            Assert.Multiple(() =>
            {
                Assert.That(rig.Flusher.JointCommits, Is.Zero);
                Assert.That(rig.Flusher.Fallbacks, Is.EqualTo(1));
                Assert.That(rig.Quarantine.Batches("trades"), Is.Zero, "trades were not at fault");
                Assert.That(rig.Quarantine.List()[0].Error, Does.StartWith(Tier == StorageTiers.Citus ? "XX000: " : "23514: ").And.Contain("test_refuse"));
                Assert.That(rig.BookTicker.RowsCommitted, Is.Zero);
            });
        }

        Assert.That(await StoredAsync(), Is.EqualTo("0/0 50/50"));
        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(table_name, ',') FROM marketdata.ingest_batches"), Is.EqualTo("trades"));
    }

    [Test]
    public async Task ABatchAlreadyInTheLedger_IsNotWrittenTwice_AndTheOtherIsCommitted()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        await using (var rig = Start(bookTickers: 50, trades: 50, targetRows: 50))
        {
            await WaitForAsync(rig, () => rig.BookTicker.RowsCommitted == 50 && rig.Trades.RowsCommitted == 50);
        }

        // A restart that replays the book_ticker batch (its answer lost, say) alongside a new trades batch: same batch id.
        var bookTickerBatch = await Db.ScalarAsync<Guid>("SELECT batch_id FROM marketdata.ingest_batches WHERE table_name = 'book_ticker'");
        var committer = new BatchCommitter(Db.DataSource, citus: Tier == StorageTiers.Citus);
        await using var session = committer.OpenSession(TimeProvider.System);
        using var books = new CopyBatch(100);
        using var trades = new CopyBatch(100);
        for (var i = 1; i <= 50; i++)
        {
            BookTickerRows.Encode(books, Book(1, i, Now.AddMilliseconds(i - 1), 100, 101));
            TradeRows.Encode(trades, Trade(1, 1_000 + i, Now.AddMilliseconds(i), 100.5, 0.25, true));
        }

        CommitPart[] parts =
        [
            new(BatchCommitter.TableId(BookTickerRows.Table), bookTickerBatch, books.Rows, books.Payload()),
            new(BatchCommitter.TableId(TradeRows.Table), trades.Id, trades.Rows, trades.Payload()),
        ];
        Assert.That(await session.CommitAsync(parts, CancellationToken.None), Is.False, "a batch id already committed: nothing written");
        Assert.That(await StoredAsync(), Is.EqualTo("50/50 50/50"));
        Assert.That(await session.CommitAsync(BatchCommitter.TableId(TradeRows.Table), trades.Id, trades.Rows, trades.Payload(), CancellationToken.None), Is.True,
            "the same session goes on: the trades batch alone");
        Assert.That(await StoredAsync(), Is.EqualTo("50/50 100/100"));
    }

    [Test]
    public async Task DatabaseAway_BothBatchesGoThroughTheirOwnPaths_AndLandOnceWhenItIsBack()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        var pg = new Npgsql.NpgsqlConnectionStringBuilder(Db.ConnectionString);
        await using var proxy = new TcpProxy(pg.Host!, pg.Port);
        await using var viaProxy = Npgsql.NpgsqlDataSource.Create(new Npgsql.NpgsqlConnectionStringBuilder(Db.ConnectionString) { Port = proxy.Port, Timeout = 3 }.ConnectionString);
        proxy.Cut();
        await using (var rig = Start(bookTickers: 40, trades: 40, targetRows: 50, viaProxy))
        {
            // The joint commit fails, then each table's own path keeps its batch and retries it (no spool here).
            await Harness.WaitUntilAsync(() =>
            {
                rig.Time.Advance(TimeSpan.FromMilliseconds(10));
                return rig.BookTicker.CopyFailures >= 1 && rig.Trades.CopyFailures >= 1;
            }, TimeSpan.FromSeconds(20), () => $"{rig.BookTicker.CopyFailures} / {rig.Trades.CopyFailures} failures");
            Assert.That(rig.Flusher.Fallbacks, Is.EqualTo(1));
            Assert.That(rig.Quarantine.List(), Is.Empty, "an outage is not a refusal");
            proxy.Restore();
            await Harness.WaitUntilAsync(() =>
            {
                rig.Time.Advance(TimeSpan.FromSeconds(1));
                return rig.BookTicker.RowsCommitted == 40 && rig.Trades.RowsCommitted == 40;
            }, TimeSpan.FromSeconds(30), () => $"{rig.BookTicker.RowsCommitted} / {rig.Trades.RowsCommitted} committed");
        }

        Assert.That(await StoredAsync(), Is.EqualTo("40/40 40/40"));
    }
}
