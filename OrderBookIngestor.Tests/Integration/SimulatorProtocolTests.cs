using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using OrderBookIngestor.Simulator;

namespace OrderBookIngestor.Tests.Integration;

/// <summary>The simulator speaks Binance's documented protocol, over a real socket with a plain client.</summary>
public sealed class SimulatorProtocolTests
{
    private static async Task<ClientWebSocket> ConnectAsync(SimulatorServer sim, string path)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri(sim.WsUrl + path), CancellationToken.None);
        return ws;
    }

    private static Task SendAsync(ClientWebSocket ws, string text)
        => ws.SendAsync(Encoding.ASCII.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    private static async Task<string> ReceiveAsync(ClientWebSocket ws, TimeSpan timeout)
    {
        var buffer = new byte[64 * 1024];
        using var cts = new CancellationTokenSource(timeout);
        var r = await ws.ReceiveAsync(buffer, cts.Token);
        return Encoding.UTF8.GetString(buffer, 0, r.Count);
    }

    [Test]
    public async Task WrongRoute_IsAcknowledgedAndThenSilent_WhileTheRightRouteFlows()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Port = 0, Symbols = 1, Rate = 2_000, Seed = 1, WaitForStreams = 1 }, TimeProvider.System, NullLoggerFactory.Instance);
        await sim.StartAsync(CancellationToken.None);
        using var wrong = await ConnectAsync(sim, "/market/stream");
        await SendAsync(wrong, """{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}""");
        Assert.That(await ReceiveAsync(wrong, TimeSpan.FromSeconds(5)), Is.EqualTo("""{"result":null,"id":1}"""));

        using var right = await ConnectAsync(sim, "/public/stream");
        await SendAsync(right, """{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":7}""");
        Assert.That(await ReceiveAsync(right, TimeSpan.FromSeconds(5)), Is.EqualTo("""{"result":null,"id":7}"""));
        for (var i = 0; i < 50; i++)
        {
            Assert.That(await ReceiveAsync(right, TimeSpan.FromSeconds(5)), Does.StartWith("""{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":"""));
        }

        // 50 frames later the wrong-route connection has had nothing: the next thing it reads is the reply to
        // a request sent now (data would have been queued for it before that reply).
        await SendAsync(wrong, """{"method":"LIST_SUBSCRIPTIONS","id":2}""");
        Assert.That(await ReceiveAsync(wrong, TimeSpan.FromSeconds(5)), Is.EqualTo("""{"result":["btcusdt@bookTicker"],"id":2}"""));
        Assert.That(sim.Ledger.Snapshot()["btcusdt@bookTicker"].Count, Is.GreaterThanOrEqualTo(50));
    }

    [Test]
    public async Task RawStreamAndControlMessages_FollowTheDocumentedShapes()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Port = 0, Symbols = 2, Rate = 1_000, Seed = 1, WaitForStreams = 1 }, TimeProvider.System, NullLoggerFactory.Instance);
        await sim.StartAsync(CancellationToken.None);
        using var raw = await ConnectAsync(sim, "/market/ws/ethusdt@aggTrade");
        Assert.That(await ReceiveAsync(raw, TimeSpan.FromSeconds(5)), Does.StartWith("""{"e":"aggTrade","E":""").And.Contain("\"s\":\"ETHUSDT\""), "raw streams are not wrapped");

        await SendAsync(raw, """{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":2}""");
        await SendAsync(raw, """{"method":"LIST_SUBSCRIPTIONS","id":3}""");
        await SendAsync(raw, """{"method":"SUBSCRIBE","params":["nosuch@aggTrade"],"id":4}""");
        var replies = new List<string>();
        while (replies.Count < 3)
        {
            var frame = await ReceiveAsync(raw, TimeSpan.FromSeconds(5));
            if (frame.Contains("\"id\":", StringComparison.Ordinal) && !frame.Contains("\"e\":", StringComparison.Ordinal))
            {
                replies.Add(frame);
            }
        }

        Assert.That(replies[0], Is.EqualTo("""{"result":null,"id":2}"""));
        Assert.That(replies[1], Does.StartWith("{\"result\":[").And.Contain("\"btcusdt@aggTrade\"").And.Contain("\"ethusdt@aggTrade\"").And.EndWith(",\"id\":3}"));
        Assert.That(replies[2], Does.StartWith("{\"error\":{\"code\":2,").And.EndWith("\"id\":4}"));
    }

    [Test]
    public async Task MoreThanTenIncomingMessagesASecond_CloseTheConnection()
    {
        await using var sim = new SimulatorServer(new SimulatorOptions { Port = 0, Symbols = 1, Rate = 1, Seed = 1, WaitForStreams = 100 }, TimeProvider.System, NullLoggerFactory.Instance);
        await sim.StartAsync(CancellationToken.None);
        using var ws = await ConnectAsync(sim, "/public/stream");
        for (var i = 1; i <= 11; i++)
        {
            await SendAsync(ws, $$"""{"method":"LIST_SUBSCRIPTIONS","id":{{i}}}""");
        }

        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        WebSocketReceiveResult r;
        do
        {
            r = await ws.ReceiveAsync(buffer, cts.Token);
        }
        while (r.MessageType != WebSocketMessageType.Close);
        Assert.That(ws.CloseStatus, Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
    }
}
