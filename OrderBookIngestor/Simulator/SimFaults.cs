namespace OrderBookIngestor.Simulator;

/// <summary>Faults armed by tests: REST errors with Retry-After, and events generated but sent to nobody.</summary>
internal sealed class SimFaults
{
    private readonly Queue<(int Status, int RetryAfterSeconds)> _rest = new();
    private readonly Dictionary<string, int> _withhold = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private int _withholdArmed;

    public void FailRestNext(int status, int count, int retryAfterSeconds)
    {
        lock (_gate)
        {
            for (var i = 0; i < count; i++)
            {
                _rest.Enqueue((status, retryAfterSeconds));
            }
        }
    }

    public (int Status, int RetryAfterSeconds)? TakeRestFault()
    {
        lock (_gate)
        {
            return _rest.Count > 0 ? _rest.Dequeue() : null;
        }
    }

    /// <param name="canonicalStream">The name events are generated under (see SimulatedMarket.Canonical).</param>
    public void WithholdNext(string canonicalStream, int count)
    {
        lock (_gate)
        {
            _withhold[canonicalStream] = _withhold.GetValueOrDefault(canonicalStream) + count;
            Volatile.Write(ref _withholdArmed, 1);
        }
    }

    /// <summary>True when this event of <paramref name="canonicalStream"/> is to be withheld (and counts it off).</summary>
    public bool TakeWithheld(string canonicalStream)
    {
        // The generator asks for every event; no lock until a test has armed the fault.
        if (Volatile.Read(ref _withholdArmed) == 0)
        {
            return false;
        }

        lock (_gate)
        {
            if (_withhold.TryGetValue(canonicalStream, out var n) && n > 0)
            {
                _withhold[canonicalStream] = n - 1;
                return true;
            }

            return false;
        }
    }
}
