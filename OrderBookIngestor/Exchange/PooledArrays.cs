using System.Buffers;

namespace OrderBookIngestor.Exchange;

internal static class PooledArrays
{
    /// <summary>Replaces a pooled array with a larger pooled one, keeping its first <paramref name="used"/> items.</summary>
    public static void Grow<T>(ref T[] array, int minimumLength, int used)
    {
        var bigger = ArrayPool<T>.Shared.Rent(minimumLength);
        array.AsSpan(0, used).CopyTo(bigger);
        ArrayPool<T>.Shared.Return(array);
        array = bigger;
    }
}
