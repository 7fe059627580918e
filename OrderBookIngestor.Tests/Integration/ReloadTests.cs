using Microsoft.Extensions.DependencyInjection;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Hosting;
using OrderBookIngestor.Simulator;
using OrderBookIngestor.Tests.Support;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>A reload changes what is recorded on the running daemon, by SUBSCRIBE/UNSUBSCRIBE on live connections.</summary>
public sealed class ReloadTests : DatabaseTest
{
    private static IngestorOptions With(IngestorOptions o, string symbols, string channels)
    {
        var copy = System.Text.Json.JsonSerializer.Deserialize(System.Text.Json.JsonSerializer.Serialize(o, ConfigJsonContext.Default.IngestorOptions), ConfigJsonContext.Default.IngestorOptions)!;
        copy.Symbols = OptionsLoader.SplitList(symbols);
        copy.Channels = OptionsLoader.SplitList(channels);
        return copy;
    }

    private static HashSet<string> Subscribed(Harness h) => h.Simulator.Connections.SelectMany(c => c.Subscriptions()).ToHashSet();

    private async Task<long> Rows(string table, string symbol) => await Db.ScalarAsync<long>(
        $"SELECT count(*) FROM marketdata.{table} t JOIN marketdata.symbols s ON s.id = t.symbol_id WHERE s.symbol = '{symbol}'");

    [Test]
    public async Task Reload_AddsAndRemovesStreamsOnLiveConnections()
    {
        var sim = new SimulatorOptions { Symbols = 4, Rate = 2_000, Seed = 41, WaitForStreams = 2 };
        IngestorOptions? next = null;
        await using var h = await Harness.StartAsync(Db, sim, o =>
        {
            o.Symbols = ["BTCUSDT"];
            o.MaxStreamsPerConnection = 2;
        }, reloadSource: () => next!);
        var pipeline = h.Daemon.Services.GetRequiredService<IngestionPipeline>();
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 100, TimeSpan.FromSeconds(20), () => "BTC not recorded");
        Assert.That(Subscribed(h), Is.EquivalentTo(new[] { "btcusdt@bookTicker", "btcusdt@aggTrade" }));

        // Add two symbols: ETH fills the existing connections (2 streams each at most), BNB needs new ones.
        next = With(h.Options, "BTCUSDT,ETHUSDT,BNBUSDT", "bookTicker,aggTrade");
        pipeline.RequestReload();
        await Harness.WaitUntilAsync(async () => Subscribed(h).SetEquals(["btcusdt@bookTicker", "btcusdt@aggTrade", "ethusdt@bookTicker", "ethusdt@aggTrade", "bnbusdt@bookTicker", "bnbusdt@aggTrade"]),
            TimeSpan.FromSeconds(20), () => string.Join(",", Subscribed(h)));
        await Harness.WaitUntilAsync(async () => (await Rows("trades", "BNBUSDT")) > 0 && (await Rows("book_ticker", "ETHUSDT")) > 0, TimeSpan.FromSeconds(20), () => "new symbols not recorded");
        Assert.That(h.Metrics.Shards, Has.Count.EqualTo(4), "one more connection per route, opened only because the others were full");
        Assert.That(h.Metrics.Shards.Sum(s => s.Reconnects), Is.Zero, "nothing was reconnected to change subscriptions");

        // Drop BTC and the aggTrade channel: UNSUBSCRIBE, and BTC is marked inactive.
        next = With(h.Options, "ETHUSDT,BNBUSDT", "bookTicker");
        pipeline.RequestReload();
        await Harness.WaitUntilAsync(() => Subscribed(h).SetEquals(["ethusdt@bookTicker", "bnbusdt@bookTicker"]), TimeSpan.FromSeconds(20), () => string.Join(",", Subscribed(h)));
        // Let what was in flight at the UNSUBSCRIBE land, take the counts, let ETH flow on: the dropped streams stay still.
        var eth = await Rows("book_ticker", "ETHUSDT");
        await Harness.WaitUntilAsync(async () => (await Rows("book_ticker", "ETHUSDT")) > eth + 300, TimeSpan.FromSeconds(20), () => "ETH stopped");
        var trades = await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades");
        var btc = await Rows("book_ticker", "BTCUSDT");
        eth = await Rows("book_ticker", "ETHUSDT");
        await Harness.WaitUntilAsync(async () => (await Rows("book_ticker", "ETHUSDT")) > eth + 300, TimeSpan.FromSeconds(20), () => "ETH stopped");
        Assert.That(await Db.ScalarAsync<long>("SELECT count(*) FROM marketdata.trades"), Is.EqualTo(trades), "no trade after aggTrade was dropped");
        Assert.That(await Rows("book_ticker", "BTCUSDT"), Is.EqualTo(btc), "no BTC row after BTC was dropped");
        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(symbol || '=' || is_active, ',' ORDER BY symbol) FROM marketdata.symbols"),
            Is.EqualTo("BNBUSDT=true,BTCUSDT=false,ETHUSDT=true"));
        Assert.That(h.Metrics.SilentStreams(), Is.Empty, "removed streams are not reported silent");
    }

    [Test]
    public async Task Reload_WithABadConfiguration_IsRefusedAndRecordingGoesOn()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Seed = 42, WaitForStreams = 2 };
        IngestorOptions? next = null;
        await using var h = await Harness.StartAsync(Db, sim, o => o.Symbols = ["BTCUSDT"], reloadSource: () => next!);
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 100, TimeSpan.FromSeconds(20), () => "not recording");
        next = With(h.Options, "BTC-USDT", "bookTicker");
        h.Daemon.Services.GetRequiredService<IngestionPipeline>().RequestReload();
        var before = h.RowsCommitted;
        await Harness.WaitUntilAsync(() => h.RowsCommitted > before + 500, TimeSpan.FromSeconds(20), () => "recording stopped");
        Assert.That(Subscribed(h), Is.EquivalentTo(new[] { "btcusdt@bookTicker", "btcusdt@aggTrade" }), "the running configuration stays");
    }

    [Test]
    public async Task Reload_WithASymbolTheExchangeDoesNotList_IsRefused_AndTheRunningSetStays()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Seed = 43, WaitForStreams = 2 };
        IngestorOptions? next = null;
        await using var h = await Harness.StartAsync(Db, sim, o => o.Symbols = ["BTCUSDT"], reloadSource: () => next!);
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 100, TimeSpan.FromSeconds(20), () => "not recording");
        next = With(h.Options, "BTCUSDT,ETHUSDT,NOPEUSDT", "bookTicker,aggTrade");
        h.Daemon.Services.GetRequiredService<IngestionPipeline>().RequestReload();
        var before = h.RowsCommitted;
        await Harness.WaitUntilAsync(() => h.RowsCommitted > before + 500, TimeSpan.FromSeconds(20), () => "recording stopped");
        Assert.That(Subscribed(h), Is.EquivalentTo(new[] { "btcusdt@bookTicker", "btcusdt@aggTrade" }), "neither NOPEUSDT nor ETHUSDT was added");
        Assert.That(await Db.ScalarAsync<string>("SELECT string_agg(symbol, ',' ORDER BY symbol) FROM marketdata.symbols"), Is.EqualTo("BTCUSDT"), "nothing registered");
    }

    [Test]
    public async Task Reload_ThatCannotFinish_IsGivenUpAfterItsTimeout_AndTheNextOneApplies()
    {
        var sim = new SimulatorOptions { Symbols = 2, Rate = 2_000, Seed = 44, WaitForStreams = 2 };
        IngestorOptions? next = null;
        await using var h = await Harness.StartAsync(Db, sim, o => o.Symbols = ["BTCUSDT"], reloadSource: () => next!);
        var pipeline = h.Daemon.Services.GetRequiredService<IngestionPipeline>();
        pipeline.ReloadTimeout = TimeSpan.FromSeconds(1);
        await Harness.WaitUntilAsync(() => h.RowsCommitted > 100, TimeSpan.FromSeconds(20), () => "not recording");

        // Someone holds marketdata.symbols (a long ALTER by hand, say): the reload cannot register ETHUSDT.
        await using (var blocker = await Db.DataSource.OpenConnectionAsync())
        {
            await using var tx = await blocker.BeginTransactionAsync();
            await using (var lockTable = new Npgsql.NpgsqlCommand("LOCK TABLE marketdata.symbols IN ACCESS EXCLUSIVE MODE", blocker, tx))
            {
                await lockTable.ExecuteNonQueryAsync();
            }

            next = With(h.Options, "BTCUSDT,ETHUSDT", "bookTicker,aggTrade");
            pipeline.RequestReload();
            await Harness.WaitUntilAsync(() => h.Metrics.Reloads.Refused == 1, TimeSpan.FromSeconds(20), () => "the stuck reload was never given up");
            await tx.RollbackAsync();
        }

        Assert.That(h.Metrics.Reloads.Applied, Is.Zero);
        Assert.That(Subscribed(h), Is.EquivalentTo(new[] { "btcusdt@bookTicker", "btcusdt@aggTrade" }), "the given-up reload changed nothing");
        pipeline.RequestReload();
        await Harness.WaitUntilAsync(() => Subscribed(h).SetEquals(["btcusdt@bookTicker", "btcusdt@aggTrade", "ethusdt@bookTicker", "ethusdt@aggTrade"]),
            TimeSpan.FromSeconds(20), () => string.Join(",", Subscribed(h)));
        Assert.That(h.Metrics.Reloads, Is.EqualTo((1L, 1L)));
    }
}
