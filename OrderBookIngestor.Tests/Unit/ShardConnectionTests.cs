using System.Threading.Channels;
using OrderBookIngestor.Configuration;
using OrderBookIngestor.Exchange;
using OrderBookIngestor.Feeds;
using OrderBookIngestor.Observability;
using OrderBookIngestor.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using Phase = OrderBookIngestor.Feeds.ShardConnection.ConnectionPhase;

namespace OrderBookIngestor.Tests.Unit;

public sealed class ShardConnectionTests
{
    [Test]
    public void AConnection_MovesOnlyForward_AndAnIllegalMoveThrows()
    {
        using var c = new ShardConnection(Reader(), 0);
        Assert.Throws<InvalidOperationException>(() => c.MoveTo(Phase.Streaming), "streaming before subscribing");
        c.MoveTo(Phase.Subscribing);
        Assert.Throws<InvalidOperationException>(() => c.MoveTo(Phase.Subscribing), "the same phase twice");
        c.MoveTo(Phase.Streaming);
        Assert.Throws<InvalidOperationException>(() => c.MoveTo(Phase.Subscribing), "backwards");
        c.MoveTo(Phase.Closed);
        Assert.Throws<InvalidOperationException>(() => c.MoveTo(Phase.Closed), "closed twice");
        Assert.That(c.Phase, Is.EqualTo(Phase.Closed));
    }

    [Test]
    public void AReplacementStillConnecting_DoesNotHideTheConnectionThatStreams()
    {
        // A rotation: the old connection streams while its replacement connects, then the replacement fails.
        Assert.That(ShardReader.DeriveState([Phase.Streaming, Phase.Opening], false, false, ConnectionState.Streaming), Is.EqualTo(ConnectionState.Streaming));
        Assert.That(ShardReader.DeriveState([Phase.Streaming, Phase.Closed], false, false, ConnectionState.Streaming), Is.EqualTo(ConnectionState.Streaming));
        Assert.That(ShardReader.DeriveState([Phase.Subscribing, Phase.Opening], false, false, ConnectionState.Connecting), Is.EqualTo(ConnectionState.Subscribing));
    }

    [Test]
    public void WithNoOpenConnection_TheShardIsBackingOffStoppedOrUnchanged()
    {
        Assert.That(ShardReader.DeriveState([Phase.Closed], false, true, ConnectionState.Streaming), Is.EqualTo(ConnectionState.Backoff));
        Assert.That(ShardReader.DeriveState([], true, false, ConnectionState.Backoff), Is.EqualTo(ConnectionState.Stopped));
        Assert.That(ShardReader.DeriveState([Phase.Closed], false, false, ConnectionState.Streaming), Is.EqualTo(ConnectionState.Streaming));
        Assert.That(ShardReader.DeriveState([], false, false, ConnectionState.Idle), Is.EqualTo(ConnectionState.Idle));
    }

    private static ShardReader Reader()
    {
        var symbols = new SymbolTable(new Dictionary<string, int> { ["BTCUSDT"] = 1 });
        var metrics = new IngestorMetrics(TimeProvider.System);
        var plan = new ShardPlan(0, BinanceRoute.Public, ["btcusdt@bookTicker"]);
        var router = new EventRouter(new EventBuffers(16), new StreamStates(symbols, new Dictionary<int, LastStored>()), new GapLedger(),
            Channel.CreateUnbounded<BackfillRequest>().Writer, metrics, symbols, TimeProvider.System);
        return new ShardReader(plan, new IngestorOptions(), new FrameParser(symbols), router, metrics.AddShard(plan.Name, plan.Route.PathSegment()), metrics,
            TimeProvider.System, NullLogger.Instance, new Random(1));
    }
}
