using System.Text.Json;

namespace OrderBookIngestor.Simulator;

/// <summary>
/// What the simulator actually delivered (sent on a socket), per stream: counts and sums that the tests
/// compare with the same aggregates computed in SQL, plus, when recording, the events themselves.
/// </summary>
public sealed class SimLedger
{
    private readonly Dictionary<string, StreamTotals> _streams = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly bool _record;
    private long _generated;
    private long _droppedSlowClients;

    public SimLedger(bool record) => _record = record;

    public long Generated => Interlocked.Read(ref _generated);

    public long Delivered
    {
        get
        {
            lock (_gate)
            {
                return _streams.Values.Sum(s => s.Count);
            }
        }
    }

    private readonly Dictionary<string, long> _generatedPerStream = new(StringComparer.Ordinal);

    /// <summary>Guards _generatedPerStream only: the generator counts every event, and would otherwise wait on the
    /// send loops' delivery bookkeeping.</summary>
    private readonly Lock _generatedGate = new();

    private long _perSecond;

    /// <summary>Generated events of the streams on the one-second clock (markPrice, forceOrder), which --events does not
    /// count and <see cref="Generated"/> leaves out.</summary>
    public long GeneratedPerSecond => Interlocked.Read(ref _perSecond);

    /// <summary>An event happened on the market, whoever receives it.</summary>
    public void OnGenerated(SimEvent e)
    {
        // Generated counts market events (what --events limits); the one-second clock's are counted apart.
        Interlocked.Increment(ref SimulatedMarket.IsPerSecond(e.Channel) ? ref _perSecond : ref _generated);

        lock (_generatedGate)
        {
            _generatedPerStream[e.Stream] = _generatedPerStream.GetValueOrDefault(e.Stream) + 1;
        }
    }

    /// <summary>Distinct events generated per stream: with overlapping connections, deliveries can count one event twice; this does not.</summary>
    public IReadOnlyDictionary<string, long> GeneratedPerStream()
    {
        lock (_generatedGate)
        {
            return new Dictionary<string, long>(_generatedPerStream, StringComparer.Ordinal);
        }
    }

    public void OnDroppedForSlowClient(long frames) => Interlocked.Add(ref _droppedSlowClients, frames);

    private readonly Dictionary<string, List<SimEvent>> _withheld = new(StringComparer.Ordinal);

    /// <summary>Generated but deliberately not sent (fault injection): what backfill must recover or the gap ledger cover.</summary>
    public void OnWithheld(SimEvent e)
    {
        lock (_gate)
        {
            if (!_withheld.TryGetValue(e.Stream, out var list))
            {
                _withheld[e.Stream] = list = [];
            }

            list.Add(e);
        }
    }

    public IReadOnlyDictionary<string, List<SimEvent>> Withheld()
    {
        lock (_gate)
        {
            return _withheld.ToDictionary(kv => kv.Key, kv => kv.Value.ToList(), StringComparer.Ordinal);
        }
    }

    public bool IsWithheld(SimEvent e)
    {
        lock (_gate)
        {
            return _withheld.TryGetValue(e.Stream, out var list) && list.Contains(e);
        }
    }

    public void OnDelivered(SimEvent e) => OnDelivered([e]);

    /// <summary>A sent batch, under one lock (a send loop delivers hundreds at a time).</summary>
    public void OnDelivered(IReadOnlyList<SimEvent> sent)
    {
        lock (_gate)
        {
            foreach (var e in sent)
            {
                if (!_streams.TryGetValue(e.Stream, out var t))
                {
                    _streams[e.Stream] = t = new StreamTotals(e.Symbol, e.Channel.ToString());
                }

                t.Add(e);
                if (_record)
                {
                    t.Events.Add(e);
                }
            }
        }
    }

    public IReadOnlyDictionary<string, StreamTotals> Snapshot()
    {
        lock (_gate)
        {
            return _streams.ToDictionary(kv => kv.Key, kv => kv.Value.Clone(), StringComparer.Ordinal);
        }
    }

    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("generated", Generated);
        w.WriteNumber("generatedPerSecond", GeneratedPerSecond);
        w.WriteNumber("delivered", Delivered);
        w.WriteNumber("droppedSlowClients", Interlocked.Read(ref _droppedSlowClients));
        w.WriteNumber("withheld", Withheld().Values.Sum(l => l.Count));
        w.WriteStartObject("streams");
        foreach (var (name, t) in Snapshot())
        {
            w.WriteStartObject(name);
            w.WriteString("symbol", t.Symbol);
            w.WriteString("channel", t.Channel);
            w.WriteNumber("count", t.Count);
            w.WriteNumber("sumId", t.SumId);
            w.WriteNumber("sumEventTimeMs", t.SumEventTimeMs);
            w.WriteNumber("sumTransactionTimeMs", t.SumTransactionTimeMs);
            w.WriteString("sumPrice", t.SumPrice.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("sumQty", t.SumQty.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("sumPrice2", t.SumPrice2.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("sumQty2", t.SumQty2.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteNumber("sumFirstId", t.SumFirstId);
            w.WriteNumber("sumLastId", t.SumLastId);
            w.WriteNumber("makerCount", t.MakerCount);
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    public sealed class StreamTotals(string symbol, string channel)
    {
        public string Symbol { get; } = symbol;
        public string Channel { get; } = channel;
        public long Count { get; private set; }
        public long SumId { get; private set; }
        public long SumEventTimeMs { get; private set; }
        public long SumTransactionTimeMs { get; private set; }
        public decimal SumPrice { get; private set; }
        public decimal SumQty { get; private set; }
        public decimal SumPrice2 { get; private set; }
        public decimal SumQty2 { get; private set; }
        public long SumFirstId { get; private set; }
        public long SumLastId { get; private set; }
        public long MakerCount { get; private set; }
        public List<SimEvent> Events { get; private init; } = [];

        public void Add(SimEvent e)
        {
            Count++;
            SumId += e.Id;
            SumEventTimeMs += e.EventTimeMs;
            SumTransactionTimeMs += e.TransactionTimeMs;
            SumPrice += e.Price;
            SumQty += e.Qty;
            SumPrice2 += e.Price2;
            SumQty2 += e.Qty2;
            SumFirstId += e.FirstId;
            SumLastId += e.LastId;
            MakerCount += e.Maker ? 1 : 0;
        }

        public StreamTotals Clone() => new(Symbol, Channel)
        {
            Count = Count, SumId = SumId, SumEventTimeMs = SumEventTimeMs, SumTransactionTimeMs = SumTransactionTimeMs,
            SumPrice = SumPrice, SumQty = SumQty, SumPrice2 = SumPrice2, SumQty2 = SumQty2, SumFirstId = SumFirstId,
            SumLastId = SumLastId, MakerCount = MakerCount, Events = [.. Events],
        };
    }
}
