using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>Database outages: batches go to the disk spool, memory stays bounded, and every event ends up stored exactly once.</summary>
public sealed class OutageTests : DatabaseTest
{
    private string _spoolDir = "";

    [SetUp]
    public void CreateSpoolDirectory() => _spoolDir = Directory.CreateTempSubdirectory("obi-spool-").FullName;

    [TearDown]
    public void RemoveSpoolDirectory()
    {
        // The harness removes its spool on dispose; the replay test uses this directory without one.
        if (Directory.Exists(_spoolDir))
        {
            Directory.Delete(_spoolDir, recursive: true);
        }
    }

    /// <summary>The test database behind a relay the test can cut, as a network partition or a dead server would.</summary>
    private (TcpProxy Proxy, string ConnectionString) BehindProxy()
    {
        var pg = new NpgsqlConnectionStringBuilder(Db.ConnectionString);
        var proxy = new TcpProxy(pg.Host!, pg.Port);
        return (proxy, new NpgsqlConnectionStringBuilder(Db.ConnectionString) { Host = "127.0.0.1", Port = proxy.Port, Timeout = 3 }.ConnectionString);
    }

    /// <summary>Trade ids missing between each symbol's first and last stored one (-1 with no trades at all).</summary>
    private const string MissingTradeIds =
        "SELECT coalesce(sum(n), -1) FROM (SELECT max(agg_trade_id) - min(agg_trade_id) + 1 - count(DISTINCT agg_trade_id) AS n FROM marketdata.trades GROUP BY symbol_id) x";

    private const string DuplicateTrades = "SELECT count(*) - count(DISTINCT (symbol_id, agg_trade_id)) FROM marketdata.trades";

    private async Task<long> EventRows() => await Db.ScalarAsync<long>(
        "SELECT (SELECT count(*) FROM marketdata.book_ticker) + (SELECT count(*) FROM marketdata.trades)");

    [Test]
    public async Task DatabaseCutMidRun_BatchesAreSpooled_ThenReplayed_EveryEventStoredOnce()
    {
        var (relay, viaProxy) = BehindProxy();
        await using var proxy = relay;
        var sim = new SimulatorOptions { Symbols = 3, Rate = 3_000, Events = 24_000, Seed = 51, WaitForStreams = 6 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Database = viaProxy;
            o.SpoolDirectory = _spoolDir;
            o.BufferCapacity = 5_000;
            o.BatchMaxRows = 1_000;
        });
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 1_000, TimeSpan.FromSeconds(20), () => "not recording");

        proxy.Cut();
        var maxBuffered = 0;
        await Harness.WaitUntilAsync(() =>
        {
            maxBuffered = Math.Max(maxBuffered, h.Metrics.BookTicker.BufferDepth() + h.Metrics.Trades.BufferDepth());
            return h.Metrics.BookTicker.RowsSpooled + h.Metrics.Trades.RowsSpooled > 6_000;
        }, TimeSpan.FromSeconds(30), () => $"{h.Metrics.BookTicker.RowsSpooled + h.Metrics.Trades.RowsSpooled} rows spooled");
        Assert.That(h.Parts.SpoolState!.DatabaseDown, Is.True);
        Assert.That(Directory.EnumerateFiles(_spoolDir), Is.Not.Empty, "the outage is on disk, not in memory");
        Assert.That(Hosting.SummaryReporter.Format(h.Metrics, h.Parts, 0, 0), Does.Match(@"\| spool [0-9.]+ MB, [0-9,]+ rows spooled, 0 replayed \(database down\)$"),
            "the summary line says where the rows go");
        proxy.Restore();

        await h.Simulator.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        long rows = 0;
        await Harness.WaitUntilAsync(async () => (rows = await EventRows()) == 24_000, TimeSpan.FromSeconds(60), () => $"{rows} of 24000 rows");
        await Harness.WaitUntilAsync(() => h.Parts.Spool!.IsEmpty && !h.Parts.SpoolState.DatabaseDown, TimeSpan.FromSeconds(20), () => "spool not drained");
        // The counters move just after the commit they count: the table can show the last replayed batch first
        // (a clean-clone run saw 23,845 counted of 24,000 stored).
        await Harness.WaitUntilAsync(() => h.Metrics.BookTicker.RowsCommitted + h.Metrics.Trades.RowsCommitted >= 24_000, TimeSpan.FromSeconds(10),
            () => $"{h.Metrics.BookTicker.RowsCommitted + h.Metrics.Trades.RowsCommitted} rows counted of 24000 stored");

        Assert.Multiple(async () =>
        {
            Assert.That(h.Simulator.Ledger.Delivered, Is.EqualTo(24_000), "the exchange side lost nothing either");
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) - count(DISTINCT (symbol_id, update_id)) FROM marketdata.book_ticker"), Is.Zero);
            Assert.That(await Db.ScalarAsync<long>(DuplicateTrades), Is.Zero);
            Assert.That(h.Parts.SpoolState.RecordsReplayed, Is.GreaterThan(0));
            Assert.That(maxBuffered, Is.LessThanOrEqualTo(2 * 5_000), "memory bounded by the buffers, whatever the outage");
            Assert.That(h.Metrics.BookTicker.RowsAbandoned + h.Metrics.Trades.RowsAbandoned, Is.Zero);
            Assert.That(h.Metrics.BookTicker.RowsCommitted + h.Metrics.Trades.RowsCommitted, Is.EqualTo(24_000), "rows written count the replayed ones");
            Assert.That(h.Metrics.BookTicker.RowsReplayed + h.Metrics.Trades.RowsReplayed, Is.GreaterThan(0));
        });
        var ledger = h.Simulator.Ledger.Snapshot();
        foreach (var (stream, totals) in ledger)
        {
            var table = stream.EndsWith("@bookTicker", StringComparison.Ordinal) ? "book_ticker" : "trades";
            var id = table == "book_ticker" ? "update_id" : "agg_trade_id";
            Assert.That(await Db.ScalarAsync<decimal>($"SELECT sum({id})::numeric FROM marketdata.{table} t JOIN marketdata.symbols s ON s.id = t.symbol_id WHERE lower(s.symbol) || '@' || '{(table == "book_ticker" ? "bookTicker" : "aggTrade")}' = '{stream}'"),
                Is.EqualTo(totals.SumId), $"{stream}: the same events, not just the same count");
        }
    }

    /// <summary>
    /// A database that answers but takes nothing (here: a lock held on the tables) until the stop's drain deadline:
    /// the buffers fill and the readers wait with an event in hand. At the deadline the buffered rows go to the spool;
    /// what the readers still route has nowhere to go, and is counted and logged (/metrics goes with the process).
    /// </summary>
    [Test]
    public async Task ADatabaseStuckPastTheDrainDeadline_TheEventsReadersHeld_AreLoggedAsLost_TheBufferedRowsSpooled()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 4_000, Seed = 61, WaitForStreams = 4, RecordEvents = true };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.SpoolDirectory = _spoolDir;
            o.BufferCapacity = 1_000;
            o.BatchMaxRows = 200;
            o.DrainTimeoutSeconds = 2;
        });
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 1_000, Harness.StartTimeout, () => "not recording");

        await using var locker = await Db.DataSource.OpenConnectionAsync();
        await using var tx = await locker.BeginTransactionAsync();
        await using (var cmd = new NpgsqlCommand("LOCK TABLE marketdata.book_ticker, marketdata.trades IN ACCESS EXCLUSIVE MODE", locker, tx))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        // Full buffers are not enough: a reader that filled its buffer with the last frame of a read waits for the next
        // read with nothing in hand, and a stop then ends it with nothing lost (the bytes it never read lie in the next
        // start's daemon_down gap). The likely story of a CI run that lost 0. A reader waiting for room holds a frame.
        await Harness.WaitUntilAsync(() => h.Metrics.BookTicker.ReadersWaiting() >= 1 && h.Metrics.Trades.ReadersWaiting() >= 1, TimeSpan.FromSeconds(30),
            () => $"buffered {h.Metrics.BookTicker.BufferDepth()} + {h.Metrics.Trades.BufferDepth()}, readers waiting {h.Metrics.BookTicker.ReadersWaiting()} + {h.Metrics.Trades.ReadersWaiting()}");
        Assert.That(h.Metrics.BookTicker.BufferDepth() + h.Metrics.Trades.BufferDepth(), Is.EqualTo(2_000), "both buffers full");
        using (var http = new HttpClient { BaseAddress = new Uri("http://" + h.Options.Http) })
        {
            Assert.That(await http.GetStringAsync("/metrics"), Does.Contain("orderbook_buffer_readers_waiting{table=\"trades\"} 1\n"), "an operator sees the backpressure");
            using var health = JsonDocument.Parse(await http.GetStringAsync("/health"));
            Assert.That(health.RootElement.GetProperty("database").GetProperty("book_ticker").GetProperty("readersWaiting").GetInt32(), Is.EqualTo(1));
        }

        await h.Daemon.StopAsync();
        await tx.RollbackAsync();

        // Every frame the readers took is committed, spooled or counted lost: none left unseen in a buffer.
        var received = h.Parts.Streams().Sum(s => s.Activity.Messages);
        var lost = h.Metrics.EventsLostAtShutdown;
        var committed = h.Metrics.BookTicker.RowsCommitted + h.Metrics.Trades.RowsCommitted;
        var spooled = h.Metrics.BookTicker.RowsSpooled + h.Metrics.Trades.RowsSpooled;
        Assert.Multiple(() =>
        {
            Assert.That(committed + spooled + lost, Is.EqualTo(received), $"{committed} committed + {spooled} spooled + {lost} lost");
            Assert.That(lost, Is.GreaterThanOrEqualTo(2), "each waiting reader's frame in hand, and any after it in the same read");
            Assert.That(h.DaemonLog.Lines, Has.Some.EqualTo($"Error: Drain deadline passed: {lost} received events could not be buffered and are lost"));
            Assert.That(spooled, Is.GreaterThanOrEqualTo(2_000), "the buffered rows went to disk");
            Assert.That(h.Metrics.BookTicker.RowsAbandoned + h.Metrics.Trades.RowsAbandoned, Is.Zero);
        });

        // The next start replays the spool; what was lost is a hole it writes down: each bookTicker event sent before
        // the stop and not stored lies inside its stream's daemon_down gap, and the trades' ids are backfilled.
        var stoppedMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await h.RestartDaemonAsync(TimeSpan.Zero);
        long gaps = 0, holes = 0;
        await Harness.WaitUntilAsync(async () => (gaps = await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'daemon_down' AND stream LIKE '%@bookTicker'")) == 2
                                                 && (holes = await Db.ScalarAsync<long>(MissingTradeIds)) == 0,
            TimeSpan.FromSeconds(30), () => $"{gaps} daemon_down gaps of 2, {holes} trade ids missing");
        Assert.That(await Db.ScalarAsync<long>(DuplicateTrades), Is.Zero, "no trade twice");
        var stored = (await Db.RowsAsync("SELECT lower(s.symbol) || '@bookTicker', b.update_id FROM marketdata.book_ticker b JOIN marketdata.symbols s ON s.id = b.symbol_id",
            r => (r.GetString(0), r.GetInt64(1)))).ToHashSet();
        var gapRows = await Db.RowsAsync("""
            SELECT stream, (extract(epoch FROM gap_start) * 1000)::bigint, (extract(epoch FROM gap_end) * 1000)::bigint
            FROM marketdata.feed_gaps WHERE reason = 'daemon_down'
            """, r => (Stream: r.GetString(0), From: r.GetInt64(1), To: r.GetInt64(2)));

        var missing = h.Simulator.Ledger.Snapshot().Values.SelectMany(t => t.Events)
            .Where(e => e.Channel == MarketChannel.BookTicker && e.EventTimeMs < stoppedMs && !stored.Contains((e.Stream, e.Id))).ToList();
        Assert.That(missing, Is.Not.Empty, "the stop lost bookTicker events");
        Assert.That(missing.Where(e => !gapRows.Any(g => g.Stream == e.Stream && g.From <= e.EventTimeMs && e.EventTimeMs <= g.To)).Select(e => $"{e.Stream} {e.Id} at {e.EventTimeMs}"),
            Is.Empty, $"events lost outside every daemon_down gap ({missing.Count} lost; gaps {string.Join(", ", gapRows)})");
    }

    [Test]
    public async Task DamagedSpoolRecords_TheirTradesAreBackfilled_AndTheirBookTickerRowsAreAGapRow()
    {
        var (relay, viaProxy) = BehindProxy();
        await using var proxy = relay;
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 16_000, Seed = 53, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Database = viaProxy;
            o.SpoolDirectory = _spoolDir;
            o.BatchMaxRows = 200;
        });
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 1_000, TimeSpan.FromSeconds(20), () => "not recording");
        proxy.Cut();
        await Harness.WaitUntilAsync(() => h.Metrics.BookTicker.RowsSpooled > 1_000 && h.Metrics.Trades.RowsSpooled > 1_000, TimeSpan.FromSeconds(30), () => "not spooling");
        await h.Daemon.StopAsync();

        // A flipped bit in a price of the first spooled trades batch and of the first book_ticker batch (a bad disk):
        // their checksums fail, but their headers, symbols, times and ids still read.
        var segment = Directory.EnumerateFiles(_spoolDir, "*.spool").Order(StringComparer.Ordinal).First();
        var bytes = await File.ReadAllBytesAsync(segment);
        var damaged = new Dictionary<string, IReadOnlyList<CopyPayload.SymbolRange>>();
        long offset = 0;
        foreach (var record in SpoolRecord.ReadAll(segment, _ => Assert.Fail("the spool was damaged before the test did it")))
        {
            var table = BatchCommitter.Tables[record.TableId].Table;
            if (!damaged.ContainsKey(table) && table is "trades" or "book_ticker" && record.Rows > 2)
            {
                damaged[table] = CopyPayload.Salvage(table, record.Payload);
                bytes[offset + SpoolRecord.HeaderBytes + 19 + (2 * (table == "trades" ? 116 : 106)) + 62 + 3] ^= 0x10; // third row, its price
            }

            offset += record.EncodedLength;
        }

        await File.WriteAllBytesAsync(segment, bytes);
        Assert.That(damaged.Keys, Is.EquivalentTo(new[] { "trades", "book_ticker" }));

        proxy.Restore();
        await h.RestartDaemonAsync(TimeSpan.Zero);
        await h.Simulator.Finished.WaitAsync(TimeSpan.FromSeconds(60));
        var lostTrades = damaged["trades"].Sum(r => r.Rows);
        long missing = -1;
        await Harness.WaitUntilAsync(async () => (missing = await Db.ScalarAsync<long>(MissingTradeIds)) == 0 && h.Metrics.TradesBackfilled >= lostTrades, TimeSpan.FromSeconds(60),
            () => $"trades not contiguous ({missing} missing), {h.Metrics.TradesBackfilled} backfilled");

        Assert.Multiple(async () =>
        {
            Assert.That(h.Parts.Spool!.CorruptRecords, Is.EqualTo(2));
            Assert.That(await Db.ScalarAsync<long>(DuplicateTrades), Is.Zero, "no trade twice");
            foreach (var r in damaged["trades"])
            {
                Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.trades WHERE symbol_id = {r.SymbolId} AND agg_trade_id BETWEEN {r.FirstId} AND {r.LastId} AND is_backfilled"),
                    Is.EqualTo(r.LastId - r.FirstId + 1), "the damaged record's trades came back from REST");
            }

            // The damaged bookTicker rows cannot come back: each symbol's loss is a spool_corrupt gap row with its ids and times.
            foreach (var r in damaged["book_ticker"])
            {
                Assert.That(await Db.ScalarAsync<long>($"""
                    SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'spool_corrupt' AND symbol_id = {r.SymbolId} AND stream LIKE '%@bookTicker'
                      AND first_missing_id = {r.FirstId} AND last_missing_id = {r.LastId}
                      AND gap_start = to_timestamp({r.FromUs / 1000} / 1000.0) AND gap_end = to_timestamp({r.ToUs / 1000} / 1000.0)
                    """), Is.EqualTo(1), $"gap row for symbol {r.SymbolId}");
                Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.book_ticker WHERE symbol_id = {r.SymbolId} AND update_id BETWEEN {r.FirstId} AND {r.LastId}"),
                    Is.Zero, "nothing stored inside it");
            }

            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'spool_corrupt'"), Is.EqualTo(damaged["book_ticker"].Count),
                "the trades were all recovered, so no trade gap row");
        });
    }

    [Test]
    public async Task SpoolLeftByACrash_IsReplayed_AndABatchAlreadyCommittedIsNotStoredTwice()
    {
        await new SchemaMigrator(Db.DataSource, NullLogger.Instance).MigrateAsync(CancellationToken.None);
        var ids = await new SymbolStore(Db.DataSource).RegisterAsync([new("BTCUSDT", "BTC", "USDT", "TRADING", "PERPETUAL")], CancellationToken.None);
        var committer = new BatchCommitter(Db.DataSource);
        using var a = new CopyBatch(10);
        using var b = new CopyBatch(10);
        for (var i = 1; i <= 3; i++)
        {
            TradeRows.Encode(a, new TradeEvent(ids["BTCUSDT"], i, 1_700_000_000_000 + i, 1_700_000_000_000 + i, 1_700_000_000_000_000, 100, 1, i, i, false));
            TradeRows.Encode(b, new TradeEvent(ids["BTCUSDT"], 10 + i, 1_700_000_000_000 + i, 1_700_000_000_000 + i, 1_700_000_000_000_000, 100, 1, i, i, false));
        }

        // The crash came after batch A committed but before its spool record was deleted.
        var tradesId = BatchCommitter.TableId("trades");
        Assert.That(await committer.CommitAsync(tradesId, a.Id, a.Rows, a.Payload(), CancellationToken.None), Is.True);
        using (var spool = new Spool(_spoolDir, 1 << 20, 1 << 20, NullLogger.Instance))
        {
            spool.TryAppend(tradesId, a.Id, a.Rows, a.Payload().Span);
            spool.TryAppend(tradesId, b.Id, b.Rows, b.Payload().Span);
        }

        using var reopened = new Spool(_spoolDir, 1 << 20, 1 << 20, NullLogger.Instance);
        var state = new SpoolState();
        await new SpoolReplayer(reopened, state, committer, Db.DataSource, TimeProvider.System, NullLogger.Instance).ReplayOnceAsync(CancellationToken.None);

        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(agg_trade_id::text, ',' ORDER BY agg_trade_id) FROM marketdata.trades"), Is.EqualTo("1,2,3,11,12,13"));
        Assert.That(reopened.IsEmpty, Is.True, "replayed segments are deleted");
        Assert.That(state.RecordsReplayed, Is.EqualTo(2));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.ingest_batches"), Is.EqualTo(2));
    }

    [Test]
    public async Task BatchWhoseCommitAnswerWasLost_IsCountedAsWrittenOnce_ByTheReplay()
    {
        await new SchemaMigrator(Db.DataSource, NullLogger.Instance).MigrateAsync(CancellationToken.None);
        var ids = await new SymbolStore(Db.DataSource).RegisterAsync([new("BTCUSDT", "BTC", "USDT", "TRADING", "PERPETUAL")], CancellationToken.None);
        var committer = new BatchCommitter(Db.DataSource);
        var tradesId = BatchCommitter.TableId("trades");
        using var lost = new CopyBatch(10);
        using var failed = new CopyBatch(10);
        using var earlierRun = new CopyBatch(10);
        for (var i = 1; i <= 3; i++)
        {
            TradeRows.Encode(lost, new TradeEvent(ids["BTCUSDT"], i, 1_700_000_000_000 + i, 1_700_000_000_000 + i, 1_700_000_000_000_000, 100, 1, i, i, false));
            TradeRows.Encode(failed, new TradeEvent(ids["BTCUSDT"], 10 + i, 1_700_000_000_000 + i, 1_700_000_000_000 + i, 1_700_000_000_000_000, 100, 1, i, i, false));
            TradeRows.Encode(earlierRun, new TradeEvent(ids["BTCUSDT"], 20 + i, 1_700_000_000_000 + i, 1_700_000_000_000 + i, 1_700_000_000_000_000, 100, 1, i, i, false));
        }

        // "lost": its COMMIT reached the server but the answer did not reach us, so this process spooled it.
        // "failed": never reached the server, spooled. "earlierRun": a crashed run replayed (and counted) it, then died.
        Assert.That(await committer.CommitAsync(tradesId, lost.Id, lost.Rows, lost.Payload(), CancellationToken.None), Is.True);
        Assert.That(await committer.CommitAsync(tradesId, earlierRun.Id, earlierRun.Rows, earlierRun.Payload(), CancellationToken.None), Is.True);
        var state = new SpoolState();
        using var spool = new Spool(_spoolDir, 1 << 20, 1 << 20, NullLogger.Instance);
        foreach (var batch in new[] { earlierRun, lost, failed })
        {
            spool.TryAppend(tradesId, batch.Id, batch.Rows, batch.Payload().Span);
            if (batch != earlierRun)
            {
                state.OnSpooled(batch.Id, batch.Rows);
            }
        }

        var counted = 0;
        var replayer = new SpoolReplayer(spool, state, committer, Db.DataSource, TimeProvider.System, NullLogger.Instance, onCommitted: (_, rows) => counted += rows);
        await replayer.ReplayOnceAsync(CancellationToken.None);
        Assert.That(counted, Is.EqualTo(6), "this run's two spooled batches, whichever commit stored them; not the earlier run's");

        // A pass that stopped part-way meets the same records again: they are in the ledger and were counted.
        foreach (var batch in new[] { lost, failed })
        {
            spool.TryAppend(tradesId, batch.Id, batch.Rows, batch.Payload().Span);
        }

        await replayer.ReplayOnceAsync(CancellationToken.None);
        Assert.That(counted, Is.EqualTo(6), "counted once");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades"), Is.EqualTo(9));
    }
}
