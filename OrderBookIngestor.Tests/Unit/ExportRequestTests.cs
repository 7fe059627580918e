using OrderBookIngestor.Cli;
using OrderBookIngestor.Export;

namespace OrderBookIngestor.Tests.Unit;

/// <summary>`export`'s flags: what a request means, and one clear line for each mistake.</summary>
public sealed class ExportRequestTests
{
    private static (ExportRequest? Request, string? Error) Parse(string from, string? to = null, string? symbols = null, string? tables = null, string format = "parquet",
        string? compression = null, string level = "optimal")
        => (ExportCommand.Parse(from, to, symbols, tables, format, compression, "/tmp/x", false, out var error, level), error);

    [Test]
    public void ToIsExclusive_AndDefaultsToTheDayAfterFrom()
    {
        var (one, _) = Parse("2026-11-30");
        Assert.That((one!.From, one.To), Is.EqualTo((new DateOnly(2026, 11, 30), new DateOnly(2026, 12, 1))));
        var (two, _) = Parse("2026-11-30", "2026-12-02");
        Assert.That(two!.To.DayNumber - two.From.DayNumber, Is.EqualTo(2));
    }

    [Test]
    public void Defaults_AreTheRawTables_ParquetWithZstd_AndEverySymbol()
    {
        var (r, _) = Parse("2026-11-30");
        Assert.That(r!.Tables, Is.EqualTo(ExportTable.Defaults));
        Assert.That((r.Format, r.Compression, r.Symbols), Is.EqualTo((ExportFormat.Parquet, "zstd", (IReadOnlyList<string>?)null)));
        Assert.That(Parse("2026-11-30", format: "csv").Request!.Compression, Is.EqualTo("none"));
        Assert.That(r.Level, Is.EqualTo(System.IO.Compression.CompressionLevel.Optimal));
        Assert.That(Parse("2026-11-30", level: "smallest").Request!.Level, Is.EqualTo(System.IO.Compression.CompressionLevel.SmallestSize));
        Assert.That(Parse("2026-11-30", level: "max").Error, Does.Contain("--compression-level"));
    }

    [TestCase("2026-13-01", null, null, null, "parquet", null, "--from")]
    [TestCase("2026-11-30", "2026-11-30", null, null, "parquet", null, "exclusive")]
    [TestCase("2026-11-30", "yesterday", null, null, "parquet", null, "--to")]
    [TestCase("2026-11-30", null, null, "book_ticker,orders", "parquet", null, "'orders'")]
    [TestCase("2026-11-30", null, null, null, "feather", null, "--format")]
    [TestCase("2026-11-30", null, null, null, "csv", "zstd", "--compression 'zstd' for csv")]
    [TestCase("2026-11-30", null, ",", null, "parquet", null, "--symbols")]
    public void Mistakes_AreOneLineNamingTheFlag(string from, string? to, string? symbols, string? tables, string format, string? compression, string named)
    {
        var (request, error) = Parse(from, to, symbols, tables, format, compression);
        Assert.That(request, Is.Null);
        Assert.That(error, Does.Contain(named));
    }
}
