namespace OrderBookIngestor.Observability;

/// <summary>
/// A fixed set of monotonic counters addressed by a small index, written with interlocked adds on the hot path.
/// The writer's namespace owns what each index means (Exchange numbers reject reasons and duplicate kinds), so
/// Observability stays a leaf that knows no one's types.
/// </summary>
public sealed class CounterSet
{
    private readonly long[] _counts;

    public CounterSet(int size) => _counts = new long[size];

    public int Size => _counts.Length;

    public void Increment(int index) => Interlocked.Increment(ref _counts[index]);

    public long Read(int index) => Interlocked.Read(ref _counts[index]);
}
