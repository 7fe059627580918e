using OrderBookIngestor.Configuration;

namespace OrderBookIngestor.Tests.Unit;

public sealed class OptionsTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("obi-options-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private string File(string name, string json)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllText(path, json);
        return path;
    }

    private static IngestorOptions Load(string? config, Dictionary<string, string?> flags, Dictionary<string, string> env, params string[] files)
        => OptionsLoader.Load(config, flags, name => env.GetValueOrDefault(name), files);

    [Test]
    public void Layers_LaterLayersWin_FileThenEtcThenConfigThenEnvironmentThenFlags()
    {
        var beside = File("beside.json", """{"Ingestor":{"Shards":2,"BatchMaxRows":111,"BatchMaxAgeMs":7,"Symbols":["AAAUSDT"],"Http":"127.0.0.1:1"}}""");
        var etc = File("etc.json", """{"Ingestor":{"shards":3,"BatchMaxRows":222}}""");
        var config = File("config.json", """{"Ingestor":{"Shards":4, /* comments allowed */ }}""");
        var env = new Dictionary<string, string> { ["ORDERBOOK_SHARDS"] = "5", ["ORDERBOOK_SYMBOLS"] = "BBBUSDT,CCCUSDT", ["ORDERBOOK_BATCH_MAX_AGE_MS"] = "9" };
        var flags = new Dictionary<string, string?> { ["Shards"] = "6", ["Database"] = null };

        var o = Load(config, flags, env, beside, etc);

        Assert.That(o.Shards, Is.EqualTo(6), "flag beats everything");
        Assert.That(o.BatchMaxAgeMs, Is.EqualTo(9), "environment beats files");
        Assert.That(o.Symbols, Is.EqualTo(new[] { "BBBUSDT", "CCCUSDT" }));
        Assert.That(o.BatchMaxRows, Is.EqualTo(222), "/etc beats the file beside the binary");
        Assert.That(o.Http, Is.EqualTo("127.0.0.1:1"), "untouched settings keep the first layer's value");
        Assert.That(o.Database, Is.Null, "an absent flag changes nothing");
    }

    [Test]
    public void SystemdCredential_SuppliesTheDatabase_AndTheEnvironmentStillWins()
    {
        File("orderbook-database", "Host=db;Username=writer;Password=from-credential\n");
        var fromCredential = Load(null, [], new Dictionary<string, string> { ["CREDENTIALS_DIRECTORY"] = _dir });
        Assert.That(fromCredential.Database, Is.EqualTo("Host=db;Username=writer;Password=from-credential"));
        var env = new Dictionary<string, string> { ["CREDENTIALS_DIRECTORY"] = _dir, ["ORDERBOOK_DATABASE"] = "Host=other" };
        Assert.That(Load(null, [], env).Database, Is.EqualTo("Host=other"));
    }

    [Test]
    public void UnknownSetting_InAFile_IsAnErrorNamingIt()
    {
        var bad = File("bad.json", """{"Ingestor":{"Shardz":2}}""");
        var ex = Assert.Throws<ConfigurationException>(() => Load(null, [], [], bad));
        Assert.That(ex!.Message, Does.Contain("Shardz"));
    }

    [Test]
    public void MissingConfigFile_IsAnError()
        => Assert.Throws<ConfigurationException>(() => Load(Path.Combine(_dir, "nope.json"), [], []));

    [Test]
    public void NonNumericEnvironmentValue_NamesTheVariable()
    {
        var ex = Assert.Throws<ConfigurationException>(() => Load(null, [], new Dictionary<string, string> { ["ORDERBOOK_SHARDS"] = "two" }));
        Assert.That(ex!.Message, Does.Contain("ORDERBOOK_SHARDS").And.Contain("two"));
    }

    [Test]
    public void AWholeNumberTooLarge_IsSaidToBeOutOfRange_NotNotAWholeNumber()
    {
        var ex = Assert.Throws<ConfigurationException>(() => Load(null, [], new Dictionary<string, string> { ["ORDERBOOK_SHARDS"] = "99999999999" }));
        Assert.That(ex!.Message, Does.Contain("'99999999999' is out of range").And.Not.Contain("not a whole number"));
    }

    [Test]
    public void UrlParameters_AnUnknownOneAndABadValue_AreToldApart()
    {
        var unknown = Assert.Throws<ConfigurationException>(() => DatabaseConnection.ToNpgsql("postgresql://w:p@db/md?nonsense=1"));
        Assert.That(unknown!.Message, Does.Contain("'nonsense' is not understood"));
        var bad = Assert.Throws<ConfigurationException>(() => DatabaseConnection.ToNpgsql("postgresql://w:p@db/md?sslmode=bogus"));
        Assert.That(bad!.Message, Does.Contain("'sslmode' must be disable, allow, prefer, require, verify-ca or verify-full").And.Not.Contain("bogus"));
    }

    [Test]
    public void Validation_ReportsEveryProblemWithTheSettingName()
    {
        var o = new IngestorOptions
        {
            Database = null, Symbols = ["BTC-USDT"], Channels = ["depth@1ms"], Shards = 0, BatchMaxAgeMs = 0,
            WsUrl = "http://x", Http = "nonsense",
        };
        var errors = OptionsValidator.Validate(o);
        Assert.That(errors, Has.Some.StartsWith("Database:"));
        Assert.That(errors, Has.Some.StartsWith("Symbols:").And.Some.Contains("BTC-USDT"));
        Assert.That(errors, Has.Some.StartsWith("Channels:"));
        Assert.That(errors, Has.Some.StartsWith("Shards:"));
        Assert.That(errors, Has.Some.StartsWith("BatchMaxAgeMs:"));
        Assert.That(errors, Has.Some.StartsWith("WsUrl:"));
        Assert.That(errors, Has.Some.StartsWith("Http:"));
    }

    [Test]
    public void Validation_AcceptsTheDefaultsWithADatabase()
        => Assert.That(OptionsValidator.Validate(new IngestorOptions { Database = "Host=localhost" }), Is.Empty);

    [Test]
    public void PostgresUrl_BecomesAnNpgsqlConnectionString()
    {
        var cs = DatabaseConnection.ToNpgsql("postgresql://writer:p%40ss@db.example:6543/marketdata?sslmode=require");
        var b = new Npgsql.NpgsqlConnectionStringBuilder(cs);
        Assert.That((b.Host, b.Port, b.Username, b.Password, b.Database, b.SslMode),
            Is.EqualTo(("db.example", 6543, "writer", "p@ss", "marketdata", Npgsql.SslMode.Require)));
    }

    [Test]
    public void Redaction_NeverShowsThePassword()
    {
        Assert.That(DatabaseConnection.Redact("postgresql://writer:s3cret@db:5432/md"), Does.Not.Contain("s3cret"));
        Assert.That(DatabaseConnection.Redact("Host=db;Username=w;Password=s3cret;Database=md"), Does.Not.Contain("s3cret"));
        Assert.That(DatabaseConnection.Redact("Password=s3cret;;=;Nonsense Key=1"), Does.Not.Contain("s3cret"));
    }

    [Test]
    public void EnvironmentNames_AreUpperSnakeCase()
    {
        Assert.That(OptionsLoader.ToSnakeUpper("BatchMaxAgeMs"), Is.EqualTo("BATCH_MAX_AGE_MS"));
        Assert.That(OptionsLoader.ToKebab("WsUrl"), Is.EqualTo("ws-url"));
    }
}
