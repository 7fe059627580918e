using System.Net.WebSockets;
using System.Threading.Channels;
using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Simulator;

/// <summary>One client of the fake exchange: its route, its subscriptions and its outbound queue.</summary>
public sealed class SimConnection
{
    private readonly Channel<SimWireFrame> _outbound;
    private readonly HashSet<string> _subscriptions = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public SimConnection(int id, WebSocket socket, BinanceRoute route, bool combined, int maxQueued)
    {
        Id = id;
        Socket = socket;
        Route = route;
        Combined = combined;
        _outbound = Channel.CreateBounded<SimWireFrame>(new BoundedChannelOptions(maxQueued)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public int Id { get; }

    /// <summary>WebSocket allows one send at a time: data frames and control replies take turns.</summary>
    public SemaphoreSlim SendLock { get; } = new(1, 1);

    public WebSocket Socket { get; }

    public BinanceRoute Route { get; }

    /// <summary>Combined-stream connections wrap each event as {"stream":...,"data":...}.</summary>
    public bool Combined { get; }

    public ChannelReader<SimWireFrame> Outbound => _outbound.Reader;

    public int Queued => _outbound.Reader.Count;

    public bool IsSubscribed(string stream)
    {
        lock (_gate)
        {
            return _subscriptions.Contains(stream);
        }
    }

    internal void Subscribe(string stream)
    {
        lock (_gate)
        {
            _subscriptions.Add(stream);
        }
    }

    internal void Unsubscribe(string stream)
    {
        lock (_gate)
        {
            _subscriptions.Remove(stream);
        }
    }

    public string[] Subscriptions()
    {
        lock (_gate)
        {
            return [.. _subscriptions];
        }
    }

    /// <summary>False when the queue is full: the client is too slow and must be dropped.</summary>
    public bool TryEnqueue(SimWireFrame frame) => _outbound.Writer.TryWrite(frame);

    public void CompleteOutbound() => _outbound.Writer.TryComplete();
}
