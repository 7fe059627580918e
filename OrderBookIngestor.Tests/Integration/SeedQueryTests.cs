using Npgsql;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>
/// The Python collector this recorder replaces left its users daily psql queries and an ML loader that read
/// columns by name. Each of its objects is read here by those names, on every tier the run has, and compared
/// with the same figures computed in C# from the rows written.
/// </summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class SeedQueryTests(string tier) : StorageTest(tier)
{
    private sealed record BookRow(DateTimeOffset T, long Id, double Bid, double Ask, double BidQty, double AskQty, long LatencyMs);

    private sealed record TradeRow(DateTimeOffset T, long Id, double Price, double Qty, bool Maker, long LatencyMs);

    private async Task SeedAsync(int a, IReadOnlyList<BookRow> books, IReadOnlyList<TradeRow> trades)
    {
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, books.Select(b => Book(a, b.Id, b.T, b.Bid, b.Ask, b.BidQty, b.AskQty, b.LatencyMs)));
        await CommitAsync<TradeEvent, TradeRows>(Db.DataSource, trades.Select(t => Trade(a, t.Id, t.T, t.Price, t.Qty, t.Maker, t.LatencyMs)));
        await RefreshRollupsAsync();
    }

    private static (List<BookRow> Books, List<TradeRow> Trades) Market(Random random, DateTimeOffset from, int seconds, long firstId)
    {
        var books = new List<BookRow>();
        var trades = new List<TradeRow>();
        var id = firstId;
        for (var s = 0; s < seconds; s++)
        {
            // 1 to 6 updates a second (one-update seconds have no sample standard deviation), some seconds without trades.
            var updates = 1 + random.Next(6);
            for (var u = 0; u < updates; u++)
            {
                var bid = 100 + random.Next(200) / 8.0;
                books.Add(new BookRow(from.AddSeconds(s).AddMilliseconds(u * 150), id++, bid, bid + 0.125 * (1 + random.Next(4)),
                    1 + random.Next(1000) / 10.0, 1 + random.Next(1000) / 10.0, 1 + random.Next(80)));
            }

            for (var k = random.Next(4); k > 0; k--)
            {
                trades.Add(new TradeRow(from.AddSeconds(s).AddMilliseconds(random.Next(1000)), id++, 100 + random.Next(200) / 8.0, 0.5 + random.Next(100) / 4.0, random.Next(2) == 0, 1 + random.Next(80)));
            }
        }

        return (books, trades);
    }

    /// <summary>Runs <paramref name="sql"/> (its $1 the symbol id, its first column the second) and hands each row
    /// with its Unix second to <paramref name="check"/>; returns how many rows there were.</summary>
    private async Task<int> ForEachSecondAsync(string sql, int symbolId, Action<NpgsqlDataReader, long> check)
    {
        await using var cmd = Db.DataSource.CreateCommand(sql);
        cmd.Parameters.Add(new NpgsqlParameter { Value = symbolId });
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = 0;
        while (await r.ReadAsync())
        {
            check(r, new DateTimeOffset(r.GetFieldValue<DateTime>(0)).ToUnixTimeSeconds());
            rows++;
        }

        return rows;
    }

    private static double Mean(IEnumerable<double> xs) => xs.Average();

    private static double? SampleStd(List<double> xs)
    {
        if (xs.Count < 2)
        {
            return null;
        }

        var m = xs.Average();
        return Math.Sqrt(xs.Sum(x => (x - m) * (x - m)) / (xs.Count - 1));
    }

    private static double? Double(NpgsqlDataReader r, string column) => r.IsDBNull(r.GetOrdinal(column)) ? null : Convert.ToDouble(r.GetValue(r.GetOrdinal(column)), System.Globalization.CultureInfo.InvariantCulture);

    private static long Long(NpgsqlDataReader r, string column) => Convert.ToInt64(r.GetValue(r.GetOrdinal(column)), System.Globalization.CultureInfo.InvariantCulture);

    private static void Close(double? actual, double? expected, string what)
    {
        if (expected is null)
        {
            Assert.That(actual, Is.Null, what);
            return;
        }

        Assert.That(actual, Is.Not.Null, what);
        Assert.That(actual!.Value, Is.EqualTo(expected.Value).Within(1e-9 * Math.Max(1, Math.Abs(expected.Value))), what);
    }

    [Test]
    public async Task The_seeds_bt_1s_trade_1s_and_training_data_read_by_its_column_names_match_the_rows_written()
    {
        await Migrate();
        var a = await RegisterAsync("BTCUSDT");
        await RegisterAsync("ETHUSDT");
        var day = new DateTime(DateTime.UtcNow.Date.AddDays(-1).Ticks, DateTimeKind.Utc);
        var from = new DateTimeOffset(day, TimeSpan.Zero).AddHours(9);
        var (books, trades) = Market(new Random(7), from, 40, 1000);
        await SeedAsync(a, books, trades);

        var bySecond = books.GroupBy(b => b.T.ToUnixTimeSeconds()).ToDictionary(g => g.Key, g => g.OrderBy(b => b.T).ThenBy(b => b.Id).ToList());
        var tradesBySecond = trades.GroupBy(t => t.T.ToUnixTimeSeconds()).ToDictionary(g => g.Key, g => g.OrderBy(t => t.Id).ToList());

        // bt_1s by the seed's names.
        var seen = await ForEachSecondAsync("""
            SELECT ts_second, symbol_id, mid_open, mid_high, mid_low, mid_close, spread_mean, spread_min, spread_max, spread_std,
                   total_qty_mean, update_count, avg_latency_ms
            FROM marketdata.bt_1s WHERE symbol_id = $1 ORDER BY ts_second
            """, a, (r, second) =>
        {
            var rows = bySecond[second];
            var mids = rows.Select(b => (b.Bid + b.Ask) / 2).ToList();
            var spreads = rows.Select(b => b.Ask - b.Bid).ToList();
            var what = $"second {second}";
            Assert.That(r.GetInt32(1), Is.EqualTo(a));
            Close(Double(r, "mid_open"), mids[0], what + " mid_open");
            Close(Double(r, "mid_high"), mids.Max(), what + " mid_high");
            Close(Double(r, "mid_low"), mids.Min(), what + " mid_low");
            Close(Double(r, "mid_close"), mids[^1], what + " mid_close");
            Close(Double(r, "spread_mean"), Mean(spreads), what + " spread_mean");
            Close(Double(r, "spread_min"), spreads.Min(), what + " spread_min");
            Close(Double(r, "spread_max"), spreads.Max(), what + " spread_max");
            Close(Double(r, "spread_std"), SampleStd(spreads), what + " spread_std");
            Close(Double(r, "total_qty_mean"), Mean(rows.Select(b => b.BidQty + b.AskQty)), what + " total_qty_mean");
            Assert.That(Long(r, "update_count"), Is.EqualTo(rows.Count), what + " update_count");
            Close(Double(r, "avg_latency_ms"), Mean(rows.Select(b => (double)b.LatencyMs)), what + " avg_latency_ms");
        });
        Assert.That(seen, Is.EqualTo(bySecond.Count), "one bt_1s row per second with updates");

        // trade_1s by the seed's names (buy = taker buy: the buyer is not the maker).
        seen = await ForEachSecondAsync("""
            SELECT ts_second, symbol_id, trade_count, vol_sum, vwap, buy_vol, sell_vol, price_open, price_high, price_low, price_close
            FROM marketdata.trade_1s WHERE symbol_id = $1 ORDER BY ts_second
            """, a, (r, second) =>
        {
            var rows = tradesBySecond[second];
            var what = $"second {second}";
            Assert.That(Long(r, "trade_count"), Is.EqualTo(rows.Count), what + " trade_count");
            Close(Double(r, "vol_sum"), rows.Sum(t => t.Qty), what + " vol_sum");
            Close(Double(r, "vwap"), rows.Sum(t => t.Price * t.Qty) / rows.Sum(t => t.Qty), what + " vwap");
            Close(Double(r, "buy_vol"), rows.Where(t => !t.Maker).Sum(t => t.Qty), what + " buy_vol");
            Close(Double(r, "sell_vol"), rows.Where(t => t.Maker).Sum(t => t.Qty), what + " sell_vol");
            Close(Double(r, "price_open"), rows[0].Price, what + " price_open");
            Close(Double(r, "price_high"), rows.Max(t => t.Price), what + " price_high");
            Close(Double(r, "price_low"), rows.Min(t => t.Price), what + " price_low");
            Close(Double(r, "price_close"), rows[^1].Price, what + " price_close");
        });
        Assert.That(seen, Is.EqualTo(tradesBySecond.Count), "one trade_1s row per second with trades");

        // get_yesterday_training_data as the seed's loader reads it: its first seven columns, by name, in order.
        await using (var cmd = Db.DataSource.CreateCommand($"SELECT * FROM marketdata.get_yesterday_training_data({a})"))
        {
            await using var r = await cmd.ExecuteReaderAsync();
            Assert.That(Enumerable.Range(0, 7).Select(r.GetName), Is.EqualTo(new[] { "ts_second", "symbol_id", "mid_close", "spread_mean", "trade_count", "vwap", "buy_sell_imbalance" }));
            var rowsRead = 0;
            var previous = DateTime.MinValue;
            while (await r.ReadAsync())
            {
                rowsRead++;
                var ts = r.GetFieldValue<DateTime>(0);
                Assert.That(ts, Is.GreaterThan(previous), "ordered by second");
                previous = ts;
                var second = new DateTimeOffset(ts).ToUnixTimeSeconds();
                var what = $"second {second}";
                bySecond.TryGetValue(second, out var b);
                tradesBySecond.TryGetValue(second, out var t);
                Close(Double(r, "mid_close"), b is null ? null : (b[^1].Bid + b[^1].Ask) / 2, what + " mid_close");
                Close(Double(r, "spread_mean"), b is null ? null : Mean(b.Select(x => x.Ask - x.Bid)), what + " spread_mean");
                Assert.That(Long(r, "trade_count"), Is.EqualTo(t?.Count ?? 0), what + " trade_count (0 when none)");
                Close(Double(r, "vwap"), t is null ? null : t.Sum(x => x.Price * x.Qty) / t.Sum(x => x.Qty), what + " vwap");
                var buy = t?.Where(x => !x.Maker).Sum(x => x.Qty) ?? 0;
                var sell = t?.Where(x => x.Maker).Sum(x => x.Qty) ?? 0;
                Close(Double(r, "buy_sell_imbalance"), buy + sell > 0 ? (buy - sell) / (buy + sell) : 0, what + " buy_sell_imbalance");
            }

            Assert.That(rowsRead, Is.EqualTo(86_400), "a full UTC day, one row a second");
        }
    }

    [Test]
    public async Task The_seeds_ingestion_stats_and_data_quality_check_cover_the_last_hour_of_each_active_symbol()
    {
        await Migrate();
        var a = await RegisterAsync("BTCUSDT");
        await RegisterAsync("ETHUSDT");
        var gone = await RegisterAsync("XRPUSDT");
        await new SymbolStore(Db.DataSource).DeactivateAsync([gone], CancellationToken.None);
        var now = DateTimeOffset.UtcNow;
        var (books, trades) = Market(new Random(11), now.AddMinutes(-50), 30, 5000);
        // Rows breaking each rule, and rows older than the hour that must not count.
        books.Add(new BookRow(now.AddMinutes(-10), 9001, 0, 101, 1, 1, 5));
        books.Add(new BookRow(now.AddMinutes(-10), 9002, 101, -1, 1, 1, 5));
        books.Add(new BookRow(now.AddMinutes(-10), 9003, 101, 102, 0, 1, 5));
        books.Add(new BookRow(now.AddMinutes(-10), 9004, 101, 102, 1, -2, 5));
        books.Add(new BookRow(now.AddMinutes(-9), 9005, 101, 101, 1, 1, 5));
        books.Add(new BookRow(now.AddMinutes(-9), 9006, 101, 102, 1, 1, -30));
        var old = new List<BookRow> { new(now.AddMinutes(-70), 1, 0, 0, 0, 0, -5) };
        await SeedAsync(a, [.. books, .. old], [.. trades, new TradeRow(now.AddMinutes(-90), 2, 100, 1, false, 5)]);

        await using (var cmd = Db.DataSource.CreateCommand("""
            SELECT symbol, book_ticker_count_1h, trades_count_1h, last_book_ticker, last_trade, avg_latency_ms
            FROM marketdata.ingestion_stats ORDER BY symbol
            """))
        {
            await using var r = await cmd.ExecuteReaderAsync();
            Assert.That(await r.ReadAsync(), Is.True);
            Assert.That(r.GetString(0), Is.EqualTo("BTCUSDT"));
            Assert.That((Long(r, "book_ticker_count_1h"), Long(r, "trades_count_1h")), Is.EqualTo(((long)books.Count, (long)trades.Count)));
            Assert.That(new DateTimeOffset(r.GetFieldValue<DateTime>(3)).ToUnixTimeMilliseconds(), Is.EqualTo(books.Max(b => b.T).ToUnixTimeMilliseconds()));
            Assert.That(new DateTimeOffset(r.GetFieldValue<DateTime>(4)).ToUnixTimeMilliseconds(), Is.EqualTo(trades.Max(t => t.T).ToUnixTimeMilliseconds()));
            var latency = books.Select(b => (double)b.LatencyMs).Concat(trades.Select(t => (double)t.LatencyMs)).Average();
            Assert.That(Double(r, "avg_latency_ms"), Is.EqualTo(latency).Within(0.0006), "mean over both tables, rounded to µs");

            Assert.That(await r.ReadAsync(), Is.True, "an active symbol with nothing in the last hour still has its row");
            Assert.That(r.GetString(0), Is.EqualTo("ETHUSDT"));
            Assert.That((Long(r, "book_ticker_count_1h"), Long(r, "trades_count_1h")), Is.EqualTo((0L, 0L)));
            Assert.That((r.IsDBNull(3), r.IsDBNull(4), r.IsDBNull(5)), Is.EqualTo((true, true, true)));
            Assert.That(await r.ReadAsync(), Is.False, "XRPUSDT is not active");
        }

        await using (var cmd = Db.DataSource.CreateCommand("""
            SELECT symbol, total_records, invalid_bid_price, invalid_ask_price, invalid_bid_qty, invalid_ask_qty, invalid_spread, invalid_latency
            FROM marketdata.data_quality_check ORDER BY symbol
            """))
        {
            await using var r = await cmd.ExecuteReaderAsync();
            Assert.That(await r.ReadAsync(), Is.True);
            long Count(Func<BookRow, bool> rule) => books.LongCount(rule);
            Assert.That(
                (Long(r, "total_records"), Long(r, "invalid_bid_price"), Long(r, "invalid_ask_price"), Long(r, "invalid_bid_qty"),
                 Long(r, "invalid_ask_qty"), Long(r, "invalid_spread"), Long(r, "invalid_latency")),
                Is.EqualTo((Count(_ => true), Count(b => b.Bid <= 0), Count(b => b.Ask <= 0), Count(b => b.BidQty <= 0),
                            Count(b => b.AskQty <= 0), Count(b => b.Ask - b.Bid <= 0), Count(b => b.LatencyMs < 0))));
            Assert.That(await r.ReadAsync(), Is.True);
            Assert.That((r.GetString(0), Long(r, "total_records")), Is.EqualTo(("ETHUSDT", 0L)));
            Assert.That(await r.ReadAsync(), Is.False, "XRPUSDT is not active");
        }
    }
}
