using System.Text;

namespace OrderBookIngestor.Pipeline;

/// <summary>
/// Maps exchange symbols to the database's symbol ids. Built once at start and then read-only, so readers on
/// any thread look symbols up straight from the frame's UTF-8 bytes without allocating a string.
/// </summary>
public sealed class SymbolTable
{
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly Dictionary<int, string> _names;

    public SymbolTable(IReadOnlyDictionary<string, int> ids)
    {
        _ids = new Dictionary<string, int>(ids, StringComparer.Ordinal);
        _lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        _names = _ids.ToDictionary(kv => kv.Value, kv => kv.Key);
    }

    public int Count => _ids.Count;

    public IReadOnlyCollection<string> Symbols => _ids.Keys;

    public bool TryGetId(string symbol, out int id) => _ids.TryGetValue(symbol, out id);

    public bool TryGetId(ReadOnlySpan<byte> utf8Symbol, out int id)
    {
        id = 0;
        if (utf8Symbol.IsEmpty || utf8Symbol.Length > Exchange.SymbolNames.MaxLength)
        {
            return false;
        }

        Span<char> chars = stackalloc char[Exchange.SymbolNames.MaxLength];
        if (Encoding.ASCII.GetChars(utf8Symbol, chars) is var written && written != utf8Symbol.Length)
        {
            return false;
        }

        return _lookup.TryGetValue(chars[..written], out id);
    }

    public string NameOf(int id) => _names.TryGetValue(id, out var name) ? name : $"#{id}";
}
