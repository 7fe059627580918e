using Npgsql;
using OrderBookIngestor.Exchange;

using OrderBookIngestor.Pipeline;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>Native partitions (plain PostgreSQL and Citus): created ahead and dropped past retention by the daemon's
/// clock, with a default partition that takes any row no partition covers yet.</summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.Partitioned))]
public sealed class PartitionMaintenanceTests(string tier) : StorageTest(tier)
{
    [Test]
    public async Task Maintenance_CreatesPartitionsAhead_AndDropsThemPastRetention_ByTheDaemonsClock()
    {
        await Migrate();

        var id = await RegisterAsync("BTCUSDT");
        var time = new ManualTimeProvider(Now);
        var stats = new MaintenanceStats();
        var maintainer = Maintainer(time, stats);
        await maintainer.MaintainOnceAsync(CancellationToken.None);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1, Now, 100, 101)]);
        await CommitAsync<TradeEvent, TradeRows>(Db.DataSource, [Trade(id, 1, Now, 100, 1, false)]);

        // 31 days on: book_ticker (30 days) loses the partition holding the row, trades (90 days) keep theirs,
        // and partitions reach two days past the new time.
        time.Advance(TimeSpan.FromDays(31));
        var actions = await maintainer.MaintainOnceAsync(CancellationToken.None);
        Assert.That(actions.Where(a => a.Action == "dropped").Select(a => a.Table).Distinct(), Does.Contain("book_ticker").And.Contain("depth_events").And.Not.Contain("trades"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker"), Is.Zero, "expired with its partition");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades"), Is.EqualTo(1));
        var later = Now.AddDays(31);
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'marketdata.book_ticker'::regclass AND c.relname = 'book_ticker_p{later.AddDays(2):yyyyMMdd}t0600'"), Is.EqualTo(1), "created ahead");
        Assert.That(stats.PartitionsDropped, Is.EqualTo(actions.Count(a => a.Action == "dropped")));
        Assert.That(stats.PartitionsCreated, Is.GreaterThan(0));

        // Nothing is left to do at the same moment.
        Assert.That(await maintainer.MaintainOnceAsync(CancellationToken.None), Is.Empty);
    }

    /// <summary>A session that holds one table the pass needs and then asks for one the pass has taken: a deadlock.
    /// The pass checks for it first (deadlock_timeout 3 s against the other's 60 s), so it is the victim; it runs
    /// again at once and does its work once the other session ends.</summary>
    [Test]
    public async Task APassChosenAsADeadlocksVictim_IsRunAgainAtOnce()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        await using var maintainerSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(Db.ConnectionString) { Options = "-c deadlock_timeout=3000" }.ConnectionString);
        var stats = new MaintenanceStats();
        var maintainer = Maintainer(new ManualTimeProvider(Now.AddDays(10)), stats, maintainerSource);

        await using var other = await Db.DataSource.OpenConnectionAsync();
        await using var transaction = await other.BeginTransactionAsync();
        await using (var first = new NpgsqlCommand("SET LOCAL deadlock_timeout = '60s'; LOCK TABLE marketdata.trades IN ACCESS EXCLUSIVE MODE", other, transaction))
        {
            await first.ExecuteNonQueryAsync();
        }

        // The pass goes through the tables by name: it takes book_ticker's lock to add partitions, then waits for trades.
        var pass = maintainer.MaintainOnceAsync(CancellationToken.None);
        await Harness.WaitUntilAsync(
            async () => await Db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%run_maintenance%' AND pid <> pg_backend_pid()") > 0,
            TimeSpan.FromSeconds(30), () => "the pass waiting for trades");
        await using (var second = new NpgsqlCommand("LOCK TABLE marketdata.book_ticker IN ACCESS EXCLUSIVE MODE", other, transaction))
        {
            // Granted once the pass, the deadlock's victim, has rolled back.
            await second.ExecuteNonQueryAsync();
        }

        // The lock is granted as soon as the server has rolled the pass back; the error reaches the daemon just after.
        await Harness.WaitUntilAsync(() => stats.ConflictsRetried > 0 || pass.IsCompleted, TimeSpan.FromSeconds(30), () => "the pass told of the deadlock");
        Assert.That(pass.IsFaulted, Is.False, () => $"the pass failed: {pass.Exception}");
        Assert.That(stats.ConflictsRetried, Is.EqualTo(1), "the pass lost the deadlock and was started again");
        Assert.That(pass.IsCompleted, Is.False, "the second attempt waits for the other session");
        await transaction.RollbackAsync();
        var actions = await pass.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.That(actions.Where(a => a.Action == "created").Select(a => a.Table).Distinct(), Does.Contain("book_ticker").And.Contain("trades"));
        Assert.That(stats.Failures, Is.Zero);
    }

    [Test]
    public async Task RowsNoPartitionCovers_WaitInTheDefaultPartition_AndMoveIntoTheirOwnOnTheNextPass()
    {
        await Migrate();

        var id = await RegisterAsync("BTCUSDT");
        var far = DateTimeOffset.UtcNow.AddDays(20);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1, far, 100, 101), Book(id, 2, far.AddSeconds(1), 100, 101)]);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker_default"), Is.EqualTo(2), "accepted, not refused");

        var actions = await Maintainer(TimeProvider.System).MaintainOnceAsync(CancellationToken.None);
        Assert.That(actions.Where(a => a.Action == "created for waiting rows").Select(a => a.Table), Does.Contain("book_ticker"));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker_default"), Is.Zero);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker"), Is.EqualTo(2), "moved, none lost or doubled");
        Assert.That(await Db.ScalarAsync<string>("SELECT DISTINCT tableoid::regclass::text FROM marketdata.book_ticker"), Does.StartWith("marketdata.book_ticker_p"));
    }
}

/// <summary>Full TimescaleDB keeps itself: compression, retention and the aggregates' refresh are its own jobs.</summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.Timescale))]
public sealed class TimescalePolicyTests(string tier) : StorageTest(tier)
{
    [Test]
    public async Task TimescalePolicies_CompressDropAndRefresh_WhenTheirJobsRun_AndLateRowsStillGoIntoACompressedChunk()
    {
        await Migrate();
        // The scheduler would run these jobs too, at moments of its own; the test runs each itself, once, and alone
        // (two runs of one compression job on one chunk refuse each other).
        await Db.PauseTimescaleJobsAsync();

        // Rows three days old (past compress_after: two chunk widths, at least a day), forty days old (past the
        // 30-day retention) and one hour old (inside the aggregates' refresh window).
        var id = await RegisterAsync("BTCUSDT");
        var now = DateTimeOffset.UtcNow;
        var old = now.AddDays(-3);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, Enumerable.Range(0, 100).Select(i => Book(id, i + 1, old.AddSeconds(i), 100, 101)));
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1_000, now.AddDays(-40), 100, 101)]);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, Enumerable.Range(0, 10).Select(i => Book(id, 2_000 + i, now.AddHours(-1).AddSeconds(i), 200, 201)));


        async Task RunJob(string proc, string relation)
        {
            var job = await Db.ScalarAsync<int>($"SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = '{proc}' AND hypertable_schema = 'marketdata' AND hypertable_name = '{relation}'");
            await Db.ExecuteBesideTimescaleJobsAsync($"CALL run_job({job})");
        }

        await RunJob("policy_compression", "book_ticker");
        Assert.That(await Db.ScalarAsync<long>($"""
            SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = 'marketdata' AND hypertable_name = 'book_ticker'
              AND is_compressed AND range_start <= '{old:O}' AND range_end > '{old:O}'
            """), Is.EqualTo(1), "the three-day-old chunk is compressed");
        await RunJob("policy_retention", "book_ticker");
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.book_ticker WHERE ts_exchange < '{now.AddDays(-30):O}'"), Is.Zero, "the forty-day-old row went with its chunk");

        // A spool replay or a backfill brings rows for a compressed chunk: stored, not refused, not lost.
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, Enumerable.Range(0, 5).Select(i => Book(id, 500 + i, old.AddSeconds(200 + i), 100, 101)));
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM marketdata.book_ticker WHERE ts_exchange BETWEEN '{old.AddMinutes(-1):O}' AND '{old.AddHours(1):O}'"), Is.EqualTo(105));

        var view = await Db.ScalarAsync<string>("SELECT materialization_hypertable_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'marketdata' AND view_name = 'bt_1s'");
        var job = await Db.ScalarAsync<int>("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = 'bt_1s'");
        await Db.ExecuteBesideTimescaleJobsAsync($"CALL run_job({job})");
        Assert.That(await Db.ScalarAsync<long>($"SELECT count(*) FROM _timescaledb_internal.{view} WHERE bucket > now() - interval '2 hours'"), Is.EqualTo(10),
            "the refresh policy materialised the last hour's seconds");
        // The scheduler's own first runs after the migrate count too; those the pause above cancelled (57014) do not.
        var failed = await Db.ScalarAsync<string>("""
            SELECT coalesce(string_agg(job_id || ' ' || proc_name || ': ' || err_message, '; '), '') FROM timescaledb_information.job_errors
            WHERE sqlerrcode IS DISTINCT FROM '57014'
            """);
        Assert.That(failed, Is.Empty, "no job that ran failed");
    }

    /// <summary>An older build's bt_1s ordered open and close by ROW(ts_exchange, update_id), which fails over a chunk
    /// boundary; a continuous aggregate cannot change its query, so an upgrade keeps it under another name, with what
    /// it materialised, and creates the new one beside it.</summary>
    [Test]
    public async Task AnOlderBuildsBookRollup_IsKeptAsV1WithItsSeconds_AndTheNewOneReadsOverAChunkBoundary()
    {
        await Migrate();
        await Db.PauseTimescaleJobsAsync();
        await Db.ExecuteAsync("""
            DROP MATERIALIZED VIEW marketdata.bt_1s CASCADE;
            CREATE MATERIALIZED VIEW marketdata.bt_1s WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT b.symbol_id, time_bucket(interval '1 second', b.ts_exchange) AS bucket,
                   first((b.best_bid + b.best_ask) / 2, ROW(b.ts_exchange, b.update_id)) AS mid_open,
                   last((b.best_bid + b.best_ask) / 2, ROW(b.ts_exchange, b.update_id)) AS mid_close,
                   avg(b.best_ask - b.best_bid) AS spread_mean, time_bucket(interval '1 second', b.ts_exchange) AS ts_second
            FROM marketdata.book_ticker b GROUP BY b.symbol_id, time_bucket(interval '1 second', b.ts_exchange) WITH NO DATA;
            CREATE INDEX bt_1s_training_cover ON marketdata.bt_1s (symbol_id, bucket) INCLUDE (mid_close, spread_mean);
            """);
        await Db.ExecuteAsync("SELECT add_continuous_aggregate_policy('marketdata.bt_1s', start_offset => interval '2 days', end_offset => interval '5 seconds', schedule_interval => interval '30 seconds'), add_retention_policy('marketdata.bt_1s', drop_after => interval '365 days')");
        await Db.PauseTimescaleJobsAsync();

        // Ten seconds just after a chunk boundary, materialised by the old aggregate.
        var id = await RegisterAsync("BTCUSDT");
        var boundary = await ChunkBoundaryAsync("book_ticker");
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, Enumerable.Range(0, 10).Select(i => Book(id, 100 + i, boundary.AddSeconds(i), 100 + i, 101 + i)));
        await Db.ExecuteBesideTimescaleJobsAsync("CALL refresh_continuous_aggregate('marketdata.bt_1s', NULL, NULL)");

        await Db.ExecuteAsync("UPDATE marketdata.storage_settings SET value = 'an older build' WHERE key = 'setup_hash'");
        Assert.That((await Migrate()).SetupApplied, Is.True);
        await Db.PauseTimescaleJobsAsync();

        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(view_name, ',' ORDER BY view_name) FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'marketdata'"),
            Is.EqualTo("bt_1s,bt_1s_v1,trade_1s"), "the old one kept beside the new; trade_1s was fine");
        Assert.That(await Db.ScalarAsync<string>("SELECT count(*) || ' seconds, ' || sum(mid_close) FROM marketdata.bt_1s_v1"), Is.EqualTo("10 seconds, 1050"), "the old one keeps its seconds");
        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(proc_name, ',') FROM timescaledb_information.jobs WHERE hypertable_schema = 'marketdata' AND hypertable_name = 'bt_1s_v1'"),
            Is.EqualTo("policy_retention"), "no refresh for the old one; its retention stays");
        Assert.That(await Db.ScalarAsync<string>("""
            SELECT string_agg(c.relname || '@' || a.view_name, ',' ORDER BY c.relname)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
            JOIN timescaledb_information.continuous_aggregates a ON a.materialization_hypertable_name = t.relname
            WHERE c.relname LIKE 'bt_1s%training_cover'
            """), Is.EqualTo("bt_1s_training_cover@bt_1s,bt_1s_v1_training_cover@bt_1s_v1"), "each covered under its own name");

        // The new one, over the boundary: its real-time part reads both chunks, and so does its refresh.
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 99, boundary.AddMilliseconds(-1), 50, 51), Book(id, 98, boundary.AddMilliseconds(-1), 60, 61)]);
        const string Read = "SELECT string_agg(mid_open || '/' || mid_close, ',' ORDER BY bucket) FROM marketdata.bt_1s";
        var expected = "60.5/50.5," + string.Join(',', Enumerable.Range(0, 10).Select(i => FormattableString.Invariant($"{100.5 + i}/{100.5 + i}")));
        Assert.That(await Db.ScalarAsync<string>(Read), Is.EqualTo(expected));
        await Db.RefreshContinuousAggregatesAsync();
        Assert.That(await Db.ScalarAsync<string>(Read), Is.EqualTo(expected));
    }
}

/// <summary>TimescaleDB's Apache edition has no policies: the daemon's maintenance pass drops expired chunks.</summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.TimescaleApache))]
public sealed class ApacheRetentionTests(string tier) : StorageTest(tier)
{
    [Test]
    public async Task ApacheEditionRetention_DropsChunksPastRetention_ByTheDaemonsClock()
    {
        await Migrate();

        var id = await RegisterAsync("BTCUSDT");
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var maintainer = Maintainer(time);
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, [Book(id, 1, time.GetUtcNow(), 100, 101)]);
        await CommitAsync<TradeEvent, TradeRows>(Db.DataSource, [Trade(id, 1, time.GetUtcNow(), 100, 1, false)]);
        Assert.That(await maintainer.MaintainOnceAsync(CancellationToken.None), Is.Empty, "nothing has expired yet");

        // 31 days on: book_ticker (30 days) loses the chunk holding its row; trades (90 days) keep theirs.
        time.Advance(TimeSpan.FromDays(31));
        var actions = await maintainer.MaintainOnceAsync(CancellationToken.None);
        Assert.That(actions.Where(a => a.Action == "dropped").Select(a => a.Table).Distinct(), Is.EquivalentTo(new[] { "book_ticker" }));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.book_ticker"), Is.Zero);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades"), Is.EqualTo(1));
    }
}
