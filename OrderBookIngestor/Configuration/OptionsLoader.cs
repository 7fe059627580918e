using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrderBookIngestor.Configuration;

/// <summary>
/// Builds <see cref="IngestorOptions"/> from its layers, later layers winning:
/// appsettings.json beside the binary → /etc/orderbook-ingestor/appsettings.json → --config FILE →
/// systemd credential "orderbook-database" → ORDERBOOK_* environment variables → command-line flags.
/// </summary>
public static class OptionsLoader
{
    public const string SystemConfigPath = "/etc/orderbook-ingestor/appsettings.json";
    public const string EnvironmentPrefix = "ORDERBOOK_";

    /// <summary>Name of the systemd credential holding the database connection string.</summary>
    public const string CredentialName = "orderbook-database";

    /// <summary>Every setting that can come from the environment or a flag, by its JSON name.</summary>
    private static readonly string[] Keys =
    [
        nameof(IngestorOptions.Database), nameof(IngestorOptions.Symbols), nameof(IngestorOptions.Channels),
        nameof(IngestorOptions.Shards), nameof(IngestorOptions.WsUrl), nameof(IngestorOptions.RestUrl),
        nameof(IngestorOptions.Http), nameof(IngestorOptions.MaxStreamsPerConnection), nameof(IngestorOptions.StreamsPerSubscribe),
        nameof(IngestorOptions.SubscribeMessagesPerSecond), nameof(IngestorOptions.BufferCapacity), nameof(IngestorOptions.BatchMaxRows),
        nameof(IngestorOptions.BatchMaxAgeMs), nameof(IngestorOptions.BatchTargetRows), nameof(IngestorOptions.HeapSlackMegabytes), nameof(IngestorOptions.NoDataTimeoutSeconds), nameof(IngestorOptions.ReadCoalesceMs), nameof(IngestorOptions.ReconnectMinDelayMs),
        nameof(IngestorOptions.ReconnectMaxDelayMs), nameof(IngestorOptions.StableConnectionSeconds), nameof(IngestorOptions.MaxFrameBytes),
        nameof(IngestorOptions.SummaryIntervalSeconds), nameof(IngestorOptions.DrainTimeoutSeconds), nameof(IngestorOptions.AutoMigrate),
        nameof(IngestorOptions.LogFile), nameof(IngestorOptions.LogRetainedFiles), nameof(IngestorOptions.LogLevel),
        nameof(IngestorOptions.MaxBackfillTrades), nameof(IngestorOptions.RestWeightPerMinute), nameof(IngestorOptions.RestMaxInFlight),
        nameof(IngestorOptions.TopLevels), nameof(IngestorOptions.TopIntervalMs), nameof(IngestorOptions.BookSnapshotSeconds), nameof(IngestorOptions.OpenInterestSeconds), nameof(IngestorOptions.SnapshotLimit),
        nameof(IngestorOptions.MaxConnectionLifetimeSeconds), nameof(IngestorOptions.RotationTimeoutSeconds), nameof(IngestorOptions.SilentStreamSeconds),
        nameof(IngestorOptions.ExchangeInfoRefreshSeconds), nameof(IngestorOptions.SpoolDirectory), nameof(IngestorOptions.SpoolMaxMegabytes),
        nameof(IngestorOptions.SpoolSegmentMegabytes), nameof(IngestorOptions.StorageTier), nameof(IngestorOptions.RetentionDays),
        nameof(IngestorOptions.ChunkHours), nameof(IngestorOptions.MaintenanceIntervalSeconds), nameof(IngestorOptions.RollupIntervalMs),
        nameof(IngestorOptions.Instance), nameof(IngestorOptions.QuarantineDirectory), nameof(IngestorOptions.ReadApi),
        nameof(IngestorOptions.ReadApiMaxConcurrent), nameof(IngestorOptions.ReadApiStatementTimeoutMs),
    ];

    public static IngestorOptions Load(
        string? configFile,
        IReadOnlyDictionary<string, string?> flags,
        Func<string, string?>? getEnvironment = null,
        IEnumerable<string>? defaultFiles = null)
    {
        getEnvironment ??= Environment.GetEnvironmentVariable;
        var files = (defaultFiles ?? [Path.Combine(AppContext.BaseDirectory, "appsettings.json"), SystemConfigPath]).ToList();
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
            {
                throw new ConfigurationException($"--config: file '{configFile}' does not exist.");
            }

            files.Add(configFile);
        }

        var merged = new JsonObject();
        foreach (var file in files.Where(File.Exists))
        {
            MergeFile(merged, file);
        }

        IngestorOptions options;
        try
        {
            options = merged.Deserialize(ConfigJsonContext.Default.IngestorOptions) ?? new IngestorOptions();
        }
        catch (JsonException ex)
        {
            throw new ConfigurationException($"Configuration files ({string.Join(", ", files.Where(File.Exists))}): {ex.Message}", ex);
        }

        // systemd credentials (LoadCredential=orderbook-database:/path): the secret never sits in the environment.
        var credentials = getEnvironment("CREDENTIALS_DIRECTORY");
        if (!string.IsNullOrEmpty(credentials) && File.Exists(Path.Combine(credentials, CredentialName)))
        {
            options.Database = File.ReadAllText(Path.Combine(credentials, CredentialName)).Trim();
        }

        foreach (var key in Keys)
        {
            var variable = EnvironmentPrefix + ToSnakeUpper(key);
            var value = getEnvironment(variable);
            if (!string.IsNullOrEmpty(value))
            {
                Apply(options, key, value, variable);
            }
        }

        foreach (var (key, value) in flags)
        {
            if (value is not null)
            {
                Apply(options, key, value, "--" + ToKebab(key));
            }
        }

        return options;
    }

    private static void MergeFile(JsonObject merged, string file)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(file), documentOptions: new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
            });
        }
        catch (JsonException ex)
        {
            throw new ConfigurationException($"{file}: not valid JSON ({ex.Message}).", ex);
        }

        if (root is not JsonObject obj)
        {
            throw new ConfigurationException($"{file}: expected a JSON object with an \"Ingestor\" section.");
        }

        foreach (var (name, value) in obj)
        {
            if (!string.Equals(name, "Ingestor", StringComparison.OrdinalIgnoreCase))
            {
                throw new ConfigurationException($"{file}: unknown section \"{name}\"; settings live under \"Ingestor\".");
            }

            if (value is not JsonObject section)
            {
                throw new ConfigurationException($"{file}: \"Ingestor\" must be an object.");
            }

            foreach (var (key, setting) in section)
            {
                var existing = merged.Select(kv => kv.Key).FirstOrDefault(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase));
                if (existing is not null)
                {
                    merged.Remove(existing);
                }

                merged[key] = setting?.DeepClone();
            }
        }
    }

    /// <summary>Sets one option from text, as it comes from the environment or a flag.</summary>
    public static void Apply(IngestorOptions o, string key, string value, string source)
    {
        switch (key)
        {
            case nameof(IngestorOptions.Database): o.Database = value; break;
            case nameof(IngestorOptions.Symbols): o.Symbols = SplitList(value); break;
            case nameof(IngestorOptions.Channels): o.Channels = SplitList(value); break;
            case nameof(IngestorOptions.Shards): o.Shards = Int(value, source); break;
            case nameof(IngestorOptions.WsUrl): o.WsUrl = value; break;
            case nameof(IngestorOptions.RestUrl): o.RestUrl = value; break;
            case nameof(IngestorOptions.Http): o.Http = value; break;
            case nameof(IngestorOptions.MaxStreamsPerConnection): o.MaxStreamsPerConnection = Int(value, source); break;
            case nameof(IngestorOptions.StreamsPerSubscribe): o.StreamsPerSubscribe = Int(value, source); break;
            case nameof(IngestorOptions.SubscribeMessagesPerSecond): o.SubscribeMessagesPerSecond = Int(value, source); break;
            case nameof(IngestorOptions.BufferCapacity): o.BufferCapacity = Int(value, source); break;
            case nameof(IngestorOptions.BatchMaxRows): o.BatchMaxRows = Int(value, source); break;
            case nameof(IngestorOptions.BatchMaxAgeMs): o.BatchMaxAgeMs = Int(value, source); break;
            case nameof(IngestorOptions.BatchTargetRows): o.BatchTargetRows = Int(value, source); break;
            case nameof(IngestorOptions.HeapSlackMegabytes): o.HeapSlackMegabytes = Int(value, source); break;
            case nameof(IngestorOptions.ReadCoalesceMs): o.ReadCoalesceMs = Int(value, source); break;
            case nameof(IngestorOptions.NoDataTimeoutSeconds): o.NoDataTimeoutSeconds = Int(value, source); break;
            case nameof(IngestorOptions.ReconnectMinDelayMs): o.ReconnectMinDelayMs = Int(value, source); break;
            case nameof(IngestorOptions.ReconnectMaxDelayMs): o.ReconnectMaxDelayMs = Int(value, source); break;
            case nameof(IngestorOptions.StableConnectionSeconds): o.StableConnectionSeconds = Int(value, source); break;
            case nameof(IngestorOptions.MaxFrameBytes): o.MaxFrameBytes = Int(value, source); break;
            case nameof(IngestorOptions.SummaryIntervalSeconds): o.SummaryIntervalSeconds = Int(value, source); break;
            case nameof(IngestorOptions.DrainTimeoutSeconds): o.DrainTimeoutSeconds = Int(value, source); break;
            case nameof(IngestorOptions.AutoMigrate): o.AutoMigrate = Bool(value, source); break;
            case nameof(IngestorOptions.LogFile): o.LogFile = value; break;
            case nameof(IngestorOptions.LogRetainedFiles): o.LogRetainedFiles = Int(value, source); break;
            case nameof(IngestorOptions.LogLevel): o.LogLevel = value; break;
            case nameof(IngestorOptions.MaxBackfillTrades): o.MaxBackfillTrades = Int(value, source); break;
            case nameof(IngestorOptions.RestWeightPerMinute): o.RestWeightPerMinute = Int(value, source); break;
            case nameof(IngestorOptions.RestMaxInFlight): o.RestMaxInFlight = Int(value, source); break;
            case nameof(IngestorOptions.TopLevels): o.TopLevels = Int(value, source); break;
            case nameof(IngestorOptions.TopIntervalMs): o.TopIntervalMs = Int(value, source); break;
            case nameof(IngestorOptions.BookSnapshotSeconds): o.BookSnapshotSeconds = Int(value, source); break;
            case nameof(IngestorOptions.OpenInterestSeconds): o.OpenInterestSeconds = Int(value, source); break;
            case nameof(IngestorOptions.SnapshotLimit): o.SnapshotLimit = Int(value, source); break;
            case nameof(IngestorOptions.MaxConnectionLifetimeSeconds): o.MaxConnectionLifetimeSeconds = Int(value, source); break;
            case nameof(IngestorOptions.RotationTimeoutSeconds): o.RotationTimeoutSeconds = Int(value, source); break;
            case nameof(IngestorOptions.SilentStreamSeconds): o.SilentStreamSeconds = Int(value, source); break;
            case nameof(IngestorOptions.ExchangeInfoRefreshSeconds): o.ExchangeInfoRefreshSeconds = Int(value, source); break;
            case nameof(IngestorOptions.SpoolDirectory): o.SpoolDirectory = value; break;
            case nameof(IngestorOptions.SpoolMaxMegabytes): o.SpoolMaxMegabytes = Int(value, source); break;
            case nameof(IngestorOptions.SpoolSegmentMegabytes): o.SpoolSegmentMegabytes = Int(value, source); break;
            case nameof(IngestorOptions.StorageTier): o.StorageTier = value; break;
            case nameof(IngestorOptions.RetentionDays): MergeTable(o.RetentionDays, value, source); break;
            case nameof(IngestorOptions.ChunkHours): MergeTable(o.ChunkHours, value, source); break;
            case nameof(IngestorOptions.MaintenanceIntervalSeconds): o.MaintenanceIntervalSeconds = Int(value, source); break;
            case nameof(IngestorOptions.RollupIntervalMs): o.RollupIntervalMs = Int(value, source); break;
            case nameof(IngestorOptions.Instance): o.Instance = value; break;
            case nameof(IngestorOptions.QuarantineDirectory): o.QuarantineDirectory = value; break;
            case nameof(IngestorOptions.ReadApi): o.ReadApi = Bool(value, source); break;
            case nameof(IngestorOptions.ReadApiMaxConcurrent): o.ReadApiMaxConcurrent = Int(value, source); break;
            case nameof(IngestorOptions.ReadApiStatementTimeoutMs): o.ReadApiStatementTimeoutMs = Int(value, source); break;
            default: throw new ConfigurationException($"{source}: unknown setting.");
        }
    }

    /// <summary>"book_ticker=30,trades=365": per-table values, merged over what files set.</summary>
    private static void MergeTable(Dictionary<string, int> into, string value, string source)
    {
        foreach (var pair in SplitList(value))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
            {
                throw new ConfigurationException($"{source}: '{pair}' is not table=number (e.g. book_ticker=30).");
            }

            into[pair[..eq].Trim()] = Int(pair[(eq + 1)..].Trim(), source);
        }
    }

    public static List<string> SplitList(string value)
        => value.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static int Int(string value, string source)
        => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n
            : System.Numerics.BigInteger.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)
                ? throw new ConfigurationException($"{source}: '{value}' is out of range (a whole number up to {int.MaxValue}).")
                : throw new ConfigurationException($"{source}: '{value}' is not a whole number.");

    private static bool Bool(string value, string source)
        => bool.TryParse(value, out var b) ? b : throw new ConfigurationException($"{source}: '{value}' is not true or false.");

    internal static string ToSnakeUpper(string pascal)
    {
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < pascal.Length; i++)
        {
            if (i > 0 && char.IsUpper(pascal[i]))
            {
                sb.Append('_');
            }

            sb.Append(char.ToUpperInvariant(pascal[i]));
        }

        return sb.ToString();
    }

    internal static string ToKebab(string pascal) => ToSnakeUpper(pascal).Replace('_', '-').ToLowerInvariant();
}
