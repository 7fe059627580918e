using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Storage;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>The read API over real HTTP (Kestrel on a free port) against a real database.</summary>
public abstract class ReadApiTest(string tier) : StorageTest(tier), IDisposable
{
    private WebApplication? _app;

    protected HttpClient Http { get; private set; } = null!;

    public void Dispose()
    {
        Http?.Dispose();
        GC.SuppressFinalize(this);
    }

    [TearDown]
    public async Task StopServer()
    {
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.DisposeAsync();
            _app = null;
        }
    }

    protected async Task StartAsync(ReadApiAccess? access = null, int maxConcurrent = 4, int timeoutMs = 10_000)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddSingleton(_ => new ReadApi(ReadApi.CreateDataSource(Db.ConnectionString, maxConcurrent), access ?? ReadApiAccess.Open, maxConcurrent, timeoutMs));
        _app = builder.Build();
        _app.Services.GetRequiredService<ReadApi>().Map(_app);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Http = new HttpClient { BaseAddress = new Uri(address) };
    }

    protected async Task<(HttpStatusCode Status, JsonElement Body)> GetJsonAsync(string path)
    {
        using var response = await Http.GetAsync(new Uri(path, UriKind.Relative));
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text);
        return (response.StatusCode, doc.RootElement.Clone());
    }

    protected async Task<List<BookTickerEvent>> SeedBooksAsync(int symbol, int count, DateTimeOffset from)
    {
        // Several rows share a millisecond, so the cursor must order by update id within one instant.
        var rows = Enumerable.Range(0, count).Select(i => Book(symbol, 1000 + i, from.AddMilliseconds(i / 3 * 10), 100 + (i % 50) / 8.0, 101 + (i % 50) / 8.0, 1 + i, 2 + i)).ToList();
        await CommitAsync<BookTickerEvent, BookTickerRows>(Db.DataSource, rows);
        return rows;
    }
}

/// <summary>The read API on every storage tier: the same rows, pages and shapes.</summary>
[TestFixtureSource(typeof(TestTiers), nameof(TestTiers.All))]
public sealed class ReadApiTests(string tier) : ReadApiTest(tier)
{
    [Test]
    public async Task Data_pages_through_every_row_oldest_first_by_cursor_exactly_once()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var eth = await RegisterAsync("ETHUSDT");
        var from = DateTimeOffset.UtcNow.AddMinutes(-30);
        var rows = await SeedBooksAsync(btc, 2_345, from);
        await SeedBooksAsync(eth, 10, from);
        await StartAsync();

        var read = new List<JsonElement>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var (status, body) = await GetJsonAsync($"/data/btcusdt?limit=1000{(cursor is null ? "" : "&cursor=" + cursor)}");
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK), body.ToString());
            Assert.That(body.GetProperty("type").GetString(), Is.EqualTo("book_ticker"));
            read.AddRange(body.GetProperty("rows").EnumerateArray());
            Assert.That(body.GetProperty("count").GetInt64(), Is.EqualTo(body.GetProperty("rows").GetArrayLength()));
            cursor = body.GetProperty("next").ValueKind == JsonValueKind.Null ? null : body.GetProperty("next").GetString();
            pages++;
        }
        while (cursor is not null && pages < 10);

        Assert.That(pages, Is.EqualTo(3), "1000 + 1000 + 345");
        Assert.That(read.Select(r => r.GetProperty("update_id").GetInt64()), Is.EqualTo(rows.Select(r => r.UpdateId)), "every row once, oldest first");
        var last = read[^1];
        var expected = rows[^1];
        Assert.Multiple(() =>
        {
            Assert.That(last.GetProperty("best_bid").GetDouble(), Is.EqualTo(expected.BestBid));
            Assert.That(last.GetProperty("ask_qty").GetDouble(), Is.EqualTo(expected.AskQty));
            Assert.That(DateTimeOffset.Parse(last.GetProperty("ts_exchange").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(), Is.EqualTo(expected.EventTimeMs));
        });

        // A time range in the seed's Unix seconds, and the same as ISO 8601.
        var start = from.AddSeconds(2).ToUnixTimeSeconds();
        var end = start + 3;
        var inRange = rows.Count(r => r.EventTimeMs >= start * 1000 && r.EventTimeMs < end * 1000);
        var (s1, unix) = await GetJsonAsync($"/data/BTCUSDT?type=book_ticker&start_time={start}&end_time={end}&limit=10000");
        var (s2, iso) = await GetJsonAsync($"/data/BTCUSDT?from={DateTimeOffset.FromUnixTimeSeconds(start):yyyy-MM-ddTHH:mm:ssZ}&to={DateTimeOffset.FromUnixTimeSeconds(end):yyyy-MM-ddTHH:mm:ssZ}&limit=10000");
        Assert.That((s1, s2), Is.EqualTo((HttpStatusCode.OK, HttpStatusCode.OK)));
        Assert.That((unix.GetProperty("count").GetInt64(), iso.GetProperty("count").GetInt64()), Is.EqualTo(((long)inRange, (long)inRange)));
        Assert.That(inRange, Is.GreaterThan(0));
    }

    [Test]
    public async Task Every_type_reads_its_table_and_csv_carries_the_same_rows()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var now = DateTimeOffset.UtcNow.AddMinutes(-10);
        await SeedBooksAsync(btc, 30, now);
        await CommitAsync<TradeEvent, TradeRows>(Db.DataSource, Enumerable.Range(0, 7).Select(i => Trade(btc, 50 + i, now.AddMilliseconds(i * 300), 100 + i, 1 + i, i % 2 == 0)));
        await using (var gap = Db.DataSource.CreateCommand("INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, reason) VALUES ($1, 'bookTicker', $2, $3, 'disconnect')"))
        {
            gap.Parameters.Add(new NpgsqlParameter { Value = btc });
            gap.Parameters.Add(new NpgsqlParameter { Value = now.AddSeconds(5) });
            gap.Parameters.Add(new NpgsqlParameter { Value = now.AddSeconds(9) });
            await gap.ExecuteNonQueryAsync();
        }

        await CommitAsync<MarkPriceEvent, MarkPriceRows>(Db.DataSource, [new MarkPriceEvent(btc, Ms(now), 0, 100, 100, 100, 0.0001, 0),
            new MarkPriceEvent(btc, Ms(now.AddSeconds(1)), 0, 101, 101, 101, 0.0001, 0)]);
        await RefreshRollupsAsync();

        await StartAsync();
        var expected = new Dictionary<string, long>
        {
            ["book_ticker"] = 30,
            ["trades"] = 7,
            ["depth"] = 0,
            ["bt_1s"] = await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.bt_1s"),
            ["trade_1s"] = await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trade_1s"),
            ["derivatives_1s"] = 2,
            ["gaps"] = 1,
        };
        foreach (var (type, count) in expected)
        {
            var (status, body) = await GetJsonAsync($"/data/BTCUSDT?type={type}");
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK), $"{type}: {body}");
            Assert.That(body.GetProperty("count").GetInt64(), Is.EqualTo(count), type);
        }

        Assert.That(expected["bt_1s"], Is.GreaterThan(0));
        var (_, bars) = await GetJsonAsync("/data/BTCUSDT?type=bt_1s&limit=1");
        Assert.That(bars.GetProperty("rows")[0].TryGetProperty("ts_second", out _), Is.True, "the seed's column names");

        // CSV: by format=csv and by Accept, header plus one line per row, the cursor in X-Next-Cursor.
        using (var csv = await Http.GetAsync(new Uri("/data/BTCUSDT?type=trades&format=csv&limit=5", UriKind.Relative)))
        {
            Assert.That(csv.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/csv"));
            var lines = (await csv.Content.ReadAsStringAsync()).TrimEnd('\n').Split('\n');
            Assert.That(lines[0], Does.StartWith("ts_exchange,ts_trade,ts_ingest,agg_trade_id,price,qty"));
            Assert.That(lines, Has.Length.EqualTo(6));
            Assert.That(lines[1].Split(',')[3..6], Is.EqualTo(new[] { "50", "100", "1" }));
            Assert.That(csv.Headers.GetValues("X-Next-Cursor").Single(), Is.Not.Empty);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/data/BTCUSDT?type=trades");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        using var byAccept = await Http.SendAsync(request);
        Assert.That((await byAccept.Content.ReadAsStringAsync()).TrimEnd('\n').Split('\n'), Has.Length.EqualTo(8));
        Assert.That(byAccept.Headers.Contains("X-Next-Cursor"), Is.False, "the last page has no next");
    }

    [Test]
    public async Task Book_is_the_snapshot_plus_the_diffs_up_to_the_instant_and_422_where_it_cannot_be_known()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-20);
        string T(double seconds) => t0.AddSeconds(seconds).ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture) + "+00";
        string Q(double seconds) => Uri.EscapeDataString(t0.AddSeconds(seconds).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
        // Snapshot at 0 (last_update_id 100); a diff at 1 s continues it (pu 100), one at 2 s continues that; the one at 5 s
        // does not (pu 999: diffs are missing before it); a recorded hole from 3 to 4 s. The daemon's book at 15 s (u 103)
        // bounds the walks before it and must not cut the diff with that u.
        await Db.ExecuteAsync($"""
            INSERT INTO marketdata.book_snapshots (ts_exchange, ts_ingest, symbol_id, last_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys, source)
            VALUES ('{T(0)}', '{T(0)}', {btc}, 100, ARRAY[100, 99]::float8[], ARRAY[1, 2]::float8[], ARRAY[101, 102]::float8[], ARRAY[1, 3]::float8[], 'rest'),
                   ('{T(15)}', '{T(15)}', {btc}, 103, ARRAY[99.5, 99]::float8[], ARRAY[4, 2]::float8[], ARRAY[101, 102]::float8[], ARRAY[5, 3]::float8[], 'daemon');
            INSERT INTO marketdata.depth_events (ts_exchange, ts_transaction, ts_ingest, symbol_id, first_update_id, final_update_id, prev_final_update_id, bid_prices, bid_qtys, ask_prices, ask_qtys)
            VALUES ('{T(1)}', '{T(1)}', '{T(1)}', {btc}, 101, 101, 100, ARRAY[100]::float8[], ARRAY[0]::float8[], ARRAY[101]::float8[], ARRAY[5]::float8[]),
                   ('{T(2)}', '{T(2)}', '{T(2)}', {btc}, 102, 103, 101, ARRAY[99.5]::float8[], ARRAY[4]::float8[], ARRAY[]::float8[], ARRAY[]::float8[]),
                   ('{T(5)}', '{T(5)}', '{T(5)}', {btc}, 1000, 1001, 999, ARRAY[98]::float8[], ARRAY[1]::float8[], ARRAY[]::float8[], ARRAY[]::float8[]);
            INSERT INTO marketdata.feed_gaps (symbol_id, stream, gap_start, gap_end, reason) VALUES ({btc}, 'btcusdt@depth@100ms', '{T(3)}', '{T(4)}', 'disconnected');
            """);
        await StartAsync();

        var (status, book) = await GetJsonAsync($"/book/btcusdt?at={Q(1.5)}&levels=5");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), book.ToString());
        Assert.That((book.GetProperty("status").GetString(), book.GetProperty("snapshot_source").GetString(), book.GetProperty("diffs_applied").GetInt32(), book.GetProperty("last_update_id").GetInt64()),
            Is.EqualTo(("ok", "rest", 1, 101L)));
        Assert.That(Compact(book.GetProperty("bids")), Is.EqualTo("[[99,2]]"), "100 removed by the diff at 1 s");
        Assert.That(Compact(book.GetProperty("asks")), Is.EqualTo("[[101,5],[102,3]]"));

        (status, book) = await GetJsonAsync($"/book/BTCUSDT?at={Q(2.5)}&levels=1");
        Assert.That((status, Compact(book.GetProperty("bids")), Compact(book.GetProperty("asks"))), Is.EqualTo((HttpStatusCode.OK, "[[99.5,4]]", "[[101,5]]")), "top level only");
        Assert.That(await Db.ScalarAsync<string>($"SELECT concat_ws('/', status, best_bid, best_ask, mid, spread) FROM marketdata.book_top_at('BTCUSDT', '{T(2.5)}')"),
            Is.EqualTo("ok/99.5/101/100.25/1.5"));

        foreach (var (at, expected) in new[] { (-1.0, "no_snapshot"), (3.5, "gap"), (5.5, "gap") })
        {
            (status, book) = await GetJsonAsync($"/book/BTCUSDT?at={Q(at)}");
            Assert.That(status, Is.EqualTo(HttpStatusCode.UnprocessableEntity), $"at {at}: {book}");
            Assert.That((book.GetProperty("status").GetString(), book.GetProperty("bids").ValueKind), Is.EqualTo((expected, JsonValueKind.Null)), $"at {at}");
            Assert.That(book.GetProperty("detail").GetString(), Is.Not.Empty);
        }

        Assert.That((await GetJsonAsync($"/book/BTCUSDT?at={Q(1)}&levels=0")).Status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await GetJsonAsync("/book/BTCUSDT")).Status, Is.EqualTo(HttpStatusCode.BadRequest), "the instant is required");
        Assert.That((await GetJsonAsync($"/book/NOPEUSDT?at={Q(1)}")).Status, Is.EqualTo(HttpStatusCode.NotFound));
    }

    private static string Compact(JsonElement e) => JsonSerializer.Serialize(e);

    [Test]
    public async Task Symbols_lists_first_and_last_event_per_table_and_stats_summarises_the_last_hour()
    {
        await Migrate();
        var btc = await RegisterAsync("BTCUSDT");
        var eth = await RegisterAsync("ETHUSDT");
        await new SymbolStore(Db.DataSource).DeactivateAsync([eth], CancellationToken.None);
        var from = DateTimeOffset.UtcNow.AddMinutes(-20);
        var rows = await SeedBooksAsync(btc, 12, from);
        await StartAsync();

        var (status, body) = await GetJsonAsync("/symbols");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var symbols = body.GetProperty("symbols").EnumerateArray().ToDictionary(s => s.GetProperty("symbol").GetString()!);
        Assert.That(symbols.Keys, Is.EquivalentTo(new[] { "BTCUSDT", "ETHUSDT" }));
        Assert.That((symbols["BTCUSDT"].GetProperty("id").GetInt32(), symbols["BTCUSDT"].GetProperty("active").GetBoolean()), Is.EqualTo((btc, true)));
        Assert.That(symbols["ETHUSDT"].GetProperty("active").GetBoolean(), Is.False);
        var book = symbols["BTCUSDT"].GetProperty("tables").GetProperty("book_ticker");
        Assert.That(DateTimeOffset.Parse(book.GetProperty("first").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(), Is.EqualTo(rows[0].EventTimeMs));
        Assert.That(DateTimeOffset.Parse(book.GetProperty("last").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(), Is.EqualTo(rows[^1].EventTimeMs));
        Assert.That(symbols["BTCUSDT"].GetProperty("tables").GetProperty("trades").GetProperty("first").ValueKind, Is.EqualTo(JsonValueKind.Null));

        var (s2, stats) = await GetJsonAsync("/stats");
        Assert.That(s2, Is.EqualTo(HttpStatusCode.OK));
        var btcStats = stats.GetProperty("symbols").EnumerateArray().Single(s => s.GetProperty("symbol").GetString() == "BTCUSDT");
        Assert.That(btcStats.GetProperty("book_ticker_count_1h").GetInt64(), Is.EqualTo(12));
        Assert.That(stats.GetProperty("gaps").GetArrayLength(), Is.Zero);
    }
}

/// <summary>What does not depend on the tier (input checks, the token rule, the timeout and the concurrency limit): plain PostgreSQL.</summary>
public sealed class ReadApiGuardTests() : ReadApiTest(StorageTiers.Postgres)
{
    [TestCase("/data/NOPEUSDT", HttpStatusCode.NotFound, "symbol")]
    [TestCase("/data/BTC-USDT", HttpStatusCode.BadRequest, "symbol")]
    [TestCase("/data/BTCUSDT?type=klines", HttpStatusCode.BadRequest, "type")]
    [TestCase("/data/BTCUSDT?limit=0", HttpStatusCode.BadRequest, "limit")]
    [TestCase("/data/BTCUSDT?limit=10001", HttpStatusCode.BadRequest, "limit")]
    [TestCase("/data/BTCUSDT?limit=ten", HttpStatusCode.BadRequest, "limit")]
    [TestCase("/data/BTCUSDT?from=yesterday", HttpStatusCode.BadRequest, "from")]
    [TestCase("/data/BTCUSDT?start_time=-5", HttpStatusCode.BadRequest, "start_time")]
    [TestCase("/data/BTCUSDT?from=2026-12-01T00:00:00Z&start_time=1764547200", HttpStatusCode.BadRequest, "from")]
    [TestCase("/data/BTCUSDT?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", HttpStatusCode.BadRequest, "to")]
    [TestCase("/data/BTCUSDT?cursor=not-a-cursor", HttpStatusCode.BadRequest, "cursor")]
    [TestCase("/data/BTCUSDT?format=xml", HttpStatusCode.BadRequest, "format")]
    public async Task Bad_input_is_a_4xx_naming_the_parameter(string path, HttpStatusCode expected, string parameter)
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        await StartAsync();
        var (status, body) = await GetJsonAsync(path);
        Assert.That(status, Is.EqualTo(expected), body.ToString());
        Assert.That(body.GetProperty("parameter").GetString(), Is.EqualTo(parameter));
        Assert.That(body.GetProperty("error").GetString(), Is.Not.Empty);
    }

    [Test]
    public async Task A_database_that_refuses_the_query_is_a_500_with_its_sqlstate_not_an_outage()
    {
        // Never migrated: the tables do not exist. The server answered, so this is not a 503.
        await StartAsync();
        var (status, body) = await GetJsonAsync("/stats");
        Assert.That(status, Is.EqualTo(HttpStatusCode.InternalServerError), body.ToString());
        Assert.That(body.GetProperty("error").GetString(), Does.Contain("42P01"));
    }

    [Test]
    public async Task With_a_token_every_data_endpoint_needs_it_and_a_wrong_one_is_refused()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        await StartAsync(ReadApiAccess.WithToken("s3cret-token"));
        foreach (var path in new[] { "/symbols", "/data/BTCUSDT", "/stats" })
        {
            using (var none = await Http.GetAsync(new Uri(path, UriKind.Relative)))
            {
                Assert.That(none.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), path);
                Assert.That(none.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer"));
            }

            foreach (var (token, status) in new[] { ("s3cret-tokeN", HttpStatusCode.Unauthorized), ("s3cret-token-", HttpStatusCode.Unauthorized), ("s3cret-token", HttpStatusCode.OK) })
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, path);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await Http.SendAsync(request);
                Assert.That(response.StatusCode, Is.EqualTo(status), $"{path} with {token}");
            }
        }
    }

    [Test]
    public async Task A_query_held_past_the_statement_timeout_is_a_503_and_reads_beyond_the_limit_are_a_429()
    {
        await Migrate();
        await RegisterAsync("BTCUSDT");
        await StartAsync(maxConcurrent: 1, timeoutMs: 1_500);

        // Another session holds book_ticker exclusively: the API's read waits on the lock until its timeout.
        await using var blocker = await Db.DataSource.OpenConnectionAsync();
        await using var tx = await blocker.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE marketdata.book_ticker IN ACCESS EXCLUSIVE MODE", blocker, tx))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        var held = GetJsonAsync("/data/BTCUSDT");
        await Harness.WaitUntilAsync(async () => await Db.ScalarAsync<long>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderbook-ingestor read API' AND wait_event_type = 'Lock'") > 0, TimeSpan.FromSeconds(10), () => "the read API waiting on the lock");
        var (busy, busyBody) = await GetJsonAsync("/stats");
        Assert.That(busy, Is.EqualTo(HttpStatusCode.TooManyRequests), busyBody.ToString());

        var (status, body) = await held;
        Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable), body.ToString());
        Assert.That(body.GetProperty("error").GetString(), Does.Contain("1500 ms"));
        await tx.RollbackAsync();

        var (after, _) = await GetJsonAsync("/data/BTCUSDT");
        Assert.That(after, Is.EqualTo(HttpStatusCode.OK), "the slot is free again");
    }

    [Test]
    public void The_read_API_on_a_public_address_refuses_to_start_without_a_token_and_loopback_needs_none()
    {
        var options = new IngestorOptions { Http = "0.0.0.0:9470", Database = Db.ConnectionString };
        var error = Assert.Throws<ConfigurationException>(() => ReadApiAccess.Resolve(options, _ => null));
        Assert.That(error!.Message, Does.Contain(ReadApiAccess.TokenVariable));
        Assert.Throws<ConfigurationException>(() => IngestorHost.Build(options, NullLoggerProvider.Instance, environment: _ => null));

        Assert.That(ReadApiAccess.Resolve(options, v => v == ReadApiAccess.TokenVariable ? "t" : null).RequiresToken, Is.True);
        var credentials = Directory.CreateTempSubdirectory();
        try
        {
            File.WriteAllText(Path.Combine(credentials.FullName, ReadApiAccess.CredentialName), "from-systemd\n");
            var access = ReadApiAccess.Resolve(options, v => v == "CREDENTIALS_DIRECTORY" ? credentials.FullName : null);
            Assert.That(access.RequiresToken, Is.True, "the systemd credential");
        }
        finally
        {
            credentials.Delete(recursive: true);
        }

        Assert.That(ReadApiAccess.Resolve(new IngestorOptions { Http = "127.0.0.1:9470" }, _ => null), Is.SameAs(ReadApiAccess.Open));
        Assert.That(ReadApiAccess.Resolve(new IngestorOptions { Http = "[::1]:9470" }, _ => null), Is.SameAs(ReadApiAccess.Open));
        Assert.That(ReadApiAccess.Resolve(new IngestorOptions { Http = "0.0.0.0:9470", ReadApi = false }, _ => null).Enabled, Is.False, "/metrics alone needs no token");
    }
}
