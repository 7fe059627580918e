using System.Text;

namespace OrderBookIngestor.Exchange;

/// <summary>
/// Maps exchange symbols to the database's symbol ids. Readers look symbols up straight from the frame's
/// UTF-8 bytes without allocating. Symbols added at a reload (SIGHUP, new listings) replace the whole
/// snapshot (copy-on-write), so a lookup never takes a lock.
/// </summary>
public sealed class SymbolTable
{
    private readonly Lock _gate = new();
    private volatile Snapshot _current;

    public SymbolTable(IReadOnlyDictionary<string, int> ids) => _current = new Snapshot(new Dictionary<string, int>(ids, StringComparer.Ordinal));

    public int Count => _current.Ids.Count;

    public IReadOnlyCollection<string> Symbols => _current.Ids.Keys;

    public bool TryGetId(string symbol, out int id) => _current.Ids.TryGetValue(symbol, out id);

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

        return _current.Lookup.TryGetValue(chars[..written], out id);
    }

    public string NameOf(int id) => _current.Names.TryGetValue(id, out var name) ? name : $"#{id}";

    public bool Contains(int id) => _current.Names.ContainsKey(id);

    /// <summary>Adds symbols (a reload); existing entries keep their ids.</summary>
    public void Add(IReadOnlyDictionary<string, int> more)
    {
        lock (_gate)
        {
            var ids = new Dictionary<string, int>(_current.Ids, StringComparer.Ordinal);
            foreach (var (name, id) in more)
            {
                ids[name] = id;
            }

            _current = new Snapshot(ids);
        }
    }

    private sealed class Snapshot
    {
        public Snapshot(Dictionary<string, int> ids)
        {
            Ids = ids;
            Lookup = ids.GetAlternateLookup<ReadOnlySpan<char>>();
            Names = ids.ToDictionary(kv => kv.Value, kv => kv.Key);
        }

        public Dictionary<string, int> Ids { get; }

        public Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; }

        public Dictionary<int, string> Names { get; }
    }
}
