using System.Text.Json;
using System.Text.RegularExpressions;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>Simulator → daemon → PostgreSQL over real sockets: what happens on the wire (garbage, pacing, disconnects,
/// silence) and what the daemon serves over HTTP. Exactly-once storage on every tier is in <see cref="TierEndToEndTests"/>.</summary>
public sealed partial class EndToEndTests : DatabaseTest
{
    [Test]
    public async Task GarbageFramesOnTheWire_AreCountedAndSkippedAndInventNoRows()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 2_000, Seed = 5, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.Simulator.Connections.Count == 2, TimeSpan.FromSeconds(20), () => "connections");
        string[] garbage =
        [
            "not json at all", "{\"stream\":\"btcusdt@bookTicker\",\"data\":{\"e\":\"bookTicker\"", "[1,2,3]",
            "{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"BTCUSDT\",\"b\":\"NaN\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}",
            "{\"e\":\"bookTicker\",\"u\":1,\"E\":2,\"T\":3,\"s\":\"EVILUSDT'); DROP TABLE x; --\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}",
            "{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":1,\"p\":\"-5\",\"q\":\"1\",\"f\":1,\"l\":1,\"T\":1,\"m\":true}",
            "{\"e\":\"forceOrder\",\"E\":1,\"o\":{}}",
            "{\"e\":\"kline\",\"E\":1,\"s\":\"BTCUSDT\",\"k\":{}}",
        ];
        foreach (var g in garbage)
        {
            Assert.That(h.Simulator.Inject(BinanceRoute.Public, Frames.Utf8(g)), Is.EqualTo(1));
        }

        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        await Harness.WaitUntilAsync(() => h.Metrics.TotalRejects == garbage.Length, TimeSpan.FromSeconds(10), () => $"{h.Metrics.TotalRejects} rejects");
        Assert.Multiple(() =>
        {
            Assert.That(h.Metrics.Rejects(RejectReason.MalformedJson), Is.EqualTo(2));
            Assert.That(h.Metrics.Rejects(RejectReason.NotAnObject), Is.EqualTo(1));
            Assert.That(h.Metrics.Rejects(RejectReason.InvalidNumber), Is.EqualTo(1));
            Assert.That(h.Metrics.Rejects(RejectReason.UnknownSymbol), Is.EqualTo(1));
            Assert.That(h.Metrics.Rejects(RejectReason.NegativeValue), Is.EqualTo(1));
            Assert.That(h.Metrics.Rejects(RejectReason.UnknownEvent), Is.EqualTo(1));
            Assert.That(h.Metrics.Rejects(RejectReason.MissingField), Is.EqualTo(1), "a liquidation without its order");
            Assert.That(h.RowsCommitted, Is.EqualTo(h.Simulator.Ledger.Delivered), "no row invented, none lost");
            Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero, "bad input does not cost the connection");
        });
    }

    [Test]
    public async Task ManySubscribeMessages_ArePacedUnderTheExchangeLimit()
    {
        // 30 symbols, one stream per SUBSCRIBE: 30 control messages per connection. The simulator, like
        // Binance, drops a connection that sends more than 10 messages in a second.
        var sim = new SimulatorOptions { Symbols = 30, Rate = 3_000, Events = 3_000, Seed = 9, WaitForStreams = 60 };
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.StreamsPerSubscribe = 1;
            o.SubscribeMessagesPerSecond = 8;
        });
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero);
        Assert.That(h.Simulator.Ledger.Snapshot().Keys, Has.Count.EqualTo(60), "every stream was subscribed and delivered");
    }

    [Test]
    public async Task AbruptDisconnect_IsFollowedByAReconnectAndDataKeepsFlowing()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 1_000, Seed = 3, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 200, TimeSpan.FromSeconds(30), () => $"{h.RowsCommitted} rows");
        h.Simulator.DisconnectAll();
        await Harness.WaitUntilAsync(() => h.Metrics.Shards.All(s => s.Reconnects >= 1), TimeSpan.FromSeconds(30), () => "reconnects");
        var after = h.RowsCommitted;
        await Harness.WaitUntilAsync(() => h.RowsCommitted > after + 200, TimeSpan.FromSeconds(30), () => $"{h.RowsCommitted} rows after reconnect");
        Assert.That(h.Metrics.Shards.All(s => s.State == Observability.ConnectionState.Streaming), Is.True);
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) - count(DISTINCT (symbol_id, update_id)) FROM marketdata.book_ticker"), Is.Zero);
    }

    [Test]
    public async Task ABusyConnection_LetsTheKernelGatherMessages_AndTheLastOnesStillLandWhenTheMarketStops()
    {
        // ~2,000 msg/s per connection: the reader asks the kernel to gather ~25 messages per wake-up (SO_RCVLOWAT). When the
        // market stops, the bytes below the mark must still be read: the last frames are the test.
        var sim = new SimulatorOptions { Symbols = 1, Rate = 4_000, Events = 16_000, Seed = 31, WaitForStreams = 2 };
        await using var h = await Harness.StartAsync(Db, sim);
        await Harness.WaitUntilAsync(() => h.Metrics.Shards.Count == 2 && h.Metrics.Shards.All(s => s.ReceiveLowWater > 1), TimeSpan.FromSeconds(20),
            () => "low-water marks " + string.Join(",", h.Metrics.Shards.Select(s => s.ReceiveLowWater)));
        Assert.That(h.Metrics.Shards.Select(s => s.ReceiveLowWater), Is.All.InRange(1_000, 16_384), "the kernel holds about 25 messages' bytes");

        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        Assert.That(h.RowsCommitted, Is.EqualTo(16_000));
        await Harness.WaitUntilAsync(() => h.Metrics.Shards.All(s => s.ReceiveLowWater == 1), TimeSpan.FromSeconds(10),
            () => "marks left up after the market stopped: " + string.Join(",", h.Metrics.Shards.Select(s => s.ReceiveLowWater)));
    }

    [Test]
    public async Task SilentConnection_IsReplacedByTheNoDataWatchdog()
    {
        // The market never starts (it waits for more streams than exist): subscriptions are acknowledged,
        // then nothing arrives, like a half-open connection. The daemon's clock is driven by hand.
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var sim = new SimulatorOptions { Symbols = 1, Rate = 1_000, Seed = 1, WaitForStreams = 1_000 };
        await using var h = await Harness.StartAsync(Db, sim, o => o.NoDataTimeoutSeconds = 30, time);
        await Harness.WaitUntilAsync(() => h.Metrics.Shards.Count == 2 && h.Metrics.Shards.All(s => s.State == Observability.ConnectionState.Streaming),
            TimeSpan.FromSeconds(20), () => "subscribed");
        time.Advance(TimeSpan.FromSeconds(29));
        // Timers fire inside Advance: both watchdogs are still armed, due in exactly one second, so nothing was cut.
        Assert.That(time.PendingDue.Count(d => d == time.GetUtcNow().AddSeconds(1)), Is.GreaterThanOrEqualTo(2), "both watchdogs armed for the 30th second");
        Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero, "not before the timeout");

        await Harness.WaitUntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return h.Metrics.Shards.All(s => s.Reconnects >= 1);
        }, TimeSpan.FromSeconds(20), () => "watchdog never fired");
        await Harness.WaitUntilAsync(() =>
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            return h.Simulator.Connections.Count == 2 && h.Metrics.Shards.All(s => s.State == Observability.ConnectionState.Streaming);
        }, TimeSpan.FromSeconds(20), () => "did not reconnect and resubscribe");
    }

    [Test]
    public async Task HealthAndMetrics_AreServedOverHttp()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Events = 1_000, Seed = 4, WaitForStreams = 4 };
        await using var h = await Harness.StartAsync(Db, sim);
        await h.WaitForAllDeliveredAsync(TimeSpan.FromSeconds(60));
        using var http = new HttpClient { BaseAddress = new Uri("http://" + h.Options.Http) };

        using var health = await http.GetAsync("/health");
        Assert.That((int)health.StatusCode, Is.EqualTo(200));
        using var doc = JsonDocument.Parse(await health.Content.ReadAsStringAsync());
        Assert.That(doc.RootElement.GetProperty("status").GetString(), Is.EqualTo("healthy"));
        Assert.That(doc.RootElement.GetProperty("shards").GetArrayLength(), Is.EqualTo(2));
        Assert.That(doc.RootElement.GetProperty("database").GetProperty("book_ticker").GetProperty("rowsCommitted").GetInt64(), Is.EqualTo(500));
        Assert.That(await health.Content.ReadAsStringAsync(), Does.Not.Contain("Password"));

        var text = await http.GetStringAsync("/metrics");
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.That(ExpositionLine().IsMatch(line), Is.True, $"not valid exposition format: {line}");
        }

        Assert.That(text, Does.Contain("orderbook_rows_written_total{table=\"book_ticker\"} 500\n"));
        Assert.That(text, Does.Contain("orderbook_rows_written_total{table=\"trades\"} 500\n"));
        Assert.That(text, Does.Contain("orderbook_exchange_to_commit_seconds_count{table=\"trades\"} 500\n"));
        Assert.That(text, Does.Contain("orderbook_stream_messages_total{route=\"public\",stream=\"btcusdt@bookTicker\"} 250\n"));
        // Each buffer's own capacity: the snapshot buffer holds 1,000 rows, not BufferCapacity.
        Assert.That(text, Does.Contain("orderbook_buffer_capacity{table=\"book_ticker\"} 200000\n"));
        Assert.That(text, Does.Contain("orderbook_buffer_capacity{table=\"book_snapshots\"} 1000\n"));
        Assert.That(doc.RootElement.GetProperty("database").GetProperty("reachable").GetBoolean(), Is.True);
    }

    [GeneratedRegex("""^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"\n]*"(,[a-z_]+="[^"\n]*")*\})? (-?[0-9.eE+-]+|\+Inf|NaN))$""")]
    private static partial Regex ExpositionLine();
}
