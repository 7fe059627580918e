using OrderBookIngestor.Exchange;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// Who receives which stream. Connections and their subscriptions change rarely (connect, SUBSCRIBE, close);
/// events are delivered hundreds of thousands of times a second. So every change rebuilds an immutable
/// snapshot under a lock, and the generator reads the current snapshot without one: per canonical stream,
/// the connections that receive it, under which name, and the combined-stream prefix for that name.
/// </summary>
internal sealed class SimSubscribers
{
    private readonly SimulatedMarket _market;
    private readonly List<SimConnection> _connections = [];
    private readonly Lock _gate = new();
    private volatile Snapshot _current = Snapshot.Empty;

    public SimSubscribers(SimulatedMarket market) => _market = market;

    /// <summary>One delivery target: a connection and the name it subscribed the stream under.</summary>
    /// <param name="Prefix">{"stream":"name","data": for combined-stream connections; null for raw ones.</param>
    public sealed record Target(SimConnection Connection, string Name, byte[]? Prefix);

    /// <param name="ByStream">Canonical stream → its targets, ordered by name so equal frames are adjacent.</param>
    /// <param name="ActiveStreams">Canonical streams with at least one target on the right route, in ordinal order.</param>
    /// <param name="DistinctSubscriptions">Distinct names subscribed anywhere (wrong routes included).</param>
    /// <param name="PerSecondStreams">Active streams on the exchange's one-second clock (markPrice, forceOrder), not in
    /// <paramref name="ActiveStreams"/>.</param>
    public sealed record Snapshot(
        IReadOnlyList<SimConnection> Connections,
        Dictionary<string, Target[]> ByStream,
        string[] ActiveStreams,
        int DistinctSubscriptions,
        string[] PerSecondStreams)
    {
        public static readonly Snapshot Empty = new([], new Dictionary<string, Target[]>(StringComparer.Ordinal), [], 0, []);
    }

    public Snapshot Current => _current;

    public void Add(SimConnection c) => Change(() => _connections.Add(c));

    public void Remove(SimConnection c) => Change(() => _connections.Remove(c));

    public void Subscribe(SimConnection c, IEnumerable<string> streams) => Change(() =>
    {
        foreach (var s in streams)
        {
            c.Subscribe(s);
        }
    });

    public void Unsubscribe(SimConnection c, IEnumerable<string> streams) => Change(() =>
    {
        foreach (var s in streams)
        {
            c.Unsubscribe(s);
        }
    });

    private void Change(Action change)
    {
        lock (_gate)
        {
            change();
            _current = Build();
        }
    }

    private bool PerSecond(string stream) => _market.TryGetChannel(stream, out var c) && SimulatedMarket.IsPerSecond(c);

    private Snapshot Build()
    {
        var byStream = new Dictionary<string, List<Target>>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var prefixes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var c in _connections)
        {
            // One target per connection and canonical stream: a client subscribed to two depth speeds of a
            // symbol gets each diff once, under depth if subscribed, else depth@100ms, else depth@500ms.
            var chosen = new Dictionary<string, (string Name, int Rank)>(StringComparer.Ordinal);
            foreach (var name in c.Subscriptions())
            {
                names.Add(name);
                foreach (var stream in _market.Expand(name))
                {
                    // A stream subscribed on the wrong route is acknowledged and then silent, as on the real exchange.
                    if (!_market.TryGetChannel(stream, out var channel) || channel.Route() != c.Route)
                    {
                        continue;
                    }

                    var canonical = _market.Canonical(stream);
                    // A symbol's own stream wins over the all-market one on the same connection (one copy each).
                    var rank = channel switch { MarketChannel.Depth100ms => 1, MarketChannel.Depth500ms => 2, _ => 0 } + (stream == name ? 0 : 3);
                    if (!chosen.TryGetValue(canonical, out var current) || rank < current.Rank)
                    {
                        chosen[canonical] = (name, rank);
                    }
                }
            }

            foreach (var (canonical, (name, _)) in chosen)
            {
                byte[]? prefix = null;
                if (c.Combined && !prefixes.TryGetValue(name, out prefix))
                {
                    prefix = System.Text.Encoding.ASCII.GetBytes($"{{\"stream\":\"{name}\",\"data\":");
                    prefixes[name] = prefix;
                }

                if (!byStream.TryGetValue(canonical, out var targets))
                {
                    byStream[canonical] = targets = [];
                }

                targets.Add(new Target(c, name, prefix));
            }
        }

        return new Snapshot(
            [.. _connections],
            byStream.ToDictionary(kv => kv.Key, kv => kv.Value.OrderBy(t => t.Name, StringComparer.Ordinal).ThenBy(t => t.Prefix is null).ToArray(), StringComparer.Ordinal),
            [.. byStream.Keys.Where(k => !PerSecond(k)).Order(StringComparer.Ordinal)],
            names.Count,
            [.. byStream.Keys.Where(PerSecond).Order(StringComparer.Ordinal)]);
    }
}
