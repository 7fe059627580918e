using System.Globalization;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>Simulator → daemon → PostgreSQL for mark price, liquidations and open interest: every served event stored
/// once with its values, and every hole in feed_gaps.</summary>
public sealed class DerivativesEndToEndTests : DatabaseTest
{
    /// <summary>A decimal as PostgreSQL prints the numeric of a sum: no trailing zeros (65001.0 is 65001).</summary>
    private static string N(decimal d) => (d / 1.000000000000000000000000000000000m).ToString(CultureInfo.InvariantCulture);

    [Test]
    public async Task MarkPriceLiquidationsAndOpenInterest_AreStoredExactlyAsServed()
    {
        // 3 symbols × (bookTicker, markPrice, forceOrder); the market runs ~6 s, so ~6 mark prices per symbol.
        var sim = new SimulatorOptions { Symbols = 3, Rate = 500, Events = 3_000, Seed = 21, WaitForStreams = 9, DuplicateEvery = 7 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Channels = ["bookTicker", "markPrice", "forceOrder", "openInterest"];
            o.OpenInterestSeconds = 5;
            o.RollupIntervalMs = 200;
        });
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(DISTINCT symbol_id) FROM marketdata.open_interest") == 3,
            TimeSpan.FromSeconds(30), () => "an open interest row per symbol");
        // The daemon's rollup pass takes a batch once it is 2 s old (open interest keeps being polled: those batches keep coming).
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.ingest_batches WHERE rollup_pending AND table_name <> 'open_interest'") == 0,
            TimeSpan.FromSeconds(30), () => "derivatives_1s caught up");

        var ledger = h.Simulator.Ledger.Snapshot();
        foreach (var symbol in SymbolUniverse.Create(3).Select(s => s.Symbol))
        {
            var id = await Db.ScalarAsync<int>($"SELECT id FROM marketdata.symbols WHERE symbol = '{symbol}'");
            var mark = ledger[$"{symbol.ToLowerInvariant()}@markPrice@1s"];
            Assert.That(mark.Count, Is.GreaterThanOrEqualTo(4), "the simulator's one-second clock ran");
            var stored = await Db.ScalarAsync<string>($"""
                SELECT concat_ws('|', count(*), sum((extract(epoch FROM ts_exchange) * 1000)::bigint), trim_scale(sum(mark_price::numeric)), trim_scale(sum(index_price::numeric)),
                                 trim_scale(sum(est_settle_price::numeric)), trim_scale(sum(funding_rate::numeric)), sum((extract(epoch FROM next_funding_time) * 1000)::bigint),
                                 count(*) FILTER (WHERE is_backfilled))
                FROM marketdata.mark_price WHERE symbol_id = {id}
                """);
            Assert.That(stored, Is.EqualTo(string.Join('|', mark.Count, mark.SumEventTimeMs, N(mark.SumPrice), N(mark.SumQty), N(mark.SumPrice2), N(mark.SumQty2), mark.SumLastId, 0)),
                $"{symbol} mark prices: count, times, mark, index, settle, funding, next funding");

            var liquidations = ledger.GetValueOrDefault($"{symbol.ToLowerInvariant()}@forceOrder");
            var storedLiquidations = await Db.ScalarAsync<string>($"""
                SELECT concat_ws('|', count(*), coalesce(sum((extract(epoch FROM ts_exchange) * 1000)::bigint), 0), coalesce(sum((extract(epoch FROM ts_trade) * 1000)::bigint), 0),
                                 trim_scale(coalesce(sum(price::numeric), 0)), trim_scale(coalesce(sum(orig_qty::numeric), 0)), count(*) FILTER (WHERE side = 'SELL'),
                                 count(*) FILTER (WHERE avg_price = price AND filled_qty = orig_qty AND last_filled_qty = orig_qty AND status = 'FILLED' AND order_type = 'LIMIT' AND time_in_force = 'IOC'))
                FROM marketdata.liquidations WHERE symbol_id = {id}
                """);
            var l = liquidations ?? new SimLedger.StreamTotals(symbol, "ForceOrder");
            Assert.That(storedLiquidations, Is.EqualTo(string.Join('|', l.Count, l.SumEventTimeMs, l.SumTransactionTimeMs, N(l.SumPrice), N(l.SumQty), l.MakerCount, l.Count)),
                $"{symbol} liquidations");

            // derivatives_1s: a row for each second with a mark price or a liquidation (and for open interest answers, which
            // keep coming), each holding the second's counts and the values last served at or before its end.
            var rollup = await Db.ScalarAsync<string>($"""
                SELECT concat_ws('|', count(*) FILTER (WHERE mark_updates + liq_buy_count + liq_sell_count > 0), sum(mark_updates), sum(liq_buy_count + liq_sell_count), count(*) FILTER (WHERE mark_at >= bucket + interval '1 second' OR open_interest_at >= bucket + interval '1 second'))
                FROM marketdata.derivatives_1s WHERE symbol_id = {id}
                """);
            var seconds = await Db.ScalarAsync<long>($"""
                SELECT count(DISTINCT s) FROM (SELECT date_trunc('second', ts_exchange) FROM marketdata.mark_price WHERE symbol_id = {id}
                                               UNION ALL SELECT date_trunc('second', ts_exchange) FROM marketdata.liquidations WHERE symbol_id = {id}) x(s)
                """);
            Assert.That(rollup, Is.EqualTo(string.Join('|', seconds, mark.Count, l.Count, 0)), $"{symbol} derivatives_1s: seconds, mark prices, liquidations, none from the future");
            var oiRows = await Db.ScalarAsync<string>($"SELECT string_agg((extract(epoch FROM open_interest_at) * 1000)::bigint || ':' || open_interest::numeric, ',') FROM marketdata.derivatives_1s WHERE symbol_id = {id} AND open_interest IS NOT NULL");
            foreach (var r in oiRows.Split(','))
            {
                var parts = r.Split(':');
                Assert.That(decimal.Parse(parts[1], CultureInfo.InvariantCulture), Is.EqualTo(h.Simulator.OpenInterestAt(symbol, long.Parse(parts[0], CultureInfo.InvariantCulture))),
                    $"{symbol} derivatives_1s open interest from {parts[0]}");
            }

            // Every open interest row is the value the exchange had at its time.
            var rows = await Db.ScalarAsync<string>($"SELECT string_agg((extract(epoch FROM ts_exchange) * 1000)::bigint || ':' || open_interest::numeric, ',') FROM marketdata.open_interest WHERE symbol_id = {id}");
            foreach (var r in rows.Split(','))
            {
                var parts = r.Split(':');
                Assert.That(decimal.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture),
                    Is.EqualTo(h.Simulator.OpenInterestAt(symbol, long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture))), $"{symbol} open interest at {parts[0]}");
            }
        }

        Assert.Multiple(async () =>
        {
            Assert.That(ledger.Keys.Count(k => k.EndsWith("@forceOrder", StringComparison.Ordinal)), Is.GreaterThan(0), "some liquidations were served");
            Assert.That(h.Metrics.LiquidationSampledSeconds, Is.EqualTo(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.liquidations")));
            Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason IN ('missed_seconds', 'poll_missed')"), Is.Zero, "no fault, no hole");
            Assert.That(h.Metrics.OpenInterestPolls.Missed, Is.Zero);
        });
    }

    [Test]
    public async Task WithheldMarkPrices_AreAHoleOfMissedSeconds_AndAFailedPollIsAGapRow()
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 200, Events = 1_600, Seed = 22, WaitForStreams = 2 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Channels = ["bookTicker", "markPrice", "openInterest"];
            o.OpenInterestSeconds = 5;
        });
        await Harness.WaitUntilAsync(() => h.Metrics.MarkPrice.RowsCommitted >= 2, TimeSpan.FromSeconds(30), () => "mark prices");
        h.Simulator.WithholdNext("btcusdt@markPrice@1s", 2);
        // The next REST call (the open interest poll: nothing else calls REST here) gets a 500.
        h.Simulator.FailRestNext(500, 1, 0);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'poll_missed'") >= 1,
            TimeSpan.FromSeconds(30), () => "the failed poll's gap row");

        var withheld = h.Simulator.Ledger.Withheld()["btcusdt@markPrice@1s"];
        Assert.That(withheld, Has.Count.EqualTo(2));
        var gap = await Db.ScalarAsync<string>("""
            SELECT concat_ws('|', count(*), min((extract(epoch FROM gap_start) * 1000)::bigint), max((extract(epoch FROM gap_end) * 1000)::bigint))
            FROM marketdata.feed_gaps WHERE reason = 'missed_seconds' AND stream = 'btcusdt@markPrice@1s'
            """);
        var (first, last) = (withheld.Min(e => e.EventTimeMs), withheld.Max(e => e.EventTimeMs));
        Assert.That(gap, Is.EqualTo($"1|{first - 999}|{last + 999}"), "one hole covering exactly the withheld seconds");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.mark_price") + 2, Is.EqualTo(h.Simulator.Ledger.GeneratedPerStream()["btcusdt@markPrice@1s"]));
        Assert.That(await Db.ScalarAsync<string>("SELECT stream || ' ' || details FROM marketdata.feed_gaps WHERE reason = 'poll_missed' LIMIT 1"), Does.StartWith("btcusdt@openInterest failed"));
        Assert.That(h.Metrics.OpenInterestPolls.Missed, Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public async Task EverySymbol_TakesLiquidationsFromTheAllMarketStream_AndADisconnectIsAHoleForEach()
    {
        var sim = new SimulatorOptions { Symbols = 4, Rate = 400, Events = 2_800, Seed = 23, WaitForStreams = 5 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Symbols = ["ALL"];
            o.Channels = ["bookTicker", "forceOrder"];
        });
        await Harness.WaitUntilAsync(() => h.Metrics.Liquidations.RowsCommitted >= 2, TimeSpan.FromSeconds(30), () => "liquidations");
        Assert.That(h.Simulator.Connections.SelectMany(c => c.Subscriptions()).Where(s => s.Contains("forceOrder", StringComparison.Ordinal)),
            Is.EqualTo(new[] { "!forceOrder@arr" }), "one subscription for every symbol's liquidations");
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));

        var ledger = h.Simulator.Ledger.Snapshot().Where(kv => kv.Key.EndsWith("@forceOrder", StringComparison.Ordinal)).ToList();
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.liquidations"), Is.EqualTo(ledger.Sum(kv => kv.Value.Count)));
        Assert.That(await Db.ScalarAsync<decimal>("SELECT sum(price::numeric) FROM marketdata.liquidations"), Is.EqualTo(ledger.Sum(kv => kv.Value.SumPrice)));
        Assert.That(ledger, Has.Count.GreaterThan(1), "liquidations of several symbols came through it");

        // Cut once everything served is stored: frames in flight at a cut die with it (a hole, not a loss of ours), and
        // the exact count above could not tell them apart.
        h.Simulator.DisconnectAll();
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(DISTINCT symbol_id) FROM marketdata.feed_gaps WHERE stream LIKE '%@forceOrder' AND reason = 'disconnected'") == 4,
            TimeSpan.FromSeconds(30), () => "a disconnected hole for each symbol's liquidations");
    }

    [Test]
    public async Task AHalfOpenConnection_IsALiquidationHoleFromItsLastFrame_NotFromWhenTheSilenceWasNoticed()
    {
        // The market never starts: subscriptions are acknowledged, then nothing arrives, as on a half-open connection.
        // Liquidations sent in those 30 s were lost, so the hole must cover them. The daemon's clock is driven by hand.
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var sim = new SimulatorOptions { Symbols = 2, Rate = 100, Seed = 27, WaitForStreams = 1_000 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Channels = ["bookTicker", "forceOrder"];
            o.NoDataTimeoutSeconds = 30;
        }, time);
        await Harness.WaitUntilAsync(() => h.Metrics.Shards.Count > 0 && h.Metrics.Shards.All(s => s.State == Observability.ConnectionState.Streaming),
            TimeSpan.FromSeconds(20), () => "subscribed");
        var subscribedMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        await Harness.WaitUntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return h.Metrics.Shards.All(s => s.Reconnects >= 1);
        }, TimeSpan.FromSeconds(20), () => "watchdog never fired");
        await Harness.WaitUntilAsync(async () =>
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            return await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE stream LIKE '%@forceOrder' AND reason = 'disconnected'") == 2;
        }, TimeSpan.FromSeconds(30), () => "a hole for each symbol's liquidations");

        var holes = await Db.ScalarAsync<string>($"""
            SELECT string_agg(DISTINCT ((extract(epoch FROM gap_start) * 1000)::bigint <= {subscribedMs} AND gap_end - gap_start >= interval '30 seconds')::text, ',')
            FROM marketdata.feed_gaps WHERE stream LIKE '%@forceOrder' AND reason = 'disconnected'
            """);
        Assert.That(holes, Is.EqualTo("true"), "each hole starts at the subscription's acknowledgement, the last frame, and spans the silence");
    }

    [Test]
    public async Task ARestart_IsALiquidationAndOpenInterestHoleForEverySymbol_FromWhenThePreviousRunStopped()
    {
        // forceOrder may be silent for hours, so its last row cannot date the downtime; the previous run's end can. The same
        // for the open interest polls that fell due meanwhile.
        var sim = new SimulatorOptions { Symbols = 2, Rate = 300, Events = 3_000, Seed = 26, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Channels = ["bookTicker", "forceOrder", "openInterest"];
            o.OpenInterestSeconds = 5;
        });
        await Harness.WaitUntilAsync(() => h.Metrics.BookTicker.RowsCommitted >= 100, TimeSpan.FromSeconds(30), () => "recording");
        await h.RestartDaemonAsync(TimeSpan.FromSeconds(2));
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE reason = 'daemon_down' AND (stream LIKE '%@forceOrder' OR stream LIKE '%@openInterest')") == 4,
            TimeSpan.FromSeconds(30), () => "a daemon_down hole per symbol's liquidations and open interest");

        var stoppedMs = await Db.ScalarAsync<long>("""
            SELECT (extract(epoch FROM stopped_at) * 1000)::bigint FROM marketdata.recorder_sessions WHERE stopped_at IS NOT NULL ORDER BY started_at LIMIT 1
            """);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.recorder_sessions"), Is.EqualTo(2), "one row per run");
        Assert.That(await Db.ScalarAsync<string>($"""
            SELECT string_agg(DISTINCT ((extract(epoch FROM gap_start) * 1000)::bigint = {stoppedMs} AND gap_end - gap_start >= interval '2 seconds')::text, ',')
            FROM marketdata.feed_gaps WHERE reason = 'daemon_down' AND (stream LIKE '%@forceOrder' OR stream LIKE '%@openInterest')
            """), Is.EqualTo("true"), "each hole runs from the moment the first run stopped to the second run's start or subscription");
        Assert.That(await Db.ScalarAsync<long>("""
            SELECT count(*) FROM marketdata.liquidations l JOIN marketdata.feed_gaps g ON g.symbol_id = l.symbol_id AND g.stream LIKE '%@forceOrder'
            WHERE g.reason = 'daemon_down' AND l.ts_ingest > g.gap_start AND l.ts_ingest < g.gap_end
            """), Is.Zero, "nothing was received inside the hole");
    }

    [Test]
    public async Task AfterDowntime_MinuteBarsAndSettledFundingAreBackfilled_AndTheWindowStaysAGap()
    {
        var sim = new SimulatorOptions { Symbols = 1, Rate = 200, Events = 4_000, Seed = 24, WaitForStreams = 2 };
        await using var h = await Harness.StartAsync(Db, sim, o => o.Channels = ["bookTicker", "markPrice"]);
        await Harness.WaitUntilAsync(() => h.Metrics.MarkPrice.RowsCommitted >= 2, TimeSpan.FromSeconds(30), () => "mark prices");
        // While the daemon is down, make its last stored mark price 5 minutes before the last funding settlement, as
        // if it had been down since then: the window then holds minute bars and one settlement.
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var settlement = now / 28_800_000 * 28_800_000;
        var lastLive = settlement - 300_000 + 1_234;
        await h.RestartDaemonAsync(TimeSpan.FromMilliseconds(200), async () =>
        {
            await Db.ExecuteAsync("DELETE FROM marketdata.mark_price");
            await Db.ExecuteAsync($"INSERT INTO marketdata.mark_price (ts_exchange, ts_ingest, symbol_id, mark_price) SELECT to_timestamp({lastLive} / 1000.0), now(), id, 1 FROM marketdata.symbols");
        });
        await Harness.WaitUntilAsync(() => h.Metrics.MarkPricesBackfilled > 0, TimeSpan.FromSeconds(30), () => "no backfill");
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.mark_price WHERE is_backfilled") == h.Metrics.MarkPricesBackfilled,
            TimeSpan.FromSeconds(30), () => "backfilled rows not committed");

        var window = await Db.ScalarAsync<string>("""
            SELECT (extract(epoch FROM gap_start) * 1000)::bigint || ' ' || (extract(epoch FROM gap_end) * 1000)::bigint
            FROM marketdata.feed_gaps WHERE stream = 'btcusdt@markPrice@1s' AND reason = 'daemon_down'
            """);
        var (from, to) = (long.Parse(window.Split(' ')[0], CultureInfo.InvariantCulture), long.Parse(window.Split(' ')[1], CultureInfo.InvariantCulture));
        Assert.That(from, Is.EqualTo(lastLive + 1), "the hole starts after the last live mark price");
        var expected = new List<string>();
        for (var open = (from - 59_999 + 59_999) / 60_000 * 60_000; open + 59_999 <= to; open += 60_000)
        {
            if (open + 59_999 < from)
            {
                continue;
            }

            var funding = open + 59_999 >= settlement && open < settlement + 60_000 && settlement >= from
                ? h.Simulator.FundingRateAt("BTCUSDT", settlement).ToString(CultureInfo.InvariantCulture) : "-";
            expected.Add($"{open + 59_999}:{((double)h.Simulator.MarkPriceBar("BTCUSDT", open).Close).ToString(CultureInfo.InvariantCulture)}:{funding}");
        }

        var stored = await Db.ScalarAsync<string>("""
            SELECT string_agg((extract(epoch FROM ts_exchange) * 1000)::bigint || ':' || mark_price::numeric || ':' || coalesce(funding_rate::numeric::text, '-'), ',' ORDER BY ts_exchange)
            FROM marketdata.mark_price WHERE is_backfilled AND index_price IS NULL AND est_settle_price IS NULL
            """);
        Assert.That(expected, Has.Count.GreaterThanOrEqualTo(5));
        Assert.That(stored, Is.EqualTo(string.Join(',', expected)), "every bar closing in the hole, with the settled rate on the first bar after the settlement");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps WHERE stream = 'btcusdt@markPrice@1s'"), Is.EqualTo(1), "the window is still a hole");
    }

    [Test]
    public async Task MarkPriceEveryThreeSeconds_IsStoredWithoutFalseHoles()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 200, Events = 2_000, Seed = 25, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim, o => o.Channels = ["bookTicker", "markPrice@3s"]);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        var ledger = h.Simulator.Ledger.Snapshot();
        var served = ledger.Where(kv => kv.Key.EndsWith("@markPrice", StringComparison.Ordinal)).ToList();
        Assert.That(served.Sum(kv => kv.Value.Count), Is.GreaterThanOrEqualTo(4), "two symbols, every 3 s, about 10 s");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.mark_price"), Is.EqualTo(served.Sum(kv => kv.Value.Count)));
        Assert.That(await Db.ScalarAsync<decimal>("SELECT trim_scale(sum(mark_price::numeric)) FROM marketdata.mark_price"), Is.EqualTo(served.Sum(kv => kv.Value.SumPrice)));
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.mark_price m JOIN marketdata.mark_price n ON n.symbol_id = m.symbol_id AND n.ts_exchange > m.ts_exchange AND n.ts_exchange < m.ts_exchange + interval '3 seconds'"),
            Is.Zero, "3 s apart");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.feed_gaps"), Is.Zero, "a 3-second pace is no hole");
    }
}
