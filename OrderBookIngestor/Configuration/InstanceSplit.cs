using System.Globalization;
using System.Text;

namespace OrderBookIngestor.Configuration;

/// <summary>
/// --instance K/N: which share of the symbol set this daemon records. A symbol belongs to instance
/// FNV-1a-32(UTF-8 name) mod N, the same on every machine and every run (unlike string.GetHashCode), so N
/// daemons with K = 0..N-1 cover every symbol exactly once, and a listing lands on one of them by itself.
/// </summary>
public readonly record struct InstanceSplit(int Index, int Count)
{
    public static readonly InstanceSplit All = new(0, 1);

    public bool IsAll => Count == 1;

    public static bool TryParse(string? text, out InstanceSplit split)
    {
        split = All;
        var slash = text?.IndexOf('/') ?? -1;
        if (slash <= 0
            || !int.TryParse(text.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out var k)
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            || n is < 1 or > 1024 || k >= n)
        {
            return false;
        }

        split = new InstanceSplit(k, n);
        return true;
    }

    public static InstanceSplit Parse(string text)
        => TryParse(text, out var split) ? split : throw new ConfigurationException($"Instance: '{text}' is not K/N.");

    public bool Owns(string symbol) => Count == 1 || InstanceOf(symbol, Count) == Index;

    public static int InstanceOf(string symbol, int count)
    {
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(symbol.ToUpperInvariant()))
        {
            hash = (hash ^ b) * 16777619u;
        }

        return (int)(hash % (uint)count);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");
}
