using OrderBookIngestor.Configuration;

namespace OrderBookIngestor.Tests.Unit;

public sealed class InstanceSplitTests
{
    private static readonly string[] Universe = Enumerable.Range(0, 300).Select(i => $"SYM{i}USDT").Append("BTCUSDT").Append("ETHUSDT").ToArray();

    [TestCase(2)]
    [TestCase(3)]
    [TestCase(7)]
    public void EverySymbolBelongsToExactlyOneInstance_AndTheSharesAreEven(int n)
    {
        var splits = Enumerable.Range(0, n).Select(k => new InstanceSplit(k, n)).ToList();
        foreach (var symbol in Universe)
        {
            Assert.That(splits.Count(s => s.Owns(symbol)), Is.EqualTo(1), symbol);
        }

        var shares = splits.Select(s => Universe.Count(s.Owns)).ToList();
        Assert.That(shares.Min(), Is.GreaterThan(Universe.Length / n * 0.6), $"shares {string.Join(",", shares)}");
    }

    [Test]
    public void TheAssignmentIsFixed_NotSaltedPerProcess()
    {
        // FNV-1a-32 of the upper-case UTF-8 name, mod N, recomputed here from its definition.
        var hash = 2166136261u;
        foreach (var b in "BTCUSDT"u8)
        {
            hash = (hash ^ b) * 16777619u;
        }

        Assert.That(InstanceSplit.InstanceOf("BTCUSDT", 5), Is.EqualTo((int)(hash % 5)));
        Assert.That(InstanceSplit.InstanceOf("btcusdt", 5), Is.EqualTo(InstanceSplit.InstanceOf("BTCUSDT", 5)), "case does not matter");
        Assert.That(new InstanceSplit(0, 1).Owns("ANYUSDT"), Is.True);
    }

    [TestCase("0/1", true)]
    [TestCase("2/3", true)]
    [TestCase("3/3", false)]
    [TestCase("-1/3", false)]
    [TestCase("1", false)]
    [TestCase("a/b", false)]
    [TestCase("0/0", false)]
    [TestCase("0/2000", false)]
    public void Parse_AcceptsOnlyKOfN(string text, bool valid)
    {
        Assert.That(InstanceSplit.TryParse(text, out _), Is.EqualTo(valid));
        Assert.That(OptionsValidator.Validate(new IngestorOptions { Database = "Host=x", Instance = text }).Any(e => e.StartsWith("Instance:", StringComparison.Ordinal)), Is.EqualTo(!valid));
    }

    [Test]
    public void StorageSettings_AreValidated_WithTheFix()
    {
        var errors = OptionsValidator.Validate(new IngestorOptions
        {
            Database = "Host=x", StorageTier = "mongo", RetentionDays = { ["book_tickers"] = 3, ["trades"] = -1 }, ChunkHours = { ["book_ticker"] = 5, ["depth_events"] = 48 },
        });
        Assert.That(errors, Has.Some.StartsWith("StorageTier: 'mongo'"));
        Assert.That(errors, Has.Some.StartsWith("RetentionDays: unknown table 'book_tickers'"));
        Assert.That(errors, Has.Some.StartsWith("RetentionDays: trades=-1"));
        Assert.That(errors, Has.Some.StartsWith("ChunkHours: book_ticker=5"));
        Assert.That(errors.Where(e => e.StartsWith("ChunkHours: depth_events", StringComparison.Ordinal) || e.StartsWith("RetentionDays: depth_events", StringComparison.Ordinal)), Is.Empty, "48 h chunks are whole days, and 30 days hold them");
        var loaded = OptionsLoader.Load(null, new Dictionary<string, string?> { ["RetentionDays"] = "trades=365, book_ticker=0", ["Instance"] = "1/4" }, _ => null, []);
        Assert.That(loaded.RetentionDays, Is.EquivalentTo(new Dictionary<string, int> { ["trades"] = 365, ["book_ticker"] = 0 }));
        Assert.That(loaded.Instance, Is.EqualTo("1/4"));
        Assert.Throws<ConfigurationException>(() => OptionsLoader.Load(null, new Dictionary<string, string?> { ["ChunkHours"] = "trades" }, _ => null, []));
    }
}
